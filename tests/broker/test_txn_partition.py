"""Transactions on the partition side, through the handlers: transactional produce, WriteTxnMarkers,
the LSO in read_committed Fetch and ListOffsets with the aborted transactions, DescribeProducers,
coordinator-written transactional batches, and a follower that replicates markers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.network.client import BrokerConnection
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.describe_producers_request import DescribeProducersRequest, TopicRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import AbortedTransaction, FetchResponse, PartitionData
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.messages.write_txn_markers_request import (
    WritableTxnMarker,
    WritableTxnMarkerTopic,
    WriteTxnMarkersRequest,
)
from protocol.messages.write_txn_markers_response import WritableTxnMarkerResult, WriteTxnMarkersResponse
from protocol.records import Record, build_batch
from protocol.records.record import decode_batch
from storage import FileSlice
from storage.txn_index import AbortedTxn
from tests.broker.conftest import Caller, make_broker
from tests.broker.control_kit import PState
from tests.broker.fake_controller import FakeController
from tests.broker.fake_server import run
from tests.broker.test_data_plane import create, produce
from tests.broker.test_network_client import FAST, brook
from tests.broker.test_replication_e2e import CONTROLLER, T_ID, TP, Cluster, until

#: Record timestamps near the broker's clock: a marker (stamped now) far from them would roll a
#: segment by segment.ms, and a fetch reads one segment at a time.
TS = int(time.time() * 1000)
PID = 1000
#: These tests play the transaction coordinator by hand (transactional batches without
#: AddPartitionsToTxn, markers written directly): KIP-890 verification is off, as a Kafka broker
#: with ``transaction.partition.verification.enable=false``. tests/broker/test_txn_verification.py
#: covers it on.
NO_VERIFICATION = {"transaction.partition.verification.enable": "false"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = make_broker(tmp_path / "data", **NO_VERIFICATION)
    try:
        yield b
    finally:
        b.log_manager.close()


def txn_batch(
    values: list[bytes], seq: int, *, pid: int = PID, epoch: int = 0, transactional: bool = True
) -> bytes:
    records = [Record(i, 0, b"k", v) for i, v in enumerate(values)]
    return build_batch(
        records,
        base_timestamp=TS,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=transactional,
    )


def produce_txn(
    topic: str, data: bytes, partition: int = 0, transactional_id: str | None = "tx"
) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=transactional_id,
        acks=-1,
        timeout_ms=5_000,
        topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, data)])],
    )


def markers(
    topic: str,
    committed: bool,
    *,
    pid: int = PID,
    epoch: int = 0,
    coordinator_epoch: int = 0,
    partitions: list[int] | None = None,
) -> WriteTxnMarkersRequest:
    return WriteTxnMarkersRequest(
        markers=[
            WritableTxnMarker(
                producer_id=pid,
                producer_epoch=epoch,
                transaction_result=committed,
                topics=[WritableTxnMarkerTopic(topic, partitions or [0])],
                coordinator_epoch=coordinator_epoch,
            )
        ]
    )


def codes_of(results: list[WritableTxnMarkerResult]) -> list[int]:
    return [p.error_code for m in results for t in m.topics for p in t.partitions]


def marker_codes(response: WriteTxnMarkersResponse) -> list[int]:
    return codes_of(response.markers)


def fetch(topic: str, offset: int, *, committed: bool, max_wait_ms: int = 0) -> FetchRequest:
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=1 if committed else 0,
        topics=[
            FetchTopic(
                topic=topic,
                partitions=[FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)],
            )
        ],
    )


def values_of(data: PartitionData) -> list[bytes]:
    records = data.records
    raw = records.read() if isinstance(records, FileSlice) else bytes(records)
    if isinstance(records, FileSlice):
        records.close()
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        header, recs = decode_batch(raw, pos)
        if not header.is_control:
            out.extend(r.value or b"" for r in recs)
        pos += header.size
    return out


def latest(call: Caller, topic: str, committed: bool) -> int:
    request = ListOffsetsRequest(
        replica_id=-1,
        isolation_level=1 if committed else 0,
        topics=[ListOffsetsTopic(topic, [ListOffsetsPartition(partition_index=0, timestamp=-1)])],
    )
    answer = call(request, 7).topics[0].partitions[0]
    assert answer.error_code == 0
    return int(answer.offset)


# -- over the wire -------------------------------------------------------------------------------


def test_aborted_then_committed_transaction_over_the_wire(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with brook(tmp_path, **NO_VERIFICATION) as broker:
            heard: list[tuple[TopicPartition, int, int, bool, int]] = []
            broker.replica_manager.add_txn_marker_listener(lambda *args: heard.append(args))
            conn = await BrokerConnection.open(0, "127.0.0.1", broker.bound_ports["PLAINTEXT"], FAST)
            try:
                created = await conn.request(CreateTopicsRequest(topics=[CreatableTopic("tx", 1, 1)]))
                assert created.body.topics[0].error_code == 0
                answer = await conn.request(produce_txn("tx", txn_batch([b"a1", b"a2"], 0)), version=9)
                assert answer.body.responses[0].partition_responses[0].error_code == 0

                # The open transaction holds the LSO at its first offset: read_committed sees nothing.
                first = (await conn.request(fetch("tx", 0, committed=True), version=12)).body
                data = first.responses[0].partitions[0]
                assert (data.high_watermark, data.last_stable_offset) == (2, 0)
                assert values_of(data) == [] and data.aborted_transactions == []

                # A read_committed long poll at the LSO, woken by the marker's append.
                waiting = asyncio.ensure_future(
                    conn.request(fetch("tx", 0, committed=True, max_wait_ms=30_000), version=12)
                )
                await asyncio.sleep(0.05)
                assert not waiting.done()
                written = await conn.request(markers("tx", committed=False), version=1)
                assert written.version == 1 and marker_codes(written.body) == [0]
                woken: FetchResponse = (await asyncio.wait_for(waiting, 10)).body
                data = woken.responses[0].partitions[0]
                assert (data.high_watermark, data.last_stable_offset) == (3, 3)
                assert values_of(data) == [b"a1", b"a2"]  # the consumer drops them: aborted
                assert data.aborted_transactions == [AbortedTransaction(producer_id=PID, first_offset=0)]
                assert heard == [(TopicPartition("tx", 0), PID, 0, False, 2)]

                # The second transaction commits: no aborted transaction in its range.
                await conn.request(produce_txn("tx", txn_batch([b"c1"], 2)), version=9)
                assert marker_codes((await conn.request(markers("tx", committed=True), version=0)).body) == [
                    0
                ]
                data = (
                    (await conn.request(fetch("tx", 3, committed=True), version=12))
                    .body.responses[0]
                    .partitions[0]
                )
                assert values_of(data) == [b"c1"] and data.aborted_transactions == []
                assert data.last_stable_offset == 5
                plain = (
                    (await conn.request(fetch("tx", 0, committed=False), version=12))
                    .body.responses[0]
                    .partitions[0]
                )
                assert plain.aborted_transactions is None and values_of(plain) == [b"a1", b"a2", b"c1"]
            finally:
                conn.close()
                await conn.wait_closed()

    run(scenario())


# -- in process ----------------------------------------------------------------------------------


def test_list_offsets_read_committed_answers_the_lso(call: Caller) -> None:
    create(call, "lo")
    call(produce_txn("lo", txn_batch([b"x"], 0)), 9)
    assert (latest(call, "lo", committed=True), latest(call, "lo", committed=False)) == (0, 1)
    assert marker_codes(call(markers("lo", committed=True), 1)) == [0]
    assert (latest(call, "lo", committed=True), latest(call, "lo", committed=False)) == (2, 2)


def test_marker_errors(call: Caller) -> None:
    create(call, "me")
    assert marker_codes(call(markers("nope", committed=True), 1)) == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    assert marker_codes(call(markers("me", committed=True, partitions=[5]), 1)) == [
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    ]
    call(produce_txn("me", txn_batch([b"x"], 0, epoch=2)), 9)
    assert marker_codes(call(markers("me", committed=False, epoch=1), 1)) == [
        ErrorCode.INVALID_PRODUCER_EPOCH
    ]
    assert marker_codes(call(markers("me", committed=False, epoch=2, coordinator_epoch=4), 1)) == [0]
    assert marker_codes(call(markers("me", committed=False, epoch=2, coordinator_epoch=3), 1)) == [
        ErrorCode.TRANSACTION_COORDINATOR_FENCED
    ]
    assert call.broker.replica_manager.get(("me", 0)).log.log_end_offset == 2


def test_transactional_produce_rules(call: Caller) -> None:
    create(call, "pr")
    # Transactional records need a transactional id (Kafka's authorization check).
    refused = call(produce_txn("pr", txn_batch([b"x"], 0), transactional_id=None), 9)
    assert (
        refused.responses[0].partition_responses[0].error_code
        == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )
    assert (
        call(produce_txn("pr", txn_batch([b"x"], 0)), 9).responses[0].partition_responses[0].error_code == 0
    )
    # A non-transactional write by the same producer while its transaction is open.
    plain = produce(call, "pr", 0, txn_batch([b"y"], 1, transactional=False))
    assert plain.error_code == ErrorCode.INVALID_TXN_STATE


def test_describe_producers(call: Caller) -> None:
    create(call, "dp")
    call(produce_txn("dp", txn_batch([b"x", b"y"], 0, epoch=3)), 9)
    request = DescribeProducersRequest(topics=[TopicRequest("dp", [0, 9]), TopicRequest("missing", [0])])
    response = call(request, 0)
    known, absent = response.topics[0].partitions
    assert known.error_code == 0 and absent.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    (state,) = known.active_producers
    assert (state.producer_id, state.producer_epoch, state.last_sequence, state.current_txn_start_offset) == (
        PID,
        3,
        1,
        0,
    )
    assert state.last_timestamp == TS and state.coordinator_epoch == -1
    assert response.topics[1].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    call(markers("dp", committed=True, epoch=3, coordinator_epoch=6), 1)
    (state,) = call(request, 0).topics[0].partitions[0].active_producers
    assert (state.coordinator_epoch, state.current_txn_start_offset) == (6, -1)


def test_coordinator_written_transactional_batch_holds_the_lso(call: Caller) -> None:
    """Seam 3: the group coordinator's TxnOffsetCommit batch (no sequence) through append_internal."""
    create(call, "co")
    partition = call.broker.replica_manager.get(("co", 0))
    batch = bytearray(txn_batch([b"offsets"], -1, pid=77, epoch=1))
    assert partition.append_internal(batch).error == ErrorCode.NONE
    assert partition.high_watermark == 1 and partition.last_stable_offset == 0
    assert marker_codes(call(markers("co", committed=False, pid=77, epoch=1), 1)) == [0]
    assert partition.last_stable_offset == 2
    assert partition.log.collect_aborted_transactions(0, 2) == [AbortedTxn(77, 0, 1, 2)]


