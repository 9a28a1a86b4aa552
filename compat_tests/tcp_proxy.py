"""A TCP proxy on 127.0.0.1 for fault tests: it carries any protocol (ZooKeeper, Kafka) byte for
byte, can break the link it carries in two ways, and with ``kafka_frames=True`` reads whole Kafka
frames, counting them per api and losing responses on purpose.

Link faults, ended by :meth:`TcpProxy.heal`:

* :meth:`~TcpProxy.cut`: a partition as a dropping firewall makes it: bytes already flowing are
  swallowed (not forwarded, no reset), new connections are accepted and then left unanswered.
  ``heal()`` closes the connections that lived through the cut (their streams have holes).
* :meth:`~TcpProxy.refuse`: every forwarded connection is closed and new ones are accepted and
  closed at once. A server behind it goes on running and counts the silence, as for clients cut
  off by a network fault (a killed and restarted ZooKeeper would restore the sessions instead).

Kafka frames: ``drop_responses(api_key, count)`` swallows the broker's next ``count`` responses
to that api and closes the client's connection instead of forwarding them: "the broker appended
but the producer never heard back". The broker must then advertise the proxy's address
(``advertised.listeners``) so that clients keep talking through it after bootstrapping.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

_SIZE = struct.Struct(">i")
_REQ_HEAD = struct.Struct(">hhi")

#: Looks at one Kafka frame going through; False loses it and closes the connection.
Inspect = Callable[[bytes], bool]


@dataclass
class Stats:
    requests: Counter[int] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    dropped: Counter[int] = field(default_factory=Counter)
    connections: int = 0
    frames: list[tuple[int, int, bytes]] = field(default_factory=list)


class TcpProxy:
    def __init__(
        self, upstream_host: str, upstream_port: int, *, kafka_frames: bool = False, keep_frames: bool = False
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.kafka_frames = kafka_frames
        self.keep_frames = keep_frames
        self.stats = Stats()
        self._lock = threading.Lock()
        self._drop: Counter[int] = Counter()
        self._cut = False
        self._refusing = False
        self._closed = False
        self._links: set[socket.socket] = set()
        #: sockets that existed during a cut: closed by heal()
        self._tainted: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"proxy-{self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    # -- link faults -----------------------------------------------------------------------------

    def cut(self) -> None:
        """Swallow every byte and leave new connections unanswered until :meth:`heal`."""
        with self._lock:
            self._cut = True
            self._tainted |= self._links

    def refuse(self) -> None:
        """Close every forwarded connection and refuse new ones until :meth:`heal`."""
        with self._lock:
            self._refusing = True
            links, self._links = self._links, set()
        for sock in links:
            _close(sock)

    def heal(self) -> None:
        """Forward again; the connections that lived through a cut are closed."""
        with self._lock:
            self._cut = False
            self._refusing = False
            tainted, self._tainted = self._tainted, set()
            self._links -= tainted
        for sock in tainted:
            _close(sock)

    # -- Kafka frames ----------------------------------------------------------------------------

    def drop_responses(self, api_key: int, count: int) -> None:
        assert self.kafka_frames, "losing responses needs kafka_frames=True"
        with self._lock:
            self._drop[api_key] += count

    def cancel_drops(self, api_key: int) -> None:
        """Forget the drops still pending (a client that never sent, e.g. skipped, must not
        leave them for the next test)."""
        with self._lock:
            self._drop[api_key] = 0

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        with self._lock:
            sockets = self._links | self._tainted
        for sock in sockets:
            _close(sock)
        self._thread.join(5)

    # -- plumbing --------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse, cut = self._refusing, self._cut
                if cut and not refuse:  # accepted, never answered, until heal() closes it
                    self._tainted.add(client)
            if refuse:
                _close(client)
            if refuse or cut:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._refusing:
                    _close(client)
                    _close(server)
                    continue
                self._links |= {client, server}
                if self._cut:
                    self._tainted |= {client, server}
                self.stats.connections += 1
            to_server: Inspect | None = None
            to_client: Inspect | None = None
            if self.kafka_frames:
                pending: dict[int, int] = {}  # correlation id -> api key
                to_server = functools.partial(self._on_request, pending=pending)
                to_client = functools.partial(self._on_response, pending=pending)
            for source, sink, inspect in ((client, server, to_server), (server, client, to_client)):
                threading.Thread(target=self._pump, args=(source, sink, inspect), daemon=True).start()

    def _on_request(self, frame: bytes, pending: dict[int, int]) -> bool:
        if len(frame) >= _REQ_HEAD.size:
            api_key, version, correlation_id = _REQ_HEAD.unpack_from(frame, 0)
            with self._lock:
                pending[correlation_id] = api_key
                self.stats.requests[api_key] += 1
                if self.keep_frames:
                    self.stats.frames.append((api_key, version, frame))
        return True

    def _on_response(self, frame: bytes, pending: dict[int, int]) -> bool:
        (correlation_id,) = _SIZE.unpack_from(frame, 0)
        with self._lock:
            api_key = pending.pop(correlation_id, -1)
            self.stats.responses[api_key] += 1
            if self._drop[api_key] <= 0:
                return True
            self._drop[api_key] -= 1
            self.stats.dropped[api_key] += 1
        return False  # lose this response and the connection with it

    def _pump(self, source: socket.socket, sink: socket.socket, inspect: Inspect | None) -> None:
        try:
            while True:
                if inspect is None:
                    data = source.recv(65536)
                    if not data:
                        break
                else:
                    frame = _read_frame(source)
                    if frame is None or not inspect(frame):
                        break
                    data = _SIZE.pack(len(frame)) + frame
                with self._lock:
                    swallowed = self._cut or source in self._tainted
                if not swallowed:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._links -= {source, sink}
            _close(source)
            _close(sink)


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
