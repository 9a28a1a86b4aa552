"""Which broker configs may change at run time, and at which level (Kafka's DynamicBrokerConfig).

DescribeConfigs reports ``read_only`` from this, AlterConfigs for brokers must refuse the rest, and
the broker-level synonym rules (``log.retention.ms`` / ``.minutes`` / ``.hours`` describe each other)
live here too because Kafka keeps them in the same place.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .schema import ConfigDef, UpdateMode

#: SSL settings reloadable per listener (``SslConfigs.RECONFIGURABLE_CONFIGS``).
SSL_RECONFIGURABLE = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
    "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.certificates",
})  # fmt: skip

#: ``DynamicListenerConfig.ReconfigurableConfigs``.
LISTENER_RECONFIGURABLE = frozenset({
    "advertised.listeners", "listeners", "listener.security.protocol.map",
    "principal.builder.class", "ssl.protocol", "ssl.provider", "ssl.cipher.suites", "ssl.enabled.protocols",
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password", "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm", "ssl.endpoint.identification.algorithm", "ssl.secure.random.implementation",
    "ssl.client.auth", "ssl.engine.factory.class",
    "sasl.mechanism.inter.broker.protocol", "sasl.jaas.config", "sasl.enabled.mechanisms",
    "sasl.kerberos.service.name", "sasl.kerberos.kinit.cmd", "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter", "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules", "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    "max.connections", "max.connection.creation.rate", "num.network.threads",
})  # fmt: skip

#: Listener settings that are nevertheless cluster-wide.
CLUSTER_LEVEL_LISTENER = frozenset({"max.connections", "max.connection.creation.rate", "num.network.threads"})

#: ``DynamicLogConfig.ReconfigurableConfigs``: the first broker synonym of every topic config except
#: message.format.version.
LOG_RECONFIGURABLE = frozenset({
    "log.segment.bytes", "log.roll.ms", "log.roll.jitter.ms", "log.index.size.max.bytes",
    "log.flush.interval.messages", "log.flush.interval.ms", "log.retention.bytes", "log.retention.ms",
    "message.max.bytes", "log.index.interval.bytes", "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "log.segment.delete.delay.ms",
    "log.cleaner.min.cleanable.ratio", "log.cleanup.policy", "unclean.leader.election.enable",
    "min.insync.replicas", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "log.preallocate", "log.message.timestamp.type",
    "log.message.timestamp.difference.max.ms", "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms", "log.message.downconversion.enable", "log.local.retention.ms",
    "log.local.retention.bytes",
})  # fmt: skip

OTHER_RECONFIGURABLE = frozenset({
    # LogCleaner
    "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
    # DynamicThreadPool
    "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir", "background.threads",
    # metrics, socket server, producer state, tiered storage
    "metric.reporters",
    "max.connections.per.ip", "max.connections.per.ip.overrides",
    "max.connections", "max.connection.creation.rate",
    "producer.id.expiration.ms", "transaction.partition.verification.enable",
    "remote.log.index.file.cache.total.size.bytes", "remote.fetch.max.wait.ms",
    "remote.log.manager.copy.max.bytes.per.second", "remote.log.manager.fetch.max.bytes.per.second",
})  # fmt: skip

ALL_DYNAMIC = SSL_RECONFIGURABLE | LISTENER_RECONFIGURABLE | LOG_RECONFIGURABLE | OTHER_RECONFIGURABLE
PER_BROKER = (SSL_RECONFIGURABLE | LISTENER_RECONFIGURABLE) - CLUSTER_LEVEL_LISTENER

#: Configs that may only be set through a ``listener.name.<l>.<mechanism>.`` prefix.
LISTENER_MECHANISM_CONFIGS = (
    "sasl.jaas.config",
    "sasl.login.callback.handler.class",
    "sasl.login.class",
    "sasl.server.callback.handler.class",
    "connections.max.reauth.ms",
)
LISTENER_PREFIX = re.compile(r"listener\.name\.[^.]*\.(.*)")

_MULTI_NAME = (
    ("log.roll.ms", "log.roll.hours"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
)


def update_mode(name: str) -> UpdateMode:
    if name in PER_BROKER:
        return UpdateMode.PER_BROKER
    if name in ALL_DYNAMIC:
        return UpdateMode.CLUSTER_WIDE
    return UpdateMode.READ_ONLY


def with_update_mode(definition: ConfigDef) -> ConfigDef:
    mode = update_mode(definition.name)
    # Most configs are read-only, as defined: a copy of each cost ~1 ms of every start.
    return definition if mode is definition.update_mode else replace(definition, update_mode=mode)


def listener_base_name(name: str) -> str | None:
    """``listener.name.internal.ssl.keystore.location`` -> ``ssl.keystore.location`` (mechanism
    configs such as ``listener.name.x.plain.sasl.jaas.config`` map to ``sasl.jaas.config``)."""
    match = LISTENER_PREFIX.fullmatch(name)
    if match is None:
        return None
    base = match.group(1)
    for mechanism_config in LISTENER_MECHANISM_CONFIGS:
        if base.endswith(mechanism_config):
            return mechanism_config
    return base


def broker_config_synonyms(name: str) -> list[str]:
    """Names describing the same broker setting, highest precedence first (Kafka's
    ``DynamicBrokerConfig.brokerConfigSynonyms`` with listener overrides matched)."""
    for group in _MULTI_NAME:
        if name in group:
            return list(group)
    if name == "log.flush.interval.ms":
        return ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
    base = listener_base_name(name)
    if base is not None:
        return [name, base]
    return [name]