def test_follower_replicates_markers_with_the_same_lso_and_txnindex(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeController([1, 2, CONTROLLER], {TP.topic: T_ID}) as controller:
            cluster = Cluster(tmp_path, controller, **{"min.insync.replicas": "2", **NO_VERIFICATION})
            try:
                leader_broker: Broker = await cluster.start(1)
                await cluster.start(2)
                await cluster.tell(PState(TP.topic, 0, 1, 1, [1, 2], isr=[1, 2]))
                caller = Caller(leader_broker)
                for seq, pid in ((0, PID), (0, PID + 1), (1, PID)):
                    answer = await caller.start(produce_txn(TP.topic, txn_batch([b"v"], seq, pid=pid)), 9)
                    assert answer.responses[0].partition_responses[0].error_code == 0
                # acks=-1: answered once the follower fetched past the marker (HW moved).
                results = await leader_broker.replica_manager.write_txn_markers(
                    markers(TP.topic, False).markers
                )
                assert codes_of(results) == [0]
                leader, follower = cluster.partition(1), cluster.partition(2)
                assert leader.high_watermark == leader.log_end_offset == 4
                assert leader.last_stable_offset == 1  # PID + 1's transaction is still open
                await until(follower, lambda: follower.high_watermark == 4)
                assert follower.last_stable_offset == 1
                assert follower.log.collect_aborted_transactions(0, 4) == [AbortedTxn(PID, 0, 3, 1)]
                name = "00000000000000000000.txnindex"
                leader_index = tmp_path / "b1" / f"{TP.topic}-0" / name
                assert leader_index.read_bytes() == (tmp_path / "b2" / f"{TP.topic}-0" / name).read_bytes()

                # A read_committed long poll at the LSO on the leader, woken once the COMMIT marker
                # is replicated: the HW passes it, and the LSO moves with it.
                waiting = asyncio.ensure_future(
                    caller.start(fetch(TP.topic, 1, committed=True, max_wait_ms=30_000), 12)
                )
                await asyncio.sleep(0.05)
                assert not waiting.done()
                committed = markers(TP.topic, True, pid=PID + 1).markers
                assert codes_of(await leader_broker.replica_manager.write_txn_markers(committed)) == [0]
                data = (await asyncio.wait_for(waiting, 10)).responses[0].partitions[0]
                assert data.last_stable_offset == data.high_watermark == 5
                assert values_of(data) == [b"v", b"v"]  # PID + 1's, then PID's aborted one
                assert data.aborted_transactions == [AbortedTransaction(producer_id=PID, first_offset=0)]
            finally:
                await cluster.stop_all()

    run(scenario(), timeout=60)


def test_marker_is_flushed_when_flush_messages_is_reached(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "data", **{"log.flush.interval.messages": "1", **NO_VERIFICATION})
    try:
        call = Caller(broker)
        create(call, "fl")
        call(produce_txn("fl", txn_batch([b"x"], 0)), 9)
        log = broker.replica_manager.get(("fl", 0)).log
        assert log.recovery_point == 1
        assert marker_codes(call(markers("fl", committed=False), 1)) == [0]
        assert log.recovery_point == 2  # fsync'd before the answer
    finally:
        broker.log_manager.close()


def test_marker_not_replicated_in_time_answers_request_timed_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeController([1, 2, CONTROLLER], {TP.topic: T_ID}) as controller:
            cluster = Cluster(tmp_path, controller, **{"min.insync.replicas": "2", **NO_VERIFICATION})
            try:
                leader_broker = await cluster.start(1)  # the follower never starts: the HW stays
                await cluster.tell(PState(TP.topic, 0, 1, 1, [1, 2], isr=[1, 2]))
                leader_broker.replica_manager.txn_marker_timeout_ms = 200
                heard: list[object] = []
                leader_broker.replica_manager.add_txn_marker_listener(lambda *args: heard.append(args))
                results = await leader_broker.replica_manager.write_txn_markers(
                    markers(TP.topic, False).markers
                )
                assert codes_of(results) == [ErrorCode.REQUEST_TIMED_OUT]
                assert cluster.partition(1).log_end_offset == 1 and heard == []  # written, not durable
            finally:
                await cluster.stop_all()

    run(scenario(), timeout=60)
