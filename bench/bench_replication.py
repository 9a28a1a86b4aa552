"""Replication between two Brook broker processes: throughput and lag. Prints figures, asserts
nothing (except that the follower's segments end up identical to the leader's).

    PYTHONPATH=. .venv/bin/python bench/bench_replication.py [--messages 300000] [--partitions 6]

Two brokers (``BROOK_CLUSTER_MODE=1``, ids 1 and 2) are told their roles the way a ZooKeeper
controller would (UpdateMetadata and LeaderAndIsr over the wire): every partition of the topic is
led by broker 1, with broker 2 a follower in the ISR. Then, with confluent-kafka:

1. **Catch-up**: ``--messages`` records produced while broker 2 does not fetch yet (the ISR is
   both, so nothing is committed), then broker 2 is told it follows: the replication rate is the
   bytes over the time until the leader's high watermark reaches the log end everywhere.
2. **Throughput**: ``--messages`` more records of ``--size`` bytes produced as fast as possible to the
   leader with acks=1. Printed: the produce rate, and the replication rate: bytes over the time
   from the first send until the leader's high watermark (which waits for the follower's log end,
   learnt from its fetches) reaches the log end on every partition.
3. **Lag**: ``--rate`` records/s for ``--seconds``; a consumer on the leader sees a record only once
   the follower has it (the high watermark), so the time from the producer's acknowledgement
   (acks=1: the leader's append) to the consumer's receipt is the replication lag plus one fetch
   turn. Printed: p50 / p99 / max.
4. The follower's segment files are compared with the leader's, byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from broker.network.client import BrokerConnection, ClientConfig  # noqa: E402
from compat_tests.harness import BrokerProcess  # noqa: E402
from tests.broker.control_kit import Node, PState, leader_and_isr, update_metadata  # noqa: E402

TOPIC = "replicated"
TOPIC_ID = uuid.UUID("0c2b5f3e-6d7a-4e8f-9a1b-2c3d4e5f6071")
TIMEOUT = 120.0
MB = 1e6


async def assign_roles(
    brokers: dict[int, BrokerProcess], partitions: int, isr: list[int], only: int | None = None
) -> None:
    """Tell the brokers (or broker ``only``) that broker 1 leads every partition."""
    nodes = [Node(i, "127.0.0.1", b.port) for i, b in brokers.items()]
    states = [PState(TOPIC, p, 1, 1, [1, 2], isr=isr) for p in range(partitions)]
    ids = {TOPIC: TOPIC_ID}
    for broker_id, broker in brokers.items():
        if only is not None and broker_id != only:
            continue
        conn = await BrokerConnection.open(
            broker_id, "127.0.0.1", broker.port, ClientConfig(client_id="controller")
        )
        try:
            answer = (await conn.request(update_metadata(8, nodes, states, topic_ids=ids), version=8)).body
            assert answer.error_code == 0, answer
            answer = (await conn.request(leader_and_isr(7, states, topic_ids=ids), version=7)).body
            assert answer.error_code == 0, answer
            assert all(e.error_code == 0 for t in answer.topics for e in t.partition_errors), answer
        finally:
            conn.close()
            await conn.wait_closed()


def high_watermarks(consumer: object, partitions: int) -> list[int]:
    from confluent_kafka import TopicPartition

    return [
        consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(partitions)
    ]  # type: ignore[attr-defined]


def produce_all(bootstrap: str, messages: int, size: int, partitions: int) -> tuple[list[int], float]:
    """Produce as fast as possible (acks=1); the log end offsets and the seconds it took."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "enable.idempotence": False,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    ends = [0] * partitions
    errors: list[object] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            errors.append(err)
            return
        p = msg.partition()  # type: ignore[attr-defined]
        ends[p] = max(ends[p], msg.offset() + 1)  # type: ignore[attr-defined]

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
    assert not errors, errors[:3]
    return ends, time.perf_counter() - started


def wait_replicated(bootstrap: str, ends: list[int]) -> float:
    """perf_counter time at which the leader's high watermark reached ``ends`` everywhere."""
    from confluent_kafka import Consumer

    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watch"})
    try:
        deadline = time.monotonic() + TIMEOUT
        while high_watermarks(watcher, len(ends)) != ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not replicated: {high_watermarks(watcher, len(ends))} != {ends}")
            time.sleep(0.002)  # another process's state: polled, nothing to await
        return time.perf_counter()
    finally:
        watcher.close()


def catch_up(brokers: dict[int, BrokerProcess], messages: int, size: int, partitions: int) -> float:
    """Replication rate in MB/s of a follower catching up: the records are produced while broker 2
    has not been told its role (it does not fetch; the ISR is both, so the high watermark waits),
    then broker 2 is made a follower and the clock runs until the high watermark is the log end."""
    bootstrap = brokers[1].bootstrap
    ends, _ = produce_all(bootstrap, messages, size, partitions)
    started = time.perf_counter()
    asyncio.run(assign_roles(brokers, partitions, [1, 2], only=2))
    return messages * size / MB / (wait_replicated(bootstrap, ends) - started)


