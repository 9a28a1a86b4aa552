"""acks=all waiting for replication (Kafka's DelayedProduce).

One future and one timer; each partition keeps the request in its queue of replication waiters,
ordered by the offset it needs (:meth:`Partition.await_replication`). A high-watermark move calls
only the waiters it passed; an ISR or leadership change (which may answer NOT_ENOUGH_REPLICAS_-
AFTER_APPEND or NOT_LEADER_OR_FOLLOWER) calls all; each call asks
:meth:`Partition.check_enough_replicas_reach_offset` for the partitions still pending (O(1) each).
The request completes when none is pending; partitions still pending when ``timeout_ms`` passes
answer REQUEST_TIMED_OUT. Nothing polls.

``on_complete``, when given, is called with the codes as the request completes, in the call that
completed it (the produce handler answers from there: no task and no extra turn of the loop per
acks=all request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from broker.replica.partition import Partition
from protocol.error_codes import ErrorCode


class DelayedProduce:
    """Waits until each ``(partition, required_offset)`` is replicated; ``future`` then holds one
    error code per entry, in order (NONE when replicated). With ``on_complete`` nothing needs the
    future, so it is made only if asked for (one less future per acks=all produce)."""

    __slots__ = ("_codes", "_done", "_entries", "_future", "_on_complete", "_pending", "_results", "_timer")

    def __init__(
        self,
        entries: list[tuple[Partition, int]],
        timeout_ms: int,
        on_complete: Callable[[list[ErrorCode]], None] | None = None,
    ) -> None:
        self._entries = entries
        self._on_complete = on_complete
        self._results: list[ErrorCode | None] = [None] * len(entries)
        self._pending = len(entries)
        self._done = False
        self._codes: list[ErrorCode] | None = None
        self._future: asyncio.Future[list[ErrorCode]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.check()
        if self._done:
            return
        for i, (partition, required) in enumerate(entries):
            if self._results[i] is None:
                partition.await_replication(required, self)
        self._timer = asyncio.get_running_loop().call_later(max(timeout_ms, 0) / 1000.0, self._expire)

    @property
    def future(self) -> asyncio.Future[list[ErrorCode]]:
        """The codes, as a future (made at the first use; cancelling it ends the wait)."""
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
            if self._codes is not None:
                future.set_result(self._codes)
            elif self._done:
                future.cancel()
            else:
                # Awaited: a cancelled awaiter cancels the future, which must end the wait too.
                future.add_done_callback(self._on_future_done)
        return future

    @property
    def done(self) -> bool:
        return self._done

    def check(self) -> None:
        if self._done:
            return
        for i, (partition, required) in enumerate(self._entries):
            if self._results[i] is not None:
                continue
            done, error = partition.check_enough_replicas_reach_offset(required)
            if done:
                self._results[i] = error
                self._pending -= 1
        if self._pending == 0:
            self._finish([r if r is not None else ErrorCode.NONE for r in self._results])

    def _expire(self) -> None:
        self._timer = None
        if self._done:
            return
        self.check()
        if self._done:
            return
        for i, (partition, _) in enumerate(self._entries):
            if self._results[i] is None:
                partition.replication_waiter_abandoned()
        self._finish([ErrorCode.REQUEST_TIMED_OUT if r is None else r for r in self._results])

    def _finish(self, codes: list[ErrorCode]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._done = True
        self._codes = codes
        if self._future is not None and not self._future.done():
            self._future.set_result(codes)
        if self._on_complete is not None:
            self._on_complete(codes)

    def _on_future_done(self, future: asyncio.Future[list[ErrorCode]]) -> None:
        if future.cancelled():
            self.cancel()

    def cancel(self) -> None:
        """Stop waiting (the request's connection went away); nothing is answered."""
        if self._timer is None:
            return  # completed, expired or cancelled already
        self._timer.cancel()
        self._timer = None
        self._done = True
        if self._future is not None:
            self._future.cancel()
        for i, (partition, _) in enumerate(self._entries):
            if self._results[i] is None:
                partition.replication_waiter_abandoned()
