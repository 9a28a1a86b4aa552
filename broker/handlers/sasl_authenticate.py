"""SaslAuthenticate (key 36), versions 0-2.

The authentication exchange itself is the connection's (:mod:`broker.security.sasl_server`):
tokens in, tokens out, ``session_lifetime_ms`` (v1+) from ``connections.max.reauth.ms``. A
SaslAuthenticate that reaches this handler came after authentication completed, or on a
PLAINTEXT/SSL listener: ILLEGAL_SASL_STATE with Kafka's message.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse

API_KEY = 36


def handle(ctx: RequestContext, request: SaslAuthenticateRequest) -> SaslAuthenticateResponse:
    return SaslAuthenticateResponse(
        error_code=ErrorCode.ILLEGAL_SASL_STATE,
        error_message="SaslAuthenticate request received after successful authentication",
    )


HANDLER = Handler(API_KEY, 0, 2, handle)
