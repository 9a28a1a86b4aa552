"""acks=all waiting for replication (Kafka's DelayedProduce).

One future, one timer and one watermark listener per partition: every high-watermark move, ISR
or leadership change on a partition (not an append that leaves the high watermark in place, which
cannot complete it) calls its listener, which asks
:meth:`Partition.check_enough_replicas_reach_offset` for the partitions still pending (O(1) each).
The request completes when none is pending; partitions still pending when ``timeout_ms`` passes
answer REQUEST_TIMED_OUT. Nothing polls.
"""

from __future__ import annotations

import asyncio

from broker.replica.partition import Partition
from protocol.error_codes import ErrorCode


class DelayedProduce:
    """Waits until each ``(partition, required_offset)`` is replicated; ``future`` then holds one
    error code per entry, in order (NONE when replicated)."""

    __slots__ = ("_entries", "_pending", "_results", "_timer", "future")

    def __init__(self, entries: list[tuple[Partition, int]], timeout_ms: int) -> None:
        loop = asyncio.get_running_loop()
        self._entries = entries
        self._results: list[ErrorCode | None] = [None] * len(entries)
        self._pending = len(entries)
        self.future: asyncio.Future[list[ErrorCode]] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self.check()
        if self.future.done():
            return
        for partition in self._partitions():
            partition.add_watermark_listener(self.check)
        self._timer = loop.call_later(max(timeout_ms, 0) / 1000.0, self._expire)
        self.future.add_done_callback(self._forget)

    def _partitions(self) -> list[Partition]:
        return list({id(p): p for p, _ in self._entries}.values())

    def check(self) -> None:
        if self.future.done():
            return
        for i, (partition, required) in enumerate(self._entries):
            if self._results[i] is not None:
                continue
            done, error = partition.check_enough_replicas_reach_offset(required)
            if done:
                self._results[i] = error
                self._pending -= 1
        if self._pending == 0:
            self.future.set_result([r if r is not None else ErrorCode.NONE for r in self._results])

    def _expire(self) -> None:
        if self.future.done():
            return
        self.check()
        if not self.future.done():
            self.future.set_result([ErrorCode.REQUEST_TIMED_OUT if r is None else r for r in self._results])

    def _forget(self, _: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for partition in self._partitions():
            partition.remove_listener(self.check)
