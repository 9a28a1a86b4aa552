"""Admin of a 3-broker ZooKeeper-mode cluster (real processes, a real ZooKeeper) through stock
clients: topics created through confluent-kafka, kafka-python and aiokafka land in ZooKeeper as
Kafka's JSON with RF-3 assignments and leaders spread; NOT_CONTROLLER from a non-controller;
INVALID_REPLICATION_FACTOR; deletion everywhere; new partitions; configs changed on one broker
seen by another and applied to the logs; auto-creation by a producer; ``__consumer_offsets``
with RF 3 and a working consumer group.

ZooKeeper is read with a kazoo client of the test's own (not Brook's code), and waits on it are
driven by kazoo watches.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from compat_tests.clients.raw import frame, read_frame, request_header_v1
from compat_tests.harness import BrokerProcess
from compat_tests.zookeeper import ZooKeeperServer

WAIT = 30.0
OFFSETS_PARTITIONS = 5


@dataclass
class Cluster:
    brokers: dict[int, BrokerProcess]
    zk: KazooClient

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def controller(self) -> int:
        raw, _ = self.zk.get("/controller")
        return int(json.loads(raw)["brokerid"])

    def topic_json(self, topic: str) -> dict[str, Any] | None:
        if self.zk.exists(f"/brokers/topics/{topic}") is None:
            return None
        raw, _ = self.zk.get(f"/brokers/topics/{topic}")
        return dict(json.loads(raw))

    def config_json(self, topic: str) -> dict[str, Any] | None:
        if self.zk.exists(f"/config/topics/{topic}") is None:
            return None
        raw, _ = self.zk.get(f"/config/topics/{topic}")
        return dict(json.loads(raw))


def wait_children(zk: KazooClient, path: str, done: Callable[[list[str]], bool], what: str) -> None:
    """Wait (kazoo watch, no polling) until ``done(children of path)``."""
    reached = threading.Event()

    def watch(children: list[str] | None) -> bool:
        if done(list(children or [])):
            reached.set()
            return False  # stop watching
        return True

    zk.ensure_path(path)
    ChildrenWatch(zk, path, watch)
    assert reached.wait(WAIT), f"timed out waiting for {what}"


def wait_gone(zk: KazooClient, path: str) -> None:
    gone = threading.Event()

    def watch(data: bytes | None, _stat: Any) -> bool:
        if data is None:
            gone.set()
            return False
        return True

    DataWatch(zk, path, watch)
    assert gone.wait(WAIT), f"timed out waiting for {path} to go"


def wait_knows_controller(port: int) -> None:
    """Until the broker's Metadata names the controller and the three brokers: it learns them from
    the controller's UpdateMetadata, and before that answers controller -1 (as Kafka), which makes
    librdkafka's admin client wait for its next metadata refresh, minutes away."""
    from protocol import api as papi
    from protocol.messages.metadata_request import MetadataRequest

    request = MetadataRequest(topics=[], allow_auto_topic_creation=False)
    deadline = time.monotonic() + WAIT
    answer: Any = None
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.sendall(papi.encode_request(request, 12, 1))
            _, answer = papi.decode_response(read_frame(sock), request.API_KEY, 12)
        if answer.controller_id >= 0 and len(answer.brokers) == 3:
            return
        time.sleep(0.05)  # nothing signals a broker's metadata change to a client
    raise AssertionError(f"broker on port {port} did not learn the controller in {WAIT} s: {answer}")


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("zkadmin")
    connect = f"{zookeeper.connect_string}/zkadmin-{uuid.uuid4().hex[:8]}"
    settings = {
        "zookeeper.connect": connect,
        "zookeeper.session.timeout.ms": "6000",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
        # Teardown stops the brokers one by one: the last ones lead partitions whose other
        # replicas are gone, which controlled shutdown retries in vain (as Kafka); keep it short.
        "controlled.shutdown.retry.backoff.ms": "100",
    }
    brokers = {
        i: BrokerProcess(base / f"broker-{i}" / "data", {**settings, "broker.id": str(i)}) for i in (1, 2, 3)
    }
    zk = KazooClient(hosts=connect, timeout=10.0)
    try:
        for b in brokers.values():
            b.start()
        zk.start(WAIT)
        wait_children(zk, "/brokers/ids", lambda ids: len(ids) == 3, "3 registered brokers")
        elected = threading.Event()

        def on_controller(data: bytes | None, _stat: Any) -> bool:
            if data is not None:
                elected.set()
                return False
            return True

        DataWatch(zk, "/controller", on_controller)
        assert elected.wait(WAIT), "no controller elected"
        for b in brokers.values():
            wait_knows_controller(b.port)
        yield Cluster(brokers, zk)
    finally:
        for b in brokers.values():
            if b.alive():
                b.stop()
        zk.stop()
        zk.close()


