"""Partition reassignment in a four-broker cluster of real processes, as Kafka 3.9's ZooKeeper-mode
controller runs it: a partition on brokers {1, 2} holding acknowledged records (acks=all) moves
to {3, 4}, through kafka-python's AdminClient (AlterPartitionReassignments, api 45; confluent-kafka
2.16 has no such call) and through ``/admin/reassign_partitions`` written directly (the legacy
path of kafka-reassign-partitions.sh). The new replicas catch up and join the ISR, leadership
moves to them, the old replicas stop and their logs are deleted, the assignment znode ends with
the target replicas only, and every record is read back from the new leader.
ListPartitionReassignments (api 46) shows the reassignment while it runs and nothing after."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.admin import unique_topic
from compat_tests.cluster import BrokerCluster, cluster_of
from compat_tests.cluster_clients import SteadyProducer, new_consumer, read_from
from compat_tests.zookeeper import ZooKeeperServer

TIMEOUT = 60.0
RECORDS = 3000


@pytest.fixture(scope="module")
def four(zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerCluster]:
    yield from cluster_of(
        zookeeper.connect_string, tmp_path_factory.mktemp("reassign"), size=4, offsets_replication_factor=1
    )


def _topic_on(cluster: BrokerCluster, prefix: str, replicas: list[int]) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique_topic(prefix)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, 1, replica_assignment=[replicas])],
        operation_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )
    futures[topic].result(timeout=TIMEOUT)
    _wait_isr(cluster, topic, set(replicas))
    return topic


def _state(raw: bytes | None) -> dict[str, Any] | None:
    return None if not raw else json.loads(raw)


def _wait_isr(
    cluster: BrokerCluster, topic: str, isr: set[int], leader_in: set[int] | None = None
) -> dict[str, Any]:
    def ok(raw: bytes | None, _stat: Any) -> bool:
        state = _state(raw)
        return (
            state is not None
            and set(state["isr"]) == isr
            and state["leader"] in (leader_in if leader_in is not None else isr)
        )

    raw, _ = cluster.wait_data(
        f"/brokers/topics/{topic}/partitions/0/state", ok, TIMEOUT, f"{topic}-0 ISR {sorted(isr)}"
    )
    state = _state(raw)
    assert state is not None
    return state


def _produce(cluster: BrokerCluster, topic: str, count: int = RECORDS) -> list[bytes]:
    """``count`` acknowledged (acks=all) records of about 215 bytes to partition 0, in order: the
    producer is idempotent, since a plain one may reorder what it retries (the leader may not
    serve the new topic yet when the first records arrive), as Kafka's clients do."""
    values = [b"record-%05d-" % i + b"x" * 200 for i in range(count)]
    producer = SteadyProducer(cluster.bootstrap, acks="all", **{"enable.idempotence": True})
    try:
        deliveries = producer.send_and_wait(topic, values, 0)
    finally:
        producer.close()
    assert [d.error for d in deliveries] == [None] * count
    return values


def _wait_assignment(cluster: BrokerCluster, topic: str, replicas: list[int]) -> dict[str, Any]:
    def done(raw: bytes | None, _stat: Any) -> bool:
        znode = _state(raw)
        return (
            znode is not None
            and znode["partitions"] == {"0": replicas}
            and not znode.get("adding_replicas")
            and not znode.get("removing_replicas")
        )

    raw, _ = cluster.wait_data(f"/brokers/topics/{topic}", done, TIMEOUT, f"{topic} assigned to {replicas}")
    znode = _state(raw)
    assert znode is not None
    return znode


def _log_dir(cluster: BrokerCluster, broker: int, topic: str) -> Path:
    return cluster.brokers[broker].data_dir / f"{topic}-0"


def _wait_logs_gone(cluster: BrokerCluster, brokers: list[int], topic: str) -> None:
    """The old replicas' logs are deleted as Kafka deletes them: the directory is renamed
    ``<topic>-0.<uuid>-delete`` at once and removed after ``file.delete.delay.ms``. Bounded poll."""
    deadline = time.monotonic() + TIMEOUT
    for broker in brokers:
        data = cluster.brokers[broker].data_dir
        while live := _live_logs(data, topic):
            assert time.monotonic() < deadline, f"broker {broker} still has {live}"
            time.sleep(0.1)


def _live_logs(data: Path, topic: str) -> list[str]:
    return [
        p.name for p in data.iterdir() if p.name.startswith(f"{topic}-0") and not p.name.endswith("-delete")
    ]


