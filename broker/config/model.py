"""``BrokerConfig``: the parsed, validated, immutable configuration of one broker.

A value can come from four layers, highest precedence first, exactly as in Kafka:

1. dynamic per-broker configs (``DYNAMIC_BROKER_CONFIG``, set with AlterConfigs on this broker),
2. dynamic cluster-wide defaults (``DYNAMIC_DEFAULT_BROKER_CONFIG``, AlterConfigs on broker ""),
3. static configs (``STATIC_BROKER_CONFIG``: server.properties, ``KAFKA_*`` variables, ``--override``),
4. defaults (``DEFAULT_CONFIG``: Kafka's, or Brook's embedded defaults when started without a file).

The layers are kept apart (rather than merged into one dict) because DescribeConfigs must report,
for every key, where its value came from and which synonyms were set at which level. Persisting
dynamic configs is the metadata store's job; :meth:`BrokerConfig.with_dynamic` only validates and
applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .checks import Derived, derive
from .dynamic import (
    ALL_DYNAMIC,
    CLUSTER_LEVEL_LISTENER,
    PER_BROKER,
    SSL_RECONFIGURABLE,
    listener_base_name,
)
from .errors import ConfigError
from .listeners import Listener
from .registry import BROKER_CONFIGS, DYNAMIC_ONLY_CONFIGS, broker_definition
from .schema import ConfigSource, ConfigValue, Password
from .values import parse_value, raw_text

#: Keys of Kafka's AclAuthorizer: not KafkaConfig keys (DescribeConfigs does not list them), but
#: known, so neither warned about as unknown nor refused by the embedding API.
AUTHORIZER_KEYS = frozenset({"super.users", "allow.everyone.if.no.acl.found"})

if TYPE_CHECKING:
    from storage.config import LogConfig

log = logging.getLogger("broker.config")

#: Brook's defaults when started without a properties file ("the embedded default"): a broker
#: reachable on localhost:9092 keeping its data in ./data. They replace Kafka's defaults
#: (``PLAINTEXT://:9092``, ``/tmp/kafka-logs``) only in that case. ``log.dir`` rather than
#: ``log.dirs`` is overlaid so that an explicit ``--override log.dir=...`` still wins.
EMBEDDED_DEFAULTS: dict[str, str] = {"listeners": "PLAINTEXT://localhost:9092", "log.dir": "./data"}

V = TypeVar("V")


def _as_int(value: ConfigValue) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _as_opt_int(value: ConfigValue) -> int | None:
    return None if value is None else _as_int(value)


def _as_bool(value: ConfigValue) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


def _as_str(value: ConfigValue) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _as_opt_str(value: ConfigValue) -> str | None:
    return None if value is None else _as_str(value)


def _as_float(value: ConfigValue) -> float:
    if not isinstance(value, float):
        raise TypeError(f"expected a double, got {value!r}")
    return value


def _as_list(value: ConfigValue) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return list(value)


class _Field(Generic[V]):
    """A typed, read-only attribute reading one config key (``cfg.num_partitions`` -> int)."""

    def __init__(self, name: str, convert: Callable[[ConfigValue], V]) -> None:
        self.name = name
        self.convert = convert

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Field[V]: ...

    @overload
    def __get__(self, obj: BrokerConfig, owner: type[Any]) -> V: ...

    def __get__(self, obj: BrokerConfig | None, owner: type[Any]) -> _Field[V] | V:
        if obj is None:
            return self
        return self.convert(obj.get(self.name))


class BrokerConfig:
    """The effective configuration of one broker; construction validates everything.

    ``static`` holds the configs as given (file, environment, overrides), text values as in a
    properties file. ``embedded_defaults`` switches Kafka's listener/log-dir defaults for
    :data:`EMBEDDED_DEFAULTS`. Raises :class:`ConfigError` on any invalid value or combination.
    """

    def __init__(
        self,
        static: Mapping[str, str] | None = None,
        *,
        embedded_defaults: bool = False,
        dynamic_default: Mapping[str, str] | None = None,
        dynamic_broker: Mapping[str, str] | None = None,
        warn_unknown: bool = True,
    ) -> None:
        self._static = _with_id_synonyms(dict(static or {}))
        self._dynamic_default = dict(dynamic_default or {})
        self._dynamic_broker = dict(dynamic_broker or {})
        self._embedded = embedded_defaults
        self._overlay = dict(EMBEDDED_DEFAULTS) if embedded_defaults else {}
        self._values: dict[str, ConfigValue] = {}
        self._unknown: list[str] = []
        merged = {**self._static, **self._dynamic_default, **self._dynamic_broker}
        for name, definition in BROKER_CONFIGS.items():
            raw = merged.get(name, self._overlay.get(name))
            value = definition.default if raw is None else parse_value(name, definition.type, raw)
            if definition.validator is not None:
                definition.validator.check(name, value)
            self._values[name] = value
        for name, raw in merged.items():
            if name in self._values:
                continue
            base = broker_definition(name) if listener_base_name(name) else None
            if base is not None:
                self._values[name] = parse_value(name, base.type, raw)
                continue
            if name in AUTHORIZER_KEYS:
                self._values[name] = raw  # the authorizer's own settings, read as text by it
                continue
            if name in DYNAMIC_ONLY_CONFIGS and name not in self._static:
                dynamic = DYNAMIC_ONLY_CONFIGS[name]
                self._values[name] = parse_value(name, dynamic.type, raw)
                continue
            self._values[name] = raw
            self._unknown.append(name)
        if warn_unknown:
            for name in self._unknown:
                log.warning("Unknown configuration '%s' ignored by Brook (value kept as given)", name)
        self._derived: Derived = derive(self)

    # ----------------------------------------------------------------- generic access

    def get(self, name: str) -> ConfigValue:
        """The effective typed value of ``name`` (unknown keys: the text given). KeyError if the
        key is neither defined nor given."""
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def is_set(self, name: str) -> bool:
        """True if the key was given explicitly (statically or dynamically), not defaulted."""
        return name in self._dynamic_broker or name in self._dynamic_default or name in self._static

    def source(self, name: str) -> ConfigSource:
        """Where the effective value of ``name`` comes from."""
        if name in self._dynamic_broker:
            return ConfigSource.DYNAMIC_BROKER_CONFIG
        if name in self._dynamic_default:
            return ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        if name in self._static:
            return ConfigSource.STATIC_BROKER_CONFIG
        if name in self._values:
            return ConfigSource.DEFAULT_CONFIG
        raise KeyError(name)

    def layer(self, source: ConfigSource) -> Mapping[str, str]:
        """The texts set at one layer (DYNAMIC_BROKER, DYNAMIC_DEFAULT_BROKER or STATIC_BROKER),
        as a read-only view."""
        if source is ConfigSource.DYNAMIC_BROKER_CONFIG:
            return MappingProxyType(self._dynamic_broker)
        if source is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG:
            return MappingProxyType(self._dynamic_default)
        if source is ConfigSource.STATIC_BROKER_CONFIG:
            return MappingProxyType(self._static)
        raise ValueError(f"no text layer for {source.name}")

    def default_text(self, name: str) -> str | None:
        """The default of a key as Kafka prints it (embedded defaults included); None if none."""
        if name in self._overlay:
            return self._overlay[name]
        definition = BROKER_CONFIGS.get(name)
        return None if definition is None else raw_text(definition.default)

    @property
    def names(self) -> list[str]:
        """Every defined key plus every key given (unknown or listener-prefixed ones too)."""
        return list(self._values)

    @property
    def originals(self) -> dict[str, str]:
        """The static configs as given (with broker.id/node.id mirrored, as Kafka does)."""
        return dict(self._static)

    @property
    def unknown_keys(self) -> list[str]:
        return list(self._unknown)

    @property
    def embedded_defaults(self) -> bool:
        return self._embedded

    def with_dynamic(
        self, *, per_broker: Mapping[str, str] | None = None, cluster_default: Mapping[str, str] | None = None
    ) -> BrokerConfig:
        """A copy with these dynamic layers (replacing the current ones), validated as Kafka's
        AlterConfigs for brokers validates them."""
        per_broker = dict(self._dynamic_broker if per_broker is None else per_broker)
        cluster_default = dict(self._dynamic_default if cluster_default is None else cluster_default)
        _check_dynamic(per_broker, per_broker=True)
        _check_dynamic(cluster_default, per_broker=False)
        return BrokerConfig(
            self._static,
            embedded_defaults=self._embedded,
            dynamic_default=cluster_default,
            dynamic_broker=per_broker,
            warn_unknown=False,
        )

    def log_config(self) -> LogConfig:
        """Broker-level log defaults as a storage ``LogConfig`` (what a topic without overrides
        gets): log.retention.* -> retention_ms, log.segment.bytes -> segment_bytes, ..."""
        from .logs import broker_topic_values, to_log_config

        return to_log_config(broker_topic_values(self))

    def __repr__(self) -> str:
        shown = {
            name: str(value) if isinstance(value, Password) else value
            for name, value in self._values.items()
            if self.is_set(name)
        }
        return f"BrokerConfig(node_id={self.node_id}, set={shown!r})"

    # ----------------------------------------------------------------- derived values

    @property
    def node_id(self) -> int:
        """This broker's id: broker.id / node.id; a standalone broker with neither set is 0.
        -1 only with zookeeper.connect: the broker then runs with the id recorded in
        meta.properties or generated by ZooKeeper at start (``Broker.node_id``)."""
        return self._derived.node_id

    broker_id = node_id

    @property
    def standalone(self) -> bool:
        """No ZooKeeper: Brook runs as a single self-contained node."""
        return self._derived.zookeeper_connect is None

    @property
    def zookeeper_connect(self) -> str | None:
        return self._derived.zookeeper_connect

    @property
    def zookeeper_connection_timeout_ms(self) -> int:
        """zookeeper.connection.timeout.ms, defaulting to the session timeout as in Kafka."""
        return self._derived.zookeeper_connection_timeout_ms

    @property
    def listeners(self) -> list[Listener]:
        """Endpoints to bind (host ``""`` = all interfaces)."""
        return list(self._derived.listeners)

    @property
    def advertised_listeners(self) -> list[Listener]:
        """Endpoints announced to clients; never a wildcard host (see :func:`listeners.advertise`)."""
        return list(self._derived.advertised_listeners)

    @property
    def listener_security_protocol_map(self) -> dict[str, str]:
        return dict(self._derived.protocol_map)

    @property
    def inter_broker_listener_name(self) -> str:
        return self._derived.inter_broker_listener_name

    @property
    def log_dirs(self) -> list[Path]:
        """log.dirs, else log.dir, split on commas."""
        return list(self._derived.log_dirs)

    @property
    def max_connections_per_ip_overrides(self) -> dict[str, int]:
        return dict(self._derived.max_connections_per_ip_overrides)

    @property
    def log_retention_ms(self) -> int:
        """log.retention.ms, else .minutes, else .hours, in ms; -1 (any negative) = unlimited."""
        return self._derived.log_retention_ms

    @property
    def log_roll_ms(self) -> int:
        """log.roll.ms, else log.roll.hours in ms."""
        return self._derived.log_roll_ms

    @property
    def log_roll_jitter_ms(self) -> int:
        return self._derived.log_roll_jitter_ms

    @property
    def log_flush_interval_ms(self) -> int:
        """log.flush.interval.ms, else log.flush.scheduler.interval.ms."""
        return self._derived.log_flush_interval_ms

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000

    @property
    def num_replica_alter_log_dirs_threads(self) -> int:
        explicit = _as_opt_int(self.get("num.replica.alter.log.dirs.threads"))
        return len(self.log_dirs) if explicit is None else explicit

    # ----------------------------------------------------------------- typed settings

    broker_rack = _Field("broker.rack", _as_opt_str)
    replica_selector_class = _Field("replica.selector.class", _as_opt_str)
    zookeeper_session_timeout_ms = _Field("zookeeper.session.timeout.ms", _as_int)
    zookeeper_max_in_flight_requests = _Field("zookeeper.max.in.flight.requests", _as_int)
    controlled_shutdown_enable = _Field("controlled.shutdown.enable", _as_bool)
    inter_broker_protocol_version = _Field("inter.broker.protocol.version", _as_str)
    request_timeout_ms = _Field("request.timeout.ms", _as_int)
    background_threads = _Field("background.threads", _as_int)

    socket_request_max_bytes = _Field("socket.request.max.bytes", _as_int)
    socket_send_buffer_bytes = _Field("socket.send.buffer.bytes", _as_int)
    socket_receive_buffer_bytes = _Field("socket.receive.buffer.bytes", _as_int)
    socket_listen_backlog_size = _Field("socket.listen.backlog.size", _as_int)
    num_network_threads = _Field("num.network.threads", _as_int)
    num_io_threads = _Field("num.io.threads", _as_int)
    queued_max_requests = _Field("queued.max.requests", _as_int)
    queued_max_request_bytes = _Field("queued.max.request.bytes", _as_int)
    connections_max_idle_ms = _Field("connections.max.idle.ms", _as_int)
    max_connections = _Field("max.connections", _as_int)
    max_connections_per_ip = _Field("max.connections.per.ip", _as_int)
    max_connection_creation_rate = _Field("max.connection.creation.rate", _as_int)

    num_partitions = _Field("num.partitions", _as_int)
    default_replication_factor = _Field("default.replication.factor", _as_int)
    auto_create_topics_enable = _Field("auto.create.topics.enable", _as_bool)
    delete_topic_enable = _Field("delete.topic.enable", _as_bool)
    message_max_bytes = _Field("message.max.bytes", _as_int)
    min_insync_replicas = _Field("min.insync.replicas", _as_int)
    unclean_leader_election_enable = _Field("unclean.leader.election.enable", _as_bool)
    compression_type = _Field("compression.type", _as_str)
    num_recovery_threads_per_data_dir = _Field("num.recovery.threads.per.data.dir", _as_int)
    log_segment_bytes = _Field("log.segment.bytes", _as_int)
    log_retention_bytes = _Field("log.retention.bytes", _as_int)
    log_retention_check_interval_ms = _Field("log.retention.check.interval.ms", _as_int)
    log_cleanup_policy = _Field("log.cleanup.policy", _as_list)
    log_flush_interval_messages = _Field("log.flush.interval.messages", _as_int)
    log_flush_scheduler_interval_ms = _Field("log.flush.scheduler.interval.ms", _as_int)
    log_flush_offset_checkpoint_interval_ms = _Field("log.flush.offset.checkpoint.interval.ms", _as_int)
    log_flush_start_offset_checkpoint_interval_ms = _Field(
        "log.flush.start.offset.checkpoint.interval.ms", _as_int
    )
    log_index_size_max_bytes = _Field("log.index.size.max.bytes", _as_int)
    log_index_interval_bytes = _Field("log.index.interval.bytes", _as_int)
    log_segment_delete_delay_ms = _Field("log.segment.delete.delay.ms", _as_int)
    log_message_timestamp_type = _Field("log.message.timestamp.type", _as_str)
    log_cleaner_enable = _Field("log.cleaner.enable", _as_bool)
    log_cleaner_threads = _Field("log.cleaner.threads", _as_int)
    log_cleaner_backoff_ms = _Field("log.cleaner.backoff.ms", _as_int)
    log_cleaner_dedupe_buffer_size = _Field("log.cleaner.dedupe.buffer.size", _as_int)
    log_cleaner_io_buffer_size = _Field("log.cleaner.io.buffer.size", _as_int)
    log_cleaner_io_max_bytes_per_second = _Field("log.cleaner.io.max.bytes.per.second", _as_float)
    log_cleaner_min_cleanable_ratio = _Field("log.cleaner.min.cleanable.ratio", _as_float)
    log_cleaner_delete_retention_ms = _Field("log.cleaner.delete.retention.ms", _as_int)
    fetch_max_bytes = _Field("fetch.max.bytes", _as_int)
    max_incremental_fetch_session_cache_slots = _Field("max.incremental.fetch.session.cache.slots", _as_int)
    max_request_partition_size_limit = _Field("max.request.partition.size.limit", _as_int)

    replica_fetch_max_bytes = _Field("replica.fetch.max.bytes", _as_int)
    replica_fetch_wait_max_ms = _Field("replica.fetch.wait.max.ms", _as_int)
    replica_fetch_min_bytes = _Field("replica.fetch.min.bytes", _as_int)
    replica_fetch_response_max_bytes = _Field("replica.fetch.response.max.bytes", _as_int)
    replica_fetch_backoff_ms = _Field("replica.fetch.backoff.ms", _as_int)
    replica_lag_time_max_ms = _Field("replica.lag.time.max.ms", _as_int)
    replica_socket_timeout_ms = _Field("replica.socket.timeout.ms", _as_int)
    replica_socket_receive_buffer_bytes = _Field("replica.socket.receive.buffer.bytes", _as_int)
    replica_high_watermark_checkpoint_interval_ms = _Field(
        "replica.high.watermark.checkpoint.interval.ms", _as_int
    )
    num_replica_fetchers = _Field("num.replica.fetchers", _as_int)
    auto_leader_rebalance_enable = _Field("auto.leader.rebalance.enable", _as_bool)
    leader_imbalance_check_interval_seconds = _Field("leader.imbalance.check.interval.seconds", _as_int)
    leader_imbalance_per_broker_percentage = _Field("leader.imbalance.per.broker.percentage", _as_int)

    group_min_session_timeout_ms = _Field("group.min.session.timeout.ms", _as_int)
    group_max_session_timeout_ms = _Field("group.max.session.timeout.ms", _as_int)
    group_initial_rebalance_delay_ms = _Field("group.initial.rebalance.delay.ms", _as_int)
    group_max_size = _Field("group.max.size", _as_int)
    offsets_topic_num_partitions = _Field("offsets.topic.num.partitions", _as_int)
    offsets_topic_replication_factor = _Field("offsets.topic.replication.factor", _as_int)
    offsets_topic_segment_bytes = _Field("offsets.topic.segment.bytes", _as_int)
    offsets_topic_compression_codec = _Field("offsets.topic.compression.codec", _as_int)
    offsets_retention_minutes = _Field("offsets.retention.minutes", _as_int)
    offsets_retention_check_interval_ms = _Field("offsets.retention.check.interval.ms", _as_int)
    offsets_commit_timeout_ms = _Field("offsets.commit.timeout.ms", _as_int)
    offsets_load_buffer_size = _Field("offsets.load.buffer.size", _as_int)
    offset_metadata_max_bytes = _Field("offset.metadata.max.bytes", _as_int)

    transaction_state_log_num_partitions = _Field("transaction.state.log.num.partitions", _as_int)
    transaction_state_log_replication_factor = _Field("transaction.state.log.replication.factor", _as_int)
    transaction_state_log_segment_bytes = _Field("transaction.state.log.segment.bytes", _as_int)
    transaction_state_log_min_isr = _Field("transaction.state.log.min.isr", _as_int)
    transaction_state_log_load_buffer_size = _Field("transaction.state.log.load.buffer.size", _as_int)
    transactional_id_expiration_ms = _Field("transactional.id.expiration.ms", _as_int)
    transaction_max_timeout_ms = _Field("transaction.max.timeout.ms", _as_int)
    transaction_abort_timed_out_transaction_cleanup_interval_ms = _Field(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", _as_int
    )
    transaction_remove_expired_transaction_cleanup_interval_ms = _Field(
        "transaction.remove.expired.transaction.cleanup.interval.ms", _as_int
    )
    transaction_partition_verification_enable = _Field("transaction.partition.verification.enable", _as_bool)
    producer_id_expiration_ms = _Field("producer.id.expiration.ms", _as_int)
    producer_id_expiration_check_interval_ms = _Field("producer.id.expiration.check.interval.ms", _as_int)


def _with_id_synonyms(static: dict[str, str]) -> dict[str, str]:
    """Kafka's ``populateSynonyms``: a broker.id alone is also the node.id and vice versa."""
    if "broker.id" in static and "node.id" not in static:
        static["node.id"] = static["broker.id"]
    elif "node.id" in static and "broker.id" not in static:
        static["broker.id"] = static["node.id"]
    return static


