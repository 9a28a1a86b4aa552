"""DescribeLogDirs (key 35), versions 0-4.

Each log directory with the partitions it holds (size in bytes, offset lag 0 on a leader) and,
v4+, the disk's total and usable bytes. A replica moving to another dir (AlterReplicaLogDirs) is
also listed in that dir with ``is_future_key`` and its offset lag behind the current log.
A null topic list (an empty one in v0) asks for all.
A log dir taken offline after a disk error is answered KAFKA_STORAGE_ERROR with no topics and
-1 for the sizes, as Kafka's ReplicaManager.describeLogDirs; one whose disk cannot be asked for
its sizes gets UNKNOWN_SERVER_ERROR (Kafka: the error of the IOException).

Authorization (an authorizer configured): DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.error_codes import ErrorCode
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.describe_log_dirs_response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)

log = logging.getLogger(__name__)

API_KEY = 35


def handle(ctx: RequestContext, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    require_cluster(ctx, Op.DESCRIBE)
    broker = ctx.broker
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None and (request.topics or ctx.version > 0):
        wanted = {t.topic: set(t.partitions) for t in request.topics}
    per_dir: dict[str, dict[str, list[DescribeLogDirsPartition]]] = defaultdict(lambda: defaultdict(list))
    replicas = broker.replica_manager
    offline_dirs = {str(d.resolve()) for d in broker.log_manager.offline_dirs}
    for partition in replicas:
        tp = partition.tp
        if wanted is not None and tp.partition not in wanted.get(tp.topic, ()):
            continue
        if replicas.is_offline(tp):
            continue
        # The future first: a swap (in a disk worker) gives the partition its new log before it
        # drops the future, so no answer shows the old dir without the move in it.
        future = broker.log_manager.future_log(tp.topic, tp.partition)
        future_dir = broker.log_manager.future_dir_of(tp.topic, tp.partition)
        current = partition.log
        per_dir[str(current.directory.parent.resolve())][tp.topic].append(
            DescribeLogDirsPartition(
                partition_index=tp.partition,
                partition_size=current.size_in_bytes(),
                offset_lag=0,
                is_future_key=False,
            )
        )
        if future is not None and future_dir is not None:
            # A replica moving to another dir (AlterReplicaLogDirs): lag behind the current log.
            per_dir[str(future_dir.resolve())][tp.topic].append(
                DescribeLogDirsPartition(
                    partition_index=tp.partition,
                    partition_size=future.size_in_bytes(),
                    offset_lag=max(current.log_end_offset - future.log_end_offset, 0),
                    is_future_key=True,
                )
            )
    results: list[DescribeLogDirsResult] = []
    for d in broker.config.log_dirs:
        path = str(d.resolve())
        if path in offline_dirs:
            results.append(_failed(path, ErrorCode.KAFKA_STORAGE_ERROR))
            continue
        try:
            stats = os.statvfs(path)
        except OSError as exc:  # as Kafka for an IOException here: the dir stays online
            log.error("cannot describe log dir %s: %s", path, exc)
            results.append(_failed(path, ErrorCode.UNKNOWN_SERVER_ERROR))
            continue
        topics = [
            DescribeLogDirsTopic(name=name, partitions=sorted(parts, key=_partition_order))
            for name, parts in sorted(per_dir.get(path, {}).items())
        ]
        results.append(
            DescribeLogDirsResult(
                error_code=0,
                log_dir=path,
                topics=topics,
                total_bytes=stats.f_blocks * stats.f_frsize if ctx.version >= 4 else -1,
                usable_bytes=stats.f_bavail * stats.f_frsize if ctx.version >= 4 else -1,
            )
        )
    return DescribeLogDirsResponse(throttle_time_ms=0, error_code=0, results=results)


def _partition_order(p: DescribeLogDirsPartition) -> tuple[int, bool]:
    return p.partition_index, p.is_future_key


def _failed(path: str, code: ErrorCode) -> DescribeLogDirsResult:
    return DescribeLogDirsResult(error_code=code, log_dir=path, topics=[], total_bytes=-1, usable_bytes=-1)


HANDLER = Handler(API_KEY, 0, 4, handle)
