"""Metadata (key 3), versions 0-12.

Brokers (this listener's advertised endpoints), cluster id (v2+), controller id (v1+) and topics
with real topic ids (v10+), partitions with leader, leader epoch (v7+), replicas, ISR and offline
replicas (v5+). A partition whose replica here is in a log dir that failed has no leader
(LEADER_NOT_AVAILABLE) and lists this broker in offline_replicas. A null topic list (v1+; an empty
list in v0) asks for every topic. Unknown topics are auto-created when ``auto.create.topics.enable``
and the request (v4+; always in v0-v3) allow it, except internal ones; an illegal name gets
INVALID_TOPIC_EXCEPTION. v10+ may name topics by id only: an unknown id gets UNKNOWN_TOPIC_ID.
Authorization (an authorizer configured): topics the principal may not DESCRIBE are left out of
an all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
CREATE on the cluster or on the topic (TOPIC_AUTHORIZATION_FAILED otherwise). Authorized
operations (v8+) are the bit fields of the topic's and the cluster's allowed operations when
asked (all supported ones without an authorizer), -2147483648 otherwise.
Auto-creation writes the new logs in disk workers; the answer then comes when the topics exist.
Below v12 a topic named by null or by a topic id makes the whole request INVALID_REQUEST, as Kafka
(the error response names such a topic "").

In cluster mode everything comes from the controller's metadata cache, as Kafka's ZkMetadataCache
answers: every live broker on the request's listener, the controller (-1 when unknown), and
partitions led elsewhere. A leader that is not alive gives LEADER_NOT_AVAILABLE (leader -1); one
alive without this listener, LISTENER_NOT_FOUND from v6 (LEADER_NOT_AVAILABLE before); v0 lists only
replicas alive on the listener and answers REPLICA_NOT_AVAILABLE when some are not.

Auto-creation in ZooKeeper mode (any broker, as Kafka's AutoTopicCreationManager): a topic unknown
to the metadata cache is written to ZooKeeper with the broker's default partitions and replication
factor, and answered LEADER_NOT_AVAILABLE (also when another creation got there first) until the
controller's UpdateMetadata brings it; a creation that fails answers its error (e.g.
INVALID_REPLICATION_FACTOR). Without ZooKeeper (``BROOK_CLUSTER_MODE=1`` alone) unknown topics get
UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from broker.cluster.metadata import INTERNAL_TOPICS, ZERO_UUID, TopicInfo, topic_name_error
from broker.cluster.topics import TopicError
from broker.handlers.base import Handler, RequestContext
from broker.replica.manager import ReplicaManager
from broker.security.acl import CLUSTER_NAME, ResourceType
from broker.security.authz import Op, authorize_cluster, authorized_operations, checker
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.exceptions import ApiError
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

if TYPE_CHECKING:
    # ZooKeeper mode only: kazoo and the ZooKeeper client load with it, never on the embedded node.
    from broker.cluster.metadata_cache import MetadataCache
    from broker.cluster.zk_admin import ZkAdmin

log = logging.getLogger(__name__)

API_KEY = 3
NO_LEADER_ID = -1
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# AclOperation codes: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
# DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12, CREATE_TOKENS 13, DESCRIBE_TOKENS 14.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12, 13, 14))


def cluster_topic_metadata(
    cache: MetadataCache, name: str, listener: str, version: int, include_ops: bool
) -> MetadataResponseTopic | None:
    """A topic as the metadata cache knows it, or None when it does not."""
    partitions = cache.partition_metadata(name, listener, version == 0, version >= 6)
    if partitions is None:
        return None
    return MetadataResponseTopic(
        error_code=ErrorCode.NONE,
        name=name,
        topic_id=cache.topic_id(name),
        is_internal=cache.is_internal(name),
        partitions=partitions,
        topic_authorized_operations=TOPIC_OPERATIONS if include_ops else AUTHORIZED_OPERATIONS_OMITTED,
    )


def topic_metadata(info: TopicInfo, include_ops: bool, replicas: ReplicaManager) -> MetadataResponseTopic:
    partitions = []
    any_offline = replicas.any_offline()
    for index, state in enumerate(info.partitions):
        leader, error, offline_replicas = state.leader, ErrorCode.NONE, []
        if any_offline and replicas.is_offline(TopicPartition(info.name, index)):
            # This broker's replica is in a failed log dir. As Kafka's metadata cache once the
            # controller took it offline: no leader (it was the only replica), LEADER_NOT_AVAILABLE.
            offline_replicas = [replicas.local_id]
            if state.leader == replicas.local_id:
                leader, error = NO_LEADER_ID, ErrorCode.LEADER_NOT_AVAILABLE
        partitions.append(
            MetadataResponsePartition(
                error_code=error,
                partition_index=index,
                leader_id=leader,
                leader_epoch=state.leader_epoch,
                replica_nodes=list(state.replicas),
                isr_nodes=list(state.isr),
                offline_replicas=offline_replicas,
            )
        )
    return MetadataResponseTopic(
        error_code=0,
        name=info.name,
        topic_id=info.topic_id,
        is_internal=info.is_internal,
        partitions=partitions,
        topic_authorized_operations=TOPIC_OPERATIONS if include_ops else AUTHORIZED_OPERATIONS_OMITTED,
    )


def handle(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse | Awaitable[MetadataResponse]:
    if request.topics and ctx.version < 12:
        _check_named_by_name(request, ctx.version)
    if ctx.broker.cluster_mode:
        admin = ctx.broker.zk_admin
        to_create = _auto_creatable_in_cache(ctx, request) if admin is not None else []
        to_create = _authorized_to_create(ctx, to_create)
        if admin is not None and to_create:
            return _create_in_zookeeper_then_answer(ctx, request, admin, to_create)
        return _answer(ctx, request, {})
    to_create = _authorized_to_create(ctx, _auto_creatable(ctx, request))
    if to_create:
        return _create_then_answer(ctx, request, to_create)
    return _answer(ctx, request, {})


def _authorized_to_create(ctx: RequestContext, names: list[str]) -> list[str]:
    """KafkaApis: auto-creation needs DESCRIBE on the topic and CREATE on the cluster or topic."""
    if not names or ctx.broker.authorizer is None:
        return names
    may_describe = checker(ctx, Op.DESCRIBE)
    if authorize_cluster(ctx, Op.CREATE):
        return [n for n in names if may_describe(n)]
    may_create = checker(ctx, Op.CREATE)
    return [n for n in names if may_describe(n) and may_create(n)]


def _authorize_topics(
    ctx: RequestContext,
    request: MetadataRequest,
    topics: list[MetadataResponseTopic],
    all_topics: bool,
    include_ops: bool,
) -> list[MetadataResponseTopic]:
    """Leave out (all topics) or refuse (named) what may not be described; a named topic that
    does not exist and could not be auto-created for want of CREATE is refused too."""
    may_describe = checker(ctx, Op.DESCRIBE)
    auto_create = bool(request.topics) and _auto_creation_allowed(ctx, request)
    may_create = None if not auto_create or authorize_cluster(ctx, Op.CREATE) else checker(ctx, Op.CREATE)
    kept: list[MetadataResponseTopic] = []
    for topic in topics:
        name = topic.name
        if name is None:  # an unknown topic id: nothing to authorize
            kept.append(topic)
            continue
        missing = topic.error_code in (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode.INVALID_TOPIC_EXCEPTION,
        )
        allowed = may_describe(name) and not (missing and may_create is not None and not may_create(name))
        if allowed:
            if include_ops and topic.error_code == ErrorCode.NONE:
                topic.topic_authorized_operations = authorized_operations(ctx, ResourceType.TOPIC, name)
            kept.append(topic)
        elif not all_topics:
            by_id = topic.topic_id != ZERO_UUID and _named_by_id(request, topic.topic_id)
            kept.append(
                MetadataResponseTopic(
                    error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                    name=None if by_id else name,
                    topic_id=topic.topic_id if by_id else ZERO_UUID,
                    is_internal=False,
                )
            )
    return kept


def _named_by_id(request: MetadataRequest, topic_id: uuid.UUID) -> bool:
    return any(r.name is None and r.topic_id == topic_id for r in request.topics or [])


def _auto_creation_allowed(ctx: RequestContext, request: MetadataRequest) -> bool:
    return ctx.broker.config.auto_create_topics_enable and (
        ctx.version < 4 or request.allow_auto_topic_creation
    )


def _auto_creatable(ctx: RequestContext, request: MetadataRequest) -> list[str]:
    """Requested topics that do not exist and are to be auto-created."""
    if request.topics is None or not request.topics or not _auto_creation_allowed(ctx, request):
        return []
    metadata = ctx.broker.metadata
    names: list[str] = []
    for requested in request.topics:
        name = requested.name
        if (
            name is not None
            and metadata.topic(name) is None
            and name not in INTERNAL_TOPICS
            and topic_name_error(name) is None
            and name not in names
        ):
            names.append(name)
    return names


def _auto_creatable_in_cache(ctx: RequestContext, request: MetadataRequest) -> list[str]:
    """Requested topics the metadata cache does not know, to be auto-created through ZooKeeper."""
    if request.topics is None or not request.topics or not _auto_creation_allowed(ctx, request):
        return []
    cache = ctx.broker.metadata_cache
    names: list[str] = []
    for requested in request.topics:
        name = requested.name
        if (
            name is not None
            and not cache.contains(name)
            and name not in INTERNAL_TOPICS
            and topic_name_error(name) is None
            and name not in names
        ):
            names.append(name)
    return names


async def _create_in_zookeeper_then_answer(
    ctx: RequestContext, request: MetadataRequest, admin: ZkAdmin, names: list[str]
) -> MetadataResponse:
    errors: dict[str, ErrorCode] = {}
    for name in names:
        try:
            await admin.create_topic(name)
        except TopicError as exc:
            if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                log.info("auto-creation of topic %s failed: %s", name, exc)
                errors[name] = exc.code
                continue
        else:
            log.info("auto-created topic %s in ZooKeeper for %s", name, ctx.peer)
        # Created (here or by another request): the controller has yet to elect its leaders.
        errors[name] = ErrorCode.LEADER_NOT_AVAILABLE
    return _answer(ctx, request, errors)


async def _create_then_answer(
    ctx: RequestContext, request: MetadataRequest, names: list[str]
) -> MetadataResponse:
    failures: dict[str, ErrorCode] = {}
    topics = ctx.broker.topics
    for name in names:
        if await topics.created(name) is not None:
            continue  # another request created it meanwhile
        try:
            await topics.create_async(name)
        except TopicError as exc:
            log.info("auto-creation of topic %s failed: %s", name, exc)
            failures[name] = exc.code
            continue
        log.info("auto-created topic %s for %s", name, ctx.peer)
    return _answer(ctx, request, failures)


def _answer(
    ctx: RequestContext, request: MetadataRequest, failures: dict[str, ErrorCode]
) -> MetadataResponse:
    broker = ctx.broker
    version = ctx.version
    metadata = broker.metadata
    include_topic_ops = version >= 8 and request.include_topic_authorized_operations
    all_topics = request.topics is None or (version == 0 and not request.topics)

    topics: list[MetadataResponseTopic] = []
    if broker.cluster_mode:
        topics = _cluster_topics(ctx, request, all_topics, include_topic_ops, failures)
    elif all_topics:
        replicas = broker.replica_manager
        topics = [topic_metadata(info, include_topic_ops, replicas) for info in metadata.topics.values()]
    else:
        for requested in request.topics or []:
            name = requested.name
            if name is None:
                info = metadata.topic_by_id(requested.topic_id)
                if info is None:
                    topics.append(
                        MetadataResponseTopic(
                            error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None, topic_id=requested.topic_id
                        )
                    )
                else:
                    topics.append(topic_metadata(info, include_topic_ops, broker.replica_manager))
                continue
            info = metadata.topic(name)
            if info is None:
                topics.append(_missing_topic(name, failures))
            else:
                topics.append(topic_metadata(info, include_topic_ops, broker.replica_manager))

    if broker.authorizer is not None:
        topics = _authorize_topics(ctx, request, topics, all_topics, include_topic_ops)
    brokers = [
        MetadataResponseBroker(node_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
        for b in broker.live_brokers(ctx.conn.listener)
    ]
    include_cluster_ops = 8 <= version <= 10 and request.include_cluster_authorized_operations
    cluster_ops = CLUSTER_OPERATIONS
    if include_cluster_ops and broker.authorizer is not None:
        # As Kafka: 0 without DESCRIBE on the cluster.
        allowed = authorize_cluster(ctx, Op.DESCRIBE)
        cluster_ops = authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME) if allowed else 0
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=brokers,
        cluster_id=broker.cluster_id,
        controller_id=broker.controller_id,
        topics=topics,
        cluster_authorized_operations=cluster_ops if include_cluster_ops else AUTHORIZED_OPERATIONS_OMITTED,
    )


def _cluster_topics(
    ctx: RequestContext,
    request: MetadataRequest,
    all_topics: bool,
    include_ops: bool,
    failures: dict[str, ErrorCode],
) -> list[MetadataResponseTopic]:
    cache = ctx.broker.metadata_cache
    listener = ctx.conn.listener
    version = ctx.version
    if all_topics:
        found = (cluster_topic_metadata(cache, n, listener, version, include_ops) for n in cache.topics())
        return [t for t in found if t is not None]
    topics: list[MetadataResponseTopic] = []
    for requested in request.topics or []:
        name = requested.name
        if name is None:
            name = cache.topic_name(requested.topic_id)
            if name is None:
                topics.append(
                    MetadataResponseTopic(
                        error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None, topic_id=requested.topic_id
                    )
                )
                continue
        topic = cluster_topic_metadata(cache, name, listener, version, include_ops)
        topics.append(topic if topic is not None else _missing_topic(name, failures))
    return topics


def _check_named_by_name(request: MetadataRequest, version: int) -> None:
    """v10 and v11 carry topic ids and nullable names, but accept neither (KafkaApis)."""
    for requested in request.topics or []:
        if requested.name is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Topic name can not be null for version {version}")
        if requested.topic_id != ZERO_UUID:
            raise ApiError(
                ErrorCode.INVALID_REQUEST, f"Topic IDs are not supported in requests for version {version}"
            )


def _missing_topic(name: str, failures: dict[str, ErrorCode]) -> MetadataResponseTopic:
    """A requested topic that does not exist (auto-creation, if allowed, has run or failed)."""
    if topic_name_error(name) is not None:
        return MetadataResponseTopic(
            error_code=ErrorCode.INVALID_TOPIC_EXCEPTION, name=name, topic_id=ZERO_UUID, is_internal=False
        )
    code = failures.get(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return MetadataResponseTopic(error_code=code, name=name, topic_id=ZERO_UUID)


HANDLER = Handler(API_KEY, 0, 12, handle)