def _read_all(cluster: BrokerCluster, topic: str, leader: int, values: list[bytes]) -> None:
    consumer = new_consumer(cluster.bootstrap_of(leader))
    try:
        got = read_from(consumer, topic, 0, 0, len(values), timeout=TIMEOUT)
    finally:
        consumer.close()
    assert [m.value() for m in got] == values
    assert [m.offset() for m in got] == list(range(len(values)))


def test_reassign_through_the_admin_api(four: BrokerCluster) -> None:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition

    cluster = four
    topic = _topic_on(cluster, "api-moved", [1, 2])
    values = _produce(cluster, topic)
    tp = KTopicPartition(topic, 0)
    controller = cluster.controller_id()
    assert controller is not None
    admin = KafkaAdminClient(
        bootstrap_servers=cluster.bootstrap_of(controller), request_timeout_ms=int(TIMEOUT * 1000)
    )
    try:
        assert admin.list_partition_reassignments() == {}  # connected to the controller first
        # A target replica frozen (not the controller): the reassignment cannot complete while
        # the listing is taken. Well within the session timeout, so it stays registered.
        frozen = 4 if controller != 4 else 3
        cluster.pause(frozen)
        try:
            assert admin.alter_partition_reassignments({tp: [3, 4]}) == {tp: None}
            ongoing = admin.list_partition_reassignments()
        finally:
            cluster.resume(frozen)
        assert ongoing == {
            tp: {"replicas": [3, 4, 1, 2], "adding_replicas": [3, 4], "removing_replicas": [1, 2]}
        }

        znode = _wait_assignment(cluster, topic, [3, 4])
        state = _wait_isr(cluster, topic, {3, 4})
        assert state["leader"] == 3
        assert znode["topic_id"]
        assert admin.list_partition_reassignments() == {}
        # Nothing left to cancel.
        cancelled = admin.alter_partition_reassignments({tp: None})
        assert cancelled[tp] is not None and cancelled[tp].__name__ == "NoReassignmentInProgressError"
    finally:
        admin.close()
    _wait_logs_gone(cluster, [1, 2], topic)
    assert _log_dir(cluster, 3, topic).is_dir() and _log_dir(cluster, 4, topic).is_dir()
    _read_all(cluster, topic, 3, values)


