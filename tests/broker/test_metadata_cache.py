"""UpdateMetadata into the metadata cache, and what Metadata, DescribeCluster and FindCoordinator
answer from it in cluster mode (Kafka's ZkMetadataCache)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import Broker
from broker.cluster.metadata_cache import MetadataCache
from broker.group.hashing import partition_for
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from tests.broker.conftest import Caller
from tests.broker.control_kit import LOCAL, OTHER, Node, PState, cluster_broker, update_metadata

T_ID = uuid.UUID("8d1c5a0e-51f9-4a9e-9d3d-5b8c1f0e2a11")
NODES = [Node(LOCAL, "127.0.0.1", 9092, "r1"), Node(OTHER, "10.0.0.2", 9093, "r2")]
STATES = [PState("t", 0, LOCAL, 3, [LOCAL, OTHER]), PState("t", 1, OTHER, 5, [OTHER, LOCAL], offline=[LOCAL])]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Broker]:
    b = cluster_broker(tmp_path / "cluster-data")
    try:
        yield b
    finally:
        b.log_manager.close()


@pytest.fixture
def ccall(cluster: Broker) -> Caller:
    return Caller(cluster)


def metadata(ccall: Caller, version: int, topics: list[str] | None = None) -> object:
    request = MetadataRequest(
        topics=None if topics is None else [MetadataRequestTopic(name=t) for t in topics],
        allow_auto_topic_creation=version < 4,  # the field exists from v4 only
    )
    if topics is None and version == 0:
        request.topics = []
    return ccall(request, version)


@pytest.mark.parametrize("version", range(9))
def test_update_metadata_every_version_feeds_brokers_controller_and_partitions(
    ccall: Caller, cluster: Broker, version: int
) -> None:
    response = ccall(update_metadata(version, NODES, STATES, topic_ids={"t": T_ID}), version)
    assert response.error_code == ErrorCode.NONE
    cache = cluster.metadata_cache
    assert cache.controller_id == OTHER
    assert cache.alive_broker_ids() == [LOCAL, OTHER]
    endpoints = cache.alive_brokers("PLAINTEXT")
    assert [(e.node_id, e.host, e.port) for e in endpoints] == [(1, "127.0.0.1", 9092), (2, "10.0.0.2", 9093)]
    assert [e.rack for e in endpoints] == (["r1", "r2"] if version >= 2 else [None, None])
    p1 = cache.partition(TopicPartition("t", 1))
    assert p1 is not None
    assert (p1.leader, p1.leader_epoch, p1.replicas) == (OTHER, 5, [OTHER, LOCAL])
    assert p1.offline_replicas == ([LOCAL] if version >= 4 else [])
    assert cache.topic_id("t") == (T_ID if version >= 7 else uuid.UUID(int=0))


@pytest.mark.parametrize("version", [1, 5, 9, 12])
def test_metadata_lists_every_live_broker_the_controller_and_leaders_elsewhere(
    ccall: Caller, version: int
) -> None:
    ccall(update_metadata(8, NODES, STATES, topic_ids={"t": T_ID}), 8)
    response = metadata(ccall, version)
    assert [(b.node_id, b.host, b.port) for b in response.brokers] == [
        (1, "127.0.0.1", 9092),
        (2, "10.0.0.2", 9093),
    ]
    assert response.controller_id == OTHER
    (topic,) = response.topics
    assert topic.name == "t" and topic.error_code == 0
    if version >= 10:
        assert topic.topic_id == T_ID
    leaders = [(p.partition_index, p.leader_id, p.error_code) for p in topic.partitions]
    assert leaders == [(0, LOCAL, 0), (1, OTHER, 0)]
    if version >= 7:
        assert [p.leader_epoch for p in topic.partitions] == [3, 5]
    if version >= 5:
        assert topic.partitions[1].offline_replicas == [LOCAL]


def test_describe_cluster_reads_the_cache(ccall: Caller) -> None:
    ccall(update_metadata(8, NODES, STATES), 8)
    response = ccall(DescribeClusterRequest(), 0)
    assert response.controller_id == OTHER
    assert sorted((b.broker_id, b.host, b.port, b.rack) for b in response.brokers) == [
        (1, "127.0.0.1", 9092, "r1"),
        (2, "10.0.0.2", 9093, "r2"),
    ]


def test_before_any_update_metadata_the_cluster_is_empty_and_has_no_controller(ccall: Caller) -> None:
    response = metadata(ccall, 12)
    assert response.brokers == [] and response.topics == []
    assert response.controller_id == -1


def test_a_dead_leader_is_leader_not_available(ccall: Caller) -> None:
    ccall(update_metadata(8, NODES[:1], STATES), 8)  # broker 2 not alive
    (topic,) = metadata(ccall, 12, ["t"]).topics
    p0, p1 = topic.partitions
    assert (p0.leader_id, p0.error_code) == (LOCAL, 0)
    assert (p1.leader_id, p1.error_code) == (-1, ErrorCode.LEADER_NOT_AVAILABLE)
    assert p1.leader_epoch == 5


@pytest.mark.parametrize(
    ("version", "expected"), [(5, ErrorCode.LEADER_NOT_AVAILABLE), (6, ErrorCode.LISTENER_NOT_FOUND)]
)
def test_a_leader_without_the_listener_is_listener_not_found_from_v6(
    ccall: Caller, version: int, expected: ErrorCode
) -> None:
    nodes = [Node(LOCAL, "127.0.0.1", 9092, more={"INTERNAL": 9192}), Node(OTHER, "10.0.0.2", 9093)]
    ccall(update_metadata(8, nodes, STATES), 8)
    ccall.conn.listener = "INTERNAL"
    response = metadata(ccall, version, ["t"])
    assert [b.node_id for b in response.brokers] == [LOCAL]
    p0, p1 = response.topics[0].partitions
    assert (p0.leader_id, p0.error_code) == (LOCAL, 0)
    assert (p1.leader_id, p1.error_code) == (-1, expected)


def test_v0_lists_only_live_replicas_and_says_replica_not_available(ccall: Caller) -> None:
    ccall(update_metadata(8, NODES[:1], [PState("t", 0, LOCAL, 1, [LOCAL, OTHER, 3], isr=[LOCAL, OTHER])]), 8)
    p0 = metadata(ccall, 0, ["t"]).topics[0].partitions[0]
    assert p0.error_code == ErrorCode.REPLICA_NOT_AVAILABLE
    assert p0.replica_nodes == [LOCAL] and p0.isr_nodes == [LOCAL]
    p0 = metadata(ccall, 1, ["t"]).topics[0].partitions[0]
    assert p0.error_code == 0 and p0.replica_nodes == [LOCAL, OTHER, 3]


def test_unknown_topics_and_ids(ccall: Caller) -> None:
    ccall(update_metadata(8, NODES, STATES, topic_ids={"t": T_ID}), 8)
    response = metadata(ccall, 12, ["nope", "bad/name"])
    assert [(t.name, t.error_code) for t in response.topics] == [
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION),
    ]
    by_id = ccall(MetadataRequest(topics=[MetadataRequestTopic(topic_id=T_ID, name=None)]), 12)
    assert by_id.topics[0].name == "t" and len(by_id.topics[0].partitions) == 2
    unknown = ccall(MetadataRequest(topics=[MetadataRequestTopic(topic_id=uuid.uuid4(), name=None)]), 12)
    assert unknown.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_ID


def test_leader_during_delete_removes_the_partition_and_then_the_topic(
    ccall: Caller, cluster: Broker
) -> None:
    ccall(update_metadata(8, NODES, STATES, topic_ids={"t": T_ID}), 8)
    ccall(update_metadata(8, NODES, [PState("t", 0, -2, 4, [LOCAL, OTHER])], topic_ids={"t": T_ID}), 8)
    cache = cluster.metadata_cache
    assert cache.partition(TopicPartition("t", 0)) is None
    assert cache.partition_count("t") == 1
    deleted = cache.update(
        update_metadata(8, NODES, [PState("t", 1, -2, 6, [OTHER])], topic_ids={"t": T_ID}), 8
    )
    assert deleted == [TopicPartition("t", 1)]
    assert not cache.contains("t") and cache.topic_name(T_ID) is None
    assert metadata(ccall, 12).topics == []


def test_partial_updates_keep_other_partitions(ccall: Caller, cluster: Broker) -> None:
    ccall(update_metadata(8, NODES, STATES), 8)
    ccall(update_metadata(8, NODES, [PState("u", 0, OTHER, 0, [OTHER])]), 8)
    assert sorted(cluster.metadata_cache.topics()) == ["t", "u"]


def test_an_older_controller_epoch_is_stale(ccall: Caller, cluster: Broker) -> None:
    assert ccall(update_metadata(8, NODES, STATES, controller_epoch=5), 8).error_code == 0
    stale = ccall(update_metadata(8, NODES[:1], [], controller_epoch=4), 8)
    assert stale.error_code == ErrorCode.STALE_CONTROLLER_EPOCH
    assert cluster.metadata_cache.alive_broker_ids() == [LOCAL, OTHER]  # untouched
    assert ccall(update_metadata(8, NODES[:1], [], controller_epoch=5), 8).error_code == 0
    assert cluster.metadata_cache.alive_broker_ids() == [LOCAL]


@pytest.mark.parametrize("version", [5, 8])
def test_an_older_broker_epoch_is_stale_a_newer_or_unknown_one_is_not(
    ccall: Caller, cluster: Broker, version: int
) -> None:
    cluster.broker_epoch = 100
    stale = ccall(update_metadata(version, NODES, STATES, broker_epoch=99), version)
    assert stale.error_code == ErrorCode.STALE_BROKER_EPOCH
    assert cluster.metadata_cache.alive_broker_ids() == []
    for epoch in (-1, 100, 101):
        assert ccall(update_metadata(version, NODES, STATES, broker_epoch=epoch), version).error_code == 0


def test_find_coordinator_is_the_offsets_partition_leader_in_the_cache(
    ccall: Caller, cluster: Broker
) -> None:
    group = "g"
    count = cluster.config.get("offsets.topic.num.partitions")
    assert isinstance(count, int)
    index = partition_for(group, count)
    request = FindCoordinatorRequest(key=group, key_type=0)
    batched_request = FindCoordinatorRequest(key="", key_type=0, coordinator_keys=[group])
    assert ccall(request, 1).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE  # no offsets topic yet
    assert cluster.metadata.topic("__consumer_offsets") is None  # not created locally either
    states = [PState("__consumer_offsets", i, OTHER, 0, [OTHER]) for i in range(count)]
    ccall(update_metadata(8, NODES, states), 8)
    found = ccall(request, 1)
    assert (found.error_code, found.node_id, found.host, found.port) == (0, OTHER, "10.0.0.2", 9093)
    (batched,) = ccall(batched_request, 4).coordinators
    assert (batched.node_id, batched.port) == (OTHER, 9093)
    ccall(update_metadata(8, NODES[:1], states[index : index + 1]), 8)  # its leader died
    assert ccall(request, 1).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE


def test_api_versions_advertises_the_control_apis_only_in_cluster_mode(ccall: Caller, call: Caller) -> None:
    def keys(c: Caller) -> set[int]:
        return {k.api_key for k in c(ApiVersionsRequest(), 0).api_keys}

    assert {4, 5, 6} <= keys(ccall)
    assert not {4, 5, 6} & keys(call)


@st.composite
def update_sequences(draw: st.DrawFn) -> list[list[tuple[str, int, int, int]]]:
    """Requests of (topic, partition, leader, leader epoch); leader -2 deletes the partition."""
    entry = st.tuples(
        st.sampled_from(["a", "b"]), st.integers(0, 2), st.sampled_from([-2, LOCAL, OTHER]), st.integers(0, 9)
    )
    return draw(st.lists(st.lists(entry, max_size=4), min_size=1, max_size=8))


@settings(max_examples=60, deadline=None)
@given(sequence=update_sequences(), version=st.sampled_from([4, 5, 7, 8]))
def test_the_cache_matches_a_model_of_partial_updates_and_deletions(
    sequence: list[list[tuple[str, int, int, int]]], version: int
) -> None:
    """Kafka's rules: a request sets the id of every topic it names (v7+; forgets it before), then
    applies its partitions in order; removing a topic's last partition forgets the topic and id."""
    cache = MetadataCache(BrokerId(LOCAL))
    model: dict[TopicPartition, tuple[int, int]] = {}
    known_ids: dict[str, uuid.UUID] = {}
    ids = {"a": uuid.UUID(int=0xA), "b": uuid.UUID(int=0xB)}
    for request in sequence:
        states = [PState(t, p, leader, epoch, [LOCAL, OTHER]) for t, p, leader, epoch in request]
        deleted = cache.update(update_metadata(version, NODES, states, topic_ids=ids), version)
        for topic in {t for t, *_ in request}:
            if version >= 7:
                known_ids[topic] = ids[topic]
            else:
                known_ids.pop(topic, None)
        expected_deleted: list[TopicPartition] = []
        for t, p, leader, epoch in request:
            tp = TopicPartition(t, p)
            if leader != -2:
                model[tp] = (leader, epoch)
                if tp in expected_deleted:
                    expected_deleted.remove(tp)
                continue
            had_topic = any(k.topic == t for k in model)
            model.pop(tp, None)
            if had_topic and not any(k.topic == t for k in model):
                known_ids.pop(t, None)
            if tp not in expected_deleted:
                expected_deleted.append(tp)
        # From v5 the request groups partitions by topic: the order across topics changes, never
        # within one, and topics do not affect each other.
        assert sorted(deleted) == sorted(expected_deleted)
        assert sorted(cache.topics()) == sorted({tp.topic for tp in model})
        for topic, topic_id in ids.items():
            assert cache.topic_name(topic_id) == (topic if topic in known_ids else None)
        for tp, (leader, epoch) in model.items():
            cached = cache.partition(tp)
            assert cached is not None and (cached.leader, cached.leader_epoch) == (leader, epoch)
