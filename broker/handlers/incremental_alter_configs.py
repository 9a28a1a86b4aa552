"""IncrementalAlterConfigs (key 44), versions 0-1.

Changes named topic configs and keeps the others: SET a value, DELETE an override (back to the
default), APPEND to or SUBTRACT from a list config (e.g. cleanup.policy); APPEND/SUBTRACT on a
non-list config, or a config named twice, is INVALID_CONFIG / INVALID_REQUEST as in Kafka.
``validate_only`` checks only.

BROKER resources (this broker's id, or "" for the cluster-wide default): the operations apply to
the stored dynamic layer (APPEND/SUBTRACT on LIST broker configs, from the default when unset),
then as AlterConfigs (:mod:`broker.handlers.broker_configs`). BROKER_LOGGER resources change logger
levels at run time (:mod:`broker.loggers`, Kafka's ``kafka-configs --entity-type broker-loggers``).

ZooKeeper mode (any broker, as Kafka's ZkAdminManager): the operations apply to the overrides
read from ``/config/topics/<t>``, and the result is written back with a change notification,
which every broker applies to its logs.

Authorization (an authorizer configured): ALTER_CONFIGS on a topic (TOPIC_AUTHORIZATION_FAILED) or,
for a broker or broker logger, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial

from broker.cluster.topics import TopicError
from broker.config import ConfigError, ConfigType, broker_definition, is_list_config, topic_default_text
from broker.config.values import format_value
from broker.handlers.base import Handler, RequestContext
from broker.handlers.broker_configs import alter_broker_configs
from broker.handlers.configs_common import (
    OP_APPEND,
    OP_DELETE,
    OP_SET,
    OP_SUBTRACT,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    alter_resource,
    alter_resource_async,
)
from broker.loggers import alter_logger_levels
from broker.security.authz import Op, config_refusal
from protocol.error_codes import ErrorCode
from protocol.messages.incremental_alter_configs_request import (
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from protocol.messages.incremental_alter_configs_response import (
    AlterConfigsResourceResponse,
    IncrementalAlterConfigsResponse,
)

API_KEY = 44


async def handle(
    ctx: RequestContext, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    responses: list[AlterConfigsResourceResponse] = []
    for resource in request.resources:
        out = AlterConfigsResourceResponse(
            error_code=0,
            error_message=None,
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
        )
        refused = config_refusal(ctx, resource.resource_type, resource.resource_name, Op.ALTER_CONFIGS)
        if refused is not None:
            out.error_code, out.error_message = refused, None
            responses.append(out)
            continue
        if resource.resource_type == RESOURCE_BROKER:
            out.error_code, out.error_message = await alter_broker_configs(
                ctx,
                resource.resource_name,
                partial(_apply_operations, resource=resource, is_list=_broker_list, default=_broker_default),
                request.validate_only,
            )
            responses.append(out)
            continue
        if resource.resource_type == RESOURCE_BROKER_LOGGER:
            out.error_code, out.error_message = alter_logger_levels(
                ctx.broker.node_id, resource.resource_name, resource.configs, request.validate_only
            )
            responses.append(out)
            continue
        if ctx.broker.zk_admin is not None:
            zk_change = partial(_alter_topic_in_zookeeper, ctx, resource, request.validate_only)
            out.error_code, out.error_message = await alter_resource_async(resource.resource_type, zk_change)
            responses.append(out)
            continue
        change = partial(_alter_topic, ctx, resource, request.validate_only)
        out.error_code, out.error_message = alter_resource(resource.resource_type, change)
        responses.append(out)
    # The changed metadata is written (in a disk worker) before the answer.
    await ctx.broker.persist_metadata()
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=responses)


def _alter_topic(ctx: RequestContext, resource: AlterConfigsResource, validate_only: bool) -> None:
    broker = ctx.broker
    info = broker.metadata.topic(resource.resource_name)
    if info is None:
        raise TopicError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {resource.resource_name} does not exist"
        )
    configs = _apply_operations(info.configs, resource)
    broker.topics.set_configs(info.name, configs, validate_only=validate_only)


async def _alter_topic_in_zookeeper(
    ctx: RequestContext, resource: AlterConfigsResource, validate_only: bool
) -> None:
    admin = ctx.broker.zk_admin
    assert admin is not None
    name = resource.resource_name
    if not await admin.topic_exists(name):
        raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
    configs = _apply_operations(await admin.topic_config(name), resource)
    await admin.set_topic_config(name, configs, validate_only=validate_only)


def _topic_default(name: str) -> str | None:
    return topic_default_text(None, name)


def _broker_list(name: str) -> bool:
    definition = broker_definition(name)
    if definition is None:
        raise ConfigError(f"Unknown config name: {name}", name=name)
    return definition.type is ConfigType.LIST


def _broker_default(name: str) -> str | None:
    definition = broker_definition(name)
    return None if definition is None else format_value(definition.type, definition.default)


def _apply_operations(
    current: Mapping[str, str],
    resource: AlterConfigsResource,
    is_list: Callable[[str], bool] = is_list_config,
    default: Callable[[str], str | None] = _topic_default,
) -> dict[str, str | None]:
    """The configs after the resource's operations (Kafka's prepareIncrementalConfigs): topic
    overrides by default, or a dynamic broker layer with ``is_list`` / ``default`` of broker keys."""
    duplicates = [name for name, n in Counter(c.name for c in resource.configs).items() if n > 1]
    if duplicates:
        raise TopicError(
            ErrorCode.INVALID_REQUEST, f"Error due to duplicate config keys: {', '.join(duplicates)}"
        )
    configs: dict[str, str | None] = dict(current)
    for change in resource.configs:
        name, op = change.name, change.config_operation
        if op == OP_SET:
            configs[name] = change.value
        elif op == OP_DELETE:
            configs.pop(name, None)
        elif op in (OP_APPEND, OP_SUBTRACT):
            try:
                listed = is_list(name)
            except ConfigError as exc:
                raise TopicError(ErrorCode.INVALID_CONFIG, str(exc)) from None
            if not listed:
                verb = "append" if op == OP_APPEND else "subtract"
                raise TopicError(
                    ErrorCode.INVALID_CONFIG, f"Config value {verb} is not allowed for config key: {name}"
                )
            current_text = configs.get(name)
            if current_text is None:
                current_text = default(name) or ""
            values = [v.strip() for v in current_text.split(",") if v.strip()]
            given = [v.strip() for v in (change.value or "").split(",") if v.strip()]
            if op == OP_APPEND:
                values += [v for v in given if v not in values]
            else:
                values = [v for v in values if v not in given]
            configs[name] = ",".join(values)
        else:
            raise TopicError(ErrorCode.INVALID_REQUEST, f"Unknown config operation {op}")
    return configs


HANDLER = Handler(API_KEY, 0, 1, handle)
