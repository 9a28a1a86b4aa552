"""From broker settings to per-log settings (Kafka's ``KafkaConfig.extractLogConfigMap``) and from
topic-level values to storage's :class:`storage.config.LogConfig`.

A topic without overrides behaves as the broker's ``log.*`` settings say; a topic override replaces
one value. Both the DescribeConfigs values and the ``LogConfig`` handed to storage are derived here,
so what ``kafka-configs --describe`` shows is what the log actually uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from storage.config import TOPIC_KEYS, LogConfig

from .errors import ConfigError
from .schema import LONG_MAX, ConfigValue
from .topic_defs import TOPIC_CONFIG_DEFS, TOPIC_SYNONYMS
from .versions import IBP_3_0_IV1, is_at_least

if TYPE_CHECKING:
    from .model import BrokerConfig


def broker_topic_values(broker: BrokerConfig) -> dict[str, ConfigValue]:
    """Every topic config's value for a topic without overrides on this broker."""
    values: dict[str, ConfigValue] = {}
    for definition in TOPIC_CONFIG_DEFS:
        synonyms = TOPIC_SYNONYMS.get(definition.name)
        values[definition.name] = broker.get(synonyms[0].name) if synonyms else definition.default
    values["segment.ms"] = broker.log_roll_ms
    values["segment.jitter.ms"] = broker.log_roll_jitter_ms
    values["flush.ms"] = broker.log_flush_interval_ms
    values["retention.ms"] = broker.log_retention_ms
    # Kafka pins the message format once the inter-broker protocol is 3.0 or later.
    if is_at_least(broker.inter_broker_protocol_version, IBP_3_0_IV1):
        values["message.format.version"] = IBP_3_0_IV1
    difference = broker.get("log.message.timestamp.difference.max.ms")
    for bound in ("message.timestamp.before.max.ms", "message.timestamp.after.max.ms"):
        if values[bound] == LONG_MAX:  # unset bound: the deprecated difference applies
            values[bound] = difference
    return values


def effective_timestamp_bounds(values: Mapping[str, ConfigValue]) -> tuple[int, int]:
    """(before, after) bounds: each falls back to message.timestamp.difference.max.ms when unset."""
    difference = values["message.timestamp.difference.max.ms"]
    bounds: list[int] = []
    for bound in ("message.timestamp.before.max.ms", "message.timestamp.after.max.ms"):
        value = values[bound]
        chosen = value if value != LONG_MAX else difference
        assert isinstance(chosen, int)
        bounds.append(chosen)
    return bounds[0], bounds[1]


def to_log_config(values: Mapping[str, ConfigValue]) -> LogConfig:
    """Storage's ``LogConfig`` for a complete set of topic-level values."""
    fields: dict[str, object] = {}
    for key, field in TOPIC_KEYS.items():
        value = values[key]
        if key == "cleanup.policy":
            assert isinstance(value, list)
            policies = sorted({item.strip().lower() for item in value})
            if not policies or "" in policies:
                raise ConfigError.invalid(
                    key, ",".join(value), "Brook needs delete, compact or compact,delete"
                )
            value = ",".join(policies)
        fields[field] = value
    before, after = effective_timestamp_bounds(values)
    fields["message_timestamp_before_max_ms"] = before
    fields["message_timestamp_after_max_ms"] = after
    try:
        return LogConfig(**fields)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid log configuration: {exc}") from None
