"""Rules spanning several keys, and the values derived from them (Kafka's ``KafkaConfig``
``validateValues`` and the accessors it relies on).

Each rule keeps Kafka's wording so a config rejected by Kafka is rejected by Brook with the same
explanation. A few rules are Brook's own, each saying why in its message: KRaft, tiered storage and
non-PLAINTEXT listeners are not supported yet, and a standalone broker needs no ZooKeeper.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storage.fast_dataclass import dataclass

from .errors import ConfigError
from .listeners import (
    Listener,
    advertise,
    check_supported,
    parse_listeners,
    parse_security_protocol_map,
)
from .schema import ConfigValue
from .values import parse_list

if TYPE_CHECKING:
    from .model import BrokerConfig

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
#: offsets.topic.compression.codec ids Kafka knows (none, gzip, snappy, lz4, zstd).
COMPRESSION_CODEC_IDS = range(5)


@dataclass(frozen=True, slots=True)
class Derived:
    node_id: int
    zookeeper_connect: str | None
    zookeeper_connection_timeout_ms: int
    protocol_map: dict[str, str]
    listeners: tuple[Listener, ...]
    advertised_listeners: tuple[Listener, ...]
    inter_broker_listener_name: str
    log_dirs: tuple[Path, ...]
    log_retention_ms: int
    log_roll_ms: int
    log_roll_jitter_ms: int
    log_flush_interval_ms: int
    max_connections_per_ip_overrides: dict[str, int]


def _int(config: BrokerConfig, name: str) -> int:
    value = config.get(name)
    assert isinstance(value, int)
    return value


def _opt_int(config: BrokerConfig, name: str) -> int | None:
    value = config.get(name)
    assert value is None or isinstance(value, int)
    return value


def _opt_str(config: BrokerConfig, name: str) -> str | None:
    value: ConfigValue = config.get(name)
    assert value is None or isinstance(value, str)
    return value


def _list(config: BrokerConfig, name: str) -> list[str]:
    value = config.get(name)
    assert isinstance(value, list)
    return value


def _require(condition: bool, message: str, name: str | None = None) -> None:
    if not condition:
        raise ConfigError(message, name=name)


def derive(config: BrokerConfig) -> Derived:
    """Validate cross-key rules and compute the derived values, or raise ConfigError."""
    _check_mode(config)
    node_id = _node_id(config)
    protocol_map = parse_security_protocol_map(_opt_str(config, "listener.security.protocol.map") or "")
    listeners, advertised = _listeners(config, protocol_map)
    inter_broker = _inter_broker_listener(config, protocol_map)
    advertised_names = {listener.name for listener in advertised}
    listener_names = {listener.name for listener in listeners}
    _require(
        bool(advertised_names),
        "There must be at least one broker advertised listener.",
        "advertised.listeners",
    )
    _require(
        inter_broker in advertised_names,
        "inter.broker.listener.name must be a listener name defined in advertised.listeners. "
        f"The valid options based on currently configured listeners are {','.join(sorted(advertised_names))}",
        "inter.broker.listener.name",
    )
    _require(
        advertised_names <= listener_names,
        "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. "
        f"Found {','.join(sorted(advertised_names))}. The valid options based on the current configuration "
        f"are {','.join(sorted(listener_names))}",
        "advertised.listeners",
    )
    _check_control_plane(config, protocol_map, advertised_names, inter_broker)
    _check_early_start(config, listener_names)
    _check_authorizer(config)
    retention, roll, jitter, flush = _log_times(config)
    _check_limits(config)
    overrides = _connection_overrides(config)
    _require(
        _int(config, "max.connections.per.ip") != 0 or bool(overrides),
        "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set.",
        "max.connections.per.ip",
    )
    session = _int(config, "zookeeper.session.timeout.ms")
    return Derived(
        node_id=node_id,
        zookeeper_connect=_opt_str(config, "zookeeper.connect") or None,
        zookeeper_connection_timeout_ms=_opt_int(config, "zookeeper.connection.timeout.ms") or session,
        protocol_map=protocol_map,
        listeners=tuple(listeners),
        advertised_listeners=tuple(advertised),
        inter_broker_listener_name=inter_broker,
        log_dirs=_log_dirs(config),
        log_retention_ms=retention,
        log_roll_ms=roll,
        log_roll_jitter_ms=jitter,
        log_flush_interval_ms=flush,
        max_connections_per_ip_overrides=overrides,
    )


def _check_mode(config: BrokerConfig) -> None:
    roles = _list(config, "process.roles")
    if roles:
        raise ConfigError(
            f"process.roles={','.join(roles)} asks for KRaft mode, which Brook does not support; remove it "
            "to run standalone or with zookeeper.connect",
            name="process.roles",
        )
    if config.get("zookeeper.metadata.migration.enable") is True:
        raise ConfigError(
            "zookeeper.metadata.migration.enable=true needs KRaft controllers, which Brook does not support",
            name="zookeeper.metadata.migration.enable",
        )
    controller_names = _opt_str(config, "controller.listener.names")
    _require(
        not controller_names,
        f"controller.listener.names must be empty when not running in KRaft mode: [{controller_names}]",
        "controller.listener.names",
    )
    if config.get("remote.log.storage.system.enable") is True:
        raise ConfigError(
            "remote.log.storage.system.enable=true: tiered storage is not supported by Brook",
            name="remote.log.storage.system.enable",
        )
    protocols = [p.upper() for p in _list(config, "group.coordinator.rebalance.protocols")]
    _require(
        "CLASSIC" in protocols,
        "Disabling the 'CLASSIC' protocol is not supported.",
        "group.coordinator.rebalance.protocols",
    )
    _require(
        "CONSUMER" not in protocols,
        "The new 'CONSUMER' rebalance protocol is only supported in KRaft cluster.",
        "group.coordinator.rebalance.protocols",
    )


def _node_id(config: BrokerConfig) -> int:
    broker_id = _int(config, "broker.id")
    node_id = _int(config, "node.id")
    _require(broker_id == node_id, "You must set `node.id` to the same value as `broker.id`.", "node.id")
    if config.get("broker.id.generation.enable") is True:
        _require(
            -1 <= broker_id <= _int(config, "reserved.broker.max.id"),
            "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id",
            "broker.id",
        )
    else:
        _require(broker_id >= 0, "broker.id must be greater than or equal to 0", "broker.id")
    if broker_id == -1:
        if _opt_str(config, "zookeeper.connect"):
            # ZooKeeper mode: the id recorded in meta.properties, or one generated from
            # /brokers/seqid at start (broker.cluster.zk.broker_id), as KafkaServer does.
            return -1
        return 0  # standalone: nobody to generate an id, and there is only one broker
    return broker_id


def _listeners(config: BrokerConfig, protocol_map: dict[str, str]) -> tuple[list[Listener], list[Listener]]:
    listeners = parse_listeners(_opt_str(config, "listeners") or "", protocol_map)
    check_supported(listeners, "listeners")
    explicit = _opt_str(config, "advertised.listeners")
    if explicit is None:
        return listeners, advertise(listeners)
    advertised = parse_listeners(explicit, protocol_map, config="advertised.listeners", distinct_ports=False)
    check_supported(advertised, "advertised.listeners")
    for listener in advertised:
        _require(
            listener.host not in ("0.0.0.0", "::"),
            "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. "
            "Use a routable IP address.",
            "advertised.listeners",
        )
    return listeners, advertise(advertised)


def _inter_broker_listener(config: BrokerConfig, protocol_map: dict[str, str]) -> str:
    name = _opt_str(config, "inter.broker.listener.name")
    if name is None:
        protocol = _opt_str(config, "security.inter.broker.protocol")
        assert protocol is not None
        return protocol
    _require(
        not config.is_set("security.inter.broker.protocol"),
        "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
        "inter.broker.listener.name",
    )
    normalised = name.upper()
    _require(
        normalised in protocol_map,
        f"Listener with name {normalised} defined in inter.broker.listener.name not found in "
        "listener.security.protocol.map.",
        "inter.broker.listener.name",
    )
    return normalised


def _check_control_plane(
    config: BrokerConfig, protocol_map: dict[str, str], advertised: set[str], inter_broker: str
) -> None:
    name = _opt_str(config, "control.plane.listener.name")
    if name is None:
        return
    normalised = name.upper()
    _require(
        normalised in protocol_map,
        f"Listener with {normalised} defined in control.plane.listener.name not found in "
        "listener.security.protocol.map.",
        "control.plane.listener.name",
    )
    _require(
        normalised in advertised,
        "control.plane.listener.name must be a listener name defined in advertised.listeners.",
        "control.plane.listener.name",
    )
    _require(
        normalised != inter_broker,
        "control.plane.listener.name, when defined, should have a different value from the inter broker "
        f"listener name. Currently they both have the value {normalised}",
        "control.plane.listener.name",
    )


def _check_early_start(config: BrokerConfig, listener_names: set[str]) -> None:
    for name in (n.strip().upper() for n in (_opt_str(config, "early.start.listeners") or "").split(",")):
        _require(
            not name or name in listener_names,
            f"early.start.listeners contains listener {name}, but this is not contained in listeners "
            "or controller.listener.names",
            "early.start.listeners",
        )


#: The authorizers Brook implements (both with AclAuthorizer's semantics); empty = none.
SUPPORTED_AUTHORIZERS = (
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
)


def _check_authorizer(config: BrokerConfig) -> None:
    name = (_opt_str(config, "authorizer.class.name") or "").strip()
    _require(
        not name or name in SUPPORTED_AUTHORIZERS,
        f"authorizer.class.name {name} is not supported by Brook: use {SUPPORTED_AUTHORIZERS[0]} "
        f"(or {SUPPORTED_AUTHORIZERS[1]}), or leave it empty for no authorization",
        "authorizer.class.name",
    )


def _log_dirs(config: BrokerConfig) -> tuple[Path, ...]:
    text = _opt_str(config, "log.dirs")
    if text is None:
        text = _opt_str(config, "log.dir") or ""
    dirs = [d for d in parse_list(text) if d]
    _require(bool(dirs), "At least one log directory must be defined via log.dirs or log.dir.", "log.dirs")
    return tuple(Path(d) for d in dirs)


def _log_times(config: BrokerConfig) -> tuple[int, int, int, int]:
    """(retention ms, roll ms, roll jitter ms, flush interval ms) with Kafka's precedence rules."""
    retention = _opt_int(config, "log.retention.ms")
    if retention is None:
        minutes = _opt_int(config, "log.retention.minutes")
        retention = (
            minutes * MINUTE_MS if minutes is not None else _int(config, "log.retention.hours") * HOUR_MS
        )
    retention = -1 if retention < 0 else retention
    _require(
        retention >= 1 or retention == -1,
        "log.retention.ms must be unlimited (-1) or, greater than or equal to 1",
        "log.retention.ms",
    )
    roll = _opt_int(config, "log.roll.ms")
    roll = _int(config, "log.roll.hours") * HOUR_MS if roll is None else roll
    _require(roll >= 1, "log.roll.ms must be greater than or equal to 1", "log.roll.ms")
    jitter = _opt_int(config, "log.roll.jitter.ms")
    jitter = _int(config, "log.roll.jitter.hours") * HOUR_MS if jitter is None else jitter
    _require(jitter >= 0, "log.roll.jitter.ms must be greater than or equal to 0", "log.roll.jitter.ms")
    flush = _opt_int(config, "log.flush.interval.ms")
    flush = _int(config, "log.flush.scheduler.interval.ms") if flush is None else flush
    return retention, roll, jitter, flush


