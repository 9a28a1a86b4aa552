"""One client connection: frames in, responses out, strictly in request order.

The connection drives a non-blocking socket directly from the event loop's reader and writer
callbacks (``add_reader``/``add_writer``) instead of an asyncio transport. That lets the frame
decoder ``recv_into`` its own buffers (a large produce request is read straight into the
``bytearray`` that storage then patches and appends) and lets fetch responses go out with
``os.sendfile`` from segment files, which a transport cannot do while it owns the socket.

Requests are handled as they arrive and may complete out of order (a long-polling fetch, a
produce waiting for replicas); responses are queued in slots and written in arrival order, as
Kafka clients require when they pipeline. A produce with acks=0 takes no slot.

On a SASL listener (SASL_PLAINTEXT, SASL_SSL) every frame goes to the connection's
:class:`SaslServerAuthenticator` until the client is authenticated (:meth:`Connection._sasl_frame`):
only ApiVersions, SaslHandshake and SaslAuthenticate (or raw tokens after SaslHandshake v0) are
served, frames are capped at ``sasl.server.max.receive.size``, and a failure is answered and the
connection closed after ``connection.failed.authentication.delay.ms`` (a timer, nothing blocks).

On an SSL listener the socket is an ``ssl.SSLSocket`` driven the same way: the handshake runs
non-blocking (``SSLWantReadError``/``SSLWantWriteError`` re-arm the reader or writer) under a
deadline, and since sendfile cannot encrypt, file regions are read with ``os.preadv`` into one
buffer, together with the response bytes around them, and written as large TLS writes.

Client quotas mute a connection for a throttle time (``throttle``, KIP-219): its responses still
go out, nothing more is read, and frames already read wait in ``_held`` until a timer
(``loop.call_later``) ends the mute; Kafka reads one request at a time, so it would not have
read them yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from broker.metrics.stats import FETCH_CONSUMER, FETCH_FOLLOWER
from broker.network.reply import Reply
from broker.request_log import UNKNOWN_SOFTWARE, RequestLogEntry
from broker.security.principal import USER_TYPE, KafkaPrincipal, SecurityContext
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.exceptions import (
    ApiError,
    DecodeError,
    FrameTooLargeError,
    UnknownApiError,
    UnsupportedVersionError,
)
from protocol.framing import FrameDecoder
from protocol.framing import frame as frame_of
from protocol.message import Message
from storage import FileSlice
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.network.server import Server
    from broker.security.sasl_config import SaslListener
    from broker.security.sasl_server import SaslServerAuthenticator

log = logging.getLogger(__name__)

#: Requests in flight on one connection before it stops reading (backpressure).
MAX_IN_FLIGHT = 100
#: Unsent response bytes on one connection before it stops reading.
MAX_PENDING_BYTES = 16 * 1024 * 1024
_IOV_MAX = 512
#: Per-connection receive buffer for small requests; a larger frame gets a buffer of its own that
#: the kernel fills directly. Small, because idle connections keep theirs (1,000 x 16 KiB).
RECEIVE_BUFFER = 16 * 1024
FETCH_KEY = 1
SASL_HANDSHAKE_KEY = 17
SASL_AUTHENTICATE_KEY = 36


#: Largest plaintext handed to one TLS write: file data and the response bytes around it are
#: gathered up to this size (OpenSSL cuts it into 16 KiB records).
TLS_CHUNK = 256 * 1024


@dataclass(slots=True)
class TlsListener:
    """What an SSL listener's connections need: its context (replaced when the key or trust
    store is reloaded), how client certificates map to principals, and how long a handshake may
    take before the connection is closed."""

    context: ssl.SSLContext
    #: A verified client certificate's subject DN -> principal name (SslPrincipalMapper.name).
    principal_name: Callable[[str], str]
    handshake_timeout_s: float


class _RecordDataShrank(Exception):
    """A file region ended early: the segment was truncated while its frame was being sent."""


class Slot:
    """A response position in the connection's order."""

    __slots__ = (
        "api_key",
        "correlation_id",
        "done",
        "log_entry",
        "parts",
        "quota",
        "received",
        "request",
        "version",
    )

    def __init__(
        self, api_key: int, version: int, correlation_id: int, request: Any = None, received: float = 0.0
    ) -> None:
        self.api_key = api_key
        self.version = version
        self.correlation_id = correlation_id
        self.done = False
        self.parts: list[Any] | None = None
        #: The request body, kept until the slot is answered: a failure is answered from it.
        self.request = request
        #: Set when the request log is on (broker.request_log).
        self.log_entry: RequestLogEntry | None = None
        #: ``time.monotonic()`` of the read that brought the request (0: not timed).
        self.received = received
        #: Set when client quotas are configured (broker.quotas.manager.QuotaTicket).
        self.quota: Any = None


