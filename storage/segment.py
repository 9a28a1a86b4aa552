"""One log segment: ``<base>.log`` plus its ``.index`` and ``.timeindex``.

The ``.log`` file holds v2 record batches back to back, exactly as appended (base offsets and
leader epochs assigned). ``size`` is the in-memory truth about how many bytes of it are valid:
everything the segment reads is bounded by it, so a half-written tail is never visible. All file
access goes through the :class:`~storage.fs.FileSystem` hooks and the descriptor pool.

Index maintenance mirrors Kafka's ``LogSegment.recover`` batch by batch: before each batch, if
more than ``index.interval.bytes`` were written since the last entry, the batch gets an
offset-index entry ``(batch last offset -> batch position)`` and the time index gets
``(largest timestamp so far, last offset of the batch that first reached it)``. Doing the same
on append and on recovery means a rebuilt index is identical to the one appends produced.
(Kafka's append path adds at most one entry per append *call*; per batch is finer and cheaper to
search, and still Kafka-readable.)

Segments are not thread-safe on their own; :class:`storage.log.Log` serialises access.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from protocol.records.batch import (
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    compute_crc,
)
from storage.clock import Clock
from storage.config import LogConfig
from storage.errors import StorageCorruptionError
from storage.fs import FileSystem
from storage.handles import HandleCache, ManagedFile
from storage.index import INT32_MAX, OffsetIndex
from storage.time_index import NO_TIMESTAMP, TimeIndex
from storage.txn_index import TransactionIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"

#: ``roll_at_timestamp`` when the time-roll deadline is not known: below every timestamp.
NO_FAST_ROLL_CHECK = -(1 << 63)
HEADER = struct.Struct(">qiibIhiqqqhii")
_PREFIX = struct.Struct(">qi")

#: Bytes read per ``pread`` when scanning batch headers (first read, then at most).
FIRST_SCAN_CHUNK = 8 * 1024
SCAN_CHUNK = 64 * 1024
#: Bytes read per ``pread`` when validating whole batches (recovery).
RECOVERY_CHUNK = 4 * 1024 * 1024
#: Batches of the active segment whose position and header are kept (``LogSegment._tail``):
#: the last ``TAIL_BATCHES`` to ``2 * TAIL_BATCHES`` appended.
TAIL_BATCHES = 128


def file_name(base_offset: int, suffix: str) -> str:
    """Kafka's file name: the base offset zero-padded to 20 digits, then the suffix."""
    return f"{base_offset:020d}{suffix}"