def _scala_set(names: list[str]) -> str:
    """A set of names as Kafka's messages print it (Scala's ``Set(a, b)``)."""
    return f"Set({', '.join(names)})"


def _check_dynamic(configs: Mapping[str, str], *, per_broker: bool) -> None:
    """Kafka's ``DynamicBrokerConfig.validateConfigs`` rules for a dynamic layer. As Kafka's
    ``nonDynamicProps``, only known broker keys can be "not dynamic": names Kafka does not define
    (custom reporters' settings, listener-prefixed ones) may be set."""
    not_dynamic = sorted(
        name
        for name in configs
        if name in BROKER_CONFIGS and name not in ALL_DYNAMIC and name not in DYNAMIC_ONLY_CONFIGS
    )
    if not_dynamic:
        raise ConfigError(f"Cannot update these configs dynamically: {_scala_set(not_dynamic)}")
    unprefixed_security = sorted(name for name in configs if name in SSL_RECONFIGURABLE)
    if unprefixed_security:
        raise ConfigError(
            "These security configs can be dynamically updated only per-listener using the listener prefix: "
            f"{_scala_set(unprefixed_security)}"
        )
    if not per_broker:
        broker_only = sorted(
            name
            for name in configs
            if name in PER_BROKER
            or ((base := listener_base_name(name)) is not None and base not in CLUSTER_LEVEL_LISTENER)
        )
        if broker_only:
            raise ConfigError(
                "Cannot update these configs at default cluster level, broker id must be specified: "
                f"{_scala_set(broker_only)}"
            )
