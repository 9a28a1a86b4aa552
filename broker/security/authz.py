"""The authorization checks handlers make, as KafkaApis' AuthHelper: every function answers
"allowed" at once when no authorizer is configured (Kafka's default), so the unsecured path
costs one attribute test.

The request's host is the client's IP address (as Kafka's ``clientAddress.getHostAddress``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from broker.security.acl import CLUSTER_NAME, SUPPORTED_OPERATIONS, AclOperation, ResourceType
from protocol.exceptions import ApiError

if TYPE_CHECKING:
    from broker.handlers.base import RequestContext

T = TypeVar("T")

Op = AclOperation
TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
CLUSTER = ResourceType.CLUSTER
TRANSACTIONAL_ID = ResourceType.TRANSACTIONAL_ID

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
#: Kafka's value of an authorized-operations field the client did not ask for.
OMITTED = -2147483648


def host_of(ctx: RequestContext) -> str:
    return ctx.conn.peer.rpartition(":")[0].strip("[]")


def authorize(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize(str(ctx.security.principal), host_of(ctx), operation, resource_type, name)


def authorize_cluster(ctx: RequestContext, operation: AclOperation) -> bool:
    return authorize(ctx, operation, CLUSTER, CLUSTER_NAME)


def require_cluster(ctx: RequestContext, operation: AclOperation) -> None:
    """AuthHelper.authorizeClusterOperation: the whole request fails with
    CLUSTER_AUTHORIZATION_FAILED (the api's error response)."""
    if not authorize_cluster(ctx, operation):
        raise ApiError(CLUSTER_AUTHORIZATION_FAILED, "Request not authorized on the cluster")


def checker(
    ctx: RequestContext, operation: AclOperation, resource_type: ResourceType = TOPIC
) -> Callable[[str], bool]:
    """A check by name for one request: a dict lookup in the authorizer's decisions for this
    principal, host and operation (a produce names a topic once per partition)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _always
    principal, host = str(ctx.security.principal), host_of(ctx)
    decisions = authorizer.decisions(principal, host, operation, resource_type)

    def check(name: str) -> bool:
        allowed = decisions.get(name)
        if allowed is None:
            allowed = authorizer.authorize(principal, host, operation, resource_type, name)
        return allowed

    return check


def filter_authorized(
    ctx: RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
    items: Iterable[T],
    name: Callable[[T], str],
) -> list[T]:
    check = checker(ctx, operation, resource_type)
    return [item for item in items if check(name(item))]


def authorize_by_resource_type(
    ctx: RequestContext, operation: AclOperation, resource_type: ResourceType
) -> bool:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize_by_resource_type(
        str(ctx.security.principal), host_of(ctx), operation, resource_type
    )


def authorized_operations(ctx: RequestContext, resource_type: ResourceType, name: str) -> int:
    """The bit field of the resource type's supported operations the principal may do (all of
    them without an authorizer, as Kafka)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        bits = 0
        for operation in SUPPORTED_OPERATIONS[resource_type]:
            bits |= 1 << operation
        return bits
    return authorizer.authorized_operations(str(ctx.security.principal), host_of(ctx), resource_type, name)


def _always(_name: str) -> bool:
    return True


def require(
    ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str, code: int
) -> None:
    """Refuse the whole request with ``code`` (its api's error response) unless allowed."""
    if not authorize(ctx, operation, resource_type, name):
        raise ApiError(code)


def require_group(ctx: RequestContext, operation: AclOperation, group_id: str) -> None:
    require(ctx, operation, GROUP, group_id, GROUP_AUTHORIZATION_FAILED)


#: ConfigResource types (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs).
_CONFIG_TOPIC = 2
_CONFIG_BROKER = 4
_CONFIG_BROKER_LOGGER = 8


def config_refusal(
    ctx: RequestContext, config_resource_type: int, name: str, operation: AclOperation
) -> int | None:
    """The error for a config resource the principal may not describe or alter (KafkaApis: a topic
    needs the operation on it, a broker or broker logger on the cluster); None when allowed."""
    if ctx.broker.authorizer is None:
        return None
    if config_resource_type == _CONFIG_TOPIC:
        return None if authorize(ctx, operation, TOPIC, name) else TOPIC_AUTHORIZATION_FAILED
    if config_resource_type in (_CONFIG_BROKER, _CONFIG_BROKER_LOGGER):
        return None if authorize_cluster(ctx, operation) else CLUSTER_AUTHORIZATION_FAILED
    return None
