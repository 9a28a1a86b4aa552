"""StopReplica (key 5), versions 0-4: the controller stops this broker's replicas of partitions,
and deletes them when asked. Served in cluster mode only (as by Kafka's ZooKeeper-mode brokers).

- v0 lists partitions ungrouped, v1-2 by topic, both with one ``delete_partitions`` flag for all;
  v3+ give each partition its leader epoch and its own delete flag. v1+ carry the broker epoch.
- A broker epoch older than this broker's answers STALE_BROKER_EPOCH and no partitions (as
  KafkaApis); -1 skips the check.
- Otherwise :meth:`ReplicaManager.stop_replicas`, as Kafka's: an older controller epoch answers
  STALE_CONTROLLER_EPOCH and no partitions; per partition KAFKA_STORAGE_ERROR (replica in an
  offline log dir), FENCED_LEADER_EPOCH (a leader epoch older than ours; -1, no epoch, and -2,
  deletion, pass) or NONE. Deleted replicas stop being served at once; their logs are deleted
  in a disk worker and the answer comes after.

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine

from broker.handlers.base import Handler, RequestContext
from broker.replica.control import NO_EPOCH, ReplicaStop
from broker.security.authz import Op, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.stop_replica_response import StopReplicaPartitionError, StopReplicaResponse

log = logging.getLogger(__name__)

API_KEY = 5


def handle(
    ctx: RequestContext, request: StopReplicaRequest
) -> StopReplicaResponse | Coroutine[object, object, StopReplicaResponse]:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    broker = ctx.broker
    if broker.is_broker_epoch_stale(request.broker_epoch):
        log.info(
            "StopReplica from controller %d (epoch %d) has broker epoch %d, older than ours %d",
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
            broker.broker_epoch,
        )
        return StopReplicaResponse(error_code=ErrorCode.STALE_BROKER_EPOCH)
    return _stop(ctx, request)


def stops_of(request: StopReplicaRequest, version: int) -> list[ReplicaStop]:
    """One stop per partition, whatever the version (the last one wins for a partition named
    twice, as Kafka's map)."""
    delete = request.delete_partitions
    stops: dict[TopicPartition, ReplicaStop] = {}
    if version == 0:
        for p in request.ungrouped_partitions:
            tp = TopicPartition(p.topic_name, p.partition_index)
            stops[tp] = ReplicaStop(tp, NO_EPOCH, delete)
    elif version < 3:
        for topic in request.topics:
            for index in topic.partition_indexes:
                tp = TopicPartition(topic.name, index)
                stops[tp] = ReplicaStop(tp, NO_EPOCH, delete)
    else:
        for state in request.topic_states:
            for p in state.partition_states:
                tp = TopicPartition(state.topic_name, p.partition_index)
                stops[tp] = ReplicaStop(tp, p.leader_epoch, p.delete_partition)
    return list(stops.values())


async def _stop(ctx: RequestContext, request: StopReplicaRequest) -> StopReplicaResponse:
    broker = ctx.broker
    error, errors = await broker.replica_manager.stop_replicas(
        request.controller_id, request.controller_epoch, stops_of(request, ctx.version), broker.disk
    )
    return StopReplicaResponse(
        error_code=error,
        partition_errors=[
            StopReplicaPartitionError(tp.topic, tp.partition, code) for tp, code in errors.items()
        ],
    )


HANDLER = Handler(API_KEY, 0, 4, handle)
