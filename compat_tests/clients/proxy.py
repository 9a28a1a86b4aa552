"""A Kafka-frame-aware TCP proxy for tests: it forwards whole frames between a client and the
broker, remembers which api each request was, and can lose responses on purpose.

``drop_responses(api_key, count)`` makes the proxy swallow the broker's next ``count`` responses
to that api and close the client's connection instead of forwarding them — exactly "the broker
appended but the producer never heard back". The broker must then advertise the proxy's address
(``advertised.listeners``) so that clients keep talking through it after bootstrapping.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

_SIZE = struct.Struct(">i")
_REQ_HEAD = struct.Struct(">hhi")


@dataclass
class Stats:
    requests: Counter[int] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    dropped: Counter[int] = field(default_factory=Counter)
    connections: int = 0
    frames: list[tuple[int, int, bytes]] = field(default_factory=list)


class KafkaProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, keep_frames: bool = False) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.keep_frames = keep_frames
        self.stats = Stats()
        self._lock = threading.Lock()
        self._drop: Counter[int] = Counter()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> KafkaProxy:
        self._thread.start()
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def drop_responses(self, api_key: int, count: int) -> None:
        with self._lock:
            self._drop[api_key] += count

    def cancel_drops(self, api_key: int) -> None:
        """Forget the drops still pending (a client that never sent, e.g. skipped, must not
        leave them for the next test)."""
        with self._lock:
            self._drop[api_key] = 0

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            _close(s)
        self._thread.join(5)

    # -- plumbing --------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self.stats.connections += 1
                self._sockets.update((client, server))
            pending: dict[int, int] = {}  # correlation id -> api key
            for pump, args in (
                (self._client_to_server, (client, server, pending)),
                (self._server_to_client, (server, client, pending)),
            ):
                threading.Thread(target=pump, args=args, daemon=True).start()

    def _client_to_server(
        self, client: socket.socket, server: socket.socket, pending: dict[int, int]
    ) -> None:
        try:
            while True:
                frame = _read_frame(client)
                if frame is None:
                    break
                if len(frame) >= _REQ_HEAD.size:
                    api_key, version, correlation_id = _REQ_HEAD.unpack_from(frame, 0)
                    with self._lock:
                        pending[correlation_id] = api_key
                        self.stats.requests[api_key] += 1
                        if self.keep_frames:
                            self.stats.frames.append((api_key, version, frame))
                server.sendall(_SIZE.pack(len(frame)) + frame)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def _server_to_client(
        self, server: socket.socket, client: socket.socket, pending: dict[int, int]
    ) -> None:
        try:
            while True:
                frame = _read_frame(server)
                if frame is None:
                    break
                (correlation_id,) = _SIZE.unpack_from(frame, 0)
                with self._lock:
                    api_key = pending.pop(correlation_id, -1)
                    self.stats.responses[api_key] += 1
                    drop = self._drop[api_key] > 0
                    if drop:
                        self._drop[api_key] -= 1
                        self.stats.dropped[api_key] += 1
                if drop:
                    break  # lose this response and the connection with it
                client.sendall(_SIZE.pack(len(frame)) + frame)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (size,) = _SIZE.unpack(head)
    return _read_exact(sock, size)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
