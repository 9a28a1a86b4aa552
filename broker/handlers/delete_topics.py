"""DeleteTopics (key 20), versions 0-6.

Deletes topics by name (v0-v5) or by name or topic id (v6); their partition directories are
renamed at once and removed after ``file.delete.delay.ms``, as Kafka does.
UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID for missing topics, TOPIC_DELETION_DISABLED when
``delete.topic.enable=false``, INVALID_REQUEST when a v6 entry names both or neither. The
renames and the metadata write run in disk workers; the answer comes when they are done.
"""

from __future__ import annotations

from broker.cluster.metadata import ZERO_UUID
from broker.cluster.topics import TopicError
from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.delete_topics_request import DeleteTopicsRequest
from protocol.messages.delete_topics_response import DeletableTopicResult, DeleteTopicsResponse

API_KEY = 20


async def handle(ctx: RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    broker = ctx.broker
    version = ctx.version
    if version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, ZERO_UUID) for name in request.topic_names]
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
        try:
            info = await broker.topics.delete_async(name)
            if version >= 6:
                result.topic_id = info.topic_id
        except TopicError as exc:
            result.error_code = exc.code
            result.error_message = exc.message if version >= 5 else None
        results.append(result)
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


HANDLER = Handler(API_KEY, 0, 6, handle)
