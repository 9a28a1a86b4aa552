"""Listening sockets, accepted connections and request dispatch.

Accepting and reading run on the event loop through ``add_reader`` on non-blocking sockets.
Each decoded request goes to the handler registered for its api; a handler returns the response
(or None for acks=0 produce) or an awaitable of it when it must wait (long poll, replication).
A handler that raises, or whose response cannot be encoded, is answered with the api's error
response (:mod:`protocol.error_responses`), as Kafka answers any well-formed request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from broker.metrics.stats import BrokerStats
from broker.network.connection import Connection, TlsListener
from broker.network.hosts import resolvable
from broker.network.quotas import ConnectionQuotas, normalise_ip
from broker.request_log import UNKNOWN_SOFTWARE, RequestLogEntry, request_logger
from protocol import api as papi
from protocol.exceptions import ApiError
from protocol.message import Message
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.handlers.base import Handler
    from broker.quotas.manager import ClientQuotas
    from broker.security.sasl_config import SaslListener

API_VERSIONS = 18
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    name: str
    host: str
    port: int
    security_protocol: str = "PLAINTEXT"
    #: Set on SSL listeners: connections on them run the TLS handshake first.
    tls: TlsListener | None = None
    #: Set on SASL listeners: connections on them authenticate first.
    sasl: SaslListener | None = None


class Server:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handlers: dict[int, Handler],
        make_context: Callable[[Connection, papi.Request], Any],
        unsupported_api_versions: Callable[[], Message],
        *,
        max_frame_size: int,
        idle_timeout_ms: int,
        quotas: ConnectionQuotas | None = None,
        stats: BrokerStats | None = None,
    ) -> None:
        self.loop = loop
        self.handlers = handlers
        self.make_context = make_context
        self.unsupported_api_versions_response = unsupported_api_versions
        self.max_frame_size = max_frame_size
        self.idle_timeout_s = idle_timeout_ms / 1000.0
        self.listeners: list[tuple[ListenAddress, socket.socket]] = []
        self.connections: set[Connection] = set()
        #: max.connections and max.connections.per.ip (unlimited when not given).
        self.quotas = quotas or ConnectionQuotas(2**31 - 1, 2**31 - 1, {})
        self._addresses: dict[Connection, str] = {}
        self._accepting = False
        #: Accepting stopped because max.connections connections are open.
        self._accept_paused = False
        self._reaper: asyncio.TimerHandle | None = None
        #: Request counts and times (read by the metrics collector).
        self.stats = stats if stats is not None else BrokerStats()
        #: Client quotas (broker.quotas.manager.ClientQuotas), set only while a quota is
        #: configured: without one the request path pays a single ``is None`` check.
        self.client_quotas: ClientQuotas | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def listen(self, addresses: list[ListenAddress]) -> list[tuple[ListenAddress, int]]:
        """Bind every listener; returns each with the port actually bound (0 picks a free one)."""
        bound = []
        for address in addresses:
            host = address.host or "0.0.0.0"
            infos = socket.getaddrinfo(
                resolvable(host), address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, sockaddr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1024)
            sock.setblocking(False)
            self.listeners.append((address, sock))
            bound.append((address, sock.getsockname()[1]))
        self._accepting = True
        self._watch_listeners()
        self._schedule_reaper()
        return bound

    def _watch_listeners(self) -> None:
        for address, sock in self.listeners:
            self.loop.add_reader(sock.fileno(), self._accept, sock, address)

    def _unwatch_listeners(self) -> None:
        for _, sock in self.listeners:
            self.loop.remove_reader(sock.fileno())

    def stop_accepting(self) -> None:
        if not self._accepting:
            return
        self._accepting = False
        self._unwatch_listeners()
        for _, sock in self.listeners:
            sock.close()
        if self._reaper is not None:
            self._reaper.cancel()

    async def drain(self, timeout: float) -> None:
        """Let in-flight requests finish (up to ``timeout``), then close every connection."""
        deadline = time.monotonic() + timeout
        while any(not c.idle for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.close(None)

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        address = self._addresses.pop(conn, None)
        if address is not None:
            self.quotas.release(address)
        if self._accept_paused and self._accepting and self.quotas.slot_available:
            self._accept_paused = False
            self._watch_listeners()

    def set_connection_limits(
        self, max_connections: int, max_per_ip: int, per_ip_overrides: Mapping[str, int] | None = None
    ) -> None:
        """Dynamic ``max.connections`` / ``max.connections.per.ip`` (and overrides): they apply to
        the next connection accepted; existing ones stay, as in Kafka."""
        self.quotas.max_connections = max_connections
        self.quotas.max_per_ip = max_per_ip
        if per_ip_overrides is not None:
            self.quotas.per_ip_overrides = dict(per_ip_overrides)
        if self._accept_paused and self._accepting and self.quotas.slot_available:
            self._accept_paused = False
            self._watch_listeners()

    # -- accepting -----------------------------------------------------------------------------

    def _accept(self, listening: socket.socket, listener: ListenAddress) -> None:
        for _ in range(64):
            if not self.quotas.slot_available:
                # max.connections: leave new connections in the backlog until one closes.
                log.info("max.connections=%d reached: not accepting", self.quotas.max_connections)
                self._accept_paused = True
                self._unwatch_listeners()
                return
            try:
                sock, addr = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            ip = normalise_ip(str(addr[0])) if isinstance(addr, tuple) else str(addr)
            if not self.quotas.admit(ip):
                log.info(
                    "Rejected connection from %s, address already has the configured maximum of %d "
                    "connections.",
                    ip,
                    self.quotas.limit_for(ip),
                )
                sock.close()
                continue
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
            try:
                conn = Connection(
                    self,
                    sock,
                    peer,
                    listener.name,
                    security_protocol=listener.security_protocol,
                    tls=listener.tls,
                    sasl=listener.sasl,
                )
            except (OSError, ValueError) as exc:  # the peer left before the TLS wrap
                log.info("connection from %s dropped at accept: %s", peer, exc)
                self.quotas.release(ip)
                sock.close()
                continue
            self._addresses[conn] = ip
            self.connections.add(conn)

    def _schedule_reaper(self) -> None:
        # connections.max.idle.ms: close connections that sent nothing for that long.
        interval = max(1.0, min(30.0, self.idle_timeout_s / 4))
        self._reaper = self.loop.call_later(interval, self._reap)

    def _reap(self) -> None:
        cutoff = time.monotonic() - self.idle_timeout_s
        for conn in list(self.connections):
            if conn.last_active < cutoff and conn.idle:
                conn.close(f"idle for more than {self.idle_timeout_s:.0f} s (connections.max.idle.ms)")
        if self._accepting:
            self._schedule_reaper()

    # -- dispatch ------------------------------------------------------------------------------

    def dispatch(self, conn: Connection, request: papi.Request) -> None:
        api_key = request.api.api_key
        version = request.version
        handler = self.handlers.get(api_key)
        if handler is None or not handler.min_version <= version <= handler.max_version:
            log.warning(
                "closing connection from %s: %s v%d is not served by this broker",
                conn.peer,
                request.api.name,
                version,
            )
            conn.close(None)
            return
        if api_key == API_VERSIONS and version >= 3:
            # Kept for the request log's clientInformation, as Kafka's ClientInformation.
            body = request.body
            conn.client_software = (
                body.client_software_name or UNKNOWN_SOFTWARE,
                body.client_software_version or UNKNOWN_SOFTWARE,
            )
        ctx = self.make_context(conn, request)
        slot = conn.new_slot(api_key, version, request.header.correlation_id, request.body)
        if request_logger.isEnabledFor(logging.DEBUG):  # the request log's only cost when it is off
            slot.log_entry = RequestLogEntry(
                api_key,
                request.api.name,
                version,
                request.header.correlation_id,
                request.header.client_id,
                request.body,
                conn.connection_id,
                conn.listener,
                conn.client_software,
                conn.security.security_protocol,
                str(conn.security.principal),
            )
        quotas = self.client_quotas
        try:
            if quotas is None:
                result = handler.handle(ctx, request.body)
            else:
                slot.quota = ticket = quotas.ticket(
                    conn.security.principal.name, request.header.client_id, conn.frame_size
                )
                started = time.perf_counter()
                try:
                    result = handler.handle(ctx, request.body)
                finally:
                    ticket.loop_seconds += time.perf_counter() - started
                # Known now for all but a consumer fetch (whose response size counts): the mute
                # starts before the next request is read, as Kafka reads one at a time.
                ticket.throttle_ms = quotas.request_throttle(api_key, version, ticket, request.body)
                conn.throttle(ticket.throttle_ms)
        except ApiError as exc:
            # A request refused as a whole (an authorization failure, a malformed request): its
            # api's error response, without a traceback in the log.
            log.debug("%s v%d from %s refused: %s", request.api.name, version, conn.peer, exc)
            conn.fail(slot, exc)
            return
        except Exception as exc:
            # As Kafka: a well-formed request always gets an answer, the api's error response.
            log.exception(
                "%s v%d from %s failed; answering with its error response",
                request.api.name,
                version,
                conn.peer,
            )
            conn.fail(slot, exc)
            return
        if slot.log_entry is not None:
            slot.log_entry.handler_returned()
        if result is None or isinstance(result, Message):
            conn.complete(slot, result)
        else:
            conn.track(slot, result)
