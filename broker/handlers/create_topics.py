"""CreateTopics (key 19), versions 0-7.

Creates each topic with its partitions and replication factor (-1: the broker defaults, v4+) or
an explicit replica assignment, and its configs, validated as Kafka does (INVALID_CONFIG,
INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR above the live broker count,
INVALID_REPLICA_ASSIGNMENT, TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION). ``validate_only``
(v1+) checks without creating. A name given twice in one request is INVALID_REQUEST for it.
v5+ answers the partition count, replication factor and every config of the new topic; v7+ its
topic id. The logs and the metadata are written in disk workers; the answer comes when the
topics exist (the event loop serves other requests meanwhile).
"""

from __future__ import annotations

from collections import Counter

from broker.cluster.topics import TopicError
from broker.config import describe_topic
from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.create_topics_request import CreateTopicsRequest
from protocol.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)

API_KEY = 19


async def handle(ctx: RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse:
    broker = ctx.broker
    version = ctx.version
    counts = Counter(t.name for t in request.topics)
    results: list[CreatableTopicResult] = []
    seen: set[str] = set()
    for topic in request.topics:
        if topic.name in seen:
            continue
        seen.add(topic.name)
        result = CreatableTopicResult(name=topic.name, error_code=0, error_message=None)
        if counts[topic.name] > 1:
            _fail(
                result,
                ErrorCode.INVALID_REQUEST,
                f"Create topics request from client `{ctx.client_id}` contains multiple entries for the "
                f"following topics: {topic.name}",
                version,
            )
            results.append(result)
            continue
        assignments = {a.partition_index: a.broker_ids for a in topic.assignments}
        configs = {c.name: c.value for c in topic.configs}
        try:
            info = await broker.topics.create_async(
                topic.name,
                topic.num_partitions,
                topic.replication_factor,
                assignments,
                configs,
                validate_only=request.validate_only,
            )
        except TopicError as exc:
            _fail(result, exc.code, exc.message, version)
            results.append(result)
            continue
        if version >= 5:
            overrides = (
                info.configs if info is not None else {k: v for k, v in configs.items() if v is not None}
            )
            if info is not None:
                result.num_partitions = len(info.partitions)
                result.replication_factor = len(info.partitions[0].replicas)
            else:
                result.num_partitions = (
                    len(assignments)
                    if assignments
                    else (
                        topic.num_partitions if topic.num_partitions != -1 else broker.config.num_partitions
                    )
                )
                result.replication_factor = (
                    len(next(iter(assignments.values())))
                    if assignments
                    else (
                        topic.replication_factor
                        if topic.replication_factor != -1
                        else broker.config.default_replication_factor
                    )
                )
            result.configs = [
                CreatableTopicConfigs(
                    name=e.name,
                    value=e.value,
                    read_only=e.read_only,
                    config_source=e.source,
                    is_sensitive=e.is_sensitive,
                )
                for e in describe_topic(broker.config, overrides)
            ]
        if version >= 7 and info is not None:
            result.topic_id = info.topic_id
        results.append(result)
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _fail(result: CreatableTopicResult, code: ErrorCode, message: str, version: int) -> None:
    result.error_code = code
    result.error_message = message if version >= 1 else None
    result.num_partitions = -1
    result.replication_factor = -1


HANDLER = Handler(API_KEY, 0, 7, handle)
