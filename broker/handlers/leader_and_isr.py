"""LeaderAndIsr (key 4), versions 0-7: the controller makes this broker a partition's leader or
follower. Served in cluster mode only (as by Kafka's ZooKeeper-mode brokers).

- v0-1 carry partition states ungrouped with their topic names; v2+ group them by topic; v5+
  add the topic id (and the response groups partitions by topic id); v2+ carry the broker epoch.
- A broker epoch older than this broker's (``Broker.broker_epoch``; -1 skips the check) answers
  STALE_BROKER_EPOCH for the request and every partition, as Kafka's KafkaApis.
- Otherwise :meth:`ReplicaManager.become_leader_or_follower` applies it, as Kafka's
  ReplicaManager.becomeLeaderOrFollower: an older controller epoch than the latest seen answers
  STALE_CONTROLLER_EPOCH for everything; then per partition KAFKA_STORAGE_ERROR,
  INCONSISTENT_TOPIC_ID, STALE_CONTROLLER_EPOCH (leader epoch not newer than ours),
  UNKNOWN_TOPIC_OR_PARTITION (this broker is not a replica) or NONE.
- New logs and the new leaders' epoch checkpoints are written in disk workers; the answer comes
  when they are done.
- ``live_leaders``, ``adding_replicas``, ``removing_replicas``, ``is_new``,
  ``leader_recovery_state`` and ``type`` are read by Kafka for reassignment, migration and
  fetcher bookkeeping only; Brook does not use them yet.

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine

from broker.handlers.base import Handler, RequestContext
from broker.replica.control import PartitionTransition
from broker.security.authz import Op, require_cluster
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.error_responses import error_response
from protocol.message import Message
from protocol.messages.leader_and_isr_request import LeaderAndIsrPartitionState, LeaderAndIsrRequest
from protocol.messages.leader_and_isr_response import (
    LeaderAndIsrPartitionError,
    LeaderAndIsrResponse,
    LeaderAndIsrTopicError,
)
from protocol.primitives import ZERO_UUID

log = logging.getLogger(__name__)

API_KEY = 4


def handle(
    ctx: RequestContext, request: LeaderAndIsrRequest
) -> Message | Coroutine[object, object, Message | None] | None:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    broker = ctx.broker
    if broker.is_broker_epoch_stale(request.broker_epoch):
        log.info(
            "LeaderAndIsr from controller %d (epoch %d) has broker epoch %d, older than ours %d",
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
            broker.broker_epoch,
        )
        return error_response(API_KEY, ctx.version, request, ErrorCode.STALE_BROKER_EPOCH, None)
    return _apply(ctx, request)


def transitions_of(request: LeaderAndIsrRequest, version: int) -> list[PartitionTransition]:
    """The request's partition states, one per partition, whatever the version."""
    if version < 2:
        pairs = [(s, None) for s in request.ungrouped_partition_states]
    else:
        pairs = [
            (s, t.topic_id if t.topic_id != ZERO_UUID else None)
            for t in request.topic_states
            for s in t.partition_states
            if _named(s, t.topic_name)
        ]
    return [_transition(s, topic_id) for s, topic_id in pairs]


def _named(state: LeaderAndIsrPartitionState, topic: str) -> bool:
    state.topic_name = topic
    return True


def _transition(state: LeaderAndIsrPartitionState, topic_id: uuid.UUID | None) -> PartitionTransition:
    return PartitionTransition(
        tp=TopicPartition(state.topic_name, state.partition_index),
        topic_id=topic_id,
        leader=BrokerId(state.leader),
        leader_epoch=state.leader_epoch,
        isr=[BrokerId(b) for b in state.isr],
        replicas=[BrokerId(b) for b in state.replicas],
        partition_epoch=state.partition_epoch,
        is_new=state.is_new,
    )


async def _apply(ctx: RequestContext, request: LeaderAndIsrRequest) -> Message | None:
    broker = ctx.broker
    version = ctx.version
    transitions = transitions_of(request, version)
    error, errors = await broker.replica_manager.become_leader_or_follower(
        request.controller_id, request.controller_epoch, transitions, broker.disk
    )
    if error:
        return error_response(API_KEY, version, request, error, None)
    if version < 5:
        return LeaderAndIsrResponse(
            error_code=ErrorCode.NONE,
            partition_errors=[
                LeaderAndIsrPartitionError(tp.topic, tp.partition, code) for tp, code in errors.items()
            ],
        )
    ids = {t.topic_name: t.topic_id for t in request.topic_states}
    topics: dict[uuid.UUID, LeaderAndIsrTopicError] = {}
    for tp, code in errors.items():
        topic_id = ids.get(tp.topic, ZERO_UUID)
        entry = topics.setdefault(topic_id, LeaderAndIsrTopicError(topic_id=topic_id))
        entry.partition_errors.append(
            LeaderAndIsrPartitionError(partition_index=tp.partition, error_code=code)
        )
    return LeaderAndIsrResponse(error_code=ErrorCode.NONE, topics=list(topics.values()))


HANDLER = Handler(API_KEY, 0, 7, handle)
