"""AlterConfigs / IncrementalAlterConfigs on a BROKER resource (Kafka's ZkAdminManager
alterBrokerConfigs): shared by both handlers, which differ only in how the new layer is made.

The resource name is this broker's id (its own layer) or "" (the cluster-wide default). The new
layer is checked (:meth:`DynamicConfigs.prepare`); ``validate_only`` stops there. Embedded node: the
layer goes into the metadata document (written before the answer by the handler) and applies at
once. ZooKeeper mode: ``/config/brokers/<id|<default>>`` and a ``/config/changes`` notification are
written, and every broker applies the change from the notification. A layer of this broker that
names an SSL store setting also reloads the stores whose files changed on disk (Kafka's reload of a
key store altered to the same path; :mod:`broker.security.store_reload`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from broker.cluster.topics import TopicError
from broker.dynamic_configs import BROKER_ENTITY_TYPE, DEFAULT_ENTITY
from broker.handlers.base import RequestContext
from protocol.error_codes import ErrorCode

#: Makes the new layer from the stored one.
LayerChange = Callable[[Mapping[str, str]], Mapping[str, str | None]]


async def alter_broker_configs(
    ctx: RequestContext, resource_name: str, change: LayerChange, validate_only: bool
) -> tuple[int, str | None]:
    """(error code, message) of one BROKER resource."""
    broker = ctx.broker
    dynamic = broker.dynamic_configs
    try:
        entity = dynamic.entity_of(resource_name)
        zk = broker.zk_cluster.zk if broker.zk_cluster is not None else None
        if zk is not None:
            current: Mapping[str, str] = await zk.get_entity_config(BROKER_ENTITY_TYPE, entity)
        else:
            current = broker.metadata.broker_configs.get(entity, {})
        entity, layer = dynamic.prepare(resource_name, change(current))
        if validate_only:
            return ErrorCode.NONE, None
        if zk is not None:
            await zk.change_entity_config(BROKER_ENTITY_TYPE, entity, layer)
        else:
            broker.metadata.set_broker_configs(entity, layer)
            dynamic.apply(entity, layer)
        if entity != DEFAULT_ENTITY:
            dynamic.reload_ssl_stores(layer)
    except TopicError as exc:
        return exc.code, exc.message
    return ErrorCode.NONE, None
