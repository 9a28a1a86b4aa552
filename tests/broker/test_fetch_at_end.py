"""Partitions fetched at their end: the leader answers them without reading the log (most
partitions of a follower's fetch session are idle), and a long poll woken by an event that gives
it nothing to read (a high-watermark move seen by a caught-up follower) is not re-read. The
answers must be the ones a read gives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import broker.handlers.fetch as fetch_handler
from protocol.error_codes import ErrorCode
from tests.broker.control_kit import LOCAL, OTHER
from tests.broker.fake_server import run
from tests.broker.test_leader_replication import (
    THIRD,
    acall,
    consumer_fetch,
    follower_fetch,
    leader,
    offsets_in,
    pdata,
    produce_request,
    settle,
)

LONG_POLL_MS = 60_000
WAIT = 10.0


def test_every_fetch_offset_answers_what_the_log_holds(tmp_path: Path) -> None:
    """Every offset from the log start to the end, as consumer and as follower: records from the
    offset to the HW (consumer) or the log end (follower), none at the end, no error, and the
    partition's offsets in every answer."""

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, _):
            for value in (b"a", b"b", b"c", b"d"):
                await settle(await acall(broker, produce_request([value], acks=1), 9))
            await settle(await acall(broker, follower_fetch(2), 15))  # the HW moves to 2
            assert (partition.high_watermark, partition.log_end_offset) == (2, 4)
            for offset in range(0, 5):
                as_follower = pdata(await settle(await acall(broker, follower_fetch(offset), 15)))
                assert as_follower.error_code == 0
                assert offsets_in(as_follower.records) == list(range(offset, 4))
                assert as_follower.log_start_offset == 0
                consumer = pdata(await settle(await acall(broker, consumer_fetch(offset), 15)))
                assert consumer.error_code == 0
                assert offsets_in(consumer.records) == list(range(offset, 2))
                for data in (as_follower, consumer):
                    assert data.high_watermark == partition.high_watermark
                    assert data.last_stable_offset == partition.last_stable_offset
            # Past the log end is still out of range, at the end or not.
            beyond = pdata(await settle(await acall(broker, consumer_fetch(5), 15)))
            assert beyond.error_code == ErrorCode.OFFSET_OUT_OF_RANGE

    run(scenario())


def test_a_closed_log_at_its_end_still_answers_a_storage_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, _):
            await settle(await acall(broker, produce_request([b"a"], acks=1), 9))
            partition.log.close()
            data = pdata(await settle(await acall(broker, consumer_fetch(1), 15)))
            assert data.error_code == ErrorCode.KAFKA_STORAGE_ERROR

    run(scenario())


def test_a_caught_up_follower_long_poll_is_not_reread_when_the_hw_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: list[int] = []
    original = fetch_handler._read_all

    def counted(ctx: Any, request: Any, targets: Any) -> Any:
        readers.append(fetch_handler.replica_id_of(request, ctx.version))
        return original(ctx, request, targets)

    monkeypatch.setattr(fetch_handler, "_read_all", counted)

    async def scenario() -> None:
        replicas = [LOCAL, OTHER, THIRD]
        async with leader(tmp_path, replicas, replicas=replicas) as (broker, partition, _):
            await settle(await acall(broker, produce_request([b"a"], acks=1), 9))
            parked = await acall(broker, follower_fetch(1, replica=THIRD, max_wait_ms=LONG_POLL_MS), 15)
            task = asyncio.ensure_future(parked)
            await asyncio.sleep(0)
            assert not task.done()
            readers.clear()
            await settle(await acall(broker, follower_fetch(0), 15))
            await settle(await acall(broker, follower_fetch(1), 15))  # the HW moves to 1
            assert partition.high_watermark == 1
            assert not task.done()
            assert THIRD not in readers  # woken by the HW move, nothing to read: no read
            await settle(await acall(broker, produce_request([b"b"], acks=1), 9))
            data = pdata(await asyncio.wait_for(task, WAIT))  # an append wakes it with data
            assert offsets_in(data.records) == [1] and data.high_watermark == 1
            assert THIRD in readers

    run(scenario())


def test_a_long_poll_whose_leader_steps_down_is_still_answered(tmp_path: Path) -> None:
    """Nothing to read, but the partition no longer leads: the wake answers (no fast return)."""

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, _):
            parked = await acall(broker, follower_fetch(0, max_wait_ms=LONG_POLL_MS), 15)
            task = asyncio.ensure_future(parked)
            await asyncio.sleep(0)
            assert not task.done()
            state = partition.state
            partition.state = type(state)(
                list(state.replicas),
                OTHER,
                state.leader_epoch + 1,
                list(state.isr),
                state.partition_epoch + 1,
            )
            partition.wake_waiters()
            data = pdata(await asyncio.wait_for(task, WAIT))
            assert data.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER

    run(scenario())


def test_a_partition_at_its_end_is_answered_without_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import Log

    reads: list[int] = []
    original = Log.read

    def counted(self: Log, offset: int, *args: Any) -> Any:
        reads.append(offset)
        return original(self, offset, *args)

    monkeypatch.setattr(Log, "read", counted)

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, _partition, _):
            await settle(await acall(broker, produce_request([b"a"], acks=1), 9))
            await settle(await acall(broker, follower_fetch(0), 15))
            assert reads == [0]
            data = pdata(await settle(await acall(broker, follower_fetch(1), 15)))  # at the log end
            assert data.error_code == ErrorCode.NONE and offsets_in(data.records) == []
            assert reads == [0]

    run(scenario())
