"""Topic-level configs: validating overrides (CreateTopics, AlterConfigs, IncrementalAlterConfigs)
and turning them into the ``LogConfig`` of a topic's partitions.

Validation follows Kafka's ``LogConfig.validate`` as run by a ZooKeeper-mode broker: unknown names
and null values are refused, every value must parse and pass its validator, the combined config
(broker defaults + overrides) must be consistent, and tiered-storage settings are refused. A failure
is a :class:`ConfigError`; the broker answers ``INVALID_CONFIG`` (40) with its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from storage.config import LogConfig

from .errors import ConfigError
from .logs import broker_topic_values, to_log_config
from .schema import ConfigType, ConfigValue
from .topic_defs import TOPIC_CONFIGS
from .values import format_value, parse_value

if TYPE_CHECKING:
    from .model import BrokerConfig


def parse_topic_configs(configs: Mapping[str, str]) -> dict[str, ConfigValue]:
    """Parse and validate each override on its own (names must be topic configs)."""
    unknown = [name for name in configs if name not in TOPIC_CONFIGS]
    if unknown:
        raise ConfigError(f"Unknown topic config name: {', '.join(unknown)}", name=unknown[0])
    parsed: dict[str, ConfigValue] = {}
    for name, raw in configs.items():
        definition = TOPIC_CONFIGS[name]
        value = parse_value(name, definition.type, raw)
        if definition.validator is not None:
            definition.validator.check(name, value)
        parsed[name] = value
    return parsed


def topic_values(broker: BrokerConfig | None, overrides: Mapping[str, str]) -> dict[str, ConfigValue]:
    """Every topic config's effective value: the override if any, else the broker's default
    (or Kafka's topic default when no broker is given)."""
    if broker is None:
        values = {name: definition.default for name, definition in TOPIC_CONFIGS.items()}
    else:
        values = broker_topic_values(broker)
    values.update(parse_topic_configs(overrides))
    return values


def validate_topic_configs(
    configs: Mapping[str, str | None], broker: BrokerConfig | None = None
) -> dict[str, str]:
    """Check topic config overrides as Kafka's CreateTopics/AlterConfigs do; return them unchanged
    (the texts to persist). ``broker`` supplies the defaults the overrides combine with."""
    nulls = [name for name, value in configs.items() if value is None]
    if nulls:
        raise ConfigError(f"Null value not supported for topic configs: {','.join(nulls)}", name=nulls[0])
    given = {name: value for name, value in configs.items() if value is not None}
    values = topic_values(broker, given)
    _check_combined(values)
    to_log_config(values)  # storage's own limits (e.g. a non-empty cleanup.policy)
    return given


def _check_combined(values: Mapping[str, ConfigValue]) -> None:
    low, high = values["min.compaction.lag.ms"], values["max.compaction.lag.ms"]
    assert isinstance(low, int) and isinstance(high, int)
    if low > high:
        raise ConfigError(
            f"conflict topic config setting min.compaction.lag.ms ({low}) > max.compaction.lag.ms ({high})",
            name="min.compaction.lag.ms",
        )
    if values["remote.log.delete.on.disable"] is True or values["remote.log.copy.disable"] is True:
        raise ConfigError(
            "It is invalid to set `remote.log.delete.on.disable` or `remote.log.copy.disable` "
            "under Zookeeper's mode.",
            name="remote.log.copy.disable",
        )
    if values["remote.storage.enable"] is True:
        raise ConfigError(
            "Tiered Storage functionality is disabled in the broker. "
            "Topic cannot be configured with remote log storage.",
            name="remote.storage.enable",
        )


def topic_log_config(broker: BrokerConfig, overrides: Mapping[str, str]) -> LogConfig:
    """The ``LogConfig`` of a topic with these overrides on this broker (ConfigError if invalid)."""
    return to_log_config(topic_values(broker, overrides))


def is_list_config(name: str) -> bool:
    """Whether a topic config is a LIST (IncrementalAlterConfigs APPEND/SUBTRACT need one);
    ConfigError for an unknown name, as Kafka's ``Unknown config name``."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise ConfigError(f"Unknown config name: {name}", name=name)
    return definition.type is ConfigType.LIST


def topic_default_text(broker: BrokerConfig | None, name: str) -> str | None:
    """The text of a topic config when the topic does not override it.

    With a broker this is what DescribeConfigs shows (the broker's ``log.*`` setting, e.g. a
    ``log.cleanup.policy=compact`` broker gives ``compact``). With None it is Kafka's topic-level
    default, which is what Kafka's IncrementalAlterConfigs APPEND/SUBTRACT start from (so APPEND
    ``delete`` on such a broker gives ``delete`` in Kafka, ``compact,delete`` if the broker's
    value is used). ConfigError for an unknown name."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise ConfigError(f"Unknown config name: {name}", name=name)
    value = definition.default if broker is None else broker_topic_values(broker)[name]
    return format_value(definition.type, value)
