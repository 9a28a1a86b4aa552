"""Topic administration through each stock admin client against a three-broker cluster, checked in
ZooKeeper as Kafka lays it out: create (RF 3, with a config), alter a config, add partitions,
delete; DescribeCluster; DescribeLogDirs of every broker.

kcat has no admin api and is not in this file (its topic creation is auto-creation, tested in
test_cluster_clients.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import pytest

from compat_tests.clients.admin import unique_topic
from compat_tests.cluster import BrokerCluster
from compat_tests.test_cluster_clients import check_kafka_topic_znode, check_partition_states

TIMEOUT = 30.0
MS = int(TIMEOUT * 1000)


class Admin(Protocol):
    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None: ...
    def alter(self, topic: str, key: str, value: str) -> None: ...
    def config(self, topic: str, key: str) -> str: ...
    def add_partitions(self, topic: str, total: int) -> None: ...
    def delete(self, topic: str) -> None: ...
    def cluster(self) -> tuple[set[int], int]: ...


class ConfluentAdmin:
    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient

        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def _wait(self, futures: dict[Any, Any]) -> None:
        for future in futures.values():
            future.result(timeout=TIMEOUT)

    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        from confluent_kafka.admin import NewTopic

        self._wait(
            self.admin.create_topics(
                [NewTopic(topic, partitions, 3, config=configs)], request_timeout=TIMEOUT
            )
        )

    def alter(self, topic: str, key: str, value: str) -> None:
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        self._wait(
            self.admin.incremental_alter_configs(
                [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])]
            )
        )

    def config(self, topic: str, key: str) -> str:
        from confluent_kafka.admin import ConfigResource, ResourceType

        resource = ConfigResource(ResourceType.TOPIC, topic)
        return str(self.admin.describe_configs([resource])[resource].result(timeout=TIMEOUT)[key].value)

    def add_partitions(self, topic: str, total: int) -> None:
        from confluent_kafka.admin import NewPartitions

        self._wait(self.admin.create_partitions([NewPartitions(topic, total)], request_timeout=TIMEOUT))

    def delete(self, topic: str) -> None:
        self._wait(self.admin.delete_topics([topic], request_timeout=TIMEOUT))

    def cluster(self) -> tuple[set[int], int]:
        described = self.admin.describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
        return {n.id for n in described.nodes}, described.controller.id


class KafkaPythonAdmin:
    def __init__(self, bootstrap: str) -> None:
        from kafka.admin import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=MS)

    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        from kafka.admin import NewTopic

        self.admin.create_topics([NewTopic(topic, partitions, 3, topic_configs=configs)], timeout_ms=MS)

    def alter(self, topic: str, key: str, value: str) -> None:
        from kafka.admin import ConfigResource, ConfigResourceType

        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={key: value})
        assert self.admin.alter_configs([resource]) == {"topic": {topic: "OK"}}

    def config(self, topic: str, key: str) -> str:
        from kafka.admin import ConfigResource, ConfigResourceType

        described = self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return str(described["topic"][topic][key]["value"])

    def add_partitions(self, topic: str, total: int) -> None:
        self.admin.create_partitions({topic: total}, timeout_ms=MS)

    def delete(self, topic: str) -> None:
        self.admin.delete_topics([topic], timeout_ms=MS)

    def cluster(self) -> tuple[set[int], int]:
        described = self.admin.describe_cluster()
        return {b["broker_id"] for b in described["brokers"]}, described["controller_id"]

    def close(self) -> None:
        self.admin.close()


class AiokafkaAdmin:
    """aiokafka's admin client is async: each call runs on a loop of its own (bounded)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _run(self, body: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        async def call() -> Any:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=MS)
            await admin.start()
            try:
                return await body(admin)
            finally:
                await admin.close()

        return asyncio.run(asyncio.wait_for(call(), TIMEOUT * 2))

    @staticmethod
    def _no_errors(answer: Any) -> None:
        errors = [
            e for e in getattr(answer, "topic_errors", getattr(answer, "topic_error_codes", [])) if e[1] != 0
        ]
        assert not errors, answer

    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        from aiokafka.admin import NewTopic

        new = NewTopic(topic, partitions, 3, topic_configs=configs)
        self._no_errors(self._run(lambda a: a.create_topics([new], timeout_ms=MS)))

    def alter(self, topic: str, key: str, value: str) -> None:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={key: value})
        (answer,) = self._run(lambda a: a.alter_configs([resource]))
        assert all(r[0] == 0 for r in answer.resources), answer

    def config(self, topic: str, key: str) -> str:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        answers = self._run(lambda a: a.describe_configs([resource]))
        for answer in answers:
            for resource_answer in answer.resources:
                for entry in resource_answer[4]:
                    if entry[0] == key:
                        return str(entry[1])
        raise AssertionError(f"{key} not described: {answers}")

    def add_partitions(self, topic: str, total: int) -> None:
        from aiokafka.admin import NewPartitions

        answer = self._run(lambda a: a.create_partitions({topic: NewPartitions(total)}, timeout_ms=MS))
        assert all(r[1] == 0 for r in answer.topic_errors), answer

    def delete(self, topic: str) -> None:
        answer = self._run(lambda a: a.delete_topics([topic], timeout_ms=MS))
        self._no_errors(answer)

    def cluster(self) -> tuple[set[int], int]:
        described = self._run(lambda a: a.describe_cluster())
        return {b["node_id"] for b in described["brokers"]}, described["controller_id"]


