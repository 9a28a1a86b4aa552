"""CreatePartitions (key 37), versions 0-3.

Raises a topic's partition count to ``count`` (INVALID_PARTITIONS if not larger), with an
explicit assignment for the new partitions or Kafka's default placement; ``validate_only``
checks without changing anything. A topic named twice is INVALID_REQUEST. The new logs are
created in disk workers; the answer comes when they exist.

ZooKeeper mode (Kafka 3.9's ZkAdminManager.createPartitions): only the active controller serves
it (NOT_CONTROLLER per topic elsewhere); a topic queued for deletion is INVALID_TOPIC_EXCEPTION and
one being reassigned REASSIGNMENT_IN_PROGRESS. The new partitions continue the placement from
partition 0's first replica over the live brokers (or follow the explicit assignment, checked
against them), written with a conditional update of ``/brokers/topics/<t>``. The answer waits,
as Kafka's DelayedCreatePartitions, for leaders of the new partitions up to ``timeout_ms``
(REQUEST_TIMED_OUT for the topics still without them).

Authorization (an authorizer configured): ALTER on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker.cluster.topics import TopicError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.create_partitions_request import CreatePartitionsRequest
from protocol.messages.create_partitions_response import CreatePartitionsResponse, CreatePartitionsTopicResult

if TYPE_CHECKING:
    # ZooKeeper mode only: kazoo and the ZooKeeper client load with it, never on the embedded node.
    from broker.cluster.zk_admin import ZkAdmin

API_KEY = 37


async def handle(ctx: RequestContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse:
    admin = ctx.broker.zk_admin
    if admin is not None:
        return await _handle_in_zookeeper(request, admin, checker(ctx, Op.ALTER))
    may_alter = checker(ctx, Op.ALTER)
    counts = Counter(t.name for t in request.topics)
    results: list[CreatePartitionsTopicResult] = []
    for topic in request.topics:
        result = CreatePartitionsTopicResult(name=topic.name, error_code=0, error_message=None)
        if counts[topic.name] > 1:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = "Duplicate topic in request."
            results.append(result)
            continue
        if not may_alter(topic.name):
            result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            result.error_message = "Authorization failed."
            results.append(result)
            continue
        assignments = None if topic.assignments is None else [a.broker_ids for a in topic.assignments]
        try:
            await ctx.broker.topics.add_partitions_async(
                topic.name, topic.count, assignments or None, validate_only=request.validate_only
            )
        except TopicError as exc:
            result.error_code = exc.code
            result.error_message = exc.message
        results.append(result)
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)


async def _handle_in_zookeeper(
    request: CreatePartitionsRequest, admin: ZkAdmin, may_alter: Callable[[str], bool]
) -> CreatePartitionsResponse:
    from broker.cluster.zk_admin import leaders_elected

    results = [
        CreatePartitionsTopicResult(name=topic.name, error_code=0, error_message=None)
        for topic in request.topics
    ]
    if not admin.is_active_controller:
        for result in results:
            result.error_code = ErrorCode.NOT_CONTROLLER
        return CreatePartitionsResponse(throttle_time_ms=0, results=results)
    counts = Counter(t.name for t in request.topics)
    added: dict[str, tuple[CreatePartitionsTopicResult, list[TopicPartition]]] = {}
    for topic, result in zip(request.topics, results, strict=True):
        if counts[topic.name] > 1:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = "Duplicate topic in request."
            continue
        if not may_alter(topic.name):
            result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            result.error_message = "Authorization failed."
            continue
        assignments = None if topic.assignments is None else [a.broker_ids for a in topic.assignments]
        try:
            new = await admin.add_partitions(
                topic.name, topic.count, assignments or None, validate_only=request.validate_only
            )
        except TopicError as exc:
            result.error_code = exc.code
            result.error_message = exc.message
            continue
        added[topic.name] = (result, new)
    if added and not request.validate_only and request.timeout_ms > 0:
        every = [tp for _, new in added.values() for tp in new]
        if not await admin.wait_for_leaders(every, request.timeout_ms):
            for result, new in added.values():
                if not leaders_elected(new)(admin.cache):
                    result.error_code = ErrorCode.REQUEST_TIMED_OUT
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)


HANDLER = Handler(API_KEY, 0, 3, handle)
