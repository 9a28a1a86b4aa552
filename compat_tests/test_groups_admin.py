"""Group administration through stock admin clients (confluent-kafka, kafka-python): list,
describe (members, assignments, state), alter and delete offsets, remove members, delete groups;
and what Brook wrote to ``__consumer_offsets``, read over the wire and decoded with the
internal-record schemas."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.group_worker import Member, wait_for
from compat_tests.harness import BrokerProcess
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.group_metadata_key import GroupMetadataKey
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.messages.offset_commit_key import OffsetCommitKey
from protocol.messages.offset_commit_value import OffsetCommitValue

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def member(client: str, bootstrap: str, group: str, topic: str, name: str, **cfg: Any) -> Member:
    return Member(
        client,
        bootstrap=bootstrap,
        group=group,
        topic=topic,
        session_ms=6000,
        heartbeat_ms=500,
        commit="sync",
        client_id=name,
        **cfg,
    )


def test_confluent_admin_lists_describes_alters_and_deletes(bootstrap: str) -> None:
    from confluent_kafka import (
        ConsumerGroupState,
        ConsumerGroupTopicPartitions,
        KafkaException,
        TopicPartition,
    )
    from confluent_kafka.admin import AdminClient

    topic = create_topic(bootstrap, unique_topic("adm"), 4)
    group = f"adm-{uuid.uuid4().hex[:6]}"
    produce(bootstrap, topic, 4, 5)
    pair = [member("confluent", bootstrap, group, topic, f"adm-{i}") for i in range(2)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        every = {(p, o) for p in range(4) for o in range(5)}
        wait_for(
            lambda: (
                all(len(m.assignment()) == 2 for m in pair)
                and set().union(*(m.records() for m in pair)) >= every
            ),
            TIMEOUT,
            "two members reading two partitions each",
            pair,
        )
        listed = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(15)
        assert group in {g.group_id for g in listed.valid}
        assert next(g for g in listed.valid if g.group_id == group).state == ConsumerGroupState.STABLE
        described = admin.describe_consumer_groups([group])[group].result(15)
        assert described.state == ConsumerGroupState.STABLE and described.partition_assignor == "range"
        assert not described.is_simple_consumer_group
        assert sorted(m.client_id for m in described.members) == ["adm-0", "adm-1"]
        assert all(m.host == "/127.0.0.1" for m in described.members)
        owned = [tp.partition for m in described.members for tp in m.assignment.topic_partitions]
        assert sorted(owned) == [0, 1, 2, 3]
        wait_for(
            lambda: _offsets(admin, group) == {(topic, p): 5 for p in range(4)},
            TIMEOUT,
            "the members' commits",
            pair,
        )
        with pytest.raises(KafkaException) as busy:
            admin.delete_consumer_groups([group])[group].result(15)
        assert "NON_EMPTY_GROUP" in str(busy.value) or busy.value.args[0].code() == 68
        for m in pair:
            m.close()
        wait_for(
            lambda: (
                admin.describe_consumer_groups([group])[group].result(15).state == ConsumerGroupState.EMPTY
            ),
            TIMEOUT,
            "the group to be empty",
        )
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 2)])
        admin.alter_consumer_group_offsets([request])[group].result(15)
        assert _offsets(admin, group)[(topic, 0)] == 2
        admin.delete_consumer_groups([group])[group].result(15)
        assert group not in {g.group_id for g in admin.list_consumer_groups().result(15).valid}
        assert _offsets(admin, group) == {}
    finally:
        for m in pair:
            m.stop()


def _offsets(admin: Any, group: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def test_kafka_python_admin_offsets_members_and_groups(bootstrap: str) -> None:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient, MemberToRemove
    from kafka.structs import OffsetAndMetadata

    subscribed = create_topic(bootstrap, unique_topic("kp-sub"), 2)
    other = create_topic(bootstrap, unique_topic("kp-other"), 1)
    group = f"kp-{uuid.uuid4().hex[:6]}"
    produce(bootstrap, subscribed, 2, 3)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    static = None
    try:
        # While the group is empty an admin may set offsets (generation -1).
        admin.alter_group_offsets(group, {TopicPartition(other, 0): OffsetAndMetadata(7, "set by admin", -1)})
        static = member("kafka-python", bootstrap, group, subscribed, "kp-static", instance_id="kp-inst")
        wait_for(lambda: len(static.records()) >= 6, TIMEOUT, "the static member reading", [static])
        listed = admin.list_groups(states_filter=["Stable"])
        assert (group, "Stable", "classic") in {
            (g["group_id"], g["group_state"], g["group_type"]) for g in listed
        }
        description = admin.describe_groups([group])[group]
        assert description["group_state"] == "Stable" and description["protocol_data"] == "range"
        [desc_member] = description["members"]
        assert desc_member["group_instance_id"] == "kp-inst" and desc_member["client_id"] == "kp-static"
        assert desc_member["member_assignment"]["assigned_partitions"] == [
            {"topic": subscribed, "partitions": [0, 1]}
        ]
        wait_for(
            lambda: _kp_offsets(admin, group).get((subscribed, 0)) == 3,
            TIMEOUT,
            "the member's commit",
            [static],
        )
        assert _kp_offsets(admin, group)[(other, 0)] == 7
        result = admin.delete_group_offsets(group, [TopicPartition(subscribed, 0), TopicPartition(other, 0)])
        errors = {tp.topic: err.__name__ for tp, err in result.items()}
        assert errors == {subscribed: "GroupSubscribedToTopicError", other: "NoError"}, result
        assert (other, 0) not in _kp_offsets(admin, group)
        # A static member that died keeps its place until its session times out; an admin can
        # remove it by its instance id at once.
        static.kill()
        admin.remove_group_members(group, [MemberToRemove(group_instance_id="kp-inst")])
        assert admin.describe_groups([group])[group]["group_state"] == "Empty"  # no session wait
        assert admin.delete_groups([group, "no-such-group"]) == {
            group: "OK",
            "no-such-group": "GroupIdNotFoundError",
        }
        assert group not in {g["group_id"] for g in admin.list_groups()}
    finally:
        if static is not None:
            static.stop()
        admin.close()


def _kp_offsets(admin: Any, group: str) -> dict[tuple[str, int], int]:
    offsets = admin.list_group_offsets({group: None})[group]
    return {(tp.topic, tp.partition): om.offset for tp, om in offsets.items() if om.offset >= 0}


def test_consumer_offsets_topic_holds_kafka_records(bootstrap: str) -> None:
    """Commit through confluent-kafka, read ``__consumer_offsets`` with kafka-python, and decode
    every record with the OffsetCommit/GroupMetadata key and value schemas."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    from broker.group.hashing import partition_for

    topic = create_topic(bootstrap, unique_topic("wire"), 1)
    group = f"wire-{uuid.uuid4().hex[:6]}"
    produce(bootstrap, topic, 1, 3)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "wire-client",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + TIMEOUT
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    before = int(time.time() * 1000)
    consumer.commit(offsets=[TopicPartition(topic, 0, 2, metadata="wire-meta")], asynchronous=False)
    consumer.close()

    reader = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, exclude_internal_topics=False
    )
    tp = KTopicPartition("__consumer_offsets", partition_for(group, 50))
    reader.assign([tp])
    reader.seek_to_beginning(tp)
    end = reader.end_offsets([tp])[tp]
    records = []
    deadline = time.monotonic() + TIMEOUT
    while reader.position(tp) < end and time.monotonic() < deadline:
        for batch in reader.poll(timeout_ms=200).values():
            records.extend(batch)
    reader.close()

    offsets: dict[tuple[str, str, int], OffsetCommitValue] = {}
    groups: list[GroupMetadataValue] = []
    for record in records:
        (key_version,) = struct.unpack_from(">h", record.key)
        value_version = struct.unpack_from(">h", record.value)[0] if record.value is not None else None
        if key_version in (0, 1):
            key = OffsetCommitKey.decode(record.key[2:], key_version)
            if key.group != group:
                continue  # another test's group in the same partition (its tombstones too)
            assert value_version == 3  # no expire timestamp: Kafka 3.9 writes v3
            offsets[(key.group, key.topic, key.partition)] = OffsetCommitValue.decode(record.value[2:], 3)
        else:
            assert key_version == 2
            if GroupMetadataKey.decode(record.key[2:], 2).group == group and record.value is not None:
                assert value_version == 3
                groups.append(GroupMetadataValue.decode(record.value[2:], 3))
    committed = offsets[(group, topic, 0)]
    # librdkafka sends a commit's metadata with its C string terminator; Kafka keeps it as sent.
    assert committed.offset == 2 and committed.metadata.rstrip("\x00") == "wire-meta"
    assert before - 5000 <= committed.commit_timestamp <= int(time.time() * 1000) + 5000
    assert groups, "no group metadata record for the group"
    joined, left = groups[0], groups[-1]
    assert joined.protocol_type == "consumer" and joined.protocol in ("range", "roundrobin")
    [joined_member] = joined.members
    assert joined_member.client_id == "wire-client" and joined_member.client_host == "/127.0.0.1"
    assert joined.leader == joined_member.member_id
    (subscription_version,) = struct.unpack_from(">h", joined_member.subscription)
    assert 0 <= subscription_version <= 3  # a ConsumerProtocolSubscription, as the client sent it
    subscription, _ = ConsumerProtocolSubscription.decode_from(memoryview(joined_member.subscription), 0, 2)
    assert subscription.topics == [topic]
    # after the consumer left: the next generation, empty, with no protocol
    assert left.members == [] and left.protocol is None and left.generation == joined.generation + 1
