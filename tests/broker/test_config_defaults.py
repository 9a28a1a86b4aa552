"""Definitions: Kafka 3.9's defaults (hand-written expectations), value rendering, table integrity."""

from __future__ import annotations

import pytest

from broker.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    TOPIC_SYNONYMS,
    BrokerConfig,
    ConfigSource,
    ConfigType,
    UpdateMode,
    topic_values,
)
from broker.config.dynamic import ALL_DYNAMIC
from broker.config.logs import broker_topic_values
from broker.config.schema import Password
from broker.config.values import java_double_str
from storage.config import TOPIC_KEYS

LONG_MAX = 9223372036854775807
INT_MAX = 2147483647

#: Kafka 3.9 defaults, copied by hand from Kafka's documentation/sources (not from our tables).
KAFKA_39_BROKER_DEFAULTS = {
    "broker.id": -1,
    "num.partitions": 1,
    "default.replication.factor": 1,
    "auto.create.topics.enable": True,
    "delete.topic.enable": True,
    "listeners": "PLAINTEXT://:9092",
    "advertised.listeners": None,
    "log.dir": "/tmp/kafka-logs",
    "log.dirs": None,
    "log.segment.bytes": 1073741824,
    "log.roll.hours": 168,
    "log.roll.ms": None,
    "log.retention.hours": 168,
    "log.retention.minutes": None,
    "log.retention.ms": None,
    "log.retention.bytes": -1,
    "log.retention.check.interval.ms": 300000,
    "log.cleanup.policy": ["delete"],
    "log.cleaner.enable": True,
    "log.cleaner.threads": 1,
    "log.cleaner.backoff.ms": 15000,
    "log.cleaner.delete.retention.ms": 86400000,
    "log.cleaner.min.cleanable.ratio": 0.5,
    "log.cleaner.max.compaction.lag.ms": LONG_MAX,
    "log.index.size.max.bytes": 10485760,
    "log.index.interval.bytes": 4096,
    "log.flush.interval.messages": LONG_MAX,
    "log.flush.scheduler.interval.ms": LONG_MAX,
    "log.message.timestamp.type": "CreateTime",
    "log.segment.delete.delay.ms": 60000,
    "message.max.bytes": 1048588,
    "socket.request.max.bytes": 104857600,
    "socket.send.buffer.bytes": 102400,
    "socket.receive.buffer.bytes": 102400,
    "num.network.threads": 3,
    "num.io.threads": 8,
    "queued.max.requests": 500,
    "connections.max.idle.ms": 600000,
    "min.insync.replicas": 1,
    "unclean.leader.election.enable": False,
    "offsets.topic.num.partitions": 50,
    "offsets.topic.replication.factor": 3,
    "offsets.topic.segment.bytes": 104857600,
    "offsets.retention.minutes": 10080,
    "offsets.retention.check.interval.ms": 600000,
    "offsets.commit.timeout.ms": 5000,
    "offset.metadata.max.bytes": 4096,
    "group.initial.rebalance.delay.ms": 3000,
    "group.min.session.timeout.ms": 6000,
    "group.max.session.timeout.ms": 1800000,
    "group.max.size": INT_MAX,
    "transaction.state.log.num.partitions": 50,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
    "transaction.state.log.segment.bytes": 104857600,
    "transactional.id.expiration.ms": 604800000,
    "transaction.max.timeout.ms": 900000,
    "producer.id.expiration.ms": 86400000,
    "max.incremental.fetch.session.cache.slots": 1000,
    "fetch.max.bytes": 57671680,
    "replica.fetch.max.bytes": 1048576,
    "replica.lag.time.max.ms": 30000,
    "replica.fetch.wait.max.ms": 500,
    "zookeeper.connect": None,
    "zookeeper.session.timeout.ms": 18000,
    "zookeeper.connection.timeout.ms": None,
    "controlled.shutdown.enable": True,
    "broker.rack": None,
    "compression.type": "producer",
    "num.recovery.threads.per.data.dir": 1,
    "inter.broker.protocol.version": "3.9-IV0",
    "log.message.format.version": "3.0-IV1",
    "listener.security.protocol.map": (
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"
    ),
    "log.cleaner.io.max.bytes.per.second": 1.7976931348623157e308,
    "ssl.enabled.protocols": ["TLSv1.2", "TLSv1.3"],
}


@pytest.mark.parametrize(("name", "expected"), sorted(KAFKA_39_BROKER_DEFAULTS.items()))
def test_broker_default_equals_kafka_39(name: str, expected: object) -> None:
    config = BrokerConfig({})
    assert config.get(name) == expected
    assert config.source(name) is ConfigSource.DEFAULT_CONFIG
    assert not config.is_set(name)


