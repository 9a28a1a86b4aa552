"""SaslHandshake (key 17), versions 0-1.

On a SASL listener the connection's authenticator answers SaslHandshake before authentication
(and at a KIP-368 re-authentication); see :mod:`broker.security.sasl_server`. A SaslHandshake
that reaches this handler came on an authenticated connection that cannot re-authenticate, or on
a PLAINTEXT/SSL listener: ILLEGAL_SASL_STATE with no mechanisms, as Kafka's KafkaApis answers.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from protocol.messages.sasl_handshake_response import SaslHandshakeResponse

API_KEY = 17


def handle(ctx: RequestContext, request: SaslHandshakeRequest) -> SaslHandshakeResponse:
    return SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE)


HANDLER = Handler(API_KEY, 0, 1, handle)
