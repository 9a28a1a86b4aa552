from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from protocol.records.batch import iter_batches
from protocol.records.compression import GZIP, LZ4, SNAPPY, ZSTD
from protocol.records.record import Record, build_batch, decode_batch, record_offset
from storage.cleaner import Cleaner, cleanable_range
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log
from storage.manager import LogManager
from tests.storage.conftest import OpenLog
from tests.storage.faults import CrashingFileSystem, SimulatedCrash

COMPACT = LogConfig(
    segment_bytes=600, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0, delete_retention_ms=1000
)


def batch(pairs: list[tuple[bytes, bytes | None]], ts: int = 1000, **kw: object) -> bytearray:
    records = [Record(i, 0, k, v, []) for i, (k, v) in enumerate(pairs)]
    return bytearray(build_batch(records, base_timestamp=ts, **kw))  # type: ignore[arg-type]


def all_records(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    for seg in log.segments():
        data = seg.pread(seg.size, 0)
        for pos, header in iter_batches(data):
            _, records = decode_batch(data, pos)
            out.extend((record_offset(header, r), r.key, r.value) for r in records)
    return out


def latest(history: list[tuple[int, bytes, bytes | None]]) -> dict[bytes, tuple[int, bytes | None]]:
    state: dict[bytes, tuple[int, bytes | None]] = {}
    for off, k, v in history:
        state[k] = (off, v)
    return state


def test_keeps_latest_value_per_key_and_preserves_offsets(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(COMPACT)
    history = []
    for i in range(120):
        key = b"k%d" % (i % 7)
        info = log.append(batch([(key, b"v%d" % i)], ts=clock.now_ms), 0)
        history.append((info.first_offset, key, b"v%d" % i))
    log.high_watermark = log.log_end_offset
    active_base = log.active_segment.base_offset
    active_before = log.active_segment.pread(log.active_segment.size, 0)
    stats = Cleaner().clean(log, clock.milliseconds())
    assert stats is not None and stats.end_offset == active_base
    got = all_records(log)
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(offsets)
    cleaned = [(o, k, v) for o, k, v in got if o < active_base]
    expected_clean = {k: ov for k, ov in latest([h for h in history if h[0] < active_base]).items()}
    # Every key's latest value below the active segment survives, unless a newer one exists later.
    newer = latest(history)
    for k, (o, v) in expected_clean.items():
        if newer[k][0] < active_base:
            assert (o, k, v) in cleaned
    assert len(cleaned) <= 7
    assert log.active_segment.pread(log.active_segment.size, 0) == active_before
    # Reads at offsets inside gaps return the next batch.
    first_kept = cleaned[0][0]
    with log.read(0, 1 << 20) as r:
        assert r.slice is not None and r.first_offset == first_kept
    assert latest([(o, k, v) for o, k, v in got]) == newer  # the final state is unchanged


def test_tombstones_survive_until_delete_retention(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(COMPACT)
    log.append(batch([(b"a", b"1"), (b"b", b"1")]), 0)
    log.append(batch([(b"a", None)]), 0)  # tombstone for a
    for i in range(20):
        log.append(batch([(b"c", b"%d" % i)]), 0)
    log.high_watermark = log.log_end_offset
    cleaner = Cleaner()
    assert cleaner.clean(log, clock.milliseconds()) is not None
    recs = all_records(log)
    assert (2, b"a", None) in recs and (0, b"a", b"1") not in recs
    tomb = next(h for s in log.segments() for _, h in s.iter_headers(0) if h.base_offset == 2)
    assert tomb.has_delete_horizon and tomb.base_timestamp == clock.now_ms + 1000
    assert log.latest_delete_horizon == clock.now_ms + 1000
    clock.advance(500)
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and not r.tombstones_expired
    clock.advance(600)
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and r.tombstones_expired
    assert cleaner.clean(log, clock.milliseconds()) is not None
    recs = all_records(log)
    assert not any(k == b"a" for _, k, _ in recs)
    assert (1, b"b", b"1") in recs


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_compressed_batches_are_compacted_and_recompressed(
    open_log: OpenLog, clock: ManualClock, codec: int
) -> None:
    log = open_log(COMPACT)
    for i in range(12):
        log.append(batch([(b"x", b"%d" % i), (b"y%d" % i, b"keep")], compression=codec), 0)
    log.high_watermark = log.log_end_offset
    base = log.active_segment.base_offset
    Cleaner().clean(log, clock.milliseconds())
    for seg in log.segments()[:-1]:
        data = seg.pread(seg.size, 0)
        for pos, header in iter_batches(data):
            assert header.compression == codec
            assert header.last_offset_delta == 1  # original first/last offsets kept
            _, records = decode_batch(data, pos)
            assert all(r.key != b"x" or record_offset(header, r) >= base - 2 for r in records)
    keys = [k for o, k, _ in all_records(log) if o < base]
    assert keys.count(b"x") <= 1 and len([k for k in keys if k.startswith(b"y")]) == len(
        [o for o in range(0, base, 2)]
    )


def test_last_batch_of_a_producer_is_kept_empty(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(COMPACT)
    log.append(batch([(b"k", b"old")], producer_id=42, producer_epoch=3, base_sequence=7), 0)
    for i in range(15):
        log.append(batch([(b"k", b"%d" % i)]), 0)
    log.high_watermark = log.log_end_offset
    Cleaner().clean(log, clock.milliseconds())
    kept = [h for s in log.segments() for _, h in s.iter_headers(0) if h.producer_id == 42]
    assert len(kept) == 1
    assert (kept[0].base_offset, kept[0].records_count, kept[0].base_sequence, kept[0].producer_epoch) == (
        0,
        0,
        7,
        3,
    )


def test_dirty_ratio_threshold(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(COMPACT.replace(min_cleanable_dirty_ratio=0.5))
    for i in range(40):
        log.append(batch([(b"k%d" % i, b"v")]), 0)  # unique keys: nothing to remove
    log.roll()
    log.high_watermark = log.log_end_offset
    cleaner = Cleaner()
    assert cleaner.clean(log, clock.milliseconds()) is not None  # all dirty: ratio 1.0
    for i in range(3):
        log.append(batch([(b"k%d" % i, b"w")]), 0)
    log.roll()
    assert log.segment_count > 3
    log.high_watermark = log.log_end_offset
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and 0 < r.ratio <= 0.5
    assert cleaner.clean(log, clock.milliseconds()) is None
    assert cleaner.clean(log, clock.milliseconds(), force=True) is not None


def test_never_cleans_past_the_high_watermark(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(COMPACT)
    for i in range(40):
        log.append(batch([(b"k", b"%d" % i)]), 0)
    log.high_watermark = 3
    Cleaner().clean(log, clock.milliseconds())
    # Below the HW the map covers offsets 0-2: only offset 2 of key k survives there; from the HW
    # on nothing is touched.
    assert [o for o, _, _ in all_records(log)] == [2, *range(3, 40)]


def test_crash_during_cleaning_leaves_a_loadable_log(tmp_path: Path, clock: ManualClock) -> None:
    for crash_point in range(0, 6):
        fs = CrashingFileSystem()
        d = tmp_path / f"run{crash_point}"
        manager = LogManager([d], COMPACT, clock, fs=fs)
        log = manager.get_or_create_log("c", 0)
        history = []
        for i in range(60):
            info = log.append(batch([(b"k%d" % (i % 4), b"v%d" % i)]), 0)
            history.append((info.first_offset, b"k%d" % (i % 4), b"v%d" % i))
        log.high_watermark = log.log_end_offset
        log.flush()
        manager.checkpoint()
        calls = {"n": 0}
        original = fs.replace

        def replace(src: Path, dst: Path, _orig=original, _calls=calls, _point=crash_point, _fs=fs) -> None:  # type: ignore[no-untyped-def]
            if _calls["n"] == _point:
                _fs.crashed = True
                raise SimulatedCrash()
            _calls["n"] += 1
            _orig(src, dst)

        fs.replace = replace  # type: ignore[method-assign]
        with contextlib.suppress(SimulatedCrash):
            manager.run_cleaner_once()
        fs.crashed = False
        fs.replace = original  # type: ignore[method-assign]
        again = LogManager([d], COMPACT, clock)
        reloaded = again.get_log("c", 0)
        assert reloaded is not None, again.offline
        assert latest([(o, k, v) for o, k, v in all_records(reloaded)]) == latest(history)
        names = [p.name for p in (d / "c-0").iterdir()]
        assert not any(n.endswith((".swap", ".cleaned")) for n in names)
        again.close()


def test_min_and_max_compaction_lag(open_log: OpenLog, clock: ManualClock) -> None:
    config = COMPACT.replace(min_cleanable_dirty_ratio=0.99, min_compaction_lag_ms=10_000)
    log = open_log(config)
    for i in range(30):
        log.append(batch([(b"k", b"%d" % i)], ts=clock.now_ms), 0)
    log.high_watermark = log.log_end_offset
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and r.first_uncleanable == 0  # everything younger than the lag
    clock.advance(20_000)
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and r.first_uncleanable == log.active_segment.base_offset
    assert r.dirty_bytes > 0 and not r.needs_compaction_now
    log.update_config(config.replace(max_compaction_lag_ms=15_000))
    r = cleanable_range(log, clock.milliseconds())
    assert r is not None and r.needs_compaction_now  # ratio 1.0 is not > 0.99, but overdue
    assert Cleaner().clean(log, clock.milliseconds()) is not None
