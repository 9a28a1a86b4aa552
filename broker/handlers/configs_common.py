"""Shared by the config apis: resource types, operations, and applying a change to a resource."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broker.cluster.topics import TopicError
from protocol.error_codes import ErrorCode

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8

# IncrementalAlterConfigs operations.
OP_SET = 0
OP_DELETE = 1
OP_APPEND = 2
OP_SUBTRACT = 3


def alter_resource(resource_type: int, alter_topic: Callable[[], None]) -> tuple[int, str | None]:
    """(error code, message) of changing one resource of AlterConfigs / IncrementalAlterConfigs:
    a topic is changed by ``alter_topic``; BROKER resources are handled before (broker_configs)."""
    if resource_type == RESOURCE_TOPIC:
        try:
            alter_topic()
        except TopicError as exc:
            return exc.code, exc.message
        return ErrorCode.NONE, None
    return ErrorCode.INVALID_REQUEST, (
        "AlterConfigs is only supported for topics and brokers, "
        f"but resource type is {type_name(resource_type)}"
    )


def type_name(resource_type: int) -> str:
    """ConfigResource.Type's name of a resource type id."""
    names = {RESOURCE_TOPIC: "TOPIC", RESOURCE_BROKER: "BROKER", RESOURCE_BROKER_LOGGER: "BROKER_LOGGER"}
    return names.get(resource_type, "UNKNOWN")


async def alter_resource_async(
    resource_type: int, alter_topic: Callable[[], Awaitable[None]]
) -> tuple[int, str | None]:
    """:func:`alter_resource` for a topic change that awaits (ZooKeeper mode)."""
    if resource_type == RESOURCE_TOPIC:
        try:
            await alter_topic()
        except TopicError as exc:
            return exc.code, exc.message
        return ErrorCode.NONE, None
    return alter_resource(resource_type, _unreachable)


def _unreachable() -> None:
    raise AssertionError("only topics are altered")
