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
3. *Swap*: the cleaned segment is fsync'd and renamed ``.swap``, the old segments renamed
   ``.deleted``, then ``.swap`` removed from the name. A crash at any point is completed or
   rolled back on load (:mod:`storage.recovery`).

Limits, stated plainly: transactional and control batches are copied unchanged (there is no
transaction index yet, so aborted data cannot be told apart and is never used to shadow other
records); records without a key are dropped as Kafka does; the pass runs synchronously while
holding the log's lock, so appends to *that* log wait for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records.batch import LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, BatchHeader, read_header
from storage.errors import StorageCorruptionError
from storage.index import INT32_MAX
from storage.log import Log
from storage.segment import CLEANED_SUFFIX, SWAP_SUFFIX, LogSegment

DEFAULT_MAX_MAP_ENTRIES = 1_000_000
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
    candidates = [segments[-1].base_offset, log.high_watermark]
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


def _next_bases(segments: list[LogSegment], log_end_offset: int) -> dict[int, int]:
    """Base offset of each segment -> the offset just past it (the next base, or the log end)."""
    bases = [seg.base_offset for seg in segments]
    return dict(zip(bases, [*bases[1:], log_end_offset], strict=True))


def iter_raw_batches(seg: LogSegment, start: int = 0) -> Iterator[tuple[int, BatchHeader, memoryview]]:
    """``(position, header, batch bytes)`` for each batch of ``seg`` from ``start``."""
    pos = start
    limit = seg.size
    while pos < limit:
        buf = seg.pread(min(_READ_CHUNK, limit - pos), pos)
        off = 0
        while len(buf) - off >= RECORD_BATCH_OVERHEAD:
            header = read_header(buf, off)
            size = header.batch_length + LOG_OVERHEAD
            if size < RECORD_BATCH_OVERHEAD:
                raise StorageCorruptionError(f"{seg.log_file.path}: invalid batch at {pos + off}")
            if off + size > len(buf):
                if off == 0:
                    buf = seg.pread(size, pos)
                    if len(buf) < size:
                        raise StorageCorruptionError(f"{seg.log_file.path}: short batch at {pos}")
                    continue
                break
            yield pos + off, header, memoryview(buf)[off : off + size]
            off += size
        if off == 0:
            raise StorageCorruptionError(f"{seg.log_file.path}: truncated batch at {pos}")
        pos += off


