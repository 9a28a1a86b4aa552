"""Kill a real idempotent writer with SIGKILL, reopen, and check duplicate detection still works:
the producer state restored from snapshots plus the replayed tail equals a full rebuild, and
a retry of the last batch in the log is recognised with its original offsets."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocol.records.batch import iter_batches
from storage.clock import SystemClock
from storage.manager import LogManager
from storage.producer_state import OutOfOrderSequence, ProducerStateManager, list_snapshot_offsets
from tests.storage.batches import make_batch
from tests.storage.producer_crash_writer import CONFIG, PID, TOPIC

REPO = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("PRODUCER_CRASH_KILLS", "12"))


def spawn(directory: Path, seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.producer_crash_writer", str(directory), str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def verify(directory: Path) -> tuple[int, int]:
    """Reopen as after a crash; returns (batches replayed at load, batches in the log)."""
    manager = LogManager([directory], CONFIG, SystemClock(), max_open_files=8)
    log = manager.get_log(TOPIC, 0)
    assert log is not None, manager.offline
    try:
        headers = [h for _, h in log.scan_batch_headers()]
        state = log.producer_state
        replayed = state.batches_replayed
        full = ProducerStateManager()
        full.rebuild(headers)
        assert state.snapshot_entries() == full.snapshot_entries()
        if headers:
            last = headers[-1]
            duplicate = state.check(last)
            assert duplicate is not None, "a retry of the last appended batch must be a duplicate"
            assert (duplicate.first_offset, duplicate.last_offset) == (last.base_offset, last.last_offset)
            gap = make_batch(1, producer_id=PID, producer_epoch=0, base_sequence=last.last_sequence + 2)
            ((_, gap_header),) = list(iter_batches(gap))
            try:
                state.check(gap_header)
            except OutOfOrderSequence:
                pass
            else:
                raise AssertionError("a sequence gap must be rejected after the restart")
        return replayed, len(headers)
    finally:
        for lg in manager.all_logs():
            lg.mark_deleted()  # no clean-shutdown marker: the next start recovers again


def test_sigkill_idempotent_writer_then_duplicates_still_detected(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    replayed_total = 0
    batches_total = 0
    lost_snapshots = 0
    for i in range(KILLS):
        proc = spawn(tmp_path, i)
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # the writer recovered the log and its producer state
        assert ready.startswith(b"READY"), proc.communicate(timeout=30)[1].decode()
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        part = tmp_path / f"{TOPIC}-0"
        snapshots = list_snapshot_offsets(part)
        if snapshots and rng.random() < 0.3:
            # A roll snapshot not yet fsync'd may come back empty after a power loss.
            (part / f"{snapshots[-1]:020d}.snapshot").write_bytes(b"")
            lost_snapshots += 1
        replayed, batches = verify(tmp_path)
        replayed_total += replayed
        batches_total += batches
    assert batches_total > 0 and lost_snapshots > 0
    # Snapshots did their job: far fewer batches were replayed than the log held.
    print(f"replayed {replayed_total} of {batches_total} batches over {KILLS} restarts")
    assert replayed_total < batches_total // 2
