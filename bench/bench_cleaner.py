"""Append latency on a log while the cleaner compacts it: prints figures, asserts nothing.

    PYTHONPATH=<tree> .venv/bin/python bench/bench_cleaner.py [--mib 145] [--runs 3] [--dir DIR]

Writes ``--mib`` MiB of keyed records (1 KiB values, 10 per batch, each key written about 8
times, 16 MiB segments) to a compacted log, rolls it, then runs one forced cleaning pass in a
worker thread while the main thread appends a one-record batch to the same log every
millisecond (an offset commit to a compacting ``__consumer_offsets`` partition). Prints the
pass's duration and the appends' worst, p99 and median latency during it.

The tree measured is whatever ``PYTHONPATH`` names (this script adds nothing to ``sys.path``),
so the same script measures two branches. Both threads run Python, so even a cleaner that
never holds the lock delays an append while it holds the GIL (up to the interpreter's switch
interval, ``sys.getswitchinterval()``, 5 ms, unless it hands the GIL over sooner). On a shared
machine the worst figure also catches the scheduler: run it several times.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from protocol.records.record import Record, build_batch
from storage.cleaner import Cleaner
from storage.clock import SystemClock
from storage.config import LogConfig
from storage.log import Log

VALUE = 1024
PER_BATCH = 10


def keyed_batch(first_key: int, keys: int, seq: int) -> bytearray:
    records = [
        Record(i, 0, b"key-%08d" % ((first_key + i) % keys), (b"%08d" % seq) * (VALUE // 8), [])
        for i in range(PER_BATCH)
    ]
    return bytearray(build_batch(records, base_timestamp=int(time.time() * 1000)))


def commit_batch(n: int) -> bytes:
    return bytes(build_batch([Record(0, 0, b"commit-%d" % (n % 50), b"x" * 40, [])], base_timestamp=0))


def fill(log: Log, mib: int) -> None:
    total = mib << 20
    per_batch = PER_BATCH * (VALUE + 30)
    batches = total // per_batch
    keys = max(PER_BATCH, batches * PER_BATCH // 8)
    for n in range(batches):
        log.append(keyed_batch(n * PER_BATCH, keys, n), 0)
    log.roll()
    log.high_watermark = log.log_end_offset


def one_run(directory: Path, mib: int) -> tuple[float, list[float], int, int]:
    config = LogConfig(
        cleanup_policy="compact",
        segment_bytes=16 << 20,
        min_cleanable_dirty_ratio=0.0,
    )
    log = Log.open(directory / "bench-0", config, clock=SystemClock())
    try:
        fill(log, mib)
        size_before = log.size_in_bytes()
        commit = commit_batch(0)
        done = threading.Event()
        elapsed: list[float] = []

        def clean() -> None:
            start = time.perf_counter()
            try:
                Cleaner().clean(log, int(time.time() * 1000), force=True)
            finally:
                elapsed.append(time.perf_counter() - start)
                done.set()

        latencies: list[float] = []
        worker = threading.Thread(target=clean)
        worker.start()
        while not done.is_set():
            data = bytearray(commit)
            t0 = time.perf_counter()
            log.append(data, 0)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.001)
        worker.join()
        return elapsed[0], latencies, size_before, log.size_in_bytes()
    finally:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=145)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    import storage

    switch_ms = sys.getswitchinterval() * 1000
    print(f"storage from {Path(storage.__file__).parent}; switch interval {switch_ms:.0f} ms")
    for run in range(args.runs):
        directory = Path(tempfile.mkdtemp(prefix="bench-cleaner-", dir=args.dir))
        try:
            pass_s, lat, before, after = one_run(directory, args.mib)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        lat_ms = sorted(x * 1000 for x in lat)
        p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
        print(
            f"run {run + 1}: pass {pass_s:.2f} s, {before / 2**20:.0f} -> {after / 2**20:.0f} MiB; "
            f"{len(lat_ms)} appends during it: worst {lat_ms[-1]:.1f} ms, p99 {p99:.2f} ms, "
            f"median {statistics.median(lat_ms):.3f} ms"
        )


if __name__ == "__main__":
    main()
