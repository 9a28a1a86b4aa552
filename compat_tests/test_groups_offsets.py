"""Committed offsets survive broker restarts (SIGTERM and SIGKILL): after any acknowledged
commit (sync, async or auto) a new consumer of the group resumes exactly there."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.group_worker import Member, wait_for
from compat_tests.harness import BrokerProcess

PARTITIONS = 3
TIMEOUT = 30.0


def produce(bootstrap: str, topic: str, per_partition: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition in range(PARTITIONS):
        for i in range(per_partition):
            producer.produce(topic, f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def confluent_consumer(bootstrap: str, group: str, **extra: Any) -> Any:
    from confluent_kafka import Consumer

    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        **extra,
    }
    return Consumer(settings)


def first_offsets(consumer: Any, topic: str, timeout: float = TIMEOUT) -> dict[int, int]:
    """Subscribe and return the offset of the first record read from each partition."""
    consumer.subscribe([topic])
    first: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(first) < PARTITIONS and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            first.setdefault(msg.partition(), msg.offset())
    assert len(first) == PARTITIONS, f"read from partitions {sorted(first)} only"
    return first


def committed(consumer: Any, topic: str) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    return {
        tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(3)], 15)
    }


def test_confluent_sync_async_auto_commits_survive_sigterm_and_sigkill(fresh_broker: BrokerProcess) -> None:
    from confluent_kafka import TopicPartition

    broker = fresh_broker.start()
    topic = create_topic(broker.bootstrap, unique_topic("commit"), PARTITIONS)
    group = f"resume-{uuid.uuid4().hex[:6]}"
    produce(broker.bootstrap, topic, 20)

    # sync commit, then SIGTERM
    c1 = confluent_consumer(broker.bootstrap, group)
    first_offsets(c1, topic)
    sync = {0: 3, 1: 7, 2: 11}
    done = c1.commit(offsets=[TopicPartition(topic, p, o) for p, o in sync.items()], asynchronous=False)
    assert all(tp.error is None for tp in done)
    c1.close()
    broker.restart()
    acks: list[tuple[Any, list[Any]]] = []
    c2 = confluent_consumer(broker.bootstrap, group, on_commit=lambda err, tps: acks.append((err, tps)))
    assert first_offsets(c2, topic) == sync
    assert committed(c2, topic) == sync

    # async commit, acknowledged (its callback), then SIGKILL at once
    c2_async = {0: 5, 1: 9, 2: 13}
    c2.commit(offsets=[TopicPartition(topic, p, o) for p, o in c2_async.items()], asynchronous=True)
    deadline = time.monotonic() + TIMEOUT
    while not acks and time.monotonic() < deadline:
        c2.poll(0.05)
    assert acks, "the async commit was not acknowledged"
    error, partitions = acks[0]
    assert error is None and {tp.partition: tp.offset for tp in partitions} == c2_async
    broker.kill()
    broker.start()
    assert committed(c2, topic) == c2_async  # also brings c2 back to the restarted coordinator
    c2.close()  # leaves the group the restarted broker restored
    c3 = confluent_consumer(
        broker.bootstrap, group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 100}
    )
    assert first_offsets(c3, topic) == c2_async

    # auto commit: read to the end, wait until the broker has the positions, then SIGKILL
    read = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and any(
        tp.offset < 20 for tp in c3.position([TopicPartition(topic, p) for p in range(3)])
    ):
        msg = c3.poll(0.1)
        read += msg is not None
    wait_for(lambda: committed(c3, topic) == {0: 20, 1: 20, 2: 20}, TIMEOUT, "auto-committed positions")
    broker.kill()
    broker.start()
    assert committed(c3, topic) == {0: 20, 1: 20, 2: 20}
    c3.close()
    produce(broker.bootstrap, topic, 1)
    c4 = confluent_consumer(broker.bootstrap, group)
    try:
        assert first_offsets(c4, topic) == {0: 20, 1: 20, 2: 20}
    finally:
        c4.close()


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka", "kafkajs"])
def test_each_client_resumes_at_its_commits_after_sigkill(fresh_broker: BrokerProcess, client: str) -> None:
    broker = fresh_broker.start()
    topic = create_topic(broker.bootstrap, unique_topic(f"resume-{client}"), PARTITIONS)
    group = f"resume-{client}-{uuid.uuid4().hex[:6]}"
    produce(broker.bootstrap, topic, 10)
    sent = {(p, o) for p in range(PARTITIONS) for o in range(10)}
    cfg: dict[str, Any] = {"bootstrap": broker.bootstrap, "group": group, "topic": topic, "commit": "sync"}
    first = Member(client, client_id=f"{client}-first", **cfg)
    try:
        wait_for(lambda: first.records() >= sent, TIMEOUT, "every record read", [first])
        time.sleep(0.5)  # its last commit (after its last batch) is acknowledged before it leaves
        first.close()
    finally:
        first.stop()
    broker.kill()
    broker.start()
    produce(broker.bootstrap, topic, 2)
    second = Member(client, client_id=f"{client}-second", **cfg)
    try:
        wait_for(lambda: len(second.records()) >= 2 * PARTITIONS, TIMEOUT, "the new records read", [second])
        time.sleep(0.3)
        assert second.records() == {(p, o) for p in range(PARTITIONS) for o in (10, 11)}
    finally:
        second.stop()


def test_kafka_python_commit_keeps_metadata_across_sigkill(fresh_broker: BrokerProcess) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    broker = fresh_broker.start()
    topic = create_topic(broker.bootstrap, unique_topic("meta"), PARTITIONS)
    group = f"meta-{uuid.uuid4().hex[:6]}"
    produce(broker.bootstrap, topic, 5)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    tp = TopicPartition(topic, 1)
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(4, "checkpoint-42", -1)})
    consumer.close()
    broker.kill()
    broker.start()
    again = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        stored = again.committed(tp, metadata=True)
        assert stored is not None and stored.offset == 4 and stored.metadata == "checkpoint-42"
    finally:
        again.close()