class SegmentInvalid(Exception):
    """Internal: recovery found an invalid batch (the position and reason say where/why)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"invalid batch at position {position}: {reason}")
        self.position = position
        self.reason = reason


class LogSegment:
    __slots__ = (
        "_bytes_since_last_index_entry",
        "_index_arrays",
        "_max_ts",
        "_offset_of_max_ts",
        "_rolling_ts",
        "_tail",
        "_write_pinned",
        "base_offset",
        "clock",
        "config",
        "created_ms",
        "directory",
        "fs",
        "handles",
        "index_room",
        "log_file",
        "offset_index",
        "roll_at_timestamp",
        "roll_jitter_ms",
        "size",
        "time_index",
        "txn_index",
    )

    def __init__(
        self,
        fs: FileSystem,
        handles: HandleCache,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        clock: Clock,
        *,
        size: int,
        roll_jitter_ms: int = 0,
        suffix: str = "",
    ) -> None:
        self.fs = fs
        self.handles = handles
        self.directory = directory
        self.base_offset = base_offset
        self.config = config
        self.clock = clock
        self.size = size
        self.roll_jitter_ms = roll_jitter_ms
        self.log_file = ManagedFile(directory / file_name(base_offset, LOG_SUFFIX + suffix))
        self.offset_index = OffsetIndex(
            fs,
            directory / file_name(base_offset, INDEX_SUFFIX + suffix),
            base_offset,
            config.segment_index_bytes,
        )
        self.time_index = TimeIndex(
            fs,
            directory / file_name(base_offset, TIME_INDEX_SUFFIX + suffix),
            base_offset,
            config.segment_index_bytes,
        )
        self.txn_index = TransactionIndex(fs, directory / file_name(base_offset, TXN_INDEX_SUFFIX + suffix))
        self.created_ms = clock.milliseconds()
        self._rolling_ts: int | None = None
        #: Record timestamp above which a time roll is due (segment.ms after the first batch's
        #: timestamp, less the jitter); NO_FAST_ROLL_CHECK while that is unknown. With
        #: ``size``, ``config.segment_bytes`` and ``index_room`` it lets the log skip
        #: :meth:`should_roll` on the append hot path.
        self.roll_at_timestamp = NO_FAST_ROLL_CHECK
        self._max_ts: int | None = None
        self._offset_of_max_ts = base_offset
        self._bytes_since_last_index_entry = -1  # computed lazily from the index
        self._write_pinned = False
        # Append hot path: both indexes' arrays, found once (by _index_room_left) rather than
        # through four calls per append. Cleared by anything that replaces or shrinks the arrays
        # (recover, truncate_to).
        self._index_arrays: tuple[array[int], array[int], array[int], array[int]] | None = None
        #: Entries both indexes can still take; <= 0 when none, or not known yet.
        self.index_room = -1
        #: Base offset -> (position, header) of the batches appended last. Followers and
        #: consumers fetch where their last read ended, the base offset of a recent batch: that
        #: read needs no index lookup and header scan (about 25 headers of small batches per
        #: index interval). Only appends fill it; truncation and recovery empty it, a roll drops it.
        self._tail: dict[int, tuple[int, tuple[Any, ...]]] = {}

    # -- creation ---------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        fs: FileSystem,
        handles: HandleCache,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        clock: Clock,
        *,
        roll_jitter_ms: int = 0,
        suffix: str = "",
        preallocate_indexes: bool = True,
    ) -> LogSegment:
        """A new empty segment; a leftover file with the same name is emptied first."""
        seg = cls(
            fs,
            handles,
            directory,
            base_offset,
            config,
            clock,
            size=0,
            roll_jitter_ms=roll_jitter_ms,
            suffix=suffix,
        )
        fd = handles.acquire(seg.log_file, create=True)
        try:
            fs.ftruncate(fd, 0)
        finally:
            handles.release(seg.log_file)
        for index in (seg.offset_index, seg.time_index):
            if index.path.exists():
                fs.unlink(index.path)
            index.persist(preallocate=preallocate_indexes)
        seg.txn_index.reset()
        seg._max_ts = NO_TIMESTAMP
        seg._bytes_since_last_index_entry = 0
        return seg

    # -- file access ------------------------------------------------------------------------------

    def pread(self, size: int, position: int) -> bytes:
        fd = self.handles.acquire(self.log_file)
        try:
            return self.fs.read_exact(fd, size, position)
        finally:
            self.handles.release(self.log_file)

    def dup_fd(self) -> int:
        """A new descriptor for the ``.log`` file, owned by the caller."""
        fd = self.handles.acquire(self.log_file)
        try:
            return os.dup(fd)
        finally:
            self.handles.release(self.log_file)

    def file_size_on_disk(self) -> int:
        fd = self.handles.acquire(self.log_file)
        try:
            return self.fs.file_size(fd)
        finally:
            self.handles.release(self.log_file)

    # -- timestamps -------------------------------------------------------------------------------

    def _load_max_timestamp(self) -> None:
        ts, off = self.time_index.last_entry()
        self._max_ts, self._offset_of_max_ts = ts, off

    @property
    def max_timestamp_so_far(self) -> int:
        if self._max_ts is None:
            self._load_max_timestamp()
        assert self._max_ts is not None
        return self._max_ts

    @property
    def offset_of_max_timestamp_so_far(self) -> int:
        if self._max_ts is None:
            self._load_max_timestamp()
        return self._offset_of_max_ts

    def largest_timestamp(self) -> int:
        """Largest record timestamp, or the file's modification time if none (as Kafka)."""
        ts = self.max_timestamp_so_far
        if ts >= 0:
            return ts
        return self.last_modified_ms()

    def last_modified_ms(self) -> int:
        try:
            return self.log_file.path.stat().st_mtime_ns // 1_000_000
        except FileNotFoundError:
            return 0

    def first_batch_timestamp(self) -> int | None:
        if self._rolling_ts is None and self.size > 0:
            for _, header in self.iter_headers(0):
                self._set_rolling_timestamp(header.max_timestamp)
                break
        return self._rolling_ts

    def _set_rolling_timestamp(self, timestamp: int | None) -> None:
        self._rolling_ts = timestamp
        if timestamp is not None and timestamp >= 0:
            self.roll_at_timestamp = timestamp + self.config.segment_ms - self.roll_jitter_ms
        else:
            self.roll_at_timestamp = NO_FAST_ROLL_CHECK

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        self._set_rolling_timestamp(self._rolling_ts)

    def should_roll(self, messages_size: int, max_timestamp: int, last_offset: int, clock: Clock) -> bool:
        """Kafka's ``LogSegment.shouldRoll``: size, age (by the first batch's timestamp, or the
        creation time without one), a full index, or offsets the index cannot express."""
        if not 0 <= last_offset - self.base_offset <= INT32_MAX:
            return True
        if self.index_room <= 0 and self._index_room_left() <= 0:
            return True
        size = self.size
        if size == 0:
            return False
        cfg = self.config
        if size > cfg.segment_bytes - messages_size:
            return True
        ts = self._rolling_ts
        if ts is None:
            ts = self.first_batch_timestamp()
        # By record time when the first batch has a timestamp, else by wall clock since creation.
        waited = max_timestamp - ts if ts is not None and ts >= 0 else clock.milliseconds() - self.created_ms
        return waited > cfg.segment_ms - self.roll_jitter_ms

    # -- append -----------------------------------------------------------------------------------

    def _index_room_left(self) -> int:
        """Entries that still fit in both indexes (and cache their arrays for appends)."""
        off_keys, off_values = self.offset_index.arrays()
        ts_keys, ts_values = self.time_index.arrays()
        self._index_arrays = (off_keys, off_values, ts_keys, ts_values)
        self.index_room = min(
            self.offset_index.max_entries - len(off_keys), self.time_index.max_entries - len(ts_keys)
        )
        return self.index_room

    def _forget_index_arrays(self) -> None:
        self._index_arrays = None
        self.index_room = -1

    def _bytes_since_index(self) -> int:
        if self._bytes_since_last_index_entry < 0:
            _, pos = self.offset_index.last_entry()
            self._bytes_since_last_index_entry = self.size - pos
        return self._bytes_since_last_index_entry

    def append(self, data: memoryview, batches: list[tuple[int, int, int, int]]) -> None:
        """Write ``data`` (whole batches, offsets assigned) at the end with one ``pwrite``.

        ``batches`` holds ``(position in data, size, last offset, max timestamp)`` per batch.
        On a failed write the file is cut back to its previous size and the error re-raised.
        """
        start = self._write_at_end(data)
        if start == 0 and batches:
            self._set_rolling_timestamp(batches[0][3])
        for rel, size, last_offset, batch_max_ts in batches:
            self._index_batch(start + rel, size, last_offset, batch_max_ts)
            self._remember(start + rel, data, rel)

    def append_batch(self, data: memoryview, last_offset: int, max_timestamp: int) -> None:
        """:meth:`append` of exactly one batch (what a produce request carries per partition)."""
        start = self._write_at_end(data)
        if start == 0:
            self._set_rolling_timestamp(max_timestamp)
        self._index_batch(start, len(data), last_offset, max_timestamp)
        self._remember(start, data, 0)

    def _remember(self, position: int, data: memoryview, at: int) -> None:
        """Keep the batch written at ``position`` (its header at ``at`` in ``data``) in ``_tail``."""
        fields = HEADER.unpack_from(data, at)  # a BatchHeader's fields, made one on a hit
        tail = self._tail
        tail[fields[0]] = (position, fields)
        if len(tail) > 2 * TAIL_BATCHES:
            for base in list(itertools.islice(tail, TAIL_BATCHES)):  # the oldest (insertion order)
                del tail[base]

    def _write_at_end(self, data: memoryview) -> int:
        """One ``pwrite`` of ``data`` at the end of the file; returns where it starts."""
        start = self.size
        transient = False
        if self._write_pinned:
            fd = self.log_file.fd
        else:
            # A busy writer keeps its descriptor pinned (not evictable) until the log goes idle
            # (release_write_pin): two lock round trips less per append. Beyond the pool's
            # writer-pin budget the pin is taken per append instead.
            fd = self.handles.acquire(self.log_file)
            if self.handles.grant_writer_pin():
                self._write_pinned = True
            else:
                transient = True
        try:
            if self.fs.pwrite(fd, data, start) != len(data):
                self.fs.ftruncate(fd, start)
                self.fs.write_all(fd, data, start)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.ftruncate(fd, start)
            raise
        finally:
            if transient:
                self.handles.release(self.log_file)
        self.size = start + len(data)
        return start

    def _index_batch(self, position: int, size: int, last_offset: int, batch_max_ts: int) -> None:
        """Index entries for one batch written at ``position`` (every append and recovery).

        The arrays are appended to directly: offsets and positions only grow here, which is
        what OffsetIndex.append / TimeIndex.maybe_append would check."""
        since = self._bytes_since_last_index_entry
        if since < 0:
            since = self._bytes_since_index()
        max_ts = self._max_ts
        if max_ts is None:
            max_ts = self._max_ts = self.max_timestamp_so_far
        if batch_max_ts > max_ts:
            max_ts = self._max_ts = batch_max_ts
            self._offset_of_max_ts = last_offset
        if since > self.config.index_interval_bytes:
            arrays = self._index_arrays
            if arrays is None:
                self._index_room_left()
                arrays = self._index_arrays
                assert arrays is not None
            off_keys, off_values, ts_keys, ts_values = arrays
            base = self.base_offset
            off_keys.append(last_offset - base)
            off_values.append(position)
            # A time-index entry only ever comes with an offset-index entry (index_room).
            if max_ts > (ts_keys[-1] if ts_keys else NO_TIMESTAMP):
                ts_keys.append(max_ts)
                ts_values.append(self._offset_of_max_ts - base)
            self.index_room -= 1
            since = 0
        self._bytes_since_last_index_entry = since + size

    # -- scanning ---------------------------------------------------------------------------------

    def iter_headers(self, start: int, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """``(position, header)`` of each batch from ``start`` (a batch boundary) to ``end``.

        Reads ``SCAN_CHUNK`` bytes per ``pread``; a batch larger than that costs one read for its
        header. Raises :class:`StorageCorruptionError` on an impossible header, since only
        validated data lies below ``size``.
        """
        limit = self.size if end is None else min(end, self.size)
        pos = start
        unpack = HEADER.unpack_from
        make = BatchHeader._make
        chunk = FIRST_SCAN_CHUNK  # most scans stop within an index interval: start small
        while pos < limit:
            buf = self.pread(min(chunk, limit - pos), pos)
            chunk = min(chunk * 4, SCAN_CHUNK)
            n = len(buf)
            off = 0
            while n - off >= RECORD_BATCH_OVERHEAD:
                fields = unpack(buf, off)
                size = fields[1] + LOG_OVERHEAD
                if size < RECORD_BATCH_OVERHEAD or fields[3] != 2:
                    raise StorageCorruptionError(
                        f"{self.log_file.path}: invalid batch header at position {pos + off}"
                    )
                yield pos + off, make(fields)
                off += size
                if pos + off >= limit:
                    return
            if off == 0 and n < RECORD_BATCH_OVERHEAD:
                raise StorageCorruptionError(f"{self.log_file.path}: truncated batch at position {pos}")
            pos += off

    def translate_offset(self, offset: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is >= ``offset``."""
        found = self._seek(offset)
        return None if found is None else found[1:]

    def _seek(self, offset: int) -> tuple[Iterator[tuple[int, BatchHeader]] | None, int, BatchHeader] | None:
        """:meth:`translate_offset`, with the header scan positioned just after that batch (None
        when the batch was found in ``_tail``, without a scan)."""
        known = self._tail.get(offset)
        if known is not None:
            return None, known[0], BatchHeader._make(known[1])
        _, pos = self.offset_index.lookup(offset)
        headers = self.iter_headers(pos)
        for position, header in headers:
            if header.base_offset + header.last_offset_delta >= offset:
                return headers, position, header
        return None

    def read_next_offset(self) -> int:
        """Offset after the last batch (``base_offset`` when empty); scans from the last index entry."""
        _, pos = self.offset_index.last_entry()
        next_offset = self.base_offset
        for _, header in self.iter_headers(pos):
            next_offset = header.base_offset + header.last_offset_delta + 1
        return next_offset

    def read(
        self, offset: int, max_bytes: int, max_offset: int, min_one_message: bool, segment_end_offset: int
    ) -> tuple[int, int, BatchHeader, int] | None:
        """``(position, length, first header, next offset)`` of the whole batches to return, or
        None if no batch in this segment has an offset >= ``offset``.

        ``length`` is 0 when the first batch reaches ``max_offset`` or (without
        ``min_one_message``) exceeds ``max_bytes``. ``next offset`` is where a following read
        should start. ``segment_end_offset`` bounds this segment's offsets (next segment's base or
        the log end offset); when the rest of the segment fits, no header is scanned at all.
        """
        found = self._seek(offset)
        if found is None:
            return None
        headers, pos, first = found
        if first.base_offset + first.last_offset_delta >= max_offset:
            return pos, 0, first, first.base_offset
        first_size = first.batch_length + LOG_OVERHEAD
        if first_size > max_bytes and not min_one_message:
            return pos, 0, first, first.base_offset
        limit = pos + max(max_bytes, first_size)
        if segment_end_offset <= max_offset and self.size <= limit:
            return pos, self.size - pos, first, segment_end_offset
        # A consumer reads up to the high watermark: where a recent batch starts, ending the read.
        bound = self._tail.get(max_offset)
        if bound is not None and pos < bound[0] <= limit:
            return pos, bound[0] - pos, first, max_offset
        # Jump over whole batches with the index: the last entry at or below the byte limit and
        # below max_offset marks a batch boundary whose predecessors all qualify.
        index = self.offset_index
        slot = min(index.slot_at_or_below_position(limit), index.slot_below_offset(max_offset)) - 1
        # The first batch qualifies (checked above): the scan goes on after it, with the bytes
        # already read, unless the index lets it start further on.
        end = pos + first_size
        if slot >= 0:
            _, entry_pos = index.entry(slot)
            if entry_pos > end:
                headers = self.iter_headers(entry_pos)
                end = entry_pos
        if headers is None:
            headers = self.iter_headers(end)
        next_offset = min(segment_end_offset, max_offset)
        for position, header in headers:
            batch_end = position + header.batch_length + LOG_OVERHEAD
            if header.base_offset + header.last_offset_delta >= max_offset or batch_end > limit:
                next_offset = header.base_offset
                break
            end = batch_end
        return pos, end - pos, first, next_offset

    # -- recovery ---------------------------------------------------------------------------------

    def recover(
        self,
        on_batch_epoch: dict[int, int] | None = None,
        protect_below: int = -1,
        markers_seen: list[int] | None = None,
    ) -> int:
        """Validate every batch (framing, magic, CRC-32C, offsets), rebuild both indexes, and cut
        the file at the first invalid byte. Returns the number of bytes truncated.

        ``on_batch_epoch`` collects ``leader_epoch -> first base offset`` for the epochs seen, so
        the caller can repair its leader-epoch cache. If the invalid data starts below offset
        ``protect_below`` (the recovery point: data there was fsync'd and must be intact),
        :class:`StorageCorruptionError` is raised and nothing is truncated. ``markers_seen``
        collects the offsets of the valid transaction-marker (producer control) batches.
        """
        self.offset_index.reset()
        self.time_index.reset()
        self._forget_index_arrays()
        self._tail.clear()
        self._max_ts = NO_TIMESTAMP
        self._offset_of_max_ts = self.base_offset
        self._bytes_since_last_index_entry = 0
        self._set_rolling_timestamp(None)
        disk_size = self.file_size_on_disk()
        self.size = disk_size  # let pread reach the whole file while validating
        valid = 0
        expected_next = self.base_offset
        batches: list[tuple[int, int, int, int]] = []
        try:
            for position, size, header in self._iter_valid_batches(disk_size):
                if header.base_offset < expected_next:
                    raise SegmentInvalid(position, f"base offset {header.base_offset} below {expected_next}")
                last = header.base_offset + header.last_offset_delta
                if header.last_offset_delta < 0 or last - self.base_offset > INT32_MAX:
                    raise SegmentInvalid(position, "offset outside the segment's range")
                expected_next = last + 1
                batches.append((position, size, last, header.max_timestamp))
                if on_batch_epoch is not None and header.partition_leader_epoch >= 0:
                    on_batch_epoch.setdefault(header.partition_leader_epoch, header.base_offset)
                if markers_seen is not None and header.is_control and header.producer_id >= 0:
                    markers_seen.append(header.base_offset)
                valid = position + size
        except SegmentInvalid as exc:
            if expected_next < protect_below:
                self.size = valid
                raise StorageCorruptionError(
                    f"{self.log_file.path}: {exc} below the recovery point {protect_below}"
                ) from exc
        for position, size, last, max_ts in batches:
            self._index_batch(position, size, last, max_ts)
        self.size = valid
        if batches:
            self._set_rolling_timestamp(batches[0][3])
        truncated = disk_size - valid
        if truncated > 0:
            fd = self.handles.acquire(self.log_file)
            try:
                self.fs.ftruncate(fd, valid)
            finally:
                self.handles.release(self.log_file)
        return truncated

    def _iter_valid_batches(self, disk_size: int) -> Iterator[tuple[int, int, BatchHeader]]:
        """Yield ``(position, size, header)`` of each valid batch; raise SegmentInvalid at the first
        invalid one (or a torn tail)."""
        pos = 0
        while pos < disk_size:
            want = min(RECORD_BATCH_OVERHEAD, disk_size - pos)
            buf = self.pread(min(RECOVERY_CHUNK, disk_size - pos), pos)
            if len(buf) < want:
                raise SegmentInvalid(pos, "short read")
            off = 0
            n = len(buf)
            while True:
                if n - off < RECORD_BATCH_OVERHEAD:
                    if pos + off + RECORD_BATCH_OVERHEAD > disk_size:
                        raise SegmentInvalid(pos + off, "torn batch header")
                    break
                size = _PREFIX.unpack_from(buf, off)[1] + LOG_OVERHEAD
                if size < RECORD_BATCH_OVERHEAD:
                    raise SegmentInvalid(pos + off, f"impossible batch size {size}")
                if buf[off + MAGIC_OFFSET] != 2:
                    raise SegmentInvalid(pos + off, f"magic {buf[off + MAGIC_OFFSET]} is not 2")
                if pos + off + size > disk_size:
                    raise SegmentInvalid(pos + off, "torn batch")
                if n - off < size:
                    if off == 0:
                        buf = self.pread(size, pos)
                        n = len(buf)
                        if n < size:
                            raise SegmentInvalid(pos, "short read")
                        continue
                    break
                header = BatchHeader._make(HEADER.unpack_from(buf, off))
                if compute_crc(buf, off, size) != header.crc:
                    raise SegmentInvalid(pos + off, "CRC mismatch")
                yield pos + off, size, header
                off += size
                if pos + off >= disk_size:
                    break
            pos += off

    def check_indexes(self) -> str | None:
        """Reason the indexes look inconsistent with the log, or None."""
        reason = self.offset_index.check(self.size)
        if reason is None:
            reason = self.time_index.check()
        if reason is None and self.offset_index.entries:
            last_offset, pos = self.offset_index.last_entry()
            for position, header in self.iter_headers(pos, pos + SCAN_CHUNK):
                if position != pos or header.base_offset + header.last_offset_delta != last_offset:
                    reason = "last index entry does not point at its batch"
                break
        return reason

    # -- truncation -------------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset is >= ``offset``; returns bytes removed."""
        mapping = self.translate_offset(offset)
        self._tail.clear()
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        self._forget_index_arrays()
        removed = 0
        if mapping is not None:
            new_size = mapping[0]
            removed = self.size - new_size
            fd = self.handles.acquire(self.log_file)
            try:
                self.fs.ftruncate(fd, new_size)
            finally:
                self.handles.release(self.log_file)
            self.size = new_size
        if self.size == 0:
            self.created_ms = self.clock.milliseconds()
            self._set_rolling_timestamp(None)
        self._bytes_since_last_index_entry = -1
        # Largest timestamp: last time-index entry, then whatever lies after it.
        ts, off = self.time_index.last_entry()
        _, pos = self.offset_index.lookup(off)
        for _, header in self.iter_headers(pos):
            if header.max_timestamp > ts:
                ts, off = header.max_timestamp, header.base_offset + header.last_offset_delta
        self._max_ts, self._offset_of_max_ts = ts, off
        return removed

    # -- timestamps lookup ------------------------------------------------------------------------

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> tuple[int, int, int] | None:
        """``(offset, timestamp, leader epoch)`` of the first record with timestamp >= ``timestamp``
        and offset >= ``starting_offset`` (Kafka's ``LogSegment.findOffsetByTimestamp``)."""
        _, ts_offset = self.time_index.lookup(timestamp)
        _, pos = self.offset_index.lookup(max(ts_offset, starting_offset))
        for position, header in self.iter_headers(pos):
            last = header.base_offset + header.last_offset_delta
            if header.max_timestamp >= timestamp and last >= starting_offset:
                found = first_record_at_or_after(
                    self.pread(header.batch_length + LOG_OVERHEAD, position),
                    header,
                    timestamp,
                    starting_offset,
                )
                if found is not None:
                    return found[0], found[1], header.partition_leader_epoch
        return None

    # -- lifecycle --------------------------------------------------------------------------------

    def release_write_pin(self) -> None:
        """Let the descriptor pool close this segment's file again (log idle, rolled, closed)."""
        if self._write_pinned:
            self._write_pinned = False
            self.handles.release_writer_pin(self.log_file)

    def on_become_inactive(self) -> None:
        """Final time-index entry and trimmed index files (segment rolled, or closed)."""
        self.release_write_pin()
        self._tail.clear()
        # An index never loaded (a segment nobody touched since start) needs no final entry.
        if self.time_index.loaded or self._max_ts is not None:
            self.time_index.maybe_append(
                self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, skip_full_check=True
            )
        self.offset_index.persist(preallocate=False)
        self.time_index.persist(preallocate=False)

    def persist_indexes(self, *, active: bool) -> None:
        self.offset_index.persist(preallocate=active)
        self.time_index.persist(preallocate=active)

    def index_paths(self) -> list[Path]:
        return [self.offset_index.path, self.time_index.path]

    def close(self) -> None:
        """Clean close: final time-index entry, indexes written and trimmed, descriptor closed."""
        self.on_become_inactive()
        self.handles.close(self.log_file)

    def close_handles(self) -> None:
        """Close the descriptor without writing anything (log deleted or dir failed)."""
        self.release_write_pin()
        self.handles.close(self.log_file)

    def files(self) -> list[Path]:
        return [self.log_file.path, self.offset_index.path, self.time_index.path, self.txn_index.path]

    def rename_suffix(self, old: str, new: str) -> None:
        """Rename all files from ``<name><old>`` to ``<name><new>`` (open descriptors stay valid)."""
        for path_holder in (self.log_file,):
            target = _with_suffix(path_holder.path, old, new)
            if path_holder.path.exists():
                self.fs.replace(path_holder.path, target)
            path_holder.path = target
        for index in (self.offset_index, self.time_index):
            index.rename(_with_suffix(index.path, old, new))
        self.txn_index.rename(_with_suffix(self.txn_index.path, old, new))

    def delete_files(self) -> None:
        self.release_write_pin()
        self.handles.close(self.log_file)
        for path in self.files():
            if path.exists():
                self.fs.unlink(path)

    def __repr__(self) -> str:
        return f"LogSegment(base_offset={self.base_offset}, size={self.size})"


def _with_suffix(path: Path, old: str, new: str) -> Path:
    name = path.name
    if old and not name.endswith(old):
        raise ValueError(f"{path} does not end with {old}")
    stem = name[: len(name) - len(old)] if old else name
    return path.with_name(stem + new)


def first_record_at_or_after(
    batch: bytes, header: BatchHeader, timestamp: int, starting_offset: int
) -> tuple[int, int] | None:
    """``(offset, timestamp)`` of the first record of ``batch`` with timestamp >= ``timestamp``
    and offset >= ``starting_offset`` (decodes, and decompresses, this one batch)."""
    from protocol.records.record import decode_batch, record_offset, record_timestamp

    _, records = decode_batch(batch, 0, verify_crc=False)
    for record in records:
        ts = record_timestamp(header, record)
        off = record_offset(header, record)
        if ts >= timestamp and off >= starting_offset:
            return off, ts
    return None


def offset_of_max_timestamp(batch: bytes, header: BatchHeader) -> int:
    """Offset of the first record carrying the batch's max timestamp (Kafka's
    ``DefaultRecordBatch.offsetOfMaxTimestamp``); LogAppendTime batches answer their base offset."""
    if header.is_log_append_time:
        return header.base_offset
    from protocol.records.record import decode_batch, record_offset, record_timestamp

    _, records = decode_batch(batch, 0, verify_crc=False)
    for record in records:
        if record_timestamp(header, record) == header.max_timestamp:
            return record_offset(header, record)
    return header.base_offset + header.last_offset_delta
