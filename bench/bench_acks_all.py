"""acks=all against acks=1 with a real follower: two Brook broker processes, RF 2 (ISR both).
Prints figures, asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_acks_all.py [--messages 300000] [--partitions 6]

Broker 1 leads every partition, broker 2 follows with the replica fetcher (roles given as a
ZooKeeper controller would, see ``bench_replication.py``). The same confluent-kafka producer
settings send ``--messages`` records of ``--size`` bytes, once with acks=1 and once with
acks=all (``min.insync.replicas``=2); acks=all is answered only when the follower's fetch has
moved the leader's high watermark past each batch. Printed: both rates and their ratio, and the
p50/p99 of the acknowledgement latency at ``--rate`` msg/s for both.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_replication import MB, TIMEOUT, TOPIC, assign_roles  # noqa: E402

from compat_tests.harness import BrokerProcess  # noqa: E402


def produce(bootstrap: str, acks: str, messages: int, size: int, partitions: int) -> float:
    """MB/s of ``messages`` acknowledged records."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "enable.idempotence": False,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    errors: list[object] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    payload = b"x" * size
    started = time.perf_counter()
    for i in range(messages):
        while True:
            try:
                producer.produce(TOPIC, payload, partition=i % partitions, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(TIMEOUT)
    elapsed = time.perf_counter() - started
    if errors:
        print(f"acks={acks}: {len(errors)} delivery errors, first: {errors[0]}")
    return messages * size / elapsed / MB


def ack_latencies(bootstrap: str, acks: str, rate: int, seconds: float, partitions: int) -> list[float]:
    """Milliseconds from send to acknowledgement, one record at a time at ``rate`` msg/s."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0, "enable.idempotence": False}
    )
    latencies: list[float] = []

    def delivered(sent: float, err: object, _msg: object) -> None:
        if err is None:
            latencies.append((time.perf_counter() - sent) * 1000)

    count = int(rate * seconds)
    interval = 1.0 / rate
    begin = time.perf_counter()
    for i in range(count):
        target = begin + i * interval
        while (now := time.perf_counter()) < target:
            producer.poll(min(0.001, target - now))
        callback = functools.partial(delivered, time.perf_counter())
        producer.produce(TOPIC, b"y" * 100, partition=i % partitions, on_delivery=callback)
        producer.poll(0)
    producer.flush(TIMEOUT)
    return sorted(latencies)


def main(args: argparse.Namespace) -> None:
    os.environ["BROOK_CLUSTER_MODE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = {"min.insync.replicas": "2"}
        brokers = {i: BrokerProcess(root / f"b{i}", {"broker.id": str(i), **settings}) for i in (1, 2)}
        try:
            for broker in brokers.values():
                broker.start()
            asyncio.run(assign_roles(brokers, args.partitions, [1, 2]))
            bootstrap = brokers[1].bootstrap
            rates = {
                acks: produce(bootstrap, acks, args.messages, args.size, args.partitions)
                for acks in ("1", "all")
            }
            lags = {
                acks: ack_latencies(bootstrap, acks, args.rate, args.seconds, args.partitions)
                for acks in ("1", "all")
            }
        finally:
            for broker in brokers.values():
                broker.kill()
    print(f"two broker processes, {args.partitions} partitions, RF 2 (ISR both), min.insync.replicas=2")
    for acks, rate in rates.items():
        print(f"acks={acks}: {args.messages:,} x {args.size} B: {rate:.1f} MB/s")
    print(f"acks=all / acks=1 throughput: {rates['all'] / rates['1']:.2f}")
    for acks, values in lags.items():
        if values:
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(
                f"acks={acks} acknowledgement latency at {args.rate:,} msg/s: "
                f"p50 {statistics.median(values):.1f} ms, p99 {p99:.1f} ms ({len(values):,} records)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    main(parser.parse_args())
