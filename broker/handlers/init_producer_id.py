"""InitProducerId (key 22), versions 0-5.

Without a transactional id (idempotent producers) every call gets a fresh producer id with
epoch 0; ids are reserved durably in blocks so none is reused after a restart. With one, the
transaction coordinator of the id (:mod:`broker.txn.coordinator`) answers: a new producer id, or
the id's epoch bumped (an ongoing transaction is aborted first: CONCURRENT_TRANSACTIONS, the
client retries), a new producer id once the epoch is exhausted. v3+ may carry the producer's
current id and epoch (KIP-360): both -1, or both set (else INVALID_REQUEST); a stale pair gets
PRODUCER_FENCED, which v0-3 receive as INVALID_PRODUCER_EPOCH, as Kafka does. The empty
transactional id is INVALID_REQUEST, a timeout above ``transaction.max.timeout.ms`` (or not
positive) INVALID_TRANSACTION_TIMEOUT; NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS when this
broker does not (yet) serve the id's ``__transaction_state`` partition.

Authorization (an authorizer configured): a transactional id needs WRITE on it
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer IDEMPOTENT_WRITE on the cluster or
WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import (
    CLUSTER_AUTHORIZATION_FAILED,
    TOPIC,
    TRANSACTIONAL_ID,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    Op,
    authorize_by_resource_type,
    authorize_cluster,
    require,
)
from protocol.error_codes import ErrorCode
from protocol.exceptions import ApiError
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse

API_KEY = 22


async def handle(ctx: RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse:
    if request.transactional_id is not None:
        require(
            ctx, Op.WRITE, TRANSACTIONAL_ID, request.transactional_id, TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        )
    elif not authorize_cluster(ctx, Op.IDEMPOTENT_WRITE) and not authorize_by_resource_type(
        ctx, Op.WRITE, TOPIC
    ):
        # An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
        raise ApiError(CLUSTER_AUTHORIZATION_FAILED)
    if request.transactional_id is None:
        return InitProducerIdResponse(
            error_code=0, producer_id=await ctx.broker.next_producer_id(), producer_epoch=0
        )
    expected: tuple[int, int] | None = None
    if ctx.version >= 3 and (request.producer_id != -1 or request.producer_epoch != -1):
        if request.producer_id == -1 or request.producer_epoch == -1:
            return InitProducerIdResponse(
                error_code=ErrorCode.INVALID_REQUEST, producer_id=-1, producer_epoch=-1
            )
        expected = (request.producer_id, request.producer_epoch)
    result = await ctx.broker.txn_coordinator.init_producer_id(
        request.transactional_id, request.transaction_timeout_ms, expected
    )
    error = result.error
    if error == ErrorCode.PRODUCER_FENCED and ctx.version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return InitProducerIdResponse(
        error_code=error, producer_id=result.producer_id, producer_epoch=result.producer_epoch
    )


HANDLER = Handler(API_KEY, 0, 5, handle)
