"""Record-scan benchmark (``protocol.records.validate``): prints figures, asserts nothing.

    .venv/bin/python bench/bench_validate.py [--records 9000] [--rounds 7] [--pure]

The shape of ``make bench`` (bench/workloads.py): librdkafka batches of up to 1 MB holding
100-byte values, no key, uncompressed; plus the same records lz4- and zstd-compressed.

1. ns per record of ``scan_records`` alone (uncompressed bytes), and of decompress + scan.
2. ns per message of ``Log.append`` of such a batch (page cache, no fsync), with the record scan
   and, for comparison, with the scan replaced by a no-op (what the append cost before it).

``--pure`` loads the pure-Python module even when the mypyc-compiled one is built. Figures are
the median of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.records import LZ4, NONE, ZSTD, Record, build_batch
from protocol.records import validate as compiled_or_pure
from protocol.records.batch import RECORD_BATCH_OVERHEAD
from protocol.records.compression import decompress
from storage.clock import SystemClock
from storage.config import LogConfig
from storage.log import Log

BASE_TS = 1_700_000_000_000
HOUR = 3_600_000


def pure_module() -> ModuleType:
    path = Path(compiled_or_pure.__file__ or "").with_name("validate.py")
    spec = importlib.util.spec_from_file_location("validate_pure", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch(records: int, codec: int) -> bytes:
    recs = [Record(i, i // 50, None, bytes(100)) for i in range(records)]
    return build_batch(recs, base_timestamp=BASE_TS, compression=codec)


def median_ns(fn: object, rounds: int, per: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / per


def bench_scan(mod: ModuleType, records: int, rounds: int) -> None:
    scan = mod.scan_records
    for codec, name in ((NONE, "none"), (LZ4, "lz4"), (ZSTD, "zstd")):
        data = batch(records, codec)
        payload = data[RECORD_BATCH_OVERHEAD:]
        raw = payload if codec == NONE else decompress(codec, payload)

        def scan_only(raw: bytes = raw) -> None:
            scan(raw, 0, len(raw), records, BASE_TS, False, False, 0, 0)

        def full(payload: bytes = payload, codec: int = codec) -> None:
            raw = payload if codec == NONE else decompress(codec, payload)
            scan(raw, 0, len(raw), records, BASE_TS, False, True, BASE_TS - HOUR, BASE_TS + HOUR)

        print(
            f"  {name:5s} scan {median_ns(scan_only, rounds, records):7.1f} ns/record   "
            f"decompress+scan (timestamp limits) {median_ns(full, rounds, records):7.1f} ns/record"
        )


def bench_append(records: int, rounds: int, scan_off: bool) -> float:
    data = batch(records, NONE)
    tmp = Path(tempfile.mkdtemp())
    try:
        log = Log.open(tmp / "t-0", LogConfig(segment_bytes=1 << 30), clock=SystemClock())
        if scan_off:
            import storage.log as storage_log

            saved = storage_log.scan_records
            storage_log.scan_records = lambda *a: (BASE_TS, True, [])  # type: ignore[assignment]
        try:
            times = []
            for _ in range(rounds):
                buf = bytearray(data)
                t0 = time.perf_counter_ns()
                log.append(buf, 0)
                times.append(time.perf_counter_ns() - t0)
        finally:
            if scan_off:
                storage_log.scan_records = saved
        log.close()
    finally:
        shutil.rmtree(tmp)
    return statistics.median(times) / records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=9000, help="records per batch (~1 MB)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pure", action="store_true", help="the pure-Python scanner even if compiled")
    args = parser.parse_args()
    compiled = (compiled_or_pure.__file__ or "").endswith(".so")
    print(f"scanner module: {compiled_or_pure.__file__} ({'mypyc' if compiled else 'pure Python'})")
    mods = (
        [("pure", pure_module())]
        if args.pure or not compiled
        else [("mypyc", compiled_or_pure), ("pure", pure_module())]
    )
    for label, mod in mods:
        print(f"{label}:")
        bench_scan(mod, args.records, args.rounds)
    with_scan = bench_append(args.records, args.rounds, scan_off=False)
    without = bench_append(args.records, args.rounds, scan_off=True)
    print(
        f"Log.append, {args.records} x 100 B: {with_scan:6.1f} ns/message with the scan, "
        f"{without:6.1f} without"
    )


if __name__ == "__main__":
    main()
