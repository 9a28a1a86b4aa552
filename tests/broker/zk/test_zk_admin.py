"""ZooKeeper mode's admin side against a real ZooKeeper: CreateTopics, DeleteTopics and
CreatePartitions on the controller (NOT_CONTROLLER elsewhere), their purgatories, topic configs
in ``/config/topics`` with change notifications applied by every broker, and auto-creation."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.app import Broker
from broker.cluster.controller.assignment import BrokerPlacement, new_partitions_assignment
from broker.cluster.zk import data, paths
from broker.cluster.zk.client import KafkaZkClient
from broker.cluster.zk_admin import await_cache
from broker.handlers.configs_common import OP_APPEND, OP_SET, RESOURCE_TOPIC
from broker.replica.control import PartitionTransition
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_configs_request import AlterableConfig, AlterConfigsRequest, AlterConfigsResource
from protocol.messages.create_partitions_request import (
    CreatePartitionsAssignment,
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from protocol.messages.create_topics_request import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.incremental_alter_configs_request import (
    AlterableConfig as IncrementalConfig,
)
from protocol.messages.incremental_alter_configs_request import (
    AlterConfigsResource as IncrementalResource,
)
from protocol.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from tests.broker.control_kit import Node, PState, leader_and_isr
from tests.broker.zk.conftest import run
from tests.broker.zk.zk_admin_kit import StandInController, call, connect_zk, stop_broker, zk_broker

WAIT_MS = 10_000
THREE = [Node(1, "127.0.0.1", 9092), Node(2, "127.0.0.1", 9093), Node(3, "127.0.0.1", 9094)]


@dataclass
class Cluster:
    zk: KafkaZkClient
    controller_broker: Broker
    other: Broker
    controller: StandInController


@asynccontextmanager
async def cluster(
    tmp_path: Path, connect: str, nodes: list[Node] = THREE, **overrides: str
) -> AsyncIterator[Cluster]:
    """Broker 1 (the active controller) and broker 2, each with its own ZooKeeper session."""
    zk1, zk2 = await connect_zk(connect), await connect_zk(connect)
    b1 = zk_broker(tmp_path / "b1", zk1, 1, controller=True, **overrides)
    b2 = zk_broker(tmp_path / "b2", zk2, 2, controller=False, **overrides)
    controller = StandInController(zk1, [b1, b2], nodes)
    try:
        await controller.start()
        await b1.start_zk_admin()
        await b2.start_zk_admin()
        yield Cluster(zk1, b1, b2, controller)
    finally:
        for b in (b1, b2):
            await stop_broker(b)
        await zk1.close()
        await zk2.close()


def create(
    *topics: CreatableTopic, timeout_ms: int = WAIT_MS, validate_only: bool = False
) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=list(topics), timeout_ms=timeout_ms, validate_only=validate_only)


def topic(name: str, partitions: int = 3, rf: int = 3, **configs: str) -> CreatableTopic:
    return CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=rf,
        configs=[CreatableTopicConfig(k.replace("_", "."), v) for k, v in configs.items()],
    )


async def znode_json(zk: KafkaZkClient, path: str) -> dict[str, object] | None:
    got = await zk.get_data(path)
    return None if got is None else json.loads(got[0])


def run_in(
    tmp_path: Path, connect: str, body: Callable[[Cluster], Awaitable[None]], **overrides: str
) -> None:
    async def main() -> None:
        async with cluster(tmp_path, connect, **overrides) as c:
            await body(c)

    run(main())


def test_create_topics_writes_kafkas_znodes_and_waits_for_leaders(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        response = await call(c.controller_broker, create(topic("orders", 4, 3, retention_ms="12345")), 7)
        [result] = response.topics
        assert (result.error_code, result.error_message) == (ErrorCode.NONE, None)
        assert (result.num_partitions, result.replication_factor) == (4, 3)
        assert {e.name: e.value for e in result.configs}["retention.ms"] == "12345"
        stored = await znode_json(c.zk, paths.topic("orders"))
        assert stored is not None and set(stored) == {
            "version",
            "partitions",
            "adding_replicas",
            "removing_replicas",
            "topic_id",
        }
        assert (
            stored["version"] == 3 and stored["adding_replicas"] == {} and stored["removing_replicas"] == {}
        )
        partitions = stored["partitions"]
        assert isinstance(partitions, dict) and sorted(partitions) == ["0", "1", "2", "3"]
        assert all(sorted(r) == [1, 2, 3] for r in partitions.values())
        # leaders (first replicas) spread over the brokers
        assert {r[0] for r in partitions.values()} == {1, 2, 3}
        assert (
            data.decode_topic("orders", (await c.zk.get_data(paths.topic("orders")))[0]).topic_id
            == result.topic_id
        )  # type: ignore[index]
        assert await c.zk.get_entity_config("topics", "orders") == {"retention.ms": "12345"}
        # answered once leaders were in the cache: both brokers have them
        for b in (c.controller_broker, c.other):
            assert b.metadata_cache.partition_count("orders") == 4
        # the name is taken now, in ZooKeeper and in the cache
        again = await call(c.controller_broker, create(topic("orders")), 7)
        assert again.topics[0].error_code == ErrorCode.TOPIC_ALREADY_EXISTS

    run_in(tmp_path, connect, body)


def test_create_topics_is_for_the_controller_only(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        response = await call(c.other, create(topic("a"), topic("b")), 5)
        assert [(t.name, t.error_code) for t in response.topics] == [
            ("a", ErrorCode.NOT_CONTROLLER),
            ("b", ErrorCode.NOT_CONTROLLER),
        ]
        assert await c.zk.exists(paths.topic("a")) is None
        deleted = await call(c.other, DeleteTopicsRequest(topic_names=["a"], timeout_ms=WAIT_MS), 4)
        assert deleted.responses[0].error_code == ErrorCode.NOT_CONTROLLER
        added = await call(
            c.other,
            CreatePartitionsRequest(topics=[CreatePartitionsTopic("a", 5, None)], timeout_ms=WAIT_MS),
            3,
        )
        assert added.results[0].error_code == ErrorCode.NOT_CONTROLLER

    run_in(tmp_path, connect, body)


def test_create_topics_validation(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        b = c.controller_broker
        too_many = await call(b, create(topic("wide", 1, 4)), 7)
        assert too_many.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR
        assert too_many.topics[0].error_message == "Replication factor: 4 larger than available brokers: 3."
        explicit = CreatableTopic(
            name="placed",
            num_partitions=-1,
            replication_factor=-1,
            assignments=[CreatableReplicaAssignment(0, [1, 7])],
        )
        unknown = await call(b, create(explicit), 7)
        assert unknown.topics[0].error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT
        bad_config = await call(b, create(topic("cfg", 1, 1, retention_ms="soon")), 7)
        assert bad_config.topics[0].error_code == ErrorCode.INVALID_CONFIG
        checked = await call(b, create(topic("dry", 2, 2), validate_only=True), 7)
        assert checked.topics[0].error_code == ErrorCode.NONE
        assert (checked.topics[0].num_partitions, checked.topics[0].replication_factor) == (2, 2)
        for name in ("wide", "placed", "cfg", "dry"):
            assert await c.zk.exists(paths.topic(name)) is None
            assert await c.zk.exists(paths.config_entity("topics", name)) is None
        explicit.assignments = [CreatableReplicaAssignment(0, [3, 1]), CreatableReplicaAssignment(1, [2, 3])]
        placed = await call(b, create(explicit), 7)
        assert placed.topics[0].error_code == ErrorCode.NONE
        stored = await c.zk.get_topic_assignment("placed")
        assert stored is not None and stored[0].partitions == {0: [3, 1], 1: [2, 3]}

    run_in(tmp_path, connect, body)


def test_rack_aware_placement_over_the_live_brokers(tmp_path: Path, connect: str) -> None:
    nodes = [Node(i, "127.0.0.1", 9090 + i, rack=f"r{i % 3}") for i in range(1, 7)]

    async def main() -> None:
        async with cluster(tmp_path, connect, nodes) as c:
            response = await call(c.controller_broker, create(topic("racked", 12, 3)), 7)
            assert response.topics[0].error_code == ErrorCode.NONE
            stored = await c.zk.get_topic_assignment("racked")
            assert stored is not None
            racks = {n.broker_id: n.rack for n in nodes}
            for replicas in stored[0].partitions.values():
                assert len({racks[b] for b in replicas}) == 3, replicas

    run(main())


def test_the_purgatory_times_out_and_timeout_zero_answers_at_once(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        c.controller.paused = True
        timed_out = await call(c.controller_broker, create(topic("slow", 2, 1), timeout_ms=300), 7)
        result = timed_out.topics[0]
        assert (result.error_code, result.num_partitions) == (ErrorCode.REQUEST_TIMED_OUT, -1)
        assert await c.zk.exists(paths.topic("slow")) is not None  # written all the same, as Kafka
        at_once = await call(c.controller_broker, create(topic("quick", 1, 1), timeout_ms=0), 7)
        assert at_once.topics[0].error_code == ErrorCode.NONE
        assert not c.controller_broker.metadata_cache.contains("quick")
        c.controller.resume()
        assert await await_cache(c.controller_broker.metadata_cache, lambda m: m.contains("quick"), 10)

    run_in(tmp_path, connect, body)


def test_delete_topics_by_name_and_by_id(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        b = c.controller_broker
        created = await call(b, create(topic("t1", 1, 1), topic("t2", 2, 2)), 7)
        t2_id = created.topics[1].topic_id
        response = await call(
            b,
            DeleteTopicsRequest(
                topics=[
                    DeleteTopicState("t1"),
                    DeleteTopicState(None, t2_id),
                    DeleteTopicState(None, uuid.uuid4()),
                ],
                timeout_ms=WAIT_MS,
            ),
            6,
        )
        assert [(r.name, r.error_code) for r in response.responses] == [
            ("t1", ErrorCode.NONE),
            ("t2", ErrorCode.NONE),
            (None, ErrorCode.UNKNOWN_TOPIC_ID),
        ]
        assert response.responses[1].topic_id == t2_id
        for broker in (b, c.other):
            assert not broker.metadata_cache.contains("t1") and not broker.metadata_cache.contains("t2")
        missing = await call(b, DeleteTopicsRequest(topic_names=["t1"], timeout_ms=WAIT_MS), 5)
        assert missing.responses[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    run_in(tmp_path, connect, body)


def test_delete_topics_disabled(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        await call(c.controller_broker, create(topic("kept", 1, 1)), 7)
        response = await call(
            c.controller_broker, DeleteTopicsRequest(topic_names=["kept"], timeout_ms=WAIT_MS), 5
        )
        assert response.responses[0].error_code == ErrorCode.TOPIC_DELETION_DISABLED
        old = await call(
            c.controller_broker, DeleteTopicsRequest(topic_names=["kept"], timeout_ms=WAIT_MS), 2
        )
        assert old.responses[0].error_code == ErrorCode.INVALID_REQUEST
        assert await c.zk.exists(paths.delete_topic("kept")) is None

    run_in(tmp_path, connect, body, **{"delete.topic.enable": "false"})


def test_create_partitions_continues_from_partition_zero(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        b = c.controller_broker
        await call(b, create(topic("grow", 3, 2)), 7)
        before = await c.zk.get_topic_assignment("grow")
        assert before is not None
        request = CreatePartitionsRequest(topics=[CreatePartitionsTopic("grow", 5, None)], timeout_ms=WAIT_MS)
        response = await call(b, request, 3)
        assert response.results[0].error_code == ErrorCode.NONE
        after = await c.zk.get_topic_assignment("grow")
        assert after is not None and after[0].topic_id == before[0].topic_id
        existing = {p: [BrokerId(x) for x in r] for p, r in before[0].partitions.items()}
        expected = new_partitions_assignment(
            existing, [BrokerPlacement(BrokerId(n.broker_id)) for n in THREE], 5
        )
        assert {p: list(r) for p, r in after[0].partitions.items()} == {**before[0].partitions, **expected}
        assert b.metadata_cache.partition_count("grow") == 5
        smaller = await call(b, CreatePartitionsRequest(topics=[CreatePartitionsTopic("grow", 4, None)]), 3)
        assert smaller.results[0].error_code == ErrorCode.INVALID_PARTITIONS
        explicit = CreatePartitionsTopic("grow", 6, [CreatePartitionsAssignment([2, 9])])
        unknown = await call(b, CreatePartitionsRequest(topics=[explicit], timeout_ms=WAIT_MS), 3)
        assert unknown.results[0].error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT
        explicit.assignments = [CreatePartitionsAssignment([3, 1])]
        placed = await call(b, CreatePartitionsRequest(topics=[explicit], timeout_ms=WAIT_MS), 3)
        assert placed.results[0].error_code == ErrorCode.NONE
        final = await c.zk.get_topic_assignment("grow")
        assert final is not None and final[0].partitions[5] == [3, 1]

    run_in(tmp_path, connect, body)


def test_topic_configs_are_stored_in_zookeeper_and_applied_by_every_broker(
    tmp_path: Path, connect: str
) -> None:
    async def body(c: Cluster) -> None:
        await call(c.controller_broker, create(topic("conf", 1, 2, retention_ms="1000")), 7)
        # broker 2 gets its replica from the controller: the log is made with the topic's config
        states = [PState("conf", 0, 1, 1, [1, 2])]
        ids = {"conf": c.other.metadata_cache.topic_id("conf")}
        answer = await call(c.other, leader_and_isr(6, states, controller_id=1, topic_ids=ids), 6)
        assert answer.error_code == ErrorCode.NONE
        local = c.other.log_manager.get_log("conf", 0)
        assert local is not None and local.config.retention_ms == 1000
        # AlterConfigs on broker 2 (not the controller: configs go to any broker)
        watcher = c.other.zk_admin.config_watcher  # type: ignore[union-attr]
        assert watcher is not None
        watcher.processed.clear()
        alter = AlterConfigsRequest(
            resources=[
                AlterConfigsResource(RESOURCE_TOPIC, "conf", [AlterableConfig("retention.ms", "2000")])
            ]
        )
        altered = await call(c.other, alter, 1)
        assert altered.responses[0].error_code == ErrorCode.NONE
        assert await c.zk.get_entity_config("topics", "conf") == {"retention.ms": "2000"}
        changes = await c.zk.get_config_changes()
        assert changes and changes[-1][1] == "topics/conf"
        await await_event(watcher.processed)
        assert local.config.retention_ms == 2000
        # DescribeConfigs on broker 1 reads ZooKeeper
        described = await call(
            c.controller_broker,
            DescribeConfigsRequest(
                resources=[DescribeConfigsResource(RESOURCE_TOPIC, "conf", ["retention.ms"])]
            ),
            4,
        )
        [entry] = described.results[0].configs
        assert (entry.name, entry.value, entry.config_source) == ("retention.ms", "2000", 1)
        # IncrementalAlterConfigs keeps the other overrides
        incremental = IncrementalAlterConfigsRequest(
            resources=[
                IncrementalResource(
                    RESOURCE_TOPIC,
                    "conf",
                    [
                        IncrementalConfig("cleanup.policy", OP_APPEND, "compact"),
                        IncrementalConfig("segment.ms", OP_SET, "60000"),
                    ],
                )
            ]
        )
        watcher.processed.clear()
        done = await call(c.controller_broker, incremental, 1)
        assert done.responses[0].error_code == ErrorCode.NONE
        assert await c.zk.get_entity_config("topics", "conf") == {
            "retention.ms": "2000",
            "cleanup.policy": "delete,compact",
            "segment.ms": "60000",
        }
        await await_event(watcher.processed)
        assert local.config.segment_ms == 60000
        unknown = await call(
            c.other,
            DescribeConfigsRequest(resources=[DescribeConfigsResource(RESOURCE_TOPIC, "nope", None)]),
            4,
        )
        assert unknown.results[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        missing = AlterConfigsRequest(resources=[AlterConfigsResource(RESOURCE_TOPIC, "nope", [])])
        assert (await call(c.other, missing, 1)).responses[
            0
        ].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    run_in(tmp_path, connect, body)


async def await_event(event: object) -> None:
    import asyncio

    assert isinstance(event, asyncio.Event)
    await asyncio.wait_for(event.wait(), 10)


def test_metadata_auto_creates_through_zookeeper_on_any_broker(tmp_path: Path, connect: str) -> None:
    async def body(c: Cluster) -> None:
        request = MetadataRequest(topics=[MetadataRequestTopic(name="auto")], allow_auto_topic_creation=True)
        first = await call(c.other, request, 9)
        assert first.topics[0].error_code == ErrorCode.LEADER_NOT_AVAILABLE
        stored = await c.zk.get_topic_assignment("auto")
        assert stored is not None and len(stored[0].partitions) == 1  # num.partitions
        assert await await_cache(c.other.metadata_cache, lambda m: m.contains("auto"), 10)
        again = await call(c.other, request, 9)
        assert again.topics[0].error_code == ErrorCode.NONE
        not_allowed = MetadataRequest(
            topics=[MetadataRequestTopic(name="manual")], allow_auto_topic_creation=False
        )
        assert (await call(c.other, not_allowed, 9)).topics[
            0
        ].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert await c.zk.exists(paths.topic("manual")) is None

    run_in(tmp_path, connect, body)


def test_find_coordinator_creates_the_offsets_topic_once_enough_brokers_live(
    tmp_path: Path, connect: str
) -> None:
    async def main() -> None:
        async with cluster(tmp_path, connect, THREE[:1], **{"offsets.topic.num.partitions": "5"}) as c:
            lookup = FindCoordinatorRequest(key="g", key_type=0)
            alone = await call(c.other, lookup, 2)
            assert alone.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
            assert await c.zk.exists(paths.topic("__consumer_offsets")) is None
            c.controller.nodes = list(THREE)
            c.controller.resume()
            assert await await_cache(c.other.metadata_cache, lambda m: len(m.alive) == 3, 10)
            first = await call(c.other, lookup, 2)
            assert first.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
            stored = await c.zk.get_topic_assignment("__consumer_offsets")
            assert stored is not None and len(stored[0].partitions) == 5
            assert all(len(r) == 3 for r in stored[0].partitions.values())
            assert await c.zk.get_entity_config("topics", "__consumer_offsets") == {
                "cleanup.policy": "compact",
                "compression.type": "producer",
                "segment.bytes": "104857600",
            }
            offsets = TopicPartition("__consumer_offsets", 0)
            assert await await_cache(c.other.metadata_cache, lambda m: m.partition(offsets) is not None, 10)
            found = await call(c.other, lookup, 2)
            assert found.error_code == ErrorCode.NONE and found.node_id in (1, 2, 3)

    run(main())


def test_a_config_change_during_log_creation_reaches_the_new_log(tmp_path: Path, connect: str) -> None:
    """LeaderAndIsr reads the topic's config before its disk work; a change the watcher applies
    meanwhile (no log to apply it to yet) is caught up once the log exists."""

    async def body(c: Cluster) -> None:
        await call(c.controller_broker, create(topic("racy", 1, 2, retention_ms="1000")), 7)
        admin = c.other.zk_admin
        assert admin is not None

        class ChangeDuringDiskWork:
            async def run(self, work: Callable[..., Any], *args: Any) -> Any:
                admin.apply_topic_config("racy", {"retention.ms": "5000"})  # the watcher, meanwhile
                return work(*args)

        transition = PartitionTransition(
            TopicPartition("racy", 0),
            c.other.metadata_cache.topic_id("racy"),
            BrokerId(1),
            1,
            [1, 2],
            [1, 2],
            0,
        )
        error, errors = await c.other.replica_manager.become_leader_or_follower(
            1, 1, [transition], ChangeDuringDiskWork()
        )
        assert error == ErrorCode.NONE and errors == {transition.tp: ErrorCode.NONE}
        local = c.other.log_manager.get_log("racy", 0)
        assert local is not None and local.config.retention_ms == 5000

    run_in(tmp_path, connect, body)