class KafkajsAdmin:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _run(self, action: dict[str, Any]) -> Any:
        from compat_tests.clients.node import run_kafkajs

        (result,) = run_kafkajs({"op": "admin", "brokers": self.bootstrap.split(","), "actions": [action]})[
            "results"
        ]
        return result

    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        entries = [{"name": k, "value": v} for k, v in configs.items()]
        spec = {"topic": topic, "numPartitions": partitions, "replicationFactor": 3, "configEntries": entries}
        assert self._run({"createTopics": {"topics": [spec], "timeout": MS}}) is True

    def alter(self, topic: str, key: str, value: str) -> None:
        resource = {"type": 2, "name": topic, "configEntries": [{"name": key, "value": value}]}
        self._run({"alterConfigs": {"resources": [resource]}})

    def config(self, topic: str, key: str) -> str:
        described = self._run(
            {"describeConfigs": {"resources": [{"type": 2, "name": topic, "configNames": [key]}]}}
        )
        (entry,) = described["resources"][0]["configEntries"]
        return str(entry["configValue"])

    def add_partitions(self, topic: str, total: int) -> None:
        self._run(
            {"createPartitions": {"topicPartitions": [{"topic": topic, "count": total}], "timeout": MS}}
        )

    def delete(self, topic: str) -> None:
        self._run({"deleteTopics": {"topics": [topic], "timeout": MS}})

    def cluster(self) -> tuple[set[int], int]:
        described = self._run({"describeCluster": {}})
        return {b["nodeId"] for b in described["brokers"]}, described["controller"]


ADMINS: dict[str, Callable[[str], Admin]] = {
    "confluent-kafka": ConfluentAdmin,
    "kafka-python": KafkaPythonAdmin,
    "aiokafka": AiokafkaAdmin,
    "kafkajs": KafkajsAdmin,
}


def _topic_config_znode(cluster: BrokerCluster, topic: str) -> dict[str, Any] | None:
    return cluster._json(f"/config/topics/{topic}")


