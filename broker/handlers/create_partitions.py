"""CreatePartitions (key 37), versions 0-3.

Raises a topic's partition count to ``count`` (INVALID_PARTITIONS if not larger), with an
explicit assignment for the new partitions or Kafka's default placement; ``validate_only``
checks without changing anything. A topic named twice is INVALID_REQUEST. The new logs are
created in disk workers; the answer comes when they exist.
"""

from __future__ import annotations

from collections import Counter

from broker.cluster.topics import TopicError
from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.create_partitions_request import CreatePartitionsRequest
from protocol.messages.create_partitions_response import CreatePartitionsResponse, CreatePartitionsTopicResult

API_KEY = 37


async def handle(ctx: RequestContext, request: CreatePartitionsRequest) -> CreatePartitionsResponse:
    counts = Counter(t.name for t in request.topics)
    results: list[CreatePartitionsTopicResult] = []
    for topic in request.topics:
        result = CreatePartitionsTopicResult(name=topic.name, error_code=0, error_message=None)
        if counts[topic.name] > 1:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = "Duplicate topic in request."
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


HANDLER = Handler(API_KEY, 0, 3, handle)
