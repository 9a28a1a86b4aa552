"""A disk error takes one log dir offline; the manager's periodic work goes on with the others."""

from __future__ import annotations

import errno
import uuid
from pathlib import Path

import pytest

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import LogDirOfflineError
from storage.manager import LogManager
from tests.storage.batches import make_batch
from tests.storage.faults import FaultyDiskFileSystem


def test_a_failed_checkpoint_takes_only_its_dir_offline_and_the_next_start_recovers_it(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    fs = FaultyDiskFileSystem()
    manager = LogManager(dirs, LogConfig(), clock, fs=fs)
    tid = uuid.uuid4()
    logs = [manager.get_or_create_log("t", p, tid) for p in range(2)]
    assert [log.directory.parent for log in logs] == dirs
    for log in logs:
        log.append(make_batch(3), 1)

    fs.fail_writes(dirs[0], errno.EIO)
    manager.checkpoint()  # must not raise
    assert manager.offline_dirs.keys() == {dirs[0]}
    assert any(r.levelname == "ERROR" and str(dirs[0]) in r.getMessage() for r in caplog.records)
    assert manager.is_offline("t", 0) and not manager.is_offline("t", 1)
    assert (dirs[1] / "recovery-point-offset-checkpoint").exists()
    assert [log.partition for log in manager.all_logs()] == [1]
    with pytest.raises(LogDirOfflineError):
        manager.get_or_create_log("t", 0, tid)
    # New logs go to the dirs still online; the periodic work skips the failed one.
    assert manager.get_or_create_log("t", 2, tid).directory.parent == dirs[1]
    manager.flush_due()
    manager.run_retention_once()
    manager.run_cleaner_once()
    manager.close()
    assert fs.failures == 1
    assert (dirs[1] / ".kafka_cleanshutdown").exists()
    assert not (dirs[0] / ".kafka_cleanshutdown").exists(), "the failed dir must be recovered"

    again = LogManager(dirs, LogConfig(), clock)
    recovered = again.get_log("t", 0)
    assert recovered is not None and recovered.log_end_offset == 3
    again.close()


def test_every_dir_offline_keeps_the_manager_usable(tmp_path: Path, clock: ManualClock) -> None:
    fs = FaultyDiskFileSystem()
    manager = LogManager([tmp_path / "a"], LogConfig(), clock, fs=fs)
    manager.get_or_create_log("t", 0).append(make_batch(1), 0)
    fs.fail_fsyncs(tmp_path / "a", errno.EIO)
    manager.checkpoint()
    assert manager.online_dirs() == []
    with pytest.raises(LogDirOfflineError):
        manager.get_or_create_log("t", 1)
    manager.close()
