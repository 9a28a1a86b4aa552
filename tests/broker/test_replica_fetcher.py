"""Replication between two in-process brokers in cluster mode, told their roles by UpdateMetadata
and LeaderAndIsr sent directly (as a ZooKeeper controller would): the follower's log becomes the
leader's, byte for byte; its high watermark follows; a restarted follower resumes; after a leader
change with divergent logs the old leader truncates its divergent suffix and converges."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from broker.replica.fetcher import ReplicaFetcherManager, fetcher_id_for
from broker.replica.partition import Partition
from broker.types import TopicPartition
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from storage import FileSystem
from tests.broker.conftest import Caller
from tests.broker.control_kit import Node, PState, cluster_broker, leader_and_isr, update_metadata
from tests.broker.test_data_plane import batch
from tests.broker.test_disk_off_loop import ThreadRecordingFileSystem

T_ID = uuid.UUID("5a1c7e42-93d0-4f6b-8e2a-1b3c4d5e6f70")
TP = TopicPartition("t", 0)
TIMEOUT = 15.0
FAST = {"replica.fetch.backoff.ms": "50", "replica.fetch.wait.max.ms": "200"}


async def control(broker: Broker, request: Any, version: int) -> Any:
    result = Caller(broker).start(request, version)
    return await result if inspect.isawaitable(result) else result


class Pair:
    """Two brokers (ids 1 and 2) under one test-played controller."""

    def __init__(
        self, root: Path, *, truncate_on_fetch: bool = True, fs: FileSystem | None = None, **settings: str
    ) -> None:
        self.root = root
        self.truncate_on_fetch = truncate_on_fetch
        self.fs = fs
        self.settings = {**FAST, **settings}
        self.brokers: dict[int, Broker] = {}

    async def start(self, broker_id: int) -> Broker:
        broker = cluster_broker(self.root / f"b{broker_id}", broker_id, fs=self.fs, **self.settings)
        await broker.start(freeze_gc=False)
        fetchers = broker.replica_manager.control.fetchers
        assert isinstance(fetchers, ReplicaFetcherManager)
        fetchers.settings = dataclasses.replace(fetchers.settings, truncate_on_fetch=self.truncate_on_fetch)
        self.brokers[broker_id] = broker
        return broker

    async def stop(self, broker_id: int) -> None:
        await self.brokers.pop(broker_id).stop()

    async def stop_all(self) -> None:
        # Followers first: a leader's drain would wait for their long polls, which never end.
        for broker_id in sorted(self.brokers, reverse=True):
            await self.stop(broker_id)

    def nodes(self) -> list[Node]:
        return [Node(i, "127.0.0.1", b.bound_ports["PLAINTEXT"]) for i, b in sorted(self.brokers.items())]

    async def tell(self, broker_id: int, state: PState) -> None:
        broker = self.brokers[broker_id]
        ids = {"t": T_ID}
        update = await control(broker, update_metadata(8, self.nodes(), [state], topic_ids=ids), 8)
        assert update.error_code == 0
        answer = await control(broker, leader_and_isr(7, [state], topic_ids=ids), 7)
        assert answer.error_code == 0
        assert [e.error_code for t in answer.topics for e in t.partition_errors] == [0]

    def partition(self, broker_id: int) -> Partition:
        partition = self.brokers[broker_id].replica_manager.get(TP)
        assert partition is not None
        return partition

    async def produce(self, broker_id: int, count: int, tag: bytes) -> None:
        for i in range(count):
            data = batch([tag + b"-%d-%d" % (i, j) for j in range(3)])
            request = ProduceRequest(
                acks=1, timeout_ms=1000, topic_data=[TopicProduceData("t", [PartitionProduceData(0, data)])]
            )
            response = await control(self.brokers[broker_id], request, 9)
            assert response.responses[0].partition_responses[0].error_code == 0

    def segment_bytes(self, broker_id: int) -> bytes:
        directory = self.root / f"b{broker_id}" / "t-0"
        return b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))

    def epochs(self, broker_id: int) -> list[tuple[int, int]]:
        return [(e.epoch, e.start_offset) for e in self.partition(broker_id).log.leader_epochs.entries()]


async def until(partition: Partition, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``predicate`` holds, re-checked whenever the replica wakes its waiters (each
    follower append and high-watermark update does)."""
    if predicate():
        return
    changed = asyncio.Event()
    partition.add_listener(changed.set)
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await changed.wait()
                changed.clear()
    finally:
        partition.remove_listener(changed.set)


