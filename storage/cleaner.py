"""Log compaction (``cleanup.policy=compact`` or ``compact,delete``), after Kafka's LogCleaner.

A log is split at two offsets. The *clean* part ``[log start, first dirty)`` was compacted
before; the *dirty* part ``[first dirty, first uncleanable)`` was not. ``first uncleanable`` is
the smallest of: the active segment's base offset (the active segment is never touched), the
high watermark, and the base of the first segment younger than ``min.compaction.lag.ms``. A log
is cleaned when ``dirty bytes / (clean + dirty bytes) > min.cleanable.dirty.ratio``, when its
oldest dirty batch is older than ``max.compaction.lag.ms``, or when a delete horizon it stamped
has passed (tombstones to drop).

One cleaning pass:

1. *Offset map*: decode the dirty batches and remember the last offset of every key (up to
   ``max_map_entries`` keys; past that the pass stops early and the rest stays dirty).
2. *Recopy* every segment below the end of the map, in groups that fit one segment, into a new
   ``<base>.log.cleaned``: a record survives if it is the latest for its key (or lies past the
   map), and a tombstone survives until its batch's delete horizon. Batches keep their base
   offset, last offset delta, producer id/epoch/base sequence and leader epoch (records are
   re-encoded, recompressed with the batch's codec, through ``protocol.records.record``); a
   batch left with nothing is dropped unless it is the last batch of its producer id, which is
   kept empty so the producer's sequence state survives a reload. The first time a batch with
   tombstones is cleaned it gets a delete horizon (``now + delete.retention.ms``, attribute bit
   6, stored as base timestamp); tombstones are dropped by a later pass after it.
3. *Swap* (:meth:`storage.log.Log.replace_segments`, Kafka's ``replaceSegments``): the cleaned
   segment, already fsync'd, is renamed ``.swap`` (directory fsync'd), takes the old segments'
   place in the list, the old segments are renamed ``.deleted``, then ``.swap`` is removed from
   the name. A crash at any point is completed or rolled back on load (:mod:`storage.recovery`).

Concurrency: only the snapshot at the start and each swap hold the log's lock; steps 1 and 2 read
inactive segments, through descriptors of their own, while the log goes on appending, serving
reads (a read served from an old segment keeps its own descriptor after the swap) and flushing.
Inactive segments change only by truncation or deletion, and a swap is refused (the pass ends,
its new files deleted, nothing else changed) if the log was closed or deleted, if the segments it
replaces are no longer in place, or if the segment where the offset map ends is gone (a
truncation below it may have removed the records that shadowed others), as Kafka aborts cleaning
on truncation. Both threads run Python: the pass hands the GIL over once a millisecond, so an
append waits about that long for it at worst (``bench/bench_cleaner.py``).

Transactions (Kafka's CleanedTransactionMetadata): the range never passes the last stable
offset, so every transaction in it is decided. With the aborted transactions from the
``.txnindex``, the records of aborted transactions are dropped and shadow nothing; committed
transactional records are compacted like any others. A COMMIT/ABORT marker whose transaction
has no record left in the batches read gets a delete horizon and goes at a later pass after it;
a kept ABORT marker is indexed again in the cleaned segment's ``.txnindex``. Batches at or past
the end of the offset map are kept whole (Kafka may also drop aborted records and markers there).

Limits, stated plainly: records without a key are dropped as Kafka does.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from itertools import pairwise

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records.batch import LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, BatchHeader, read_header
from storage.config import DEFAULT_CLEANER_MAX_MAP_ENTRIES
from storage.errors import StorageCorruptionError, StorageError
from storage.fast_dataclass import dataclass
from storage.index import INT32_MAX
from storage.log import Log
from storage.producer_state import marker_of_batch
from storage.segment import CLEANED_SUFFIX, LogSegment
from storage.txn_index import AbortedTxn, TransactionIndex

DEFAULT_MAX_MAP_ENTRIES = DEFAULT_CLEANER_MAX_MAP_ENTRIES
#: Logs a pass is running on (Kafka's LogCleanerManager "in progress" state): a second pass on
#: the same log would write the same ``.cleaned`` files, so it does not start.
_IN_PROGRESS: weakref.WeakSet[Log] = weakref.WeakSet()
_IN_PROGRESS_LOCK = threading.Lock()
_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class CleanableRange:
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    needs_compaction_now: bool
    tombstones_expired: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


@dataclass(frozen=True, slots=True)
class CleanerStats:
    topic: str
    partition: int
    first_dirty: int
    end_offset: int
    segments_before: int
    segments_after: int
    bytes_read: int
    bytes_written: int
    records_read: int
    records_retained: int


def cleanable_range(log: Log, now_ms: int) -> CleanableRange | None:
    """Where the log could be cleaned now, or None for a log that is not compacted."""
    config = log.config
    if not config.compact:
        return None
    segments = log.segments()
    start = log.log_start_offset
    first_dirty = log.cleaner_checkpoint
    if first_dirty < start or first_dirty > log.log_end_offset:
        first_dirty = start
    # Never past the last stable offset: every transaction below it is decided (Kafka's
    # firstUncleanableDirtyOffset), so its records can be told committed or aborted.
    candidates = [segments[-1].base_offset, log.high_watermark, log.last_stable_offset]
    if config.min_compaction_lag_ms > 0:
        for seg, following in pairwise(segments):
            nxt = following.base_offset
            if nxt > first_dirty and seg.largest_timestamp() > now_ms - config.min_compaction_lag_ms:
                candidates.append(seg.base_offset)
                break
    first_uncleanable = max(first_dirty, min(candidates))
    clean_bytes = dirty_bytes = 0
    oldest_dirty_ts: int | None = None
    for seg, following in pairwise(segments):
        nxt = following.base_offset
        if nxt <= start:
            continue
        if nxt <= first_dirty:
            clean_bytes += seg.size
        elif seg.base_offset < first_uncleanable:
            dirty_bytes += seg.size
            if oldest_dirty_ts is None:
                oldest_dirty_ts = seg.first_batch_timestamp()
    needs_now = (
        config.max_compaction_lag_ms < (1 << 62)
        and dirty_bytes > 0
        and oldest_dirty_ts is not None
        and oldest_dirty_ts >= 0
        and now_ms - oldest_dirty_ts > config.max_compaction_lag_ms
    )
    expired = 0 <= log.latest_delete_horizon <= now_ms
    return CleanableRange(first_dirty, first_uncleanable, clean_bytes, dirty_bytes, needs_now, expired)


def should_clean(rng: CleanableRange, min_ratio: float) -> bool:
    if rng.dirty_bytes > 0 and (rng.needs_compaction_now or rng.ratio > min_ratio):
        return True
    return rng.tombstones_expired


def _position_of(segments: list[LogSegment], offset: int) -> int:
    """File position to scan from for ``offset`` in the segment holding it (0 if none does)."""
    for seg, following in pairwise(segments):
        if seg.base_offset <= offset < following.base_offset:
            return seg.offset_index.lookup(offset)[1]
    return 0


def _next_bases(segments: list[LogSegment], log_end_offset: int) -> dict[int, int]:
    """Base offset of each segment -> the offset just past it (the next base, or the log end)."""
    bases = [seg.base_offset for seg in segments]
    return dict(zip(bases, [*bases[1:], log_end_offset], strict=True))


class _Aborted(Exception):
    """The log changed under the pass (truncated, segments deleted, closed): nothing to swap."""


class _Source:
    """An inactive segment as the pass reads it: through a descriptor of its own, so a
    retention or swap closing the segment's pooled descriptor cannot pull it away mid-read (a
    closed descriptor number may be reused for another file), bounded by its size at the start.
    """

    __slots__ = ("fd", "fs", "segment", "size")

    def __init__(self, log: Log, segment: LogSegment, size: int) -> None:
        self.fs = log.fs
        self.segment = segment
        self.size = size
        with log._lock:
            if log._closed or log._deleted or segment not in log._segments:
                # Deleted (perhaps unlinked already) since the snapshot: the swap of its group
                # would be refused anyway.
                raise _Aborted()
            # From here the dup stays readable whatever happens to the segment.
            self.fd = segment.dup_fd()

    def pread(self, size: int, position: int) -> bytes:
        return self.fs.read_exact(self.fd, size, position)

    def close(self) -> None:
        self.fs.close(self.fd)


_YIELD_EVERY_S = 0.001
_last_yield = [0.0]


def _let_others_run() -> None:
    """Hand the GIL over (if another thread, such as the event loop, waits for it) once a
    millisecond: otherwise an append waits up to ``sys.getswitchinterval()`` (5 ms) for each GIL
    acquisition while the pass decodes and re-encodes batches."""
    now = time.perf_counter()
    if now - _last_yield[0] >= _YIELD_EVERY_S:
        _last_yield[0] = now
        time.sleep(0)


def iter_raw_batches(source: _Source, start: int = 0) -> Iterator[tuple[int, BatchHeader, memoryview]]:
    """``(position, header, batch bytes)`` for each batch of ``source`` from ``start``."""
    pos = start
    limit = source.size
    path = source.segment.log_file.path
    while pos < limit:
        buf = source.pread(min(_READ_CHUNK, limit - pos), pos)
        off = 0
        while len(buf) - off >= RECORD_BATCH_OVERHEAD:
            header = read_header(buf, off)
            size = header.batch_length + LOG_OVERHEAD
            if size < RECORD_BATCH_OVERHEAD:
                raise StorageCorruptionError(f"{path}: invalid batch at {pos + off}")
            if off + size > len(buf):
                if off == 0:
                    buf = source.pread(size, pos)
                    if len(buf) < size:
                        raise StorageCorruptionError(f"{path}: short batch at {pos}")
                    continue
                break
            yield pos + off, header, memoryview(buf)[off : off + size]
            _let_others_run()
            off += size
        if off == 0:
            raise StorageCorruptionError(f"{path}: truncated batch at {pos}")
        pos += off


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The log as the pass found it, taken under the lock; the pass itself runs without it."""

    range: CleanableRange
    segments: list[LogSegment]
    sizes: dict[int, int]  # base offset -> size
    log_end_offset: int
    first_dirty_position: int


