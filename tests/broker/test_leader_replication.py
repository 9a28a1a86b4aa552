"""The leader side of replication, in process: follower fetches, the high watermark, ISR changes
through AlterPartition to a fake controller, and acks=all as a delayed produce."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from broker.app import Broker
from broker.handlers import HANDLERS
from broker.handlers.base import RequestContext
from broker.replica.partition import Partition
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ReplicaState
from protocol.messages.fetch_response import FetchResponse, PartitionData
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.messages.produce_response import PartitionProduceResponse
from protocol.messages.request_header import RequestHeader
from protocol.records import batch as rb
from protocol.records import decode_batch
from storage import FileSlice
from storage.clock import ManualClock
from tests.broker.conftest import FakeConnection, InlineDisk
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)
from tests.broker.fake_controller import FakeController
from tests.broker.fake_server import run
from tests.broker.test_data_plane import batch

T_ID = uuid.UUID("5d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
TOPIC = "rep"
TP = TopicPartition(TOPIC, 0)
CONTROLLER = 3
THIRD = 4
EPOCH = 3


async def acall(broker: Broker, request: Any, version: int) -> Any:
    """A handler called as the network layer does; returns the awaitable when it waits."""
    header = RequestHeader(request.API_KEY, version, 1, "test")
    ctx = RequestContext(broker, FakeConnection(), header, request.API_KEY, version)  # type: ignore[arg-type]
    decoded = type(request).decode(request.encode(version), version)
    return HANDLERS[request.API_KEY].handle(ctx, decoded)


async def settle(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


@asynccontextmanager
async def leader(
    tmp_path: Path,
    isr: list[int],
    *,
    min_insync: int = 1,
    replicas: list[int] | None = None,
    partitions: int = 1,
) -> AsyncIterator[tuple[Broker, Partition, FakeController]]:
    """This broker leads rep-0 (and rep-1.. up to ``partitions``; epoch 3) with ``isr``; a fake
    controller answers AlterPartition. Yields rep-0's replica."""
    replicas = replicas or [LOCAL, OTHER]
    async with FakeController([LOCAL, OTHER, CONTROLLER, THIRD], {TOPIC: T_ID}) as controller:
        broker = cluster_broker(tmp_path / "leader", **{"min.insync.replicas": str(min_insync)})
        broker.disk = InlineDisk()  # type: ignore[assignment]
        # One manual clock for the fetches, the logs and the ISR expiration.
        broker.clock = broker.log_manager.clock = ManualClock()  # type: ignore[assignment]
        try:
            nodes = [
                Node(LOCAL, "127.0.0.1", 9092),
                Node(OTHER, "127.0.0.1", 9093),
                Node(CONTROLLER, "127.0.0.1", controller.port),
                Node(THIRD, "127.0.0.1", 9094),
            ]
            states = [PState(TOPIC, p, LOCAL, EPOCH, replicas, isr) for p in range(partitions)]
            for p in range(partitions):
                controller.set_state(TopicPartition(TOPIC, p), LOCAL, EPOCH, isr, 0)
            await settle(await acall(broker, update_metadata(8, nodes, states, controller_id=CONTROLLER,
                                                             topic_ids={TOPIC: T_ID}), 8))
            response = await settle(await acall(broker, leader_and_isr(7, states, controller_id=CONTROLLER,
                                                                       topic_ids={TOPIC: T_ID}), 7))
            assert response.error_code == 0
            partition = broker.replica_manager.get(TP)
            assert partition is not None and partition.is_leader
            yield broker, partition, controller
        finally:
            if broker.alter_partition is not None:
                await broker.alter_partition.close()
            broker.log_manager.close()


def produce_request(values: list[bytes], acks: int = -1, timeout_ms: int = 10_000) -> ProduceRequest:
    return ProduceRequest(
        acks=acks,
        timeout_ms=timeout_ms,
        topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(0, batch(values))])],
    )


def first(response: Any) -> PartitionProduceResponse:
    return response.responses[0].partition_responses[0]  # type: ignore[no-any-return]


