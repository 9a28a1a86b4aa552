"""Client workloads for bench/run.py, each run in its own process and printing one JSON line.

python bench/workloads.py produce BOOTSTRAP TOPIC COUNT ACKS
python bench/workloads.py consume BOOTSTRAP TOPIC COUNT
python bench/workloads.py latency BOOTSTRAP TOPIC RATE SECONDS [LINGER_MS|default]
python bench/workloads.py kp-produce BOOTSTRAP TOPIC COUNT
python bench/workloads.py kp-consume BOOTSTRAP TOPIC COUNT
python bench/workloads.py small-requests BOOTSTRAP TOPIC PRODUCERS SECONDS
python bench/workloads.py spread BOOTSTRAP TOPIC COUNT
python bench/workloads.py replication-lag BOOTSTRAP TOPIC RATE SECONDS
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any

PAYLOAD = b"x" * 100


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def produce(bootstrap: str, topic: str, count: int, acks: str) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "acks": acks,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "enable.idempotence": False,
        }
    )
    producer.produce(topic, PAYLOAD)
    producer.flush(30)
    delivered = 0
    failed = 0

    def report(err: Any, _msg: Any) -> None:
        nonlocal delivered, failed
        if err is None:
            delivered += 1
        else:
            failed += 1

    start = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, PAYLOAD, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.001)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    _emit(msgs=count, delivered=delivered, failed=failed, seconds=elapsed, rate=count / elapsed)


def consume(bootstrap: str, topic: str, count: int, rack: str = "") -> None:
    """Read every partition from its log start to its end (the mock keeps only ~5 MB per
    partition, so "everything there is" is what both brokers are asked for). A ``rack`` is the
    consumer's ``client.rack``: with KIP-392 on the brokers, it reads from that rack's replicas."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "bench-unused",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 52_428_800,
        "enable.partition.eof": True,
    }
    if rack:
        settings["client.rack"] = rack
    consumer = Consumer(settings)
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p, -2) for p in metadata.topics[topic].partitions]  # OFFSET_BEGINNING
    expected = 0
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        expected += high - low
    consumer.assign(partitions)
    received = 0
    at_end: set[int] = set()
    start = time.perf_counter()
    deadline = start + 120
    while len(at_end) < len(partitions) and time.perf_counter() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            error = message.error()
            if error is None:
                received += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
    elapsed = time.perf_counter() - start
    consumer.close()
    _emit(msgs=received, expected=expected, produced=count, seconds=elapsed, rate=received / elapsed)


def _paced_producer(bootstrap: str, linger_ms: str, **extra: object) -> dict[str, object]:
    """A paced workload's producer settings: ``linger_ms`` as given, or librdkafka's default for
    ``"default"`` (what a stock client runs with)."""
    settings: dict[str, object] = {"bootstrap.servers": bootstrap, "enable.idempotence": False, **extra}
    if linger_ms != "default":
        settings["linger.ms"] = int(linger_ms)
    return settings


def latency(bootstrap: str, topic: str, rate: int, seconds: float, linger_ms: str = "0") -> None:
    """Send ``rate`` msg/s for ``seconds`` with default consumer settings; receive time minus send time.

    ``linger_ms`` is the producer's ``linger.ms``; ``"default"`` leaves it unset (librdkafka's
    default, 5 ms: what a stock client runs with)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer(_paced_producer(bootstrap, linger_ms))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-latency", "enable.auto.commit": False}
    )
    producer.produce(topic, b"0" * 16)
    producer.flush(30)
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, -1) for p in metadata.topics[topic].partitions])  # OFFSET_END
    time.sleep(1.0)  # let the consumer's first fetches reach the end
    samples: list[float] = []
    total = int(rate * seconds)
    done = threading.Event()

    def receive() -> None:
        while len(samples) < total and not done.is_set():
            message = consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            sent = float(message.value().decode())
            samples.append(time.perf_counter() - sent)

    receiver = threading.Thread(target=receive)
    receiver.start()
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(total):
        target = start + i * interval
        pause = target - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        producer.produce(topic, repr(time.perf_counter()).encode())
        producer.poll(0)
    producer.flush(30)
    receiver.join(timeout=30)
    done.set()
    consumer.close()
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] * 1000 if samples else float("nan")

    _emit(
        msgs=len(samples),
        sent=total,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        p999_ms=pct(0.999),
        mean_ms=statistics.fmean(samples) * 1000 if samples else float("nan"),
    )


def kp_produce(bootstrap: str, topic: str, count: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        batch_size=1_000_000,
        acks=1,
        enable_idempotence=False,
    )
    producer.send(topic, PAYLOAD).get(30)
    start = time.perf_counter()
    for _ in range(count):
        producer.send(topic, PAYLOAD)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    producer.close()
    _emit(msgs=count, seconds=elapsed, rate=count / elapsed)


def kp_consume(bootstrap: str, topic: str, count: int) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=52_428_800,
        max_partition_fetch_bytes=10_485_760,
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)
    received = 0
    start = time.perf_counter()
    deadline = start + 180
    while time.perf_counter() < deadline and any(consumer.position(tp) < ends[tp] for tp in partitions):
        for batch in consumer.poll(timeout_ms=1000, max_records=100_000).values():
            received += len(batch)
    elapsed = time.perf_counter() - start
    consumer.close()
    _emit(msgs=received, produced=count, seconds=elapsed, rate=received / elapsed)


def small_requests(bootstrap: str, topic: str, producers: int, seconds: float) -> None:
    """``producers`` producers with linger.ms=0 producing as fast as they can: librdkafka sends a
    produce request as soon as a partition has messages, so requests stay small and many. The
    request count comes from librdkafka's own statistics (brokers.*.req.Produce)."""
    from confluent_kafka import Producer

    latest: list[dict[str, Any]] = [{} for _ in range(producers)]

    def stats_for(index: int) -> Any:
        def on_stats(text: str) -> None:
            latest[index] = json.loads(text)

        return on_stats

    clients = [
        Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": 1, "enable.idempotence": False,
                  "statistics.interval.ms": 500, "stats_cb": stats_for(i),
                  "queue.buffering.max.messages": 20_000})
        for i in range(producers)
    ]
    for client in clients:
        client.produce(topic, PAYLOAD)
        client.flush(30)

    def produce_requests() -> int:
        for client in clients:
            client.poll(0)
        return sum(
            broker.get("req", {}).get("Produce", 0)
            for stats in latest
            for name, broker in stats.get("brokers", {}).items()
            if not name.startswith("GroupCoordinator")
        )

    time.sleep(0.6)
    before = produce_requests()
    start = time.perf_counter()
    stop = start + seconds
    sent = 0
    while time.perf_counter() < stop:
        for client in clients:
            for _ in range(8):
                try:
                    client.produce(topic, PAYLOAD)
                    sent += 1
                except BufferError:
                    client.poll(0.0005)
                    break
            client.poll(0)
    elapsed = time.perf_counter() - start
    for client in clients:
        client.flush(30)
    time.sleep(0.6)  # one more statistics interval
    requests = produce_requests() - before
    _emit(requests=requests, messages=sent, seconds=elapsed, rate=requests / elapsed,
          msgs_per_request=sent / max(requests, 1))


