"""One partition's log: an ordered list of segments and the offsets that describe it.

Offsets: ``log_start_offset <= high_watermark <= log_end_offset`` and
``recovery_point <= log_end_offset``. Only the last (active) segment is written. Offsets are
contiguous except where compaction removed records or a follower truncated mid-batch: a read at
an offset inside a gap returns the next batch, as in Kafka.

Thread-safety: every public method takes the log's re-entrant lock, so the broker may run
:meth:`Log.flush` in a worker thread while its event loop appends and reads. ``flush`` holds the
lock only to write index files and ``dup`` descriptors; the ``fsync`` calls themselves run
outside it, so appends are not blocked behind a slow disk.

Calls that may block on ``fsync``: ``flush``; ``append`` only when the leader epoch changes (the
epoch checkpoint is fsync'd; the broker assigns it when it becomes leader, so a produce never
does); ``maybe_assign_epoch_start_offset``; ``truncate_to``, ``truncate_fully_and_start_at`` and
``delete_records_before`` (epoch checkpoint); ``assign_topic_id``; ``close``. Everything else
only touches the page cache.

Flushing (Kafka's policy, without blocking the appender): ``append`` never fsyncs. When
``flush.messages`` is reached :meth:`Log.flush_needed` says so and the caller runs
:meth:`Log.flush` off its event loop before it answers (Kafka fsyncs inside the append, on the
request thread, so the produce answer follows the fsync). A rolled segment is flushed through
the ``background`` callable the manager injects (Kafka's ``flush-log`` task scheduled by
``roll``), which moves the recovery point to the new segment; without one, ``flush_if_due``
does it at the next ``flush_due``.
"""

from __future__ import annotations

import bisect
import contextlib
import random
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records.batch import (
    COMPRESSION_MASK,
    CONTROL_MASK,
    LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
    BatchHeader,
    set_log_append_time,
    set_max_timestamp,
)
from protocol.records.compression import decompress
from protocol.records.crc import crc32c
from protocol.records.errors import InvalidRecordError
from protocol.records.record import ABORT, COMMIT, build_batch, build_control_batch, decode_batch
from protocol.records.scanner import MISSING_KEY, TIMESTAMP_OUT_OF_RANGE, scan_records
from storage.checkpoint import PartitionMetadataFile
from storage.clock import Clock
from storage.config import LogConfig
from storage.deletion import FileDeleter
from storage.errors import (
    CorruptBatchError,
    InconsistentTopicIdError,
    InvalidMagicError,
    InvalidOffsetError,
    InvalidRecordBatchError,
    InvalidTimestampError,
    LogDeletedError,
    OffsetOutOfRangeError,
    RecordError,
    RecordTooLargeError,
    StorageError,
)
from storage.fs import FileSystem
from storage.handles import HandleCache
from storage.index import INT32_MAX
from storage.leader_epoch import LeaderEpochCache
from storage.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    CompletedTxn,
    ProducerStateManager,
    TxnMarker,
    marker_of_batch,
)
from storage.recovery import LoadResult, jitter, load_segments
from storage.results import AppendInfo, BatchPosition, FileSlice, OffsetAndTimestamp, ReadResult
from storage.segment import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    HEADER,
    SWAP_SUFFIX,
    LogSegment,
    offset_of_max_timestamp,
)
from storage.txn_index import AbortedTxn

#: Base offset, batch length (rewritten unchanged) and partition leader epoch: one pack_into.
_BASE_AND_EPOCH = struct.Struct(">qii")
_new_tuple = tuple.__new__
_NEVER = 1 << 62  # timestamp limits at or above this are "not configured" (Kafka: Long.MAX)
# A record problem kind beyond the scanner's (MISSING_KEY, TIMESTAMP_OUT_OF_RANGE).
_CLIENT_APPEND_TIME = 2


class _RenumberNeeded(Exception):
    """A compressed client batch whose record offset deltas are not 0, 1, 2...: Kafka rebuilds
    such a batch (LogValidator, "no in-place assignment") rather than refuse it, so its records
    get consecutive offsets. Raised before anything is written; :meth:`Log.append` retries with
    the rebuilt buffer."""

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


def _renumbered(mv: memoryview, pos: int) -> memoryview:
    """``mv`` with the batch at ``pos`` rebuilt: same records, codec and producer fields, offset
    deltas 0..n-1 (what Kafka's ``buildRecordsAndAssignOffsets`` writes)."""
    try:
        header, records = decode_batch(mv, pos)
        for index, record in enumerate(records):
            record.offset_delta = index
        rebuilt = build_batch(
            records,
            base_timestamp=header.base_timestamp,
            compression=header.compression,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            transactional=header.is_transactional,
        )
    except (CorruptRecordError, EncodeError) as exc:
        raise InvalidRecordBatchError(f"record batch at position {pos}: {exc}") from None
    return memoryview(bytearray(mv[:pos]) + rebuilt + mv[pos + header.size :])


