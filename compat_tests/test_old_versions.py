"""Stock clients pinned to old protocol versions: the broker up-converts their magic 0/1 message
sets on produce and down-converts record batches on fetch, as Kafka 3.9 still does.

- kafka-python with ``api_version=(0, 10, 1)``: Produce v2 / Fetch v3 / ListOffsets v1, magic 1;
- librdkafka (confluent-kafka) without ApiVersions (``api.version.request=false``) and
  ``broker.version.fallback`` 0.9.0 (magic 0, Produce v1, Fetch v1) and 0.8.2 (v0 everything).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import REFERENCE
from compat_tests.clients.model import Msg
from compat_tests.harness import BrokerProcess

TS = 1_600_000_000_000


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_kafka_python_0_10_1(bootstrap: str, compression: str | None) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = create_topic(bootstrap, unique_topic("kp-old"), partitions=1)
    REFERENCE.produce(bootstrap, topic, [Msg(b"modern", key=b"m", timestamp=TS - 1, partition=0)])
    old = {"bootstrap_servers": bootstrap, "api_version": (0, 10, 1)}
    producer = KafkaProducer(**old, enable_idempotence=False, compression_type=compression)
    try:
        futures = [producer.send(topic, f"old-{i}".encode(), key=b"k", timestamp_ms=TS + i) for i in range(5)]
        offsets = [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close(timeout=5)
    assert offsets == [1, 2, 3, 4, 5]

    consumer = KafkaConsumer(**old, group_id=None, fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[Any] = []
        deadline = time.monotonic() + 20
        while len(got) < 6 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got += records
        assert [(r.offset, r.key, r.value, r.timestamp) for r in got] == [
            (0, b"m", b"modern", TS - 1),
            *[(i + 1, b"k", f"old-{i}".encode(), TS + i) for i in range(5)],
        ]
        assert consumer.offsets_for_times({tp: TS + 2})[tp].offset == 3
    finally:
        consumer.close()
    # A modern client reads what the old one wrote.
    modern = REFERENCE.consume(bootstrap, topic, [0])
    assert [(r.value, r.timestamp) for r in modern[1:]] == [(f"old-{i}".encode(), TS + i) for i in range(5)]


@pytest.mark.parametrize("fallback", ["0.9.0", "0.8.2"])
def test_librdkafka_without_api_versions(bootstrap: str, fallback: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = create_topic(bootstrap, unique_topic("rdk-old"), partitions=1)
    old = {"bootstrap.servers": bootstrap, "api.version.request": False, "broker.version.fallback": fallback}
    producer = Producer({**old, "compression.codec": "snappy", "linger.ms": 5})
    reports: list[Any] = []
    for i in range(5):
        producer.produce(
            topic, f"v{i}".encode(), key=b"k", partition=0, on_delivery=lambda e, m: reports.append((e, m))
        )
    assert producer.flush(15) == 0
    assert [(e, m.offset()) for e, m in reports] == [(None, i) for i in range(5)]

    consumer = Consumer({**old, "group.id": f"old-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[Any] = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            m = consumer.poll(0.2)
            if m is not None:
                assert m.error() is None, m.error()
                got.append(m)
        expected = [(i, b"k", f"v{i}".encode()) for i in range(5)]
        assert [(m.offset(), m.key(), m.value()) for m in got] == expected
    finally:
        consumer.close()
    assert [r.value for r in REFERENCE.consume(bootstrap, topic, [0])] == [f"v{i}".encode() for i in range(5)]


def test_kafka_python_0_10_1_meets_a_zstd_batch(bootstrap: str) -> None:
    """zstd cannot be down-converted: the old consumer gets what comes before the zstd batch, then
    an UNSUPPORTED_COMPRESSION_TYPE error it can report, instead of waiting forever."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import UnsupportedCompressionTypeError

    topic = create_topic(bootstrap, unique_topic("kp-zstd"), partitions=1)
    REFERENCE.produce(bootstrap, topic, [Msg(b"before", partition=0)])
    REFERENCE.produce(bootstrap, topic, [Msg(b"z" * 500, partition=0)], compression="zstd")
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, api_version=(0, 10, 1), group_id=None, fetch_max_wait_ms=100
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got: list[bytes] = []
        deadline = time.monotonic() + 20
        with pytest.raises(UnsupportedCompressionTypeError):
            while time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    got += [r.value for r in records]
        assert got == [b"before"]
    finally:
        consumer.close()
