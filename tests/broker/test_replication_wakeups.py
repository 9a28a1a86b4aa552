"""What wakes the leader's waiters: a consumer's long poll and an acks=all produce wait for the
high watermark, so an append that leaves it in place (every leader append once followers are in
the ISR) must not wake them; a follower's long poll waits for appends. Re-checking every waiting
produce on every append made a burst of pipelined acks=all produces quadratic on the leader."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

import broker.handlers.fetch as fetch_handler
from broker.replica.partition import Partition
from tests.broker.control_kit import LOCAL, OTHER
from tests.broker.fake_server import run
from tests.broker.test_leader_replication import (
    acall,
    consumer_fetch,
    first,
    follower_fetch,
    leader,
    offsets_in,
    pdata,
    produce_request,
    settle,
)

#: Far beyond the waits below: an answer by the long poll's timer would fail them.
LONG_POLL_MS = 60_000
WAIT = 10.0


def test_a_consumer_long_poll_is_answered_when_the_hw_passes_its_offset(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, partition, _):
            poll = consumer_fetch(0)
            poll.max_wait_ms = LONG_POLL_MS
            waiting = await acall(broker, poll, 15)
            assert inspect.isawaitable(waiting)
            task = asyncio.ensure_future(waiting)
            await settle(await acall(broker, produce_request([b"a"], acks=1), 9))
            await asyncio.sleep(0)
            assert not task.done()  # appended above the HW: nothing the consumer may read
            await settle(await acall(broker, follower_fetch(0), 15))
            assert not task.done() and partition.high_watermark == 0
            await settle(await acall(broker, follower_fetch(1), 15))  # the HW moves to 1
            data = pdata(await asyncio.wait_for(task, WAIT))
            assert data.high_watermark == 1 and offsets_in(data.records) == [0]

    run(scenario())


def test_appends_below_a_stuck_hw_do_not_wake_a_waiting_acks_all_produce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = 0
    original = Partition.check_enough_replicas_reach_offset

    def counted(self: Partition, required_offset: int) -> Any:
        nonlocal checks
        checks += 1
        return original(self, required_offset)

    monkeypatch.setattr(Partition, "check_enough_replicas_reach_offset", counted)

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            pending = asyncio.ensure_future(settle(await acall(broker, produce_request([b"a"]), 9)))
            await asyncio.sleep(0)
            assert not pending.done()
            before = checks
            for value in (b"b", b"c", b"d", b"e"):
                answer = first(await settle(await acall(broker, produce_request([value], acks=1), 9)))
                assert answer.error_code == 0
            assert checks == before  # four appends, the HW still 0: nothing to re-check
            await settle(await acall(broker, follower_fetch(0), 15))
            await settle(await acall(broker, follower_fetch(5), 15))  # the HW moves to 5
            answer = first(await asyncio.wait_for(pending, WAIT))
            assert answer.error_code == 0 and answer.base_offset == 0
            assert partition.high_watermark == 5

    run(scenario())


def test_appends_below_a_stuck_hw_do_not_wake_a_consumer_long_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    original = fetch_handler._read_all

    def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return original(*args)

    monkeypatch.setattr(fetch_handler, "_read_all", counted)

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER]) as (broker, _partition, _):
            poll = consumer_fetch(0)
            poll.max_wait_ms = LONG_POLL_MS
            task = asyncio.ensure_future(await acall(broker, poll, 15))
            await asyncio.sleep(0)
            before = reads
            for value in (b"a", b"b", b"c"):
                await settle(await acall(broker, produce_request([value], acks=1), 9))
            assert reads == before and not task.done()
            await settle(await acall(broker, follower_fetch(0), 15))
            await settle(await acall(broker, follower_fetch(3), 15))
            data = pdata(await asyncio.wait_for(task, WAIT))
            assert offsets_in(data.records) == [0, 1, 2]

    run(scenario())


def test_a_single_replica_leader_still_wakes_a_consumer_on_append(tmp_path: Path) -> None:
    """With the ISR just the leader, an append moves the HW itself: that must wake the poll."""

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL]) as (broker, partition, _):
            poll = consumer_fetch(0)
            poll.max_wait_ms = LONG_POLL_MS
            task = asyncio.ensure_future(await acall(broker, poll, 15))
            await asyncio.sleep(0)
            assert not task.done()
            await settle(await acall(broker, produce_request([b"a"], acks=1), 9))
            data = pdata(await asyncio.wait_for(task, WAIT))
            assert partition.high_watermark == 1 and offsets_in(data.records) == [0]

    run(scenario())
