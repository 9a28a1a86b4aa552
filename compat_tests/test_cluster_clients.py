"""Three Brook brokers in one ZooKeeper-mode cluster, as each stock client sees them.

Every client (confluent-kafka, kafka-python, aiokafka, kcat, kafkajs) must see the three brokers
and the controller that ZooKeeper names; a topic created through each client (kcat has no admin
api: its topic is auto-created by producing, with ``default.replication.factor=3``) gets a
replication-factor-3 assignment written in ZooKeeper exactly as Kafka writes it, a partition state
per partition, and serves writes and reads through that same client on all three leaders.

A second broker started with a broker.id already in use is refused with Kafka's message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from compat_tests.clients.admin import end_offsets, unique_topic
from compat_tests.clients.drivers import BY_NAME
from compat_tests.clients.model import EARLIEST, Msg
from compat_tests.cluster import BrokerCluster
from compat_tests.cluster_clients import reading_needs_replication
from compat_tests.harness import REPO, BrokerProcess, wait_until

CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kcat", "kafkajs"]
TIMEOUT = 30.0


# -- what each client sees: (broker ids, controller id) -------------------------------------------


def _confluent_sees(bootstrap: str) -> tuple[set[int], int]:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT)
    return set(md.brokers), md.controller_id


def _kafka_python_sees(bootstrap: str) -> tuple[set[int], int]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        described = admin.describe_cluster()
    finally:
        admin.close()
    return {b["broker_id"] for b in described["brokers"]}, described["controller_id"]


def _aiokafka_sees(bootstrap: str) -> tuple[set[int], int]:
    from aiokafka.admin import AIOKafkaAdminClient

    async def describe() -> dict[str, Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
        await admin.start()
        try:
            described: dict[str, Any] = await admin.describe_cluster()
            return described
        finally:
            await admin.close()

    described = asyncio.run(asyncio.wait_for(describe(), TIMEOUT))
    return {b["node_id"] for b in described["brokers"]}, described["controller_id"]


def _kcat_sees(bootstrap: str) -> tuple[set[int], int]:
    from compat_tests.clients.tools import require_kcat

    proc = subprocess.run(
        [require_kcat(), "-b", bootstrap, "-L", "-J", "-m", "10"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    listing = json.loads(proc.stdout)
    return {b["id"] for b in listing["brokers"]}, listing["controllerid"]


def _kafkajs_sees(bootstrap: str) -> tuple[set[int], int]:
    from compat_tests.clients.node import run_kafkajs

    (described,) = run_kafkajs(
        {"op": "admin", "brokers": bootstrap.split(","), "actions": [{"describeCluster": {}}]}
    )["results"]
    return {b["nodeId"] for b in described["brokers"]}, described["controller"]


SEES: dict[str, Callable[[str], tuple[set[int], int]]] = {
    "confluent-kafka": _confluent_sees,
    "kafka-python": _kafka_python_sees,
    "aiokafka": _aiokafka_sees,
    "kcat": _kcat_sees,
    "kafkajs": _kafkajs_sees,
}


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_sees_three_brokers_and_the_controller(cluster: BrokerCluster, client: str) -> None:
    controller = cluster.controller_id()
    assert controller in cluster.ids
    # Bootstrapped from a broker that is not the controller: its metadata came from the controller.
    other = next(i for i in cluster.ids if i != controller)
    brokers, seen_controller = SEES[client](cluster.bootstrap_of(other))
    assert brokers == {1, 2, 3}
    assert seen_controller == controller


def test_brokers_are_registered_as_kafka_writes_them(cluster: BrokerCluster) -> None:
    """``/brokers/ids/<id>``: version 5, the listener's endpoint, the security protocol map."""
    for broker_id, proc in cluster.brokers.items():
        node = cluster.broker_znode(broker_id)
        assert node is not None, f"broker {broker_id} not registered"
        doc, stat = node
        assert stat.ephemeralOwner != 0, "a broker's registration must be ephemeral"
        assert doc["version"] == 5
        assert doc["endpoints"] == [f"PLAINTEXT://127.0.0.1:{proc.port}"]
        assert (doc["host"], doc["port"]) == ("127.0.0.1", proc.port)
        assert doc["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"}
        assert int(doc["timestamp"]) > 0
        assert doc["jmx_port"] == -1
    controller = json.loads(cluster.zk.get("/controller")[0])
    assert controller["version"] == 2 and controller["brokerid"] in cluster.ids
    assert int(controller["timestamp"]) > 0
    assert cluster.controller_epoch() is not None and cluster.controller_epoch() >= 1  # type: ignore[operator]