def assert_rf3_in_zookeeper(cluster: Cluster, topic: str, partitions: int) -> None:
    stored = cluster.topic_json(topic)
    assert stored is not None, topic
    assert stored["version"] == 3 and stored["adding_replicas"] == {} and stored["removing_replicas"] == {}
    assert isinstance(stored["topic_id"], str) and len(stored["topic_id"]) == 22  # base64 uuid
    assert sorted(stored["partitions"], key=int) == [str(p) for p in range(partitions)]
    for replicas in stored["partitions"].values():
        assert sorted(replicas) == [1, 2, 3]


def leaders(cluster: Cluster, topic: str) -> dict[int, int]:
    """The partitions' leaders as the controller wrote them (``.../partitions/<p>/state``); the
    admin answers come once the controller's cache has them, so they are there."""
    out = {}
    for partition in cluster.zk.get_children(f"/brokers/topics/{topic}/partitions"):
        raw, _ = cluster.zk.get(f"/brokers/topics/{topic}/partitions/{partition}/state")
        out[int(partition)] = int(json.loads(raw)["leader"])
    return out


def test_topics_created_through_each_client_are_rf3_in_zookeeper(cluster: Cluster) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AioNewTopic
    from confluent_kafka.admin import AdminClient, NewTopic
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KpNewTopic

    confluent = AdminClient({"bootstrap.servers": cluster.bootstrap})
    confluent.create_topics([NewTopic("by-confluent", 3, 3)], operation_timeout=20)["by-confluent"].result(
        WAIT
    )

    kp = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:
        kp.create_topics([KpNewTopic("by-kafka-python", 3, 3)], timeout_ms=20000)
    finally:
        kp.close()

    async def aio() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
        await admin.start()
        try:
            await admin.create_topics([AioNewTopic("by-aiokafka", 3, 3)], timeout_ms=20000)
        finally:
            await admin.close()

    asyncio.run(aio())
    for topic in ("by-confluent", "by-kafka-python", "by-aiokafka"):
        assert_rf3_in_zookeeper(cluster, topic, 3)
        # each partition has its leader where its assignment starts: three different brokers
        assert sorted(leaders(cluster, topic).values()) == [1, 2, 3]


def _create_topics_v0(host: str, port: int, topic: str) -> int:
    """CreateTopics v0 by hand: one topic, 1 partition, RF 1; the topic's error code."""
    name = topic.encode()
    body = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name + struct.pack(">ihii", 1, 1, 0, 0)
    body += struct.pack(">i", 10000)
    with socket.create_connection((host, port), timeout=WAIT) as sock:
        sock.sendall(frame(request_header_v1(19, 0, 5) + body))
        answer = read_frame(sock)
    correlation_id, count, size = struct.unpack_from(">iih", answer, 0)
    assert (correlation_id, count) == (5, 1)
    (error_code,) = struct.unpack_from(">h", answer, 10 + size)
    return int(error_code)


def test_not_controller_and_invalid_replication_factor(cluster: Cluster) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    controller = cluster.controller()
    other = next(b for i, b in cluster.brokers.items() if i != controller)
    host, port = other.bootstrap.rsplit(":", 1)
    assert _create_topics_v0(host, int(port), "refused") == 41  # NOT_CONTROLLER
    assert cluster.topic_json("refused") is None
    host, port = cluster.brokers[controller].bootstrap.rsplit(":", 1)
    assert _create_topics_v0(host, int(port), "accepted") == 0

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    with pytest.raises(KafkaException) as failed:
        admin.create_topics([NewTopic("too-wide", 1, 4)], operation_timeout=20)["too-wide"].result(WAIT)
    error = failed.value.args[0]
    assert error.code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert "Replication factor: 4 larger than available brokers: 3." in error.str()


def test_delete_topic_is_gone_everywhere(cluster: Cluster) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("doomed", 2, 3)], operation_timeout=20)["doomed"].result(WAIT)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1"})
    producer.produce("doomed", b"x", partition=0)
    assert producer.flush(WAIT) == 0
    for b in cluster.brokers.values():
        assert {d.name for d in b.data_dir.iterdir()} >= {"doomed-0", "doomed-1"}
    admin.delete_topics(["doomed"], operation_timeout=20)["doomed"].result(WAIT)
    # the controller removes the deletion marker last (Kafka's completeDeleteTopic)
    wait_gone(cluster.zk, "/admin/delete_topics/doomed")
    assert cluster.topic_json("doomed") is None
    assert cluster.config_json("doomed") is None
    for b in cluster.brokers.values():
        left = [d.name for d in b.data_dir.iterdir() if d.name in ("doomed-0", "doomed-1")]
        assert left == [], (b.data_dir, left)
    assert "doomed" not in admin.list_topics(timeout=15).topics


