"""A TCP proxy on 127.0.0.1 that can cut the link it carries, for network-partition tests.

``cut()`` is a partition as a dropping firewall makes it: bytes already flowing are swallowed (not
forwarded, no reset), new connections are accepted and then left unanswered. ``heal()`` ends it:
the connections that lived through the cut are closed (their streams have holes), new ones are
forwarded again. The proxy knows nothing of the protocol, so it serves ZooKeeper and Kafka alike.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class LinkProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._sockets: set[socket.socket] = set()
        #: sockets that existed during the cut: closed by heal()
        self._tainted: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"link-{self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LinkProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._tainted |= self._sockets

    def heal(self) -> None:
        with self._lock:
            self._cut = False
            tainted, self._tainted = self._tainted, set()
            self._sockets -= tainted
        for sock in tainted:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        with self._lock:
            sockets = self._sockets | self._tainted
        for sock in sockets:
            _close(sock)
        self._thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
                if cut:  # accepted, never answered, until heal() closes it
                    self._tainted.add(client)
            if cut:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    cut = self._cut or source in self._tainted
                if not cut:
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
