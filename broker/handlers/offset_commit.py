"""OffsetCommit (key 8), versions 0-9.

Stores a group's committed offsets in ``__consumer_offsets``; the answer waits until the
write is durable (below the high watermark), so this handler is asynchronous. By version:
v1 adds the generation, member id and a per-partition commit timestamp; v2-v4 carry a
retention time (an explicit one gives the offset an expire timestamp, written as an
OffsetCommitValue v1); v5 drops it (``offsets.retention.minutes`` applies); v6+ carry the
leader epoch; v7+ ``group.instance.id``. Kafka 3.9 stores v0 commits in ZooKeeper; Brook
stores them like the others (generation -1, no member). Per partition: UNKNOWN_TOPIC_OR_PARTITION
for topics or partitions that do not exist, OFFSET_METADATA_TOO_LARGE, and the group's errors
(ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS,
NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID)
for every partition; see :mod:`broker.group.offsets`.

Authorization (an authorizer configured): READ on the group (GROUP_AUTHORIZATION_FAILED for every
partition) and on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.group.commit_request import offsets_to_commit
from broker.group.records import OffsetAndMetadata
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker, require_group
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)

API_KEY = 8
DEFAULT = -1


async def handle(ctx: RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse:
    require_group(ctx, Op.READ, request.group_id)
    may_read = checker(ctx, Op.READ)
    version = ctx.version
    broker = ctx.broker
    coordinator = broker.group_coordinator
    now = coordinator.now()
    retention = request.retention_time_ms if 2 <= version <= 4 else DEFAULT
    expire = None if retention == DEFAULT else now + retention
    errors, offsets = offsets_to_commit(
        request.topics,
        broker.partition_exists,
        lambda p: OffsetAndMetadata(
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch if version >= 6 else -1,
            metadata=p.committed_metadata or "",
            commit_timestamp=p.commit_timestamp if version == 1 and p.commit_timestamp != DEFAULT else now,
            expire_timestamp=expire,
        ),
        may_read,
    )
    if offsets:
        errors.update(
            await coordinator.offsets.commit(
                request.group_id,
                request.member_id if version >= 1 else "",
                request.group_instance_id if version >= 7 else None,
                request.generation_id_or_member_epoch if version >= 1 else -1,
                offsets,
            )
        )
    return OffsetCommitResponse(
        throttle_time_ms=0,
        topics=[
            OffsetCommitResponseTopic(
                topic.name,
                [
                    OffsetCommitResponsePartition(p.partition_index, errors[(topic.name, p.partition_index)])
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ],
    )


HANDLER = Handler(API_KEY, 0, 9, handle)
