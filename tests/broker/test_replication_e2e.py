"""Leader and follower end to end: two in-process brokers serving on 127.0.0.1 (the follower runs
the real replica fetcher) and a fake controller answering AlterPartition. acks=all produces are
answered once the follower has the batches, the logs end identical, and the ISR grows and
shrinks through the controller."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.app import Broker
from broker.replica.partition import Partition
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.broker.conftest import Caller
from tests.broker.control_kit import Node, PState, cluster_broker, leader_and_isr, update_metadata
from tests.broker.fake_controller import FakeController
from tests.broker.fake_server import run
from tests.broker.test_data_plane import batch

T_ID = uuid.UUID("9e8d7c6b-5a49-4382-9170-a1b2c3d4e5f6")
TP = TopicPartition("e2e", 0)
CONTROLLER = 3
FAST = {"replica.fetch.backoff.ms": "50", "replica.fetch.wait.max.ms": "200"}


async def call(broker: Broker, request: Any, version: int) -> Any:
    result = Caller(broker).start(request, version)
    return await result if inspect.isawaitable(result) else result


async def until(partition: Partition, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for ``predicate``, re-checked on the partition's events (appends, HW, ISR changes)."""
    changed = asyncio.Event()
    partition.add_listener(changed.set)
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await changed.wait()
                changed.clear()
    finally:
        partition.remove_listener(changed.set)


class Cluster:
    def __init__(self, root: Path, controller: FakeController, **overrides: str) -> None:
        self.root = root
        self.controller = controller
        self.overrides = {**FAST, **overrides}
        self.brokers: dict[int, Broker] = {}

    async def start(self, broker_id: int) -> Broker:
        broker = cluster_broker(self.root / f"b{broker_id}", broker_id, **self.overrides)
        await broker.start(freeze_gc=False)
        self.brokers[broker_id] = broker
        return broker

    async def stop(self, broker_id: int) -> None:
        await self.brokers.pop(broker_id).stop()

    def nodes(self) -> list[Node]:
        live = [Node(i, "127.0.0.1", b.bound_ports["PLAINTEXT"]) for i, b in sorted(self.brokers.items())]
        return [*live, Node(CONTROLLER, "127.0.0.1", self.controller.port)]

    async def tell(self, state: PState) -> None:
        self.controller.set_state(TP, state.leader, state.leader_epoch, state.in_sync, state.partition_epoch)
        ids = {TP.topic: T_ID}
        for broker in self.brokers.values():
            update = update_metadata(8, self.nodes(), [state], controller_id=CONTROLLER, topic_ids=ids)
            assert (await call(broker, update, 8)).error_code == 0
            request = leader_and_isr(7, [state], controller_id=CONTROLLER, topic_ids=ids)
            answer = await call(broker, request, 7)
            assert [e.error_code for t in answer.topics for e in t.partition_errors] == [0]

    def partition(self, broker_id: int) -> Partition:
        partition = self.brokers[broker_id].replica_manager.get(TP)
        assert partition is not None
        return partition

    async def produce(self, broker_id: int, tag: bytes, acks: int = -1) -> int:
        request = ProduceRequest(
            acks=acks,
            timeout_ms=10_000,
            topic_data=[TopicProduceData(TP.topic, [PartitionProduceData(0, batch([tag, tag + b"!"]))])],
        )
        response = await call(self.brokers[broker_id], request, 9)
        return int(response.responses[0].partition_responses[0].error_code)

    def log_bytes(self, broker_id: int) -> bytes:
        directory = self.root / f"b{broker_id}" / f"{TP.topic}-{TP.partition}"
        return b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))

    async def stop_all(self) -> None:
        for broker_id in list(self.brokers):
            await self.stop(broker_id)


def test_acks_all_answered_after_the_real_follower_fetched_and_logs_are_identical(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeController([1, 2, CONTROLLER], {TP.topic: T_ID}) as controller:
            cluster = Cluster(tmp_path, controller, **{"min.insync.replicas": "2"})
            try:
                await cluster.start(1)
                await cluster.start(2)
                await cluster.tell(PState(TP.topic, 0, 1, 1, [1, 2], isr=[1, 2]))
                for i in range(30):
                    assert await cluster.produce(1, b"m%d" % i) == ErrorCode.NONE
                    # Answered: the follower's fetch past the batch moved the leader's HW.
                    leader, follower = cluster.partition(1), cluster.partition(2)
                    assert leader.high_watermark == leader.log_end_offset == 2 * (i + 1)
                    assert follower.log_end_offset >= leader.high_watermark
                await until(cluster.partition(2), lambda: cluster.partition(2).high_watermark == 60)
                assert cluster.log_bytes(2) == cluster.log_bytes(1)
                assert controller.requests == []  # the ISR never changed
            finally:
                await cluster.stop_all()

    run(scenario(), timeout=60)


def test_follower_joins_the_isr_then_leaves_it_when_it_stops(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeController([1, 2, CONTROLLER], {TP.topic: T_ID}) as controller:
            # A short lag so that the stopped follower leaves within the test's bounds.
            cluster = Cluster(tmp_path, controller, **{"replica.lag.time.max.ms": "1000"})
            try:
                await cluster.start(1)
                await cluster.start(2)
                await cluster.tell(PState(TP.topic, 0, 1, 1, [1, 2], isr=[1]))
                leader = cluster.partition(1)
                assert await cluster.produce(1, b"before") == ErrorCode.NONE  # the ISR is the leader
                await until(leader, lambda: leader.state.isr == [1, 2])
                assert controller.states[TP].isr == (1, 2) and leader.state.partition_epoch == 1
                assert await cluster.produce(1, b"with-follower") == ErrorCode.NONE
                assert cluster.partition(2).log_end_offset >= 4
                await cluster.stop(2)
                # A follower at the log end stays in sync however long it is silent (Kafka's
                # isCaughtUp); behind it, it leaves after replica.lag.time.max.ms.
                assert await cluster.produce(1, b"unreplicated", acks=1) == ErrorCode.NONE
                assert leader.high_watermark == 4
                await until(leader, lambda: leader.state.isr == [1])
                assert controller.states[TP].isr == (1,) and leader.state.partition_epoch == 2
                assert leader.high_watermark == 6
                assert await cluster.produce(1, b"alone") == ErrorCode.NONE
                assert leader.high_watermark == leader.log_end_offset == 8
            finally:
                await cluster.stop_all()

    run(scenario(), timeout=60)
