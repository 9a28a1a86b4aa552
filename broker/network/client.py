"""Brook's client side of the wire: connections from this broker to other brokers.

The controller sends LeaderAndIsr / UpdateMetadata / StopReplica through it, brokers send
AlterPartition and ControlledShutdown to the controller, and replica fetchers send Fetch to
leaders. It plays the part of Kafka's ``NetworkClient`` and ``ClusterConnectionStates``:

- :class:`BrokerConnection` is one socket, an ``asyncio.BufferedProtocol`` on the broker's loop.
  Requests are pipelined; responses are matched to them by correlation id, strictly in order as
  Kafka's ``InFlightRequests`` (a response out of order, or for no request, closes the
  connection). Each request has a deadline (``request.timeout.ms``); an expired one closes the
  connection as Kafka does, since the rest of the stream can no longer be trusted. Response frames
  are bounded and read by :class:`~protocol.framing.FrameDecoder`, which reads a large frame (a
  fetch response of MiBs) straight into a buffer of its own: the records then decode as
  memoryviews into it, with no further copy. Bad bytes never escape as anything but a typed
  :class:`ClientError`: the connection is closed and the reason logged.
- :class:`NetworkClient` keeps one connection per node id, with Kafka's reconnect backoff
  (``reconnect.backoff.ms`` doubling to ``reconnect.backoff.max.ms``, 20 % jitter) and connection
  setup timeout (``socket.connection.setup.timeout.ms`` doubling to its ``.max.ms``).

On connect the client asks ApiVersions v3 (falling back to what the broker lists, or v0, on
UNSUPPORTED_VERSION, as Kafka's clients) and then sends each request in the highest version both
sides support within the caller's bound. Kafka's controller and replica fetchers skip that
discovery (their versions follow ``inter.broker.protocol.version``): ``discover_versions=False``
does the same, and requests then go in their pinned version or the highest Brook knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import ssl
import struct
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.exceptions import DecodeError, FrameTooLargeError
from protocol.framing import DEFAULT_MAX_FRAME, FrameDecoder
from protocol.message import Message
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse
from protocol.messages.request_header import RequestHeader
from protocol.messages.response_header import ResponseHeader
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.security.sasl_client import SaslClientSettings

log = logging.getLogger(__name__)

PRODUCE_KEY = 0
API_VERSIONS_KEY = 18
#: The ApiVersions version asked first: v3 is the first flexible one, with the software name.
API_VERSIONS_FIRST = 3
_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")
_RECEIVE_BUFFER = 64 * 1024


# -- errors ----------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error of the inter-broker client."""


class ConnectionFailure(ClientError):
    """The request may not have been answered because of the connection: safe to retry on a new one
    (Kafka's RequestSendThread resends these)."""


class ConnectError(ConnectionFailure):
    """The connection could not be set up (refused, unreachable, ApiVersions failed)."""


class ConnectTimeoutError(ConnectError):
    """No connection within the setup timeout (``socket.connection.setup.timeout.ms``)."""


class DisconnectedError(ConnectionFailure):
    """The connection closed (by either side, or after an error) before the response arrived."""


class RequestTimeoutError(ConnectionFailure):
    """No response within the request timeout (``request.timeout.ms``); the connection is closed."""


class BadResponseError(ConnectionFailure):
    """A response that cannot be read: bad bytes, too large, out of order or unknown correlation id.
    The connection is closed."""


class ClientClosedError(ClientError):
    """The :class:`NetworkClient` was closed; nothing more can be sent through it."""


class UnsupportedApiVersionError(ClientError):
    """No version of the api that both sides support within the caller's bound. Not retriable."""


