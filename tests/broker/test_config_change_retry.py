"""ConfigChangeWatcher passes again after a pass that failed while ZooKeeper still looked
connected (a request deadline passed on a slow server): its watch on ``/config/changes`` may not
be set, so without another pass no later change would reach the broker. A fake client, no server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from broker.cluster.config_changes import ConfigChangeWatcher
from broker.cluster.zk import data, paths
from broker.cluster.zk.errors import ZkUnavailableError


class FlakyZk:
    """``/config/changes`` with one notification for topic ``t``; the first ``failures`` listings
    fail with ZkUnavailableError while ``connected`` stays True."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.connected = True
        self.listings = 0
        self.watches: list[Any] = []

    def add_new_session_callback(self, _callback: Callable[[], Awaitable[None]]) -> None:
        pass

    async def wait_connected(self) -> None:
        pass

    async def get_children(self, path: str, watch: Any = None) -> list[str]:
        self.listings += 1
        if path == paths.CONFIG_CHANGES and self.failures > 0:
            self.failures -= 1
            raise ZkUnavailableError(f"ZooKeeper unavailable: children {path} not done within 1 ms")
        if watch is not None:
            self.watches.append(watch)
        return ["config_change_0000000000"] if path == paths.CONFIG_CHANGES else []

    async def get_data(self, _path: str) -> tuple[bytes, Any]:
        return data.encode_config_change("topics/t"), None

    async def get_entity_config(self, _kind: str, _name: str) -> dict[str, str]:
        return {"segment.ms": "100"}

    async def exists(self, _path: str) -> None:
        return None


def test_a_pass_that_timed_out_while_connected_runs_again() -> None:
    async def body() -> None:
        zk = FlakyZk(failures=2)
        applied: list[tuple[str, dict[str, str]]] = []

        def apply(topic: str, config: Mapping[str, str]) -> None:
            applied.append((topic, dict(config)))

        watcher = ConfigChangeWatcher(zk, apply, retry_backoff_s=0)  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(watcher.start(), 10)
            assert applied == [("t", {"segment.ms": "100"})]
            assert len(zk.watches) == 1  # the successful pass set the watch again
            assert zk.failures == 0
        finally:
            watcher.stop()

    asyncio.run(body())


def test_a_triggered_pass_that_timed_out_while_connected_runs_again() -> None:
    async def body() -> None:
        zk = FlakyZk(failures=0)
        applied: list[str] = []
        watcher = ConfigChangeWatcher(zk, lambda t, _c: applied.append(t), retry_backoff_s=0)  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(watcher.start(), 10)
            watcher.processed.clear()
            zk.failures = 1
            watcher.last_processed = -1  # the notification is new again
            watcher.trigger()  # as the watch firing would
            await asyncio.wait_for(watcher.processed.wait(), 10)
            assert applied == ["t", "t"]
            assert len(zk.watches) == 2
        finally:
            watcher.stop()

    asyncio.run(body())
