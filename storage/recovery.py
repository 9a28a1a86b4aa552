"""Loading a partition directory: finishing interrupted swaps, finding segments, recovering.

What happens at load, in order (Kafka's ``LogLoader``):

1. Leftovers are removed: ``*.deleted`` (deletions that had not run), ``*.cleaned`` (a
   compaction that had not reached its swap), ``*.tmp``.
2. ``*.swap`` files (a compaction that was swapping in its result) are completed: the segments
   whose offsets the swapped segment covers are deleted and the ``.swap`` suffix removed.
3. Every ``<base>.log`` becomes a segment; index files without a ``.log`` are deleted. A segment
   whose ``.index`` or ``.timeindex`` is missing gets them rebuilt from the log.
4. Without a clean-shutdown marker, every segment from the one holding the recovery point to the
   end is *recovered*: each batch is checked (length, magic, CRC-32C, monotonic offsets), the
   indexes are rebuilt, and the file is cut at the first invalid byte; all later segments are
   then deleted, since nothing after a hole can be trusted. Invalid data *below* the recovery
   point was fsync'd and cannot be a torn write: it raises :class:`StorageCorruptionError`
   instead of being truncated away.
5. With the marker, nothing is scanned except the tail of the last segment (from its last index
   entry) to find the log end offset, and that segment's indexes get a consistency check.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from storage.clock import Clock
from storage.config import LogConfig
from storage.errors import StorageCorruptionError
from storage.fast_dataclass import dataclass, field
from storage.fs import FileSystem
from storage.handles import HandleCache
from storage.segment import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LogSegment,
    file_name,
)

_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex|\.txnindex)(\.swap)?$")


@dataclass
class LoadResult:
    segments: list[LogSegment]
    log_end_offset: int
    recovery_point: int
    recovered_segments: int = 0
    truncated_bytes: int = 0
    rebuilt_indexes: int = 0
    epochs_seen: dict[int, int] = field(default_factory=dict)
    #: After an unclean stop the recovered segments' ``.txnindex`` files are emptied; this is the
    #: base offset of the first of them holding a transaction marker (None: none does). The log
    #: rebuilds the indexes as it replays the producer state from there (Kafka's
    #: LogSegment.recover with the producer state).
    txn_index_rebuild_from: int | None = None


def jitter(config: LogConfig, rng: random.Random) -> int:
    return rng.randrange(config.segment_jitter_ms) if config.segment_jitter_ms > 0 else 0


def load_segments(
    fs: FileSystem,
    handles: HandleCache,
    directory: Path,
    config: LogConfig,
    clock: Clock,
    *,
    recovery_point: int,
    log_start_offset: int,
    had_clean_shutdown: bool,
    rng: random.Random,
) -> LoadResult:
    names = sorted(p.name for p in directory.iterdir())
    for name in names:
        if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp")) and _is_segment_or_index(name):
            fs.unlink(directory / name)
    names = sorted(p.name for p in directory.iterdir())
    _complete_swaps(fs, handles, directory, config, clock, names)
    names = sorted(p.name for p in directory.iterdir())

    logs: set[int] = set()
    others: dict[int, set[str]] = {}
    for name in names:
        m = _SEGMENT_FILE.match(name)
        if m is None or m.group(3):
            continue
        base = int(m.group(1))
        if m.group(2) == LOG_SUFFIX:
            logs.add(base)
        else:
            others.setdefault(base, set()).add(m.group(2))
    for base, suffixes in others.items():
        if base not in logs:
            for suffix in suffixes:
                fs.unlink(directory / file_name(base, suffix))

    segments: list[LogSegment] = []
    result = LoadResult(segments=segments, log_end_offset=0, recovery_point=recovery_point)
    bases = sorted(logs)
    # After an unclean stop every segment from the one holding the recovery point on is
    # recovered below, which rebuilds its indexes too; rebuilding them here first would cut a
    # corrupt tail without dropping the segments after it.
    first_recovered = len(bases)
    if not had_clean_shutdown:
        first_recovered = max(0, sum(1 for base in bases if base <= recovery_point) - 1)
    for position, base in enumerate(bases):
        size = (directory / file_name(base, LOG_SUFFIX)).stat().st_size
        seg = LogSegment(
            fs, handles, directory, base, config, clock, size=size, roll_jitter_ms=jitter(config, rng)
        )
        segments.append(seg)
        have = others.get(base, set())
        if position < first_recovered and (INDEX_SUFFIX not in have or TIME_INDEX_SUFFIX not in have):
            # Rebuilding never truncates data that must be intact (below the recovery point).
            protect = recovery_point if not had_clean_shutdown else (1 << 63) - 1
            result.truncated_bytes += seg.recover(result.epochs_seen, protect_below=protect)
            result.rebuilt_indexes += 1
            seg.on_become_inactive()

    if not had_clean_shutdown and segments:
        first = 0
        for i, seg in enumerate(segments):
            if seg.base_offset <= recovery_point:
                first = i
        i = first
        markers: list[int] = []
        while i < len(segments):
            seg = segments[i]
            seg.txn_index.reset()
            truncated = seg.recover(result.epochs_seen, protect_below=recovery_point, markers_seen=markers)
            if markers and result.txn_index_rebuild_from is None:
                result.txn_index_rebuild_from = seg.base_offset
            result.recovered_segments += 1
            result.truncated_bytes += truncated
            if i < len(segments) - 1:
                seg.on_become_inactive()
            if truncated > 0:
                for later in segments[i + 1 :]:
                    later.delete_files()
                    result.truncated_bytes += later.size
                del segments[i + 1 :]
                break
            i += 1

    if segments:
        last = segments[-1]
        if had_clean_shutdown:
            reason = last.check_indexes()
            if reason is not None:
                last.recover(result.epochs_seen, protect_below=(1 << 63) - 1)
                result.rebuilt_indexes += 1
        log_end_offset = last.read_next_offset()
        if log_end_offset < log_start_offset:
            # Segment files were removed behind our back: start over at the log start offset.
            for seg in segments:
                seg.delete_files()
            segments.clear()
            log_end_offset = log_start_offset
    else:
        log_end_offset = log_start_offset
    if not segments:
        segments.append(
            LogSegment.create(
                fs, handles, directory, log_start_offset, config, clock, roll_jitter_ms=jitter(config, rng)
            )
        )
    else:
        segments[-1].persist_indexes(active=True)
    result.log_end_offset = log_end_offset
    result.recovery_point = log_end_offset if had_clean_shutdown else min(recovery_point, log_end_offset)
    return result


def _is_segment_or_index(name: str) -> bool:
    for suffix in (DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return bool(_SEGMENT_FILE.match(name))


def _complete_swaps(
    fs: FileSystem, handles: HandleCache, directory: Path, config: LogConfig, clock: Clock, names: list[str]
) -> None:
    swaps = sorted(
        int(n[:20]) for n in names if n.endswith(LOG_SUFFIX + SWAP_SUFFIX) and _SEGMENT_FILE.match(n)
    )
    for base in swaps:
        size = (directory / file_name(base, LOG_SUFFIX + SWAP_SUFFIX)).stat().st_size
        swap = LogSegment(fs, handles, directory, base, config, clock, size=size, suffix=SWAP_SUFFIX)
        try:
            end = swap.read_next_offset()
        except StorageCorruptionError:
            end = base
        swap.close_handles()
        # Delete the segments this swap replaces: base offsets in [base, end).
        for name in names:
            m = _SEGMENT_FILE.match(name)
            if m is None or m.group(3):
                continue
            seg_base = int(m.group(1))
            if base <= seg_base < max(end, base + 1):
                fs.unlink(directory / name)
        for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
            src = directory / file_name(base, suffix + SWAP_SUFFIX)
            if src.exists():
                fs.replace(src, directory / file_name(base, suffix))
    for name in sorted(p.name for p in directory.iterdir()):
        if name.endswith(SWAP_SUFFIX) and _SEGMENT_FILE.match(name):
            fs.unlink(directory / name)  # index .swap files whose log never reached .swap
    if swaps:
        fs.fsync_dir(directory)
