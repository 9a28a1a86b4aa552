from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import InconsistentTopicIdError, LogDeletedError, StorageCorruptionError
from storage.manager import LogManager
from tests.storage.batches import batch_of_size, make_batch


def test_restart_after_clean_close_and_after_crash(tmp_path: Path, clock: ManualClock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    config = LogConfig(segment_bytes=1000)
    manager = LogManager(dirs, config, clock)
    tid = uuid.uuid4()
    logs = [manager.get_or_create_log("t", p, tid) for p in range(4)]
    assert {log.directory.parent for log in logs} == set(dirs)  # spread over the log dirs
    for log in logs:
        for _ in range(15):
            log.append(batch_of_size(100), 2)
        log.high_watermark = 12
    manager.close()
    assert all((d / ".kafka_cleanshutdown").exists() for d in dirs)

    again = LogManager(dirs, config, clock)
    assert not any((d / ".kafka_cleanshutdown").exists() for d in dirs)  # removed once loaded
    for p in range(4):
        log = again.get_log("t", p)
        assert log is not None and log.topic_id == tid
        assert (log.log_end_offset, log.high_watermark, log.recovery_point) == (15, 12, 15)
        assert log.load_result.recovered_segments == 0
    for log in again.all_logs():
        log.append(make_batch(1), 2)
    again.checkpoint()
    # "crash": no close. The next start recovers from the checkpointed recovery points.
    third = LogManager(dirs, config, clock)
    for log in third.all_logs():
        assert log.log_end_offset == 16
        assert log.load_result.recovered_segments >= 1
    third.close()


def test_topic_id_and_config_handling(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(), clock)
    tid = uuid.uuid4()
    log = manager.get_or_create_log("t", 0, tid)
    with pytest.raises(InconsistentTopicIdError):
        manager.get_or_create_log("t", 0, uuid.uuid4())
    compact = LogConfig(cleanup_policy="compact")
    assert manager.get_or_create_log("t", 0, tid, compact) is log and log.config.compact
    with pytest.raises(ValueError):
        manager.get_or_create_log("../evil", 0)
    manager.close()


def test_delete_log_renames_then_removes(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(file_delete_delay_ms=1000), clock)
    log = manager.get_or_create_log("gone", 1)
    log.append(make_batch(1), 0)
    assert manager.delete_log("gone", 1)
    assert manager.get_log("gone", 1) is None
    with pytest.raises(LogDeletedError):
        log.append(make_batch(1), 0)
    pending = [p.name for p in tmp_path.iterdir() if p.name.endswith("-delete")]
    assert (
        len(pending) == 1 and pending[0].startswith("gone-1.") and len(pending[0]) == len("gone-1.") + 32 + 7
    )
    clock.advance(1001)
    manager.run_retention_once()
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    # re-created fresh
    assert manager.get_or_create_log("gone", 1).log_end_offset == 0
    manager.close()


def test_corrupt_log_is_offline_and_not_marked_clean(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(), clock)
    log = manager.get_or_create_log("t", 0)
    for _ in range(5):
        log.append(batch_of_size(200), 0)
    log.flush()
    manager.checkpoint()  # recovery point 5
    ok = manager.get_or_create_log("u", 0)
    ok.append(make_batch(1), 0)
    seg = tmp_path / "t-0" / "00000000000000000000.log"
    data = bytearray(seg.read_bytes())
    data[300] ^= 0xFF
    seg.write_bytes(bytes(data))
    again = LogManager([tmp_path], LogConfig(), clock)
    assert ("t", 0) in again.offline
    with pytest.raises(StorageCorruptionError):
        again.get_or_create_log("t", 0)
    assert again.get_log("u", 0) is not None
    again.close()
    assert not (tmp_path / ".kafka_cleanshutdown").exists()


def test_flush_due_honours_flush_ms_and_rolls(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(flush_ms=1000, segment_bytes=500), clock)
    log = manager.get_or_create_log("t", 0)
    log.append(batch_of_size(200), 0)
    assert manager.flush_due() == 0
    clock.advance(1000)
    assert manager.flush_due() == 1 and log.recovery_point == 1
    for _ in range(3):
        log.append(batch_of_size(200), 0)  # rolls at offset 3
    assert log.segment_count == 2
    manager.default_config = LogConfig()
    log.update_config(LogConfig(segment_bytes=500))  # flush.ms back to "never"
    assert manager.flush_due() == 1 and log.recovery_point == log.active_segment.base_offset
    manager.close()


def test_many_partitions_with_few_descriptors(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(segment_bytes=300), clock, max_open_files=16)
    logs = [manager.get_or_create_log("t", p) for p in range(200)]
    for _ in range(3):
        for log in logs:
            log.append(batch_of_size(120), 0)
            assert manager.handles.open_count() <= 17
    for log in logs:
        assert log.read_bytes(0, 1 << 20)
    assert manager.handles.open_count() <= 17
    manager.close()
    assert manager.handles.open_count() <= 17


def test_dump_tool(tmp_path: Path, clock: ManualClock) -> None:
    manager = LogManager([tmp_path], LogConfig(index_interval_bytes=100), clock)
    log = manager.get_or_create_log("t", 0, uuid.uuid4())
    for _ in range(4):
        log.append(batch_of_size(150, records=2), 3)
    manager.close()
    seg = tmp_path / "t-0" / "00000000000000000000.log"
    with open(seg, "ab") as f:
        f.write(b"\x00\x01garbage")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "storage.dump",
            str(tmp_path / "t-0"),
            "--deep-iteration",
            "--index-sanity-check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    text = out.stdout
    assert out.returncode == 1
    assert "baseOffset: 2 lastOffset: 3 count: 2" in text and "partitionLeaderEpoch: 3" in text
    assert text.count("isvalid: true") == 4
    assert "| offset: 7 " in text
    assert "offset: 3 position: 150" in text and "offset: 7 position: 450" in text
    assert "Found invalid data at position 600" in text
    assert "00000000000000000000.index: ok" in text
    assert "topic_id:" in text and "0\n1\n3 0\n" in text


def test_rolled_segments_are_flushed_in_background_and_checkpointed(
    tmp_path: Path, clock: ManualClock
) -> None:
    # Kafka's defaults: no flush.messages, no flush.ms. Each roll hands the flush of the segment
    # it closed to the background runner, so the recovery point follows the rolls and an unclean
    # restart recovers only the active segment.
    pending: list[Callable[[], None]] = []
    manager = LogManager([tmp_path], LogConfig(segment_bytes=500), clock, background=pending.append)
    log = manager.get_or_create_log("t", 0)
    for _ in range(7):
        log.append(batch_of_size(200), 0)  # segments [0,1] [2,3] [4,5] [6]
    assert log.segment_count == 4 and log.recovery_point == 0
    while pending:
        pending.pop(0)()
    assert log.recovery_point == log.active_segment.base_offset == 6
    manager.checkpoint()
    # A crash: no close, so no clean-shutdown marker.
    again = LogManager([tmp_path], LogConfig(segment_bytes=500), clock)
    reopened = again.get_log("t", 0)
    assert reopened is not None and reopened.log_end_offset == 7
    assert reopened.load_result.recovered_segments == 1
    again.close()


def test_logs_created_from_many_threads_at_once(tmp_path: Path, clock: ManualClock) -> None:
    # Creation runs outside the manager's lock: every thread asking for a partition gets the one
    # log created for it, however the threads interleave.
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = LogManager(dirs, LogConfig(), clock)
    tid = uuid.uuid4()
    results: dict[int, list[object]] = {p: [] for p in range(12)}
    start = threading.Barrier(6)

    def create_all(offset: int) -> None:
        start.wait(10)
        for i in range(12):
            p = (i + offset) % 12
            results[p].append(manager.get_or_create_log("t", p, tid))

    threads = [threading.Thread(target=create_all, args=(n * 2,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(len(found) == 6 and all(log is found[0] for log in found) for found in results.values())
    assert sorted(len(list(d.glob("t-*"))) for d in dirs) == [6, 6]  # spread evenly, no stray dirs
    manager.close()


def test_the_dir_offline_listener_hears_each_dir_once_and_cannot_break_the_manager(
    tmp_path: Path, clock: ManualClock
) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = LogManager(dirs, LogConfig(), clock)
    heard: list[Path] = []

    def listener(log_dir: Path) -> None:
        heard.append(log_dir)
        raise RuntimeError("a listener bug")

    manager.on_dir_offline = listener
    assert manager.mark_dir_offline(dirs[0], "writing", OSError(5, "I/O error"))
    assert not manager.mark_dir_offline(dirs[0], "writing again", OSError(5, "I/O error"))
    assert manager.mark_dir_offline(dirs[1], "writing", OSError(28, "No space left on device"))
    assert heard == dirs
    assert set(manager.offline_dirs) == set(dirs)
    manager.abandon()
