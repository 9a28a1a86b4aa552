"""load_config / BrokerConfig: precedence, Kafka's derived rules, listeners, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from broker.config import BrokerConfig, ConfigError, ConfigSource, Listener, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.properties"
    path.write_text(text)
    return path


# ------------------------------------------------------------------ sources and precedence


def test_embedded_default_without_a_file() -> None:
    config = load_config(None, [])
    assert config.listeners == [Listener("PLAINTEXT", "localhost", 9092, "PLAINTEXT")]
    assert config.advertised_listeners == [Listener("PLAINTEXT", "localhost", 9092, "PLAINTEXT")]
    assert config.log_dirs == [Path("./data")]
    assert config.node_id == 0
    assert config.standalone and config.zookeeper_connect is None
    assert config.source("listeners") is ConfigSource.DEFAULT_CONFIG
    assert not config.is_set("listeners")


def test_with_a_file_kafka_defaults_apply(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "num.partitions=3\n"), [])
    assert config.listeners == [Listener("PLAINTEXT", "", 9092, "PLAINTEXT")]
    assert config.log_dirs == [Path("/tmp/kafka-logs")]
    assert config.num_partitions == 3
    assert config.source("num.partitions") is ConfigSource.STATIC_BROKER_CONFIG
    assert config.is_set("num.partitions")


def test_override_beats_file_and_later_override_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "num.partitions=3\nlog.dirs=/a,/b\n")
    config = load_config(path, ["num.partitions=5", "num.partitions=6"])
    assert config.num_partitions == 6
    assert config.log_dirs == [Path("/a"), Path("/b")]


def test_explicit_log_dir_beats_embedded_default() -> None:
    assert load_config(None, ["log.dir=/srv/brook"]).log_dirs == [Path("/srv/brook")]


def test_log_dirs_beats_log_dir() -> None:
    config = BrokerConfig({"log.dir": "/one", "log.dirs": " /two , /three "})
    assert config.log_dirs == [Path("/two"), Path("/three")]


def test_empty_log_dirs_is_an_error() -> None:
    with pytest.raises(ConfigError, match="At least one log directory"):
        BrokerConfig({"log.dirs": " , "})


def test_typed_accessors(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "auto.create.topics.enable= FALSE \nbroker.rack=r1\n"), [])
    assert config.auto_create_topics_enable is False
    assert config.broker_rack == "r1"
    assert config.message_max_bytes == 1048588
    assert config.offsets_retention_ms == 7 * 24 * 3600 * 1000
    assert config.zookeeper_connection_timeout_ms == 18000
    assert config.num_replica_alter_log_dirs_threads == 1
    assert config.log_cleaner_io_max_bytes_per_second == 1.7976931348623157e308


# ------------------------------------------------------------------ derived rules


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, 168 * 3600_000),
        ({"log.retention.hours": "24"}, 24 * 3600_000),
        ({"log.retention.hours": "24", "log.retention.minutes": "30"}, 30 * 60_000),
        ({"log.retention.hours": "24", "log.retention.minutes": "30", "log.retention.ms": "1234"}, 1234),
        ({"log.retention.ms": "-1"}, -1),
        ({"log.retention.ms": "-5"}, -1),
        ({"log.retention.minutes": "-1"}, -1),
    ],
)
def test_retention_precedence(settings: dict[str, str], expected: int) -> None:
    config = BrokerConfig(settings)
    assert config.log_retention_ms == expected
    assert config.log_config().retention_ms == expected


def test_zero_retention_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"log.retention.ms must be unlimited"):
        BrokerConfig({"log.retention.minutes": "0"})


def test_roll_and_flush_fallbacks() -> None:
    config = BrokerConfig(
        {"log.roll.hours": "2", "log.roll.jitter.hours": "1", "log.flush.scheduler.interval.ms": "500"}
    )
    assert (config.log_roll_ms, config.log_roll_jitter_ms, config.log_flush_interval_ms) == (
        7200_000,
        3600_000,
        500,
    )
    config = BrokerConfig({"log.roll.hours": "2", "log.roll.ms": "1000", "log.flush.interval.ms": "7"})
    assert (config.log_roll_ms, config.log_flush_interval_ms) == (1000, 7)


def test_broker_log_config_maps_broker_names_to_topic_fields() -> None:
    config = BrokerConfig(
        {
            "log.segment.bytes": "1048576",
            "message.max.bytes": "2000000",
            "log.cleanup.policy": "compact",
            "log.flush.interval.messages": "10",
            "log.message.timestamp.type": "LogAppendTime",
            "log.cleaner.min.cleanable.ratio": "0.25",
            "log.segment.delete.delay.ms": "5",
            "log.message.timestamp.difference.max.ms": "9000",
            "log.message.timestamp.after.max.ms": "100",
            "min.insync.replicas": "2",
        }
    )
    log = config.log_config()
    assert log.segment_bytes == 1048576
    assert log.max_message_bytes == 2000000
    assert log.cleanup_policy == "compact"
    assert log.flush_messages == 10
    assert log.message_timestamp_type == "LogAppendTime"
    assert log.min_cleanable_dirty_ratio == 0.25
    assert log.file_delete_delay_ms == 5
    assert log.message_timestamp_before_max_ms == 9000  # unset bound: the deprecated difference applies
    assert log.message_timestamp_after_max_ms == 100
    assert log.min_insync_replicas == 2


def test_node_id_and_broker_id() -> None:
    assert BrokerConfig({"broker.id": "3"}).node_id == 3
    only_node = BrokerConfig({"node.id": "4"})
    assert only_node.node_id == 4 and only_node.get("broker.id") == 4
    assert BrokerConfig({"broker.id": "5", "node.id": "5"}).node_id == 5
    with pytest.raises(ConfigError, match=r"node.id"):
        BrokerConfig({"broker.id": "1", "node.id": "2"})


def test_unset_id_is_zero_standalone_and_refused_with_zookeeper() -> None:
    assert BrokerConfig({}).node_id == 0
    assert BrokerConfig({"broker.id": "-1"}).node_id == 0
    # With ZooKeeper, -1 stays: the id is recorded in meta.properties or generated at start.
    assert BrokerConfig({"zookeeper.connect": "zk:2181"}).node_id == -1
    assert BrokerConfig({"zookeeper.connect": "zk:2181", "broker.id": "-1", "node.id": "-1"}).node_id == -1
    assert BrokerConfig({"zookeeper.connect": "zk:2181", "broker.id": "2"}).node_id == 2
    with pytest.raises(ConfigError, match=r"broker.id must be greater than or equal to 0"):
        BrokerConfig({"zookeeper.connect": "zk:2181", "broker.id.generation.enable": "false"})
    with pytest.raises(ConfigError, match=r"reserved.broker.max.id"):
        BrokerConfig({"broker.id": "1001"})


def test_zookeeper_connection_timeout_defaults_to_session_timeout() -> None:
    config = BrokerConfig(
        {"zookeeper.connect": "zk:2181/chroot", "broker.id": "1", "zookeeper.session.timeout.ms": "6000"}
    )
    assert not config.standalone
    assert config.zookeeper_connect == "zk:2181/chroot"
    assert config.zookeeper_connection_timeout_ms == 6000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"process.roles": "broker"}, "KRaft"),
        ({"controller.listener.names": "CONTROLLER"}, "controller.listener.names"),
        ({"remote.log.storage.system.enable": "true"}, "tiered storage"),
        ({"replica.fetch.wait.max.ms": "40000"}, "replica.socket.timeout.ms"),
        ({"log.cleaner.dedupe.buffer.size": "1048576"}, "log.cleaner.dedupe.buffer.size"),
        ({"queued.max.request.bytes": "10"}, "queued.max.request.bytes"),
        ({"max.connections.per.ip": "0"}, "max.connections.per.ip"),
        ({"connection.failed.authentication.delay.ms": "700000"}, "connections.max.idle.ms"),
        ({"group.coordinator.rebalance.protocols": "consumer,classic"}, "KRaft"),
        ({"group.coordinator.rebalance.protocols": "share"}, "CLASSIC"),
        ({"offsets.topic.compression.codec": "9"}, "offsets.topic.compression.codec"),
    ],
)
def test_rules_spanning_keys(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BrokerConfig(settings)


# ------------------------------------------------------------------ invalid values


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("num.partitions", "abc", "Not a number of type INT"),
        ("num.partitions", "0", "Value must be at least 1"),
        ("num.partitions", "1_000", "Not a number of type INT"),
        ("num.partitions", "2147483648", "Not a number of type INT"),
        ("offsets.topic.replication.factor", "40000", "Not a number of type SHORT"),
        ("log.retention.ms", "12.5", "Not a number of type LONG"),
        ("auto.create.topics.enable", "yes", "Expected value to be either true or false"),
        ("log.cleanup.policy", "archive", "String must be one of: compact, delete"),
        ("log.message.timestamp.type", "createtime", "String must be one of: CreateTime, LogAppendTime"),
        ("compression.type", "brotli", "String must be one of"),
        ("log.cleaner.min.cleanable.ratio", "1.5", "Value must be no more than 1"),
        ("log.cleaner.min.cleanable.ratio", "half", "Not a number of type DOUBLE"),
        ("compression.gzip.level", "0", "between 1 and 9 or equal to -1"),
        ("inter.broker.protocol.version", "9.9", "not a valid version"),
        ("principal.builder.class", "not a class", "could not be found"),
        ("security.inter.broker.protocol", "plaintext", "String must be one of"),
    ],
)
def test_invalid_values_name_key_and_value(key: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig({key: value})
    message = str(info.value)
    assert key in message and value in message and reason in message
    assert info.value.name == key


def test_values_are_trimmed_like_java() -> None:
    config = BrokerConfig(
        {
            "num.partitions": " 7 ",
            "delete.topic.enable": "\tTrue ",
            "log.cleanup.policy": " compact , delete ",
        }
    )
    assert config.num_partitions == 7
    assert config.delete_topic_enable is True
    assert config.log_cleanup_policy == ["compact", "delete"]


def test_accepted_number_forms() -> None:
    config = BrokerConfig(
        {"num.partitions": "+8", "log.cleaner.min.cleanable.ratio": "1e-1", "log.retention.ms": "007"}
    )
    assert config.num_partitions == 8
    assert config.get("log.cleaner.min.cleanable.ratio") == 0.1
    assert config.log_retention_ms == 7
    assert BrokerConfig({"inter.broker.protocol.version": "2.8.1"}).inter_broker_protocol_version == "2.8.1"


# ------------------------------------------------------------------ unknown keys


def test_unknown_key_warns_and_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="broker.config"):
        config = load_config(None, ["no.such.setting=42"])
    assert "no.such.setting" in caplog.text
    assert config.get("no.such.setting") == "42"
    assert config.unknown_keys == ["no.such.setting"]


def test_listener_prefixed_keys_are_known(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="broker.config"):
        config = BrokerConfig({"listener.name.internal.ssl.keystore.location": "/k.jks"})
    assert caplog.text == ""
    assert config.get("listener.name.internal.ssl.keystore.location") == "/k.jks"


# ------------------------------------------------------------------ listeners


def test_listener_parsing_with_ipv6_and_several_listeners() -> None:
    config = BrokerConfig(
        {
            "listeners": "PLAINTEXT://0.0.0.0:9092, internal://[::1]:9093,LOCAL://[fe80::1%eth0]:9094,ANY://:0",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,INTERNAL:plaintext,LOCAL:PLAINTEXT,ANY:PLAINTEXT"
            ),
        }
    )
    assert config.listeners == [
        Listener("PLAINTEXT", "0.0.0.0", 9092, "PLAINTEXT"),
        Listener("INTERNAL", "::1", 9093, "PLAINTEXT"),
        Listener("LOCAL", "fe80::1%eth0", 9094, "PLAINTEXT"),
        Listener("ANY", "", 0, "PLAINTEXT"),
    ]
    advertised = config.advertised_listeners
    assert (
        advertised[0].host == "localhost"
        and advertised[1].host == "::1"
        and advertised[3].host == "localhost"
    )
    assert advertised[1].connection_string == "INTERNAL://[::1]:9093"
    assert config.inter_broker_listener_name == "PLAINTEXT"


def test_explicit_advertised_listeners() -> None:
    config = BrokerConfig(
        {"listeners": "PLAINTEXT://0.0.0.0:9092", "advertised.listeners": "PLAINTEXT://broker.example:19092"}
    )
    assert config.advertised_listeners == [Listener("PLAINTEXT", "broker.example", 19092, "PLAINTEXT")]
    assert config.listeners[0].host == "0.0.0.0"


def test_same_port_on_ipv4_and_ipv6_is_allowed() -> None:
    config = BrokerConfig(
        {
            "listeners": "PLAINTEXT://127.0.0.1:9092,V6://[::1]:9092",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,V6:PLAINTEXT",
        }
    )
    assert [listener.port for listener in config.listeners] == [9092, 9092]


def test_inter_broker_listener_name() -> None:
    settings = {
        "listeners": "INTERNAL://:9093,EXTERNAL://:9092",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "internal",
    }
    assert BrokerConfig(settings).inter_broker_listener_name == "INTERNAL"
    with pytest.raises(ConfigError, match="Only one of"):
        BrokerConfig({**settings, "security.inter.broker.protocol": "PLAINTEXT"})
    del settings["inter.broker.listener.name"]
    with pytest.raises(ConfigError, match=r"inter.broker.listener.name must be a listener name"):
        BrokerConfig(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"listeners": "PLAINTEXT:/localhost:9092"}, "Unable to parse PLAINTEXT:/localhost:9092"),
        ({"listeners": "PLAINTEXT://localhost"}, "Unable to parse"),
        ({"listeners": "PLAINTEXT://localhost:http"}, "Unable to parse"),
        ({"listeners": "PLAINTEXT://host name:9092"}, "Unable to parse"),
        ({"listeners": "PLAINTEXT://localhost:70000"}, "not within 0..65535"),
        ({"listeners": "FOO://localhost:9092"}, "No security protocol defined for listener FOO"),
        ({"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"}, "different name"),
        (
            {
                "listeners": "PLAINTEXT://a:9092,B://b:9092",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,B:PLAINTEXT",
            },
            "different port",
        ),
        (
            {
                "listeners": "PLAINTEXT://127.0.0.1:9092,B://127.0.0.2:9092",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,B:PLAINTEXT",
            },
            "IPv4",
        ),
        ({"listener.security.protocol.map": "PLAINTEXT:TLS"}, "Invalid security protocol"),
        ({"listener.security.protocol.map": "PLAINTEXT"}, "NAME:PROTOCOL"),
        ({"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"}, "nonroutable"),
        (
            {
                "advertised.listeners": "PLAINTEXT://h:9092,OTHER://h:9093",
                "listener.security.protocol.map": "OTHER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            },
            "subset",
        ),
        ({"listeners": ""}, "at least one broker advertised listener"),
    ],
)
def test_bad_listener_configs(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        BrokerConfig(settings)
    assert info.value.name is not None


# ------------------------------------------------------------------ dynamic layers


def test_dynamic_layers_take_precedence() -> None:
    base = BrokerConfig({"log.retention.hours": "24", "num.io.threads": "4"})
    updated = base.with_dynamic(
        per_broker={"num.io.threads": "6"}, cluster_default={"log.retention.ms": "5000"}
    )
    assert updated.num_io_threads == 6
    assert updated.source("num.io.threads") is ConfigSource.DYNAMIC_BROKER_CONFIG
    assert updated.log_retention_ms == 5000
    assert updated.source("log.retention.ms") is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert base.num_io_threads == 4  # immutable


@pytest.mark.parametrize(
    ("per_broker", "cluster_default", "message"),
    [
        ({"broker.id": "3"}, {}, "Cannot update these configs dynamically"),
        ({"log.retention.hours": "3"}, {}, "Cannot update these configs dynamically"),
        ({"ssl.keystore.location": "/k"}, {}, "per-listener"),
        ({}, {"listeners": "PLAINTEXT://:9092"}, "default cluster level"),
        ({}, {"listener.name.x.ssl.keystore.location": "/k"}, "default cluster level"),
        ({"num.io.threads": "0"}, {}, "num.io.threads"),
    ],
)
def test_dynamic_layer_rules(
    per_broker: dict[str, str], cluster_default: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        BrokerConfig({}).with_dynamic(per_broker=per_broker, cluster_default=cluster_default)


def test_repr_hides_passwords() -> None:
    config = BrokerConfig({"ssl.keystore.password": "s3cret"})
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(config.get("ssl.keystore.password"))


def test_zookeeper_connect_with_broker_id_minus_1_starts_to_generate_an_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As Kafka: broker.id=-1 with zookeeper.connect asks ZooKeeper for an id at start."""
    import broker.__main__ as entry

    started: list[BrokerConfig] = []
    monkeypatch.setattr(entry, "run", lambda config: started.append(config) or 0)
    assert entry.main(["--no-env", "--override", "zookeeper.connect=zk:2181"]) == 0
    [config] = started
    assert config.node_id == -1 and config.zookeeper_connect == "zk:2181"
