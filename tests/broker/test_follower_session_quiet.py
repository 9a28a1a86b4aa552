"""A follower's fetch session on the leader, in process: the partitions of the session that the
request does not name and that have nothing to answer (quiet) are not read, but their fetch is
recorded (the follower's caught-up time moves on), a long poll still wakes on their appends,
and their news (records, a high-watermark move) is answered as if they had been read. Quiet
partitions go dormant: no fetch looks at them until they change or the refresh comes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from unittest import mock

from broker.app import Broker
from broker.handlers import fetch as fetch_handler
from broker.replica.fetch_session_cache import DORMANT_REFRESH_MS
from broker.replica.partition import Partition
from broker.types import BrokerId, TopicPartition
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ReplicaState
from protocol.messages.fetch_response import FetchResponse, PartitionData
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.broker.control_kit import LOCAL, OTHER
from tests.broker.fake_server import run
from tests.broker.test_data_plane import batch
from tests.broker.test_leader_replication import (
    EPOCH,
    T_ID,
    THIRD,
    TOPIC,
    acall,
    clock,
    leader,
    offsets_in,
    settle,
)

PARTITIONS = (0, 1, 2)


@asynccontextmanager
async def leading(tmp_path: Path, isr: list[int]) -> AsyncIterator[tuple[Broker, dict[int, Partition]]]:
    """This broker leads rep-0..2 (epoch 3) with replicas ``isr``."""
    async with leader(tmp_path, isr, replicas=isr, partitions=len(PARTITIONS)) as (broker, _, _controller):
        led = {p: broker.replica_manager.get(TopicPartition(TOPIC, p)) for p in PARTITIONS}
        assert all(partition is not None and partition.is_leader for partition in led.values())
        yield broker, led  # type: ignore[misc]


async def produce(broker: Broker, index: int, values: list[bytes]) -> None:
    request = ProduceRequest(
        acks=1,
        timeout_ms=10_000,
        topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(index, batch(values))])],
    )
    answer = await settle(await acall(broker, request, 9))
    assert answer.responses[0].partition_responses[0].error_code == 0


def fetch(
    offsets: dict[int, int], *, session_id: int, epoch: int, replica: int = OTHER, max_wait_ms: int = 0
) -> FetchRequest:
    """A follower's fetch (v15) naming ``offsets``; session 0 epoch 0 asks for a new session."""
    parts = [FetchPartition(p, EPOCH, offset, EPOCH, 0, 1 << 20) for p, offset in sorted(offsets.items())]
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        session_id=session_id,
        session_epoch=epoch,
        topics=[FetchTopic(TOPIC, T_ID, parts)] if parts else [],
        replica_state=ReplicaState(replica, -1),
    )


def answered(response: FetchResponse) -> dict[int, PartitionData]:
    return {p.partition_index: p for t in response.responses for p in t.partitions}


async def caught_up_session(broker: Broker, led: dict[int, Partition], replica: int = OTHER) -> int:
    """A record in each partition, fetched by ``replica`` in a new session, which then says it is
    at each log end (so the leader holds it caught up): the session id."""
    for p in PARTITIONS:
        await produce(broker, p, [b"r%d" % p])
    full = await settle(
        await acall(broker, fetch(dict.fromkeys(PARTITIONS, 0), session_id=0, epoch=0, replica=replica), 15)
    )
    assert full.session_id > 0 and all(offsets_in(d.records) == [0] for d in answered(full).values())
    at_end = await settle(
        await acall(
            broker,
            fetch(dict.fromkeys(PARTITIONS, 1), session_id=full.session_id, epoch=1, replica=replica),
            15,
        )
    )
    assert at_end.error_code == 0
    return int(full.session_id)


