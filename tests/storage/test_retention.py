from __future__ import annotations

from pathlib import Path

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.manager import LogManager
from storage.retention import delete_old_segments
from tests.storage.batches import batch_of_size, make_batch
from tests.storage.conftest import OpenLog

DAY = 86_400_000


def test_retention_ms_deletes_whole_expired_segments_but_never_the_active_one(
    open_log: OpenLog, clock: ManualClock
) -> None:
    log = open_log(LogConfig(segment_bytes=1000, retention_ms=DAY))
    for i in range(25):  # 10 batches of 100 bytes per segment; timestamps one hour apart
        log.append(batch_of_size(100, base_timestamp=clock.now_ms + i * 3_600_000), 0)
    log.high_watermark = log.log_end_offset
    assert log.segment_count == 3
    clock.advance(DAY + 10 * 3_600_000)  # segment 0's newest record (hour 9) is > 1 day old
    assert delete_old_segments(log, clock.milliseconds()) == 1
    assert log.log_start_offset == 10 and log.segment_count == 2
    clock.advance(100 * DAY)  # everything expired: the active segment still stays
    assert delete_old_segments(log, clock.milliseconds()) == 1
    assert log.segment_count == 1 and log.log_start_offset == 20
    assert log.read_bytes(20, 10_000)


def test_retention_stops_at_the_high_watermark(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(segment_bytes=1000, retention_ms=1))
    for _ in range(35):
        log.append(batch_of_size(100, base_timestamp=0), 0)
    log.high_watermark = 15  # only segment 0 (offsets 0-9) is wholly below the HW
    assert delete_old_segments(log, clock.milliseconds()) == 1
    assert log.log_start_offset == 10


def test_retention_bytes(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(segment_bytes=1000, retention_bytes=2500, retention_ms=-1))
    for _ in range(45):
        log.append(batch_of_size(100, base_timestamp=clock.now_ms), 0)
    log.high_watermark = log.log_end_offset
    assert log.size_in_bytes() == 4500
    # Deleting a segment must leave at least retention.bytes: 4500 -> 3500 -> 2500.
    assert delete_old_segments(log, clock.milliseconds()) == 2
    assert log.size_in_bytes() == 2500


def test_compact_only_topics_are_not_deleted_by_time(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(segment_bytes=1000, retention_ms=1, cleanup_policy="compact"))
    for i in range(25):  # a compacted topic takes only records with a key
        log.append(make_batch([(b"k%d" % i, bytes(30))], base_timestamp=0), 0)
    log.high_watermark = log.log_end_offset
    assert log.segment_count > 1
    assert delete_old_segments(log, clock.milliseconds()) == 0


def test_manager_retention_renames_then_deletes_after_delay(tmp_path: Path, clock: ManualClock) -> None:
    config = LogConfig(segment_bytes=1000, retention_ms=1000, file_delete_delay_ms=60_000)
    manager = LogManager([tmp_path], config, clock)
    log = manager.get_or_create_log("t", 0)
    for _ in range(25):
        log.append(batch_of_size(100, base_timestamp=clock.now_ms), 0)
    log.high_watermark = log.log_end_offset
    clock.advance(2000)
    assert manager.run_retention_once() == 2
    part = tmp_path / "t-0"
    deleted = sorted(p.name for p in part.iterdir() if p.name.endswith(".deleted"))
    assert deleted == [
        "00000000000000000000.index.deleted",
        "00000000000000000000.log.deleted",
        "00000000000000000000.timeindex.deleted",
        "00000000000000000010.index.deleted",
        "00000000000000000010.log.deleted",
        # The producer snapshot taken when segment 10 was rolled goes with it (Kafka too).
        "00000000000000000010.snapshot.deleted",
        "00000000000000000010.timeindex.deleted",
    ]
    clock.advance(59_000)
    manager.run_retention_once()
    assert any(p.name.endswith(".deleted") for p in part.iterdir())
    clock.advance(2_000)
    manager.run_retention_once()
    assert not any(p.name.endswith(".deleted") for p in part.iterdir())
    manager.close()
