"""Cluster mode: the transaction coordinator follows the controller's leadership of
``__transaction_state`` (Kafka's onElection / onResignation): it serves a transactional id while
this broker leads the id's partition, at coordinator epoch = the leader epoch, answers
NOT_COORDINATOR once it follows, and reloads the partition when it leads again. Markers go to
the leader of each partition: the local one through the WriteTxnMarkers seam (a test double)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.group.hashing import partition_for
from broker.txn.coordinator import TransactionCoordinator
from broker.txn.state import TxnState
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
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
from tests.broker.txn_kit import FakeMarkerWriter, acall

TXN = "__transaction_state"
TID = "tx"
COUNT = 3
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "10.0.0.2", 9093)]


def txn_states(leader_of_id: int, epoch: int) -> list[PState]:
    index = partition_for(TID, COUNT)
    return [
        PState(TXN, i, leader_of_id if i == index else LOCAL, epoch, [LOCAL, OTHER], isr=[LOCAL])
        for i in range(COUNT)
    ]


def test_the_transaction_coordinator_follows_leadership(tmp_path: Path) -> None:
    broker = cluster_broker(
        tmp_path / "cluster-data",
        **{"transaction.state.log.num.partitions": str(COUNT), "transaction.state.log.min.isr": "1"},
    )
    c = Caller(broker)
    writer = FakeMarkerWriter()
    coordinator: TransactionCoordinator = broker.txn_coordinator
    coordinator.markers.writer = writer
    index = partition_for(TID, COUNT)
    data = PState("t", 0, LOCAL, 0, [LOCAL])

    async def init() -> tuple[int, int, int]:
        r = await acall(c, InitProducerIdRequest(TID, 60000), 4)
        return r.error_code, r.producer_id, r.producer_epoch

    async def scenario() -> None:
        coordinator.start()  # as Broker.start does
        states = txn_states(LOCAL, 4)
        await acall(c, update_metadata(8, NODES, [*states, data]), 8)
        assert (await acall(c, leader_and_isr(7, [*states, data]), 7)).error_code == 0
        await asyncio.wait_for(coordinator.wait_idle(), 10)
        assert coordinator.store.owned[index] == 4  # the coordinator epoch is the leader epoch
        found = await acall(c, FindCoordinatorRequest(key=TID, key_type=1), 1)
        assert (found.error_code, found.node_id) == (0, LOCAL)
        error, pid, epoch = await init()
        assert error == ErrorCode.NONE
        add = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=TID,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic("t", [0])],
        )
        assert (await acall(c, add, 3)).results_by_topic_v3_and_below[0].results_by_partition[
            0
        ].partition_error_code == 0

        # The controller moves the id's partition to broker 2: this one stops coordinating it.
        moved = txn_states(OTHER, 5)
        await acall(c, update_metadata(8, NODES, [*moved, data]), 8)
        assert (await acall(c, leader_and_isr(7, moved), 7)).error_code == 0
        assert (await init())[0] == ErrorCode.NOT_COORDINATOR
        found = await acall(c, FindCoordinatorRequest(key=TID, key_type=1), 1)
        assert (found.error_code, found.node_id) == (0, OTHER)

        # And back: reloaded at the new epoch, the ongoing transaction is there; it commits and
        # its marker carries the new coordinator epoch.
        back = txn_states(LOCAL, 6)
        await acall(c, update_metadata(8, NODES, [*back, data]), 8)
        assert (await acall(c, leader_and_isr(7, back), 7)).error_code == 0
        await asyncio.wait_for(coordinator.wait_idle(), 10)
        metadata = coordinator.store.get(TID).metadata
        assert metadata is not None and metadata.state is TxnState.ONGOING
        assert (await acall(c, EndTxnRequest(TID, pid, epoch, True), 3)).error_code == 0
        await asyncio.wait_for(coordinator.wait_idle(), 10)
        assert metadata.state is TxnState.COMPLETE_COMMIT
        assert writer.written == [(TopicPartition("t", 0), pid, epoch, True, 6)]
        await coordinator.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.log_manager.close()


def test_markers_for_another_leader_go_over_the_wire_and_are_retried(tmp_path: Path) -> None:
    """A partition led by broker 2 gets WriteTxnMarkers v1 at its inter-broker endpoint; a
    retriable error and a dropped connection are retried until the marker is written."""
    from protocol.messages.write_txn_markers_response import (
        WritableTxnMarkerPartitionResult,
        WritableTxnMarkerResult,
        WritableTxnMarkerTopicResult,
        WriteTxnMarkersResponse,
    )
    from tests.broker.fake_server import FakeConn, FakeServer

    broker = cluster_broker(tmp_path / "cluster-data", **{"transaction.state.log.num.partitions": str(COUNT)})
    c = Caller(broker)
    writer = FakeMarkerWriter()
    coordinator: TransactionCoordinator = broker.txn_coordinator
    coordinator.markers.writer = writer
    coordinator.markers.retry_backoff_ms = 1
    received: list[tuple[int, object]] = []
    answers = [ErrorCode.NOT_LEADER_OR_FOLLOWER, None, ErrorCode.NONE]  # None: drop the connection

    async def remote_leader(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            received.append((request.version, request.body))
            answer = answers.pop(0)
            if answer is None:
                conn.close()
                return
            (marker,) = request.body.markers
            result = WritableTxnMarkerResult(
                marker.producer_id,
                [
                    WritableTxnMarkerTopicResult(
                        t.name, [WritableTxnMarkerPartitionResult(p, answer) for p in t.partition_indexes]
                    )
                    for t in marker.topics
                ],
            )
            conn.answer(request, WriteTxnMarkersResponse([result]))

    async def scenario() -> None:
        async with FakeServer(remote_leader) as server:
            nodes = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "127.0.0.1", server.port)]
            coordinator.start()
            states = [
                *txn_states(LOCAL, 1),
                PState("t", 0, LOCAL, 0, [LOCAL]),
                PState("r", 0, OTHER, 0, [OTHER]),
            ]
            await acall(c, update_metadata(8, nodes, states), 8)
            assert (await acall(c, leader_and_isr(7, states[:-1]), 7)).error_code == 0
            await asyncio.wait_for(coordinator.wait_idle(), 10)
            r = await acall(c, InitProducerIdRequest(TID, 60000), 4)
            pid, epoch = r.producer_id, r.producer_epoch
            add = AddPartitionsToTxnRequest(
                v3_and_below_transactional_id=TID,
                v3_and_below_producer_id=pid,
                v3_and_below_producer_epoch=epoch,
                v3_and_below_topics=[AddPartitionsToTxnTopic("t", [0]), AddPartitionsToTxnTopic("r", [0])],
            )
            await acall(c, add, 3)
            assert (await acall(c, EndTxnRequest(TID, pid, epoch, False), 3)).error_code == 0
            await asyncio.wait_for(coordinator.wait_idle(), 20)
            metadata = coordinator.store.get(TID).metadata
            assert metadata is not None and metadata.state is TxnState.COMPLETE_ABORT
            assert writer.written == [(TopicPartition("t", 0), pid, epoch, False, 1)]
            assert len(received) == 3 and answers == []
            version, body = received[-1]
            assert version == 1
            (marker,) = body.markers  # type: ignore[attr-defined]
            assert (marker.producer_id, marker.producer_epoch, marker.transaction_result) == (
                pid,
                epoch,
                False,
            )
            assert (marker.coordinator_epoch, [(t.name, t.partition_indexes) for t in marker.topics]) == (
                1,
                [("r", [0])],
            )
            await coordinator.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.log_manager.close()


def test_a_transition_is_answered_once_the_followers_have_it(tmp_path: Path) -> None:
    """Writes to ``__transaction_state`` are acks=all: InitProducerId waits for the high
    watermark, which moves when the follower in the ISR fetches past the record."""
    from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

    broker = cluster_broker(tmp_path / "cluster-data", **{"transaction.state.log.num.partitions": str(COUNT)})
    c = Caller(broker)
    coordinator: TransactionCoordinator = broker.txn_coordinator
    index = partition_for(TID, COUNT)
    states = [PState(TXN, i, LOCAL, 1, [LOCAL, OTHER], isr=[LOCAL, OTHER]) for i in range(COUNT)]

    def follower_fetch(offset: int) -> FetchRequest:
        partition = FetchPartition(
            index, current_leader_epoch=1, fetch_offset=offset, partition_max_bytes=1 << 20
        )
        request = FetchRequest(
            max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[FetchTopic(TXN, partitions=[partition])]
        )
        request.replica_id = OTHER
        return request

    async def scenario() -> None:
        coordinator.start()
        await acall(c, update_metadata(8, NODES, states), 8)
        assert (await acall(c, leader_and_isr(7, states), 7)).error_code == 0
        await asyncio.wait_for(coordinator.wait_idle(), 10)
        replica = coordinator.store.replica(index)
        assert replica is not None
        appended = asyncio.Event()
        replica.add_listener(appended.set)
        pending = asyncio.ensure_future(acall(c, InitProducerIdRequest(TID, 60000), 4))
        await asyncio.wait_for(appended.wait(), 10)  # the record is written; the answer must wait
        await asyncio.sleep(0)
        assert replica.log_end_offset == 1 and not pending.done()
        await acall(c, follower_fetch(0), 12)
        await asyncio.sleep(0)
        assert not pending.done()
        await acall(c, follower_fetch(1), 12)  # the follower has the record: the HW passes it
        answer = await asyncio.wait_for(pending, 10)
        assert (answer.error_code, answer.producer_epoch) == (ErrorCode.NONE, 0)
        await coordinator.stop()

    try:
        asyncio.run(scenario())
    finally:
        broker.log_manager.close()