def caught_up(pair: Pair, leader: int, follower: int) -> Callable[[], bool]:
    def check() -> bool:
        lead, follow = pair.partition(leader), pair.partition(follower)
        return (
            follow.log_end_offset == lead.log_end_offset
            and follow.high_watermark == lead.log_end_offset
            and lead.high_watermark == lead.log_end_offset
        )

    return check


def test_follower_log_is_the_leaders_byte_for_byte_and_its_high_watermark_follows(tmp_path: Path) -> None:
    async def scenario() -> None:
        pair = Pair(tmp_path)
        try:
            await pair.start(1)
            await pair.start(2)
            state = PState("t", 0, 1, 1, [1, 2], isr=[1, 2])
            await pair.tell(1, state)
            await pair.tell(2, state)
            fetchers = pair.brokers[2].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            await pair.produce(1, 25, b"a")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            assert pair.partition(1).log_end_offset == 75
            assert pair.segment_bytes(2) == pair.segment_bytes(1)
            assert pair.epochs(2) == pair.epochs(1) == [(1, 0)]
            # A new append moves both high watermarks again.
            await pair.produce(1, 1, b"b")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            assert pair.partition(2).high_watermark == 78
            assert pair.segment_bytes(2) == pair.segment_bytes(1)
            stats = [f.stats for f in fetchers.fetchers.values()]
            assert sum(s.batches_appended for s in stats) == 26
        finally:
            await pair.stop_all()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "truncate_on_fetch", [True, False], ids=["diverging-epoch", "offset-for-leader-epoch"]
)
def test_restarted_follower_resumes_and_an_old_leader_truncates_its_divergent_suffix(
    tmp_path: Path, truncate_on_fetch: bool
) -> None:
    async def scenario() -> None:
        pair = Pair(tmp_path, truncate_on_fetch=truncate_on_fetch)
        try:
            await pair.start(1)
            await pair.start(2)
            epoch1 = PState("t", 0, 1, 1, [1, 2], isr=[1, 2])
            await pair.tell(1, epoch1)
            await pair.tell(2, epoch1)
            await pair.produce(1, 4, b"a")
            await until(pair.partition(2), caught_up(pair, 1, 2))

            # The follower stops; the leader goes on (acks=1: its high watermark waits for 2).
            await pair.stop(2)
            await pair.produce(1, 3, b"b")
            assert pair.partition(1).high_watermark == 12
            # Restarted from its disk, it resumes where it was.
            await pair.start(2)
            await pair.tell(2, epoch1)
            await until(pair.partition(2), caught_up(pair, 1, 2))
            assert pair.partition(2).log_end_offset == 21
            assert pair.segment_bytes(2) == pair.segment_bytes(1)

            # It stops again; the leader writes a suffix nobody else has.
            await pair.stop(2)
            await pair.produce(1, 2, b"lost")
            assert pair.partition(1).log_end_offset == 27
            # Broker 2 becomes leader in epoch 2 (an unclean choice here, on purpose) and writes.
            await pair.start(2)
            epoch2 = PState("t", 0, 2, 2, [1, 2], isr=[2], partition_epoch=2)
            await pair.tell(2, epoch2)
            await pair.produce(2, 5, b"c")
            assert pair.partition(2).log_end_offset == 36
            # Broker 1 follows: it must drop offsets 21-26 and take broker 2's 21-35.
            await pair.tell(1, epoch2)
            await until(pair.partition(1), lambda: pair.partition(1).log_end_offset == 36)
            assert pair.segment_bytes(1) == pair.segment_bytes(2)
            assert pair.epochs(1) == pair.epochs(2) == [(1, 0), (2, 21)]
            fetchers = pair.brokers[1].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            assert sum(f.stats.truncations for f in fetchers.fetchers.values()) == 1
            # And broker 1's producer-free log reads back as broker 2's records.
            assert b"lost" not in pair.segment_bytes(1)
        finally:
            await pair.stop_all()

    asyncio.run(scenario())


