"""An in-process broker whose handlers tests call directly, and a helper to call them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from broker.app import Broker
from broker.config import load_config
from broker.handlers import HANDLERS
from broker.handlers.base import RequestContext
from broker.security.principal import SecurityContext
from protocol.messages.request_header import RequestHeader
from storage import FileSystem

T = TypeVar("T")
PLAINTEXT_SECURITY = SecurityContext("PLAINTEXT", "PLAINTEXT")


@dataclass
class FakeConnection:
    peer: str = "127.0.0.1:40000"
    listener: str = "PLAINTEXT"
    security: SecurityContext = PLAINTEXT_SECURITY


class InlineDisk:
    """The broker's disk workers, run inline: handlers complete within a few loop turns, which
    tests that step a manual scheduler rely on."""

    threads = 1

    def background(self, work: Callable[[], None]) -> None:
        work()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return work(*args)

    def shutdown(self) -> None:
        pass


def make_broker(path: Path, fs: FileSystem | None = None, **overrides: str) -> Broker:
    settings = {"log.dirs": str(path), "listeners": "PLAINTEXT://127.0.0.1:0", **overrides}
    return Broker(load_config(None, [f"{k}={v}" for k, v in settings.items()]), fs=fs)


class Caller:
    """Calls a handler the way the network layer does, awaiting it when it is asynchronous."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.conn = FakeConnection()

    def __call__(self, request: Any, version: int) -> Any:
        result = self.start(request, version)
        if inspect.isawaitable(result):
            return asyncio.run(_await(result))
        return result

    def start(self, request: Any, version: int) -> Any:
        api_key = request.API_KEY
        header = RequestHeader(api_key, version, 1, "test-client")
        ctx = RequestContext(self.broker, self.conn, header, api_key, version)  # type: ignore[arg-type]
        # Round-trip the request through its encoding, as it would arrive from a client.
        decoded = type(request).decode(request.encode(version), version)
        response = HANDLERS[api_key].handle(ctx, decoded)
        return response


async def _await(result: Any) -> Any:
    return await result


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = make_broker(tmp_path / "data")
    try:
        yield b
    finally:
        b.log_manager.close()


@pytest.fixture
def call(broker: Broker) -> Caller:
    return Caller(broker)