class Cleaner:
    """Compacts one log at a time; stateless between passes apart from configuration."""

    def __init__(self, max_map_entries: int = DEFAULT_MAX_MAP_ENTRIES) -> None:
        self.max_map_entries = max_map_entries

    def clean(self, log: Log, now_ms: int, *, force: bool = False) -> CleanerStats | None:
        """Clean ``log`` if it is due (or unconditionally with ``force``); None if nothing ran."""
        with log._lock:
            log._check_open()
            rng = cleanable_range(log, now_ms)
            if rng is None or not (force or should_clean(rng, log.config.min_cleanable_dirty_ratio)):
                return None
            return self._clean_locked(log, rng, now_ms)

    # -- the pass ---------------------------------------------------------------------------------

    def _clean_locked(self, log: Log, rng: CleanableRange, now_ms: int) -> CleanerStats:
        from protocol.records.record import decode_batch

        segments = log.segments()
        leo = log.log_end_offset
        # 1. offset map over the dirty range
        keymap: dict[bytes, int] = {}
        map_end = rng.first_dirty
        full = False
        for i, seg in enumerate(segments[:-1]):
            nxt = segments[i + 1].base_offset
            if nxt <= rng.first_dirty:
                continue
            if seg.base_offset >= rng.first_uncleanable or full:
                break
            start_pos = (
                seg.offset_index.lookup(rng.first_dirty)[1] if seg.base_offset < rng.first_dirty else 0
            )
            for _, header, raw in iter_raw_batches(seg, start_pos):
                last = header.base_offset + header.last_offset_delta
                if last < rng.first_dirty:
                    continue
                if last >= rng.first_uncleanable:
                    break
                if not (header.is_control or header.is_transactional):
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
        if not full:
            map_end = max(map_end, rng.first_uncleanable)
        # producer ids -> last offset of their last batch (anywhere in the log)
        last_of_producer: dict[int, int] = {}
        for _, header in log.scan_batch_headers():
            if header.producer_id >= 0:
                last_of_producer[header.producer_id] = header.base_offset + header.last_offset_delta

        # 2. groups of segments below map_end
        to_clean = [s for s in segments[:-1] if s.base_offset < map_end]
        groups = self._group(to_clean, segments, leo, log)
        stats = _Counters()
        log.latest_delete_horizon = -1
        for group in groups:
            cleaned = self._clean_group(log, group, keymap, map_end, last_of_producer, now_ms, stats)
            self._swap(log, group, cleaned)
        log.cleaner_checkpoint = map_end
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

    @staticmethod
    def _group(
        to_clean: list[LogSegment], segments: list[LogSegment], leo: int, log: Log
    ) -> list[list[LogSegment]]:
        config = log.config
        next_bases = _next_bases(segments, leo)
        groups: list[list[LogSegment]] = []
        i = 0
        while i < len(to_clean):
            group = [to_clean[i]]
            size = to_clean[i].size
            idx = to_clean[i].offset_index.size_in_bytes()
            tidx = to_clean[i].time_index.size_in_bytes()
            i += 1
            while i < len(to_clean):
                seg = to_clean[i]
                last_offset = next_bases[seg.base_offset] - 1
                if (
                    size + seg.size > config.segment_bytes
                    or idx + seg.offset_index.size_in_bytes() > config.segment_index_bytes
                    or tidx + seg.time_index.size_in_bytes() > config.segment_index_bytes
                    or (seg.size > 0 and last_offset - group[0].base_offset > INT32_MAX)
                ):
                    break
                group.append(seg)
                size += seg.size
                idx += seg.offset_index.size_in_bytes()
                tidx += seg.time_index.size_in_bytes()
                i += 1
            groups.append(group)
        return groups

    def _clean_group(
        self,
        log: Log,
        group: list[LogSegment],
        keymap: dict[bytes, int],
        map_end: int,
        last_of_producer: dict[int, int],
        now_ms: int,
        stats: _Counters,
    ) -> LogSegment:
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
            out = bytearray()
            metas: list[tuple[int, int, int, int]] = []
            for seg in group:
                for _, header, raw in iter_raw_batches(seg):
                    stats.bytes_read += len(raw)
                    kept = self._filter_batch(
                        log, header, raw, keymap, map_end, last_of_producer, now_ms, stats
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
            if out:
                cleaned.append(memoryview(out), metas)
                stats.bytes_written += len(out)
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
            cleaned.delete_files()
            raise

    def _filter_batch(
        self,
        log: Log,
        header: BatchHeader,
        raw: memoryview,
        keymap: dict[bytes, int],
        map_end: int,
        last_of_producer: dict[int, int],
        now_ms: int,
        stats: _Counters,
    ) -> bytes | None:
        from protocol.records.record import build_batch, decode_batch

        stats.records_read += max(header.records_count, 0)
        if header.is_control or header.is_transactional:
            stats.records_retained += max(header.records_count, 0)
            return bytes(raw)
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
        for rec in records:
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
            log.latest_delete_horizon = max(log.latest_delete_horizon, horizon)
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
                    partition_leader_epoch=header.partition_leader_epoch,
                    last_offset_delta=header.last_offset_delta,
                    delete_horizon_ms=horizon,
                )
            if (
                header.producer_id >= 0
                and last_of_producer.get(header.producer_id) == base + header.last_offset_delta
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
                    partition_leader_epoch=header.partition_leader_epoch,
                    last_offset_delta=header.last_offset_delta,
                )
        except EncodeError as exc:
            raise StorageCorruptionError(
                f"{log.directory.name}: cannot re-encode batch {base}: {exc}"
            ) from exc
        return None

    @staticmethod
    def _swap(log: Log, group: list[LogSegment], cleaned: LogSegment) -> None:
        fs = log.fs
        cleaned.rename_suffix(CLEANED_SUFFIX, SWAP_SUFFIX)
        fs.fsync_dir(log.directory)
        segs = log._segments
        first = segs.index(group[0])
        del segs[first : first + len(group)]
        del log._bases[first : first + len(group)]
        segs.insert(first, cleaned)
        log._bases.insert(first, cleaned.base_offset)
        log._dispose(group)
        cleaned.rename_suffix(SWAP_SUFFIX, "")
        fs.fsync_dir(log.directory)


class _Counters:
    __slots__ = ("bytes_read", "bytes_written", "records_read", "records_retained")

    def __init__(self) -> None:
        self.bytes_read = 0
        self.bytes_written = 0
        self.records_read = 0
        self.records_retained = 0
