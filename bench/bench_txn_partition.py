"""Partition-side cost of transactions: prints figures, asserts nothing.

    .venv/bin/python bench/bench_txn_partition.py [--txns 200] [--records 1000] [--rounds 5]

Appends ``--txns`` batches of ``--records`` records (100-byte values) to a log, as the leader's
produce path does (producer-state check, ``Log.append``, producer-state update), in two ways:
idempotent batches, and transactional batches each followed by its COMMIT marker
(``Log.append_txn_marker``, what WriteTxnMarkers writes) with the high watermark moved after it,
so the LSO is computed and the transaction retired. Each round runs both loops on fresh logs in
the same directory (the order alternating); the figure is the median of the per-round ratios.
The coordinator's round trips (AddPartitionsToTxn, EndTxn) are not part of this: it is the
partition's share of the issue's "transactional >= 0.7x idempotent" figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.records.batch import read_header
from protocol.records.record import Record, build_batch
from storage.clock import SystemClock
from storage.config import LogConfig
from storage.log import Log


def batches(count: int, records: int, transactional: bool) -> list[bytes]:
    value = b"v" * 100
    now = int(time.time() * 1000)
    out = []
    for i in range(count):
        recs = [Record(j, 0, b"k%d" % j, value) for j in range(records)]
        out.append(
            build_batch(
                recs,
                base_timestamp=now,
                producer_id=7,
                producer_epoch=0,
                base_sequence=i * records,
                transactional=transactional,
            )
        )
    return out


def run(directory: Path, data: list[bytes], transactional: bool) -> float:
    """Seconds to append ``data`` (and a marker after each batch when ``transactional``)."""
    log = Log.open(directory, LogConfig(), clock=SystemClock())
    try:
        state = log.producer_state
        start = time.perf_counter()
        for raw in data:
            buf = bytearray(raw)
            header = read_header(buf, 0)
            state.check(header)
            info = log.append(buf, 0)
            state.update(header, info.first_offset)
            if transactional:
                log.append_txn_marker(7, 0, 0, True, 0)
            log.high_watermark = log.log_end_offset
            _ = log.last_stable_offset
        return time.perf_counter() - start
    finally:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txns", type=int, default=200)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    idempotent = batches(args.txns, args.records, False)
    transactional = batches(args.txns, args.records, True)
    total = args.txns * args.records
    root = Path(tempfile.mkdtemp(dir=args.dir))
    ratios: list[float] = []
    rates: dict[str, list[float]] = {"idempotent": [], "transactional": []}
    try:
        for i in range(args.rounds):
            order = [("idempotent", idempotent, False), ("transactional", transactional, True)]
            for name, data, txn in order if i % 2 == 0 else reversed(order):
                directory = root / f"{name}-{i}-0"
                rates[name].append(total / run(directory, data, txn))
                shutil.rmtree(directory)
            ratios.append(rates["transactional"][-1] / rates["idempotent"][-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.txns} batches of {args.records} records (100-byte values), {args.rounds} rounds")
    for name, values in rates.items():
        print(f"{name:>14}: {statistics.median(values):,.0f} records/s (median)")
    print(f"transactional / idempotent: {statistics.median(ratios):.2f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
