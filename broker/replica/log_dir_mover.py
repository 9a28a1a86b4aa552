"""Moving replicas between this broker's log dirs (KIP-113), as Kafka's ReplicaAlterLogDirsManager.

AlterReplicaLogDirs creates a partition's future log in the destination dir
(:meth:`LogManager.create_future_log`) and calls :meth:`LogDirMover.start`. One asyncio task per
moving partition then copies the current log into the future one in bounded steps
(:func:`storage.log_mover.copy_step`, ``replica.fetch.max.bytes`` each), every step in a disk
worker, never on the event loop. When a step leaves nothing to copy it waits for the next append
to the partition (its listener), with a backstop timeout for truncations and log-start moves,
which wake no listener. Once caught up, the swap runs in a disk worker under the current log's
lock: the last bytes are copied there (nothing can append meanwhile), the future log takes the
current one's place (:meth:`LogManager.replace_current_with_future`) and the partition reads and
writes the new log from then on.

A broker that stops mid-move loads the future log again (storage) and resumes here: at start for
the embedded node's partitions (:meth:`resume`), on LeaderAndIsr in cluster mode (the replica
manager's hand-over calls :meth:`start`). A deleted partition, or a move cancelled or redirected
by another AlterReplicaLogDirs, ends its task; a disk error ends it too (the dir goes offline).
Throttled as Kafka's ReplicaAlterLogDirsThread by ``replica.alter.log.dirs.io.max.bytes.per.second``
(a dynamic broker config; :mod:`broker.replica.replication_quota`): a step waits while the bytes
copied are over the rate; the last copy under the lock at the swap is not throttled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from broker.types import TopicPartition
from storage import Log, LogManager, StorageError
from storage.log_mover import DEFAULT_STEP_BYTES, copy_step

if TYPE_CHECKING:
    from broker.replica.manager import ReplicaManager

log = logging.getLogger(__name__)
_T = TypeVar("_T")
DiskRun = Callable[..., Awaitable[Any]]
#: How long a caught-up copy waits for an append before looking again (truncations and log-start
#: moves of the current log wake nothing).
IDLE_RECHECK_S = 1.0
#: The longest single wait of a throttled move (a raised or removed throttle applies after it).
MAX_THROTTLE_WAIT_MS = 1000


class LogDirMover:
    def __init__(
        self,
        replicas: ReplicaManager,
        log_manager: LogManager,
        disk_run: DiskRun,
        step_bytes: int = DEFAULT_STEP_BYTES,
    ) -> None:
        self.replicas = replicas
        self.log_manager = log_manager
        self.disk_run = disk_run
        self.step_bytes = step_bytes
        self._tasks: dict[TopicPartition, asyncio.Task[None]] = {}
        self._stopped = False
        #: Completed moves, for tests and logs: (partition, destination dir).
        self.completed: list[tuple[TopicPartition, str]] = []

    def moving(self, tp: TopicPartition) -> bool:
        task = self._tasks.get(tp)
        return task is not None and not task.done()

    def start(self, tp: TopicPartition) -> None:
        """Copy ``tp`` into its future log (if it has one and no task copies it yet)."""
        if self._stopped or self.moving(tp):
            return
        if self.log_manager.future_log(tp.topic, tp.partition) is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(tp), name=f"alter-log-dir {tp}")
        self._tasks[tp] = task
        task.add_done_callback(lambda t, key=tp: self._forget(key, t))

    def resume(self) -> None:
        """Start a task for every hosted partition with a future log (moves a stop interrupted)."""
        for future in self.log_manager.future_logs():
            tp = TopicPartition(future.topic, future.partition)
            if self.replicas.get(tp) is not None:
                log.info("resuming the move of %s to %s", tp, future.directory.parent)
                self.start(tp)

    async def cancel(self, tp: TopicPartition) -> None:
        """Stop copying ``tp`` (its future log is about to be removed)."""
        task = self._tasks.pop(tp, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        self._stopped = True
        for tp in list(self._tasks):
            await self.cancel(tp)

    def _forget(self, tp: TopicPartition, task: asyncio.Task[None]) -> None:
        if self._tasks.get(tp) is task:
            del self._tasks[tp]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("moving %s between log dirs failed: %s", tp, exc, exc_info=exc)

    async def _run(self, tp: TopicPartition) -> None:
        wake = asyncio.Event()
        listening: Any = None
        try:
            while True:
                partition = self.replicas.get(tp)
                future = self.log_manager.future_log(tp.topic, tp.partition)
                if partition is None or future is None:
                    return  # deleted, or the move was cancelled
                if listening is not partition:
                    if listening is not None:
                        listening.remove_listener(wake.set)
                    partition.add_listener(wake.set)
                    listening = partition
                current = partition.log
                wake.clear()
                throttle = self.replicas.replication_quotas.alter_log_dirs
                if throttle.active and (delay_ms := throttle.delay_ms()):
                    # replica.alter.log.dirs.io.max.bytes.per.second: wait for the rate to fall.
                    await asyncio.sleep(min(delay_ms, MAX_THROTTLE_WAIT_MS) / 1000)
                    continue
                try:
                    step = await self.disk_run(copy_step, current, future, self.step_bytes)
                    throttle.record(step.copied)
                    new = await self.disk_run(self._swap, tp, current, future) if step.lag == 0 else None
                except StorageError as exc:
                    # The current or future log was deleted or its dir went offline meanwhile.
                    log.warning("the move of %s stopped: %s", tp, exc)
                    return
                if new is not None:
                    dest = str(new.directory.parent)
                    log.info("%s moved to log dir %s (log end offset %d)", tp, dest, new.log_end_offset)
                    self.completed.append((tp, dest))
                    partition.wake_waiters()
                    return
                if step.copied == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), IDLE_RECHECK_S)
        finally:
            if listening is not None:
                listening.remove_listener(wake.set)

    def _swap(self, tp: TopicPartition, current: Log, future: Log) -> Log | None:
        """In a disk worker: the final copy and the swap, under the current log's lock."""
        partition = self.replicas.get(tp)
        if partition is None or partition.log is not current:
            return None

        def catch_up() -> None:
            while copy_step(current, future, self.step_bytes).copied:
                pass

        def adopt(new: Log) -> None:
            partition.log = new

        return self.log_manager.replace_current_with_future(tp.topic, tp.partition, adopt, catch_up)
