"""Record-batch codec figures: encode/decode throughput per codec, legacy conversion.

Prints numbers only (no assertions). Run: .venv/bin/python bench/bench_records.py
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from protocol.records import (
    Record,
    build_batch,
    build_message_set,
    decode_batch,
    downconvert,
    iter_batches,
    iter_legacy_messages,
    upconvert_to_v2,
)
from protocol.records.compression import CODEC_NAMES


def timed(fn: Callable[[], object], min_seconds: float = 0.3) -> float:
    """Seconds per call (best of repeated runs)."""
    fn()
    best = float("inf")
    deadline = time.perf_counter() + min_seconds
    while True:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return best


def main() -> None:
    n = 1000
    records = [
        Record(i, i * 3, b"key-%06d" % i, (b"value %d " % i) * 10, [("trace", b"abc")] if i % 4 == 0 else [])
        for i in range(n)
    ]
    raw_size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
    print(f"{n} records, {raw_size / 1024:.0f} KiB of keys+values per batch")
    print(f"{'codec':8} {'batch KiB':>10} {'encode rec/s':>14} {'decode rec/s':>14} {'decode MiB/s':>13}")
    for codec, name in CODEC_NAMES.items():
        buf = build_batch(records, base_timestamp=1_700_000_000_000, compression=codec)
        enc = timed(lambda c=codec: build_batch(records, base_timestamp=1_700_000_000_000, compression=c))
        dec = timed(lambda b=buf: decode_batch(b))
        mib_s = raw_size / dec / 2**20
        print(f"{name:8} {len(buf) / 1024:10.1f} {n / enc:14,.0f} {n / dec:14,.0f} {mib_s:13.1f}")

    many = b"".join(build_batch(records[:10], base_offset=i * 10, base_timestamp=0) for i in range(1000))
    it = timed(lambda: sum(1 for _ in iter_batches(many)))
    print(f"iter_batches (header view only): {1000 / it:,.0f} batches/s")

    msgs = [(i, 1_700_000_000_000 + i, r.key, r.value) for i, r in enumerate(records)]
    for magic in (0, 1):
        for codec in (0, 1):
            legacy = build_message_set(msgs, magic=magic, compression=codec)
            rd = timed(lambda b=legacy: sum(1 for _ in iter_legacy_messages(b)))
            up = timed(lambda b=legacy: upconvert_to_v2(b, now_ms=0))
            print(
                f"legacy magic {magic} {CODEC_NAMES[codec]:5}: read {n / rd:10,.0f} msg/s, "
                f"upconvert {n / up:10,.0f} msg/s"
            )
    stored = build_batch(records, base_offset=5000, base_timestamp=1_700_000_000_000, compression=1)
    for magic in (0, 1):
        dc = timed(lambda m=magic: downconvert(stored, m))
        print(f"downconvert gzip v2 -> magic {magic}: {n / dc:10,.0f} rec/s")


if __name__ == "__main__":
    main()
