"""A disk error takes one log dir offline; the manager's periodic work goes on with the others."""

from __future__ import annotations

import errno
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import LogDeletedError, LogDirOfflineError
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


_DIRS = 3
_PARTITIONS = 6
_op = st.one_of(
    st.tuples(st.just("append"), st.integers(0, _PARTITIONS - 1)),
    st.tuples(st.sampled_from(["fail_writes", "fail_fsyncs"]), st.integers(0, _DIRS - 1)),
    st.tuples(st.sampled_from(["flush", "checkpoint", "retention", "roll"]), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=40))
def test_any_sequence_of_disk_faults_keeps_acknowledged_records_and_other_dirs_serving(
    ops: list[tuple[str, int]],
) -> None:
    """Whatever fails when: no call raises but the failing append itself; only dirs that failed
    go offline; a log in an online dir holds exactly its acknowledged records; after a restart on
    a healthy disk every log holds at least its acknowledged records (a failed append may have
    left its batch, never a torn one)."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"d{i}" for i in range(_DIRS)]
        fs = FaultyDiskFileSystem()
        clock = ManualClock(1_700_000_000_000)
        manager = LogManager(dirs, LogConfig(), clock, fs=fs)
        logs = [manager.get_or_create_log("t", p) for p in range(_PARTITIONS)]
        acked = [0] * _PARTITIONS
        armed: set[Path] = set()
        for op, arg in ops:
            if op == "append":
                log = logs[arg]
                if manager.is_offline("t", arg):
                    continue  # the broker answers KAFKA_STORAGE_ERROR without calling the log
                try:
                    log.append(make_batch(1), 0)
                    acked[arg] += 1
                except OSError as exc:
                    manager.mark_offline_for(log, "appending", exc)
            elif op in ("fail_writes", "fail_fsyncs"):
                getattr(fs, op)(dirs[arg], errno.EIO)
                armed.add(dirs[arg])
            elif op == "flush":
                manager.flush_due()
            elif op == "checkpoint":
                manager.checkpoint()
            elif op == "retention":
                manager.run_retention_once()
            else:
                for log in manager.all_logs():
                    try:
                        log.roll()
                    except OSError as exc:
                        manager.mark_offline_for(log, "rolling", exc)
                    except LogDeletedError:
                        continue  # its dir went offline during this loop
            assert set(manager.offline_dirs) <= armed
            for p, log in enumerate(logs):
                if not manager.is_offline("t", p):
                    assert log.log_end_offset == acked[p]
            assert {(log.topic, log.partition) for log in manager.all_logs()} == {
                ("t", p) for p in range(_PARTITIONS) if not manager.is_offline("t", p)
            }
        manager.close()

        again = LogManager(dirs, LogConfig(), clock)
        for p in range(_PARTITIONS):
            log = again.get_log("t", p)
            assert log is not None
            assert acked[p] <= log.log_end_offset <= acked[p] + 1
        again.close()
