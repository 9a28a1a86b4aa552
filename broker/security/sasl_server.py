"""The server side of SASL on one connection, as Kafka's SaslServerAuthenticator; no I/O.

States, in Kafka's order: ``HANDSHAKE_OR_VERSIONS_REQUEST`` (ApiVersions or SaslHandshake),
``HANDSHAKE_REQUEST`` (after ApiVersions only SaslHandshake), ``AUTHENTICATE`` (tokens: raw
size-prefixed frames after SaslHandshake v0, SaslAuthenticate requests after v1), ``COMPLETE``
and ``FAILED``. Any other request before ``COMPLETE`` is ILLEGAL_SASL_STATE and the connection
closes. Re-authentication (KIP-368) starts again from a SaslHandshake on an authenticated
connection whose client sent SaslAuthenticate v1+, with the same mechanism and principal.

Failure messages are Kafka's: a mechanism's own message where Kafka passes it on (PLAIN's
"Authentication failed: Invalid username or password"), and for SCRAM the generic "Authentication
failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256", which
does not say whether the user exists. No message ever holds a password or token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from broker.security.plain import PlainFailure, PlainServer
from broker.security.principal import USER_TYPE, KafkaPrincipal
from broker.security.sasl_config import PLAIN, SaslListener
from broker.security.scram import ScramError, ScramServer

log = logging.getLogger(__name__)

HANDSHAKE_OR_VERSIONS_REQUEST = "HANDSHAKE_OR_VERSIONS_REQUEST"
HANDSHAKE_REQUEST = "HANDSHAKE_REQUEST"
AUTHENTICATE = "AUTHENTICATE"
COMPLETE = "COMPLETE"
FAILED = "FAILED"
REAUTH_BAD_MECHANISM = "REAUTH_BAD_MECHANISM"


class SaslFailure(Exception):
    """Authentication failed; ``client_message`` is what the SaslAuthenticate response says."""

    def __init__(self, client_message: str) -> None:
        super().__init__(client_message)
        self.client_message = client_message


class IllegalSaslState(SaslFailure):
    pass


class _MechanismServer(Protocol):
    complete: bool
    username: str | None

    def evaluate(self, token: bytes) -> bytes: ...


class SaslServerAuthenticator:
    def __init__(self, listener: SaslListener, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.listener = listener
        self.clock = clock
        self.state = HANDSHAKE_OR_VERSIONS_REQUEST
        #: SaslHandshake v1+: tokens come in SaslAuthenticate requests, not raw frames.
        self.headers = False
        self.mechanism: str | None = None
        self.principal: KafkaPrincipal | None = None
        #: ``clock()`` time after which the session is over (connections.max.reauth.ms).
        self.session_expiry: float | None = None
        #: The client sent SaslAuthenticate v1+ (KIP-368): it can re-authenticate.
        self.supports_reauth = False
        self.reauthenticating = False
        self._server: _MechanismServer | None = None
        self._bad_mechanism_message = ""

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def expects_raw_token(self) -> bool:
        return self.state == AUTHENTICATE and not self.headers

    def session_expired(self) -> bool:
        return self.session_expiry is not None and self.clock() > self.session_expiry

    # -- requests before authentication --------------------------------------------------------

    def check_request(self, api_key_name: str, is_api_versions: bool, is_handshake: bool) -> None:
        """Before (re-)authentication completes only ApiVersions (first) and SaslHandshake may
        come; anything else is Kafka's IllegalSaslStateException."""
        if self.state in (HANDSHAKE_OR_VERSIONS_REQUEST, HANDSHAKE_REQUEST):
            if is_handshake or (is_api_versions and self.state == HANDSHAKE_OR_VERSIONS_REQUEST):
                return
            raise IllegalSaslState(f"Unexpected Kafka request of type {api_key_name} during SASL handshake.")
        raise IllegalSaslState(f"Unexpected Kafka request of type {api_key_name} during SASL authentication.")

    def api_versions_answered(self) -> None:
        if self.state == HANDSHAKE_OR_VERSIONS_REQUEST:
            self.state = HANDSHAKE_REQUEST

    def begin_reauthentication(self) -> None:
        """A SaslHandshake on an authenticated connection whose client supports KIP-368."""
        self.reauthenticating = True
        self.state = HANDSHAKE_REQUEST

    def handshake(self, version: int, mechanism: str) -> bool:
        """SaslHandshake: True if the mechanism is enabled (the exchange starts), False for
        UNSUPPORTED_SASL_MECHANISM (the connection then fails)."""
        self.headers = version >= 1
        if mechanism not in self.listener.mechanisms:
            self.state = FAILED
            return False
        if self.reauthenticating and mechanism != self.mechanism:
            self._bad_mechanism_message = (
                f"SASL mechanism '{mechanism}' requested by client is not supported for re-authentication "
                f"of mechanism '{self.mechanism}'"
            )
            self.state = REAUTH_BAD_MECHANISM
            return True
        self.mechanism = mechanism
        self._server = self._new_server(mechanism)
        self.state = AUTHENTICATE
        return True

    def _new_server(self, mechanism: str) -> _MechanismServer:
        if mechanism == PLAIN:
            return PlainServer(self.listener.plain_users)
        store = self.listener.scram_credentials
        return ScramServer(mechanism, lambda user: None if store is None else store.get(user, mechanism))

    # -- tokens ----------------------------------------------------------------------------------

    def authenticate(self, token: bytes, version: int | None = None) -> tuple[bytes, int]:
        """One client token (``version`` of its SaslAuthenticate, None for a raw one): the server
        token and the session lifetime to report (0 until complete). Raises SaslFailure."""
        if self.state == REAUTH_BAD_MECHANISM:
            self.state = FAILED
            raise SaslFailure(self._bad_mechanism_message)
        if self.state != AUTHENTICATE or self._server is None:
            raise IllegalSaslState(f"Unexpected SASL token in state {self.state}")
        if version is not None and version > 0:
            self.supports_reauth = True
        server = self._server
        try:
            reply = server.evaluate(token)
        except PlainFailure as exc:
            self.state = FAILED
            raise SaslFailure(str(exc)) from None
        except ScramError as exc:
            self.state = FAILED
            # The detail stays in the broker's debug log (it never holds a token or password).
            log.debug("SCRAM %s exchange failed: %s", self.mechanism, exc)
            raise SaslFailure(
                exc.client_message
                or f"Authentication failed during {self._text()} due to invalid credentials "
                f"with SASL mechanism {self.mechanism}"
            ) from None
        if not server.complete:
            return reply, 0
        assert server.username is not None
        principal = KafkaPrincipal(USER_TYPE, server.username)
        if self.reauthenticating and principal != self.principal:
            self.state = FAILED
            previous = self.principal
            raise SaslFailure(
                f"Cannot change principals during re-authentication from {previous}: {principal}"
            )
        self.principal = principal
        self.state = COMPLETE
        self.reauthenticating = False
        self._server = None
        lifetime = self.listener.max_reauth_ms.get(self.mechanism or "", 0)
        self.session_expiry = self.clock() + lifetime / 1000.0 if lifetime > 0 else None
        return reply, max(0, lifetime)

    def _text(self) -> str:
        return "re-authentication" if self.reauthenticating else "authentication"
