"""The plugin's fixtures with confluent-kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT = 20.0
seen_topics: list[str] = []
shared_marker_topics: list[str] = []


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(TIMEOUT) == 0


def read_all(bootstrap: str, topic: str, expected: int, partition: int = 0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        got: list[bytes] = []
        for _ in range(100):
            if len(got) >= expected:
                break
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(message.value())
        return got
    finally:
        consumer.close()


def test_produce_and_consume_through_a_group(kafka_bootstrap: str, kafka_topic: str) -> None:
    produce(kafka_bootstrap, kafka_topic, [b"hello", b"world"])
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "sample", "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([kafka_topic])
        got = []
        for _ in range(100):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(message.value())
            if len(got) == 2:
                break
        assert got == [b"hello", b"world"]
    finally:
        consumer.close()


@pytest.mark.kafka_broker(per_test=False)
def test_marked_for_the_shared_broker(kafka_broker, kafka_session_broker, kafka_topic: str) -> None:
    assert kafka_broker is kafka_session_broker
    shared_marker_topics.append(kafka_topic)


def test_the_shared_marker_tests_topic_was_deleted(kafka_admin) -> None:
    # Runs after the test above (file order): its topic, on the shared broker, must be gone.
    assert len(shared_marker_topics) == 1
    assert shared_marker_topics[0] not in kafka_admin.list_topics()


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_fresh_empty_topic(
    kafka_bootstrap: str, kafka_topic: str, kafka_admin, round_: int
) -> None:
    assert kafka_topic not in seen_topics
    for previous in seen_topics:
        assert previous not in kafka_admin.list_topics(), "a previous test's topic was not deleted"
    seen_topics.append(kafka_topic)
    produce(kafka_bootstrap, kafka_topic, [f"only-{round_}".encode()])
    assert read_all(kafka_bootstrap, kafka_topic, 1) == [f"only-{round_}".encode()]
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "watermarks"})
    try:
        # Nothing but this test's record: the topic is new, not a reused one.
        assert consumer.get_watermark_offsets(TopicPartition(kafka_topic, 0), TIMEOUT) == (0, 1)
    finally:
        consumer.close()


@pytest.mark.kafka_topic(partitions=3, config={"cleanup.policy": "compact"})
def test_topic_marker_sets_partitions_and_config(kafka_admin, kafka_topic: str) -> None:
    assert kafka_admin.describe_topic(kafka_topic).partitions == 3
    assert kafka_admin.topic_config(kafka_topic)["cleanup.policy"] == "compact"


@pytest.mark.parametrize("kafka_topic", [{"partitions": 2}, {"partitions": 4}], indirect=True)
def test_indirect_parametrization(kafka_admin, kafka_topic: str, request: pytest.FixtureRequest) -> None:
    expected = request.node.callspec.params["kafka_topic"]["partitions"]
    assert kafka_admin.describe_topic(kafka_topic).partitions == expected


def test_ini_and_command_line_overrides_reach_the_broker(kafka_broker) -> None:
    assert kafka_broker.config.get("log.retention.hours") == 1  # pytest.ini
    assert kafka_broker.config.get("message.max.bytes") == 2000000  # --brook-override


@pytest.mark.kafka_broker(num_partitions=5)
def test_per_test_broker(kafka_broker, kafka_session_broker, kafka_admin) -> None:
    assert kafka_broker is not kafka_session_broker
    assert kafka_broker.port != kafka_session_broker.port
    assert kafka_broker.config.get("log.retention.hours") == 1  # the defaults still apply
    kafka_admin.create_topic("defaults", partitions=-1, replication_factor=-1)
    assert kafka_admin.describe_topic("defaults").partitions == 5


@pytest.mark.kafka_broker
def test_recovery_after_a_kill(kafka_broker, kafka_topic: str) -> None:
    produce(kafka_broker.bootstrap_servers, kafka_topic, [b"before-crash"])
    kafka_broker.kill()
    kafka_broker.start()
    assert read_all(kafka_broker.bootstrap_servers, kafka_topic, 1) == [b"before-crash"]