class _TxnFilter:
    """Kafka's CleanedTransactionMetadata: which batches of a cleaned range belong to aborted
    transactions, and which markers no record of their transaction needs any more.

    Fed the aborted transactions overlapping the range (from the ``.txnindex``) and then every
    batch in offset order. With ``index`` (the cleaned segment's), an ABORT marker kept because
    records of its transaction were read is indexed again there."""

    __slots__ = ("_aborted", "_index", "_ongoing_aborted", "_ongoing_committed")

    def __init__(self, aborted: list[AbortedTxn], index: TransactionIndex | None = None) -> None:
        self._aborted = deque(sorted(set(aborted), key=lambda t: (t.first_offset, t.last_offset)))
        self._index = index
        #: producer id -> (its aborted transaction, whether a batch of it was read)
        self._ongoing_aborted: dict[int, tuple[AbortedTxn, bool]] = {}
        self._ongoing_committed: set[int] = set()

    def _consume_up_to(self, offset: int) -> None:
        aborted = self._aborted
        while aborted and aborted[0].first_offset <= offset:
            txn = aborted.popleft()
            self._ongoing_aborted.setdefault(txn.producer_id, (txn, False))

    def on_batch(self, header: BatchHeader) -> bool:
        """A data batch: True when it belongs to an aborted transaction (its records go)."""
        self._consume_up_to(header.base_offset + header.last_offset_delta)
        if not header.is_transactional:
            return False
        found = self._ongoing_aborted.get(header.producer_id)
        if found is not None:
            self._ongoing_aborted[header.producer_id] = (found[0], True)
            return True
        self._ongoing_committed.add(header.producer_id)
        return False

    def on_control(self, header: BatchHeader, raw: memoryview) -> bool:
        """A control batch: True when no record of its transaction was read, so the marker may
        go once its delete horizon passed (Kafka keeps a marker until its data is gone)."""
        self._consume_up_to(header.base_offset + header.last_offset_delta)
        if header.records_count <= 0:
            return True  # emptied by an earlier pass
        try:
            marker = marker_of_batch(raw)
        except CorruptRecordError as exc:
            raise StorageCorruptionError(f"control batch at offset {header.base_offset}: {exc}") from exc
        if marker is None:
            return False
        pid = header.producer_id
        if marker.committed:
            if pid in self._ongoing_committed:
                self._ongoing_committed.discard(pid)
                return False
            return True
        found = self._ongoing_aborted.pop(pid, None)
        if found is not None and found[1]:
            if self._index is not None:
                self._index.append(found[0])
            return False
        return True


