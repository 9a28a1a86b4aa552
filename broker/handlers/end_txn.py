"""EndTxn (key 26), versions 0-4.

Commits or aborts the producer's ongoing transaction: PrepareCommit/PrepareAbort is written to
``__transaction_state`` and the client answered; the markers and the completion follow in the
background (:mod:`broker.txn.markers`). A retry once the same result completed gets NONE, while
it completes CONCURRENT_TRANSACTIONS; the other result, or no transaction, INVALID_TXN_STATE.
A stale epoch gets PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for v0-1), an unknown producer id
INVALID_PRODUCER_ID_MAPPING. (v5's epoch bump per transaction, KIP-890 part 2, is Kafka 4.0.)

Authorization (an authorizer configured): WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import TRANSACTIONAL_ID, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, Op, require
from protocol.error_codes import ErrorCode
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.end_txn_response import EndTxnResponse

API_KEY = 26


async def handle(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse:
    require(ctx, Op.WRITE, TRANSACTIONAL_ID, request.transactional_id, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    result = await ctx.broker.txn_coordinator.end_transaction(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed
    )
    error = result.error
    if error == ErrorCode.PRODUCER_FENCED and ctx.version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return EndTxnResponse(error_code=error)


HANDLER = Handler(API_KEY, 0, 4, handle)
