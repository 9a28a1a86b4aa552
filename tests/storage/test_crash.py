"""Kill a real writer process with SIGKILL at random moments, damage the tail on purpose, reopen.

Checked after every kill: every batch below the last offset the writer reported as fsync'd is
there byte for byte; every readable batch is whole and valid (offsets contiguous from the log
start); the log accepts appends again (the next writer run appends, and so does the test).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocol.records.batch import crc_is_valid, iter_batches
from storage.clock import ManualClock
from storage.manager import LogManager
from tests.storage.crash_writer import CONFIG, TOPIC, expected_batch

REPO = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("STORAGE_CRASH_KILLS", "50"))


def spawn(directory: Path, seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_writer", str(directory), str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    """The writer's output up to and including its ``READY`` line (it has recovered the log and is
    about to append), read from the raw pipe so that ``communicate`` later gets all the rest."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    # poll, not select: in the whole suite this process may hold descriptors above FD_SETSIZE.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while b"READY" not in seen or not seen.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"the writer was not ready in {timeout} s: {seen!r}"
        if poller.poll(left * 1000):
            chunk = os.read(fd, 4096)
            assert chunk, f"the writer exited before it was ready: {seen!r}"
            seen += chunk
    return seen


def damage_tail(part: Path, flushed: int, rng: random.Random) -> str:
    """Tear or pollute the part of the last segment that was not fsync'd."""
    active = sorted(part.glob("*.log"))[-1]
    data = active.read_bytes()
    safe = 0  # bytes of batches wholly below the flushed offset must not be touched
    for pos, header in iter_batches(data):
        if header.last_offset < flushed:
            safe = pos + header.size
    mode = "garbage" if len(data) <= safe else rng.choice(["truncate", "garbage", "zeros"])
    with open(active, "r+b") as f:
        if mode == "truncate":
            f.truncate(rng.randrange(safe, len(data)))
        elif mode == "garbage":
            f.seek(rng.randrange(safe, len(data) + 1))
            f.write(rng.randbytes(rng.randrange(1, 3000)))
        else:
            f.seek(len(data))
            f.write(bytes(rng.randrange(1, 5000)))
    return mode


def verify(directory: Path, flushed: int) -> int:
    manager = LogManager([directory], CONFIG, ManualClock(), max_open_files=8)
    log = manager.get_log(TOPIC, 0)
    assert log is not None, manager.offline
    assert log.log_end_offset >= flushed
    expected_next = log.log_start_offset
    for seg in log.segments():
        data = seg.pread(seg.size, 0)
        end = 0
        for pos, header in iter_batches(data):
            assert header.base_offset == expected_next, (header.base_offset, expected_next)
            assert crc_is_valid(data, pos, header)
            assert data[pos : pos + header.size] == expected_batch(header.base_offset)
            expected_next = header.last_offset + 1
            end = pos + header.size
        assert end == len(data) == seg.size  # nothing partial is readable
    assert expected_next == log.log_end_offset
    leo = log.log_end_offset
    # Reading through the public API returns the same batches.
    with log.read(max(log.log_start_offset, leo - 1), 1 << 20) as r:
        if leo > log.log_start_offset:
            assert r.slice is not None and r.slice.read()
    for lg in manager.all_logs():
        lg.mark_deleted()  # leave without a clean-shutdown marker: the next start recovers again
    return leo


def test_sigkill_writer_repeatedly(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    flushed = 0
    kills = 0
    damaged = 0
    grew = 0
    last_leo = 0
    for i in range(KILLS):
        proc = spawn(tmp_path, i)
        # The random moment counts from the writer's start of appending, not from its spawn: under
        # load the interpreter's start alone can outlast the whole range.
        head = wait_ready(proc)
        time.sleep(rng.uniform(0.05, 0.45))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        kills += 1
        for line in (head + out).decode().splitlines():
            if line.startswith("FLUSHED "):
                flushed = max(flushed, int(line.split()[1]))
        part = tmp_path / f"{TOPIC}-0"
        if part.exists() and any(part.glob("*.log")) and rng.random() < 0.5:
            damage_tail(part, flushed, rng)
            damaged += 1
        leo = verify(tmp_path, flushed)
        grew += leo > last_leo
        last_leo = leo
        print(f"kill {i}: flushed={flushed} leo={leo}")
    assert kills >= 50 or kills == KILLS
    assert damaged >= KILLS // 4 and grew >= KILLS // 4  # the scenario really ran
    manager = LogManager([tmp_path], CONFIG, ManualClock())
    log = manager.get_log(TOPIC, 0)
    assert log is not None
    leo = log.log_end_offset
    info = log.append(expected_batch(leo), 0)
    assert info.first_offset == leo
    manager.close()
    assert verify(tmp_path, flushed) == info.last_offset + 1
