"""A harness for the group coordinator tests: an in-process broker whose coordinator runs on a
manual clock, and its handlers called as the network layer calls them. Also tests the manual
scheduler the harness relies on."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from broker.app import Broker
from broker.group import GroupCoordinator
from broker.group.config import GroupConfig
from broker.group.timers import ManualScheduler
from broker.handlers import HANDLERS
from broker.handlers.base import RequestContext
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from protocol.messages.request_header import RequestHeader
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from storage.clock import ManualClock
from tests.broker.conftest import FakeConnection, InlineDisk, make_broker

T = TypeVar("T")
SESSION = 10_000
REBALANCE = 30_000


def subscription(*topics: str) -> bytes:
    return b"\x00\x00" + ConsumerProtocolSubscription(topics=list(topics)).encode(0)


class GroupKit:
    """An in-process broker with a group coordinator on a :class:`ManualScheduler`."""

    def __init__(self, path: Path, **overrides: str) -> None:
        settings = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0", **overrides}
        self.path = path
        self.settings = settings
        self.broker: Broker = make_broker(path, **settings)
        self.sched = ManualScheduler(ManualClock())
        self.coord = GroupCoordinator(
            self.broker, config=GroupConfig.from_broker(self.broker.config), scheduler=self.sched
        )
        self.broker.group_coordinator = self.coord
        self.broker.disk = InlineDisk()  # type: ignore[assignment]
        self.conn = FakeConnection()

    async def start(self, *, create_topic: bool = True) -> None:
        self.coord.start()
        if create_topic:
            await self.coord.store.ensure_topic()

    async def close(self) -> None:
        await self.coord.stop()
        self.broker.log_manager.close()

    def advance(self, ms: int) -> None:
        self.sched.advance(ms)

    async def settle(self) -> None:
        """Let background continuations (writes' completions) and timers already due run."""
        for _ in range(20):  # a topic change is a task of its own: a few more turns
            await asyncio.sleep(0)
            self.sched.run_due()

    # -- calling handlers ---------------------------------------------------------------------------

    def send(self, request: Any, version: int, client_id: str = "test-client") -> asyncio.Future[Any]:
        """Start a request; the future completes with its response (it may wait for others)."""
        api_key = request.API_KEY
        header = RequestHeader(api_key, version, 1, client_id)
        ctx = RequestContext(self.broker, self.conn, header, api_key, version)  # type: ignore[arg-type]
        decoded = type(request).decode(request.encode(version), version)
        result = HANDLERS[api_key].handle(ctx, decoded)
        if inspect.isawaitable(result):
            return asyncio.ensure_future(result)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(result)
        return done

    async def call(self, request: Any, version: int, client_id: str = "test-client") -> Any:
        future = self.send(request, version, client_id)
        await self.settle()
        assert future.done(), f"{type(request).__name__} is still waiting"
        return future.result()

    # -- group operations ---------------------------------------------------------------------------

    def join(
        self,
        group: str,
        member_id: str = "",
        *,
        version: int = 5,
        instance: str | None = None,
        protocols: list[tuple[str, bytes]] | None = None,
        session: int = SESSION,
        rebalance: int = REBALANCE,
        protocol_type: str = "consumer",
        client_id: str = "test-client",
    ) -> asyncio.Future[Any]:
        chosen = protocols if protocols is not None else [("range", subscription("t"))]
        request = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type=protocol_type,
            protocols=[JoinGroupRequestProtocol(name, meta) for name, meta in chosen],
        )
        return self.send(request, version, client_id)

    async def join_new(self, group: str, **kwargs: Any) -> str:
        """A v4+ dynamic member's first join: returns the member id it must rejoin with."""
        response = await self.call_future(self.join(group, **kwargs))
        assert response.error_code == 79, response  # MEMBER_ID_REQUIRED
        return str(response.member_id)

    async def call_future(self, future: asyncio.Future[T]) -> T:
        await self.settle()
        assert future.done(), "request is still waiting"
        return future.result()

    def sync(
        self,
        group: str,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        *,
        version: int = 3,
        instance: str | None = None,
    ) -> asyncio.Future[Any]:
        request = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type="consumer",
            protocol_name="range",
            assignments=[SyncGroupRequestAssignment(m, a) for m, a in (assignments or {}).items()],
        )
        return self.send(request, version)

    async def heartbeat(
        self, group: str, member_id: str, generation: int, instance: str | None = None
    ) -> int:
        response = await self.call(HeartbeatRequest(group, generation, member_id, instance), 4)
        return int(response.error_code)

    async def commit(
        self,
        group: str,
        offsets: dict[tuple[str, int], int],
        *,
        member_id: str = "",
        generation: int = -1,
        metadata: str | None = "",
        version: int = 8,
        instance: str | None = None,
    ) -> dict[tuple[str, int], int]:
        topics: dict[str, list[OffsetCommitRequestPartition]] = {}
        for (topic, partition), offset in offsets.items():
            topics.setdefault(topic, []).append(
                OffsetCommitRequestPartition(partition, offset, committed_metadata=metadata)
            )
        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            group_instance_id=instance,
            topics=[OffsetCommitRequestTopic(name, parts) for name, parts in topics.items()],
        )
        response = await self.call(request, version)
        return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}

    async def fetch(
        self, group: str, partitions: dict[str, list[int]] | None, *, version: int = 6, stable: bool = False
    ) -> Any:
        topics = (
            None if partitions is None else [OffsetFetchRequestTopic(t, ps) for t, ps in partitions.items()]
        )
        return await self.call(
            OffsetFetchRequest(group_id=group, topics=topics, require_stable=stable), version
        )

    async def fetch_offsets(
        self, group: str, partitions: dict[str, list[int]] | None
    ) -> dict[tuple[str, int], int]:
        response = await self.fetch(group, partitions)
        assert response.error_code == 0, response
        return {
            (t.name, p.partition_index): p.committed_offset for t in response.topics for p in t.partitions
        }


def run(
    path: Path,
    scenario: Callable[[GroupKit], Awaitable[None]],
    *,
    create_topic: bool = True,
    **overrides: str,
) -> None:
    """Run ``scenario`` against a fresh kit on its own event loop."""

    async def main() -> None:
        kit = GroupKit(path, **overrides)
        await kit.start(create_topic=create_topic)
        try:
            await scenario(kit)
        finally:
            await kit.close()

    asyncio.run(main())


# -- the manual scheduler itself ---------------------------------------------------------------------


def test_manual_scheduler_fires_in_deadline_order() -> None:
    sched = ManualScheduler(ManualClock(1000))
    fired: list[tuple[str, int]] = []
    sched.call_at(1300, lambda: fired.append(("b", sched.clock.milliseconds())))
    sched.call_at(1100, lambda: fired.append(("a", sched.clock.milliseconds())))
    cancelled = sched.call_at(1200, lambda: fired.append(("x", 0)))
    cancelled.cancel()
    assert sched.advance(99) == 0 and fired == []
    assert sched.advance(250) == 2
    assert fired == [("a", 1100), ("b", 1300)]
    assert sched.clock.milliseconds() == 1349


def test_manual_scheduler_runs_timers_scheduled_while_firing() -> None:
    sched = ManualScheduler(ManualClock(0))
    fired: list[int] = []

    def chain() -> None:
        fired.append(sched.clock.milliseconds())
        if len(fired) < 3:
            sched.call_at(sched.clock.milliseconds() + 10, chain)

    sched.call_at(10, chain)
    sched.advance(100)
    assert fired == [10, 20, 30]
    assert sched.pending == 0
