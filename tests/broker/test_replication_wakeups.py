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
from protocol.error_codes import ErrorCode
from tests.broker.control_kit import LOCAL, OTHER
from tests.broker.fake_server import run
from tests.broker.test_leader_replication import (
    acall,
    clock,
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


def test_a_hw_move_checks_only_the_acks_all_produces_it_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acks=all produces wait in offset order: moving the HW past the first few answers those and
    does not re-check the ones still above it (a backlog made every move cost the whole backlog)."""
    checks = 0
    original = Partition.check_enough_replicas_reach_offset

    def counted(self: Partition, required_offset: int) -> Any:
        nonlocal checks
        checks += 1
        return original(self, required_offset)

    monkeypatch.setattr(Partition, "check_enough_replicas_reach_offset", counted)
    backlog = 50

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            pending = []
            for i in range(backlog):
                result = await acall(broker, produce_request([b"%d" % i]), 9)
                pending.append(asyncio.ensure_future(settle(result)))
            await asyncio.sleep(0)
            assert not any(p.done() for p in pending)
            await settle(await acall(broker, follower_fetch(0), 15))
            before = checks
            await settle(await acall(broker, follower_fetch(3), 15))  # the HW moves to 3
            answered = await asyncio.wait_for(asyncio.gather(*pending[:3]), WAIT)
            assert [first(a).base_offset for a in answered] == [0, 1, 2]
            assert all(first(a).error_code == 0 for a in answered)
            assert checks - before == 3  # the three it passed, not the 47 above it
            await asyncio.sleep(0)
            assert not any(p.done() for p in pending[3:])
            await settle(await acall(broker, follower_fetch(backlog), 15))
            rest = await asyncio.wait_for(asyncio.gather(*pending[3:]), WAIT)
            assert [first(a).base_offset for a in rest] == list(range(3, backlog))
            assert partition.high_watermark == backlog

    run(scenario())


def test_an_isr_shrink_still_answers_every_waiting_acks_all_produce(tmp_path: Path) -> None:
    """A state change (not a HW move) re-checks every waiter: the follower leaving the ISR below
    min.insync.replicas answers them all NOT_ENOUGH_REPLICAS_AFTER_APPEND, none left waiting."""

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            pending = [
                asyncio.ensure_future(settle(await acall(broker, produce_request([b"%d" % i]), 9)))
                for i in range(5)
            ]
            await asyncio.sleep(0)
            assert not any(p.done() for p in pending)
            clock(broker).advance(30_001)
            broker.replica_manager.maybe_shrink_isr()
            answered = await asyncio.wait_for(asyncio.gather(*pending), WAIT)
            codes = {first(a).error_code for a in answered}
            assert codes == {ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND}
            assert partition._replication_waiters == []

    run(scenario())


def test_timed_out_acks_all_produces_do_not_pile_up_under_a_stuck_hw(tmp_path: Path) -> None:
    """With the HW stuck, produces that time out are compacted out of the partition's queue."""

    async def scenario() -> None:
        async with leader(tmp_path, [LOCAL, OTHER], min_insync=2) as (broker, partition, _):
            results = []
            for i in range(200):
                request = produce_request([b"%d" % i], timeout_ms=0)
                results.append(settle(await acall(broker, request, 9)))
            answered = await asyncio.wait_for(asyncio.gather(*results), WAIT)
            assert {first(a).error_code for a in answered} == {ErrorCode.REQUEST_TIMED_OUT}
            assert len(partition._replication_waiters) <= 2 * 64 + 1

    run(scenario())