def follower_fetch(
    offset: int,
    *,
    replica: int = OTHER,
    version: int = 15,
    last_fetched_epoch: int = -1,
    current_epoch: int = EPOCH,
    max_wait_ms: int = 0,
) -> FetchRequest:
    request = FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                TOPIC,
                T_ID,
                [
                    FetchPartition(
                        0,
                        current_leader_epoch=current_epoch,
                        fetch_offset=offset,
                        last_fetched_epoch=last_fetched_epoch,
                        log_start_offset=0,
                        partition_max_bytes=1 << 20,
                    )
                ],
            )
        ],
    )
    if version >= 15:
        request.replica_state = ReplicaState(replica, -1)
    else:
        request.replica_id = replica
    return request


def consumer_fetch(offset: int) -> FetchRequest:
    request = follower_fetch(offset, replica=-1, version=15)
    request.replica_state = ReplicaState(-1, -1)
    return request


def pdata(response: FetchResponse) -> PartitionData:
    return response.responses[0].partitions[0]


def offsets_in(records: object) -> list[int]:
    if isinstance(records, FileSlice):
        try:
            raw = records.read()
        finally:
            records.close()
    else:
        raw = bytes(records)  # type: ignore[call-overload]
    out: list[int] = []
    for pos, _ in rb.iter_batches(raw):
        header, recs = decode_batch(raw, pos)
        out += [header.base_offset + r.offset_delta for r in recs]
    return out


def clock(broker: Broker) -> ManualClock:
    assert isinstance(broker.clock, ManualClock)
    return broker.clock


async def until(partition: Partition, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait, on the partition's events (appends, HW moves, ISR changes), for ``predicate``."""
    if predicate():
        return
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        if predicate() and not done.done():
            done.set_result(None)

    partition.add_listener(check)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        partition.remove_listener(check)


# -- follower fetches ------------------------------------------------------------------------------


def test_follower_reads_past_the_hw_and_moves_it_consumers_stop_at_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, _):
            answer = first(await settle(await acall(broker, produce_request([b"a", b"b", b"c"], acks=1), 9)))
            assert answer.error_code == 0 and partition.log_end_offset == 3
            assert partition.high_watermark == 0  # the follower has not fetched
            consumer = pdata(await settle(await acall(broker, consumer_fetch(0), 15)))
            assert consumer.high_watermark == 0 and offsets_in(consumer.records) == []
            latest = await settle(await acall(broker, ListOffsetsRequest(
                replica_id=-1, topics=[ListOffsetsTopic(TOPIC, [ListOffsetsPartition(0, timestamp=-1)])]), 7))
            assert latest.topics[0].partitions[0].offset == 0  # LATEST is the HW
            # The follower reads to the log end (v11: the replica_id field).
            data = pdata(await settle(await acall(broker, follower_fetch(0, version=11), 11)))
            assert isinstance(data.records, bytes)  # a small read is copied (COPY_BELOW), as for consumers
            assert data.error_code == 0 and offsets_in(data.records) == [0, 1, 2]
            assert data.log_start_offset == 0
            assert partition.high_watermark == 0  # it is at 0 until its next fetch says otherwise
            data = pdata(await settle(await acall(broker, follower_fetch(3), 15)))
            assert data.high_watermark == 3 and partition.high_watermark == 3
            consumer = pdata(await settle(await acall(broker, consumer_fetch(0), 15)))
            assert offsets_in(consumer.records) == [0, 1, 2]

    run(scenario())


def test_fetch_from_a_broker_outside_the_assignment_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, _partition, _):
            with_epoch = pdata(await settle(await acall(broker, follower_fetch(0, replica=THIRD), 15)))
            assert with_epoch.error_code == ErrorCode.UNKNOWN_LEADER_EPOCH
            old_style = follower_fetch(0, replica=THIRD, current_epoch=-1)
            without = pdata(await settle(await acall(broker, old_style, 15)))
            assert without.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
            fenced = pdata(await settle(await acall(broker, follower_fetch(0, current_epoch=EPOCH - 1), 15)))
            assert fenced.error_code == ErrorCode.FENCED_LEADER_EPOCH

    run(scenario())


def test_diverging_epoch_is_answered_without_records(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, _):
            await settle(await acall(broker, produce_request([b"a", b"b"], acks=1), 9))
            # The follower thinks epoch 2 went to offset 5; here epoch 3 started at 0: diverged.
            data = pdata(await settle(await acall(broker, follower_fetch(5, last_fetched_epoch=2), 15)))
            assert data.error_code == 0
            # Epoch 2 is older than anything here: it ends where the first known epoch starts.
            assert (data.diverging_epoch.epoch, data.diverging_epoch.end_offset) == (2, 0)
            assert offsets_in(data.records) == []
            assert partition.leader_state is not None
            assert partition.leader_state.followers[OTHER].log_end_offset == -1  # nothing recorded
            # A follower in step with the leader's epoch gets records.
            data = pdata(await settle(await acall(broker, follower_fetch(1, last_fetched_epoch=EPOCH), 15)))
            assert data.diverging_epoch.epoch == -1 and offsets_in(data.records) == [0, 1]  # whole batch

    run(scenario())


