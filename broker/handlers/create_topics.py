"""CreateTopics (key 19), versions 0-7.

Creates each topic with its partitions and replication factor (-1: the broker defaults, v4+) or
an explicit replica assignment, and its configs, validated as Kafka does (INVALID_CONFIG,
INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR above the live broker count,
INVALID_REPLICA_ASSIGNMENT, TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION). ``validate_only``
(v1+) checks without creating. A name given twice in one request is INVALID_REQUEST for it.
v5+ answers the partition count, replication factor and every config of the new topic; v7+ its
topic id. The logs and the metadata are written in disk workers; the answer comes when the
topics exist (the event loop serves other requests meanwhile).

ZooKeeper mode (Kafka 3.9's ZkAdminManager): only the active controller serves it, every topic
gets NOT_CONTROLLER elsewhere. Each topic is validated against the live brokers (with their racks)
and written to ZooKeeper (config, then assignment with a new topic id); then the answer waits,
as Kafka's DelayedCreatePartitions, until the metadata cache shows a leader for every new
partition, up to ``timeout_ms``: the topics still leaderless then get REQUEST_TIMED_OUT.
``timeout_ms`` <= 0 or ``validate_only`` answers at once.

Authorization (an authorizer configured): CREATE on the cluster, or else on each topic
(TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from broker.cluster.topics import TopicError
from broker.config import describe_topic
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, authorize_cluster, checker
from protocol.error_codes import ErrorCode
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)
from protocol.primitives import ZERO_UUID

if TYPE_CHECKING:
    # ZooKeeper mode only: kazoo and the ZooKeeper client load with it, never on the embedded node.
    from broker.cluster.zk_admin import PlannedTopic, ZkAdmin

API_KEY = 19


async def handle(ctx: RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse:
    admin = ctx.broker.zk_admin
    if admin is not None:
        return await _handle_in_zookeeper(ctx, request, admin)
    broker = ctx.broker
    version = ctx.version
    may_create = _creation_check(ctx)
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
        if not may_create(topic.name):
            _fail(result, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.", version)
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


def _creation_check(ctx: RequestContext) -> Callable[[str], bool]:
    """CREATE on the cluster allows every topic; otherwise CREATE on each topic."""
    if authorize_cluster(ctx, Op.CREATE):
        return lambda _name: True
    return checker(ctx, Op.CREATE)


async def _handle_in_zookeeper(
    ctx: RequestContext, request: CreateTopicsRequest, admin: ZkAdmin
) -> CreateTopicsResponse:
    from broker.cluster.zk_admin import leaders_elected

    version = ctx.version
    if not admin.is_active_controller:
        return CreateTopicsResponse(
            throttle_time_ms=0,
            topics=[_not_controller(t.name, version) for t in _unique(request)],
        )
    may_create = _creation_check(ctx)
    counts = Counter(t.name for t in request.topics)
    results: list[CreatableTopicResult] = []
    created: dict[str, PlannedTopic] = {}
    for topic in _unique(request):
        result = CreatableTopicResult(name=topic.name, error_code=0, error_message=None)
        results.append(result)
        if counts[topic.name] > 1:
            _fail(result, ErrorCode.INVALID_REQUEST, _duplicate_message(ctx.client_id, topic.name), version)
            continue
        if not may_create(topic.name):
            _fail(result, ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.", version)
            continue
        assignments = {a.partition_index: a.broker_ids for a in topic.assignments}
        try:
            planned = await admin.create_topic(
                topic.name,
                topic.num_partitions,
                topic.replication_factor,
                assignments,
                {c.name: c.value for c in topic.configs},
                validate_only=request.validate_only,
            )
        except TopicError as exc:
            _fail(result, exc.code, exc.message, version)
            continue
        created[topic.name] = planned
        _describe_created(ctx, result, planned.configs, len(planned.assignment), planned.replication_factor)
        if version >= 7 and not request.validate_only:
            result.topic_id = planned.topic_id
    if created and not request.validate_only and request.timeout_ms > 0:
        partitions = [tp for planned in created.values() for tp in planned.partitions]
        if not await admin.wait_for_leaders(partitions, request.timeout_ms):
            # DelayedCreatePartitions.onExpiration: the topics still missing a leader time out.
            for result in results:
                planned_topic = created.get(result.name)
                if planned_topic is not None and not leaders_elected(planned_topic.partitions)(admin.cache):
                    _fail(result, ErrorCode.REQUEST_TIMED_OUT, None, version)
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _unique(request: CreateTopicsRequest) -> list[CreatableTopic]:
    """The request's topics, each name once (a duplicate is answered once, as an error)."""
    seen: set[str] = set()
    unique = []
    for topic in request.topics:
        if topic.name not in seen:
            seen.add(topic.name)
            unique.append(topic)
    return unique


def _not_controller(name: str, version: int) -> CreatableTopicResult:
    result = CreatableTopicResult(name=name, error_code=0, error_message=None)
    _fail(result, ErrorCode.NOT_CONTROLLER, None, version)
    return result


def _duplicate_message(client_id: str | None, name: str) -> str:
    return (
        f"Create topics request from client `{client_id}` contains multiple entries for the "
        f"following topics: {name}"
    )


def _describe_created(
    ctx: RequestContext,
    result: CreatableTopicResult,
    overrides: Mapping[str, str],
    partitions: int,
    replication_factor: int,
) -> None:
    """v5+: the new topic's partition count, replication factor and every config."""
    if ctx.version < 5:
        return
    result.num_partitions = partitions
    result.replication_factor = replication_factor
    result.configs = _config_entries(ctx, overrides)


def _config_entries(ctx: RequestContext, overrides: Mapping[str, str]) -> list[CreatableTopicConfigs]:
    return [
        CreatableTopicConfigs(
            name=e.name,
            value=e.value,
            read_only=e.read_only,
            config_source=e.source,
            is_sensitive=e.is_sensitive,
        )
        for e in describe_topic(ctx.broker.config, overrides)
    ]


def _fail(result: CreatableTopicResult, code: ErrorCode, message: str | None, version: int) -> None:
    result.error_code = code
    result.error_message = message if version >= 1 else None
    result.num_partitions = -1
    result.replication_factor = -1
    # As Kafka resets a failed creation's answer (a topic that timed out had them set).
    result.configs = []
    result.topic_id = ZERO_UUID


HANDLER = Handler(API_KEY, 0, 7, handle)