def test_leader_again_stops_fetching_and_stop_leaves_no_task(tmp_path: Path) -> None:
    async def scenario() -> None:
        pair = Pair(tmp_path)
        try:
            await pair.start(1)
            await pair.start(2)
            state = PState("t", 0, 1, 1, [1, 2], isr=[1, 2])
            await pair.tell(1, state)
            await pair.tell(2, state)
            await pair.produce(1, 2, b"a")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            fetchers = pair.brokers[2].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            assert fetchers.fetchers
            tasks = {f._task for f in fetchers.fetchers.values()}
            await pair.tell(2, PState("t", 0, 2, 2, [1, 2], isr=[1, 2], partition_epoch=1))
            assert not fetchers.fetchers  # the idle fetcher was shut down
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT)
            assert all(t is not None and t.done() for t in tasks)
            # The new follower (broker 1) fetches from broker 2.
            await pair.tell(1, PState("t", 0, 2, 2, [1, 2], isr=[1, 2], partition_epoch=1))
            other = pair.brokers[1].replica_manager.control.fetchers
            assert isinstance(other, ReplicaFetcherManager) and other.fetchers
            running = [f._task for f in other.fetchers.values()]
        finally:
            await pair.stop_all()
        assert all(t is not None and t.done() for t in running)
        assert pair_tasks_left() == []

    asyncio.run(scenario())


def pair_tasks_left() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("brook-replica-fetcher")]


def test_a_new_follower_behind_the_leaders_log_start_starts_at_it(tmp_path: Path) -> None:
    """OFFSET_OUT_OF_RANGE: the leader deleted records below 6 before broker 2 ever fetched; the
    follower empties its log, starts it at the leader's log start and fetches from there."""

    async def scenario() -> None:
        pair = Pair(tmp_path)
        try:
            await pair.start(1)
            alone = PState("t", 0, 1, 1, [1, 2], isr=[1])
            await pair.tell(1, alone)
            await pair.produce(1, 4, b"a")  # offsets 0-11, three per batch
            leader_log = pair.partition(1).log
            assert leader_log.delete_records_before(6) == 6
            await pair.start(2)
            await pair.tell(2, alone)
            follower = pair.partition(2)
            await until(follower, lambda: follower.log_end_offset == 12)
            assert follower.log_start_offset == 6
            assert [p.name for p in (tmp_path / "b2" / "t-0").glob("*.log")] == ["00000000000000000006.log"]
            assert pair.segment_bytes(2) == leader_log.read_bytes(6, 1 << 20)
            fetchers = pair.brokers[2].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            state = fetchers.fetch_state(TP)
            assert state is not None and state.fetch_offset == 12
        finally:
            await pair.stop_all()

    asyncio.run(scenario())


def test_a_fenced_follower_waits_for_its_next_leader_and_isr(tmp_path: Path) -> None:
    """FENCED_LEADER_EPOCH: broker 2 was told epoch 1 while the leader is in epoch 2; it stops
    fetching that partition until the controller tells it epoch 2."""

    async def scenario() -> None:
        pair = Pair(tmp_path, truncate_on_fetch=False)
        try:
            await pair.start(1)
            await pair.start(2)
            await pair.tell(1, PState("t", 0, 1, 2, [1, 2], isr=[1]))
            await pair.produce(1, 2, b"a")
            fetchers = pair.brokers[2].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            await pair.tell(2, PState("t", 0, 1, 1, [1, 2], isr=[1]))
            (fetcher,) = fetchers.fetchers.values()
            async with asyncio.timeout(TIMEOUT):
                while TP in fetcher.partitions:  # dropped once the leader says FENCED_LEADER_EPOCH
                    await fetcher.next_turn()
            assert pair.partition(2).log_end_offset == 0
            await pair.tell(2, PState("t", 0, 1, 2, [1, 2], isr=[1]))
            await until(pair.partition(2), lambda: pair.partition(2).log_end_offset == 6)
        finally:
            await pair.stop_all()

    asyncio.run(scenario())


