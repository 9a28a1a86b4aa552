"""DeleteTopics (key 20), versions 0-6.

Deletes topics by name (v0-v5) or by name or topic id (v6); their partition directories are
renamed at once and removed after ``file.delete.delay.ms``, as Kafka does.
UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID for missing topics, TOPIC_DELETION_DISABLED when
``delete.topic.enable=false``, INVALID_REQUEST when a v6 entry names both or neither. The
renames and the metadata write run in disk workers; the answer comes when they are done.

ZooKeeper mode (Kafka 3.9's ZkAdminManager): only the active controller serves it (NOT_CONTROLLER
per topic elsewhere); ``delete.topic.enable=false`` answers TOPIC_DELETION_DISABLED (INVALID_REQUEST
before v3) for every topic. Topics (ids resolved through the metadata cache) are marked in
``/admin/delete_topics``; the controller deletes them. The answer waits, as Kafka's
DelayedDeleteTopics, until they are gone from the metadata cache, up to ``timeout_ms``; those still
there get REQUEST_TIMED_OUT. A topic already marked is deleted again without error, as Kafka.

Authorization (an authorizer configured): DELETE on each topic (TOPIC_AUTHORIZATION_FAILED; a topic
named by id keeps its name to itself).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from broker.cluster.metadata import ZERO_UUID
from broker.cluster.topics import TopicError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker
from protocol.error_codes import ErrorCode
from protocol.messages.delete_topics_request import DeleteTopicsRequest
from protocol.messages.delete_topics_response import DeletableTopicResult, DeleteTopicsResponse

if TYPE_CHECKING:
    # ZooKeeper mode only: kazoo and the ZooKeeper client load with it, never on the embedded node.
    from broker.cluster.zk_admin import ZkAdmin

API_KEY = 20


def _wanted(request: DeleteTopicsRequest, version: int) -> list[tuple[str | None, uuid.UUID]]:
    if version >= 6:
        return [(t.name, t.topic_id) for t in request.topics]
    return [(name, ZERO_UUID) for name in request.topic_names]


async def handle(ctx: RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    broker = ctx.broker
    version = ctx.version
    admin = broker.zk_admin
    if admin is not None:
        return await _handle_in_zookeeper(ctx, request, admin)
    wanted = _wanted(request, version)
    may_delete = checker(ctx, Op.DELETE)
    results: list[DeletableTopicResult] = []
    for name, topic_id in wanted:
        result = DeletableTopicResult(
            name=name, topic_id=topic_id if version >= 6 else ZERO_UUID, error_code=0
        )
        if version >= 6 and (name is None) == (topic_id == ZERO_UUID):
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = "Exactly one of topic name or topic id must be given"
            results.append(result)
            continue
        if name is None:
            info = broker.metadata.topic_by_id(topic_id)
            if info is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_ID
                result.error_message = "This server does not host this topic ID." if version >= 5 else None
                results.append(result)
                continue
            name = info.name
            result.name = name
        if not may_delete(name):
            _refuse(result, topic_id, version)
            results.append(result)
            continue
        try:
            info = await broker.topics.delete_async(name)
            if version >= 6:
                result.topic_id = info.topic_id
        except TopicError as exc:
            result.error_code = exc.code
            result.error_message = exc.message if version >= 5 else None
        results.append(result)
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


def _refuse(result: DeletableTopicResult, topic_id: uuid.UUID, version: int) -> None:
    """DELETE refused: TOPIC_AUTHORIZATION_FAILED; a topic asked for by id keeps its name
    to itself, as Kafka."""
    result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
    result.error_message = "Authorization failed." if version >= 5 else None
    if version >= 6 and topic_id != ZERO_UUID:
        result.name = None


async def _handle_in_zookeeper(
    ctx: RequestContext, request: DeleteTopicsRequest, admin: ZkAdmin
) -> DeleteTopicsResponse:
    from broker.cluster.zk_admin import topics_gone

    version = ctx.version
    results: list[DeletableTopicResult] = []
    marked: dict[str, DeletableTopicResult] = {}
    may_delete = checker(ctx, Op.DELETE)
    blanket: ErrorCode | None = None
    if not admin.is_active_controller:
        blanket = ErrorCode.NOT_CONTROLLER
    elif not ctx.broker.config.delete_topic_enable:
        blanket = ErrorCode.INVALID_REQUEST if version < 3 else ErrorCode.TOPIC_DELETION_DISABLED
    for name, topic_id in _wanted(request, version):
        result = DeletableTopicResult(
            name=name, topic_id=topic_id if version >= 6 else ZERO_UUID, error_code=0
        )
        results.append(result)
        if blanket is not None:
            result.error_code = blanket
            continue
        if version >= 6 and (name is None) == (topic_id == ZERO_UUID):
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = "Exactly one of topic name or topic id must be given"
            continue
        if name is None:
            name = admin.topic_name_of(topic_id)
            if name is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_ID
                result.error_message = "This server does not host this topic ID." if version >= 5 else None
                continue
            result.name = name
        if not may_delete(name):
            _refuse(result, topic_id, version)
            continue
        try:
            deleted_id = await admin.delete_topic(name)
        except TopicError as exc:
            result.error_code = exc.code
            result.error_message = exc.message if version >= 5 else None
            continue
        if version >= 6:
            result.topic_id = deleted_id
        marked[name] = result
    if marked and request.timeout_ms > 0 and not await admin.wait_for_deletion(marked, request.timeout_ms):
        # DelayedDeleteTopics.onExpiration: the topics still in the metadata cache time out.
        for name, result in marked.items():
            if not topics_gone([name])(admin.cache):
                result.error_code = ErrorCode.REQUEST_TIMED_OUT
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


HANDLER = Handler(API_KEY, 0, 6, handle)
