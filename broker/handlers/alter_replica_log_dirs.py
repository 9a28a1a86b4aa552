"""AlterReplicaLogDirs (key 34), versions 0-2 (v1 is v0 with throttling, v2 flexible).

Moves replicas hosted here to another of this broker's log dirs (KIP-113), as Kafka's
ReplicaManager.alterReplicaLogDirs, per partition (a partition named twice takes its last dir):

- a dir that is not one of ``log.dirs`` (its absolute path, or as DescribeLogDirs names it)
  is LOG_DIR_NOT_FOUND; an offline one, or a partition in an offline dir, KAFKA_STORAGE_ERROR;
- a move already going to another dir is cancelled (its future log deleted) first;
- a partition not hosted here is REPLICA_NOT_AVAILABLE, and the dir is remembered: the replica
  is created there if it comes later (Kafka's preferred log dir);
- the replica's own dir, or the dir it is already moving to, is NONE with nothing to do; so is
  a new move: the future log ``<topic>-<partition>.<32 hex>-future`` is created in the dir (a
  disk worker) and copied in the background (:mod:`broker.replica.log_dir_mover`); as Kafka, no
  move starts while any log dir is offline (KAFKA_STORAGE_ERROR).

The answer comes once each move has started, not when it completes: DescribeLogDirs shows the
future replica and its offset lag meanwhile. Served on the embedded node and in cluster mode.

Authorization (an authorizer configured): ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging
from pathlib import Path

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_replica_log_dirs_request import AlterReplicaLogDirsRequest
from protocol.messages.alter_replica_log_dirs_response import (
    AlterReplicaLogDirPartitionResult,
    AlterReplicaLogDirsResponse,
    AlterReplicaLogDirTopicResult,
)
from storage import LogDirOfflineError, StorageError

log = logging.getLogger(__name__)

API_KEY = 34


async def handle(ctx: RequestContext, request: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse:
    require_cluster(ctx, Op.ALTER)
    wanted: dict[TopicPartition, str] = {}
    for d in request.dirs:
        for topic in d.topics:
            for index in topic.partitions:
                wanted[TopicPartition(topic.name, index)] = d.path
    errors: dict[str, list[AlterReplicaLogDirPartitionResult]] = {}
    # One change at a time, with LeaderAndIsr and StopReplica (Kafka's replicaStateChangeLock).
    async with ctx.broker.replica_manager.control.lock:
        for tp, path in wanted.items():
            code = await _alter(ctx, tp, path)
            errors.setdefault(tp.topic, []).append(AlterReplicaLogDirPartitionResult(tp.partition, code))
    return AlterReplicaLogDirsResponse(
        throttle_time_ms=0,
        results=[AlterReplicaLogDirTopicResult(name, parts) for name, parts in errors.items()],
    )


def _configured_dir(log_dirs: list[Path], path: str) -> Path | None:
    """The configured log dir ``path`` names (Kafka compares absolute paths; DescribeLogDirs
    reports resolved ones, so those match too)."""
    wanted = Path(path)
    if not wanted.is_absolute():
        return None
    for d in log_dirs:
        if wanted == d.absolute() or wanted == d.resolve():
            return d
    return None


async def _alter(ctx: RequestContext, tp: TopicPartition, path: str) -> ErrorCode:
    broker = ctx.broker
    manager = broker.log_manager
    replicas = broker.replica_manager
    dest = _configured_dir(manager.log_dirs, path)
    if dest is None:
        return ErrorCode.LOG_DIR_NOT_FOUND
    if dest in manager.offline_dirs or replicas.is_offline(tp):
        return ErrorCode.KAFKA_STORAGE_ERROR
    partition = replicas.get(tp)
    if partition is None:
        manager.preferred_dirs[tp] = dest
        return ErrorCode.REPLICA_NOT_AVAILABLE
    mover = broker.log_dir_mover()
    moving_to = manager.future_dir_of(tp.topic, tp.partition)
    if moving_to is not None and moving_to != dest:
        log.info("the move of %s to %s is cancelled: %s is asked for now", tp, moving_to, dest)
        await mover.cancel(tp)
        await broker.disk.run(manager.remove_future_log, tp.topic, tp.partition)
        moving_to = None
    if manager.log_dir_of(tp.topic, tp.partition) == dest:
        return ErrorCode.NONE
    if moving_to is None:
        if manager.offline_dirs:
            return ErrorCode.KAFKA_STORAGE_ERROR
        try:
            await broker.disk.run(manager.create_future_log, tp.topic, tp.partition, dest)
        except LogDirOfflineError:
            return ErrorCode.KAFKA_STORAGE_ERROR
        except StorageError as exc:  # the replica went away meanwhile
            log.warning("cannot move %s to %s: %s", tp, dest, exc)
            return ErrorCode.REPLICA_NOT_AVAILABLE
        log.info("moving %s to log dir %s", tp, dest)
    mover.start(tp)
    return ErrorCode.NONE


HANDLER = Handler(API_KEY, 0, 2, handle)