@pytest.mark.parametrize("client", list(ADMINS))
def test_topic_administration_through_each_client_lands_in_zookeeper(
    cluster: BrokerCluster, client: str
) -> None:
    if client == "kafkajs":
        from compat_tests.clients.tools import require_kafkajs

        require_kafkajs()
    admin = ADMINS[client](cluster.bootstrap)
    topic = unique_topic(f"adm-{client}")
    try:
        assert admin.cluster() == ({1, 2, 3}, cluster.controller_id())

        admin.create(topic, 3, {"retention.ms": "3600000"})
        cluster.wait_data(f"/brokers/topics/{topic}", lambda d, _s: bool(d), TIMEOUT, f"{topic} in ZooKeeper")
        assignment = check_kafka_topic_znode(cluster, topic, 3)
        check_partition_states(cluster, topic, assignment)
        # Topic configs live in /config/topics/<t> as Kafka's {"version":1,"config":{...}}.
        assert _topic_config_znode(cluster, topic) == {"version": 1, "config": {"retention.ms": "3600000"}}
        assert admin.config(topic, "retention.ms") == "3600000"

        admin.alter(topic, "retention.ms", "7200000")
        assert _topic_config_znode(cluster, topic) == {"version": 1, "config": {"retention.ms": "7200000"}}
        # ... announced to every broker by a change notification (Kafka's version 2, entity_path).
        changes = [
            json.loads(cluster.zk.get(f"/config/changes/{c}")[0])
            for c in cluster.zk.get_children("/config/changes")
        ]
        assert {"version": 2, "entity_path": f"topics/{topic}"} in changes, changes
        for broker_id in cluster.ids:
            assert ConfluentAdmin(cluster.bootstrap_of(broker_id)).config(topic, "retention.ms") == "7200000"

        admin.add_partitions(topic, 5)
        grown = check_kafka_topic_znode(cluster, topic, 5)
        assert {p: grown[p] for p in range(3)} == assignment, "existing partitions keep their replicas"
        check_partition_states(cluster, topic, {p: grown[p] for p in (3, 4)})

        admin.delete(topic)
        cluster.wait_data(f"/brokers/topics/{topic}", lambda _d, s: s is None, TIMEOUT, f"{topic} deleted")
        cluster.wait_data(f"/admin/delete_topics/{topic}", lambda _d, s: s is None, TIMEOUT, "deletion done")
        assert _topic_config_znode(cluster, topic) is None
        for broker_id in cluster.ids:
            assert topic not in cluster.view(cluster.bootstrap_of(broker_id)).topics
    finally:
        close = getattr(admin, "close", None)
        if close is not None:
            close()


def test_describe_log_dirs_of_every_broker_lists_its_replicas(cluster: BrokerCluster) -> None:
    """kafka-python asks each broker for its log dirs: every replica of the topic is on its broker."""
    admin = KafkaPythonAdmin(cluster.bootstrap)
    topic = unique_topic("logdirs")
    try:
        admin.create(topic, 3, {})
        cluster.wait_data(f"/brokers/topics/{topic}", lambda d, _s: bool(d), TIMEOUT, f"{topic} in ZooKeeper")
        assignment = check_kafka_topic_znode(cluster, topic, 3)
        check_partition_states(cluster, topic, assignment)
        # The controller writes the partition states before the brokers apply its LeaderAndIsr
        # (as Kafka's does): a broker lists a replica once it has made its log.
        deadline = time.monotonic() + TIMEOUT
        while True:
            answers = admin.admin.describe_log_dirs(brokers=cluster.ids)
            by_broker = {a["broker"]: a for a in answers}
            assert sorted(by_broker) == cluster.ids, answers
            held_by: dict[int, set[int]] = {}
            for broker_id, answer in by_broker.items():
                (log_dir,) = answer["log_dirs"]
                assert log_dir["error_code"] == 0
                assert log_dir["log_dir"] == str(cluster.brokers[broker_id].data_dir)
                held_by[broker_id] = {
                    p["partition_index"]
                    for t in log_dir["topics"]
                    if t["name"] == topic
                    for p in t["partitions"]
                }
            expected = {b: {p for p, replicas in assignment.items() if b in replicas} for b in cluster.ids}
            if held_by == expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert held_by == expected, answers
    finally:
        admin.close()
