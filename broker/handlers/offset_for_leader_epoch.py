"""OffsetForLeaderEpoch (key 23), versions 0-4.

For each partition, the end offset of the requested leader epoch: the start offset of the next
larger epoch in the leader-epoch cache, or the log end offset for the current epoch (KIP-101 /
KIP-279), with the largest epoch not above the requested one. Consumers use it (v3+, after a
leader change) to detect truncation; followers will use it in the cluster mode.
current_leader_epoch (v2+) fences stale callers: FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.

Authorization (an authorizer configured): a follower (replica id >= 0, v3+) needs CLUSTER_ACTION
(CLUSTER_AUTHORIZATION_FAILED), a consumer DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker, require_cluster
from protocol.error_codes import ErrorCode
from protocol.messages.offset_for_leader_epoch_request import OffsetForLeaderEpochRequest
from protocol.messages.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)

API_KEY = 23


def handle(ctx: RequestContext, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse:
    broker = ctx.broker
    topics: list[OffsetForLeaderTopicResult] = []
    # A follower (replica id >= 0, v3+) needs CLUSTER_ACTION; a consumer DESCRIBE on each topic.
    if ctx.version >= 3 and request.replica_id >= 0:
        require_cluster(ctx, Op.CLUSTER_ACTION)
    may_describe = checker(ctx, Op.DESCRIBE)
    for topic in request.topics:
        results: list[EpochEndOffset] = []
        authorized = may_describe(topic.topic)
        for p in topic.partitions:
            out = EpochEndOffset(error_code=0, partition=p.partition, leader_epoch=-1, end_offset=-1)
            if not authorized:
                out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                results.append(out)
                continue
            epoch = p.current_leader_epoch if ctx.version >= 2 else -1
            partition, out.error_code = broker.replica_manager.leader_for(topic.topic, p.partition, epoch)
            if partition is not None:
                epoch, end = partition.log.leader_epochs.end_offset_for_epoch(p.leader_epoch)
                if epoch == partition.leader_epoch or (epoch >= 0 and end > partition.log_end_offset):
                    end = partition.log_end_offset
                out.leader_epoch, out.end_offset = epoch, end
            results.append(out)
        topics.append(OffsetForLeaderTopicResult(topic=topic.topic, partitions=results))
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)


HANDLER = Handler(API_KEY, 0, 4, handle)