class Cleaner:
    """Compacts one log at a time; stateless between passes apart from configuration.

    Only two short steps hold the log's lock: taking a snapshot of its segment list, and each
    swap (:meth:`Log.replace_segments`). Building the offset map and writing the cleaned
    segments read only inactive segments, which nothing but a truncation or a deletion changes;
    the swap notices both (the segments it cleaned, or the one its offset map ends at, are no
    longer in the log) and the pass is then abandoned, its new files deleted, as Kafka aborts
    cleaning on truncation. Appends, reads and flushes of that log go on meanwhile.
    """

    def __init__(self, max_map_entries: int = DEFAULT_MAX_MAP_ENTRIES) -> None:
        self.max_map_entries = max_map_entries

    def clean(self, log: Log, now_ms: int, *, force: bool = False) -> CleanerStats | None:
        """Clean ``log`` if it is due (or unconditionally with ``force``); None if nothing ran:
        not due, another pass on it under way, or the log truncated, trimmed or closed during
        the pass."""
        with _IN_PROGRESS_LOCK:
            if log in _IN_PROGRESS:
                return None
            _IN_PROGRESS.add(log)
        try:
            return self._clean_if_due(log, now_ms, force)
        finally:
            with _IN_PROGRESS_LOCK:
                _IN_PROGRESS.discard(log)

    def _clean_if_due(self, log: Log, now_ms: int, force: bool) -> CleanerStats | None:
        with log._lock:
            log._check_open()
            rng = cleanable_range(log, now_ms)
            if rng is None or not (force or should_clean(rng, log.config.min_cleanable_dirty_ratio)):
                return None
            segments = list(log._segments)
            snapshot = _Snapshot(
                range=rng,
                segments=segments,
                sizes={s.base_offset: s.size for s in segments},
                log_end_offset=log.log_end_offset,
                first_dirty_position=_position_of(segments, rng.first_dirty),
            )
        try:
            return self._clean(log, snapshot, now_ms)
        except _Aborted:
            return None
        except (StorageError, OSError):
            # Reading a segment that a truncation rewrote, or writing into a directory that was
            # deleted, fails; that is the concurrent change, not corruption.
            with log._lock:
                if log._closed or log._deleted or snapshot.segments[-1] not in log._segments:
                    return None
            raise

    # -- the pass ---------------------------------------------------------------------------------

    def _clean(self, log: Log, snap: _Snapshot, now_ms: int) -> CleanerStats:
        rng = snap.range
        segments = snap.segments
        # 1. offset map over the dirty range
        keymap, map_end = self._build_offset_map(log, snap)
        # The first segment at or past map_end: while it is in the log, nothing the offset map
        # saw was truncated away, since a truncation removes every segment above its offset.
        guard = next(s for s in segments if s.base_offset >= map_end or s is segments[-1])
        last_of_producer = self._last_batch_of_producers(log, snap, guard)

        # 2. groups of segments below map_end, each cleaned into a new file then swapped in
        to_clean = [s for s in segments[:-1] if s.base_offset < map_end]
        groups = self._group(to_clean, segments, snap, log)
        stats = _Counters()
        for group in groups:
            cleaned = self._clean_group(log, group, snap, keymap, map_end, last_of_producer, now_ms, stats)
            try:
                swapped = log.replace_segments(group, cleaned, guard)
            except Exception:
                with log._lock:
                    swapped_in = cleaned in log._segments  # failed after the swap took effect
                if not swapped_in:
                    with contextlib.suppress(OSError):
                        cleaned.delete_files()
                raise
            if not swapped:
                with contextlib.suppress(OSError):
                    cleaned.delete_files()
                with log._lock:
                    log.latest_delete_horizon = max(log.latest_delete_horizon, stats.delete_horizon)
                raise _Aborted()
        with log._lock:
            if guard in log._segments:  # else truncated since the last swap, below map_end
                log.cleaner_checkpoint = max(log.cleaner_checkpoint, map_end)
            log.latest_delete_horizon = stats.delete_horizon
        return CleanerStats(
            topic=log.topic,
            partition=log.partition,
            first_dirty=rng.first_dirty,
            end_offset=map_end,
            segments_before=len(segments),
            segments_after=log.segment_count,
            bytes_read=stats.bytes_read,
            bytes_written=stats.bytes_written,
            records_read=stats.records_read,
            records_retained=stats.records_retained,
        )

    def _build_offset_map(self, log: Log, snap: _Snapshot) -> tuple[dict[bytes, int], int]:
        """The last offset of every key in the dirty range, and the offset the map ends at."""
        from protocol.records.record import decode_batch

        rng = snap.range
        segments = snap.segments
        keymap: dict[bytes, int] = {}
        map_end = rng.first_dirty
        full = False
        txns = _TxnFilter(log.collect_aborted_transactions(rng.first_dirty, rng.first_uncleanable))
        for i, seg in enumerate(segments[:-1]):
            nxt = segments[i + 1].base_offset
            if nxt <= rng.first_dirty:
                continue
            if seg.base_offset >= rng.first_uncleanable or full:
                break
            start_pos = snap.first_dirty_position if seg.base_offset < rng.first_dirty else 0
            source = _Source(log, seg, snap.sizes[seg.base_offset])
            try:
                for _, header, raw in iter_raw_batches(source, start_pos):
                    last = header.base_offset + header.last_offset_delta
                    if last < rng.first_dirty:
                        continue
                    if last >= rng.first_uncleanable:
                        break
                    if header.is_control:
                        txns.on_control(header, raw)
                    elif not txns.on_batch(header):  # aborted records shadow nothing
                        try:
                            _, records = decode_batch(raw, 0, verify_crc=False)
                        except CorruptRecordError as exc:
                            raise StorageCorruptionError(f"{seg.log_file.path}: {exc}") from exc
                        base = header.base_offset
                        for rec in records:
                            if rec.key is not None:
                                keymap[rec.key] = base + rec.offset_delta
                    map_end = last + 1
                    if len(keymap) >= self.max_map_entries:
                        full = True
                        break
            finally:
                source.close()
        if not full:
            map_end = max(map_end, rng.first_uncleanable)
        return keymap, map_end

    @staticmethod
    def _last_batch_of_producers(log: Log, snap: _Snapshot, guard: LogSegment) -> _LastBatches:
        """Per producer id, the last offset of its last data batch and of its last batch of any
        kind anywhere in the log (as of the snapshot; a batch appended since only makes a kept
        batch unnecessary, never wrong)."""
        last_of_producer = _LastBatches()
        for seg in snap.segments:
            source = _Source(log, seg, snap.sizes[seg.base_offset])
            try:
                for _, header, _ in iter_raw_batches(source):
                    if header.producer_id >= 0:
                        last = header.base_offset + header.last_offset_delta
                        last_of_producer.any[header.producer_id] = last
                        if not header.is_control:
                            last_of_producer.data[header.producer_id] = last
            except StorageCorruptionError:
                if seg.base_offset < guard.base_offset:
                    raise
                # From the guard on, segments may be truncated and rewritten while read here.
                raise _Aborted() from None
            finally:
                source.close()
        return last_of_producer

    @staticmethod
    def _group(
        to_clean: list[LogSegment], segments: list[LogSegment], snap: _Snapshot, log: Log
    ) -> list[list[LogSegment]]:
        config = log.config
        sizes = snap.sizes
        next_bases = _next_bases(segments, snap.log_end_offset)
        groups: list[list[LogSegment]] = []
        i = 0
        while i < len(to_clean):
            group = [to_clean[i]]
            size = sizes[to_clean[i].base_offset]
            idx = to_clean[i].offset_index.size_in_bytes()
            tidx = to_clean[i].time_index.size_in_bytes()
            i += 1
            while i < len(to_clean):
                seg = to_clean[i]
                seg_size = sizes[seg.base_offset]
                last_offset = next_bases[seg.base_offset] - 1
                if (
                    size + seg_size > config.segment_bytes
                    or idx + seg.offset_index.size_in_bytes() > config.segment_index_bytes
                    or tidx + seg.time_index.size_in_bytes() > config.segment_index_bytes
                    or (seg_size > 0 and last_offset - group[0].base_offset > INT32_MAX)
                ):
                    break
                group.append(seg)
                size += seg_size
                idx += seg.offset_index.size_in_bytes()
                tidx += seg.time_index.size_in_bytes()
                i += 1
            groups.append(group)
        return groups

    def _clean_group(
        self,
        log: Log,
        group: list[LogSegment],
        snap: _Snapshot,
        keymap: dict[bytes, int],
        map_end: int,
        last_of_producer: _LastBatches,
        now_ms: int,
        stats: _Counters,
    ) -> LogSegment:
        """Write what ``group`` keeps into ``<base>.log.cleaned`` (fsync'd, indexes too)."""
        cleaned = LogSegment.create(
            log.fs,
            log.handles,
            log.directory,
            group[0].base_offset,
            log.config,
            log.clock,
            suffix=CLEANED_SUFFIX,
            preallocate_indexes=False,
        )
        try:
            upper = _next_bases(snap.segments, snap.log_end_offset)[group[-1].base_offset]
            aborted = log.collect_aborted_transactions(group[0].base_offset, upper)
            txns = _TxnFilter(aborted, cleaned.txn_index)
            out = bytearray()
            metas: list[tuple[int, int, int, int]] = []
            for seg in group:
                source = _Source(log, seg, snap.sizes[seg.base_offset])
                try:
                    for _, header, raw in iter_raw_batches(source):
                        stats.bytes_read += len(raw)
                        kept = self._filter_batch(
                            log, header, raw, keymap, map_end, last_of_producer, txns, now_ms, stats
                        )
                        if kept is None:
                            continue
                        out_header = read_header(kept, 0)
                        metas.append(
                            (
                                len(out),
                                len(kept),
                                header.base_offset + header.last_offset_delta,
                                out_header.max_timestamp,
                            )
                        )
                        out += kept
                        if len(out) >= _WRITE_CHUNK:
                            cleaned.append(memoryview(out), metas)
                            stats.bytes_written += len(out)
                            out = bytearray()
                            metas = []
                finally:
                    source.close()
            if out:
                cleaned.append(memoryview(out), metas)
                stats.bytes_written += len(out)
            cleaned.txn_index.flush()  # the aborted transactions whose markers stay
            cleaned.on_become_inactive()
            fd = cleaned.dup_fd()
            try:
                log.fs.fsync(fd)
            finally:
                log.fs.close(fd)
            for path in cleaned.index_paths():
                ifd = log.fs.open(path)
                try:
                    log.fs.fsync(ifd)
                finally:
                    log.fs.close(ifd)
            mtime_ns = max(s.last_modified_ms() for s in group) * 1_000_000
            os.utime(cleaned.log_file.path, ns=(mtime_ns, mtime_ns))
            return cleaned
        except BaseException:
            with contextlib.suppress(OSError):
                cleaned.delete_files()
            raise

    @staticmethod
    def _filter_marker(
        log: Log,
        header: BatchHeader,
        raw: memoryview,
        map_end: int,
        last_of_producer: _LastBatches,
        txns: _TxnFilter,
        now_ms: int,
        stats: _Counters,
    ) -> bytes | None:
        """Kafka's marker retention: a marker whose transaction has no record left gets a delete
        horizon (``now + delete.retention.ms``) the first time, and goes at a pass after it,
        unless it is its producer's last batch (kept for the producer's state). Deliberately
        more careful than Kafka: a marker at or past the end of the offset map (the last stable
        offset, at most) is kept as it is."""
        discardable = txns.on_control(header, raw)
        last = header.base_offset + header.last_offset_delta
        if not discardable or last >= map_end or last_of_producer.any.get(header.producer_id) == last:
            stats.records_retained += max(header.records_count, 0)
            return bytes(raw)
        if header.has_delete_horizon:
            if now_ms >= header.base_timestamp:
                return None
            stats.delete_horizon = max(stats.delete_horizon, header.base_timestamp)
            stats.records_retained += max(header.records_count, 0)
            return bytes(raw)
        horizon = now_ms + log.config.delete_retention_ms
        stats.delete_horizon = max(stats.delete_horizon, horizon)
        stats.records_retained += max(header.records_count, 0)
        return _marker_with_horizon(header, raw, horizon)

    def _filter_batch(
        self,
        log: Log,
        header: BatchHeader,
        raw: memoryview,
        keymap: dict[bytes, int],
        map_end: int,
        last_of_producer: _LastBatches,
        txns: _TxnFilter,
        now_ms: int,
        stats: _Counters,
    ) -> bytes | None:
        from protocol.records.record import build_batch, decode_batch

        stats.records_read += max(header.records_count, 0)
        if header.is_control:
            return self._filter_marker(log, header, raw, map_end, last_of_producer, txns, now_ms, stats)
        # Aborted records go, but (more careful than Kafka) none at or past the map's end.
        aborted = txns.on_batch(header) and header.base_offset + header.last_offset_delta < map_end
        try:
            _, records = decode_batch(raw, 0, verify_crc=False)
        except CorruptRecordError as exc:
            raise StorageCorruptionError(
                f"{log.directory.name}: batch at offset {header.base_offset}: {exc}"
            ) from exc
        base = header.base_offset
        drop_tombstones = header.has_delete_horizon and now_ms >= header.base_timestamp
        retained = []
        tombstones = False
        for rec in [] if aborted else records:
            offset = base + rec.offset_delta
            if offset >= map_end:
                keep = True
            elif rec.key is None:
                keep = False
            else:
                keep = offset >= keymap.get(rec.key, -1) and (rec.value is not None or not drop_tombstones)
            if keep:
                retained.append(rec)
                tombstones = tombstones or rec.value is None
        stats.records_retained += len(retained)
        horizon: int | None = header.base_timestamp if header.has_delete_horizon else None
        if tombstones and horizon is None:
            horizon = now_ms + log.config.delete_retention_ms
        if tombstones and horizon is not None:
            stats.delete_horizon = max(stats.delete_horizon, horizon)
        try:
            if retained:
                if len(retained) == len(records) and (not tombstones or header.has_delete_horizon):
                    return bytes(raw)
                return build_batch(
                    retained,
                    base_offset=base,
                    base_timestamp=header.base_timestamp,
                    max_timestamp=header.max_timestamp if header.is_log_append_time else None,
                    compression=header.compression,
                    log_append_time=header.is_log_append_time,
                    producer_id=header.producer_id,
                    producer_epoch=header.producer_epoch,
                    base_sequence=header.base_sequence,
                    transactional=header.is_transactional,
                    partition_leader_epoch=header.partition_leader_epoch,
                    last_offset_delta=header.last_offset_delta,
                    delete_horizon_ms=horizon,
                )
            if (
                header.producer_id >= 0
                and last_of_producer.data.get(header.producer_id) == base + header.last_offset_delta
            ):
                return build_batch(
                    [],
                    base_offset=base,
                    base_timestamp=header.max_timestamp,
                    max_timestamp=header.max_timestamp,
                    log_append_time=header.is_log_append_time,
                    producer_id=header.producer_id,
                    producer_epoch=header.producer_epoch,
                    base_sequence=header.base_sequence,
                    transactional=header.is_transactional,
                    partition_leader_epoch=header.partition_leader_epoch,
                    last_offset_delta=header.last_offset_delta,
                )
        except EncodeError as exc:
            raise StorageCorruptionError(
                f"{log.directory.name}: cannot re-encode batch {base}: {exc}"
            ) from exc
        return None