def throughput(bootstrap: str, messages: int, size: int, partitions: int) -> tuple[float, float, float]:
    """(produce MB/s, replication MB/s, seconds from the last acknowledgement to fully replicated)
    with the follower fetching all along."""
    started = time.perf_counter()
    ends, took = produce_all(bootstrap, messages, size, partitions)
    acked = started + took
    replicated = wait_replicated(bootstrap, ends)
    total = messages * size / MB
    return total / took, total / (replicated - started), replicated - acked


def lag(bootstrap: str, rate: int, seconds: float, partitions: int) -> list[float]:
    """Milliseconds from each record's acknowledgement by the leader to its receipt by a consumer
    (which reads only up to the high watermark, so only replicated records)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    acked: dict[tuple[int, int], float] = {}
    received: dict[tuple[int, int], float] = {}
    count = int(rate * seconds)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-lag",
            "fetch.wait.max.ms": 100,
            "enable.auto.commit": False,
        }
    )
    start_offsets = high_watermarks(consumer, partitions)
    consumer.assign([TopicPartition(TOPIC, p, start_offsets[p]) for p in range(partitions)])
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                received[(msg.partition(), msg.offset())] = time.perf_counter()
                if len(received) >= count:
                    return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0, "enable.idempotence": False}
    )

    def delivered(err: object, msg: object) -> None:
        if err is None:
            acked[(msg.partition(), msg.offset())] = time.perf_counter()  # type: ignore[attr-defined]

    interval = 1.0 / rate
    begin = time.perf_counter()
    for i in range(count):
        target = begin + i * interval
        while (now := time.perf_counter()) < target:
            producer.poll(min(0.001, target - now))
        producer.produce(TOPIC, b"y" * 100, partition=i % partitions, on_delivery=delivered)
        producer.poll(0)
    producer.flush(TIMEOUT)
    reader.join(TIMEOUT)
    done.set()
    consumer.close()
    return sorted((received[k] - t) * 1000 for k, t in acked.items() if k in received)


def same_segments(root: Path, partitions: int) -> bool:
    for p in range(partitions):
        files = []
        for broker_id in (1, 2):
            directory = root / f"b{broker_id}" / f"{TOPIC}-{p}"
            files.append(b"".join(f.read_bytes() for f in sorted(directory.glob("*.log"))))
        if files[0] != files[1]:
            return False
    return True


def main(args: argparse.Namespace) -> None:
    os.environ["BROOK_CLUSTER_MODE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        brokers = {i: BrokerProcess(root / f"b{i}", {"broker.id": str(i)}) for i in (1, 2)}
        try:
            for broker in brokers.values():
                broker.start()
            isr = [1] if args.leader_only_isr else [1, 2]
            asyncio.run(assign_roles(brokers, args.partitions, isr, only=1))
            if args.leader_only_isr:  # the high watermark does not wait: nothing to time
                catch_up_rate = None
                asyncio.run(assign_roles(brokers, args.partitions, isr, only=2))
            else:
                catch_up_rate = catch_up(brokers, args.messages, args.size, args.partitions)
            bootstrap = brokers[1].bootstrap
            produce_rate, replication_rate, tail = throughput(
                bootstrap, args.messages, args.size, args.partitions
            )
            lags = lag(bootstrap, args.rate, args.seconds, args.partitions)
            for broker in brokers.values():
                broker.stop()
            identical = same_segments(root, args.partitions)
        finally:
            for broker in brokers.values():
                broker.kill()
    isr_text = "ISR the leader only" if args.leader_only_isr else "ISR both"
    print(f"two broker processes, {args.partitions} partitions, RF 2 ({isr_text}), acks=1 to the leader")
    if catch_up_rate is not None:
        print(f"follower catching up on {args.messages:,} x {args.size} B: {catch_up_rate:.1f} MB/s")
    print(f"produce {args.messages:,} x {args.size} B: {produce_rate:.1f} MB/s")
    print(
        f"replicated (leader HW = LEO everywhere): {replication_rate:.1f} MB/s, "
        f"{tail * 1000:.0f} ms after the last acknowledgement"
    )
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"lag at {args.rate:,} msg/s (ack by leader -> visible to a consumer): "
            f"p50 {statistics.median(lags):.1f} ms, p99 {p99:.1f} ms, max {lags[-1]:.1f} ms "
            f"({len(lags):,} records)"
        )
    print(f"follower segments identical to the leader's: {identical}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--leader-only-isr",
        action="store_true",
        help="ISR = [leader]: the high watermark does not wait for the follower (a baseline for the lag)",
    )
    main(parser.parse_args())
