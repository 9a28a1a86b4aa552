"""TxnOffsetCommit (key 28), versions 0-4.

A transactional producer's ``sendOffsetsToTransaction``: the group's offsets are written to
``__consumer_offsets`` as one transactional batch of the producer (id and epoch from the
request) and answered once durable (acks=all), so this handler is asynchronous. They stay
pending until the transaction's marker: COMMIT makes them the group's committed offsets, ABORT
drops them (see :mod:`broker.group.offsets`). By version: v2 adds the committed leader epoch;
v3 (KIP-447) the generation, member id and group instance id, which fence zombie members
(ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); v4 (KIP-890) only changes how the
client treats errors. Per partition: UNKNOWN_TOPIC_OR_PARTITION for topics or partitions that
do not exist, OFFSET_METADATA_TOO_LARGE, and the group's errors (NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID, the producer-state
errors of the append) for every partition. Before v2 COORDINATOR_LOAD_IN_PROGRESS is answered
as COORDINATOR_NOT_AVAILABLE, as Kafka does for clients older than KAFKA-7296.

KIP-890 (``transaction.partition.verification.enable``, default true): when the producer has
no open transaction on the group's ``__consumer_offsets`` partition, that partition must first be
verified in the ongoing transaction with the transactional id's coordinator (as Kafka's
handleTxnCommitOffsets; see :mod:`broker.replica.txn_verification`). Not in the transaction
(no AddOffsetsToTxn): INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v4); a fenced producer:
INVALID_PRODUCER_EPOCH; an unreachable coordinator: COORDINATOR_LOAD_IN_PROGRESS, the others as
offset-commit errors (Kafka's maybeConvertOffsetCommitError).

Authorization (an authorizer configured): WRITE on the transactional id, READ on the group and on
each topic (the matching *_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.group.commit_request import offsets_to_commit
from broker.group.records import OffsetAndMetadata, TxnProducer
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import (
    TRANSACTIONAL_ID,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    Op,
    checker,
    require,
    require_group,
)
from protocol.error_codes import ErrorCode
from protocol.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from protocol.messages.txn_offset_commit_response import (
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

API_KEY = 28


async def handle(ctx: RequestContext, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    require(ctx, Op.WRITE, TRANSACTIONAL_ID, request.transactional_id, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    require_group(ctx, Op.READ, request.group_id)
    may_read = checker(ctx, Op.READ)
    version = ctx.version
    broker = ctx.broker
    coordinator = broker.group_coordinator
    now = coordinator.now()
    errors, offsets = offsets_to_commit(
        request.topics,
        broker.partition_exists,
        lambda p: OffsetAndMetadata(
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch if version >= 2 else -1,
            metadata=p.committed_metadata or "",
            commit_timestamp=now,
        ),
        may_read,
    )
    if offsets:
        errors.update(
            await coordinator.offsets.txn_commit(
                request.group_id,
                TxnProducer(request.producer_id, request.producer_epoch),
                request.member_id if version >= 3 else "",
                request.group_instance_id if version >= 3 else None,
                request.generation_id if version >= 3 else -1,
                offsets,
                transactional_id=request.transactional_id,
                generic_errors=version >= 4,
            )
        )
    if version < 2:
        errors = {
            tp: ErrorCode.COORDINATOR_NOT_AVAILABLE if e == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS else e
            for tp, e in errors.items()
        }
    return TxnOffsetCommitResponse(
        throttle_time_ms=0,
        topics=[
            TxnOffsetCommitResponseTopic(
                topic.name,
                [
                    TxnOffsetCommitResponsePartition(
                        p.partition_index, errors[(topic.name, p.partition_index)]
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ],
    )


HANDLER = Handler(API_KEY, 0, 4, handle)