def test_reassign_through_the_znode(four: BrokerCluster) -> None:
    cluster = four
    topic = _topic_on(cluster, "znode-moved", [1, 2])
    values = _produce(cluster, topic)
    request = {"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [4, 3]}]}
    cluster.zk.create("/admin/reassign_partitions", json.dumps(request).encode(), makepath=True)

    cluster.wait_data(
        "/admin/reassign_partitions",
        lambda raw, stat: stat is None,
        TIMEOUT,
        "the reassignment znode's deletion",
    )
    _wait_assignment(cluster, topic, [4, 3])
    state = _wait_isr(cluster, topic, {3, 4})
    assert state["leader"] == 4
    _wait_logs_gone(cluster, [1, 2], topic)
    _read_all(cluster, topic, 4, values)


def test_a_broker_that_is_not_the_controller_answers_not_controller(four: BrokerCluster) -> None:
    import asyncio

    from broker.network.client import BrokerConnection, ClientConfig
    from protocol.messages.alter_partition_reassignments_request import (
        AlterPartitionReassignmentsRequest,
        ReassignablePartition,
        ReassignableTopic,
    )
    from protocol.messages.list_partition_reassignments_request import ListPartitionReassignmentsRequest

    controller = four.controller_id()
    other = next(b for b in four.ids if b != controller)

    async def ask() -> tuple[int, int]:
        conn = await BrokerConnection.open(
            other, "127.0.0.1", four.brokers[other].port, ClientConfig(client_id="reassign-test")
        )
        try:
            alter = AlterPartitionReassignmentsRequest(
                topics=[ReassignableTopic("t", [ReassignablePartition(0, [1])])]
            )
            altered = (await asyncio.wait_for(conn.request(alter, version=0), TIMEOUT)).body
            listed = (
                await asyncio.wait_for(conn.request(ListPartitionReassignmentsRequest(), version=0), TIMEOUT)
            ).body
            assert altered.responses == [] and listed.topics == []
            return altered.error_code, listed.error_code
        finally:
            conn.close()
            await conn.wait_closed()

    assert asyncio.run(ask()) == (41, 41)  # NOT_CONTROLLER


def test_a_new_controller_resumes_a_reassignment_in_flight(four: BrokerCluster) -> None:
    """The controller moves (its /controller znode deleted, as Kafka's admin tools may) while a
    target replica is frozen: the next controller finds the adding and removing replicas in the
    assignment znode and completes the reassignment (Kafka's initializePartitionReassignments)."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition

    cluster = four
    topic = _topic_on(cluster, "resumed", [1, 2])
    values = _produce(cluster, topic)
    controller = cluster.controller_id()
    epoch = cluster.controller_epoch()
    assert controller is not None and epoch is not None
    admin = KafkaAdminClient(
        bootstrap_servers=cluster.bootstrap_of(controller), request_timeout_ms=int(TIMEOUT * 1000)
    )
    try:
        assert admin.list_partition_reassignments() == {}
        frozen = 4 if controller != 4 else 3
        cluster.pause(frozen)
        try:
            assert admin.alter_partition_reassignments({KTopicPartition(topic, 0): [3, 4]}) == {
                KTopicPartition(topic, 0): None
            }
            cluster.zk.delete("/controller")
            cluster.wait_controller(min_epoch=epoch + 1)
        finally:
            cluster.resume(frozen)
    finally:
        admin.close()
    _wait_assignment(cluster, topic, [3, 4])
    _wait_isr(cluster, topic, {3, 4})
    _wait_logs_gone(cluster, [1, 2], topic)
    _read_all(cluster, topic, 3, values)


def _alter(cluster: BrokerCluster, resources: list[Any]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for resource in resources:  # librdkafka sends a BROKER resource to that broker: one a call
        admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result(timeout=TIMEOUT)


def _config(kind: str, name: str, entries: dict[str, str | None]) -> Any:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    ops = [
        ConfigEntry(
            key,
            value or "",
            incremental_operation=AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET,
        )
        for key, value in entries.items()
    ]
    return ConfigResource(getattr(ConfigResource.Type, kind), name, incremental_configs=ops)


def _copied(cluster: BrokerCluster, brokers: list[int], topic: str) -> list[int]:
    """Record bytes each replica holds."""
    sizes = []
    for broker in brokers:
        directory = _log_dir(cluster, broker, topic)
        sizes.append(sum(p.stat().st_size for p in directory.glob("*.log")) if directory.is_dir() else 0)
    return sizes


@pytest.mark.parametrize("side", ["leader", "follower"])
def test_a_throttled_reassignment_is_held_to_its_rate(four: BrokerCluster, side: str) -> None:
    """What ``kafka-reassign-partitions --throttle`` sets, one side at a time: the
    ``<side>.replication.throttled.rate`` of every broker (100 kB/s, dynamic, through
    IncrementalAlterConfigs) and the topic's ``<side>.replication.throttled.replicas`` (the
    current replicas for the leader side, the new ones for the follower side). About 2.7 MB must
    move: the first fetch takes a full ``replica.fetch.max.bytes`` (1 MiB) and puts the rate at
    1 MiB/s, so no second fetch may come for about ten seconds (Kafka's SimpleRate over 11
    one-second windows); unthrottled the whole move takes well under a second. Removing the
    throttle lets it finish."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition

    cluster = four
    topic = _topic_on(cluster, f"throttled-{side}", [1, 2])
    values = _produce(cluster, topic, 4 * RECORDS)
    total = min(_copied(cluster, [1, 2], topic))
    assert total > 2 * 1024 * 1024
    rate = f"{side}.replication.throttled.rate"
    replicas = "0:1,0:2" if side == "leader" else "0:3,0:4"
    _alter(
        cluster,
        [_config("BROKER", str(b), {rate: "100000"}) for b in cluster.ids]
        + [_config("TOPIC", topic, {f"{side}.replication.throttled.replicas": replicas})],
    )
    controller = cluster.controller_id()
    assert controller is not None
    admin = KafkaAdminClient(
        bootstrap_servers=cluster.bootstrap_of(controller), request_timeout_ms=int(TIMEOUT * 1000)
    )
    try:
        tp = KTopicPartition(topic, 0)
        assert admin.alter_partition_reassignments({tp: [3, 4]}) == {tp: None}
        started = time.monotonic()
        deadline = started + TIMEOUT
        while not any(_copied(cluster, [3, 4], topic)):
            assert time.monotonic() < deadline, "the new replicas never fetched"
            time.sleep(0.05)
        # Three seconds after the first fetch landed: at most that one fetch's worth on either.
        time.sleep(3.0)
        held = max(_copied(cluster, [3, 4], topic))
        print(
            f"\nTHROTTLE {side}: {held:,} of {total:,} bytes copied after {time.monotonic() - started:.1f} s"
        )
        assert 0 < held <= 1024 * 1024 + 64 * 1024 < total
        assert admin.list_partition_reassignments() != {}
        _alter(cluster, [_config("BROKER", str(b), {rate: None}) for b in cluster.ids])
        _wait_assignment(cluster, topic, [3, 4])
        _wait_isr(cluster, topic, {3, 4})
    finally:
        admin.close()
    _read_all(cluster, topic, 3, values)


