"""The broker's disk workers: every blocking disk call (fsync, directory creation, renames,
checkpoint writes) runs in these threads, never on the event loop.

Kafka does such work on its request-handler threads and its scheduler (``background.threads``,
default 10); Brook has one event loop for all requests, so a slow disk would stall every client.
Handlers ``await run(...)`` and answer when the work is done; storage gets ``background`` for
work nobody waits for (the flush of a rolled segment).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

THREAD_PREFIX = "brook-disk"


class DiskWorkers:
    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=THREAD_PREFIX)
        #: Pools replaced by :meth:`resize`, finishing the work they had (joined at shutdown).
        self._retired: list[ThreadPoolExecutor] = []
        self._closed = False

    def resize(self, threads: int) -> None:
        """A dynamic ``background.threads``: new work goes to a pool of that size; the old pool
        finishes what it was given and its threads end (Kafka's DynamicThreadPool resizes its
        scheduler the same way: work in progress is not interrupted)."""
        threads = max(1, threads)
        if threads == self.threads or self._closed:
            return
        old = self._pool
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=THREAD_PREFIX)
        self.threads = threads
        old.shutdown(wait=False)
        self._retired.append(old)

    def background(self, work: Callable[[], None]) -> None:
        """Run ``work`` in a worker; nobody waits for it, so a failure is logged. Dropped after
        :meth:`shutdown` (closing the logs flushes everything anyway)."""
        if self._closed:
            return
        try:
            future = self._pool.submit(work)
        except RuntimeError:  # shut down meanwhile
            return
        future.add_done_callback(_log_failure)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(*args)`` in a worker and return its result (or raise its exception)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(work, *args))

    def shutdown(self, *, cancel_pending: bool = False) -> None:
        """Wait for queued work to finish (or, with ``cancel_pending``, only for the work already
        running: a crash emulation), then stop the threads."""
        self._closed = True
        for pool in (*self._retired, self._pool):
            pool.shutdown(wait=True, cancel_futures=cancel_pending)


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background disk work failed", exc_info=future.exception())
