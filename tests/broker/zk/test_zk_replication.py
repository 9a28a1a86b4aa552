"""Replication in ZooKeeper mode, three brokers in one process and a real ZooKeeper: acks=all with
min.insync.replicas=2 on RF 3; the leader's ISR shrinks and grows through AlterPartition to the
active controller, which writes the partition state znode (same leader epoch, a new version);
with one ISR member left acks=all is refused and nothing is appended."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from broker.app import Broker
from broker.cluster.zk import data, paths
from broker.replica.control import FetchStart
from broker.replica.partition import Partition
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.broker.conftest import Caller
from tests.broker.test_data_plane import batch
from tests.broker.zk.conftest import run
from tests.broker.zk.test_zk_mode import observer, start_broker, wait_metadata

TOPIC = "replicated"
TP = TopicPartition(TOPIC, 0)
WAIT = 20.0
SETTINGS = {
    "min.insync.replicas": "2",
    "replica.lag.time.max.ms": "1000",
    "replica.fetch.wait.max.ms": "200",
    "replica.fetch.backoff.ms": "50",
}


@asynccontextmanager
async def cluster(connect: str, base: Path) -> AsyncIterator[list[Broker]]:
    brokers: list[Broker] = []
    try:
        for broker_id in range(3):
            brokers.append(await start_broker(connect, base, broker_id, **SETTINGS))
        for broker in brokers:
            assert await wait_metadata(broker, lambda c: len(c.alive_broker_ids()) == 3)
        yield brokers
    finally:
        for broker in reversed(brokers):
            await broker.stop()


async def produce(broker: Broker, tag: bytes, acks: int = -1) -> int:
    request = ProduceRequest(
        acks=acks,
        timeout_ms=10_000,
        topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(0, batch([tag]))])],
    )
    result = Caller(broker).start(request, 9)
    response: Any = await result if inspect.isawaitable(result) else result
    return int(response.responses[0].partition_responses[0].error_code)


async def until(partition: Partition, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
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


def stop_fetching(broker: Broker) -> None:
    fetchers = broker.replica_manager.control.fetchers
    assert fetchers is not None
    fetchers.remove_partitions({TP})


def resume_fetching(broker: Broker, leader: Partition) -> None:
    fetchers = broker.replica_manager.control.fetchers
    local = broker.replica_manager.get(TP)
    assert fetchers is not None and local is not None
    start = FetchStart(local.topic_id, leader.local_id, leader.leader_epoch, local.log_end_offset)
    fetchers.add_partitions({TP: start})


def test_isr_changes_go_through_the_controller_and_acks_all_keeps_min_insync(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                await zk.create_topic(TOPIC, data.TopicAssignment(uuid.uuid4(), {0: [0, 1, 2]}), {})
                for broker in brokers:
                    assert await wait_metadata(
                        broker, lambda c: (p := c.partition(TP)) is not None and p.leader == 0
                    )
                leader_broker = brokers[0]
                await until_hosted(leader_broker)
                leader = leader_broker.replica_manager.get(TP)
                assert leader is not None and leader.is_leader

                for i in range(5):
                    assert await produce(leader_broker, b"all-%d" % i) == ErrorCode.NONE
                assert leader.high_watermark == 5

                # Broker 1 stops fetching: after replica.lag.time.max.ms the leader asks the
                # controller to take it out, and the znode says so (same leader epoch).
                stop_fetching(brokers[1])
                assert await produce(leader_broker, b"one", acks=1) == ErrorCode.NONE
                await until(leader, lambda: leader.state.isr == [0, 2])
                state = await znode_state(zk)
                assert state["isr"] == [0, 2] and state["leader_epoch"] == 0
                assert (
                    leader_broker.alter_partition is not None
                    and leader_broker.alter_partition.requests_sent >= 1
                )
                assert await produce(leader_broker, b"two-in-sync") == ErrorCode.NONE

                # It fetches again, catches up and is let back in.
                resume_fetching(brokers[1], leader)
                await until(leader, lambda: sorted(leader.state.isr) == [0, 1, 2])
                state = await znode_state(zk)
                assert sorted(state["isr"]) == [0, 1, 2] and state["leader_epoch"] == 0
                assert await produce(leader_broker, b"three-again") == ErrorCode.NONE
                end = leader.log_end_offset
                for follower in brokers[1:]:
                    replica = follower.replica_manager.get(TP)
                    assert replica is not None
                    await until(replica, lambda r=replica: r.log_end_offset == end)  # type: ignore[misc]
                assert log_bytes(brokers[1]) == log_bytes(brokers[2]) == log_bytes(brokers[0])

                # Both followers stop: the ISR shrinks to the leader, and acks=all is refused
                # before anything is appended.
                stop_fetching(brokers[1])
                stop_fetching(brokers[2])
                assert await produce(leader_broker, b"unreplicated", acks=1) == ErrorCode.NONE
                await until(leader, lambda: leader.state.isr == [0])
                assert (await znode_state(zk))["isr"] == [0]
                before = leader.log_end_offset
                assert await produce(leader_broker, b"refused") == ErrorCode.NOT_ENOUGH_REPLICAS
                assert leader.log_end_offset == before
        finally:
            await zk.close()

    run(body(), 90)


async def until_hosted(broker: Broker, timeout: float = WAIT) -> None:
    """The LeaderAndIsr that follows the UpdateMetadata may still be on its way."""
    async with asyncio.timeout(timeout):
        while broker.replica_manager.get(TP) is None or not broker.replica_manager.get(TP).is_leader:  # type: ignore[union-attr]
            await asyncio.sleep(0.02)


async def znode_state(zk: Any) -> dict[str, Any]:
    got = await zk.get_data(paths.partition_state(TOPIC, 0))
    assert got is not None
    return json.loads(got[0])  # type: ignore[no-any-return]


def log_bytes(broker: Broker) -> bytes:
    directory = broker.log_dirs[0] / f"{TOPIC}-0"
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))