def _check_limits(config: BrokerConfig) -> None:
    threads = _int(config, "log.cleaner.threads")
    if threads > 0:
        _require(
            _int(config, "log.cleaner.dedupe.buffer.size") // threads > 1024 * 1024,
            "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.",
            "log.cleaner.dedupe.buffer.size",
        )
    wait = _int(config, "replica.fetch.wait.max.ms")
    _require(
        wait <= _int(config, "replica.socket.timeout.ms"),
        "replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms "
        "to prevent unnecessary socket timeouts",
        "replica.socket.timeout.ms",
    )
    _require(
        wait <= _int(config, "replica.lag.time.max.ms"),
        "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent "
        "frequent changes in ISR",
        "replica.fetch.wait.max.ms",
    )
    queued = _int(config, "queued.max.request.bytes")
    _require(
        queued <= 0 or queued >= _int(config, "socket.request.max.bytes"),
        "queued.max.request.bytes must be larger or equal to socket.request.max.bytes",
        "queued.max.request.bytes",
    )
    idle = _int(config, "connections.max.idle.ms")
    delay = _int(config, "connection.failed.authentication.delay.ms")
    _require(
        idle < 0 or delay < idle,
        f"connection.failed.authentication.delay.ms={delay} should always be less than "
        f"connections.max.idle.ms={idle} to prevent failed authentication responses from timing out",
        "connection.failed.authentication.delay.ms",
    )
    codec = _int(config, "offsets.topic.compression.codec")
    _require(
        codec in COMPRESSION_CODEC_IDS,
        f"Invalid value {codec} for configuration offsets.topic.compression.codec: "
        "Unknown compression type id",
        "offsets.topic.compression.codec",
    )


def _connection_overrides(config: BrokerConfig) -> dict[str, int]:
    text = _opt_str(config, "max.connections.per.ip.overrides") or ""
    overrides: dict[str, int] = {}
    for pair in (p for p in text.replace(" ", "").split(",") if p):
        host, sep, limit = pair.rpartition(":")
        if not sep or not host or not limit.lstrip("-").isdigit():
            raise ConfigError(
                "Error parsing configuration property 'max.connections.per.ip.overrides': "
                f"bad entry {pair!r} (expected host:limit)",
                name="max.connections.per.ip.overrides",
            )
        overrides[host] = int(limit)
    return overrides
