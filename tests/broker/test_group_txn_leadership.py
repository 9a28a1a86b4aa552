"""Cluster mode: pending transactional offsets follow the leadership of their
``__consumer_offsets`` partition. A broker that stops leading forgets them (and its producer
index), a marker it hears as a follower changes nothing, and when it leads again the replay
brings them back pending, for the marker written there to complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.group.hashing import partition_for
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from tests.broker.conftest import Caller
from tests.broker.control_kit import LOCAL, OTHER, PState, cluster_broker, leader_and_isr, update_metadata
from tests.broker.test_coordinator_follows_leadership import (
    COUNT,
    GROUP,
    NODES,
    OFFSETS,
    acall,
    offsets_states,
)

PID = 77


async def stable_fetch(c: Caller) -> tuple[int, int, int]:
    """(group error, partition error, offset) of "t"-0 with require_stable."""
    request = OffsetFetchRequest(
        group_id=GROUP, topics=[OffsetFetchRequestTopic("t", [0])], require_stable=True
    )
    response = await acall(c, request, 7)
    if response.error_code:
        return response.error_code, 0, -1
    partition = response.topics[0].partitions[0]
    return 0, partition.error_code, partition.committed_offset


def test_pending_transactional_offsets_follow_leadership(tmp_path: Path) -> None:
    # No transaction coordinator here (markers by hand): KIP-890 verification off.
    broker = cluster_broker(
        tmp_path / "cluster-data",
        **{"offsets.topic.num.partitions": str(COUNT), "transaction.partition.verification.enable": "false"},
    )
    c = Caller(broker)
    store = broker.group_coordinator.store
    index = partition_for(GROUP, COUNT)
    tp = TopicPartition(OFFSETS, index)

    async def elect(states: list[PState]) -> None:
        await acall(c, update_metadata(8, NODES, [*states, PState("t", 0, OTHER, 0, [OTHER])]), 8)
        assert (await acall(c, leader_and_isr(7, states), 7)).error_code == 0
        loading = store._tasks.get(index)  # the replay this election started, if still running
        if loading is not None:
            await asyncio.wait_for(asyncio.shield(loading), 10)

    async def scenario() -> None:
        broker.group_coordinator.start()  # as Broker.start does
        await elect(offsets_states(LOCAL, 1))
        commit = TxnOffsetCommitRequest(
            transactional_id="tx",
            group_id=GROUP,
            producer_id=PID,
            producer_epoch=0,
            topics=[TxnOffsetCommitRequestTopic("t", [TxnOffsetCommitRequestPartition(0, 42)])],
        )
        assert (await acall(c, commit, 3)).topics[0].partitions[0].error_code == 0
        assert await stable_fetch(c) == (0, ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
        assert store.producer_groups == {PID: {GROUP}}

        await elect(offsets_states(OTHER, 2))
        assert store.producer_groups == {}
        assert await stable_fetch(c) == (ErrorCode.NOT_COORDINATOR, 0, -1)
        broker.replica_manager.notify_txn_marker(tp, PID, 0, True, 10)  # heard as a follower: ignored

        await elect(offsets_states(LOCAL, 3))
        assert store.producer_groups == {PID: {GROUP}}
        assert await stable_fetch(c) == (0, ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
        replica = broker.replica_manager.get(tp)
        assert replica is not None
        broker.replica_manager.notify_txn_marker(tp, PID, 0, True, replica.log.log_end_offset)
        assert await stable_fetch(c) == (0, 0, 42)
        await broker.group_coordinator.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.log_manager.close()