def _configs_of(kind: str, name: str) -> str:
    from compat_tests.test_cli import ok

    return ok(
        "configs",
        "--bootstrap-server",
        _BOOTSTRAP[0],
        "--describe",
        "--entity-type",
        kind,
        "--entity-name",
        name,
    )


def _until_unthrottled(kind: str, name: str) -> None:
    """The cleared throttle configs are gone from ``kind``/``name``'s description. A broker
    applies a config change when its ZooKeeper notification arrives (Kafka's ZkConfigManager), so
    a describe right after the change may still show the old values, as with Kafka."""
    deadline = time.monotonic() + TIMEOUT
    while "throttled" in (described := _configs_of(kind, name)):
        assert time.monotonic() < deadline, f"{kind} {name} still throttled:\n{described}"
        time.sleep(0.1)


_BOOTSTRAP: list[str] = []


def test_the_reassign_partitions_command(four: BrokerCluster, tmp_path: Path) -> None:
    """``brook reassign-partitions`` as kafka-reassign-partitions.sh: --generate, --execute with a
    throttle (the configs Kafka's tool sets), --list and --verify while a target replica is frozen,
    --verify after completion clearing the throttles, --cancel, and its argument errors."""
    from compat_tests.test_cli import brook, ok

    cluster = four
    _BOOTSTRAP[:] = [cluster.bootstrap]
    boot = ("--bootstrap-server", cluster.bootstrap)
    topic = _topic_on(cluster, "cli-moved", [1, 2])
    values = _produce(cluster, topic, 4 * RECORDS)

    topics_file = tmp_path / "topics.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    generated = ok(
        "reassign-partitions",
        *boot,
        "--generate",
        "--topics-to-move-json-file",
        str(topics_file),
        "--broker-list",
        "3,4",
    )
    current_text, proposed_text = generated.split("\n\n", 1)
    assert current_text.splitlines()[0] == "Current partition replica assignment"
    assert json.loads(current_text.splitlines()[1]) == {
        "version": 1,
        "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 2], "log_dirs": ["any", "any"]}],
    }
    assert proposed_text.splitlines()[0] == "Proposed partition reassignment configuration"
    (proposal,) = json.loads(proposed_text.splitlines()[1])["partitions"]
    assert sorted(proposal["replicas"]) == [3, 4]

    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [3, 4]}]})
    )
    # 100 kB/s: the first fetch takes 1 MiB of the 2.7 MB, the next one waits about ten seconds.
    executed = ok(
        "reassign-partitions",
        *boot,
        "--execute",
        "--reassignment-json-file",
        str(plan),
        "--throttle",
        "100000",
    )
    rollback = json.dumps(
        {
            "version": 1,
            "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 2], "log_dirs": ["any", "any"]}],
        },
        separators=(",", ":"),
    )
    assert executed == (
        f"Current partition replica assignment\n\n{rollback}\n\n"
        "Save this to use as the --reassignment-json-file option during rollback\n"
        "Warning: You must run --verify periodically, until the reassignment completes, to ensure the "
        "throttle is removed.\n"
        "The inter-broker throttle limit was set to 100000 B/s\n"
        f"Successfully started partition reassignment for {topic}-0\n"
    )
    topic_configs = _configs_of("topics", topic)
    assert "leader.replication.throttled.replicas=0:1,0:2" in topic_configs
    assert "follower.replication.throttled.replicas=0:3,0:4" in topic_configs
    assert "follower.replication.throttled.rate=100000" in _configs_of("brokers", "3")
    listed = ok("reassign-partitions", *boot, "--list")
    expected = f"{topic}-0: replicas: 3,4,1,2. adding: 3,4. removing: 1,2."
    assert listed == f"Current partition reassignments:\n{expected}\n"
    verified = ok("reassign-partitions", *boot, "--verify", "--reassignment-json-file", str(plan))
    in_progress = f"Reassignment of partition {topic}-0 is still in progress."
    assert verified == f"Status of partition reassignment:\n{in_progress}\n"  # throttles kept
    assert "follower.replication.throttled.rate=100000" in _configs_of("brokers", "3")
    again = brook("reassign-partitions", *boot, "--execute", "--reassignment-json-file", str(plan))
    assert again.returncode == 1 and again.stdout.startswith("Cannot execute because there is an existing")
    # --additional resubmits it with a higher throttle (Kafka's way of changing a throttle).
    raised = ok(
        "reassign-partitions",
        *boot,
        "--execute",
        "--additional",
        "--reassignment-json-file",
        str(plan),
        "--throttle",
        "100000000",
    )
    assert "The inter-broker throttle limit was set to 100000000 B/s" in raised
    _wait_assignment(cluster, topic, [3, 4])
    _wait_isr(cluster, topic, {3, 4})
    verified = ok("reassign-partitions", *boot, "--verify", "--reassignment-json-file", str(plan))
    assert verified == (
        f"Status of partition reassignment:\nReassignment of partition {topic}-0 is completed.\n"
        "Clearing broker-level throttles on brokers 1,2,3,4\n"
        f"Clearing topic-level throttles on topic {topic}\n"
    )
    _until_unthrottled("topics", topic)
    _until_unthrottled("brokers", "3")
    assert ok("reassign-partitions", *boot, "--list") == "No partition reassignments found.\n"
    _read_all(cluster, topic, 3, values)

    # Cancelled while throttled: the partition stays where it is and the throttles go.
    back = tmp_path / "back.json"
    back.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [1, 2]}]})
    )
    ok(
        "reassign-partitions",
        *boot,
        "--execute",
        "--reassignment-json-file",
        str(back),
        "--throttle",
        "100000",
    )
    cancelled = ok("reassign-partitions", *boot, "--cancel", "--reassignment-json-file", str(back))
    assert cancelled == (
        f"Successfully cancelled partition reassignment for: {topic}-0\n"
        "None of the specified partition moves are active.\n"
        "Clearing broker-level throttles on brokers 1,2,3,4\n"
        f"Clearing topic-level throttles on topic {topic}\n"
    )
    _wait_assignment(cluster, topic, [3, 4])
    _until_unthrottled("topics", topic)

    # Argument errors, as the Java tool words them.
    both = brook("reassign-partitions", *boot, "--list", "--verify")
    assert both.returncode == 1 and both.stdout.startswith(
        "Command must include exactly one action: --generate"
    )
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [3, 9]}]})
    )
    refused = brook("reassign-partitions", *boot, "--execute", "--reassignment-json-file", str(unknown))
    assert refused.returncode == 1 and refused.stdout == "Error: Unknown broker id 9\n"
    duplicate = tmp_path / "duplicate.json"
    duplicate.write_text(
        json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [3, 3]}]})
    )
    refused = brook("reassign-partitions", *boot, "--execute", "--reassignment-json-file", str(duplicate))
    reason = f"{topic}-0 contains multiple entries for 3"
    assert refused.stdout == f"Error: Partition replica lists may not contain duplicate entries: {reason}\n"


