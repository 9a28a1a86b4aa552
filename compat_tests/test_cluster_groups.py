"""Consumer groups on a three-broker cluster whose ``__consumer_offsets`` has replication factor 3.

A group (confluent-kafka, kafka-python) consumes and commits; the group's coordinator, the leader
of its offsets partition (``abs(javaHashCode(group)) % 50``), is killed with SIGKILL. The group
moves to the partition's new leader: the member that lived through the kill commits again there,
and a new member of the group resumes exactly at the last commit, so no committed record is
delivered again and none is lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from broker.group.hashing import partition_for
from compat_tests.cluster import FAILOVER_SLACK, BrokerCluster
from compat_tests.cluster_clients import create_topic

TIMEOUT = 30.0
PARTITIONS = 3
PER_PARTITION = 20
OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 50
Record = tuple[int, int, bytes]  # partition, offset, value


class GroupMember(Protocol):
    def poll(self, timeout: float, max_records: int = 100) -> list[Record]: ...
    def commit(self) -> None: ...
    def committed(self) -> dict[int, int]: ...
    def close(self) -> None: ...


class ConfluentMember:
    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 500,
                "fetch.wait.max.ms": 100,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self.consumer.subscribe([topic])

    def poll(self, timeout: float, max_records: int = 100) -> list[Record]:
        # transient errors while leadership moves are the client's to survive
        got = self.consumer.consume(max_records, timeout)
        return [(m.partition(), m.offset(), m.value()) for m in got if not m.error()]

    def commit(self) -> None:
        self.consumer.commit(asynchronous=False)

    def committed(self) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        parts = self.consumer.committed(
            [TopicPartition(self.topic, p) for p in range(PARTITIONS)], timeout=10
        )
        return {tp.partition: tp.offset for tp in parts if tp.offset >= 0}

    def close(self) -> None:
        self.consumer.close()


class KafkaPythonMember:
    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.topic = topic
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            metadata_max_age_ms=1000,
            fetch_max_wait_ms=100,
            request_timeout_ms=15000,
        )
        # See group_worker.py: knowing the partitions before joining keeps the first assignment whole.
        self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe([topic])

    def poll(self, timeout: float, max_records: int = 100) -> list[Record]:
        batches = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        return [(r.partition, r.offset, r.value) for records in batches.values() for r in records]

    def commit(self) -> None:
        self.consumer.commit()

    def committed(self) -> dict[int, int]:
        from kafka import TopicPartition

        found = {p: self.consumer.committed(TopicPartition(self.topic, p)) for p in range(PARTITIONS)}
        return {p: o for p, o in found.items() if o is not None}

    def close(self) -> None:
        self.consumer.close()


MEMBERS: dict[str, Callable[[str, str, str], GroupMember]] = {
    "confluent-kafka": ConfluentMember,
    "kafka-python": KafkaPythonMember,
}


def _produce_all(bootstrap: str, topic: str) -> set[Record]:
    from confluent_kafka import Producer

    acked: set[Record] = set()
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked.add((msg.partition(), msg.offset(), msg.value()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p, on_delivery=delivered)
    assert producer.flush(TIMEOUT) == 0 and not errors, errors
    return acked


def _consume(member: GroupMember, count: int, timeout: float = TIMEOUT) -> list[Record]:
    """Exactly ``count`` records, bounded."""
    got: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"consumed {len(got)} of {count} records in {timeout} s"
        got += member.poll(min(remaining, 0.5), count - len(got))
    return got


def _commit(member: GroupMember, timeout: float) -> list[Record]:
    """A synchronous commit, retried while the coordinator moves (bounded); the records that the
    polls between attempts returned (the commit that succeeds covers them too)."""
    extra: list[Record] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            member.commit()
            return extra
        except Exception as exc:  # the client's own error types: coordinator moving, not available
            if time.monotonic() >= deadline:
                raise AssertionError(f"no commit succeeded within {timeout} s: {exc}") from exc
            extra += member.poll(0.2, 1)  # lets the client rediscover the coordinator


def _next_offsets(records: list[Record]) -> dict[int, int]:
    """Per partition, the offset after the last record read (0 where none was read)."""
    positions = dict.fromkeys(range(PARTITIONS), 0)
    for p, o, _ in records:
        positions[p] = max(positions[p], o + 1)
    return positions


def _committed(member: GroupMember) -> dict[int, int]:
    """The group's committed offsets, 0 where none is (kafka-python commits unread partitions
    at 0, confluent-kafka commits only what was read)."""
    return {p: member.committed().get(p, 0) for p in range(PARTITIONS)}


@pytest.mark.parametrize("client", sorted(MEMBERS))
def test_a_group_survives_kill_9_of_its_coordinator(fresh_cluster: BrokerCluster, client: str) -> None:
    cluster = fresh_cluster
    make = MEMBERS[client]
    topic = create_topic(cluster.bootstrap, "group-failover", PARTITIONS)
    produced = _produce_all(cluster.bootstrap, topic)
    group = f"failover-{uuid.uuid4().hex[:8]}"
    offsets_partition = partition_for(group, OFFSETS_PARTITIONS)

    first = make(cluster.bootstrap, group, topic)
    try:
        seen = _consume(first, PARTITIONS * PER_PARTITION // 3)
        seen += _commit(first, TIMEOUT)
        committed = _next_offsets(seen)
        assert _committed(first) == committed

        # The offsets partition is replicated three times: every replica holds the commit
        # (the coordinator answers a commit once the ISR has it).
        state = cluster.wait_for_leader(OFFSETS_TOPIC, offsets_partition, lambda leader: leader > 0, TIMEOUT)
        assert sorted(state["isr"]) == [1, 2, 3], state
        coordinator = int(state["leader"])

        cluster.kill(coordinator)
        bound = cluster.session_timeout_ms / 1000 + FAILOVER_SLACK
        new_state = cluster.wait_for_leader_change(OFFSETS_TOPIC, offsets_partition, coordinator, bound + 10)
        print(f"\nGROUP {client}: coordinator {coordinator} killed, {new_state['leader']} took over")

        # The member that lived through the kill finds the new coordinator and commits there.
        seen += _consume(first, PARTITIONS * PER_PARTITION // 3)
        seen += _commit(first, TIMEOUT)
        committed = _next_offsets(seen)
        assert _committed(first) == committed
    finally:
        first.close()

    second = make(cluster.live_bootstrap(), group, topic)
    try:
        assert _committed(second) == committed
        left = len(produced) - sum(committed.values())
        rest = _consume(second, left)
    finally:
        second.close()
    # Resumed exactly after the last commit: nothing committed comes again, nothing is skipped.
    for p in range(PARTITIONS):
        offsets = sorted(o for q, o, _ in rest if q == p)
        assert offsets == list(range(committed[p], PER_PARTITION)), (p, committed, offsets)
    assert {r for r in seen if r[1] < committed[r[0]]} | set(rest) == produced
