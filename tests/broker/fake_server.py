"""Small scripted servers on 127.0.0.1 for the inter-broker client's tests.

A :class:`FakeServer` accepts connections and runs a test's ``script(conn)`` coroutine for each;
the script reads requests (decoded with Brook's codec) and answers, misbehaves or hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from protocol import api as papi
from protocol.message import Message
from protocol.messages._index import APIS
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse

T = TypeVar("T")
TEST_TIMEOUT = 20.0


def run(
    coro: Coroutine[Any, Any, T],
    timeout: float = TEST_TIMEOUT,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run a test's coroutine on a fresh loop (asyncio's, or ``loop_factory``'s), bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):  # in this task: no helper task to count
            return await coro

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(bounded())


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks besides this one and the fake servers' (which end when their peer goes)."""
    current = asyncio.current_task()
    return {
        t
        for t in asyncio.all_tasks()
        if t is not current and getattr(t.get_coro(), "__qualname__", "") != "FakeServer._serve"
    }


def every_api() -> list[ApiVersion]:
    return [ApiVersion(spec.api_key, spec.min_version, spec.max_version) for spec in APIS.values()]


class FakeConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_request(self) -> papi.Request:
        (size,) = struct.unpack(">i", await self.reader.readexactly(4))
        return papi.decode_request(await self.reader.readexactly(size))

    def answer(self, request: papi.Request, body: Message, *, version: int | None = None) -> None:
        """Write the response to ``request`` (in ``version``, the request's by default)."""
        v = request.version if version is None else version
        self.writer.write(papi.encode_response(request.api.api_key, v, request.header.correlation_id, body))

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer_api_versions(self, api_keys: list[ApiVersion] | None = None) -> papi.Request:
        request = await self.read_request()
        assert request.api.api_key == 18, request
        self.answer(request, ApiVersionsResponse(api_keys=every_api() if api_keys is None else api_keys))
        return request

    def close(self) -> None:
        self.writer.close()


Script = Callable[[FakeConn], Awaitable[None]]


class FakeServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = FakeConn(reader, writer)
        try:
            await self.script(conn)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server stops; the stream machinery must not see a cancelled task
        finally:
            self._tasks.discard(task)
            writer.close()