def test_the_reassign_partitions_command_moves_log_dirs(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    """A reassignment file's ``log_dirs``: broker 2 keeps its replica but moves it to its second
    log dir (AlterReplicaLogDirs from the command), and --verify reports the move."""
    from compat_tests.test_cli import ok

    cluster = BrokerCluster(zookeeper.connect_string, tmp_path / "dirs", size=2, offsets_replication_factor=1)
    second = {b: tmp_path / "dirs" / f"broker-{b}" / "second" for b in cluster.ids}
    for broker_id, proc in cluster.brokers.items():
        proc.overrides["log.dirs"] = f"{proc.data_dir},{second[broker_id]}"
    cluster.start()
    try:
        boot = ("--bootstrap-server", cluster.bootstrap)
        topic = _topic_on(cluster, "dir-moved", [1, 2])
        values = _produce(cluster, topic)
        target = str(second[2].resolve())
        plan = tmp_path / "plan.json"
        entry = {"topic": topic, "partition": 0, "replicas": [1, 2], "log_dirs": ["any", target]}
        plan.write_text(json.dumps({"version": 1, "partitions": [entry]}))
        executed = ok("reassign-partitions", *boot, "--execute", "--reassignment-json-file", str(plan))
        assert executed.endswith(
            f"Successfully started partition reassignment for {topic}-0\n"
            f"Successfully started moving log directory to {target} for replica {topic}-0 with broker 2 \n"
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            verified = ok("reassign-partitions", *boot, "--verify", "--reassignment-json-file", str(plan))
            if f"Reassignment of replica {topic}-0-2 completed successfully." in verified:
                break
            assert f"Reassignment of replica {topic}-0-2 is still in progress." in verified, verified
            assert time.monotonic() < deadline, verified
            time.sleep(0.2)
        assert verified.startswith(
            f"Status of partition reassignment:\nReassignment of partition {topic}-0 is completed.\n"
        )
        assert (second[2] / f"{topic}-0").is_dir()
        leader = _wait_isr(cluster, topic, {1, 2})["leader"]
        _read_all(cluster, topic, leader, values)
    finally:
        cluster.close()