# -- configuration and backoff ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Settings of the client, named after the Kafka keys they stand for."""

    client_id: str = "brook"
    #: ``socket.connection.setup.timeout.ms`` and ``.max.ms``.
    connect_timeout_ms: int = 10_000
    connect_timeout_max_ms: int = 30_000
    #: ``request.timeout.ms`` (the controller's ``controller.socket.timeout.ms`` is also 30 s).
    request_timeout_ms: int = 30_000
    #: ``reconnect.backoff.ms`` and ``reconnect.backoff.max.ms``.
    reconnect_backoff_ms: int = 50
    reconnect_backoff_max_ms: int = 1_000
    #: Largest response frame accepted; a larger size prefix closes the connection.
    max_response_bytes: int = DEFAULT_MAX_FRAME
    #: Ask ApiVersions on connect; False sends pinned versions or Brook's highest, as Kafka's
    #: controller channel and replica fetchers do.
    discover_versions: bool = True
    software_name: str = "brook"
    software_version: str = "0.1.0"
    #: TLS towards the other brokers' inter-broker listener (``security.inter.broker.protocol``
    #: or ``inter.broker.listener.name`` naming an SSL listener); None for PLAINTEXT.
    ssl_context: ssl.SSLContext | None = None
    #: SASL towards a SASL inter-broker listener (``sasl.mechanism.inter.broker.protocol`` with
    #: the listener's JAAS username and password); None otherwise.
    sasl: SaslClientSettings | None = None
    #: Requests sent in one turn of the loop go out in one write at its end (True), or each at
    #: once (False: a replica fetcher has one request in flight, and its next fetch is on the
    #: replication path; a turn later is the rest of the loop's work later).
    cork: bool = True

    @classmethod
    def for_controller(cls, config: BrokerConfig) -> ClientConfig:
        """The controller's channels to brokers, as Kafka's ControllerChannelManager: client id
        the broker id, ``request.timeout.ms``, the setup timeouts; Kafka's NetworkClient there has
        no reconnect backoff but its RequestSendThread pauses 100 ms after a failure, hence a
        fixed 100 ms. Versions are discovered (Kafka pins them by inter.broker.protocol.version;
        asking keeps a controller from sending a version a Brook broker's handler lacks)."""
        return cls(
            ssl_context=inter_broker_ssl_context(config),
            sasl=inter_broker_sasl_settings(config),
            client_id=str(config.get("broker.id")),
            connect_timeout_ms=_int(config, "socket.connection.setup.timeout.ms"),
            connect_timeout_max_ms=_int(config, "socket.connection.setup.timeout.max.ms"),
            request_timeout_ms=_int(config, "request.timeout.ms"),
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=100,
        )

    @classmethod
    def for_replica_fetcher(cls, config: BrokerConfig, fetcher_id: int = 0) -> ClientConfig:
        """A follower's connection to a leader, as Kafka's ReplicaFetcherBlockingSend: client id
        ``broker-<id>-fetcher-<n>``, ``replica.socket.timeout.ms``; the fetcher itself backs off
        ``replica.fetch.backoff.ms`` after an error, so reconnects here use that too."""
        backoff = _int(config, "replica.fetch.backoff.ms")
        return cls(
            ssl_context=inter_broker_ssl_context(config),
            sasl=inter_broker_sasl_settings(config),
            client_id=f"broker-{config.get('broker.id')}-fetcher-{fetcher_id}",
            connect_timeout_ms=_int(config, "socket.connection.setup.timeout.ms"),
            connect_timeout_max_ms=_int(config, "socket.connection.setup.timeout.max.ms"),
            request_timeout_ms=_int(config, "replica.socket.timeout.ms"),
            reconnect_backoff_ms=backoff,
            reconnect_backoff_max_ms=backoff,
            cork=False,
        )


_SSL_CONTEXTS: weakref.WeakKeyDictionary[BrokerConfig, ssl.SSLContext | None] = weakref.WeakKeyDictionary()


def inter_broker_ssl_context(config: BrokerConfig) -> ssl.SSLContext | None:
    """The client TLS context for the inter-broker listener (None if it is PLAINTEXT), built
    once per configuration: the controller's channels and every fetcher share it."""
    if config not in _SSL_CONTEXTS:
        listener = config.inter_broker_listener_name
        protocol = config.listener_security_protocol_map.get(listener, listener)
        context = None
        if protocol in ("SSL", "SASL_SSL"):
            from broker.security.ssl_context import client_context

            context = client_context(config, listener)
        _SSL_CONTEXTS[config] = context
    return _SSL_CONTEXTS[config]


def forget_inter_broker_ssl_contexts() -> None:
    """Build the inter-broker TLS contexts anew at the next connection (the stores reloaded)."""
    _SSL_CONTEXTS.clear()


def inter_broker_sasl_settings(config: BrokerConfig) -> SaslClientSettings | None:
    """SASL settings for the inter-broker listener (None unless it is SASL_PLAINTEXT/SASL_SSL)."""
    listener = config.inter_broker_listener_name
    protocol = config.listener_security_protocol_map.get(listener, listener)
    if not protocol.startswith("SASL_"):
        return None
    from broker.security.sasl_client import inter_broker_sasl

    return inter_broker_sasl(config)