class Connection:
    def __init__(
        self,
        server: Server,
        sock: socket.socket,
        peer: str,
        listener: str,
        *,
        security_protocol: str = "PLAINTEXT",
        tls: TlsListener | None = None,
        sasl: SaslListener | None = None,
    ) -> None:
        self.server = server
        self.loop = server.loop
        self.peer = peer
        self.listener = listener
        #: Listener, protocol and principal: what authorization and quotas look at.
        self.security = SecurityContext(listener, security_protocol)
        self.tls = tls
        self.handshaking = False
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._handshake_writer = False
        #: TLS: plaintext being written; retried as it is after SSLWantWriteError, as OpenSSL requires.
        self._tls_chunk: memoryview | None = None
        self._tls_buffer: bytearray | None = None
        if tls is not None:
            sock = tls.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            self.handshaking = True
            self._handshake_timer = self.loop.call_later(tls.handshake_timeout_s, self._handshake_expired)
        self.sock = sock
        self.fd = sock.fileno()
        self.decoder = FrameDecoder(server.max_frame_size, RECEIVE_BUFFER)
        #: SASL listeners: the authentication state; None on PLAINTEXT and SSL.
        self.authenticator: SaslServerAuthenticator | None = None
        if sasl is not None:
            # Loaded only on a SASL listener: a PLAINTEXT broker's start does not pay for it.
            from broker.security.sasl_server import SaslServerAuthenticator

            self.authenticator = SaslServerAuthenticator(sasl)
        #: Authentication failed: nothing more is read; the answer and close come after the delay.
        self.auth_failed = False
        self._auth_failure_timer: asyncio.TimerHandle | None = None
        if sasl is not None:
            # Kafka reads at most sasl.server.max.receive.size per frame before authentication.
            self.decoder.max_frame_size = sasl.max_receive_size
        self.slots: deque[Slot] = deque()
        self.out: deque[Any] = deque()
        self.out_offset = 0  # bytes of out[0] already sent
        self.pending_bytes = 0
        self.closed = False
        #: Bad input was read: answer what came before it, then close (see _close_after_pending).
        self.closing = False
        self.reading = False
        self.writing = False
        self.last_active = time.monotonic()
        #: True while the frames of one read are handled: their responses leave in one write.
        self.in_read = False
        #: A write of responses completed outside a read is scheduled (see ``_pump``).
        self._write_scheduled = False
        self.tasks: set[asyncio.Task[Any]] = set()
        #: The client's software name and version (ApiVersions v3+), for the request log.
        self.client_software = (UNKNOWN_SOFTWARE, UNKNOWN_SOFTWARE)
        self._connection_id: str | None = None
        #: Size of the request being dispatched (client quotas count a produce's bytes).
        self.frame_size = 0
        #: Client quotas: the timer that ends the connection's mute (KIP-219), None when not muted.
        self._throttle_timer: asyncio.TimerHandle | None = None
        #: Frames read before a mute began, handled when it ends.
        self._held: deque[bytearray] = deque()
        self._resume_reading()

    # -- reading -------------------------------------------------------------------------------

    def _resume_reading(self) -> None:
        if (
            not self.reading
            and not self.closed
            and not self.closing
            and not self.auth_failed
            and self._throttle_timer is None
        ):
            self.loop.add_reader(self.fd, self._on_readable)
            self.reading = True
            if self.tls is not None and not self.handshaking and self._tls_pending():
                # Decrypted bytes wait inside OpenSSL: the socket will not signal them.
                self.loop.call_soon(self._on_readable)

    def _tls_pending(self) -> int:
        assert isinstance(self.sock, ssl.SSLSocket)
        try:
            return self.sock.pending()
        except (OSError, ValueError):
            return 0

    def _pause_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False

    def throttle(self, delay_ms: int) -> None:
        """Read nothing from this client for ``delay_ms`` (KIP-219: its response, which carries
        the throttle time, is sent at once; the mute enforces the wait on clients that ignore
        it). A longer mute replaces a shorter one; never a loop-blocking wait."""
        if self.closed or delay_ms <= 0:
            return
        timer = self._throttle_timer
        ends = self.loop.time() + delay_ms / 1000.0
        if timer is not None:
            if timer.when() >= ends:
                return
            timer.cancel()
        self._pause_reading()
        self._throttle_timer = self.loop.call_at(ends, self._end_throttle)

    @property
    def throttled(self) -> bool:
        return self._throttle_timer is not None

    def _end_throttle(self) -> None:
        self._throttle_timer = None
        if self._held:
            held, self._held = list(self._held), deque()
            self._handle_frames(held)
            if self._throttle_timer is not None or self.closed or self.closing:
                return
        if len(self.slots) < MAX_IN_FLIGHT // 2 and self.pending_bytes < MAX_PENDING_BYTES // 2:
            self._resume_reading()

    def _on_readable(self) -> None:
        if self.tls is not None:
            self._on_tls_readable()
            return
        try:
            n = self.sock.recv_into(self.decoder.get_buffer())
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"read failed: {exc}")
            return
        if n == 0:
            self.close(None)
            return
        self._received(n)

    def _on_tls_readable(self) -> None:
        if self.closed or not self.reading:
            return
        if self.handshaking and not self._handshake():
            return
        sock = self.sock
        while True:
            try:
                n = sock.recv_into(self.decoder.get_buffer())
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                return
            except ssl.SSLError as exc:
                self.close(f"TLS error: {exc.reason or exc}")
                return
            except OSError as exc:
                self.close(f"read failed: {exc}")
                return
            if n == 0:
                self.close(None)
                return
            self._received(n)
            if self.closed or self.closing or not self.reading or not self._tls_pending():
                return

    # -- TLS handshake ---------------------------------------------------------------------------

    def _handshake(self) -> bool:
        """One step of the server handshake; True once it is complete and the principal known."""
        assert isinstance(self.sock, ssl.SSLSocket) and self.tls is not None
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want_handshake_write(False)
            return False
        except ssl.SSLWantWriteError:
            self._want_handshake_write(True)
            return False
        except ssl.SSLError as exc:
            # As Kafka, at INFO: a peer's failure is no fault of the broker's.
            self._handshake_failed(f"SSL handshake failed: {exc.reason or exc}")
            return False
        except OSError as exc:
            self._handshake_failed(f"SSL handshake failed: {exc}")
            return False
        self.handshaking = False
        self._want_handshake_write(False)
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        principal = self._certificate_principal()
        if principal is None:
            return False
        self.security = SecurityContext(self.listener, self.security.security_protocol, principal)
        return True

    def _certificate_principal(self) -> KafkaPrincipal | None:
        """The mapped DN of a verified client certificate, ANONYMOUS without one; None (and the
        connection closed) when no mapping rule applies, as Kafka fails the authentication."""
        assert isinstance(self.sock, ssl.SSLSocket) and self.tls is not None
        cert = self.sock.getpeercert() if self.tls.context.verify_mode != ssl.CERT_NONE else None
        if not cert:
            return self.security.principal
        # Imported here: its rule regexes cost a plaintext broker's first start ~2 ms for nothing.
        from broker.security.ssl_principal import NoMatchingRuleError, subject_dn

        dn = subject_dn(cert.get("subject", ()))  # type: ignore[arg-type]
        try:
            return KafkaPrincipal(USER_TYPE, self.tls.principal_name(dn))
        except NoMatchingRuleError as exc:
            self._handshake_failed(f"Failed authentication: {exc}")
            return None

    def _want_handshake_write(self, wanted: bool) -> None:
        if wanted and not self._handshake_writer:
            self.loop.add_writer(self.fd, self._on_handshake_writable)
            self._handshake_writer = True
        elif not wanted and self._handshake_writer:
            self.loop.remove_writer(self.fd)
            self._handshake_writer = False

    def _on_handshake_writable(self) -> None:
        self._want_handshake_write(False)
        self._on_tls_readable()

    def _handshake_failed(self, reason: str) -> None:
        log.info("closing connection from %s on %s: %s", self.peer, self.listener, reason)
        self.close(None)

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.handshaking and not self.closed:
            self._handshake_failed(
                f"no TLS handshake within {self.tls.handshake_timeout_s if self.tls else 0:g} s"
            )

    # -- requests --------------------------------------------------------------------------------

    def _received(self, n: int) -> None:
        self.last_active = time.monotonic()
        bad_size: FrameTooLargeError | None = None
        try:
            frames = self.decoder.buffer_updated(n)
        except FrameTooLargeError as exc:
            frames, bad_size = exc.frames, exc
        if self._held:
            self._held.extend(frames)  # earlier frames wait out a throttle: keep the order
            frames = []
        self._handle_frames(frames)
        if self.closed or self.closing:
            return
        if bad_size is not None and not self.closed:
            if self.authenticator is not None and not self.authenticator.complete:
                self._fail_authentication("Failing SASL authentication due to invalid receive size", None)
                return
            self._close_after_pending(str(bad_size))
            return
        if len(self.slots) >= MAX_IN_FLIGHT or self.pending_bytes >= MAX_PENDING_BYTES:
            self._pause_reading()

    def _handle_frames(self, frames: list[bytearray]) -> None:
        # Responses completed while these frames are handled leave in one write at the end.
        self.in_read = True
        try:
            for index, frame in enumerate(frames):
                if self.closed or self.closing:
                    break
                if self._throttle_timer is not None:
                    # Muted by a quota: what was already read waits too (Kafka reads one request
                    # at a time, so it would not have read these yet).
                    self._held.extend(frames[index:])
                    break
                self._handle_frame(frame)
        finally:
            self.in_read = False
            if self.out and not self.writing and not self.closed:
                self._write()
            if self.closing:
                self._finish_closing()

    def _handle_frame(self, frame: bytearray) -> None:
        if self.authenticator is not None and self._sasl_frame(frame):
            return
        view = memoryview(frame)
        self.frame_size = len(frame) + 4  # Kafka's request.sizeInBytes counts the length prefix
        try:
            # Kafka ignores bytes after a request body, and clients send some (librdkafka 2.16).
            request = papi.decode_request(view, allow_trailing=True)
        except UnsupportedVersionError:
            if self._answer_unsupported_api_versions(view):
                return
            head = _safe_peek(view)
            self._close_after_pending(
                f"unsupported version {head.api_version if head else '?'} of api "
                f"{head.api_key if head else '?'}"
            )
            return
        except UnknownApiError as exc:
            self._close_after_pending(str(exc))
            return
        except DecodeError as exc:
            self._close_after_pending(f"malformed request: {exc}")
            return
        self.server.dispatch(self, request)

    # -- SASL ------------------------------------------------------------------------------------

    def _sasl_frame(self, frame: bytearray) -> bool:
        """A frame on a SASL listener: True when authentication took it (Kafka's authenticator
        sees every frame until the channel is ready, and again during re-authentication)."""
        from broker.security.sasl_server import (
            AUTHENTICATE,
            REAUTH_BAD_MECHANISM,
            IllegalSaslState,
            SaslFailure,
        )

        auth = self.authenticator
        assert auth is not None
        if self.auth_failed:
            return True
        if auth.complete:
            head = _safe_peek(memoryview(frame))
            if head is not None and head.api_key == SASL_HANDSHAKE_KEY and auth.supports_reauth:
                auth.begin_reauthentication()  # KIP-368: the client re-authenticates
            elif auth.session_expired():
                self.close("session expired without re-authentication (connections.max.reauth.ms)")
                return True
            else:
                return False
        if auth.expects_raw_token:
            # SaslHandshake v0: the tokens are frames of their own, with no request header.
            try:
                reply, _ = auth.authenticate(bytes(frame))
            except SaslFailure as exc:
                self._fail_authentication(exc.client_message, None)
                return True
            self._send_raw(reply)
            self._maybe_authenticated()
            return True
        view = memoryview(frame)
        try:
            request = papi.decode_request(view, allow_trailing=True)
        except (DecodeError, UnknownApiError, UnsupportedVersionError) as exc:
            if self._answer_unsupported_api_versions(view):
                return True
            self._fail_authentication(f"invalid SASL request: {exc}", None)
            return True
        api_key, version = request.api.api_key, request.version
        correlation_id = request.header.correlation_id
        if auth.state == AUTHENTICATE and api_key != SASL_AUTHENTICATE_KEY:
            message = f"Unexpected Kafka request of type {request.api.name} during SASL authentication."
            reply = self._error_reply(request, ErrorCode.ILLEGAL_SASL_STATE, message)
            self._fail_authentication(message, reply)
            return True
        if api_key == SASL_AUTHENTICATE_KEY and auth.state in (AUTHENTICATE, REAUTH_BAD_MECHANISM):
            self._sasl_authenticate(request.body.auth_bytes, version, correlation_id)
            return True
        try:
            auth.check_request(
                request.api.name, api_key == papi.API_VERSIONS_KEY, api_key == SASL_HANDSHAKE_KEY
            )
        except IllegalSaslState as exc:
            self._fail_authentication(exc.client_message, None)
            return True
        if api_key == papi.API_VERSIONS_KEY:
            self.server.dispatch(self, request)
            auth.api_versions_answered()
            return True
        from protocol.messages.sasl_handshake_response import SaslHandshakeResponse

        mechanism = request.body.mechanism
        enabled = list(auth.listener.mechanisms)
        if not auth.handshake(version, mechanism):
            # UNSUPPORTED_SASL_MECHANISM with the enabled mechanisms, then the close.
            unsupported = SaslHandshakeResponse(ErrorCode.UNSUPPORTED_SASL_MECHANISM, enabled)
            reply = papi.encode_response_parts(api_key, version, correlation_id, unsupported)
            self._fail_authentication(f"Unsupported SASL mechanism {mechanism}", reply)
            return True
        self._send_now(api_key, version, correlation_id, SaslHandshakeResponse(ErrorCode.NONE, enabled))
        return True

    def _sasl_authenticate(self, token: bytes, version: int, correlation_id: int) -> None:
        from broker.security.sasl_server import SaslFailure
        from protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse

        auth = self.authenticator
        assert auth is not None
        try:
            reply, lifetime_ms = auth.authenticate(token, version)
        except SaslFailure as exc:
            body = SaslAuthenticateResponse(ErrorCode.SASL_AUTHENTICATION_FAILED, exc.client_message)
            parts = papi.encode_response_parts(SASL_AUTHENTICATE_KEY, version, correlation_id, body)
            self._fail_authentication(exc.client_message, parts)
            return
        body = SaslAuthenticateResponse(ErrorCode.NONE, None, reply, lifetime_ms)
        self._send_now(SASL_AUTHENTICATE_KEY, version, correlation_id, body)
        self._maybe_authenticated()

    def _maybe_authenticated(self) -> None:
        auth = self.authenticator
        assert auth is not None
        if auth.complete and auth.principal is not None:
            self.security = SecurityContext(self.listener, self.security.security_protocol, auth.principal)
            self.decoder.max_frame_size = self.server.max_frame_size
            log.debug("%s authenticated on %s as %s", self.peer, self.listener, auth.principal)

    def _error_reply(self, request: papi.Request, code: int, message: str) -> list[Any] | None:
        from protocol.error_responses import error_response

        try:
            body = error_response(request.api.api_key, request.version, request.body, code, message)
            if body is None:
                return None
            return papi.encode_response_parts(
                request.api.api_key, request.version, request.header.correlation_id, body
            )
        except Exception:
            return None

    def _send_now(self, api_key: int, version: int, correlation_id: int, body: Message) -> None:
        """An authentication answer: in order with the other responses, not timed nor logged
        (Kafka's request log never sees the authentication exchange)."""
        slot = Slot(api_key, version, correlation_id)
        self.slots.append(slot)
        self.complete(slot, body)

    def _send_raw(self, token: bytes) -> None:
        slot = Slot(-1, 0, 0)
        slot.parts = [frame_of(token)]
        slot.done = True
        self.slots.append(slot)
        self._pump()

    def _fail_authentication(self, reason: str, reply: list[Any] | None) -> None:
        """Kafka's delayed close: stop reading now; after connection.failed.authentication.delay.ms
        send the failure answer (if any) and close, so failed clients cannot retry in a tight loop."""
        log.info("Failed authentication with %s on %s (%s)", self.peer, self.listener, reason)
        self.auth_failed = True
        self._pause_reading()
        auth = self.authenticator
        delay_ms = auth.listener.failed_authentication_delay_ms if auth is not None else 0
        if delay_ms > 0:
            self._auth_failure_timer = self.loop.call_later(delay_ms / 1000.0, self._close_failed, reply)
        else:
            self._close_failed(reply)

    def _close_failed(self, reply: list[Any] | None) -> None:
        self._auth_failure_timer = None
        if self.closed:
            return
        if reply is not None:
            slot = Slot(-1, 0, 0)
            slot.parts = reply
            slot.done = True
            self.slots.append(slot)
        self.closing = True
        self._pump()
        if self.out and not self.writing and not self.in_read:
            self._write()
        self._finish_closing()

    def _close_after_pending(self, reason: str) -> None:
        """Bad input: read nothing more, answer the requests that came before it, then close.

        Kafka reads one request at a time per connection, so it answers everything before the
        bad bytes (even a long poll) before it reads them and closes the connection."""
        log.warning("closing connection from %s: %s", self.peer, reason)
        self.closing = True
        self._pause_reading()
        self._finish_closing()

    def _finish_closing(self) -> None:
        if self.closing and not self.closed and not self.slots and not self.out and self._tls_chunk is None:
            self.close(None)

    def _answer_unsupported_api_versions(self, view: memoryview) -> bool:
        """ApiVersions in a version we do not know: answer v0 with UNSUPPORTED_VERSION and our
        ranges, so the client can retry with one we do (Kafka's behaviour)."""
        head = _safe_peek(view)
        if head is None or head.api_key != papi.API_VERSIONS_KEY:
            return False
        slot = Slot(head.api_key, 0, head.correlation_id)
        self.slots.append(slot)
        self.complete(slot, self.server.unsupported_api_versions_response())
        return True

    # -- responses -----------------------------------------------------------------------------

    def new_slot(self, api_key: int, version: int, correlation_id: int, request: Any = None) -> Slot:
        # The read's timestamp (taken for the idle reaper anyway) is the request's arrival.
        slot = Slot(api_key, version, correlation_id, request, self.last_active)
        self.slots.append(slot)
        return slot

    def complete(self, slot: Slot, body: Message | None, write_now: bool = False) -> None:
        """Fill a slot; ``None`` means the request gets no response (the slot is dropped).
        ``write_now``: what it lets go is written in this call, not at the end of the turn."""
        if self.closed:
            _close_regions_of(body)
            return
        throttle_ms = 0
        if slot.quota is not None:
            body, throttle_ms = self._apply_quotas(slot, body)
        if body is not None and slot.parts is None:
            try:
                slot.parts = papi.encode_response_parts(slot.api_key, slot.version, slot.correlation_id, body)
            except Exception as exc:
                log.exception(
                    "cannot encode the response to api %d v%d for %s", slot.api_key, slot.version, self.peer
                )
                _close_regions_of(body)
                self.fail(slot, exc)
                return
        request, slot.request = slot.request, None
        slot.done = True
        if slot.log_entry is not None:
            slot.log_entry.completed(body)
        if slot.received:
            # Kafka's TotalTimeMs ends when the response is sent; here, when it is queued.
            elapsed_ms = (time.monotonic() - slot.received) * 1000.0
            stats = self.server.stats
            stats.request_done(slot.api_key, slot.version, elapsed_ms)
            if slot.api_key == FETCH_KEY and request is not None:
                stats.request_done(_fetch_kind(request, slot.version), slot.version, elapsed_ms)
        self._pump(write_now)
        if throttle_ms:
            self.throttle(throttle_ms)

    def _apply_quotas(self, slot: Slot, body: Message | None) -> tuple[Message | None, int]:
        """Client quotas: record what the request costs and set the response's throttle time
        (a consumer fetch over its quota is answered empty); (response, mute time in ms)."""
        quotas = self.server.client_quotas
        ticket, slot.quota = slot.quota, None
        if quotas is None:
            return body, 0
        if slot.api_key != FETCH_KEY:
            # Recorded, and the connection muted, when the handler returned (Server.dispatch).
            if ticket.throttle_ms and body is not None and hasattr(body, "throttle_time_ms"):
                body.throttle_time_ms = max(body.throttle_time_ms, ticket.throttle_ms)
            return body, 0
        if body is None or slot.request is None or _fetch_kind(slot.request, slot.version) != FETCH_CONSUMER:
            return body, 0  # a follower's fetch is exempt
        started = time.perf_counter()
        parts = papi.encode_response_parts(slot.api_key, slot.version, slot.correlation_id, body)
        ticket.loop_seconds += time.perf_counter() - started
        size = sum(p.length if isinstance(p, FileSlice) else len(p) for p in parts)
        throttle_ms = quotas.fetch_throttle(ticket, size)
        if not throttle_ms:
            slot.parts = parts
            return body, 0
        for piece in parts:
            if isinstance(piece, FileSlice):
                piece.close()
        return throttled_fetch_response(body, throttle_ms), throttle_ms

    @property
    def connection_id(self) -> str:
        """Kafka's connection id, ``local host:port-peer host:port-index`` (index 0: Brook has no
        processors to number connections by)."""
        if self._connection_id is None:
            try:
                local = self.sock.getsockname()
                here = f"{local[0]}:{local[1]}" if isinstance(local, tuple) else str(local)
            except OSError:
                here = "unknown"
            self._connection_id = f"{here}-{self.peer}-0"
        return self._connection_id

    def fail(self, slot: Slot, exc: BaseException) -> None:
        """A handler raised or its response cannot be encoded: answer with the api's error
        response built from the request (Kafka's ``getErrorResponse``). When there is none to
        send (a produce with acks=0, as Kafka, or an error response that fails in turn), the
        requests before it are answered and the connection closes."""
        # Imported at the first failure: it loads the response modules of every served api.
        from protocol.error_responses import error_of, error_response

        request, slot.request = slot.request, None
        body = None
        if request is not None:
            code, message = error_of(exc)
            try:
                body = error_response(slot.api_key, slot.version, request, code, message)
            except Exception:
                log.exception("cannot build the error response to api %d v%d", slot.api_key, slot.version)
        if body is None:
            slot.done = True
            self._close_after_pending(f"api {slot.api_key} v{slot.version} failed with no response to send")
            self._pump()
            return
        self.complete(slot, body)

    def track(self, slot: Slot, pending: Awaitable[Message | None]) -> None:
        """Complete ``slot`` when an asynchronous handler finishes (a :class:`Reply` in the call
        that answers it, written at once)."""
        task = asyncio.ensure_future(pending)
        self.tasks.add(task)
        if isinstance(task, Reply):
            task.when_answered(lambda body: self.complete(slot, body, write_now=True))

        def finished(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if t.cancelled() or slot.done:
                return
            exc = t.exception()
            if isinstance(exc, ApiError):
                # Refused as a whole (an authorization failure...): its error response, no traceback.
                log.debug("api %d v%d from %s refused: %s", slot.api_key, slot.version, self.peer, exc)
                self.fail(slot, exc)
                return
            if exc is not None:
                log.error(
                    "api %d v%d from %s failed; answering with its error response",
                    slot.api_key,
                    slot.version,
                    self.peer,
                    exc_info=exc,
                )
                self.fail(slot, exc)
                return
            self.complete(slot, t.result())

        task.add_done_callback(finished)

    def _pump(self, write_now: bool = False) -> None:
        slots = self.slots
        moved = False
        while slots and slots[0].done:
            slot = slots.popleft()
            if slot.log_entry is not None:
                slot.log_entry.emit()
            if slot.parts is not None:
                for piece in slot.parts:
                    self.out.append(piece)
                    self.pending_bytes += piece.length if isinstance(piece, FileSlice) else len(piece)
                moved = True
        if moved and not self.writing and not self.in_read:
            if self.closing or write_now:
                self._write()
            elif not self._write_scheduled:
                # Completed by an event (a high-watermark move answers every acks=all produce
                # it passed, each in its own callback, all in this turn of the loop): one write
                # at the end of the turn instead of a sendmsg per response.
                self._write_scheduled = True
                self.loop.call_soon(self._scheduled_write)
        if (
            not self.reading
            and len(slots) < MAX_IN_FLIGHT // 2
            and self.pending_bytes < MAX_PENDING_BYTES // 2
        ):
            self._resume_reading()
        if self.closing:
            self._finish_closing()

    # -- writing -------------------------------------------------------------------------------

    def _scheduled_write(self) -> None:
        self._write_scheduled = False
        if self.out and not self.writing and not self.closed:
            self._write()
            if self.closing:
                self._finish_closing()

    def _write(self) -> None:
        if self.tls is not None:
            self._write_tls()
            return
        out = self.out
        sock = self.sock
        try:
            while out:
                head = out[0]
                if isinstance(head, FileSlice):
                    remaining = head.length - self.out_offset
                    sent = os.sendfile(self.fd, head.fd, head.position + self.out_offset, remaining)
                    if sent == 0:
                        # The segment was truncated under us: the frame can no longer be completed.
                        self.close("record data shrank while it was being sent")
                        return
                    self.pending_bytes -= sent
                    if sent < remaining:
                        self.out_offset += sent
                        break
                    out.popleft()
                    head.close()
                    self.out_offset = 0
                    continue
                buffers: list[Any] = []
                for piece in out:
                    if isinstance(piece, FileSlice) or len(buffers) >= _IOV_MAX:
                        break
                    buffers.append(piece)
                if self.out_offset:
                    buffers[0] = memoryview(buffers[0])[self.out_offset :]
                sent = sock.sendmsg(buffers)
                self.pending_bytes -= sent
                total = sent + self.out_offset
                while out and not isinstance(out[0], FileSlice):
                    size = len(out[0])
                    if total < size:
                        break
                    total -= size
                    out.popleft()
                self.out_offset = total
                if total:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self.close(f"write failed: {exc}")
            return
        if out:
            if not self.writing:
                self.loop.add_writer(self.fd, self._write)
                self.writing = True
        elif self.writing:
            self.loop.remove_writer(self.fd)
            self.writing = False
            if not self.reading:
                self._pump()

    def _write_tls(self) -> None:
        sock = self.sock
        try:
            while True:
                chunk = self._tls_chunk
                if chunk is None:
                    chunk = self._next_tls_chunk()
                    if chunk is None:
                        break
                    self._tls_chunk = chunk
                sent = sock.send(chunk)
                self._tls_chunk = chunk[sent:] if sent < len(chunk) else None
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            pass
        except _RecordDataShrank:
            self.close("record data shrank while it was being sent")
            return
        except ssl.SSLError as exc:
            self.close(f"TLS write failed: {exc.reason or exc}")
            return
        except OSError as exc:
            self.close(f"write failed: {exc}")
            return
        if self._tls_chunk is not None or self.out:
            if not self.writing:
                self.loop.add_writer(self.fd, self._write)
                self.writing = True
            return
        self._tls_buffer = None  # idle connections keep no 256 KiB buffer
        if self.writing:
            self.loop.remove_writer(self.fd)
            self.writing = False
            if not self.reading:
                self._pump()

    def _next_tls_chunk(self) -> memoryview | None:
        """The next plaintext to encrypt: one large response piece as it is, or pieces and file
        regions gathered into one buffer (file data read straight into it: its one copy)."""
        out = self.out
        if not out:
            return None
        head = out[0]
        if not isinstance(head, FileSlice) and len(head) >= TLS_CHUNK:
            out.popleft()
            self.pending_bytes -= len(head)
            return memoryview(head)
        size = min(TLS_CHUNK, max(self.pending_bytes, 1))
        if not isinstance(head, FileSlice):
            size = max(size, len(head))  # never an empty chunk, whatever the accounting says
        if self._tls_buffer is None or len(self._tls_buffer) < size:
            self._tls_buffer = bytearray(size)
        view = memoryview(self._tls_buffer)
        room = len(view)
        filled = 0
        while out and filled < room:
            head = out[0]
            if isinstance(head, FileSlice):
                want = min(head.length - self.out_offset, room - filled)
                got = os.preadv(head.fd, [view[filled : filled + want]], head.position + self.out_offset)
                if got <= 0:
                    raise _RecordDataShrank
                filled += got
                self.out_offset += got
                self.pending_bytes -= got
                if self.out_offset == head.length:
                    out.popleft()
                    head.close()
                    self.out_offset = 0
                continue
            length = len(head)
            if length > room - filled:
                break
            view[filled : filled + length] = head
            filled += length
            self.pending_bytes -= length
            out.popleft()
        return view[:filled]

    @property
    def idle(self) -> bool:
        return not self.slots and not self.out and not self.tasks and self._tls_chunk is None

    # -- closing -------------------------------------------------------------------------------

    def close(self, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        if reason:
            log.info("closing connection from %s: %s", self.peer, reason)
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False
        if self.writing or self._handshake_writer:
            self.loop.remove_writer(self.fd)
            self.writing = self._handshake_writer = False
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        if self._auth_failure_timer is not None:
            self._auth_failure_timer.cancel()
            self._auth_failure_timer = None
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
            self._throttle_timer = None
        self._held.clear()
        self._tls_chunk = None
        for piece in self.out:
            if isinstance(piece, FileSlice):
                piece.close()
        self.out.clear()
        for slot in self.slots:
            for piece in slot.parts or ():
                if isinstance(piece, FileSlice):
                    piece.close()
        self.slots.clear()
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.forget(self)


def _fetch_kind(request: Any, version: int) -> int:
    """Kafka's RequestMetrics name of a fetch: FetchFollower with a replica id, else FetchConsumer."""
    replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
    return FETCH_FOLLOWER if replica_id >= 0 else FETCH_CONSUMER


def throttled_fetch_response(body: Any, throttle_ms: int) -> Any:
    """Kafka's getThrottledResponse: no partitions, the throttle time, the session kept."""
    return type(body)(throttle_time_ms=throttle_ms, error_code=0, session_id=body.session_id, responses=[])


def _safe_peek(view: memoryview) -> papi.Peek | None:
    try:
        return papi.peek(view)
    except DecodeError:
        return None


def _close_regions_of(body: Message | None) -> None:
    """Release file slices held by a response that will never be sent."""
    if body is None:
        return
    for piece in _walk(body):
        piece.close()


def _walk(obj: Any) -> list[FileSlice]:
    found: list[FileSlice] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, FileSlice):
            found.append(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, name) for name in item.__dataclass_fields__)
    return found
