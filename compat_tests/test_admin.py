"""Topic administration through confluent-kafka's and kafka-python's admin clients: create (with
configs), list, describe configs, alter configs (whole and incremental), create partitions,
delete; the errors Kafka gives for the usual mistakes; topic auto-creation on and off."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.clients import kcat
from compat_tests.clients.admin import unique_topic
from compat_tests.clients.drivers import REFERENCE
from compat_tests.clients.model import Msg
from compat_tests.harness import BrokerProcess


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


# -- confluent-kafka -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cadmin(bootstrap: str) -> object:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _result(futures: dict[object, object], key: object) -> object:
    return futures[key].result(timeout=30)  # type: ignore[attr-defined]


def _topic_configs(cadmin: object, topic: str) -> dict[str, object]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, topic)
    return _result(cadmin.describe_configs([resource]), resource)  # type: ignore[attr-defined,return-value]


# AlterConfigs itself is under test: confluent-kafka's deprecation of it is expected here.
@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_confluent_topic_lifecycle(cadmin: object, bootstrap: str) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ConfigSource,
        NewPartitions,
        NewTopic,
        ResourceType,
    )

    admin = cadmin
    topic = unique_topic("cadm")
    configs = {"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "200000"}

    # validate_only creates nothing.
    futures = admin.create_topics([NewTopic(topic, 3, 1, config=configs)], validate_only=True)  # type: ignore[attr-defined]
    _result(futures, topic)
    assert topic not in admin.list_topics(timeout=15).topics  # type: ignore[attr-defined]

    _result(admin.create_topics([NewTopic(topic, 3, 1, config=configs)]), topic)  # type: ignore[attr-defined]
    listed = admin.list_topics(timeout=15).topics  # type: ignore[attr-defined]
    assert topic in listed and len(listed[topic].partitions) == 3

    # Every config, the overrides marked as such and the rest with Kafka's defaults.
    described = _topic_configs(admin, topic)
    for name, value in configs.items():
        assert described[name].value == value  # type: ignore[attr-defined]
        assert described[name].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value  # type: ignore[attr-defined]
    assert described["segment.bytes"].value == "1073741824"  # type: ignore[attr-defined]
    assert described["segment.bytes"].is_default  # type: ignore[attr-defined]
    assert described["min.insync.replicas"].value == "1"  # type: ignore[attr-defined]
    assert len(described) >= 30, sorted(described)

    # AlterConfigs replaces the whole set of overrides.
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "7200000"})
    _result(admin.alter_configs([resource]), resource)  # type: ignore[attr-defined]
    described = _topic_configs(admin, topic)
    assert described["retention.ms"].value == "7200000"  # type: ignore[attr-defined]
    assert described["cleanup.policy"].value == "delete"  # type: ignore[attr-defined]  # back to default
    assert described["cleanup.policy"].is_default  # type: ignore[attr-defined]

    # IncrementalAlterConfigs changes only what it names.
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("segment.ms", "600000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    _result(admin.incremental_alter_configs([resource]), resource)  # type: ignore[attr-defined]
    described = _topic_configs(admin, topic)
    assert described["segment.ms"].value == "600000"  # type: ignore[attr-defined]
    assert described["cleanup.policy"].value == "delete,compact"  # type: ignore[attr-defined]
    assert described["retention.ms"].value == "604800000"  # type: ignore[attr-defined]
    assert described["retention.ms"].is_default  # type: ignore[attr-defined]

    # Create partitions: 3 -> 5, and the new ones take records.
    _result(admin.create_partitions([NewPartitions(topic, 5)]), topic)  # type: ignore[attr-defined]
    assert len(admin.list_topics(topic, timeout=15).topics[topic].partitions) == 5  # type: ignore[attr-defined]
    REFERENCE.produce(bootstrap, topic, [Msg(b"v", key=b"k", partition=4)], acks="all")
    assert [r.value for r in REFERENCE.consume(bootstrap, topic, [4])] == [b"v"]

    # Mistakes get Kafka's errors.
    with pytest.raises(KafkaException) as info:
        _result(admin.create_topics([NewTopic(topic, 1, 1)]), topic)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as info:
        _result(admin.create_partitions([NewPartitions(topic, 2)]), topic)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    bad = unique_topic("bad")
    with pytest.raises(KafkaException) as info:
        _result(admin.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "soon"})]), bad)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG
    with pytest.raises(KafkaException) as info:
        _result(admin.create_topics([NewTopic(bad, 1, 1, config={"no.such.config": "1"})]), bad)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG
    with pytest.raises(KafkaException) as info:
        _result(admin.create_topics([NewTopic(bad, 1, 3)]), bad)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert bad not in admin.list_topics(timeout=15).topics  # type: ignore[attr-defined]

    # Delete.
    _result(admin.delete_topics([topic]), topic)  # type: ignore[attr-defined]
    assert topic not in admin.list_topics(timeout=15).topics  # type: ignore[attr-defined]
    with pytest.raises(KafkaException) as info:
        _result(admin.delete_topics([topic]), topic)  # type: ignore[attr-defined]
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_topic_ids_are_real_and_change_on_recreate(cadmin: object) -> None:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import NewTopic

    admin = cadmin
    topic = unique_topic("ids")

    def topic_id() -> str:
        futures = admin.describe_topics(TopicCollection([topic]))  # type: ignore[attr-defined]
        return str(futures[topic].result(timeout=30).topic_id)

    _result(admin.create_topics([NewTopic(topic, 1, 1)]), topic)  # type: ignore[attr-defined]
    first = topic_id()
    assert first == topic_id(), "a topic id is stable"
    assert first not in ("", "AAAAAAAAAAAAAAAAAAAAAA"), first
    _result(admin.delete_topics([topic]), topic)  # type: ignore[attr-defined]
    _result(admin.create_topics([NewTopic(topic, 1, 1)]), topic)  # type: ignore[attr-defined]
    assert topic_id() != first, "a re-created topic gets a new id"


def test_confluent_describe_broker_configs(cadmin: object, broker: BrokerProcess) -> None:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.BROKER, "0")
    configs = _result(cadmin.describe_configs([resource]), resource)  # type: ignore[attr-defined]
    assert configs["log.dirs"].value == str(broker.data_dir)  # type: ignore[index]
    assert configs["num.partitions"].value == "1"  # type: ignore[index]
    assert configs["auto.create.topics.enable"].value == "true"  # type: ignore[index]


# -- kafka-python --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kadmin(bootstrap: str) -> Iterator[object]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    yield admin
    admin.close()


def test_kafka_python_topic_lifecycle(kadmin: object, bootstrap: str) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import (
        InvalidConfigurationError,
        InvalidPartitionsError,
        TopicAlreadyExistsError,
        UnknownTopicOrPartitionError,
    )

    admin = kadmin
    topic = unique_topic("kadm")
    admin.create_topics(  # type: ignore[attr-defined]
        [NewTopic(topic, 2, 1, topic_configs={"retention.bytes": "1048576", "segment.ms": "3600000"})]
    )
    assert topic in admin.list_topics()  # type: ignore[attr-defined]
    (described,) = admin.describe_topics([topic])  # type: ignore[attr-defined]
    assert described["error_code"] == 0 and len(described["partitions"]) == 2
    assert str(described["topic_id"]) not in ("", "00000000-0000-0000-0000-000000000000")

    def configs(filter_: str = "all") -> dict[str, dict[str, object]]:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        return admin.describe_configs([resource], config_filter=filter_)["topic"][topic]  # type: ignore[attr-defined,no-any-return]

    everything = configs()
    assert everything["retention.bytes"]["value"] == "1048576"
    assert everything["segment.bytes"]["value"] == "1073741824"
    assert set(configs("modified")) == {"retention.bytes", "segment.ms"}

    # Incremental (the client's default with a broker that advertises it) ...
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "2097152"})
    assert admin.alter_configs([resource]) == {"topic": {topic: "OK"}}  # type: ignore[attr-defined]
    assert configs()["retention.bytes"]["value"] == "2097152"
    assert configs()["segment.ms"]["value"] == "3600000", "incremental keeps the other overrides"
    # ... and the whole-set AlterConfigs.
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"flush.messages": "1000"})
    assert admin.alter_configs([resource], incremental=False) == {"topic": {topic: "OK"}}  # type: ignore[attr-defined]
    assert configs()["flush.messages"]["value"] == "1000"
    # kafka-python fills in the other modified keys itself before a whole-set AlterConfigs.
    assert configs()["retention.bytes"]["value"] == "2097152"

    admin.create_partitions({topic: 4})  # type: ignore[attr-defined]
    (described,) = admin.describe_topics([topic])  # type: ignore[attr-defined]
    assert len(described["partitions"]) == 4

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, 1, 1)])  # type: ignore[attr-defined]
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({topic: 3})  # type: ignore[attr-defined]
    with pytest.raises(InvalidConfigurationError):
        admin.create_topics([NewTopic(unique_topic("bad"), 1, 1, topic_configs={"cleanup.policy": "shred"})])  # type: ignore[attr-defined]

    admin.delete_topics([topic])  # type: ignore[attr-defined]
    assert topic not in admin.list_topics()  # type: ignore[attr-defined]
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([topic])  # type: ignore[attr-defined]


# -- auto-creation -------------------------------------------------------------------------------


def _kafka_python_send(bootstrap: str, topic: str) -> object:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=4000, enable_idempotence=False)
    try:
        return producer.send(topic, b"auto").get(timeout=10)
    finally:
        producer.close(timeout=5)


def test_auto_create_on_by_default(bootstrap: str, kadmin: object) -> None:
    topic = unique_topic("auto-on")
    meta = _kafka_python_send(bootstrap, topic)
    assert meta.offset == 0  # type: ignore[attr-defined]
    (described,) = kadmin.describe_topics([topic])  # type: ignore[attr-defined]
    assert len(described["partitions"]) == 1, "num.partitions (1) applies"
    # A consumer's metadata request does not create topics (allow_auto_topic_creation=false).
    from confluent_kafka import Consumer

    other = unique_topic("auto-consumer")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}"})
    try:
        consumer.list_topics(other, timeout=10)
    finally:
        consumer.close()
    assert other not in kadmin.list_topics()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def no_auto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data: Path = tmp_path_factory.mktemp("no-auto") / "data"
    proc = BrokerProcess(data, overrides={"auto.create.topics.enable": "false", "num.partitions": "3"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_auto_create_off(no_auto_broker: BrokerProcess) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaTimeoutError

    bootstrap = no_auto_broker.bootstrap
    topic = unique_topic("auto-off")
    with pytest.raises(KafkaTimeoutError):
        _kafka_python_send(bootstrap, topic)
    with pytest.raises(AssertionError, match="Unknown topic or partition"):
        # librdkafka waits topic.metadata.propagation.max.ms (30 s) for a topic to appear.
        quick = ["topic.metadata.propagation.max.ms=1000"]
        kcat.produce(bootstrap, topic, [(None, b"x")], acks="1", config=quick)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert topic not in admin.list_topics()
        # Explicit creation still works, with the broker's num.partitions.
        admin.create_topics([NewTopic(topic, -1, -1)])
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == 3
    finally:
        admin.close()
    meta = _kafka_python_send(bootstrap, topic)
    assert meta.offset == 0  # type: ignore[attr-defined]


# -- kafkajs (all admin requests go to the controller named in Metadata) ---------------------------


def test_kafkajs_admin(bootstrap: str) -> None:
    from compat_tests.clients.node import run_kafkajs

    topic = unique_topic("jsadm")
    resource = {"type": 2, "name": topic}
    new_retention = {"name": "retention.ms", "value": "7654321"}
    two_configs = ["retention.ms", "segment.bytes"]
    result = run_kafkajs(
        {
            "op": "admin",
            "brokers": [bootstrap],
            "actions": [
                {
                    "createTopics": {
                        "topics": [
                            {
                                "topic": topic,
                                "numPartitions": 2,
                                "configEntries": [{"name": "retention.ms", "value": "1234567"}],
                            }
                        ]
                    }
                },
                {"createTopics": {"topics": [{"topic": topic, "numPartitions": 2}]}},
                {"describeConfigs": {"resources": [{**resource, "configNames": ["retention.ms"]}]}},
                {"alterConfigs": {"resources": [{**resource, "configEntries": [new_retention]}]}},
                {"describeConfigs": {"resources": [{**resource, "configNames": two_configs}]}},
                {"createPartitions": {"topicPartitions": [{"topic": topic, "count": 3}]}},
                {"fetchTopicMetadata": {"topics": [topic]}},
                {"fetchTopicOffsets": topic},
                {"deleteTopics": {"topics": [topic]}},
                {"listTopics": {}},
            ],
        }
    )
    created, again, before, _, after, _, metadata, offsets, _, listed = result["results"]
    assert created is True and again is False, "kafkajs resolves createTopics on an existing topic to false"
    (entry,) = before["resources"][0]["configEntries"]
    assert (entry["configName"], entry["configValue"]) == ("retention.ms", "1234567")
    assert entry["isDefault"] is False
    entries = after["resources"][0]["configEntries"]
    values = {e["configName"]: (e["configValue"], e["isDefault"]) for e in entries}
    assert values == {"retention.ms": ("7654321", False), "segment.bytes": ("1073741824", True)}
    assert len(metadata["topics"][0]["partitions"]) == 3
    assert [(o["partition"], o["offset"]) for o in offsets] == [(0, "0"), (1, "0"), (2, "0")]
    assert topic not in listed
