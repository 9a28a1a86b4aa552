"""OffsetDelete (key 47), version 0.

Deletes committed offsets of a group: any of an Empty group's, and those of topics a consumer
group with members does not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for the others; a group
with members whose subscriptions are unknown is NON_EMPTY_GROUP). Unknown topics or partitions
are UNKNOWN_TOPIC_OR_PARTITION; group-level errors (GROUP_ID_NOT_FOUND, NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID) leave the topic list empty. Asynchronous: the
answer waits for the tombstones to be written.

Authorization (an authorizer configured): DELETE on the group (GROUP_AUTHORIZATION_FAILED) and READ
on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker, require_group
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.offset_delete_request import OffsetDeleteRequest
from protocol.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)

API_KEY = 47


async def handle(ctx: RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    require_group(ctx, Op.DELETE, request.group_id)
    may_read = checker(ctx, Op.READ)
    broker = ctx.broker
    errors: dict[tuple[str, int], ErrorCode] = {}
    wanted: list[tuple[str, int]] = []
    for topic in request.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if not may_read(topic.name):
                errors[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif not broker.partition_exists(TopicPartition(*tp)):
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                wanted.append(tp)
    error, results = await ctx.broker.group_coordinator.offsets.delete(request.group_id, wanted)
    if error != ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=error, throttle_time_ms=0, topics=[])
    errors.update(results)
    return OffsetDeleteResponse(
        error_code=ErrorCode.NONE,
        throttle_time_ms=0,
        topics=[
            OffsetDeleteResponseTopic(
                topic.name,
                [
                    OffsetDeleteResponsePartition(p.partition_index, errors[(topic.name, p.partition_index)])
                    for p in topic.partitions
                    if (topic.name, p.partition_index) in errors
                ],
            )
            for topic in request.topics
        ],
    )


HANDLER = Handler(API_KEY, 0, 0, handle)
