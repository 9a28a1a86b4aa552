"""Cluster mode: the group coordinator follows the controller's leadership of
``__consumer_offsets`` (Kafka's onLeadershipChange): it serves a group while this broker leads the
group's partition, answers NOT_COORDINATOR once it follows, and replays the partition when it
leads again."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

from broker.group.hashing import partition_for
from protocol.error_codes import ErrorCode
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from tests.broker.conftest import Caller
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)

OFFSETS = "__consumer_offsets"
GROUP = "g"
COUNT = 3
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "10.0.0.2", 9093)]


async def acall(c: Caller, request: Any, version: int) -> Any:
    result = c.start(request, version)
    return await result if inspect.isawaitable(result) else result


def offsets_states(leader_of_group: int, epoch: int) -> list[PState]:
    index = partition_for(GROUP, COUNT)
    return [
        PState(OFFSETS, i, leader_of_group if i == index else LOCAL, epoch, [LOCAL, OTHER], isr=[LOCAL])
        for i in range(COUNT)
    ]


async def fetched_offset(c: Caller) -> tuple[int, int]:
    request = OffsetFetchRequest(group_id=GROUP, topics=[OffsetFetchRequestTopic("t", [0])])
    response = await acall(c, request, 5)
    if response.error_code:
        return response.error_code, -1
    return response.error_code, response.topics[0].partitions[0].committed_offset


def test_the_coordinator_follows_leadership_of_the_offsets_partitions(tmp_path: Path) -> None:
    broker = cluster_broker(tmp_path / "cluster-data", **{"offsets.topic.num.partitions": str(COUNT)})
    c = Caller(broker)
    store = broker.group_coordinator.store
    index = partition_for(GROUP, COUNT)

    async def scenario() -> None:
        broker.group_coordinator.start()  # as Broker.start does
        states = offsets_states(LOCAL, 1)
        await acall(c, update_metadata(8, NODES, [*states, PState("t", 0, OTHER, 0, [OTHER])]), 8)
        assert (await acall(c, leader_and_isr(7, states), 7)).error_code == 0
        found = await acall(c, FindCoordinatorRequest(key=GROUP), 1)
        assert (found.error_code, found.node_id) == (0, LOCAL)
        commit = OffsetCommitRequest(
            group_id=GROUP,
            generation_id_or_member_epoch=-1,
            topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 42)])],
        )
        assert (await acall(c, commit, 8)).topics[0].partitions[0].error_code == 0
        assert await fetched_offset(c) == (0, 42)

        # The controller moves the group's partition to broker 2.
        moved = offsets_states(OTHER, 2)
        await acall(c, update_metadata(8, NODES, moved), 8)
        assert (await acall(c, leader_and_isr(7, moved), 7)).error_code == 0
        assert await fetched_offset(c) == (ErrorCode.NOT_COORDINATOR, -1)
        assert GROUP not in store.groups

        # And back: the partition is replayed before the group is served again.
        back = offsets_states(LOCAL, 3)
        await acall(c, update_metadata(8, NODES, back), 8)
        assert (await acall(c, leader_and_isr(7, back), 7)).error_code == 0
        loading = store._tasks.get(index)  # the replay this election started, if still running
        if loading is not None:
            await asyncio.wait_for(asyncio.shield(loading), 10)
        assert await fetched_offset(c) == (0, 42)
        await broker.group_coordinator.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.log_manager.close()
