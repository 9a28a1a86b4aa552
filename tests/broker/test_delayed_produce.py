"""DelayedProduce on its own: completion by a waiter check, its timeout, cancellation through an
awaited future, and the future made only when asked for (the produce handler answers through
``on_complete`` and never asks)."""

from __future__ import annotations

import asyncio
from typing import Any

from broker.replica.delayed_produce import DelayedProduce
from protocol.error_codes import ErrorCode
from tests.broker.fake_server import run

WAIT = 10.0


class FakePartition:
    """What DelayedProduce uses of a partition: a high watermark and its waiter queue."""

    def __init__(self) -> None:
        self.high_watermark = 0
        self.waiters: list[tuple[int, Any]] = []
        self.abandoned = 0

    def check_enough_replicas_reach_offset(self, required: int) -> tuple[bool, ErrorCode]:
        return (True, ErrorCode.NONE) if self.high_watermark >= required else (False, ErrorCode.NONE)

    def await_replication(self, required: int, waiter: Any) -> None:
        self.waiters.append((required, waiter))

    def replication_waiter_abandoned(self) -> None:
        self.abandoned += 1

    def move_hw(self, hw: int) -> None:
        self.high_watermark = hw
        for _, waiter in self.waiters:
            if not waiter.done:
                waiter.check()


def test_on_complete_answers_in_the_completing_call_and_the_future_is_made_late() -> None:
    async def scenario() -> None:
        partition = FakePartition()
        answers: list[list[ErrorCode]] = []
        delayed = DelayedProduce([(partition, 5)], 30_000, answers.append)  # type: ignore[list-item]
        assert delayed._future is None and not delayed.done
        partition.move_hw(4)
        assert answers == []
        partition.move_hw(5)
        assert answers == [[ErrorCode.NONE]] and delayed.done
        assert delayed._timer is None  # the timeout is cancelled
        assert await asyncio.wait_for(delayed.future, WAIT) == [ErrorCode.NONE]  # made now, done

    run(scenario())


def test_already_replicated_completes_at_once() -> None:
    async def scenario() -> None:
        partition = FakePartition()
        partition.high_watermark = 3
        delayed = DelayedProduce([(partition, 3)], 30_000)  # type: ignore[list-item]
        assert delayed.done and partition.waiters == []
        assert await asyncio.wait_for(delayed.future, WAIT) == [ErrorCode.NONE]

    run(scenario())


def test_the_timeout_answers_request_timed_out_for_what_is_still_pending() -> None:
    async def scenario() -> None:
        done, pending = FakePartition(), FakePartition()
        done.high_watermark = 1
        delayed = DelayedProduce([(done, 1), (pending, 1)], 1)  # type: ignore[list-item]
        codes = await asyncio.wait_for(delayed.future, WAIT)
        assert codes == [ErrorCode.NONE, ErrorCode.REQUEST_TIMED_OUT]
        assert pending.abandoned == 1 and done.abandoned == 0

    run(scenario())


def test_cancelling_the_awaited_future_ends_the_wait() -> None:
    async def scenario() -> None:
        partition = FakePartition()
        answers: list[list[ErrorCode]] = []
        delayed = DelayedProduce([(partition, 1)], 30_000, answers.append)  # type: ignore[list-item]
        waiting = asyncio.ensure_future(delayed.future)
        await asyncio.sleep(0)
        waiting.cancel()
        for _ in range(3):  # the future's done callbacks run on the next turns of the loop
            await asyncio.sleep(0)
        assert delayed.done and partition.abandoned == 1 and delayed._timer is None
        partition.move_hw(1)
        assert answers == []  # nothing is answered after a cancellation

    run(scenario())


def test_cancel_before_the_future_was_asked_for() -> None:
    async def scenario() -> None:
        partition = FakePartition()
        delayed = DelayedProduce([(partition, 1)], 30_000)  # type: ignore[list-item]
        delayed.cancel()
        assert delayed.done and partition.abandoned == 1
        assert delayed.future.cancelled()
        delayed.cancel()  # twice is harmless
        assert partition.abandoned == 1

    run(scenario())
