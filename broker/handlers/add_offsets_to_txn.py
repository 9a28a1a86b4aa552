"""AddOffsetsToTxn (key 25), versions 0-4.

Adds the group's ``__consumer_offsets`` partition (``abs(javaHashCode(group)) %`` its partition
count) to the transaction, so that TxnOffsetCommit may write there and the markers reach it;
errors as AddPartitionsToTxn's, PRODUCER_FENCED becoming INVALID_PRODUCER_EPOCH for v0-1.

Authorization (an authorizer configured): WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and READ on the group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.group import OFFSETS_TOPIC
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import (
    TRANSACTIONAL_ID,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    Op,
    require,
    require_group,
)
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse

API_KEY = 25


async def handle(ctx: RequestContext, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    require(ctx, Op.WRITE, TRANSACTIONAL_ID, request.transactional_id, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    require_group(ctx, Op.READ, request.group_id)
    store = ctx.broker.group_coordinator.store
    partition = TopicPartition(OFFSETS_TOPIC, store.partition_for(request.group_id))
    error = await ctx.broker.txn_coordinator.add_partitions(
        request.transactional_id, request.producer_id, request.producer_epoch, [partition]
    )
    if error == ErrorCode.PRODUCER_FENCED and ctx.version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return AddOffsetsToTxnResponse(error_code=error)


HANDLER = Handler(API_KEY, 0, 4, handle)
