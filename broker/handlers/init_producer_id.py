"""InitProducerId (key 22), versions 0-5.

Without a transactional id (idempotent producers: the default of Java 3+, kafka-python 3,
franz-go) every call gets a fresh producer id with epoch 0, as Kafka's transaction coordinator
hands out; ids are reserved durably in blocks so none is reused after a restart. With a
transactional id the request needs the transaction coordinator, which Brook does not have yet:
it answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a fatal error clients report clearly instead
of retrying forever (listed as missing in the README).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse

API_KEY = 22


async def handle(ctx: RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse:
    if request.transactional_id is not None and request.transactional_id != "":
        return InitProducerIdResponse(
            error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producer_id=-1, producer_epoch=-1
        )
    return InitProducerIdResponse(
        error_code=0, producer_id=await ctx.broker.next_producer_id(), producer_epoch=0
    )


HANDLER = Handler(API_KEY, 0, 5, handle)