def test_follower_long_poll_is_woken_by_an_append(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, _partition, _):
            waiting = await acall(broker, follower_fetch(0, max_wait_ms=10_000), 15)
            assert inspect.isawaitable(waiting)
            task = asyncio.ensure_future(waiting)
            await asyncio.sleep(0)
            assert not task.done()
            await settle(await acall(broker, produce_request([b"x"], acks=1), 9))
            data = pdata(await asyncio.wait_for(task, 10))
            assert offsets_in(data.records) == [0]

    run(scenario())


# -- acks=all --------------------------------------------------------------------------------------


def test_acks_all_is_answered_once_the_follower_fetched_past_the_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            pending = asyncio.ensure_future(settle(await acall(broker, produce_request([b"a", b"b"]), 9)))
            await asyncio.sleep(0)
            assert not pending.done() and partition.log_end_offset == 2
            await settle(await acall(broker, follower_fetch(0), 15))  # fetched, not yet past it
            await asyncio.sleep(0)
            assert not pending.done()
            await settle(await acall(broker, follower_fetch(2), 15))
            answer = first(await asyncio.wait_for(pending, 10))
            assert answer.error_code == 0 and answer.base_offset == 0

    run(scenario())


def test_acks_all_with_the_isr_below_min_insync_is_refused_before_the_append(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL], min_insync=2) as (broker, partition, _):
            answer = first(await settle(await acall(broker, produce_request([b"a"]), 9)))
            assert answer.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
            assert partition.log_end_offset == 0
            answer = first(await settle(await acall(broker, produce_request([b"a"], acks=1), 9)))
            assert answer.error_code == 0

    run(scenario())


def test_acks_all_times_out_when_the_follower_never_fetches(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            answer = first(await settle(await acall(broker, produce_request([b"a"], timeout_ms=50), 9)))
            assert answer.error_code == ErrorCode.REQUEST_TIMED_OUT
            assert partition.high_watermark == 0

    run(scenario())


# -- ISR changes through the controller ------------------------------------------------------------


def test_a_lagging_follower_is_shrunk_out_and_the_waiting_produce_completes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, controller):
            pending = asyncio.ensure_future(settle(await acall(broker, produce_request([b"a"]), 9)))
            await asyncio.sleep(0)
            assert not pending.done()
            clock(broker).advance(30_000)
            broker.replica_manager.maybe_shrink_isr()  # within replica.lag.time.max.ms: stays
            assert partition.leader_state is not None and partition.leader_state.pending is None
            clock(broker).advance(1)
            broker.replica_manager.maybe_shrink_isr()
            assert partition.leader_state.pending is not None
            answer = first(await asyncio.wait_for(pending, 10))
            assert answer.error_code == 0
            assert partition.state.isr == [LOCAL] and partition.state.partition_epoch == 1
            assert controller.states[TP].isr == (LOCAL,)

    run(scenario())


def test_shrinking_below_min_insync_answers_not_enough_replicas_after_append(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            pending = asyncio.ensure_future(settle(await acall(broker, produce_request([b"a"]), 9)))
            await asyncio.sleep(0)
            clock(broker).advance(30_001)
            broker.replica_manager.maybe_shrink_isr()
            answer = first(await asyncio.wait_for(pending, 10))
            assert answer.error_code == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
            assert partition.high_watermark == 0  # under min ISR the HW stands (Kafka 3.9)

    run(scenario())


def test_a_caught_up_follower_joins_the_isr(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, controller):
            await settle(await acall(broker, produce_request([b"a", b"b"], acks=1), 9))
            assert partition.high_watermark == 2
            await settle(await acall(broker, follower_fetch(1), 15))  # below the HW: not yet
            assert partition.leader_state is not None and partition.leader_state.pending is None
            await settle(await acall(broker, follower_fetch(2), 15))
            await until(partition, lambda: partition.state.isr == [LOCAL, OTHER])
            assert partition.state.partition_epoch == 1 and controller.states[TP].isr == (LOCAL, OTHER)
            version, request = controller.requests[-1]
            assert version == 3 and request.broker_id == LOCAL
            assert request.topics[0].topic_id == T_ID and request.topics[0].partitions[0].partition_epoch == 0

    run(scenario())


def test_not_controller_is_retried_until_the_controller_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, controller):
            controller.not_controller = 2
            await settle(await acall(broker, follower_fetch(0), 15))
            await until(partition, lambda: partition.state.isr == [LOCAL, OTHER])
            assert len(controller.requests) == 3

    run(scenario())