def test_create_partitions(cluster: Cluster) -> None:
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("growing", 2, 2)], operation_timeout=20)["growing"].result(WAIT)
    before = cluster.topic_json("growing")
    admin.create_partitions([NewPartitions("growing", 4)], operation_timeout=20)["growing"].result(WAIT)
    after = cluster.topic_json("growing")
    assert before is not None and after is not None
    assert after["topic_id"] == before["topic_id"]
    assert sorted(after["partitions"], key=int) == ["0", "1", "2", "3"]
    assert all(after["partitions"][p] == before["partitions"][p] for p in ("0", "1"))
    assert all(len(r) == 2 for r in after["partitions"].values())
    assert sorted(leaders(cluster, "growing")) == [0, 1, 2, 3]


def test_configs_altered_on_one_broker_are_seen_and_applied_by_the_others(cluster: Cluster) -> None:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("tuned", 1, 3, config={"retention.ms": "3600000"})], operation_timeout=20)[
        "tuned"
    ].result(WAIT)
    assert cluster.config_json("tuned") == {"version": 1, "config": {"retention.ms": "3600000"}}
    leader = leaders(cluster, "tuned")[0]
    others = [i for i in cluster.brokers if i != leader]
    # AlterConfigs through one broker that is not the leader...
    one = AdminClient({"bootstrap.servers": cluster.brokers[others[0]].bootstrap})
    resource = ConfigResource(
        "topic", "tuned", set_config={"retention.ms": "7200000", "max.message.bytes": "200"}
    )
    one.alter_configs([resource])[resource].result(WAIT)
    assert cluster.config_json("tuned") == {
        "version": 1,
        "config": {"retention.ms": "7200000", "max.message.bytes": "200"},
    }
    # ...DescribeConfigs through another shows it...
    another = AdminClient({"bootstrap.servers": cluster.brokers[others[1]].bootstrap})
    described = another.describe_configs([ConfigResource("topic", "tuned")])
    entries = next(iter(described.values())).result(WAIT)
    assert entries["retention.ms"].value == "7200000"
    # ...and the leader's log applies it (its change notification): a record over 200 bytes is refused.
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.max.bytes": 100000})
    outcome: list[KafkaError | None] = []

    def refused() -> bool:
        outcome.clear()
        producer.produce("tuned", b"x" * 1000, callback=lambda err, _msg: outcome.append(err))
        producer.flush(WAIT)
        return bool(outcome) and outcome[0] is not None and outcome[0].code() == KafkaError.MSG_SIZE_TOO_LARGE

    # The notification reaches the leader asynchronously: the first produce may still pass.
    assert any(refused() for _ in range(50)), (leader, outcome, cluster.brokers[leader].log_tail(30))
    with pytest.raises(KafkaException):
        bad = ConfigResource("topic", "tuned", set_config={"retention.ms": "soon"})
        one.alter_configs([bad])[bad].result(WAIT)


def test_producing_to_a_new_topic_auto_creates_it(cluster: Cluster) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    delivered: list[Any] = []
    producer.produce("auto-made", b"hello", callback=lambda err, msg: delivered.append((err, msg.offset())))
    assert producer.flush(WAIT) == 0
    assert delivered == [(None, 0)]
    stored = cluster.topic_json("auto-made")
    assert stored is not None and len(stored["partitions"]) == 1  # num.partitions, default.replication.factor
    assert len(stored["partitions"]["0"]) == 1


def test_the_first_coordinator_lookup_creates_an_rf3_offsets_topic(cluster: Cluster) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    assert cluster.topic_json("__consumer_offsets") is None
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    # DescribeConsumerGroups looks the coordinator up (FindCoordinator), retrying while the
    # broker answers COORDINATOR_NOT_AVAILABLE: the first lookup writes the topic to ZooKeeper.
    # The coordinator named may not have taken its partition over yet (its LeaderAndIsr is on the
    # way): NOT_COORDINATOR then, which a client retries, as with Kafka.
    described = None
    for _ in range(20):
        [future] = admin.describe_consumer_groups(["zkadmin-group"], request_timeout=20).values()
        try:
            described = future.result(WAIT)
            break
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.NOT_COORDINATOR:
                raise
    assert described is not None
    assert described.group_id == "zkadmin-group"
    assert described.coordinator.id in (1, 2, 3)
    stored = cluster.topic_json("__consumer_offsets")
    assert stored is not None and len(stored["partitions"]) == OFFSETS_PARTITIONS
    assert all(sorted(r) == [1, 2, 3] for r in stored["partitions"].values())
    assert cluster.config_json("__consumer_offsets") == {
        "version": 1,
        "config": {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "104857600"},
    }
