"""KIP-392 in one broker process: the leader names a preferred read replica to a consumer of another
rack (v11+), and a follower serves consumers (v11+) up to its own high watermark."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.config import ConfigError
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import PartitionData
from protocol.records import batch as rb
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
from tests.broker.test_data_plane import batch, produce
from tests.broker.test_follower_fetch_handling import follower_fetch

T_ID = uuid.UUID("5b1e2c3d-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
NODES = [Node(LOCAL, "127.0.0.1", 9092, "a"), Node(OTHER, "127.0.0.1", 9093, "b")]


def consumer_fetch(
    call: Caller, offset: int, version: int, rack: str = "", leader_epoch: int = -1
) -> PartitionData:
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[FetchTopic("t", T_ID, [FetchPartition(0, leader_epoch, offset, -1, -1, 1 << 20)])],
        rack_id=rack,
    )
    response = call(request, version)
    assert response.error_code == 0
    return response.responses[0].partitions[0]  # type: ignore[no-any-return]


def offsets_of(data: PartitionData) -> list[int]:
    raw = bytes(data.records.read()) if hasattr(data.records, "read") else bytes(data.records)
    if hasattr(data.records, "close"):
        data.records.close()
    out: list[int] = []
    for pos, _ in rb.iter_entries(raw):
        header = rb.read_header(raw, pos)
        out.extend(range(header.base_offset, header.base_offset + header.last_offset_delta + 1))
    return out


@pytest.fixture
def rack_aware_leader(tmp_path: Path) -> Iterator[tuple[Broker, Caller]]:
    broker = cluster_broker(tmp_path / "leader", **{"replica.selector.class": RACK_AWARE})
    call = Caller(broker)
    state = PState("t", 0, LOCAL, 3, [LOCAL, OTHER], isr=[LOCAL, OTHER])
    assert call(update_metadata(8, NODES, [state], topic_ids={"t": T_ID}), 8).error_code == 0
    assert call(leader_and_isr(7, [state], topic_ids={"t": T_ID}), 7).error_code == 0
    try:
        yield broker, call
    finally:
        broker.log_manager.close()


def test_a_consumer_in_the_followers_rack_is_sent_to_it(rack_aware_leader: tuple[Broker, Caller]) -> None:
    _, call = rack_aware_leader
    for i in range(3):
        assert produce(call, "t", 0, batch([b"v%d" % i]), acks=1).error_code == 0
    follower_fetch(call, 3, 12)  # the follower has everything: HW 3

    sent = consumer_fetch(call, 1, 11, rack="b")
    assert (sent.error_code, sent.preferred_read_replica, sent.high_watermark) == (0, OTHER, 3)
    assert not sent.records
    # Own rack, no rack, or an old version: the leader serves.
    for rack, version in (("a", 11), ("", 11), ("b", 10)):
        data = consumer_fetch(call, 1, version, rack=rack)
        assert data.preferred_read_replica == -1
        assert offsets_of(data) == [1, 2]


def test_a_follower_behind_the_fetch_offset_is_not_preferred(
    rack_aware_leader: tuple[Broker, Caller],
) -> None:
    _, call = rack_aware_leader
    for i in range(3):
        assert produce(call, "t", 0, batch([b"v%d" % i]), acks=1).error_code == 0
    follower_fetch(call, 1, 12)  # the follower's log ends at 1
    assert consumer_fetch(call, 0, 11, rack="b").preferred_read_replica == OTHER
    behind = consumer_fetch(call, 2, 11, rack="b")
    assert behind.preferred_read_replica == -1


def test_without_a_selector_the_leader_always_serves(tmp_path: Path) -> None:
    broker = cluster_broker(tmp_path / "plain")
    call = Caller(broker)
    state = PState("t", 0, LOCAL, 3, [LOCAL, OTHER], isr=[LOCAL, OTHER])
    try:
        call(update_metadata(8, NODES, [state], topic_ids={"t": T_ID}), 8)
        call(leader_and_isr(7, [state], topic_ids={"t": T_ID}), 7)
        assert produce(call, "t", 0, batch([b"x"]), acks=1).error_code == 0
        follower_fetch(call, 1, 12)
        data = consumer_fetch(call, 0, 11, rack="b")
        assert (data.preferred_read_replica, offsets_of(data)) == (-1, [0])
    finally:
        broker.log_manager.close()


def test_an_unknown_selector_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"replica\.selector\.class"):
        cluster_broker(tmp_path / "bad", **{"replica.selector.class": "com.example.Nearest"})


def test_a_follower_serves_consumers_up_to_its_high_watermark(tmp_path: Path) -> None:
    broker = cluster_broker(tmp_path / "follower")
    call = Caller(broker)
    try:
        leading = PState("t", 0, LOCAL, 1, [LOCAL, OTHER], isr=[LOCAL])
        call(update_metadata(8, NODES, [leading], topic_ids={"t": T_ID}), 8)
        call(leader_and_isr(7, [leading], topic_ids={"t": T_ID}), 7)
        for i in range(4):
            assert produce(call, "t", 0, batch([b"v%d" % i]), acks=1).error_code == 0
        # Leadership moves to broker 2; this replica keeps its log and becomes a follower.
        following = PState("t", 0, OTHER, 2, [LOCAL, OTHER], isr=[OTHER, LOCAL])
        call(leader_and_isr(7, [following], topic_ids={"t": T_ID}), 7)
        call(update_metadata(8, NODES, [following], topic_ids={"t": T_ID}), 8)
        partition = broker.replica_manager.get(TopicPartition("t", 0))
        assert partition is not None and not partition.is_leader and partition.log_end_offset == 4
        partition.log.high_watermark = 2  # the follower has not learnt more yet

        old = consumer_fetch(call, 0, 10)
        assert old.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        data = consumer_fetch(call, 0, 11)
        assert (data.error_code, data.high_watermark, offsets_of(data)) == (0, 2, [0, 1])
        above_hw = consumer_fetch(call, 3, 12)
        assert (above_hw.error_code, offsets_of(above_hw)) == (0, [])
        past_end = consumer_fetch(call, 5, 12)
        assert past_end.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        assert consumer_fetch(call, 0, 12, leader_epoch=1).error_code == ErrorCode.FENCED_LEADER_EPOCH
        assert consumer_fetch(call, 0, 12, leader_epoch=2).error_code == 0
    finally:
        broker.log_manager.close()
