"""DescribeConfigs entries for topics and brokers, filled as Kafka's ``ConfigHelper`` fills them.

Per entry: the value as Kafka prints it (None for sensitive or unset keys), ``read_only`` (broker
configs that cannot change at run time), the source (``ConfigSource`` ids), ``is_sensitive``, the
type (``ConfigType`` ids), the documentation, and the synonyms, highest precedence first: for a
topic config, the topic override, then the broker synonyms set dynamically per broker, dynamically
cluster-wide, statically, then the broker defaults.

Kafka then drops synonyms up to the first one carrying the topic's primary broker name, so that
when only ``log.retention.hours`` is involved, ``retention.ms`` lists no synonym at all (its primary
broker synonym is ``log.retention.ms``, which has no default) and reports ``DEFAULT_CONFIG``. Brook
reproduces this quirk: tools comparing Brook with Kafka see the same output.

``is_default`` (DescribeConfigs v0 only) is ``source == DEFAULT_CONFIG``. Kafka 3.9 never sets it
(always false); Brook gives it its documented meaning, "the configuration is not set".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from storage.fast_dataclass import dataclass

from .dynamic import ALL_DYNAMIC, broker_config_synonyms
from .model import BrokerConfig
from .registry import BROKER_CONFIGS, broker_definition
from .schema import ConfigSource, ConfigType, ConfigValue
from .topic import topic_values
from .topic_defs import TOPIC_CONFIGS, broker_synonym
from .values import format_value

_LAYERS = (
    ConfigSource.DYNAMIC_BROKER_CONFIG,
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
    ConfigSource.STATIC_BROKER_CONFIG,
)


@dataclass(frozen=True, slots=True)
class ConfigSynonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One config of a DescribeConfigs result (fields map 1:1 onto the response)."""

    name: str
    value: str | None
    read_only: bool
    is_default: bool
    source: ConfigSource
    is_sensitive: bool
    synonyms: tuple[ConfigSynonym, ...]
    config_type: ConfigType
    documentation: str | None


def _synonyms(broker: BrokerConfig, primary: str, names: list[str], sensitive: bool) -> list[ConfigSynonym]:
    """Kafka's ``ConfigHelper.configSynonyms``: every layer in turn, each in synonym order."""
    found: list[ConfigSynonym] = []
    for source in _LAYERS:
        layer = broker.layer(source)
        found += [ConfigSynonym(n, None if sensitive else layer[n], source) for n in names if n in layer]
    for name in names:
        default = broker.default_text(name)
        if default is not None:
            found.append(ConfigSynonym(name, None if sensitive else default, ConfigSource.DEFAULT_CONFIG))
    while found and found[0].name != primary:
        found.pop(0)  # e.g. drop listener overrides when describing the base config
    return found


def _entry(
    name: str,
    value: str | None,
    synonyms: list[ConfigSynonym],
    *,
    read_only: bool,
    sensitive: bool,
    kind: ConfigType,
    doc: str | None,
    include_synonyms: bool,
    include_documentation: bool,
) -> ConfigEntry:
    source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
    return ConfigEntry(
        name=name,
        value=value,
        read_only=read_only,
        is_default=source is ConfigSource.DEFAULT_CONFIG,
        source=source,
        is_sensitive=sensitive,
        synonyms=tuple(synonyms) if include_synonyms else (),
        config_type=kind,
        documentation=doc if include_documentation else None,
    )


def _wanted(names: Collection[str] | None, name: str) -> bool:
    return not names or name in names


def describe_topic(
    broker: BrokerConfig,
    overrides: Mapping[str, str],
    *,
    names: Collection[str] | None = None,
    include_synonyms: bool = True,
    include_documentation: bool = True,
) -> list[ConfigEntry]:
    """Every topic config (sorted by name) of a topic with these overrides on this broker.

    ``names`` limits the result as the request's ``configuration_keys`` does (None/empty = all)."""
    values = topic_values(broker, overrides)
    entries: list[ConfigEntry] = []
    for name in sorted(TOPIC_CONFIGS):
        if not _wanted(names, name):
            continue
        definition = TOPIC_CONFIGS[name]
        text = format_value(definition.type, values[name])
        primary = broker_synonym(name)
        synonyms = (
            [] if primary is None else _synonyms(broker, primary, broker_config_synonyms(primary), False)
        )
        if name in overrides:
            synonyms.insert(0, ConfigSynonym(name, text, ConfigSource.DYNAMIC_TOPIC_CONFIG))
        entries.append(
            _entry(
                name,
                text,
                synonyms,
                read_only=False,
                sensitive=False,
                kind=definition.type,
                doc=definition.doc,
                include_synonyms=include_synonyms,
                include_documentation=include_documentation,
            )
        )
    return entries


def _broker_text(broker: BrokerConfig, name: str, kind: ConfigType | None) -> str | None:
    value: ConfigValue = broker.get(name)
    if isinstance(value, str):
        return value
    return format_value(kind or ConfigType.UNKNOWN, value)


def describe_broker(
    broker: BrokerConfig,
    *,
    names: Collection[str] | None = None,
    include_synonyms: bool = True,
    include_documentation: bool = True,
) -> list[ConfigEntry]:
    """Every broker config of this broker (the BROKER resource named by its id), sorted by name:
    all defined non-internal keys plus every key given, known or not (unknown ones are reported
    as sensitive, with no value and type UNKNOWN, as Kafka does)."""
    candidates = {n for n, d in BROKER_CONFIGS.items() if not d.internal}
    candidates |= {n for n in broker.names if broker.is_set(n)}
    entries: list[ConfigEntry] = []
    for name in sorted(candidates):
        if not _wanted(names, name):
            continue
        definition = broker_definition(name)
        kind = definition.type if definition is not None else ConfigType.UNKNOWN
        sensitive = definition is None or definition.sensitive
        text = None if sensitive else _broker_text(broker, name, kind)
        synonyms = _synonyms(broker, name, broker_config_synonyms(name), sensitive)
        exact = BROKER_CONFIGS.get(name)
        entries.append(
            _entry(
                name,
                text,
                synonyms,
                read_only=name not in ALL_DYNAMIC,
                sensitive=sensitive,
                kind=kind,
                doc=exact.doc if exact is not None else None,
                include_synonyms=include_synonyms,
                include_documentation=include_documentation,
            )
        )
    return entries


def describe_cluster_defaults(
    broker: BrokerConfig,
    *,
    names: Collection[str] | None = None,
    include_synonyms: bool = True,
    include_documentation: bool = True,
) -> list[ConfigEntry]:
    """The BROKER resource with an empty name: only the dynamic cluster-wide defaults, each with
    only its cluster-default synonyms (Kafka's ``perBrokerConfig = false``)."""
    layer = broker.layer(ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    entries: list[ConfigEntry] = []
    for name in sorted(layer):
        if not _wanted(names, name):
            continue
        definition = broker_definition(name)
        kind = definition.type if definition is not None else ConfigType.UNKNOWN
        sensitive = definition is None or definition.sensitive
        synonyms = [
            s
            for s in _synonyms(broker, name, broker_config_synonyms(name), sensitive)
            if s.source is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        ]
        exact = BROKER_CONFIGS.get(name)
        entries.append(
            _entry(
                name,
                None if sensitive else layer[name],
                synonyms,
                read_only=name not in ALL_DYNAMIC,
                sensitive=sensitive,
                kind=kind,
                doc=exact.doc if exact is not None else None,
                include_synonyms=include_synonyms,
                include_documentation=include_documentation,
            )
        )
    return entries