def test_topic_defaults_equal_kafka_39() -> None:
    expected = {
        "cleanup.policy": ["delete"],
        "retention.ms": 604800000,
        "retention.bytes": -1,
        "segment.bytes": 1073741824,
        "segment.ms": 604800000,
        "segment.index.bytes": 10485760,
        "max.message.bytes": 1048588,
        "min.insync.replicas": 1,
        "delete.retention.ms": 86400000,
        "min.cleanable.dirty.ratio": 0.5,
        "local.retention.ms": -2,
        "local.retention.bytes": -2,
        "message.timestamp.type": "CreateTime",
        "file.delete.delay.ms": 60000,
        "flush.messages": LONG_MAX,
        "remote.storage.enable": False,
        "leader.replication.throttled.replicas": [],
    }
    assert {name: TOPIC_CONFIGS[name].default for name in expected} == expected


def test_default_broker_gives_topics_the_topic_defaults() -> None:
    """A broker with nothing set must hand every topic exactly Kafka's topic-level defaults."""
    derived = broker_topic_values(BrokerConfig({}))
    assert derived == {name: definition.default for name, definition in TOPIC_CONFIGS.items()}
    assert topic_values(None, {}) == derived


def test_every_default_is_valid_and_typed() -> None:
    python_types = {
        ConfigType.BOOLEAN: bool,
        ConfigType.STRING: str,
        ConfigType.CLASS: str,
        ConfigType.INT: int,
        ConfigType.SHORT: int,
        ConfigType.LONG: int,
        ConfigType.DOUBLE: float,
        ConfigType.LIST: list,
        ConfigType.PASSWORD: Password,
    }
    for definition in [*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()]:
        if definition.default is not None:
            assert isinstance(definition.default, python_types[definition.type]), definition.name
        if definition.validator is not None:
            definition.validator.check(definition.name, definition.default)
        assert definition.doc, definition.name


def test_tables_are_consistent() -> None:
    assert set(BROKER_CONFIGS) >= ALL_DYNAMIC
    assert set(TOPIC_SYNONYMS) <= set(TOPIC_CONFIGS)
    for synonyms in TOPIC_SYNONYMS.values():
        for synonym in synonyms:
            assert synonym.name in BROKER_CONFIGS, synonym.name
    assert set(TOPIC_KEYS) <= set(TOPIC_CONFIGS)
    assert len(BROKER_CONFIGS) > 300  # Kafka 3.9 defines about this many broker configs


def test_update_modes_follow_kafka() -> None:
    modes = {name: definition.update_mode for name, definition in BROKER_CONFIGS.items()}
    assert modes["log.retention.ms"] is UpdateMode.CLUSTER_WIDE
    assert modes["log.retention.hours"] is UpdateMode.READ_ONLY
    assert modes["message.max.bytes"] is UpdateMode.CLUSTER_WIDE
    assert modes["listeners"] is UpdateMode.PER_BROKER
    assert modes["ssl.keystore.location"] is UpdateMode.PER_BROKER
    assert modes["num.network.threads"] is UpdateMode.CLUSTER_WIDE
    assert modes["max.connections"] is UpdateMode.CLUSTER_WIDE
    assert modes["broker.id"] is UpdateMode.READ_ONLY
    assert modes["log.message.format.version"] is UpdateMode.READ_ONLY
    assert BROKER_CONFIGS["ssl.key.password"].sensitive


def test_wire_ids_of_types_and_sources() -> None:
    types = {t.name: t.value for t in ConfigType}
    assert types == {
        "UNKNOWN": 0, "BOOLEAN": 1, "STRING": 2, "INT": 3, "SHORT": 4,
        "LONG": 5, "DOUBLE": 6, "LIST": 7, "CLASS": 8, "PASSWORD": 9,
    }  # fmt: skip
    sources = {s.name: s.value for s in ConfigSource}
    assert sources == {
        "UNKNOWN": 0, "DYNAMIC_TOPIC_CONFIG": 1, "DYNAMIC_BROKER_CONFIG": 2,
        "DYNAMIC_DEFAULT_BROKER_CONFIG": 3, "STATIC_BROKER_CONFIG": 4, "DEFAULT_CONFIG": 5,
        "DYNAMIC_BROKER_LOGGER_CONFIG": 6, "CLIENT_METRICS_CONFIG": 7,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (1.0, "1.0"),
        (0.001, "0.001"),
        (123456.789, "123456.789"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (1e-5, "1.0E-5"),
        (0.0001234, "1.234E-4"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (-2.5e10, "-2.5E10"),
        (0.0, "0.0"),
    ],
)
def test_doubles_render_like_java(value: float, text: str) -> None:
    assert java_double_str(value) == text
