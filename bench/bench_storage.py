"""Storage benchmarks: prints figures, asserts nothing.

    .venv/bin/python bench/bench_storage.py [--dir DIR] [--mib 256]

1. Append throughput of 16 KiB batches through ``Log.append`` (validation, offset assignment,
   index maintenance, one pwrite per call) next to a plain ``dd``-style loop of ``os.write`` of
   the same buffers to a file in the same directory, in the same run: both loops in each of
   several rounds, the figure being the median of the per-round ratios. Both go to the page
   cache (Kafka's default: no fsync per append); a variant with one fsync at the end is printed.
2. Read / offset-lookup cost in a segment whose offset index has 10, 1,000 and 100,000 entries.
3. Reopen time of a log with 1,000 segments after a clean shutdown.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import crc32c

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.clock import SystemClock
from storage.config import LogConfig
from storage.log import Log
from storage.manager import LogManager


def make_batch(payload: int, records: int = 1, timestamp: int = 1_700_000_000_000) -> bytearray:
    """An uncompressed v2 batch of ``records`` records with ``payload`` value bytes in total."""

    def varint(v: int) -> bytes:
        zz = (v << 1) ^ (v >> 63)
        out = bytearray()
        while True:
            b = zz & 0x7F
            zz >>= 7
            out.append(b | (0x80 if zz else 0))
            if not zz:
                return bytes(out)

    per = payload // records
    body = bytearray()
    for i in range(records):
        rec = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(per) + os.urandom(per) + varint(0)
        body += varint(len(rec)) + rec
    after = struct.pack(">hiqqqhii", 0, records - 1, timestamp, timestamp, -1, -1, -1, records) + body
    return bytearray(struct.pack(">qiibI", 0, 9 + len(after), -1, 2, crc32c.crc32c(after)) + after)


#: Rounds of the append comparison. Each round writes the same bytes with both loops, one right
#: after the other (the order alternating), so a noisy neighbour slows both alike; the figure
#: that counts is the median of the per-round ratios (single rounds vary by 10-20% on a shared VM).
ROUNDS = 9


def _dd_run(root: Path, batch: bytearray, count: int) -> tuple[float, float]:
    """Seconds for ``count`` back-to-back ``os.write`` calls of ``batch``, and with a final fsync."""
    path = root / "dd.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t0 = time.perf_counter()
    for _ in range(count):
        os.write(fd, batch)
    t1 = time.perf_counter()
    os.fsync(fd)
    t2 = time.perf_counter()
    os.close(fd)
    os.unlink(path)
    return t1 - t0, t2 - t0


def _log_run(root: Path, batch: bytearray, count: int) -> tuple[float, float]:
    """Seconds for ``count`` ``Log.append`` calls of ``batch``, and with a final ``flush()``."""
    log_dir = root / "bench-0"
    log = Log.open(log_dir, LogConfig(), clock=SystemClock())
    append = log.append
    # The broker hands Log.append a memoryview of the request buffer (the produce decoder
    # makes it); so does the bench. The batch is rewritten in place each time (offsets).
    view = memoryview(batch)
    t0 = time.perf_counter()
    for _ in range(count):
        append(view, 0)
    t1 = time.perf_counter()
    log.flush()
    t2 = time.perf_counter()
    log.close()
    shutil.rmtree(log_dir)
    return t1 - t0, t2 - t0


def bench_append(root: Path, total_mib: int) -> None:
    batch = make_batch(16 * 1024 - 61 - 8)
    size = len(batch)
    count = total_mib * 1024 * 1024 // size
    mb = count * size / 1e6
    print(f"## append: {count} batches of {size} bytes ({count * size / 2**20:.0f} MiB) per run, page cache")
    runs: dict[str, list[tuple[float, float]]] = {"dd": [], "log": []}
    for round_no in range(ROUNDS):
        order = ("dd", "log") if round_no % 2 == 0 else ("log", "dd")
        for name in order:
            os.sync()  # start each run without the previous run's dirty pages being written back
            runs[name].append((_dd_run if name == "dd" else _log_run)(root, batch, count))
    ratios = sorted(d[0] / lg[0] for d, lg in zip(runs["dd"], runs["log"], strict=True))
    ratios_fsync = sorted(d[1] / lg[1] for d, lg in zip(runs["dd"], runs["log"], strict=True))
    dd = mb / min(t for t, _ in runs["dd"])
    lg = mb / min(t for t, _ in runs["log"])
    ddf = mb / min(t for _, t in runs["dd"])
    lgf = mb / min(t for _, t in runs["log"])
    print(f"dd-style os.write      : {dd:8.0f} MB/s   (best of {ROUNDS})")
    print(f"Log.append             : {lg:8.0f} MB/s   (best of {ROUNDS})")
    print(
        f"Log.append / dd        : {100 * statistics.median(ratios):.0f}% median of {ROUNDS} rounds "
        f"(range {100 * ratios[0]:.0f}-{100 * ratios[-1]:.0f}%; ratio of the bests {100 * lg / dd:.0f}%)"
    )
    print(f"dd-style + final fsync : {ddf:8.0f} MB/s")
    print(
        f"Log.append + flush()   : {lgf:8.0f} MB/s   "
        f"({100 * statistics.median(ratios_fsync):.0f}% of dd+fsync, median of rounds)"
    )
    print(f"Log.append per 16 KiB call: {1e6 * size / (lg * 1e6):.1f} us (best round)")


def bench_lookup(root: Path) -> None:
    print("## read / lookup cost by offset-index size (one segment, a batch indexed every entry)")
    batch = make_batch(8)
    for entries in (10, 1_000, 100_000):
        log_dir = root / f"lookup{entries}-0"
        log = Log.open(
            log_dir,
            LogConfig(index_interval_bytes=len(batch) * 4 - 1, segment_index_bytes=16 * 1024 * 1024),
            clock=SystemClock(),
        )
        for _ in range((entries + 1) * 4):
            log.append(batch, 0)
        seg = log.active_segment
        assert abs(seg.offset_index.entries - entries) <= 1, seg.offset_index.entries
        leo = log.log_end_offset
        rng = random.Random(1)
        probes = [rng.randrange(leo) for _ in range(20_000)]
        index = seg.offset_index
        t0 = time.perf_counter()
        for p in probes:
            index.lookup(p)
        t1 = time.perf_counter()
        for p in probes[:5000]:
            seg.translate_offset(p)
        t2 = time.perf_counter()
        for p in probes[:5000]:
            r = log.read(p, 1024)
            r.close()
        t3 = time.perf_counter()
        print(
            f"{index.entries:>7} entries: index lookup {1e6 * (t1 - t0) / len(probes):6.2f} us, "
            f"offset->position {1e6 * (t2 - t1) / 5000:6.2f} us, "
            f"read(offset, 1 KiB) {1e6 * (t3 - t2) / 5000:6.2f} us"
        )
        log.close()
        shutil.rmtree(log_dir)


def bench_reopen(root: Path) -> None:
    print("## reopen after clean shutdown")
    batch = make_batch(4000)
    log_dir = root / "reopen"
    log_dir.mkdir()
    manager = LogManager([log_dir], LogConfig(segment_bytes=3 * len(batch)), SystemClock())
    log = manager.get_or_create_log("r", 0)
    while log.segment_count < 1000:
        log.append(batch, 0)
    segments = log.segment_count
    manager.close()
    for attempt in range(3):
        t0 = time.perf_counter()
        again = LogManager([log_dir], LogConfig(segment_bytes=3 * len(batch)), SystemClock())
        t1 = time.perf_counter()
        reopened = again.get_log("r", 0)
        assert reopened is not None and reopened.segment_count == segments
        again.close()
        ms = 1000 * (t1 - t0)
        print(f"LogManager start, 1 log of {segments} segments: {ms:.1f} ms (run {attempt + 1})")
    shutil.rmtree(log_dir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=None, help="directory on the disk to measure")
    parser.add_argument("--mib", type=int, default=256, help="MiB appended per append run")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="brook-bench-"))
    try:
        print(f"# storage bench in {root} (python {sys.version.split()[0]})")
        bench_append(root, args.mib)
        bench_lookup(root)
        bench_reopen(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
