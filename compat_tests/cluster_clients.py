"""Stock clients that keep running while the cluster tests break brokers.

``SteadyProducer`` is one confluent-kafka producer (acks=1, the client's retries, a 30 s delivery
timeout) that a test drives message by message across a fault and whose delivery reports it checks
afterwards; ``read_from`` reads a partition from an offset with one consumer instance.
"""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from compat_tests.clients.admin import unique_topic

TIMEOUT = 30.0

#: Whether followers fetch (replica fetchers, issue 13). Without them the high watermark of a
#: partition whose ISR has other members never passes 0 (Kafka's rule: the HW is the lowest log
#: end offset in the ISR), so nothing acknowledged can be read back, by any client.
REPLICATION = importlib.util.find_spec("broker.replica.fetcher") is not None


def reading_needs_replication(bootstrap: str, topic: str, partition: int) -> None:
    """Called where a test goes on to read acknowledged records back. With replication it returns
    and the reads are checked. Without it, it first checks that the reason holds (the partition's
    high watermark is still 0 although writes were acknowledged), then ends the test as an
    expected failure saying so: every check before this point has passed."""
    if REPLICATION:
        return
    consumer = new_consumer(bootstrap)
    try:
        from confluent_kafka import TopicPartition

        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
    finally:
        consumer.close()
    assert high == 0, f"{topic}-{partition} has a high watermark ({high}) without replication"
    pytest.xfail(
        f"reading {topic}-{partition} back needs replication (issue 13): its followers never fetch, "
        "so the high watermark stays at 0 and no acknowledged record is visible to consumers"
    )


@dataclass(frozen=True)
class Delivery:
    value: bytes
    partition: int
    offset: int
    error: str | None


class SteadyProducer:
    """A confluent-kafka producer whose every delivery report is kept."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                # acks=1: without replication (issue 13) acks=all promises nothing more.
                "acks": 1,
                "enable.idempotence": False,
                "linger.ms": 0,
                "message.timeout.ms": 30000,
                "retry.backoff.ms": 50,
                "topic.metadata.refresh.interval.ms": 1000,
                **overrides,
            }
        )
        self.reports: list[Delivery] = []
        self._lock = threading.Lock()
        self._delivered = threading.Condition(self._lock)
        self._closed = False

    def send(self, topic: str, value: bytes, partition: int) -> None:
        def done(err: Any, msg: Any) -> None:
            with self._delivered:
                self.reports.append(
                    Delivery(value, msg.partition(), msg.offset(), None if err is None else str(err))
                )
                self._delivered.notify_all()

        self.producer.produce(topic, value=value, partition=partition, on_delivery=done)
        self.producer.poll(0)

    def send_and_wait(self, topic: str, values: list[bytes], partition: int) -> list[Delivery]:
        """Send ``values`` and wait for their reports (errors included); the reports, in send order."""
        for value in values:
            self.send(topic, value, partition)
        left = self.producer.flush(TIMEOUT + 10)
        assert left == 0, f"{left} messages without a delivery report"
        wanted = set(values)
        with self._lock:
            got = {d.value: d for d in self.reports if d.value in wanted}
        return [got[v] for v in values]

    def poll_until(self, count: int, timeout: float) -> None:
        """Serve delivery callbacks until ``count`` reports in all arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.reports) >= count:
                    return
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(self.reports)} of {count} delivery reports after {timeout} s"
            self.producer.poll(min(remaining, 0.1))

    def errors(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.reports if d.error is not None]

    def close(self) -> None:
        """Flush, then destroy the client now (not when a traceback lets go of it: a leaked
        producer would go on calling the brokers of a cluster that is gone)."""
        if self._closed:
            return
        self._closed = True
        self.producer.flush(TIMEOUT)
        self.producer.close()


def new_consumer(bootstrap: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cluster-{uuid.uuid4().hex[:8]}",  # required; no group api used (assign)
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )


def read_from(
    consumer: Any, topic: str, partition: int, offset: int, count: int, timeout: float = TIMEOUT
) -> list[Any]:
    """Assign ``consumer`` to one partition at ``offset`` and read ``count`` records (bounded)."""
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(topic, partition, offset)])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"read {len(got)} of {count} records of {topic}-{partition} from {offset}"
        for m in consumer.consume(count - len(got), min(remaining, 0.5)):
            if m.error():
                # transient errors while leadership moves are the client's to survive
                continue
            got.append(m)
    return got


def create_topic(bootstrap: str, prefix: str, partitions: int, replication: int = 3) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique_topic(prefix)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    futures = admin.create_topics(
        [NewTopic(topic, partitions, replication)], operation_timeout=TIMEOUT, request_timeout=TIMEOUT
    )
    futures[topic].result(timeout=TIMEOUT)
    return topic
