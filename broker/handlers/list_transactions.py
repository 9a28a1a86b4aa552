"""ListTransactions (key 66), versions 0-1.

The transactions this broker coordinates, filtered by state names (unknown names are echoed in
``unknown_state_filters``), producer ids and, v1+, ``duration_filter`` (only transactions
running longer than that many ms; -1: no filter). COORDINATOR_LOAD_IN_PROGRESS while a
``__transaction_state`` partition is loading.

Authorization (an authorizer configured): only the transactional ids the principal may DESCRIBE are
listed.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import TRANSACTIONAL_ID, Op, checker
from protocol.messages.list_transactions_request import ListTransactionsRequest
from protocol.messages.list_transactions_response import ListTransactionsResponse

API_KEY = 66


def handle(ctx: RequestContext, request: ListTransactionsRequest) -> ListTransactionsResponse:
    duration = request.duration_filter if ctx.version >= 1 else -1
    response = ctx.broker.txn_coordinator.list_transactions(
        request.state_filters, request.producer_id_filters, duration
    )
    if ctx.broker.authorizer is not None:
        may_describe = checker(ctx, Op.DESCRIBE, TRANSACTIONAL_ID)
        response.transaction_states = [
            t for t in response.transaction_states if may_describe(t.transactional_id)
        ]
    return response


HANDLER = Handler(API_KEY, 0, 1, handle)
