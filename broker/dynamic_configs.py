"""Dynamic broker configs: Kafka's DynamicBrokerConfig and ZkAdminManager.alterBrokerConfigs.

Two layers above the static configs, each a map of texts: this broker's own (AlterConfigs on the
BROKER resource named by its id) and the cluster-wide default (the BROKER resource named "").
:meth:`DynamicConfigs.prepare` checks a new layer as Kafka does and answers the errors Kafka
answers; :meth:`DynamicConfigs.apply` makes a checked layer the broker's configuration and pushes
it to what reads it while running (:meth:`Broker.reconfigure`).

Where the layers live:

* embedded node: in the metadata document (``brook-metadata.json``, key ``broker_configs``: the
  node's id and ``<default>``), the store that plays the part of KRaft's metadata log here; it is
  written atomically before the answer, and read at start before the logs are loaded;
* ZooKeeper mode: ``/config/brokers/<id>`` and ``/config/brokers/<default>`` with a
  ``/config/changes`` notification, as AdminZkClient.changeBrokerConfig; every broker (this one
  included) applies them from the notification (:mod:`broker.cluster.config_changes`).

Password configs (``ssl.*.password``, ``sasl.jaas.config``...) are refused without
``password.encoder.secret`` with Kafka's error. With a secret Kafka stores them encrypted; Brook does
not implement that encoding yet and refuses them too, so no plaintext is ever stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from broker.cluster.topics import TopicError
from broker.config import BROKER_CONFIGS, BrokerConfig, ConfigError, ConfigSource, ConfigType
from broker.config.dynamic import ALL_DYNAMIC, LOG_RECONFIGURABLE, SSL_RECONFIGURABLE, listener_base_name
from protocol.error_codes import ErrorCode

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

#: ZooKeeper's (and the metadata document's) name of the cluster-wide default entity.
DEFAULT_ENTITY = "<default>"
#: The config entity type of brokers (``/config/brokers``, notifications ``brokers/<entity>``).
BROKER_ENTITY_TYPE = "brokers"

#: Kafka's DynamicPasswordConfigs: the dynamic configs of type PASSWORD (matched by suffix, so that
#: listener-prefixed ones count too).
PASSWORD_CONFIGS = (
    *sorted(n for n in ALL_DYNAMIC if n in BROKER_CONFIGS and BROKER_CONFIGS[n].type is ConfigType.PASSWORD),
    "sasl.jaas.config",
)


#: The dynamic configs Brook acts on when they change: the topic defaults (the broker synonyms of
#: topic configs, applied to every log without an override), the connection limits, the disk
#: workers, the replication throttles (``Broker.reconfigure``), and what is read at each use.
ACTED_ON = LOG_RECONFIGURABLE | {
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "background.threads",
    "producer.id.expiration.ms",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
}


def is_password_config(name: str) -> bool:
    return any(name.endswith(p) for p in PASSWORD_CONFIGS)


def resource_label(resource_name: str) -> str:
    """How Kafka prints the resource in its messages (ConfigResource.toString)."""
    return f"ConfigResource(type=BROKER, name='{resource_name}')"


class DynamicConfigs:
    """The dynamic layers of one broker, their checks and their application."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    @property
    def config(self) -> BrokerConfig:
        return self.broker.config

    def entity_of(self, resource_name: str) -> str:
        """The stored entity a BROKER resource names (Kafka's getBrokerId); TopicError
        INVALID_REQUEST for a name that is not this broker's id or empty."""
        if not resource_name:
            return DEFAULT_ENTITY
        try:
            broker_id = int(resource_name)
        except ValueError:
            raise TopicError(
                ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {resource_name}"
            ) from None
        if broker_id != self.broker.node_id:
            raise TopicError(
                ErrorCode.INVALID_REQUEST,
                f"Unexpected broker id, expected {self.broker.node_id}, but received {resource_name}",
            )
        return str(broker_id)

    def layer(self, entity: str) -> dict[str, str]:
        """The texts set dynamically for ``entity`` (this broker's id or :data:`DEFAULT_ENTITY`)."""
        source = (
            ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
            if entity == DEFAULT_ENTITY
            else ConfigSource.DYNAMIC_BROKER_CONFIG
        )
        return dict(self.config.layer(source))

    def prepare(self, resource_name: str, configs: Mapping[str, str | None]) -> tuple[str, dict[str, str]]:
        """Check ``configs`` as the whole new layer of the resource (null values dropped, as
        Kafka's AlterConfigs does); (entity, layer to store). TopicError with Kafka's code and
        message: INVALID_REQUEST for the resource name, INVALID_CONFIG for the configs."""
        entity = self.entity_of(resource_name)
        layer = {name: value for name, value in configs.items() if value is not None}
        per_broker = entity != DEFAULT_ENTITY
        try:
            new = self.checked(entity, layer)
            if per_broker and self.broker.ssl_stores is not None:
                self.broker.ssl_stores.check(new)
            for name in layer:
                if is_password_config(name):
                    if not per_broker:
                        raise ConfigError("Password config can be defined only at broker level")
                    if self.config.get("password.encoder.secret") is None:
                        raise ConfigError("Password encoder secret not configured")
                    raise ConfigError(
                        f"Brook cannot store the password config {name} dynamically yet "
                        "(set it in server.properties)"
                    )
        except ConfigError as exc:
            label = resource_label(resource_name)
            raise TopicError(
                ErrorCode.INVALID_CONFIG, f"Invalid config value for resource {label}: {exc}"
            ) from None
        return entity, layer

    def reload_ssl_stores(self, layer: Mapping[str, str]) -> None:
        """Reload the SSL listeners whose store files changed on disk when ``layer`` (this
        broker's, just altered) names a store setting: Kafka reloads a key store altered to the
        same path. Changed paths reload through :meth:`apply` on every broker."""
        stores = self.broker.ssl_stores
        if stores is not None and any(
            (listener_base_name(name) or name) in SSL_RECONFIGURABLE for name in layer
        ):
            stores.reload(self.config)

    def checked(self, entity: str, layer: Mapping[str, str]) -> BrokerConfig:
        """The broker's configuration with ``layer`` in place of ``entity``'s (ConfigError if
        Kafka would refuse it, including the topic defaults the logs would get, as Kafka's
        DynamicLogConfig.validateReconfiguration)."""
        if entity == DEFAULT_ENTITY:
            new = self.config.with_dynamic(cluster_default=layer)
        else:
            new = self.config.with_dynamic(per_broker=layer)
        new.log_config()
        return new

    def apply(self, entity: str, layer: Mapping[str, str]) -> bool:
        """Make ``layer`` the current one of ``entity`` and reconfigure the broker; False (logged)
        when it no longer checks (e.g. stored by a broker of another version)."""
        if entity not in (DEFAULT_ENTITY, str(self.broker.node_id)):
            return False
        if dict(layer) == self.layer(entity):
            return True  # e.g. the start-up read of an unchanged znode
        try:
            new = self.checked(entity, layer)
        except ConfigError as exc:
            log.error("ignoring the dynamic broker config of %s: %s", entity, exc)
            return False
        log.info(
            "applying dynamic broker config of %s: %s",
            "the cluster default" if entity == DEFAULT_ENTITY else f"broker {entity}",
            {n: ("[hidden]" if is_password_config(n) else v) for n, v in layer.items()},
        )
        self.broker.reconfigure(new)
        ignored = sorted(n for n in layer if n not in ACTED_ON)
        if ignored:
            log.warning(
                "These dynamic broker configs are stored and described but have no effect in Brook: %s",
                ", ".join(ignored),
            )
        return True

    def load(self, stored: Mapping[str, Mapping[str, str]]) -> BrokerConfig:
        """The static configuration with the stored layers (start-up; invalid ones are logged
        and skipped, as Kafka skips dynamic configs that fail to load)."""
        config = self.config
        per_broker = dict(stored.get(str(self.broker.node_id), {}))
        default = dict(stored.get(DEFAULT_ENTITY, {}))
        for entity, layer in ((DEFAULT_ENTITY, default), (str(self.broker.node_id), per_broker)):
            if not layer:
                continue
            try:
                config = (
                    config.with_dynamic(cluster_default=layer)
                    if entity == DEFAULT_ENTITY
                    else config.with_dynamic(per_broker=layer)
                )
            except ConfigError as exc:
                log.error("ignoring the stored dynamic broker config of %s: %s", entity, exc)
        return config