def test_replication_does_no_blocking_disk_work_on_the_event_loop(tmp_path: Path) -> None:
    """Follower appends that bring a new epoch (checkpoint fsync), truncations and the leaders'
    epoch starts all run in disk workers (see test_disk_off_loop.py)."""
    fs = ThreadRecordingFileSystem()

    async def scenario() -> None:
        pair = Pair(tmp_path, fs=fs)
        try:
            await pair.start(1)
            await pair.start(2)
            fs.calls.clear()
            epoch1 = PState("t", 0, 1, 1, [1, 2], isr=[1, 2])
            await pair.tell(1, epoch1)
            await pair.tell(2, epoch1)
            await pair.produce(1, 3, b"a")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            # Broker 2 takes over in epoch 2 while broker 1 has not heard yet and still appends.
            epoch2 = PState("t", 0, 2, 2, [1, 2], isr=[2], partition_epoch=1)
            await pair.tell(2, epoch2)
            await pair.produce(1, 2, b"stale")
            await pair.produce(2, 2, b"b")
            await pair.tell(1, epoch2)
            # Broker 1 already ends at 15 too, with its stale epoch-1 suffix: wait for epoch 2.
            assert pair.partition(1).log_end_offset == 15
            await until(
                pair.partition(1),
                lambda: pair.partition(1).log_end_offset == 15 and pair.epochs(1) == [(1, 0), (2, 9)],
            )
            assert pair.segment_bytes(1) == pair.segment_bytes(2)
            assert b"stale" not in pair.segment_bytes(1)
        finally:
            await pair.stop_all()

    asyncio.run(scenario())
    assert fs.on_thread(threading.main_thread()) == []
    assert {"fsync", "rename"} <= {call for call, _ in fs.calls}


def test_several_fetchers_per_leader_split_the_partitions(tmp_path: Path) -> None:
    """num.replica.fetchers=3: partitions spread over fetchers by Kafka's getFetcherId, each with
    its own connection; all replicate."""

    async def scenario() -> None:
        pair = Pair(tmp_path, **{"num.replica.fetchers": "3"})
        try:
            await pair.start(1)
            await pair.start(2)
            states = [PState("t", p, 1, 1, [1, 2], isr=[1, 2]) for p in range(6)]
            ids = {"t": T_ID}
            for broker_id in (1, 2):
                broker = pair.brokers[broker_id]
                assert (
                    await control(broker, update_metadata(8, pair.nodes(), states, topic_ids=ids), 8)
                ).error_code == 0
                assert (await control(broker, leader_and_isr(7, states, topic_ids=ids), 7)).error_code == 0
            for p in range(6):
                data = batch([b"p%d" % p])
                request = ProduceRequest(
                    acks=1,
                    timeout_ms=1000,
                    topic_data=[TopicProduceData("t", [PartitionProduceData(p, data)])],
                )
                assert (await control(pair.brokers[1], request, 9)).responses[0].partition_responses[
                    0
                ].error_code == 0
            fetchers = pair.brokers[2].replica_manager.control.fetchers
            assert isinstance(fetchers, ReplicaFetcherManager)
            expected = {fetcher_id_for(TopicPartition("t", p), 3) for p in range(6)}
            assert {key for key in fetchers.fetchers} == {(1, i) for i in expected} and len(expected) > 1
            for p in range(6):
                follower = pair.brokers[2].replica_manager.get(TopicPartition("t", p))
                assert follower is not None
                await until(follower, lambda f=follower: f.log_end_offset == 1 and f.high_watermark == 1)
        finally:
            await pair.stop_all()

    asyncio.run(scenario())
