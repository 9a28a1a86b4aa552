"""DescribeConfigs (key 32), versions 0-4.

TOPIC resources list every topic config with its value and where it comes from (topic override,
static broker setting, default), BROKER resources every broker config (resource name: this
broker's id; "" lists the cluster-wide dynamic defaults; dynamic values report
DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG), BROKER_LOGGER resources (this broker's id)
every logger with its effective level (source DYNAMIC_BROKER_LOGGER_CONFIG, as Kafka).
``configuration_keys`` narrows the list
(null or empty: all). v0 reports ``is_default``; v1+ the source and, when asked, the synonyms in
Kafka's order; v3+ the type and, when asked, the documentation. Sensitive values are null.

ZooKeeper mode (any broker, as Kafka): a topic's overrides are read from ``/config/topics/<t>``
(the topic must be in the metadata cache or in ZooKeeper).

Authorization (an authorizer configured): DESCRIBE_CONFIGS on a topic (TOPIC_AUTHORIZATION_FAILED)
or, for a broker or broker logger, on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Awaitable

from broker.cluster.topics import TopicError
from broker.config import (
    ConfigEntry,
    ConfigSource,
    ConfigType,
    describe_broker,
    describe_cluster_defaults,
    describe_topic,
)
from broker.handlers.base import Handler, RequestContext
from broker.handlers.configs_common import RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC
from broker.loggers import loggers
from broker.security.authz import Op, config_refusal
from protocol.error_codes import ErrorCode
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)

API_KEY = 32


def handle(
    ctx: RequestContext, request: DescribeConfigsRequest
) -> DescribeConfigsResponse | Awaitable[DescribeConfigsResponse]:
    if ctx.broker.zk_admin is not None and any(r.resource_type == RESOURCE_TOPIC for r in request.resources):
        return _handle_in_zookeeper(ctx, request)
    results = [
        _refused(resource, code)
        if (code := config_refusal(ctx, resource.resource_type, resource.resource_name, Op.DESCRIBE_CONFIGS))
        else _describe(ctx, resource, request, _local_overrides(ctx, resource))
        for resource in request.resources
    ]
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


async def _handle_in_zookeeper(
    ctx: RequestContext, request: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    admin = ctx.broker.zk_admin
    assert admin is not None
    results = []
    for resource in request.resources:
        code = config_refusal(ctx, resource.resource_type, resource.resource_name, Op.DESCRIBE_CONFIGS)
        if code is not None:
            results.append(_refused(resource, code))
            continue
        overrides: dict[str, str] | TopicError | None = None
        if resource.resource_type == RESOURCE_TOPIC:
            name = resource.resource_name
            try:
                if not await admin.topic_exists(name):
                    raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
                overrides = await admin.topic_config(name)
            except TopicError as exc:
                overrides = exc
        results.append(_describe(ctx, resource, request, overrides))
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


def _refused(resource: DescribeConfigsResource, code: int) -> DescribeConfigsResult:
    """DESCRIBE_CONFIGS refused: TOPIC_ / CLUSTER_AUTHORIZATION_FAILED, no configs."""
    return DescribeConfigsResult(
        error_code=code,
        error_message=None,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=[],
    )


def _local_overrides(
    ctx: RequestContext, resource: DescribeConfigsResource
) -> dict[str, str] | TopicError | None:
    """A topic's overrides in the local metadata (None for other resources)."""
    if resource.resource_type != RESOURCE_TOPIC:
        return None
    info = ctx.broker.metadata.topic(resource.resource_name)
    if info is None:
        return TopicError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {resource.resource_name} does not exist"
        )
    return info.configs


def _describe(
    ctx: RequestContext,
    resource: DescribeConfigsResource,
    request: DescribeConfigsRequest,
    topic_overrides: dict[str, str] | TopicError | None,
) -> DescribeConfigsResult:
    """One resource; a topic's overrides (or why they cannot be had) come from the caller."""
    broker = ctx.broker
    result = DescribeConfigsResult(
        error_code=0,
        error_message=None,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=[],
    )
    if resource.resource_type == RESOURCE_TOPIC:
        if isinstance(topic_overrides, TopicError):
            result.error_code = topic_overrides.code
            result.error_message = topic_overrides.message
            return result
        entries = describe_topic(broker.config, topic_overrides or {})
    elif resource.resource_type == RESOURCE_BROKER:
        if resource.resource_name not in ("", str(broker.node_id)):
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = (
                f"Unexpected broker id, expected {broker.node_id} or empty string, "
                f"but received {resource.resource_name}"
            )
            return result
        entries = (
            describe_broker(broker.config)
            if resource.resource_name
            else describe_cluster_defaults(broker.config)
        )
    elif resource.resource_type == RESOURCE_BROKER_LOGGER:
        error = _logger_resource_error(broker.node_id, resource.resource_name)
        if error is not None:
            result.error_code, result.error_message = ErrorCode.INVALID_REQUEST, error
            return result
        entries = [_logger_entry(name, level) for name, level in sorted(loggers().items())]
    else:
        result.error_code = ErrorCode.INVALID_REQUEST
        result.error_message = f"Unsupported resource type {resource.resource_type}"
        return result
    # Null or empty: every config (Kafka treats both alike).
    keys = set(resource.configuration_keys) if resource.configuration_keys else None
    result.configs = [_entry(e, ctx.version, request) for e in entries if keys is None or e.name in keys]
    return result


def _logger_resource_error(node_id: int, name: str) -> str | None:
    """Kafka's ConfigHelper checks of a BROKER_LOGGER resource name."""
    if not name:
        return "Broker id must not be empty"
    try:
        requested = int(name)
    except ValueError:
        return f"Broker id must be an integer, but it is: {name}"
    if requested != node_id:
        return f"Unexpected broker id, expected {node_id} but received {name}"
    return None


def _logger_entry(name: str, level: str) -> ConfigEntry:
    return ConfigEntry(
        name=name,
        value=level,
        read_only=False,
        is_default=False,
        source=ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG,
        is_sensitive=False,
        synonyms=(),
        config_type=ConfigType.UNKNOWN,
        documentation=None,
    )


def _entry(e: ConfigEntry, version: int, request: DescribeConfigsRequest) -> DescribeConfigsResourceResult:
    out = DescribeConfigsResourceResult(
        name=e.name, value=e.value, read_only=e.read_only, is_sensitive=e.is_sensitive, documentation=None
    )
    if version == 0:
        out.is_default = e.is_default
    else:
        out.config_source = e.source
        if request.include_synonyms:
            out.synonyms = [
                DescribeConfigsSynonym(name=s.name, value=s.value, source=s.source) for s in e.synonyms
            ]
    if version >= 3:
        out.config_type = e.config_type
        if request.include_documentation:
            out.documentation = e.documentation
    return out


HANDLER = Handler(API_KEY, 0, 4, handle)
