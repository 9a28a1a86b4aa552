"""DescribeConfigs output: values, sources, synonyms in Kafka's order, flags and types."""

from __future__ import annotations

from broker.config import (
    BrokerConfig,
    ConfigEntry,
    ConfigSource,
    ConfigType,
    describe_broker,
    describe_cluster_defaults,
    describe_topic,
)

TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG
STATIC = ConfigSource.STATIC_BROKER_CONFIG
DEFAULT = ConfigSource.DEFAULT_CONFIG


def by_name(entries: list[ConfigEntry]) -> dict[str, ConfigEntry]:
    return {entry.name: entry for entry in entries}


def synonyms(entry: ConfigEntry) -> list[tuple[str, str | None, ConfigSource]]:
    return [(s.name, s.value, s.source) for s in entry.synonyms]


def test_topic_with_overrides_on_a_broker_with_static_settings() -> None:
    broker = BrokerConfig({"log.retention.ms": "3600000", "log.segment.bytes": "5000000"})
    entries = describe_topic(broker, {"retention.ms": "1000", "cleanup.policy": "compact , delete"})
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    entry = by_name(entries)

    retention = entry["retention.ms"]
    assert (retention.value, retention.source, retention.is_default) == ("1000", TOPIC, False)
    assert synonyms(retention) == [
        ("retention.ms", "1000", TOPIC),
        ("log.retention.ms", "3600000", STATIC),
        ("log.retention.hours", "168", DEFAULT),
    ]
    assert retention.config_type is ConfigType.LONG and not retention.read_only and not retention.is_sensitive

    segment = entry["segment.bytes"]
    assert (segment.value, segment.source, segment.is_default) == ("5000000", STATIC, False)
    assert synonyms(segment) == [
        ("log.segment.bytes", "5000000", STATIC),
        ("log.segment.bytes", "1073741824", DEFAULT),
    ]

    policy = entry["cleanup.policy"]
    assert policy.value == "compact,delete" and policy.config_type is ConfigType.LIST
    assert synonyms(policy) == [
        ("cleanup.policy", "compact,delete", TOPIC),
        ("log.cleanup.policy", "delete", DEFAULT),
    ]

    size = entry["max.message.bytes"]
    assert (size.value, size.source, size.is_default) == ("1048588", DEFAULT, True)
    assert synonyms(size) == [("message.max.bytes", "1048588", DEFAULT)]

    ratio = entry["min.cleanable.dirty.ratio"]
    assert (ratio.value, ratio.config_type) == ("0.5", ConfigType.DOUBLE)
    assert entry["unclean.leader.election.enable"].value == "false"
    assert entry["message.downconversion.enable"].value == "true"
    assert entry["flush.ms"].value == "9223372036854775807"
    assert entry["leader.replication.throttled.replicas"].value == ""
    assert entry["leader.replication.throttled.replicas"].synonyms == ()
    assert entry["message.format.version"].value == "3.0-IV1"
    assert entry["retention.ms"].documentation


def test_topic_retention_only_from_hours_has_no_synonyms_like_kafka() -> None:
    """Kafka drops synonyms before the primary broker name (log.retention.ms): with only
    log.retention.hours set, retention.ms reports DEFAULT_CONFIG and no synonyms."""
    entry = by_name(describe_topic(BrokerConfig({"log.retention.hours": "24"}), {}))["retention.ms"]
    assert (entry.value, entry.source, entry.synonyms) == ("86400000", DEFAULT, ())
    segment_ms = by_name(describe_topic(BrokerConfig({"log.roll.ms": "1000"}), {}))["segment.ms"]
    assert synonyms(segment_ms) == [("log.roll.ms", "1000", STATIC), ("log.roll.hours", "168", DEFAULT)]


def test_topic_name_filter_and_flags() -> None:
    entries = describe_topic(
        BrokerConfig({}),
        {"retention.ms": "5"},
        names=["retention.ms"],
        include_synonyms=False,
        include_documentation=False,
    )
    assert len(entries) == 1
    assert entries[0].synonyms == () and entries[0].documentation is None
    assert entries[0].source is TOPIC


