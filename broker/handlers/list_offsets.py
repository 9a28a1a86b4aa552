"""ListOffsets (key 2), versions 0-9.

Timestamps: -1 latest (the high watermark, or the last stable offset for read_committed), -2
earliest (log start offset), -3 max timestamp (v7+; the offset of the record with the largest
timestamp), -4 earliest local (v8+; the same as earliest without tiered storage), -5 latest
tiered (v9+; none without tiered storage: -1). Any other value finds the first record whose
timestamp is at least that (with its leader epoch, v4+); none found gives offset -1.
v0 answers with ``old_style_offsets`` (at most ``max_num_offsets``, newest first).
A request with a ``replica_id`` other than -1 (a follower after OFFSET_OUT_OF_RANGE) gets the log
end offset for latest, as Kafka reads to the log end for any id but the consumers'.

Authorization (an authorizer configured): DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED for its
partitions).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.replica.partition import Partition
from broker.security.authz import Op, checker
from protocol.error_codes import ErrorCode
from protocol.messages.list_offsets_request import ListOffsetsRequest
from protocol.messages.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from storage import StorageError

API_KEY = 2
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
CONSUMER_REPLICA_ID = -1
READ_COMMITTED = 1


def handle(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    version = ctx.version
    broker = ctx.broker
    committed = version >= 2 and request.isolation_level == READ_COMMITTED
    follower = request.replica_id != CONSUMER_REPLICA_ID  # Kafka: any other id reads to the log end
    topics: list[ListOffsetsTopicResponse] = []
    may_describe = checker(ctx, Op.DESCRIBE)
    for topic in request.topics:
        results: list[ListOffsetsPartitionResponse] = []
        authorized = may_describe(topic.name)
        for p in topic.partitions:
            out = ListOffsetsPartitionResponse(
                partition_index=p.partition_index, error_code=0, timestamp=-1, offset=-1, leader_epoch=-1
            )
            if not authorized:
                out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                if version == 0:
                    out.old_style_offsets = []
                results.append(out)
                continue
            epoch = p.current_leader_epoch if version >= 4 else -1
            partition, out.error_code = broker.replica_manager.leader_for(
                topic.name, p.partition_index, epoch
            )
            if partition is not None:
                try:
                    _lookup(partition, p.timestamp, committed, version, out, follower)
                    if version == 0:
                        out.old_style_offsets = _old_style(partition, p.timestamp, p.max_num_offsets)
                except (StorageError, OSError) as exc:
                    action = "looking up offsets of"
                    out.error_code = broker.replica_manager.storage_failure(partition, exc, action)
                    out.old_style_offsets = []
            if version == 0:
                out.timestamp, out.offset, out.leader_epoch = -1, -1, -1
            elif version < 4:
                out.leader_epoch = -1
            results.append(out)
        topics.append(ListOffsetsTopicResponse(name=topic.name, partitions=results))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)


def _lookup(
    partition: Partition,
    timestamp: int,
    committed: bool,
    version: int,
    out: ListOffsetsPartitionResponse,
    follower: bool = False,
) -> None:
    log_ = partition.log
    epoch = partition.leader_epoch
    if timestamp == LATEST:
        if follower:
            out.offset = partition.log_end_offset
        else:
            out.offset = partition.last_stable_offset if committed else partition.high_watermark
        out.leader_epoch = epoch
    elif timestamp in (EARLIEST, EARLIEST_LOCAL):
        out.offset = partition.log_start_offset
        found = log_.leader_epochs.epoch_for_offset(out.offset)
        out.leader_epoch = found if found is not None else -1
    elif timestamp == LATEST_TIERED:
        out.offset = -1
    elif timestamp == MAX_TIMESTAMP:
        hit = log_.max_timestamp_offset()
        if hit is not None:
            out.offset, out.timestamp, out.leader_epoch = hit.offset, hit.timestamp, hit.leader_epoch
    elif timestamp < 0:
        out.error_code = ErrorCode.INVALID_REQUEST if version >= 1 else ErrorCode.NONE
    else:
        hit = log_.offset_for_timestamp(timestamp)
        limit = partition.last_stable_offset if committed else partition.high_watermark
        if hit is not None and hit.offset < limit:
            out.offset, out.timestamp, out.leader_epoch = hit.offset, hit.timestamp, hit.leader_epoch


def _old_style(partition: Partition, timestamp: int, max_num: int) -> list[int]:
    """v0: offsets of segment starts before ``timestamp`` plus the end, newest first."""
    if timestamp == EARLIEST:
        return [partition.log_start_offset][: max(max_num, 0)]
    offsets = [partition.high_watermark]
    if timestamp != LATEST:
        hit = partition.log.offset_for_timestamp(timestamp)
        offsets = [hit.offset] if hit is not None else [partition.high_watermark]
    return offsets[: max(max_num, 0)]


HANDLER = Handler(API_KEY, 0, 9, handle)
