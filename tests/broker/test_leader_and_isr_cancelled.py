"""A LeaderAndIsr whose request is cancelled half-way (the controller's connection closed, as when
the controller itself shuts down) still hands its followers to their new leaders' fetchers: the
new epochs were applied before the disk work, and the next controller's LeaderAndIsr at the same
epoch is ignored as not newer, so a change stopped there would leave the follower fetching from
its old leader for good."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from broker.replica.control import FetchStart
from broker.types import TopicPartition
from tests.broker.control_kit import LOCAL, OTHER, cluster_broker

T = TypeVar("T")
TP = TopicPartition("t", 0)
T_ID = uuid.UUID("1f4b2f5e-8a61-4c53-b4a5-0d8f3b6f7a22")


class GatedDisk:
    """Disk work that waits for ``gate`` before it runs (where the request gets cancelled)."""

    threads = 1

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    def background(self, work: Callable[[], None]) -> None:
        work()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        self.entered.set()
        await self.gate.wait()
        return work(*args)


class Fetchers:
    def __init__(self) -> None:
        self.added: dict[TopicPartition, FetchStart] = {}

    def add_partitions(self, starts: dict[TopicPartition, FetchStart]) -> None:
        self.added.update(starts)

    def remove_partitions(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.added.pop(tp, None)


def test_a_cancelled_leader_and_isr_still_hands_the_follower_over(tmp_path: Path) -> None:
    from broker.replica.control import PartitionTransition

    broker = cluster_broker(tmp_path / "data")
    manager = broker.replica_manager
    fetchers = Fetchers()
    manager.control.fetchers = fetchers  # type: ignore[assignment]
    if manager.metadata_cache is not None:
        manager.metadata_cache.has_alive_broker = lambda _id: True  # type: ignore[method-assign]
    transition = PartitionTransition(
        tp=TP,
        topic_id=T_ID,
        leader=OTHER,
        leader_epoch=3,
        isr=[OTHER, LOCAL],
        replicas=[OTHER, LOCAL],
        partition_epoch=3,
        is_new=True,
    )

    async def scenario() -> None:
        disk = GatedDisk()
        call = asyncio.ensure_future(manager.become_leader_or_follower(1, 1, [transition], disk))
        await asyncio.wait_for(disk.entered.wait(), 5)
        call.cancel()
        disk.gate.set()
        await asyncio.sleep(0)
        assert call.cancelled() or call.done()
        for _ in range(100):  # the shielded change finishes within a few loop turns
            if TP in fetchers.added:
                break
            await asyncio.sleep(0)
        assert TP in fetchers.added, "the follower was never handed to a fetcher"
        assert fetchers.added[TP].leader_id == OTHER and fetchers.added[TP].leader_epoch == 3

    try:
        asyncio.run(asyncio.wait_for(scenario(), 10))
    finally:
        broker.log_manager.close()