def test_a_stale_partition_epoch_is_fenced_and_not_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, controller):
            controller.set_state(TP, LOCAL, EPOCH, [LOCAL, THIRD], 0)  # ISR changed behind our back
            controller.states[TP] = controller.states[TP].with_partition_epoch(2)
            await settle(await acall(broker, follower_fetch(0), 15))
            await controller.wait_requests(1)
            for _ in range(5):  # the answer's callbacks run within a few loop turns
                await asyncio.sleep(0)
            assert partition.state.isr == [LOCAL]
            assert partition.leader_state is not None and partition.leader_state.pending is not None
            assert broker.alter_partition is not None and broker.alter_partition.pending == 0
            assert len(controller.requests) == 1

    run(scenario())


def test_a_new_leader_and_isr_replaces_a_pending_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, controller):
            controller.open.clear()  # the answer is held
            await settle(await acall(broker, follower_fetch(0), 15))
            assert partition.leader_state is not None and partition.leader_state.pending is not None
            state = PState(TOPIC, 0, LOCAL, EPOCH + 1, [LOCAL, OTHER], [LOCAL, OTHER], partition_epoch=5)
            response = await settle(await acall(broker, leader_and_isr(7, [state], controller_id=CONTROLLER,
                                                                       topic_ids={TOPIC: T_ID}), 7))
            assert response.error_code == 0
            assert partition.leader_state.pending is None and partition.state.isr == [LOCAL, OTHER]
            controller.open.set()
            await controller.wait_requests(1)
            for _ in range(5):
                await asyncio.sleep(0)
            assert partition.state.isr == [LOCAL, OTHER] and partition.state.partition_epoch == 5

    run(scenario())


# -- the group coordinator's own appends -----------------------------------------------------------


def test_an_offset_commit_waits_for_the_follower_like_acks_all(tmp_path: Path) -> None:
    from broker.group.hashing import partition_for
    from protocol.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )

    offsets, count, group = "__consumer_offsets", 3, "g"
    index = partition_for(group, count)
    broker = cluster_broker(tmp_path / "coordinator", **{"offsets.topic.num.partitions": str(count)})
    broker.disk = InlineDisk()  # type: ignore[assignment]

    async def scenario() -> None:
        broker.group_coordinator.start()
        nodes = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "127.0.0.1", 9093)]
        states = [PState(offsets, i, LOCAL, 1, [LOCAL, OTHER], [LOCAL, OTHER]) for i in range(count)]
        others = PState("t", 0, OTHER, 0, [OTHER])
        await settle(await acall(broker, update_metadata(8, nodes, [*states, others]), 8))
        assert (await settle(await acall(broker, leader_and_isr(7, states), 7))).error_code == 0
        loading = broker.group_coordinator.store._tasks.get(index)
        if loading is not None:
            await asyncio.wait_for(asyncio.shield(loading), 10)
        commit = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=-1,
            topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 42)])],
        )
        pending = asyncio.ensure_future(settle(await acall(broker, commit, 8)))
        replica = broker.replica_manager.get(TopicPartition(offsets, index))
        assert replica is not None
        await until(replica, lambda: replica.log_end_offset > 0)
        assert not pending.done() and replica.high_watermark == 0
        fetch = follower_fetch(replica.log_end_offset, version=11, current_epoch=1)
        fetch.topics[0].topic = offsets
        fetch.topics[0].partitions[0].partition = index
        fetched = pdata(await settle(await acall(broker, fetch, 11)))
        assert fetched.error_code == 0 and fetched.high_watermark == replica.log_end_offset
        response = await asyncio.wait_for(pending, 10)
        assert response.topics[0].partitions[0].error_code == 0
        await broker.group_coordinator.stop()

    try:
        run(scenario())
    finally:
        broker.log_manager.close()
