"""Topic-level overrides: CreateTopics/AlterConfigs validation and the resulting LogConfig."""

from __future__ import annotations

import pytest

from broker.config import (
    BrokerConfig,
    ConfigError,
    is_list_config,
    topic_default_text,
    topic_log_config,
    validate_topic_configs,
)


def test_valid_overrides_are_returned_unchanged() -> None:
    configs = {
        "cleanup.policy": "compact, delete",
        "retention.ms": "-1",
        "segment.bytes": "1048576",
        "min.insync.replicas": "2",
        "message.timestamp.type": "LogAppendTime",
        "leader.replication.throttled.replicas": "0:1,1:2",
        "follower.replication.throttled.replicas": "*",
        "compression.type": "zstd",
        "min.cleanable.dirty.ratio": "0.1",
        "message.format.version": "2.8",
    }
    assert validate_topic_configs(configs) == configs


def test_unknown_topic_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"Unknown topic config name: log.retention.ms"):
        validate_topic_configs({"log.retention.ms": "1000"})


def test_null_values_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"Null value not supported for topic configs: retention.ms"):
        validate_topic_configs({"retention.ms": None})


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("retention.ms", "-2", "Value must be at least -1"),
        ("retention.ms", "soon", "Not a number of type LONG"),
        ("segment.bytes", "13", "Value must be at least 14"),
        ("cleanup.policy", "archive", "String must be one of: compact, delete"),
        ("min.cleanable.dirty.ratio", "2", "Value must be no more than 1"),
        ("message.timestamp.type", "Now", "String must be one of"),
        ("unclean.leader.election.enable", "maybe", "true or false"),
        ("leader.replication.throttled.replicas", "a:b", "literal '*'"),
        ("message.format.version", "0.7", "not a valid version"),
        ("compression.lz4.level", "18", "Value must be no more than 17"),
    ],
)
def test_invalid_topic_values(key: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_topic_configs({key: value})
    assert key in str(info.value) and reason in str(info.value)


def test_compaction_lags_are_checked_against_broker_defaults() -> None:
    with pytest.raises(ConfigError, match=r"min.compaction.lag.ms \(10\) > max.compaction.lag.ms \(5\)"):
        validate_topic_configs({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})
    broker = BrokerConfig({"log.cleaner.max.compaction.lag.ms": "100"})
    validate_topic_configs({"min.compaction.lag.ms": "50"}, broker)
    with pytest.raises(ConfigError, match="conflict"):
        validate_topic_configs({"min.compaction.lag.ms": "500"}, broker)


@pytest.mark.parametrize(
    "configs",
    [
        {"remote.storage.enable": "true"},
        {"remote.log.copy.disable": "true"},
        {"remote.log.delete.on.disable": "true"},
    ],
)
def test_tiered_storage_is_refused(configs: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        validate_topic_configs(configs)


def test_storage_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"cleanup.policy"):
        validate_topic_configs({"cleanup.policy": ""})
    with pytest.raises(ConfigError):
        validate_topic_configs({"segment.index.bytes": "8"})


def test_topic_log_config_layers_overrides_on_broker_defaults() -> None:
    broker = BrokerConfig(
        {"log.retention.hours": "1", "log.segment.bytes": "2097152", "log.cleanup.policy": "compact"}
    )
    log = topic_log_config(broker, {"segment.bytes": "1048576", "cleanup.policy": "delete,compact"})
    assert log.retention_ms == 3_600_000
    assert log.segment_bytes == 1048576
    assert log.cleanup_policy == "compact,delete"
    assert topic_log_config(broker, {}).cleanup_policy == "compact"


def test_topic_timestamp_difference_fallback() -> None:
    broker = BrokerConfig({})
    log = topic_log_config(broker, {"message.timestamp.difference.max.ms": "1000"})
    assert (log.message_timestamp_before_max_ms, log.message_timestamp_after_max_ms) == (1000, 1000)
    log = topic_log_config(
        broker, {"message.timestamp.difference.max.ms": "1000", "message.timestamp.after.max.ms": "5"}
    )
    assert (log.message_timestamp_before_max_ms, log.message_timestamp_after_max_ms) == (1000, 5)


def test_topic_log_config_rejects_bad_overrides() -> None:
    with pytest.raises(ConfigError, match="Unknown topic config name"):
        topic_log_config(BrokerConfig({}), {"retention": "5"})


def test_list_configs_and_default_texts() -> None:
    assert is_list_config("cleanup.policy") and is_list_config("follower.replication.throttled.replicas")
    assert not is_list_config("retention.ms")
    with pytest.raises(ConfigError, match="Unknown config name: nope"):
        is_list_config("nope")
    broker = BrokerConfig({"log.cleanup.policy": "compact", "log.retention.minutes": "2"})
    assert topic_default_text(broker, "cleanup.policy") == "compact"
    assert topic_default_text(None, "cleanup.policy") == "delete"
    assert topic_default_text(broker, "retention.ms") == "120000"
    assert topic_default_text(broker, "leader.replication.throttled.replicas") == ""
    with pytest.raises(ConfigError):
        topic_default_text(broker, "log.retention.ms")
