"""Transactional produce against idempotent produce, same client, same broker, same run (issue 14).

    PYTHONPATH=. .venv/bin/python bench/bench_transactions.py [--records 200000] [--rounds 3]
        [--per-txn 1000] [--value-bytes 100] [--partitions 1]

Starts one Brook broker process (data in a temporary directory) and, round by round, interleaves
two confluent-kafka (librdkafka) producers writing ``--records`` records of ``--value-bytes`` B:

- idempotent (``enable.idempotence``, acks=all), flushed at the end;
- the same, flushed every ``--per-txn`` records (it batches as the transactions do, so the
  ratio to it is the cost of the transaction protocol itself: AddPartitionsToTxn, EndTxn, markers);
- transactional (``transactional.id``), one transaction per ``--per-txn`` records, each
  committed (EndTxn, then COMMIT markers written to every partition) before the next begins.

Prints each mode's median rate in records/s, and transactional / idempotent (issue 14's target:
at least 0.7). Asserts nothing; on a loaded machine the figures move with the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compat_tests.clients.admin import create_topic
from compat_tests.harness import BrokerProcess

TARGET_RATIO = 0.7


def _produce(producer: Any, topic: str, count: int, value: bytes, partitions: int) -> None:
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=value, partition=i % partitions)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)


def idempotent_rate(bootstrap: str, topic: str, args: argparse.Namespace, flush_every: int = 0) -> float:
    """Records/s of an idempotent producer, flushed at the end (or every ``flush_every`` records,
    which batches as the transactions do, each ending with a wait for its acknowledgements)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    value = b"x" * args.value_bytes
    step = flush_every or args.records
    started = time.monotonic()
    done = 0
    while done < args.records:
        count = min(step, args.records - done)
        _produce(producer, topic, count, value, args.partitions)
        if producer.flush(120):
            raise RuntimeError("idempotent records undelivered after 120 s")
        done += count
    return args.records / (time.monotonic() - started)


def transactional_rate(bootstrap: str, topic: str, args: argparse.Namespace) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    value = b"x" * args.value_bytes
    started = time.monotonic()
    done = 0
    while done < args.records:
        count = min(args.per_txn, args.records - done)
        producer.begin_transaction()
        _produce(producer, topic, count, value, args.partitions)
        producer.commit_transaction(120)
        done += count
    return args.records / (time.monotonic() - started)


def _check_logs(bootstrap: str, idem_topic: str, txn_topic: str, args: argparse.Namespace) -> None:
    """The figures count only what is in the logs: every record once, and one COMMIT marker per
    transaction and partition (read_committed sees every transactional record)."""
    from confluent_kafka import Consumer, TopicPartition

    def end(topic: str, isolation: str) -> int:
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "bench-check", "isolation.level": isolation}
        )
        try:
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), 15)[1]
                for p in range(args.partitions)
            )
        finally:
            consumer.close()

    records = args.records * args.rounds
    idem_records = 2 * records  # two idempotent runs a round
    transactions = -(-args.records // args.per_txn) * args.rounds
    idem_end, txn_end = end(idem_topic, "read_uncommitted"), end(txn_topic, "read_committed")
    markers = min(args.partitions, args.per_txn) * transactions
    print(
        f"log end offsets: idempotent {idem_end:,}, transactional {txn_end:,} ({markers:,} of them markers)"
    )
    if idem_end != idem_records or txn_end != records + markers:
        raise RuntimeError(f"expected {records:,} records and {markers:,} markers in the logs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-txn", type=int, default=1000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-txn-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            bootstrap = broker.bootstrap
            idem_topic = create_topic(bootstrap, "bench-idempotent", partitions=args.partitions)
            txn_topic = create_topic(bootstrap, "bench-transactional", partitions=args.partitions)
            idem: list[float] = []
            stepped: list[float] = []
            txn: list[float] = []
            for round_no in range(1, args.rounds + 1):
                idem.append(idempotent_rate(bootstrap, idem_topic, args))
                stepped.append(idempotent_rate(bootstrap, idem_topic, args, flush_every=args.per_txn))
                txn.append(transactional_rate(bootstrap, txn_topic, args))
                print(
                    f"round {round_no}: idempotent {idem[-1]:,.0f} records/s, flushed every "
                    f"{args.per_txn:,} {stepped[-1]:,.0f} records/s, transactional {txn[-1]:,.0f} records/s"
                )
            _check_logs(bootstrap, idem_topic, txn_topic, args)
        finally:
            broker.stop()
    idem_median, txn_median = statistics.median(idem), statistics.median(txn)
    stepped_median = statistics.median(stepped)
    ratio = txn_median / idem_median
    print(
        f"{args.records:,} records of {args.value_bytes} B, {args.partitions} partition(s), "
        f"median of {args.rounds} rounds (confluent-kafka, one broker)"
    )
    print(f"idempotent produce:    {idem_median:,.0f} records/s")
    print(f"idempotent, flushed every {args.per_txn:,} records: {stepped_median:,.0f} records/s")
    print(f"transactional produce: {txn_median:,.0f} records/s ({args.per_txn:,} records per transaction)")
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(f"transactional / idempotent: {ratio:.2f} ({verdict} the {TARGET_RATIO} target)")
    print(
        f"transactional / idempotent flushed alike: {txn_median / stepped_median:.2f} "
        "(the transactions' own cost)"
    )


if __name__ == "__main__":
    main()