# -- topics created through each client ---------------------------------------------------------


def _create_with_confluent(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    futures = admin.create_topics([NewTopic(topic, 3, 3)], operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    futures[topic].result(timeout=TIMEOUT)


def _create_with_kafka_python(bootstrap: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        admin.create_topics([NewTopic(topic, 3, 3)], timeout_ms=int(TIMEOUT * 1000))
    finally:
        admin.close()


def _create_with_aiokafka(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
        await admin.start()
        try:
            answer = await admin.create_topics([NewTopic(topic, 3, 3)], timeout_ms=int(TIMEOUT * 1000))
            errors = [t[1] for t in answer.topic_errors if t[1] != 0]
            assert not errors, answer
        finally:
            await admin.close()

    asyncio.run(asyncio.wait_for(create(), TIMEOUT * 2))


def _create_with_kcat(bootstrap: str, topic: str) -> None:
    """kcat has no admin api: producing to a missing topic auto-creates it (RF from the broker's
    ``default.replication.factor``, 3 on this cluster)."""
    from compat_tests.clients import kcat

    kcat.produce(bootstrap, topic, [(None, b"auto-create")], acks="1", partition=0)


def _create_with_kafkajs(bootstrap: str, topic: str) -> None:
    from compat_tests.clients.node import run_kafkajs

    (created,) = run_kafkajs(
        {
            "op": "admin",
            "brokers": bootstrap.split(","),
            "actions": [
                {"createTopics": {"topics": [{"topic": topic, "numPartitions": 3, "replicationFactor": 3}]}}
            ],
        }
    )["results"]
    assert created is True


CREATE: dict[str, Callable[[str, str], None]] = {
    "confluent-kafka": _create_with_confluent,
    "kafka-python": _create_with_kafka_python,
    "aiokafka": _create_with_aiokafka,
    "kcat": _create_with_kcat,
    "kafkajs": _create_with_kafkajs,
}


def _confluent_topic_id(bootstrap: str, topic: str) -> str:
    """The topic id a client reads from Metadata, in Kafka's text form (Uuid.toString: URL-safe
    base64 without padding; confluent-kafka prints the standard alphabet)."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
    futures = admin.describe_topics(TopicCollection([topic]))
    return str(futures[topic].result(timeout=TIMEOUT).topic_id).replace("+", "-").replace("/", "_")


def check_kafka_topic_znode(cluster: BrokerCluster, topic: str, partitions: int) -> dict[int, list[int]]:
    """``/brokers/topics/<t>`` as Kafka 3.9's TopicZNode.encode writes it; the assignment."""
    doc = cluster.topic_znode(topic)
    assert doc is not None, f"/brokers/topics/{topic} missing"
    assert set(doc) == {"version", "partitions", "topic_id", "adding_replicas", "removing_replicas"}, doc
    assert doc["version"] == 3
    assert doc["adding_replicas"] == {} and doc["removing_replicas"] == {}
    raw_id = base64.urlsafe_b64decode(doc["topic_id"] + "==")
    assert len(doc["topic_id"]) == 22 and len(raw_id) == 16 and raw_id != bytes(16), doc["topic_id"]
    assert sorted(doc["partitions"], key=int) == [str(p) for p in range(partitions)]
    assignment = {int(p): replicas for p, replicas in doc["partitions"].items()}
    for p, replicas in assignment.items():
        assert sorted(replicas) == [1, 2, 3], f"partition {p}: {replicas}"
    return assignment


def check_partition_states(cluster: BrokerCluster, topic: str, assignment: dict[int, list[int]]) -> None:
    """Every partition has a state znode as Kafka's: leader = first replica, ISR = all replicas."""
    epoch = cluster.controller_epoch()
    for p, replicas in assignment.items():
        state = cluster.wait_for_leader(topic, p, lambda leader: leader >= 0, TIMEOUT)
        assert set(state) >= {"controller_epoch", "leader", "version", "leader_epoch", "isr"}, state
        assert set(state) - {"controller_epoch", "leader", "version", "leader_epoch", "isr"} <= {
            "leader_recovery_state"
        }
        assert state["version"] == 1
        assert state["leader"] == replicas[0], (p, state, replicas)
        assert sorted(state["isr"]) == sorted(replicas)
        assert state["leader_epoch"] == 0
        assert 1 <= state["controller_epoch"] <= (epoch or 0)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_topic_created_through_each_client_is_replicated_three_times_in_zookeeper(
    cluster: BrokerCluster, client: str
) -> None:
    topic = unique_topic(f"rf3-{client}")
    bootstrap = cluster.bootstrap
    CREATE[client](bootstrap, topic)
    cluster.wait_data(
        f"/brokers/topics/{topic}", lambda d, _s: bool(d), TIMEOUT, f"topic {topic} in ZooKeeper"
    )

    assignment = check_kafka_topic_znode(cluster, topic, 3)
    # Kafka's assignment puts the preferred leaders of consecutive partitions on consecutive brokers.
    assert sorted(r[0] for r in assignment.values()) == [1, 2, 3], assignment
    check_partition_states(cluster, topic, assignment)

    # What clients read agrees with ZooKeeper (every broker answers the same).
    assert _confluent_topic_id(bootstrap, topic) == cluster.topic_znode(topic)["topic_id"]  # type: ignore[index]
    expected = {p: (r[0], r) for p, r in assignment.items()}
    for broker_id in cluster.ids:
        # UpdateMetadata reaches each broker in its own time: wait (bounded) for this one's.
        cluster.wait_view(
            lambda v: {p: (s[0], list(s[1])) for p, s in v.topics.get(topic, {}).items()} == expected,
            TIMEOUT,
            f"broker {broker_id}'s Metadata of {topic} to match ZooKeeper {expected}",
            bootstrap=cluster.bootstrap_of(broker_id),
        )

    # The same client writes to all three leaders (acks=1) and reads it back (kafkajs has no
    # assign(): confluent-kafka reads for it), once the high watermarks cover the writes.
    driver = BY_NAME[client]
    sent = [Msg(f"{client}-{p}".encode(), partition=p) for p in range(3)]
    acks = driver.produce(bootstrap, topic, sent, acks="1")
    assert all(a is None or a.partition == m.partition for a, m in zip(acks, sent, strict=True)), acks
    reading_needs_replication(bootstrap, topic, 0)
    already = 1 if client == "kcat" else 0  # kcat's auto-creating record in partition 0
    wait_until(
        lambda: (
            [min(h, 1 + already * (p == 0)) for p, h in enumerate(end_offsets(bootstrap, topic, 3))]
            == [1 + already, 1, 1]
        ),
        TIMEOUT,
        interval=0.1,
        message=f"the high watermarks of {topic} to cover the writes",
    )
    reader = driver if driver.can_assign else BY_NAME["confluent-kafka"]
    got = reader.consume(bootstrap, topic, [0, 1, 2], EARLIEST)
    values = {(r.partition, r.value) for r in got}
    assert {(m.partition, m.value) for m in sent} <= values, got


# -- refused starts ---------------------------------------------------------------------------------


def test_a_duplicate_broker_id_is_refused_with_kafkas_message(
    cluster: BrokerCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    epoch_before = cluster.broker_epoch(2)
    twin = BrokerProcess(
        tmp_path_factory.mktemp("twin") / "data",
        {**cluster.brokers[2].overrides, "broker.id": "2"},
    )
    proc = subprocess.run(twin.command(), cwd=REPO, capture_output=True, timeout=60, check=False, env=_env())
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0, output
    assert "Error while creating ephemeral at /brokers/ids/2, node already exists and owner" in output, output
    # The broker that holds the id is untouched.
    assert cluster.broker_epoch(2) == epoch_before
    assert cluster.brokers[2].alive()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    return env