def _int(config: BrokerConfig, name: str) -> int:
    value = config.get(name)
    assert isinstance(value, int), (name, value)
    return value


class ExponentialBackoff:
    """Kafka's ``ExponentialBackoff``: ``initial * multiplier**attempts`` with random jitter,
    capped at ``maximum`` (the cap applies after the jitter, as Kafka)."""

    __slots__ = ("_exp_max", "_rng", "initial", "jitter", "maximum", "multiplier")

    def __init__(
        self,
        initial_ms: float,
        multiplier: float,
        maximum_ms: float,
        jitter: float,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial_ms
        self.multiplier = multiplier
        self.maximum = maximum_ms
        self.jitter = jitter
        self._exp_max = (
            math.log(maximum_ms / max(1.0, initial_ms)) / math.log(multiplier)
            if maximum_ms > initial_ms
            else 0.0
        )
        self._rng = rng or random.Random()

    def backoff_ms(self, attempts: int) -> float:
        if self._exp_max == 0:
            return self.initial
        term = self.initial * self.multiplier ** min(float(attempts), self._exp_max)
        factor = 1.0 if self.jitter < 1e-7 else self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(float(int(factor * term)), self.maximum)


# -- one connection --------------------------------------------------------------------------------


@dataclass(slots=True)
class Response:
    """A decoded response and the version it was sent in."""

    api_key: int
    version: int
    correlation_id: int
    body: Any


class _InFlight:
    __slots__ = ("api_key", "correlation_id", "deadline", "future", "version")

    def __init__(
        self,
        api_key: int,
        version: int,
        correlation_id: int,
        deadline: float,
        future: asyncio.Future[Response],
    ) -> None:
        self.api_key = api_key
        self.version = version
        self.correlation_id = correlation_id
        self.deadline = deadline
        self.future = future


_RESPONSE_TYPES: dict[int, type[Message]] = {}


def _response_type(api_key: int) -> type[Message]:
    cls = _RESPONSE_TYPES.get(api_key)
    if cls is None:
        cls = _RESPONSE_TYPES[api_key] = papi.api(api_key).response_type()
    return cls


def decode_response_body(frame: memoryview, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation id, body) of a response frame; :class:`DecodeError` on any bad byte.

    An ApiVersions response that does not decode in the version asked is read again as v0: a
    broker that does not know the version answers UNSUPPORTED_VERSION with a v0 body (Kafka's
    ``ApiVersionsResponse.parse``).
    """
    header, pos = ResponseHeader.decode_from(frame, papi.response_header_version(api_key, version), 0)
    try:
        body, _ = _response_type(api_key).decode_from(frame, version, pos)
    except DecodeError:
        if api_key != API_VERSIONS_KEY or version == 0:
            raise
        body, _ = ApiVersionsResponse.decode_from(frame, 0, pos)
    return header.correlation_id, body


class BrokerConnection(asyncio.BufferedProtocol):
    """One connection to a broker. Create it with :meth:`open`."""

    def __init__(self, node_id: int, config: ClientConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.node_id = node_id
        self.config = config
        self.loop = loop
        self.peer = "?"
        #: api key -> (min, max) the broker serves; None until (or without) ApiVersions.
        self.api_versions: dict[int, tuple[int, int]] | None = None
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder(config.max_response_bytes, _RECEIVE_BUFFER)
        self._in_flight: deque[_InFlight] = deque()
        self._next_correlation = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._closed: asyncio.Future[None] = loop.create_future()
        self._close_reason: ClientError | None = None
        self._close_listeners: list[Callable[[BrokerConnection], None]] = []
        self._out: list[bytes] = []  # frames not yet handed to the transport
        self._flush_scheduled = False

    # -- set-up ---------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, node_id: int, host: str, port: int, config: ClientConfig, connect_timeout_ms: float | None = None
    ) -> BrokerConnection:
        """Connect within the setup timeout, then exchange ApiVersions (unless disabled).

        Raises :class:`ConnectTimeoutError` or :class:`ConnectError`; never returns a closed
        connection.
        """
        loop = asyncio.get_running_loop()
        conn = cls(node_id, config, loop)
        timeout = (connect_timeout_ms if connect_timeout_ms is not None else config.connect_timeout_ms) / 1000
        try:
            async with asyncio.timeout(timeout):
                if config.ssl_context is None:
                    await loop.create_connection(lambda: conn, host, port)
                else:
                    await loop.create_connection(
                        lambda: conn, host, port, ssl=config.ssl_context, server_hostname=host
                    )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                f"no connection to broker {node_id} at {host}:{port} within {timeout * 1000:.0f} ms"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to broker {node_id} at {host}:{port}: {exc}") from exc
        if config.discover_versions:
            try:
                await conn._discover_versions()
            except ClientError as exc:
                conn.close(exc if isinstance(exc, ConnectionFailure) else None)
                raise ConnectError(f"ApiVersions with broker {node_id} at {conn.peer} failed: {exc}") from exc
            except BaseException:  # cancelled: the socket must not outlive the attempt
                conn.close()
                raise
        if config.sasl is not None:
            try:
                await conn._authenticate(config.sasl)
            except ClientError as exc:
                conn.close(exc if isinstance(exc, ConnectionFailure) else None)
                raise ConnectError(
                    f"SASL authentication with broker {node_id} at {conn.peer} failed: {exc}"
                ) from exc
            except BaseException:
                conn.close()
                raise
        return conn

    async def _authenticate(self, settings: SaslClientSettings) -> None:
        """SaslHandshake v1, then SaslAuthenticate until the mechanism is done (Kafka's
        SaslClientAuthenticator). A refusal is a ConnectError carrying the broker's message."""
        from broker.security.scram import ScramError
        from protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
        from protocol.messages.sasl_handshake_request import SaslHandshakeRequest

        handshake = (await self.request(SaslHandshakeRequest(settings.mechanism), version=1)).body
        if handshake.error_code != ErrorCode.NONE:
            raise ConnectError(
                f"SASL handshake failed with error code {handshake.error_code} "
                f"(enabled mechanisms: {', '.join(handshake.mechanisms)})"
            )
        exchange = settings.exchange()
        token: bytes | None = exchange.first()
        version = self.choose_version(SaslAuthenticateRequest.API_KEY, max_version=1)
        while token is not None:
            body = (await self.request(SaslAuthenticateRequest(token), version=version)).body
            if body.error_code != ErrorCode.NONE:
                raise ConnectError(f"SASL authentication failed: {body.error_message}")
            try:
                # SCRAM's client final runs PBKDF2 (milliseconds at 4096 iterations): not on the loop.
                token = await self.loop.run_in_executor(None, exchange.respond, body.auth_bytes)
            except ScramError as exc:
                raise ConnectError(f"SASL authentication failed: {exc}") from None

    async def _discover_versions(self) -> None:
        version = API_VERSIONS_FIRST
        request = ApiVersionsRequest(self.config.software_name, self.config.software_version)
        for _ in range(API_VERSIONS_FIRST + 1):  # the version strictly decreases: bounded
            response = await self.request(request, version=version)
            body: ApiVersionsResponse = response.body
            if body.error_code == ErrorCode.UNSUPPORTED_VERSION and version != 0:
                # The broker lists its own ApiVersions range; retry within it, or with v0.
                listed = [k.max_version for k in body.api_keys if k.api_key == API_VERSIONS_KEY]
                version = min(version - 1, listed[0]) if listed else 0
                version = max(0, version)
                continue
            if body.error_code != ErrorCode.NONE:
                raise ConnectError(f"ApiVersions v{version} answered error code {body.error_code}")
            self.api_versions = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
            return
        raise ConnectError("ApiVersions: no version accepted")

    # -- asyncio protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, hence no isinstance.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        try:
            frames = self._decoder.buffer_updated(nbytes)
        except FrameTooLargeError as exc:
            for frame in exc.frames:
                self._complete(frame)
            self._fail(BadResponseError(f"broker {self.node_id} at {self.peer}: response {exc}"))
            return
        for frame in frames:
            if self._close_reason is not None:
                return
            self._complete(frame)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost fails what is in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        reason = f": {exc}" if exc else ""
        self._fail(DisconnectedError(f"connection to broker {self.node_id} at {self.peer} lost{reason}"))
        if not self._closed.done():
            self._closed.set_result(None)

    # -- requests ---------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._close_reason is not None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def choose_version(self, api_key: int, version: int | None = None, max_version: int | None = None) -> int:
        """The version to send: ``version`` if both sides accept it, else the highest both support
        up to ``max_version``. :class:`UnsupportedApiVersionError` when there is none."""
        spec = papi.api(api_key)
        lo, hi = spec.min_version, spec.max_version
        if self.api_versions is not None:
            theirs = self.api_versions.get(api_key)
            if theirs is None:
                raise UnsupportedApiVersionError(f"broker {self.node_id} does not serve {spec.name}")
            lo, hi = max(lo, theirs[0]), min(hi, theirs[1])
        if version is not None:
            if not lo <= version <= hi:
                raise UnsupportedApiVersionError(
                    f"{spec.name} v{version} is outside v{lo}-v{hi} that both sides support"
                )
            return version
        if max_version is not None:
            hi = min(hi, max_version)
        if hi < lo:
            raise UnsupportedApiVersionError(
                f"no {spec.name} version both sides support up to v{max_version} (broker {self.node_id})"
            )
        return hi

    def send(
        self,
        request: Message,
        *,
        version: int | None = None,
        max_version: int | None = None,
        timeout_ms: float | None = None,
        expect_response: bool | None = None,
    ) -> asyncio.Future[Response] | None:
        """Write ``request`` and return the future of its response (None when no response comes:
        Produce with acks=0, or ``expect_response=False``).

        Raises at once :class:`DisconnectedError` when the connection is closed,
        :class:`UnsupportedApiVersionError`, or :class:`~protocol.exceptions.EncodeError`. The
        future fails with a :class:`ConnectionFailure` subclass.
        """
        if self._close_reason is not None or self._transport is None:
            raise DisconnectedError(f"connection to broker {self.node_id} is closed: {self._close_reason}")
        api_key = request.API_KEY
        chosen = self.choose_version(api_key, version, max_version)
        correlation_id = self._next_correlation
        self._next_correlation = (correlation_id + 1) & 0x7FFFFFFF
        parts: list[Any] = []
        RequestHeader(api_key, chosen, correlation_id, self.config.client_id).encode_into(
            parts.append, papi.request_header_version(api_key, chosen)
        )
        request.encode_into(parts.append, chosen)
        payload = b"".join(parts)
        if expect_response is None:
            expect_response = not (api_key == PRODUCE_KEY and getattr(request, "acks", 1) == 0)
        # Corked: requests sent in one loop turn go out in one write (one syscall when pipelined).
        self._out.append(_SIZE.pack(len(payload)))
        self._out.append(payload)
        if not self.config.cork:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        if not expect_response:
            return None
        timeout = self.config.request_timeout_ms if timeout_ms is None else timeout_ms
        deadline = self.loop.time() + timeout / 1000
        future: asyncio.Future[Response] = self.loop.create_future()
        self._in_flight.append(_InFlight(api_key, chosen, correlation_id, deadline, future))
        if deadline < self._timer_at:
            self._arm(deadline)
        return future

    async def request(
        self,
        request: Message,
        *,
        version: int | None = None,
        max_version: int | None = None,
        timeout_ms: float | None = None,
    ) -> Response:
        """Send and await the response (a Produce with acks=0 gets none: use :meth:`send`)."""
        future = self.send(
            request, version=version, max_version=max_version, timeout_ms=timeout_ms, expect_response=True
        )
        assert future is not None
        return await future

    def close(self, reason: ClientError | None = None) -> None:
        """Close the socket; what is in flight fails with ``reason`` or :class:`DisconnectedError`."""
        self._fail(reason or DisconnectedError(f"connection to broker {self.node_id} closed by this broker"))

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def add_close_listener(self, listener: Callable[[BrokerConnection], None]) -> None:
        """Called once, on the loop, when the connection closes (at once if it already has)."""
        if self._close_reason is not None:
            self.loop.call_soon(listener, self)
        else:
            self._close_listeners.append(listener)

    # -- internals --------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self._transport is not None and out:
            self._transport.writelines(out)

    def _complete(self, frame: bytearray) -> None:
        if len(frame) < 4:
            self._fail(BadResponseError(f"broker {self.node_id}: a {len(frame)}-byte response has no header"))
            return
        (correlation_id,) = _CORRELATION.unpack_from(frame, 0)
        if not self._in_flight:
            self._fail(
                BadResponseError(
                    f"broker {self.node_id} at {self.peer}: response with correlation id {correlation_id} "
                    "but no request in flight"
                )
            )
            return
        head = self._in_flight[0]
        if correlation_id != head.correlation_id:
            known = any(p.correlation_id == correlation_id for p in self._in_flight)
            what = "out of order" if known else "with an unknown correlation id"
            self._fail(
                BadResponseError(
                    f"broker {self.node_id} at {self.peer}: response {what}: expected correlation id "
                    f"{head.correlation_id}, got {correlation_id}"
                )
            )
            return
        self._in_flight.popleft()
        try:
            _, body = decode_response_body(memoryview(frame), head.api_key, head.version)
        except Exception as exc:  # hostile bytes must never escape as anything but a ClientError
            error = BadResponseError(
                f"broker {self.node_id} at {self.peer}: cannot decode {papi.api(head.api_key).name} "
                f"v{head.version} response ({len(frame)} bytes): {exc!r}"
            )
            fail_quietly(head.future, error)
            self._fail(error)
            return
        if not head.future.done():  # the caller may have cancelled it; the order is kept anyway
            head.future.set_result(Response(head.api_key, head.version, correlation_id, body))

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self.loop.time()
        expired = [p for p in self._in_flight if p.deadline <= now]
        if expired:
            for p in expired:
                fail_quietly(
                    p.future,
                    RequestTimeoutError(
                        f"{papi.api(p.api_key).name} v{p.version} to broker {self.node_id} at {self.peer}: "
                        f"no response within the request timeout"
                    ),
                )
            log.warning(
                "Closing the connection to broker %d at %s: %d request(s) timed out",
                self.node_id,
                self.peer,
                len(expired),
            )
            self._fail(DisconnectedError(f"connection to broker {self.node_id} closed: a request timed out"))
        elif self._in_flight:
            self._arm(min(p.deadline for p in self._in_flight))

    def _fail(self, reason: ClientError) -> None:
        if self._close_reason is not None:
            return
        self._close_reason = reason
        if isinstance(reason, BadResponseError):
            log.warning("%s; closing the connection", reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        in_flight, self._in_flight = self._in_flight, deque()
        for p in in_flight:
            fail_quietly(p.future, reason)
        if self._transport is not None:
            self._transport.close()  # connection_lost follows and completes wait_closed
        elif not self._closed.done():
            self._closed.set_result(None)
        listeners, self._close_listeners = self._close_listeners, []
        for listener in listeners:
            try:
                listener(self)
            except Exception:
                log.exception("close listener of the connection to broker %d failed", self.node_id)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def fail_quietly(future: asyncio.Future[Any], error: BaseException) -> None:
    """Fail ``future``; a caller that no longer waits for it gets no "never retrieved" noise
    (a channel awaits only the oldest of its requests in flight)."""
    if not future.done():
        future.set_exception(error)
        future.add_done_callback(_retrieve)


# -- connections per node --------------------------------------------------------------------------


class _NodeState:
    __slots__ = (
        "connecting",
        "connection",
        "failed_attempts",
        "generation",
        "last_attempt",
        "reconnect_delay",
    )

    def __init__(self) -> None:
        self.generation = 0  # bumped by disconnect(): an attempt under way must not be used
        self.connection: BrokerConnection | None = None
        self.connecting: asyncio.Task[BrokerConnection] | None = None
        self.failed_attempts = 0
        self.last_attempt = -math.inf  # loop time of the last attempt or disconnect
        self.reconnect_delay = 0.0  # seconds


class NetworkClient:
    """Connections to brokers by node id, with Kafka's reconnect backoff and setup timeout."""

    def __init__(self, config: ClientConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.config = config or ClientConfig()
        rng = rng or random.Random()
        self._reconnect = ExponentialBackoff(
            self.config.reconnect_backoff_ms, 2, self.config.reconnect_backoff_max_ms, 0.2, rng
        )
        self._setup_timeout = ExponentialBackoff(
            self.config.connect_timeout_ms, 2, self.config.connect_timeout_max_ms, 0.2, rng
        )
        self._nodes: dict[int, _NodeState] = {}
        self._closed = False

    def connection(self, node_id: int) -> BrokerConnection | None:
        """The open connection to ``node_id``, if any."""
        state = self._nodes.get(node_id)
        if state is None or state.connection is None or state.connection.is_closed:
            return None
        return state.connection

    def reconnect_delay(self, node_id: int) -> float:
        """Seconds to wait before the next attempt to ``node_id`` may start."""
        state = self._nodes.get(node_id)
        if state is None:
            return 0.0
        return max(0.0, state.last_attempt + state.reconnect_delay - asyncio.get_running_loop().time())

    def failed_attempts(self, node_id: int) -> int:
        state = self._nodes.get(node_id)
        return state.failed_attempts if state is not None else 0

    async def connect(self, node_id: int, host: str, port: int) -> BrokerConnection:
        """The connection to ``node_id``, made if needed once the reconnect backoff has passed.

        Concurrent callers share one attempt. Raises :class:`ConnectError` (and subclasses);
        the next attempt then waits a longer backoff.
        """
        if self._closed:
            raise ClientClosedError("the network client is closed")
        state = self._nodes.setdefault(node_id, _NodeState())
        if state.connection is not None and not state.connection.is_closed:
            return state.connection
        if state.connecting is None:
            state.connecting = asyncio.get_running_loop().create_task(
                self._establish(node_id, state, host, port), name=f"brook-connect-{node_id}"
            )
            # Its waiters may all be gone (cancelled): its failure is theirs, not to be logged.
            state.connecting.add_done_callback(_retrieve)
        return await asyncio.shield(state.connecting)

    async def _establish(self, node_id: int, state: _NodeState, host: str, port: int) -> BrokerConnection:
        loop = asyncio.get_running_loop()
        try:
            delay = state.last_attempt + state.reconnect_delay - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            state.last_attempt = loop.time()
            generation = state.generation
            timeout_ms = self._setup_timeout.backoff_ms(state.failed_attempts)
            try:
                conn = await BrokerConnection.open(node_id, host, port, self.config, timeout_ms)
            except ConnectError:
                self._note_failure(state, loop.time())
                raise
            if generation != state.generation:  # disconnect() was called meanwhile
                conn.close()
                raise ConnectError(f"connection to broker {node_id} at {host}:{port} dropped while set up")
            state.failed_attempts = 0
            state.reconnect_delay = 0.0
            state.connection = conn
            conn.add_close_listener(lambda c: self._on_close(node_id, state, c))
            return conn
        finally:
            state.connecting = None

    def _note_failure(self, state: _NodeState, now: float) -> None:
        # As Kafka's ClusterConnectionStates: backoff(failures) first, then count the failure.
        state.reconnect_delay = self._reconnect.backoff_ms(state.failed_attempts) / 1000
        state.failed_attempts += 1
        state.last_attempt = now

    def _on_close(self, node_id: int, state: _NodeState, conn: BrokerConnection) -> None:
        if state.connection is conn:
            state.connection = None
            self._note_failure(state, conn.loop.time())

    async def send(
        self,
        node_id: int,
        host: str,
        port: int,
        request: Message,
        *,
        version: int | None = None,
        max_version: int | None = None,
        timeout_ms: float | None = None,
    ) -> Response:
        """Connect if needed and send once (no retry)."""
        conn = await self.connect(node_id, host, port)
        return await conn.request(request, version=version, max_version=max_version, timeout_ms=timeout_ms)

    def disconnect(self, node_id: int) -> None:
        """Close the connection to ``node_id``, and make an attempt under way fail (its backoff
        state is kept): the next :meth:`connect` goes to the endpoint it is given."""
        state = self._nodes.get(node_id)
        if state is None:
            return
        state.generation += 1
        if state.connection is not None:
            state.connection.close()

    async def forget(self, node_id: int) -> None:
        """Close the connection to ``node_id`` and drop its state."""
        state = self._nodes.pop(node_id, None)
        if state is not None:
            await self._close_state(state)

    async def close(self) -> None:
        """Close every connection and abandon attempts in progress; nothing is left running."""
        self._closed = True
        states = list(self._nodes.values())
        self._nodes.clear()
        for state in states:
            await self._close_state(state)

    async def _close_state(self, state: _NodeState) -> None:
        if state.connecting is not None:
            task = state.connecting
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ClientError):
                await task
        conn = state.connection
        if conn is not None:
            conn.close()
            await conn.wait_closed()