def test_broker_with_a_static_setting() -> None:
    broker = BrokerConfig(
        {
            "log.retention.hours": "24",
            "broker.id": "1",
            "ssl.keystore.password": "s3cret",
            "custom.plugin.setting": "x",
            "unstable.api.versions.enable": "true",
        }
    )
    entry = by_name(describe_broker(broker))

    hours = entry["log.retention.hours"]
    assert (hours.value, hours.source, hours.read_only, hours.is_default) == ("24", STATIC, True, False)
    assert synonyms(hours) == [("log.retention.hours", "24", STATIC), ("log.retention.hours", "168", DEFAULT)]
    assert hours.config_type is ConfigType.INT

    millis = entry["log.retention.ms"]
    assert (millis.value, millis.source, millis.read_only, millis.is_default) == (None, DEFAULT, False, True)
    assert millis.synonyms == ()

    broker_id = entry["broker.id"]
    assert (broker_id.value, broker_id.source, broker_id.read_only) == ("1", STATIC, True)
    assert entry["node.id"].value == "1" and entry["node.id"].source is STATIC  # Kafka mirrors the two

    password = entry["ssl.keystore.password"]
    assert password.is_sensitive and password.value is None and password.config_type is ConfigType.PASSWORD
    assert synonyms(password) == [("ssl.keystore.password", None, STATIC)]

    unknown = entry["custom.plugin.setting"]
    assert unknown.is_sensitive and unknown.value is None and unknown.config_type is ConfigType.UNKNOWN
    assert unknown.source is STATIC and unknown.documentation is None

    assert entry["unstable.api.versions.enable"].value == "true"  # internal, listed because it is set
    assert "log.initial.task.delay.ms" not in entry  # internal and unset
    assert entry["listeners"].read_only is False and entry["message.max.bytes"].read_only is False
    assert entry["log.cleanup.policy"].value == "delete"
    assert entry["log.cleaner.io.max.bytes.per.second"].value == "1.7976931348623157E308"
    assert entry["zookeeper.connect"].value is None
    assert entry["num.partitions"].documentation


def test_broker_embedded_defaults_are_defaults() -> None:
    entry = by_name(describe_broker(BrokerConfig({}, embedded_defaults=True), names=["listeners", "log.dir"]))
    assert (entry["listeners"].value, entry["listeners"].source) == ("PLAINTEXT://localhost:9092", DEFAULT)
    assert synonyms(entry["log.dir"]) == [("log.dir", "./data", DEFAULT)]


def test_listener_override_synonyms() -> None:
    broker = BrokerConfig(
        {
            "ssl.keystore.location": "/base.jks",
            "listener.name.internal.ssl.keystore.location": "/internal.jks",
        }
    )
    entry = by_name(describe_broker(broker))
    assert synonyms(entry["listener.name.internal.ssl.keystore.location"]) == [
        ("listener.name.internal.ssl.keystore.location", "/internal.jks", STATIC),
        ("ssl.keystore.location", "/base.jks", STATIC),
    ]
    assert entry["listener.name.internal.ssl.keystore.location"].config_type is ConfigType.STRING
    assert synonyms(entry["ssl.keystore.location"]) == [("ssl.keystore.location", "/base.jks", STATIC)]


def test_dynamic_sources_in_broker_and_topic_descriptions() -> None:
    broker = BrokerConfig({"log.retention.ms": "7000"}).with_dynamic(
        per_broker={"log.retention.ms": "5000"},
        cluster_default={"log.retention.ms": "6000", "num.io.threads": "9"},
    )
    entry = by_name(describe_broker(broker))["log.retention.ms"]
    assert (entry.value, entry.source) == ("5000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert synonyms(entry) == [
        ("log.retention.ms", "5000", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ("log.retention.ms", "6000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.ms", "7000", STATIC),
        ("log.retention.hours", "168", DEFAULT),
    ]
    topic = by_name(describe_topic(broker, {}))["retention.ms"]
    assert (topic.value, topic.source) == ("5000", ConfigSource.DYNAMIC_BROKER_CONFIG)

    defaults = by_name(describe_cluster_defaults(broker))
    assert sorted(defaults) == ["log.retention.ms", "num.io.threads"]
    assert synonyms(defaults["log.retention.ms"]) == [
        ("log.retention.ms", "6000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    ]
    assert defaults["num.io.threads"].value == "9"


def test_every_entry_is_well_formed() -> None:
    broker = BrokerConfig({"sasl.jaas.config": "secret"})
    for entry in [*describe_broker(broker), *describe_topic(broker, {"retention.bytes": "10"})]:
        assert entry.is_default == (entry.source is DEFAULT)
        assert (entry.value is None) or not entry.is_sensitive
        if entry.synonyms:
            assert entry.source is entry.synonyms[0].source