def test_quiet_partitions_are_recorded_but_not_read(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leading(tmp_path, [LOCAL, OTHER]) as (broker, led):
            session = await caught_up_session(broker, led)
            clock(broker).advance(5_000)
            now = broker.clock.milliseconds()
            await produce(broker, 2, [b"news"])
            replicas = broker.replica_manager
            with mock.patch.object(replicas, "leader_for", wraps=replicas.leader_for) as looked_up:
                response = await settle(await acall(broker, fetch({}, session_id=session, epoch=2), 15))
            assert response.error_code == 0
            assert set(answered(response)) == {2} and offsets_in(answered(response)[2].records) == [1]
            assert [call.args[1] for call in looked_up.call_args_list] == [2]  # 0 and 1 quiet: not read
            for p in (0, 1):  # recorded as a read would: caught up now
                leader_state = led[p].leader_state
                assert leader_state is not None
                state = leader_state.followers[BrokerId(OTHER)]
                assert state.last_fetch_time_ms == now and state.last_caught_up_ms == now
                assert state.log_end_offset == 1

    run(scenario())


def test_a_long_poll_wakes_on_an_append_to_a_quiet_partition(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leading(tmp_path, [LOCAL, OTHER]) as (broker, led):
            session = await caught_up_session(broker, led)
            waiting = await acall(broker, fetch({}, session_id=session, epoch=2, max_wait_ms=30_000), 15)
            assert inspect.isawaitable(waiting)  # every partition quiet: it waits
            task = asyncio.ensure_future(waiting)
            await asyncio.sleep(0)
            assert not task.done()
            await produce(broker, 1, [b"late"])
            response = await asyncio.wait_for(task, 10)
            assert set(answered(response)) == {1} and offsets_in(answered(response)[1].records) == [1]

    run(scenario())


def test_a_high_watermark_move_of_a_quiet_partition_is_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leading(tmp_path, [LOCAL, OTHER, THIRD]) as (broker, led):
            session = await caught_up_session(broker, led, OTHER)
            assert all(partition.high_watermark == 0 for partition in led.values())  # THIRD has not fetched
            quiet = await settle(await acall(broker, fetch({}, session_id=session, epoch=2), 15))
            assert answered(quiet) == {}  # nothing new
            # The other follower catches up: the HW of every partition moves, untold to OTHER.
            await settle(
                await acall(
                    broker, fetch(dict.fromkeys(PARTITIONS, 1), session_id=0, epoch=-1, replica=THIRD), 15
                )
            )
            assert all(partition.high_watermark == 1 for partition in led.values())
            news = await settle(await acall(broker, fetch({}, session_id=session, epoch=3), 15))
            assert {p: d.high_watermark for p, d in answered(news).items()} == dict.fromkeys(PARTITIONS, 1)

    run(scenario())


def test_dormant_partitions_are_not_looked_at_until_they_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leading(tmp_path, [LOCAL, OTHER]) as (broker, led):
            session = await caught_up_session(broker, led)
            quiet = await settle(await acall(broker, fetch({}, session_id=session, epoch=2), 15))
            assert answered(quiet) == {}  # all quiet: dormant from now on
            with mock.patch.object(
                fetch_handler, "_still_quiet", wraps=fetch_handler._still_quiet
            ) as looked_at:
                idle = await settle(await acall(broker, fetch({}, session_id=session, epoch=3), 15))
                assert answered(idle) == {} and looked_at.call_count == 0
                await produce(broker, 1, [b"news"])  # wakes partition 1 only
                news = await settle(await acall(broker, fetch({}, session_id=session, epoch=4), 15))
                assert set(answered(news)) == {1} and offsets_in(answered(news)[1].records) == [1]
                assert [call.args[0].partition for call in looked_at.call_args_list] == [led[1]]
            # A session that goes away leaves no watch on its dormant partitions.
            cache = broker.fetch_sessions
            assert cache is not None
            watched = {p: len(partition._listeners) for p, partition in led.items()}
            assert watched[0] == watched[2] == 1
            cache.remove(session)
            assert all(len(partition._listeners) == 0 for partition in led.values())

    run(scenario())


def test_the_refresh_records_dormant_fetches_and_finds_a_log_start_move(tmp_path: Path) -> None:
    """No event tells of a log start moved by retention or DeleteRecords: the refresh of the
    dormant partitions (every DORMANT_REFRESH_MS) finds it; it also records their fetch."""

    async def scenario() -> None:
        async with leading(tmp_path, [LOCAL, OTHER]) as (broker, led):
            session = await caught_up_session(broker, led)
            assert (
                answered(await settle(await acall(broker, fetch({}, session_id=session, epoch=2), 15))) == {}
            )
            led[0].log.delete_records_before(1)
            unseen = await settle(await acall(broker, fetch({}, session_id=session, epoch=3), 15))
            assert answered(unseen) == {}
            clock(broker).advance(DORMANT_REFRESH_MS)
            now = broker.clock.milliseconds()
            found = await settle(await acall(broker, fetch({}, session_id=session, epoch=4), 15))
            assert {p: d.log_start_offset for p, d in answered(found).items()} == {0: 1}
            for p in (1, 2):
                leader_state = led[p].leader_state
                assert leader_state is not None
                assert leader_state.followers[BrokerId(OTHER)].last_caught_up_ms == now

    run(scenario())