def _marker_with_horizon(header: BatchHeader, raw: memoryview, horizon: int) -> bytes:
    """The control batch ``raw`` again, stamped with a delete horizon (its record unchanged)."""
    from protocol.records.record import build_batch, decode_batch

    try:
        _, records = decode_batch(raw, 0, verify_crc=False)
        return build_batch(
            records,
            base_offset=header.base_offset,
            base_timestamp=header.base_timestamp,
            max_timestamp=header.max_timestamp,
            log_append_time=header.is_log_append_time,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            transactional=header.is_transactional,
            control=True,
            partition_leader_epoch=header.partition_leader_epoch,
            last_offset_delta=header.last_offset_delta,
            delete_horizon_ms=horizon,
        )
    except (CorruptRecordError, EncodeError) as exc:
        raise StorageCorruptionError(f"control batch at offset {header.base_offset}: {exc}") from exc


class _LastBatches:
    """Producer id -> last offset of its last data batch, and of its last batch of any kind."""

    __slots__ = ("any", "data")

    def __init__(self) -> None:
        self.data: dict[int, int] = {}
        self.any: dict[int, int] = {}


class _Counters:
    __slots__ = ("bytes_read", "bytes_written", "delete_horizon", "records_read", "records_retained")

    def __init__(self) -> None:
        #: Latest delete horizon stamped on a batch written by this pass (-1: none).
        self.delete_horizon = -1
        self.bytes_read = 0
        self.bytes_written = 0
        self.records_read = 0
        self.records_retained = 0
