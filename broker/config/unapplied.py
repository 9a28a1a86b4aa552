"""Kafka settings that Brook accepts but does not act on, and the one start-up warning naming them.

Brook accepts every Kafka 3.9 broker key, so that a ``server.properties`` written for Kafka loads
and DescribeConfigs lists what Kafka lists. Many keys have no effect in Brook's design (one event
loop instead of network and I/O thread pools, no
quotas, metrics or tiered storage). :data:`APPLIED` lists the keys Brook does act on; any other
broker key set to a value other than its default is named in a warning at start-up, so an operator
is never misled into thinking a setting works.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .registry import BROKER_CONFIGS

if TYPE_CHECKING:
    from .model import BrokerConfig

log = logging.getLogger("broker.config")

#: The broker keys Brook acts on (a key refused when set, such as process.roles, counts: it is
#: never silently ignored). Everything else in BROKER_CONFIGS is accepted and has no effect.
APPLIED: frozenset[str] = frozenset(
    {
        # Brook's own
        "brook.metrics.listener",
        # identity, mode and listeners
        "broker.id",
        "node.id",
        "broker.id.generation.enable",
        "reserved.broker.max.id",
        "broker.rack",
        "replica.selector.class",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "process.roles",
        "controller.listener.names",
        "zookeeper.metadata.migration.enable",
        "remote.log.storage.system.enable",
        "group.coordinator.rebalance.protocols",
        # network
        "socket.request.max.bytes",
        "fetch.max.bytes",
        "connections.max.idle.ms",
        "max.connections",
        "max.connections.per.ip",
        "max.connections.per.ip.overrides",
        # authorization
        "authorizer.class.name",
        # client quotas (broker.quotas)
        "quota.window.num",
        "quota.window.size.seconds",
        # topics
        "num.partitions",
        "default.replication.factor",
        "auto.create.topics.enable",
        "delete.topic.enable",
        "compression.type",
        "min.insync.replicas",
        "replica.lag.time.max.ms",
        "message.max.bytes",
        # logs (topic defaults through their topic-level synonyms) and their background work
        "log.dir",
        "log.dirs",
        "log.segment.bytes",
        "log.roll.ms",
        "log.roll.hours",
        "log.roll.jitter.ms",
        "log.roll.jitter.hours",
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
        "log.retention.bytes",
        "log.retention.check.interval.ms",
        "log.cleanup.policy",
        "log.index.size.max.bytes",
        "log.index.interval.bytes",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
        "log.flush.scheduler.interval.ms",
        "log.flush.offset.checkpoint.interval.ms",
        "log.segment.delete.delay.ms",
        "log.message.timestamp.type",
        "log.message.timestamp.difference.max.ms",
        "log.message.timestamp.before.max.ms",
        "log.message.timestamp.after.max.ms",
        "log.cleaner.enable",
        "log.cleaner.backoff.ms",
        "log.cleaner.min.cleanable.ratio",
        "log.cleaner.delete.retention.ms",
        "log.cleaner.min.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        # group coordinator
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "group.initial.rebalance.delay.ms",
        "group.max.size",
        "offset.metadata.max.bytes",
        "offsets.load.buffer.size",
        "offsets.topic.replication.factor",
        "offsets.topic.num.partitions",
        "offsets.topic.segment.bytes",
        "offsets.topic.compression.codec",
        "offsets.retention.minutes",
        "offsets.retention.check.interval.ms",
        "offsets.commit.timeout.ms",
        # transaction coordinator (broker.txn)
        "transaction.state.log.num.partitions",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "transaction.state.log.segment.bytes",
        "transaction.state.log.load.buffer.size",
        "transaction.max.timeout.ms",
        "transactional.id.expiration.ms",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        # KIP-890 verification of transactional appends (broker.replica.txn_verification)
        "transaction.partition.verification.enable",
        # replica fetchers (cluster mode)
        "num.replica.fetchers",
        "replica.fetch.max.bytes",
        "replica.fetch.response.max.bytes",
        "replica.fetch.wait.max.ms",
        "replica.fetch.min.bytes",
        "replica.fetch.backoff.ms",
        "replica.socket.timeout.ms",
        # ZooKeeper mode (broker.cluster.zk_mode, broker.cluster.controller_driver)
        "zookeeper.connect",
        "zookeeper.session.timeout.ms",
        "zookeeper.connection.timeout.ms",
        "zookeeper.set.acl",
        "inter.broker.listener.name",
        "security.inter.broker.protocol",
        "inter.broker.protocol.version",
        "controlled.shutdown.enable",
        "controlled.shutdown.max.retries",
        "controlled.shutdown.retry.backoff.ms",
        "auto.leader.rebalance.enable",
        "leader.imbalance.check.interval.seconds",
        "leader.imbalance.per.broker.percentage",
        "unclean.leader.election.enable",
        "request.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "socket.connection.setup.timeout.max.ms",
        # TLS listeners and the inter-broker TLS client (broker.security)
        "ssl.client.auth",
        "ssl.principal.mapping.rules",
        "ssl.enabled.protocols",
        "ssl.cipher.suites",
        "ssl.endpoint.identification.algorithm",
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.key.password",
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.certificates",
        # SASL listeners and the inter-broker SASL client (broker.security)
        "sasl.enabled.mechanisms",
        "sasl.jaas.config",
        "sasl.mechanism.inter.broker.protocol",
        "sasl.server.max.receive.size",
        "connection.failed.authentication.delay.ms",
        "connections.max.reauth.ms",
    }
)


def unapplied_settings(config: BrokerConfig) -> list[str]:
    """Broker keys set to a non-default value that Brook does not act on, in Kafka's order."""
    found = []
    for name, definition in BROKER_CONFIGS.items():
        if name in APPLIED or not config.is_set(name):
            continue
        if config.get(name) != definition.default:
            found.append(name)
    return found


def warn_unapplied(config: BrokerConfig) -> list[str]:
    """Log one warning naming every setting that has no effect in Brook; returns them."""
    names = unapplied_settings(config)
    if names:
        log.warning(
            "These settings are accepted but have no effect in Brook (not implemented, or not "
            "applicable to Brook): %s",
            ", ".join(names),
        )
    return names
