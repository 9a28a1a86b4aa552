"""Start-up time with and without producer-state snapshots: prints figures, asserts nothing.

    .venv/bin/python bench/bench_startup.py [--dir DIR] [--partitions 1000] [--total-gib 10]
        [--segment-mib 1] [--batch-kib 16] [--producers 5] [--baseline /work/main] [--keep]

1. A writer process (this tree's code) fills ``--partitions`` partitions with ``--total-gib``
   of idempotent batches from ``--producers`` producer ids (each writes to every partition),
   rolling every ``--segment-mib``; it flushes and checkpoints, then is killed with SIGKILL.
2. Each measurement is a fresh process that opens every log, producer state included, and
   reports the wall time of that alone; before each, the data files are evicted from the page
   cache (``posix_fadvise(DONTNEED)``, no root needed), so reads come from the disk. Measured:
   after the kill -9 (recovery points at the log end, so segment recovery costs nothing and
   the difference is producer state): the baseline tree (``--baseline``, today's behaviour:
   every batch header of every log is scanned), this tree with its snapshots, this tree with
   the snapshots deleted; then after a clean stop: this tree, and the baseline.
Every run prints a digest of the rebuilt state (producers, sum of last sequences), which must
agree between variants. The data is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
TOPIC = "bench"


def child_env(code_root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code_root)}


# -- writer ------------------------------------------------------------------------------------------


def write(args: argparse.Namespace) -> None:
    import crc32c

    from protocol.records import Record, build_batch
    from protocol.records.batch import iter_batches
    from storage import LogConfig, LogManager, SystemClock

    config = LogConfig(segment_bytes=args.segment_mib << 20)
    manager = LogManager([Path(args.dir)], config, SystemClock(), max_open_files=256)
    value = bytes(1000)
    records_per_batch = max(1, (args.batch_kib << 10) // 1010)
    template = build_batch(
        [Record(i, 0, None, value, []) for i in range(records_per_batch)], base_timestamp=0
    )
    body = bytes(template[61:])
    per_partition = int(args.total_gib * 2**30) // args.partitions
    batches_per_partition = max(1, per_partition // len(template))
    tail = struct.Struct(">hiqqqhii")
    head = struct.Struct(">qiibI")
    now = int(time.time() * 1000)
    for p in range(args.partitions):
        log = manager.get_or_create_log(TOPIC, p)
        state = log.producer_state
        sequences = [0] * args.producers
        for i in range(batches_per_partition):
            k = i % args.producers
            after_crc = (
                tail.pack(0, records_per_batch - 1, now, now, 1000 + k, 0, sequences[k], records_per_batch)
                + body
            )
            data = bytearray(head.pack(0, len(after_crc) + 9, -1, 2, crc32c.crc32c(after_crc)) + after_crc)
            info = log.append(data, 0)
            ((_, header),) = list(iter_batches(data))
            state.update(header, info.first_offset)
            sequences[k] += records_per_batch
        log.flush()
    manager.checkpoint()
    print(f"DONE {batches_per_partition} batches of {len(template)} bytes per partition", flush=True)
    time.sleep(3600)


# -- one measured start-up --------------------------------------------------------------------------


def open_all(args: argparse.Namespace) -> None:
    from storage import LogConfig, LogManager, SystemClock

    started = time.perf_counter()
    manager = LogManager(
        [Path(args.dir)], LogConfig(segment_bytes=args.segment_mib << 20), SystemClock(), max_open_files=256
    )
    states = []
    replayed = 0
    try:
        import storage.producer_state  # noqa: F401  (this tree: the log restored its state)

        for log in manager.all_logs():
            states.append(log.producer_state)  # type: ignore[attr-defined]
            replayed += log.producer_state.batches_replayed  # type: ignore[attr-defined]
    except ImportError:  # the baseline: what ReplicaManager.load did, a scan of every header
        from broker.replica.producer_state import ProducerStateManager  # type: ignore[import-not-found]

        for log in manager.all_logs():
            state = ProducerStateManager()
            headers = [h for _, h in log.scan_batch_headers()]
            state.rebuild(headers)
            replayed += len(headers)
            states.append(state)
    elapsed = time.perf_counter() - started
    digest = (
        sum(len(s.producers) for s in states),
        sum(e.last_seq for s in states for e in s.producers.values()),
    )
    print(json.dumps({"seconds": elapsed, "logs": len(states), "replayed": replayed, "digest": digest}))
    sys.stdout.flush()
    if args.close:
        manager.close()
    else:
        os._exit(0)  # no clean shutdown: the directory stays "crashed"


# -- driver -------------------------------------------------------------------------------------------


def evict(directory: Path) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def measure(args: argparse.Namespace, code_root: Path, *, close: bool) -> dict[str, object]:
    evict(Path(args.dir))
    command = [sys.executable, str(Path(__file__).resolve()), "--open", "--dir", args.dir]
    command += ["--segment-mib", str(args.segment_mib)] + (["--close"] if close else [])
    out = subprocess.run(
        command, env=child_env(code_root), capture_output=True, check=True, timeout=3600
    ).stdout
    result: dict[str, object] = json.loads(out.decode().splitlines()[0])
    return result


def drive(args: argparse.Namespace) -> None:
    data = Path(args.dir)
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    baseline = Path(args.baseline)
    try:
        started = time.perf_counter()
        command = [sys.executable, str(Path(__file__).resolve()), "--write"]
        for name in ("dir", "partitions", "total_gib", "segment_mib", "batch_kib", "producers"):
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        writer = subprocess.Popen(command, env=child_env(HERE), stdout=subprocess.PIPE)
        assert writer.stdout is not None
        line = writer.stdout.readline().decode().strip()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
        if not line.startswith("DONE"):
            raise SystemExit(f"writer failed: {line!r}")
        size = sum(f.stat().st_size for f in data.rglob("*.log"))
        segments = sum(1 for _ in data.rglob("*.log"))
        print(
            f"built {size / 2**30:.2f} GiB, {segments} segments, {args.partitions} partitions "
            f"in {time.perf_counter() - started:.0f} s ({line}); writer killed with SIGKILL"
        )

        def show(label: str, r: dict[str, object]) -> None:
            print(
                f"  {label:<44} {r['seconds']:8.2f} s   batches replayed {r['replayed']:>9}   "
                f"state {r['digest']}"
            )

        print("start-up after kill -9 (cold page cache):")
        show("baseline (full header scan)", measure(args, baseline, close=False))
        show("snapshots", measure(args, HERE, close=False))
        for path in data.rglob("*.snapshot"):
            path.unlink()
        show("snapshots deleted (full scan, writes new)", measure(args, HERE, close=False))
        measure(args, HERE, close=True)  # a clean stop (not shown)
        print("start-up after a clean stop (cold page cache):")
        show("snapshots", measure(args, HERE, close=True))
        show("baseline (full header scan)", measure(args, baseline, close=True))
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/work/bench_startup_data")
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--total-gib", type=float, default=10)
    parser.add_argument("--segment-mib", type=int, default=1)
    parser.add_argument("--batch-kib", type=int, default=16)
    parser.add_argument("--producers", type=int, default=5)
    parser.add_argument("--baseline", default="/work/main")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--open", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--close", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write(args)
    elif args.open:
        open_all(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
