"""Timers of the group coordinator: events on the event loop, never polling.

The coordinator asks a :class:`Scheduler` to call it back at an absolute time on its clock
(milliseconds since the epoch, as the rest of the broker). :class:`LoopScheduler` turns that
into ``loop.call_later``; :class:`ManualScheduler` fires callbacks only when a test advances
its :class:`~storage.clock.ManualClock`, so the state machine can be tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

from storage.clock import Clock, ManualClock

Callback = Callable[[], None]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    clock: Clock

    def call_at(self, deadline_ms: int, callback: Callback) -> TimerHandle:
        """Call ``callback`` once the clock reaches ``deadline_ms``."""
        ...


class LoopScheduler:
    """Timers on an asyncio loop, measured against ``clock``."""

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.clock = clock
        self._loop = loop

    def call_at(self, deadline_ms: int, callback: Callback) -> TimerHandle:
        loop = self._loop or asyncio.get_running_loop()
        delay = max(0, deadline_ms - self.clock.milliseconds()) / 1000.0
        return loop.call_later(delay, callback)


class _ManualHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Timers that fire only from :meth:`advance` (or :meth:`run_due`), in deadline order."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock: ManualClock = clock or ManualClock()
        self._heap: list[tuple[int, int, _ManualHandle, Callback]] = []
        self._seq = itertools.count()

    def call_at(self, deadline_ms: int, callback: Callback) -> TimerHandle:
        handle = _ManualHandle()
        heapq.heappush(self._heap, (deadline_ms, next(self._seq), handle, callback))
        return handle

    @property
    def pending(self) -> int:
        return sum(1 for _, _, h, _ in self._heap if not h.cancelled)

    def run_due(self) -> int:
        """Fire every timer due at the current time (including ones scheduled while firing)."""
        fired = 0
        now = self.clock.milliseconds()
        while self._heap and self._heap[0][0] <= now:
            _, _, handle, callback = heapq.heappop(self._heap)
            if not handle.cancelled:
                handle.cancelled = True
                callback()
                fired += 1
        return fired

    def advance(self, ms: int) -> int:
        """Move the clock forward by ``ms``, firing timers at their deadlines on the way."""
        target = self.clock.milliseconds() + ms
        fired = 0
        while self._heap and self._heap[0][0] <= target:
            deadline = self._heap[0][0]
            if deadline > self.clock.now_ms:
                self.clock.now_ms = deadline
            fired += self.run_due()
        self.clock.now_ms = target
        return fired + self.run_due()