#: Runs a callable later in a worker thread (the broker's disk pool); never on the caller's
#: thread, since the caller may be an event loop.
Background = Callable[[Callable[[], None]], None]


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """``("my-topic", 3)`` for ``my-topic-3``; None for names that are not partition dirs."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit() or "." in partition:
        return None
    return topic, int(partition)


class Log:
    """A partition log. Create through :class:`storage.manager.LogManager` or :meth:`Log.open`."""

    def __init__(
        self,
        directory: Path,
        topic: str,
        partition: int,
        config: LogConfig,
        clock: Clock,
        fs: FileSystem,
        handles: HandleCache,
        deleter: FileDeleter,
        loaded: LoadResult,
        *,
        log_start_offset: int,
        high_watermark: int,
        topic_id: uuid.UUID | None,
        background: Background | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self._config = config
        self._derive_config_flags()
        self.clock = clock
        self.fs = fs
        self.handles = handles
        self.deleter = deleter
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._background = background
        self._segments: list[LogSegment] = loaded.segments
        self._bases: list[int] = [s.base_offset for s in self._segments]
        self._leo = loaded.log_end_offset
        self._recovery_point = loaded.recovery_point
        self._log_start = max(log_start_offset, self._bases[0])
        self._hw = min(max(high_watermark, self._log_start), self._leo)
        self._topic_id = topic_id
        self._closed = False
        self._deleted = False
        self._last_flush_ms = clock.milliseconds()
        self._roll_flush_offset = -1
        self._new_segment_since_flush = False
        self._appended = False
        #: First offset the cleaner has not cleaned yet (``cleaner-offset-checkpoint``).
        self.cleaner_checkpoint = 0
        #: Latest delete horizon the cleaner stamped on a batch; a log with an expired one is
        #: worth cleaning again (tombstones to drop) even below min.cleanable.dirty.ratio.
        self.latest_delete_horizon = -1
        self.leader_epochs = LeaderEpochCache(fs, directory, lambda: self._leo)
        for epoch, start in sorted(loaded.epochs_seen.items(), key=lambda kv: kv[1]):
            self._maybe_start_epoch(epoch, start)
        self.leader_epochs.truncate_from_end(self._leo)
        self.leader_epochs.truncate_from_start(self._log_start)
        #: Load statistics (segments recovered, bytes truncated, indexes rebuilt).
        self.load_result = loaded
        #: Idempotent-producer state: the broker checks and updates it around appends; the log
        #: snapshots it (roll, close) and restores it (load, truncation).
        self.producer_state = ProducerStateManager(directory, fs, producer_id_expiration_ms)
        #: Snapshots written without fsync (at roll, on the appending thread); flush syncs them.
        self._unsynced_snapshots: list[Path] = []

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        clock: Clock,
        fs: FileSystem | None = None,
        handles: HandleCache | None = None,
        deleter: FileDeleter | None = None,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        high_watermark: int = 0,
        had_clean_shutdown: bool = False,
        topic_id: uuid.UUID | None = None,
        background: Background | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        topic_partition: tuple[str, int] | None = None,
    ) -> Log:
        """Open (creating if needed) the log in ``directory``, named ``<topic>-<partition>``
        unless ``topic_partition`` is given (a future log's ``<topic>-<partition>.<id>-future``).

        ``background`` runs a callable in a worker thread (the flush of a rolled segment)."""
        parsed = topic_partition if topic_partition is not None else parse_partition_dir(directory.name)
        if parsed is None:
            raise ValueError(f"{directory.name!r} is not a <topic>-<partition> directory name")
        fs = fs if fs is not None else FileSystem()
        handles = handles if handles is not None else HandleCache(fs)
        deleter = deleter if deleter is not None else FileDeleter(fs, clock)
        created = not directory.exists()
        fs.mkdir(directory)
        if created:
            fs.fsync_dir(directory.parent)
        meta = PartitionMetadataFile(fs, directory)
        stored_id = meta.read() if meta.exists() else None
        if topic_id is not None and stored_id is not None and stored_id != topic_id:
            raise InconsistentTopicIdError(f"{directory} holds topic id {stored_id}, not {topic_id}")
        loaded = load_segments(
            fs,
            handles,
            directory,
            config,
            clock,
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
            had_clean_shutdown=had_clean_shutdown and not created,
            rng=random.Random(),
        )
        log = cls(
            directory,
            parsed[0],
            parsed[1],
            config,
            clock,
            fs,
            handles,
            deleter,
            loaded,
            log_start_offset=log_start_offset,
            high_watermark=high_watermark,
            topic_id=stored_id,
            background=background,
            producer_id_expiration_ms=producer_id_expiration_ms,
        )
        log._load_producer_state(had_clean_shutdown and not created)
        if topic_id is not None and stored_id is None:
            log.assign_topic_id(topic_id)
        return log

    # -- properties -------------------------------------------------------------------------------

    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def lock(self) -> threading.RLock:
        """The log's re-entrant lock: held by the caller, nothing appends, truncates or rolls
        (a move between log dirs swaps the current log for the future one under it)."""
        return self._lock

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._leo

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def high_watermark(self) -> int:
        return self._hw

    @high_watermark.setter
    def high_watermark(self, value: int) -> None:
        with self._lock:
            self._hw = min(max(value, self._log_start), self._leo)
            self.producer_state.on_high_watermark_updated(self._hw)

    @property
    def first_unstable_offset(self) -> int | None:
        """First offset of the earliest transaction not yet decided and replicated (None: none),
        never below the log start offset (Kafka's maybeIncrementFirstUnstableOffset)."""
        first = self.producer_state.first_unstable_offset()
        return None if first is None else max(first, self._log_start)

    @property
    def last_stable_offset(self) -> int:
        """Kafka's lastStableOffset: the first unstable offset when it lies below the high
        watermark, else the high watermark. A read_committed consumer reads below it."""
        first = self.first_unstable_offset
        hw = self._hw
        return first if first is not None and first < hw else hw

    @property
    def topic_id(self) -> uuid.UUID | None:
        return self._topic_id

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    def segments(self) -> list[LogSegment]:
        """A snapshot of the segment list, oldest first."""
        with self._lock:
            return list(self._segments)

    def size_in_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def assign_topic_id(self, topic_id: uuid.UUID) -> None:
        with self._lock:
            if self._topic_id is not None and self._topic_id != topic_id:
                raise InconsistentTopicIdError(
                    f"{self.directory} holds topic id {self._topic_id}, not {topic_id}"
                )
            if self._topic_id is None:
                PartitionMetadataFile(self.fs, self.directory).write(topic_id)
                self._topic_id = topic_id

    def update_config(self, config: LogConfig) -> None:
        """Swap the configuration; new index sizes apply from the next segment on."""
        with self._lock:
            self._config = config
            self._derive_config_flags()
            for seg in self._segments:
                seg.update_config(config)

    def _derive_config_flags(self) -> None:
        """Precompute what the append hot path asks of the config on every call."""
        cfg = self._config
        self._max_message_bytes = cfg.max_message_bytes
        self._segment_bytes = cfg.segment_bytes
        self._flush_messages = cfg.flush_messages
        self._timestamp_work = cfg.log_append_time or (
            cfg.message_timestamp_before_max_ms < _NEVER or cfg.message_timestamp_after_max_ms < _NEVER
        )
        # Whether _append_single_batch may take an append (a test switches it off to compare).
        self._fast_append = not self._timestamp_work

    @property
    def is_open(self) -> bool:
        """Neither closed nor deleted: reads and appends may go on."""
        return not (self._deleted or self._closed)

    def _check_open(self) -> None:
        if self._deleted:
            raise LogDeletedError(f"log {self.directory.name} was deleted")
        if self._closed:
            raise LogDeletedError(f"log {self.directory.name} is closed")

    # -- append -----------------------------------------------------------------------------------

    def append(self, data: bytearray | memoryview, leader_epoch: int) -> AppendInfo:
        """Validate, assign offsets in place and append one or more v2 batches as the leader.

        Each batch's base offset and partition leader epoch are rewritten in ``data`` (the CRC
        does not cover them; for LogAppendTime topics the max timestamp and timestamp-type bit
        are set too and the CRC recomputed). The whole buffer is written with one ``pwrite``.
        Nothing is appended if any batch is invalid.
        """
        mv = data if type(data) is memoryview else memoryview(data)
        if mv.readonly:
            raise TypeError("append needs a writable buffer (bytearray or writable memoryview)")
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost, and this runs on every produce
        try:
            if self._deleted or self._closed:
                self._check_open()
            info = self._append_single_batch(mv, leader_epoch) if self._fast_append else None
            if info is None:
                try:
                    info = self._append_locked(mv, leader_epoch, True)
                except _RenumberNeeded as renumber:
                    # Written as rebuilt, not in ``data``: its size changed (rare, see the class).
                    info = self._append_locked(_renumbered(mv, renumber.pos), leader_epoch, True)
            self._appended = True
        finally:
            lock.release()
        return info

    def append_as_follower(self, data: bytearray | memoryview | bytes) -> AppendInfo:
        """Append batches whose offsets and epochs the leader assigned (Kafka's appendAsFollower).

        The bytes are written as they are, with one ``pwrite``: no offset assignment and no record
        validation, only the batch structure, CRC-32C and offset order are checked (Kafka's
        follower path, ``validateAndAssignOffsets=false``; the leader's ``max.message.bytes`` is
        not applied, as Kafka ignores the record size for replication). Offsets must increase and
        start at or above the log end offset (gaps are allowed, as compaction on the leader leaves
        them): :class:`InvalidOffsetError` otherwise, with nothing written. The batches' partition
        leader epochs extend the epoch cache (an epoch new to the log fsyncs the checkpoint) and
        their producer fields the idempotence state, so a follower that becomes leader detects
        duplicates as its leader did.
        """
        mv = memoryview(data)
        with self._lock:
            self._check_open()
            info = self._append_locked(mv, -1, False)
            self._appended = True
        return info

    def append_txn_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        committed: bool,
        leader_epoch: int,
        timestamp: int | None = None,
    ) -> AppendInfo:
        """Append a COMMIT or ABORT marker for ``producer_id`` as the leader (Kafka's
        appendAsLeader with origin COORDINATOR and a control batch): one transactional control
        batch of one record. The producer's open transaction ends there; an aborted one is added
        to the active segment's ``.txnindex``. Raises
        :class:`~storage.producer_state.InvalidProducerEpoch` or
        :class:`~storage.producer_state.CoordinatorFenced` with nothing written."""
        with self._lock:
            self._check_open()
            self.producer_state.check_marker(producer_id, producer_epoch, coordinator_epoch)
            batch = bytearray(
                build_control_batch(
                    COMMIT if committed else ABORT,
                    coordinator_epoch=coordinator_epoch,
                    producer_id=producer_id,
                    producer_epoch=producer_epoch,
                    timestamp=self.clock.milliseconds() if timestamp is None else timestamp,
                )
            )
            info = self._append_locked(memoryview(batch), leader_epoch, True)
            self._appended = True
            header = BatchHeader(*HEADER.unpack_from(batch, 0))
            completed = self.producer_state.update(
                header, info.first_offset, TxnMarker(committed, coordinator_epoch)
            )
            if completed is not None:
                self._index_completed(completed, self._segments[-1])
            return info

    def _index_completed(self, completed: CompletedTxn, segment: LogSegment) -> None:
        """Kafka's LogSegment.updateTxnIndex: an aborted transaction goes into the index of the
        segment holding its marker, with the LSO once it ended."""
        if completed.aborted:
            segment.txn_index.append(
                AbortedTxn(
                    completed.producer_id,
                    completed.first_offset,
                    completed.last_offset,
                    self.producer_state.last_stable_offset_after(completed),
                )
            )

    def collect_aborted_transactions(self, start_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping ``[start_offset, upper_bound_offset)`` (Kafka's
        UnifiedLog.collectAbortedTransactions): searched from the segment holding
        ``start_offset`` on, until an entry's LSO reaches the upper bound."""
        found: list[AbortedTxn] = []
        with self._lock:
            self._check_open()
            i = max(0, bisect.bisect_right(self._bases, start_offset) - 1)
            for seg in self._segments[i:]:
                txns, complete = seg.txn_index.collect(start_offset, upper_bound_offset)
                found.extend(txns)
                if complete:
                    break
        return found

    def flush_needed(self) -> bool:
        """Whether ``flush.messages`` records are unflushed (Kafka's ``unflushedMessages >=
        flushInterval``): the appender then runs :meth:`flush` before it answers."""
        return self._leo - self._recovery_point >= self._flush_messages

    def maybe_assign_epoch_start_offset(self, leader_epoch: int, start_offset: int) -> None:
        """Record that ``leader_epoch`` starts at ``start_offset`` if it is newer than the latest
        (Kafka's ``maybeAssignEpochStartOffset`` on becoming leader); fsyncs the checkpoint."""
        with self._lock:
            self._check_open()
            self._maybe_start_epoch(leader_epoch, start_offset)

    def _append_locked(self, mv: memoryview, leader_epoch: int, assign: bool) -> AppendInfo:
        # The hot path: per call and per batch constant work, no per-record work. Written for
        # CPython speed (locals, one unpack per header, flags precomputed from the config),
        # since it is paid on every produce.
        n = len(mv)
        if n == 0:
            raise InvalidRecordBatchError("no record batch to append")
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        append_time = -1
        check_ts = False
        now = -1
        if assign and self._timestamp_work:
            # The clock is read only when something needs it (LogAppendTime, timestamp limits).
            now = self.clock.milliseconds()
            if self._config.log_append_time:
                append_time = now
            else:
                check_ts = True
        max_bytes = self._max_message_bytes
        unpack = HEADER.unpack_from
        crc = crc32c
        next_offset = self._leo
        first_offset = -1
        max_ts = -1
        offset_of_max_ts = -1
        batches: list[tuple[int, int, int, int]] = []
        epochs: list[tuple[int, int]] = []
        producer_batches: list[tuple[tuple[Any, ...], int, TxnMarker | None]] = []
        pos = 0
        while pos < n:
            if n - pos < RECORD_BATCH_OVERHEAD:
                if n - pos > 16 and mv[pos + 16] != 2:
                    raise InvalidMagicError(f"batch at position {pos} has magic {mv[pos + 16]}, expected 2")
                raise CorruptBatchError(f"truncated record batch header at position {pos}")
            fields = unpack(mv, pos)
            if fields[3] != 2:
                raise InvalidMagicError(f"batch at position {pos} has magic {fields[3]}, expected 2")
            size = fields[1] + LOG_OVERHEAD
            if size < RECORD_BATCH_OVERHEAD or size > n - pos:
                raise CorruptBatchError(f"record batch at position {pos} declares {fields[1]} bytes")
            if size > max_bytes and assign:
                raise RecordTooLargeError(size, max_bytes)
            if crc(mv[pos + 21 : pos + size]) != fields[4]:
                raise CorruptBatchError(f"record batch at position {pos} fails its CRC-32C check")
            last_delta = fields[6]
            if last_delta < 0:
                raise InvalidRecordBatchError(
                    f"record batch at position {pos} has last offset delta {last_delta}"
                )
            batch_max_ts = fields[8]
            if assign:
                if fields[12] != last_delta + 1:
                    raise InvalidRecordBatchError(
                        f"record batch at position {pos} has {fields[12]} records "
                        f"but last offset delta {last_delta}"
                    )
                batch_max_ts = self._validate_records(mv, pos, size, fields, check_ts, now)
                base = next_offset
                _BASE_AND_EPOCH.pack_into(mv, pos, base, fields[1], leader_epoch)
                if append_time >= 0:
                    set_log_append_time(mv, pos, append_time)
                    batch_max_ts = append_time
            else:
                base = fields[0]
                if base < next_offset:
                    raise InvalidOffsetError(
                        f"follower batch at position {pos} starts at {base}, below the expected {next_offset}"
                    )
                epoch = fields[2]
                if epoch >= 0 and (not epochs or epoch > epochs[-1][0]):
                    epochs.append((epoch, base))
                if fields[9] >= 0:
                    marker = None
                    if fields[5] & CONTROL_MASK:
                        try:
                            marker = marker_of_batch(mv, pos)
                        except CorruptRecordError as exc:
                            raise CorruptBatchError(f"control batch at position {pos}: {exc}") from None
                    producer_batches.append((fields, base, marker))
            if first_offset < 0:
                first_offset = base
            last = base + last_delta
            if batch_max_ts > max_ts:
                max_ts = batch_max_ts
                offset_of_max_ts = last
            batches.append((pos, size, last, batch_max_ts))
            next_offset = last + 1
            pos += size

        if assign:
            if leader_epoch >= 0:
                self._maybe_start_epoch(leader_epoch, first_offset)
        else:
            for epoch, start in epochs:
                self._maybe_start_epoch(epoch, start)
        self._write(mv, batches, first_offset, next_offset - 1, max_ts)
        for header_fields, base, marker in producer_batches:
            # The header as unpacked in the loop (same struct as read_header's): no second read.
            completed = self.producer_state.update(_new_tuple(BatchHeader, header_fields), base, marker)
            if completed is not None:
                self._index_completed(completed, self._segments[-1])
        # tuple.__new__ directly: a NamedTuple's own constructor costs ~0.2 us more per call.
        return _new_tuple(
            AppendInfo,
            (
                first_offset,
                next_offset - 1,
                max_ts,
                offset_of_max_ts,
                len(batches),
                n,
                append_time,
                self._log_start,
            ),
        )

    def _append_single_batch(self, mv: memoryview, leader_epoch: int) -> AppendInfo | None:
        """The common produce append in the fewest steps: exactly one valid v2 batch, on a topic
        with CreateTime and no timestamp limits (``_fast_append``). Returns None for anything
        else, and :meth:`_append_locked` then appends it or says precisely what is wrong; so this
        path only ever accepts what that one would, with the same result."""
        n = len(mv)
        if n < RECORD_BATCH_OVERHEAD or mv.ndim != 1 or mv.itemsize != 1:
            return None
        fields = HEADER.unpack_from(mv, 0)
        _, length, _, magic, crc, attributes, last_delta, _, max_ts, _, _, _, count = fields
        if not (
            magic == 2
            and length + LOG_OVERHEAD == n
            and n <= self._max_message_bytes
            and 0 <= last_delta == count - 1
            and not attributes & TIMESTAMP_TYPE_MASK
            and crc32c(mv[21:]) == crc
        ):
            return None
        try:
            max_ts = self._validate_records(mv, 0, n, fields, False, -1)
        except (StorageError, _RenumberNeeded):
            return None  # the general path raises it again, after the checks that come first
        base = self._leo
        last = base + last_delta
        _BASE_AND_EPOCH.pack_into(mv, 0, base, length, leader_epoch)
        if leader_epoch >= 0 and leader_epoch != self.leader_epochs.latest_epoch:
            self._maybe_start_epoch(leader_epoch, base)
        self._write(mv, None, base, last, max_ts)
        return _new_tuple(
            AppendInfo, (base, last, max_ts, last if max_ts > -1 else -1, 1, n, -1, self._log_start)
        )

    def _maybe_start_epoch(self, epoch: int, start_offset: int) -> None:
        latest = self.leader_epochs.latest_epoch
        if latest is None or epoch > latest:
            self.leader_epochs.assign(epoch, start_offset)

    def _write(
        self,
        mv: memoryview,
        batches: list[tuple[int, int, int, int]] | None,
        first: int,
        last: int,
        max_ts: int,
    ) -> None:
        """Write validated batches (offsets ``first``..``last``; ``batches`` None for exactly one)
        to the active segment, rolling first if it is due, and move the log end offset."""
        seg = self._segments[-1]
        # The full roll check only when the cheap envelope (size, time, index room, offset
        # range) says a roll may be due: it saves a call and a dozen lookups per append.
        if not (
            seg.size <= self._segment_bytes - len(mv)
            and max_ts <= seg.roll_at_timestamp
            and seg.index_room > 0
            and last - seg.base_offset < INT32_MAX
        ) and seg.should_roll(len(mv), max_ts, last, self.clock):
            seg = self._roll(first)
        if batches is None:
            seg.append_batch(mv, last, max_ts)
        else:
            seg.append(mv, batches)
        self._leo = last + 1

    def _validate_records(
        self, mv: memoryview, pos: int, size: int, fields: tuple[int, ...], check_ts: bool, now: int
    ) -> int:
        """Kafka's LogValidator record checks on the client batch at ``pos`` (header ``fields``):
        record structure, keys on a compacted topic, CreateTime limits (``check_ts``, at ``now``),
        no client LogAppendTime. Returns the batch's max timestamp, the records' (CreateTime: the
        header's is rewritten, CRC included, when it differs, as Kafka's ``setMaxTimestamp``)."""
        attributes = fields[5]
        count = fields[12]
        codec = attributes & COMPRESSION_MASK
        records = mv[pos + RECORD_BATCH_OVERHEAD : pos + size]
        try:
            data = bytes(records) if codec == 0 else decompress(codec, records)
        except CorruptRecordError as exc:
            raise CorruptBatchError(f"record batch at position {pos}: {exc}") from None
        cfg = self._config
        client_append_time = bool(attributes & TIMESTAMP_TYPE_MASK)
        low = high = 0
        if check_ts:
            low = now - cfg.message_timestamp_before_max_ms
            high = now + cfg.message_timestamp_after_max_ms
        try:
            max_ts, contiguous, problems = scan_records(
                data,
                0,
                len(data),
                count,
                fields[7],
                cfg.compact,
                check_ts and not client_append_time,
                low,
                high,
            )
        except InvalidRecordError as exc:
            raise InvalidRecordBatchError(str(exc)) from None
        if client_append_time:
            max_ts = fields[8]  # every record of a LogAppendTime batch reports the batch's time
            problems = self._append_time_problems(problems, count, max_ts, check_ts, low, high)
        if problems:
            self._raise_record_errors(problems, fields[0], low, high)
        if not contiguous and codec != 0:
            raise _RenumberNeeded(pos)
        if not cfg.log_append_time and (client_append_time or max_ts != fields[8]):
            set_max_timestamp(mv, pos, max_ts, log_append_time=False)
        return max_ts

    def _append_time_problems(
        self,
        problems: list[tuple[int, int, int, int]],
        count: int,
        timestamp: int,
        check_ts: bool,
        low: int,
        high: int,
    ) -> list[tuple[int, int, int, int]]:
        """Kafka's validateTimestamp for a batch a client marked LogAppendTime: on a CreateTime
        topic its time is checked like any record's (none at all is an error); a LogAppendTime
        topic refuses it. Every record has the same time, so all or none fail."""
        if self._config.log_append_time or timestamp == -1:
            kind = _CLIENT_APPEND_TIME
        elif check_ts and (timestamp < low or timestamp > high):
            kind = TIMESTAMP_OUT_OF_RANGE
        else:
            return problems
        # The scan ran without time checks, so the problems it found are missing keys, which
        # take precedence for their record.
        keyless = {problem[0]: problem for problem in problems}
        return [keyless.get(index, (index, kind, timestamp, index)) for index in range(count)]

    def _raise_record_errors(
        self, problems: list[tuple[int, int, int, int]], base: int, low: int, high: int
    ) -> None:
        """Kafka's processRecordErrors: INVALID_TIMESTAMP if any record's time is refused, else
        INVALID_RECORD, with one error per rejected record."""
        where = f"{self.topic}-{self.partition}"
        errors: list[RecordError] = []
        bad_time = False
        for index, kind, timestamp, delta in problems:
            if kind == MISSING_KEY:
                errors.append(
                    (index, f"Compacted topic cannot accept message without key in topic partition {where}")
                )
                continue
            bad_time = True
            if kind == _CLIENT_APPEND_TIME:
                message = (
                    f"Invalid timestamp type in message with offset {base + delta}. "
                    "Producer should not set timestamp type to LogAppendTime."
                )
            else:
                message = (
                    f"Timestamp {timestamp} of message with offset {base + delta} is out of range. "
                    f"The timestamp should be within [{low}, {high}]"
                )
            errors.append((index, message))
        if bad_time:
            raise InvalidTimestampError(
                "One or more records have been rejected due to invalid timestamp", errors
            )
        shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in errors[:3])
        raise InvalidRecordBatchError(
            f"One or more records have been rejected due to {len(errors)} record errors in total, "
            f"and only showing the first three errors at most: [{shown}]",
            errors,
        )

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active one is empty)."""
        with self._lock:
            self._check_open()
            return self._roll(self._leo)

    def _roll(self, base_offset: int) -> LogSegment:
        old = self._segments[-1]
        if old.size == 0:
            if old.base_offset == base_offset:
                return old
            # An empty active segment at a lower base: replace it rather than keep an empty file.
            self._segments.pop()
            self._bases.pop()
            old.delete_files()
        else:
            old.on_become_inactive()
        new = LogSegment.create(
            self.fs,
            self.handles,
            self.directory,
            base_offset,
            self._config,
            self.clock,
            roll_jitter_ms=jitter(self._config, self._rng),
        )
        self._segments.append(new)
        self._bases.append(base_offset)
        self._new_segment_since_flush = True
        # The producer snapshot at the new base offset lets a reload replay only this segment.
        # Written here on the appending thread without fsync (Kafka: takeSnapshot(sync=false)
        # under the log lock); the background flush of the rolled segment fsyncs it, as Kafka's
        # async flush does. Until then a crash may leave it empty or torn: its CRC then fails and
        # the load falls back to the previous snapshot.
        self._take_snapshot(base_offset, sync=False)
        self._roll_flush_offset = max(self._roll_flush_offset, base_offset)
        if self._background is not None:
            # Kafka's roll schedules flushUptoOffsetExclusive(newSegment.baseOffset).
            self._background(lambda: self._flush_rolled(base_offset))
        return new

    def _flush_rolled(self, base_offset: int) -> None:
        """The background flush of the segments below a new one (recovery point -> base)."""
        with contextlib.suppress(LogDeletedError):  # closed (so flushed) or deleted meanwhile
            self.flush(base_offset)

    # -- read -------------------------------------------------------------------------------------

    def read(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
        copy_below: int = 0,
    ) -> ReadResult:
        """Whole batches starting with the one holding ``offset``, within one segment.

        At most ``max_bytes`` unless the first batch alone is larger and ``min_one_message``;
        only batches entirely below ``max_offset`` (exclusive; the high watermark or last stable
        offset; default the log end offset). ``offset`` outside ``[log_start_offset,
        log_end_offset]`` raises :class:`OffsetOutOfRangeError`. The caller owns the returned
        slice and must close it (see :class:`storage.results.FileSlice`).

        A read shorter than ``copy_below`` bytes is copied instead (``ReadResult.data``, one
        ``pread`` through the segment's own descriptor): for a few hundred bytes, the slice's
        ``dup``, ``sendfile`` and ``close`` (and the second ``sendmsg`` for the bytes of the
        frame after it) cost more system calls than the copy saves.
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must be non-negative")
        with self._lock:
            self._check_open()
            leo = self._leo
            if offset < self._log_start or offset > leo:
                raise OffsetOutOfRangeError(offset, self._log_start, leo)
            limit = leo if max_offset is None else min(max_offset, leo)
            if offset >= limit:
                return self._empty(offset, self._segments[-1].base_offset)
            i = bisect.bisect_right(self._bases, offset) - 1
            segments = self._segments
            while i < len(segments):
                seg = segments[i]
                seg_end = self._bases[i + 1] if i + 1 < len(segments) else leo
                found = seg.read(offset, max_bytes, limit, min_one_message, seg_end)
                if found is None:
                    i += 1
                    continue
                pos, length, first, next_offset = found
                if length == 0:
                    result = self._empty(offset, seg.base_offset)
                    result.first_batch_too_large = (
                        not min_one_message
                        and first.batch_length + LOG_OVERHEAD > max_bytes
                        and first.base_offset + first.last_offset_delta < limit
                    )
                    return result
                copied = length < copy_below
                return ReadResult(
                    slice=None if copied else FileSlice(seg.dup_fd(), pos, length),
                    first_offset=first.base_offset,
                    next_offset=next_offset,
                    log_start_offset=self._log_start,
                    log_end_offset=leo,
                    high_watermark=self._hw,
                    segment_base_offset=seg.base_offset,
                    data=seg.pread(length, pos) if copied else None,
                )
            return self._empty(offset, self._segments[-1].base_offset)

    def _empty(self, offset: int, segment_base: int) -> ReadResult:
        return ReadResult(
            slice=None,
            first_offset=offset,
            next_offset=offset,
            log_start_offset=self._log_start,
            log_end_offset=self._leo,
            high_watermark=self._hw,
            segment_base_offset=segment_base,
        )

    def read_bytes(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Convenience: :meth:`read` then the bytes, slice closed (tests, coordinator replay)."""
        with self.read(offset, max_bytes, max_offset) as result:
            return result.slice.read() if result.slice is not None else b""

    # -- timestamps -------------------------------------------------------------------------------

    def offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None:
        """ListOffsets by timestamp: the first record with timestamp >= ``timestamp`` at or
        after the log start offset (Kafka: the first segment whose largest timestamp reaches it,
        its time index, then the batches and the records of the first matching batch)."""
        with self._lock:
            self._check_open()
            for seg in self._segments:
                if seg.largest_timestamp() >= timestamp:
                    found = seg.find_offset_by_timestamp(timestamp, self._log_start)
                    if found is None:
                        return None
                    return OffsetAndTimestamp(found[0], found[1], found[2])
            return None

    def max_timestamp_offset(self) -> OffsetAndTimestamp | None:
        """ListOffsets MAX_TIMESTAMP (-3): the record with the largest timestamp (first one if
        several), or None for a log without timestamps."""
        with self._lock:
            self._check_open()
            best: LogSegment | None = None
            for seg in self._segments:
                if best is None or seg.max_timestamp_so_far > best.max_timestamp_so_far:
                    best = seg
            if best is None or best.max_timestamp_so_far < 0:
                return None
            ts = best.max_timestamp_so_far
            _, pos = best.offset_index.lookup(best.offset_of_max_timestamp_so_far)
            for position, header in best.iter_headers(pos):
                if header.max_timestamp == ts:
                    raw = best.pread(header.batch_length + LOG_OVERHEAD, position)
                    return OffsetAndTimestamp(
                        offset_of_max_timestamp(raw, header), ts, header.partition_leader_epoch
                    )
            return None

    # -- scanning ---------------------------------------------------------------------------------

    def scan_batch_headers(
        self, start_offset: int | None = None
    ) -> Iterator[tuple[BatchPosition, BatchHeader]]:
        """Every batch header from the batch holding ``start_offset`` (default: the log start)
        to the end, without decoding records: for rebuilding producer state at start.

        Iterates a snapshot of the segment list; do not interleave with truncation or deletion.
        """
        with self._lock:
            self._check_open()
            segments = list(self._segments)
            start = self._log_start if start_offset is None else max(start_offset, self._log_start)
            ends = [s.size for s in segments]
        i = max(0, bisect.bisect_right([s.base_offset for s in segments], start) - 1)
        first = True
        for seg, end in zip(segments[i:], ends[i:], strict=True):
            pos = 0
            if first:
                pos = seg.offset_index.lookup(start)[1]
                first = False
            for position, header in seg.iter_headers(pos, end):
                if header.base_offset + header.last_offset_delta < start:
                    continue
                yield BatchPosition(seg.base_offset, position), header

    # -- producer state ----------------------------------------------------------------------------

    def _load_producer_state(self, had_clean_shutdown: bool) -> None:
        """At open (Kafka's LogLoader): drop snapshots that belong to no segment, except the
        clean-shutdown one above them all, then restore the state up to the log end offset.

        The snapshots taken on the way are not fsync'd here (Kafka's are): that is up to three
        fsyncs per log before the broker serves (bench/bench_startup.py, 1,000 logs, full scan
        after kill -9: 43 s with them, 25 s without, one run each on a shared machine). They
        are only shortcuts for the next load; the first flush_due syncs them, and one lost to a
        power cut before that fails its CRC and the load falls back to an earlier one."""
        state = self.producer_state
        state.remove_stray_snapshots(self._bases)
        recovered_from = self.load_result.txn_index_rebuild_from
        if recovered_from is not None:
            # The recovered segments' .txnindex files were emptied: replay from a snapshot at or
            # below the first one with a marker, so that the aborted transactions are indexed again.
            for offset in sorted(state.snapshots):
                if offset > recovered_from:
                    state.remove_snapshot(offset)
        self._rebuild_producer_state(self._leo, had_clean_shutdown, sync=False, index_from=recovered_from)

    def _rebuild_producer_state(
        self,
        last_offset: int,
        reload_from_clean_shutdown: bool,
        *,
        sync: bool,
        index_from: int | None = None,
    ) -> None:
        """Kafka's UnifiedLog.rebuildProducerState: load the latest snapshot at or below
        ``last_offset`` and replay only the batches after it; snapshots are taken on the way at
        the base offsets of the last two segments and at ``last_offset``, so a later reload (or
        truncation) replays little. Without any snapshot after a clean shutdown (a log written
        before snapshots existed), Kafka assumes no producer state and only writes empty
        snapshots instead of scanning; so does this. Markers replayed at or after ``index_from``
        add their aborted transactions to the ``.txnindex`` (recovery rebuilds it)."""
        state = self.producer_state
        targets = {last_offset, self._bases[-1]}
        if len(self._bases) > 1:
            targets.add(self._bases[-2])
        if reload_from_clean_shutdown and state.latest_snapshot_offset() is None:
            for offset in sorted(targets):
                self._take_snapshot(offset, sync=sync)
            return
        start = state.truncate_and_reload(self._log_start, last_offset, self.clock.milliseconds())
        if last_offset > start:
            current_segment = -1
            replayed = 0
            for position, header in self.scan_batch_headers(start):
                if header.base_offset >= last_offset:
                    break
                if position.segment_base_offset != current_segment:
                    current_segment = position.segment_base_offset
                    if current_segment in targets:
                        self._take_snapshot(current_segment, sync=sync)
                marker = self._marker_at(position) if header.is_control and header.producer_id >= 0 else None
                completed = state.update(header, header.base_offset, marker)
                if completed is not None and index_from is not None and header.base_offset >= index_from:
                    self._index_completed(completed, self._segment_at(position.segment_base_offset))
                replayed += 1
            state.batches_replayed = replayed
        self._take_snapshot(last_offset, sync=sync)

    def _segment_at(self, base_offset: int) -> LogSegment:
        return self._segments[bisect.bisect_right(self._bases, base_offset) - 1]

    def _marker_at(self, position: BatchPosition) -> TxnMarker | None:
        """The marker of the control batch at ``position`` (replay reads only headers)."""
        seg = self._segment_at(position.segment_base_offset)
        prefix = seg.pread(LOG_OVERHEAD, position.position)
        length = struct.unpack_from(">i", prefix, 8)[0]
        try:
            return marker_of_batch(seg.pread(length + LOG_OVERHEAD, position.position))
        except CorruptRecordError as exc:
            raise CorruptBatchError(f"control batch at offset {position}: {exc}") from None

    def _take_snapshot(self, offset: int, *, sync: bool) -> None:
        path = self.producer_state.take_snapshot(offset, sync=sync)
        if path is not None and not sync:
            self._unsynced_snapshots.append(path)

    def _drop_snapshots_of(self, segments: list[LogSegment]) -> None:
        """Segments leave the log: their snapshots go with them, deleted after the same delay."""
        paths = [self.producer_state.mark_snapshot_for_deletion(seg.base_offset) for seg in segments]
        self.deleter.schedule([p for p in paths if p is not None], self._config.file_delete_delay_ms)

    # -- truncation and log start ---------------------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Remove every batch whose last offset is >= ``offset``. Returns False (and only trims
        the epoch cache) when ``offset >= LEO``.

        The log end offset becomes ``offset`` when that is a batch boundary (always the case for
        a follower truncating to an OffsetForLeaderEpoch answer). Truncating into the middle of a
        batch removes the whole batch and the log end offset becomes that batch's base offset,
        not ``offset`` as in Kafka: Kafka's value would not survive a restart (it is recomputed
        from the data), and a follower simply re-fetches the batch."""
        if offset < 0:
            raise ValueError(f"cannot truncate to negative offset {offset}")
        with self._lock:
            self._check_open()
            if offset >= self._leo:
                self.leader_epochs.truncate_from_end(self._leo)
                return False
            if self._bases[0] > offset:
                self._truncate_fully_locked(offset)
                return True
            doomed = [s for s in self._segments if s.base_offset > offset]
            keep = len(self._segments) - len(doomed)
            del self._segments[keep:]
            del self._bases[keep:]
            self._drop_snapshots_of(doomed)
            self._dispose(doomed)
            active = self._segments[-1]
            active.truncate_to(offset)
            active.persist_indexes(active=True)
            self._leo = min(offset, active.read_next_offset())
            self.leader_epochs.truncate_from_end(self._leo)
            self._log_start = min(self._log_start, self._leo)
            self._hw = min(self._hw, self._leo)
            self._recovery_point = min(self._recovery_point, self._leo)
            self._roll_flush_offset = min(self._roll_flush_offset, self._leo)
            self.cleaner_checkpoint = min(self.cleaner_checkpoint, self._leo)
            self._rebuild_producer_state(self._leo, False, sync=False)
            return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete everything; the log restarts empty at ``offset`` (start = end = HW)."""
        if offset < 0:
            raise ValueError(f"cannot start at negative offset {offset}")
        with self._lock:
            self._check_open()
            self._truncate_fully_locked(offset)

    def _truncate_fully_locked(self, offset: int) -> None:
        doomed = list(self._segments)
        self._segments.clear()
        self._bases.clear()
        self._dispose(doomed)
        seg = LogSegment.create(
            self.fs,
            self.handles,
            self.directory,
            offset,
            self._config,
            self.clock,
            roll_jitter_ms=jitter(self._config, self._rng),
        )
        self._segments.append(seg)
        self._bases.append(offset)
        self._new_segment_since_flush = True
        self._leo = offset
        self._log_start = offset
        self._hw = offset
        self._recovery_point = offset
        self._roll_flush_offset = -1
        self.cleaner_checkpoint = offset
        self.leader_epochs.clear()
        self.producer_state.truncate_fully(offset)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to ``offset`` (at most the high
        watermark) and delete the segments wholly below it. Returns the new log start offset."""
        with self._lock:
            self._check_open()
            if offset > self._hw:
                raise OffsetOutOfRangeError(offset, self._log_start, self._hw)
            if offset > self._log_start:
                self._log_start = offset
                self.leader_epochs.truncate_from_start(offset)
                self.cleaner_checkpoint = max(self.cleaner_checkpoint, offset)
                self.delete_segments_below_log_start()
            return self._log_start

    def delete_segments_below_log_start(self) -> int:
        """Delete leading segments whose next segment starts at or below the log start offset."""
        with self._lock:
            count = 0
            while count + 1 < len(self._segments) and self._bases[count + 1] <= self._log_start:
                count += 1
            return self._delete_oldest(count)

    def delete_old_segments(self, predicate: Callable[[LogSegment, LogSegment | None], bool]) -> int:
        """Delete the longest prefix of segments for which ``predicate(segment, next)`` holds,
        oldest first, stopping at the first segment that is not wholly below the high watermark
        (so the log start never passes it) and never deleting the active segment. Kafka's
        ``deletableSegments``; see :mod:`storage.retention` for the predicates."""
        with self._lock:
            self._check_open()
            count = 0
            segments = self._segments
            while count < len(segments) - 1:
                upper = self._bases[count + 1]
                if self._hw < upper or not predicate(segments[count], segments[count + 1]):
                    break
                count += 1
            return self._delete_oldest(count)

    def _delete_oldest(self, count: int) -> int:
        """Remove the ``count`` oldest segments (never the active one); the log start offset
        moves to the first remaining segment if it was below it."""
        count = min(count, len(self._segments) - 1)
        if count <= 0:
            return 0
        doomed = self._segments[:count]
        del self._segments[:count]
        del self._bases[:count]
        self._drop_snapshots_of(doomed)
        if self._bases[0] > self._log_start:
            self._log_start = self._bases[0]
            self.leader_epochs.truncate_from_start(self._log_start)
            self._hw = max(self._hw, self._log_start)
            self._recovery_point = max(self._recovery_point, self._log_start)
            self.cleaner_checkpoint = max(self.cleaner_checkpoint, self._log_start)
        self._dispose(doomed)
        return count

    def replace_segments(self, old: list[LogSegment], new: LogSegment, guard: LogSegment) -> bool:
        """Swap the cleaner's ``new`` segment (files ``<base>.*.cleaned``, written and fsync'd
        without the lock) in for the contiguous inactive segments ``old``, as Kafka's
        ``replaceSegments``: ``.cleaned`` -> ``.swap`` and a directory fsync (from here a crash
        completes the swap at load), the segment list updated, ``old`` renamed ``.deleted``, the
        ``.swap`` suffix removed. Reads already served from ``old`` keep their descriptors.

        Returns False, changing nothing, if the log was closed or deleted, if ``old`` are no
        longer exactly where they were (retention, DeleteRecords, truncation), or if ``guard``
        (the first segment at or past the end of the cleaner's offset map) is gone: a truncation
        below it may have removed the records that made the cleaner drop others. The caller
        deletes ``new`` then, and also when this raises with ``new`` not in the log.
        """
        with self._lock:
            segments = self._segments
            if self._closed or self._deleted or guard not in segments or old[0] not in segments:
                return False
            first = segments.index(old[0])
            end = first + len(old)
            if end >= len(segments) or any(a is not b for a, b in zip(segments[first:end], old, strict=True)):
                return False
            try:
                new.rename_suffix(CLEANED_SUFFIX, SWAP_SUFFIX)
                self.fs.fsync_dir(self.directory)
            except OSError:
                # Not swapped: a .swap left behind would be completed at the next load, over
                # whatever the log became meanwhile.
                for path in new.files():
                    if path.name.endswith(SWAP_SUFFIX) and path.exists():
                        self.fs.unlink(path)
                raise
            segments[first:end] = [new]
            self._bases[first:end] = [new.base_offset]
            doomed: list[Path] = []
            for seg in old:
                seg.rename_suffix("", DELETED_SUFFIX)
                doomed.extend(p for p in seg.files() if p.exists())
            new.rename_suffix(SWAP_SUFFIX, "")
        # Nothing below needs the lock, and each step can be slow: either name loads correctly
        # after a crash, so the last rename need not be durable before the lock is released;
        # closing a large file may start its writeback (ext4); file.delete.delay.ms=0 unlinks.
        self.fs.fsync_dir(self.directory)
        for seg in old:
            seg.close_handles()
        self.deleter.schedule(doomed, self._config.file_delete_delay_ms)
        return True

    def _dispose(self, segments: list[LogSegment]) -> None:
        """Rename segments to ``.deleted`` and hand them to the deleter."""
        paths: list[Path] = []
        for seg in segments:
            seg.close_handles()
            seg.rename_suffix("", DELETED_SUFFIX)
            paths.extend(p for p in seg.files() if p.exists())
        self.deleter.schedule(paths, self._config.file_delete_delay_ms)

    # -- durability -------------------------------------------------------------------------------

    def flush(self, up_to: int | None = None) -> None:
        """fsync the segments holding offsets below ``up_to`` (default: everything) and their
        indexes; the recovery point becomes ``up_to``. Blocks on fsync (outside the lock)."""
        sync_fds: list[int] = []
        index_paths: list[Path] = []
        with self._lock:
            self._check_open()
            target = self._leo if up_to is None else min(up_to, self._leo)
            snapshots = self._unsynced_snapshots
            if target <= self._recovery_point and not self._new_segment_since_flush and not snapshots:
                self._last_flush_ms = self.clock.milliseconds()
                return
            sync_dir = self._new_segment_since_flush or bool(snapshots)
            self._new_segment_since_flush = False
            self._unsynced_snapshots = []
            try:
                for i, seg in enumerate(self._segments):
                    seg_end = self._bases[i + 1] if i + 1 < len(self._segments) else self._leo + 1
                    if seg_end <= self._recovery_point or seg.base_offset >= target:
                        continue
                    seg.persist_indexes(active=i == len(self._segments) - 1)
                    index_paths.extend(seg.index_paths())
                    index_paths.append(seg.txn_index.path)  # usually absent: skipped below
                    sync_fds.append(seg.dup_fd())
            except BaseException:
                for fd in sync_fds:
                    self.fs.close(fd)
                raise
        try:
            for fd in sync_fds:
                self.fs.fsync(fd)
            for path in index_paths + snapshots:
                try:
                    fd = self.fs.open(path)
                except FileNotFoundError:
                    continue  # segment or snapshot deleted meanwhile
                try:
                    self.fs.fsync(fd)
                finally:
                    self.fs.close(fd)
            if sync_dir:
                self.fs.fsync_dir(self.directory)
        finally:
            for fd in sync_fds:
                self.fs.close(fd)
        with self._lock:
            if target > self._recovery_point:
                self._recovery_point = min(target, self._leo)
            if self._roll_flush_offset <= self._recovery_point:
                self._roll_flush_offset = -1
            self._last_flush_ms = self.clock.milliseconds()

    def release_idle_handles(self) -> bool:
        """Unpin the active segment's descriptor if nothing was appended since the last call,
        so the pool may close it; the manager calls this from ``flush_due``."""
        with self._lock:
            if self._appended:
                self._appended = False
                return False
            if self._segments:
                self._segments[-1].release_write_pin()
            return True

    def flush_if_due(self) -> bool:
        """Flush if ``flush.ms`` has passed since the last flush, or a rolled segment awaits its
        flush (the recovery point then moves to the new segment), or producer snapshots await
        their fsync. Returns whether it flushed."""
        now = self.clock.milliseconds()
        with self._lock:
            if self._closed or self._deleted:
                return False
            due_time = now - self._last_flush_ms >= self._config.flush_ms
            roll_offset = self._roll_flush_offset
            snapshots_pending = bool(self._unsynced_snapshots)
        if due_time:
            self.flush()
            return True
        if roll_offset > self._recovery_point:
            self.flush(roll_offset)
            return True
        if snapshots_pending:
            self.flush(self._recovery_point)
            return True
        return False

    def close(self) -> None:
        """Flush and close cleanly: indexes trimmed, final time-index entries, descriptors closed."""
        if self._closed or self._deleted:
            return
        with self._lock:
            # Kafka's clean-shutdown snapshot at the log end offset: the next load replays nothing.
            self._take_snapshot(self._leo, sync=False)
        self.flush()
        with self._lock:
            for i, seg in enumerate(self._segments):
                if i == len(self._segments) - 1:
                    seg.close()
                else:
                    seg.persist_indexes(active=False)
                    seg.close_handles()
            self._closed = True

    def abandon(self) -> None:
        """Close descriptors without writing anything (no flush, no index trim, no snapshot):
        what a killed process leaves behind; the next load recovers from the recovery point."""
        with self._lock:
            if self._closed or self._deleted:
                return
            for seg in self._segments:
                seg.close_handles()
            self._closed = True

    def mark_deleted(self) -> None:
        """Close descriptors without writing (the directory is being deleted)."""
        with self._lock:
            for seg in self._segments:
                seg.close_handles()
            self._deleted = True

    def mark_reopened_directory(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return (
            f"Log({self.directory.name}, start={self._log_start}, end={self._leo}, hw={self._hw}, "
            f"segments={len(self._segments)})"
        )