def spread(bootstrap: str, topic: str, count: int) -> None:
    """Produce like ``produce`` but round-robin over every partition of the topic."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "acks": 1,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "enable.idempotence": False,
        }
    )
    metadata = producer.list_topics(topic, timeout=30)
    partitions = len(metadata.topics[topic].partitions)
    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, PAYLOAD, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.001)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    _emit(msgs=count, partitions=partitions, seconds=elapsed, rate=count / elapsed)


def replication_lag(bootstrap: str, topic: str, rate: int, seconds: float, linger_ms: str = "0") -> None:
    """Replication lag as a client can see it: ``rate`` msg/s produced with acks=1 (acknowledged
    after the leader's own append), and a consumer on the leader, which reads only below the high
    watermark, i.e. what every ISR member has and the leader knows it has. Per record: the
    consumer's receipt time minus the producer's acknowledgement time (same process clock)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer(_paced_producer(bootstrap, linger_ms, acks=1))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-replication-lag", "enable.auto.commit": False}
    )
    producer.produce(topic, b"warm-up")
    producer.flush(30)
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, -1) for p in partitions])  # OFFSET_END
    time.sleep(1.0)  # let the consumer's first fetches reach the end
    acked: dict[tuple[int, int], float] = {}
    received: dict[tuple[int, int], float] = {}
    total = int(rate * seconds)
    done = threading.Event()

    def receive() -> None:
        while len(received) < total and not done.is_set():
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                received[(message.partition(), message.offset())] = time.perf_counter()

    def on_ack(err: Any, msg: Any) -> None:
        if err is None:
            acked[(msg.partition(), msg.offset())] = time.perf_counter()

    def serve_acks() -> None:
        # A thread of its own waits for acknowledgements, so each is timed when it arrives; the
        # sender sleeps between records (confluent-kafka rounds a poll timeout down to whole
        # milliseconds: pacing with poll() spun, taking most of a core from the brokers).
        while not done.is_set():
            producer.poll(0.05)

    receiver = threading.Thread(target=receive)
    receiver.start()
    acks = threading.Thread(target=serve_acks)
    acks.start()
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(total):
        target = start + i * interval
        pause = target - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        producer.produce(topic, PAYLOAD, partition=partitions[i % len(partitions)], on_delivery=on_ack)
    producer.flush(30)
    receiver.join(timeout=30)
    done.set()
    acks.join(timeout=5)
    consumer.close()
    # A record can reach the consumer before its acknowledgement is delivered to this process
    # (both are callbacks): that shows as a negative lag, counted as 0.
    samples = sorted(max(0.0, received[k] - t) for k, t in acked.items() if k in received)

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] * 1000 if samples else float("nan")

    _emit(msgs=len(samples), sent=total, acked=len(acked), p50_ms=pct(0.50), p99_ms=pct(0.99),
          p999_ms=pct(0.999), max_ms=pct(1.0))


def main(argv: list[str]) -> None:
    kind, bootstrap, topic, *rest = argv
    if kind == "produce":
        produce(bootstrap, topic, int(rest[0]), rest[1])
    elif kind == "consume":
        consume(bootstrap, topic, int(rest[0]), *rest[1:2])
    elif kind == "latency":
        latency(bootstrap, topic, int(rest[0]), float(rest[1]), *rest[2:3])
    elif kind == "kp-produce":
        kp_produce(bootstrap, topic, int(rest[0]))
    elif kind == "kp-consume":
        kp_consume(bootstrap, topic, int(rest[0]))
    elif kind == "small-requests":
        small_requests(bootstrap, topic, int(rest[0]), float(rest[1]))
    elif kind == "spread":
        spread(bootstrap, topic, int(rest[0]))
    elif kind == "replication-lag":
        replication_lag(bootstrap, topic, int(rest[0]), float(rest[1]), *rest[2:3])
    else:
        raise SystemExit(f"unknown workload {kind}")


if __name__ == "__main__":
    main(sys.argv[1:])
