"""The leader's side of a follower's requests: Fetch with replica_id / replica_state reads to the
log end and moves the high watermark, a diverged fetch gets ``diverging_epoch`` (v12+), and
OffsetForLeaderEpoch from a replica answers from the leader-epoch cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ReplicaState
from protocol.messages.fetch_response import PartitionData
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from tests.broker.conftest import Caller, make_broker
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)
from tests.broker.test_data_plane import batch, produce

T_ID = uuid.UUID("7d3e9a10-4b2c-4f1e-9a8b-2c3d4e5f6a7b")
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "127.0.0.1", 9093)]


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[tuple[Broker, Caller]]:
    broker = cluster_broker(tmp_path / "leader")
    call = Caller(broker)
    state = PState("t", 0, LOCAL, 3, [LOCAL, OTHER], isr=[LOCAL, OTHER])
    assert call(update_metadata(8, NODES, [state], topic_ids={"t": T_ID}), 8).error_code == 0
    assert call(leader_and_isr(7, [state], topic_ids={"t": T_ID}), 7).error_code == 0
    try:
        yield broker, call
    finally:
        broker.log_manager.close()


def follower_fetch(
    call: Caller, offset: int, version: int, last_fetched_epoch: int = -1, leader_epoch: int = 3
) -> PartitionData:
    request = FetchRequest(
        replica_id=OTHER if version < 15 else -1,
        replica_state=ReplicaState(OTHER, 1) if version >= 15 else ReplicaState(),
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                "t",
                T_ID,
                [FetchPartition(0, leader_epoch, offset, last_fetched_epoch, -1, 1 << 20)],
            )
        ],
    )
    response = call(request, version)
    assert response.error_code == 0
    return response.responses[0].partitions[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", [11, 12, 14, 15, 17])
def test_follower_fetch_reads_to_the_log_end_and_moves_the_high_watermark(
    leader: tuple[Broker, Caller], version: int
) -> None:
    broker, call = leader
    for i in range(3):
        assert produce(call, "t", 0, batch([b"v%d" % i, b"w"]), acks=1).error_code == 0
    partition = broker.replica_manager.get(("t", 0))  # type: ignore[arg-type]
    assert partition is not None
    assert (partition.log_end_offset, partition.high_watermark) == (6, 0)  # the follower has nothing
    data = follower_fetch(call, 0, version)
    assert data.error_code == 0 and data.records is not None and len(data.records) > 0  # past the HW
    assert data.high_watermark == 0
    data = follower_fetch(call, 4, version)
    assert partition.high_watermark == 4 and data.high_watermark == 4
    data = follower_fetch(call, 6, version)
    assert partition.high_watermark == 6 and data.high_watermark == 6


def test_diverged_follower_gets_the_epoch_to_truncate_to(leader: tuple[Broker, Caller]) -> None:
    _, call = leader
    for i in range(2):
        assert produce(call, "t", 0, batch([b"a%d" % i]), acks=1).error_code == 0
    # The follower claims epoch 2 up to offset 5: this leader's log has no epoch 2 (its epoch 3
    # starts at 0), so the follower must truncate to where epoch 2 ends here, which is 0.
    data = follower_fetch(call, 5, 12, last_fetched_epoch=2)
    assert (data.diverging_epoch.epoch, data.diverging_epoch.end_offset) == (2, 0)
    assert not data.records
    # Consistent: epoch 3 ends at this log's end, 2, at or past the fetch offset.
    data = follower_fetch(call, 2, 12, last_fetched_epoch=3)
    assert (data.diverging_epoch.epoch, data.diverging_epoch.end_offset) == (-1, -1)
    # Claiming an epoch newer than any here: the leader cannot place it (Kafka's
    # OffsetOutOfRangeException "Could not determine the end offset of the last fetched epoch").
    data = follower_fetch(call, 0, 12, last_fetched_epoch=9, leader_epoch=3)
    assert data.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert not data.records


def test_offset_for_leader_epoch_from_a_replica(leader: tuple[Broker, Caller]) -> None:
    _, call = leader
    assert produce(call, "t", 0, batch([b"a", b"b"]), acks=1).error_code == 0
    request = OffsetForLeaderEpochRequest(
        replica_id=OTHER,
        topics=[
            OffsetForLeaderTopic("t", [OffsetForLeaderPartition(0, 3, 3), OffsetForLeaderPartition(0, 3, 1)])
        ],
    )
    answers = call(request, 4).topics[0].partitions
    assert [(a.error_code, a.leader_epoch, a.end_offset) for a in answers] == [(0, 3, 2), (0, 1, 0)]
    stale = OffsetForLeaderEpochRequest(
        replica_id=OTHER, topics=[OffsetForLeaderTopic("t", [OffsetForLeaderPartition(0, 2, 3)])]
    )
    assert call(stale, 4).topics[0].partitions[0].error_code == ErrorCode.FENCED_LEADER_EPOCH


def test_a_single_node_refuses_follower_fetches(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "single")
    try:
        request = FetchRequest(replica_id=OTHER, max_wait_ms=0, topics=[])
        assert Caller(broker)(request, 12).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    finally:
        broker.log_manager.close()
