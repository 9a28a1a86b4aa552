"""The ``/metrics`` HTTP endpoint of one broker (``brook.metrics.listener``).

A minimal HTTP/1.1 server on the broker's event loop (asyncio streams): it reads one request,
answers it and closes. The broker's state is read on the loop, where it is consistent (the
collectors of :mod:`broker.metrics.collector`), and the text is formatted in a worker thread.
Each broker has its own ``CollectorRegistry``, never prometheus_client's global one, so several
brokers in one process (embedded, tests) each serve their own numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import Metric

from broker.metrics.collector import BrokerCollector
from broker.metrics.end_offsets import RemoteEndOffsets

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

#: A scraper's request line and headers; anything longer is refused.
MAX_REQUEST_BYTES = 16 * 1024
#: A client that sends no complete request within this is dropped.
REQUEST_TIMEOUT_S = 10.0
#: How long a scrape waits for other leaders' end offsets (Prometheus' default timeout is 10 s).
END_OFFSETS_TIMEOUT_S = 3.0


class _Frozen:
    """What ``generate_latest`` needs of a registry, over families already collected."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class MetricsEndpoint:
    """Serves one broker's registry at ``http://host:port/metrics``."""

    def __init__(self, broker: Broker, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = BrokerCollector(broker)
        self.registry.register(self.collector)
        #: Cluster mode: leaders' high watermarks for the lag of groups coordinated here.
        self.end_offsets = RemoteEndOffsets(broker) if broker.cluster_mode else None
        # process_* (CPU, memory, descriptors) of the process, as the JMX exporter adds the JVM's.
        ProcessCollector(registry=self.registry)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        """Bind and start serving; returns the port bound (0 asks for a free one)."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.requested_port, limit=MAX_REQUEST_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self.end_offsets is not None:
            await self.end_offsets.close()

    async def render(self) -> bytes:
        """The exposition text: collected on the loop, formatted in a worker thread."""
        if self.end_offsets is not None:
            remote = self.collector.remote_partitions()
            self.collector.remote_end_offsets = (
                await self.end_offsets.fetch(remote, END_OFFSETS_TIMEOUT_S) if remote else {}
            )
        families = list(self.registry.collect())
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, generate_latest, _Frozen(families))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except Exception:
            log.exception("metrics request from %s failed", writer.get_extra_info("peername"))
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
        if len(head) > MAX_REQUEST_BYTES:
            await _respond(writer, 431, b"request header too large\n")
            return
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await _respond(writer, 400, b"bad request\n")
            return
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            await _respond(writer, 405, b"only GET and HEAD\n", extra=b"Allow: GET, HEAD\r\n")
            return
        if target != b"/metrics":
            await _respond(writer, 404, b"metrics are at /metrics\n")
            return
        body = await self.render()
        await _respond(writer, 200, body, CONTENT_TYPE_LATEST.encode(), head_only=method == b"HEAD")


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large"}  # fmt: skip


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    *,
    extra: bytes = b"",
    head_only: bool = False,
) -> None:
    header = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()
        + b"Content-Type: " + content_type + b"\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n" + extra + b"\r\n"
    )  # fmt: skip
    writer.write(header if head_only else header + body)
    await writer.drain()
