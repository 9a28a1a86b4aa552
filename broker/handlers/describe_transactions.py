"""DescribeTransactions (key 65), version 0.

One entry per transactional id, from the coordinator that serves it: state name, producer id
and epoch, timeout, start time and the partitions by topic. TRANSACTIONAL_ID_NOT_FOUND for an
unknown id, NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS when this broker does not (yet) serve
its ``__transaction_state`` partition, INVALID_REQUEST for the empty id.

Authorization (an authorizer configured): DESCRIBE on each transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import TRANSACTIONAL_ID, Op, checker
from protocol.error_codes import ErrorCode
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.describe_transactions_response import DescribeTransactionsResponse, TransactionState

API_KEY = 65


def handle(ctx: RequestContext, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    coordinator = ctx.broker.txn_coordinator
    may_describe = checker(ctx, Op.DESCRIBE, TRANSACTIONAL_ID)
    return DescribeTransactionsResponse(
        transaction_states=[
            coordinator.describe(tid)
            if may_describe(tid)
            else TransactionState(
                error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, transactional_id=tid
            )
            for tid in request.transactional_ids
        ]
    )


HANDLER = Handler(API_KEY, 0, 0, handle)
