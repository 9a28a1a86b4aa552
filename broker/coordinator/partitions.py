""":class:`CoordinatorPartitions`: the partitions of a coordinator's internal topic as this
broker leads them: the topic's one-at-a-time creation, the leadership events that make this
broker load or drop a partition, the load tasks, and :meth:`~CoordinatorPartitions.write_batch`,
the durable (acks=all) append of one batch the coordinator built.

What a partition holds (groups, transactional ids) and what owning it means stay with each
coordinator's store, a subclass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from broker.cluster.metadata import PartitionState, TopicInfo
from broker.replica.delayed_produce import DelayedProduce
from broker.replica.partition import Partition
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from storage import RecordTooLargeError, StorageError
from storage.clock import Clock
from storage.fast_dataclass import dataclass
from storage.producer_state import VerificationGuard

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: ErrorCode
    base_offset: int = -1


async def _done(result: AppendResult) -> AppendResult:
    return result


class CoordinatorPartitions:
    """The partitions of one coordinator topic, as this broker leads them. Subclasses say what
    being elected for (:meth:`on_elected`) or resigning (:meth:`on_resigned`) a partition means."""

    #: The internal topic.
    topic: ClassVar[str]

    def __init__(self, broker: Broker, clock: Clock) -> None:
        self.broker = broker
        self.clock = clock
        self.shutting_down = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._creation: asyncio.Future[Any] | None = None

    # -- the topic --------------------------------------------------------------------------------

    @property
    def info(self) -> TopicInfo | None:
        return self.broker.metadata.topic(self.topic)

    def replica(self, index: int) -> Partition | None:
        return self.broker.replica_manager.get(TopicPartition(self.topic, index))

    async def _create_once(self, create: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``create`` in a task of its own that concurrent callers share and that finishes
        even if the request that started it is cancelled (librdkafka drops its bootstrap
        connection meanwhile): otherwise the topic would exist with no partition taken over."""
        if self._creation is None:
            self._creation = asyncio.ensure_future(create())
            self._creation.add_done_callback(self._created)
        result: T = await asyncio.shield(self._creation)
        return result

    def _created(self, task: asyncio.Future[Any]) -> None:
        self._creation = None
        if not task.cancelled():
            task.exception()  # retrieved: each awaiting request reports it

    def _standalone_replication_factor(self, configured: int, live: int, setting: str) -> int:
        """A standalone broker creates the topic with as many replicas as brokers are alive,
        warning when that is fewer than ``setting`` asks for."""
        if configured <= live:
            return configured
        log.warning(
            "creating %s with replication factor %d: %s=%d but only %d broker(s) are alive (standalone mode)",
            self.topic,
            live,
            setting,
            configured,
            live,
        )
        return live

    def _take_over_led(self, partitions: Sequence[PartitionState]) -> None:
        """Load every partition of ``partitions`` this broker leads."""
        for index, state in enumerate(partitions):
            if state.leader == self.broker.node_id:
                self.on_elected(index, state.leader_epoch)

    # -- leadership -------------------------------------------------------------------------------

    def on_elected(self, index: int, epoch: int) -> None:
        raise NotImplementedError

    def on_resigned(self, index: int) -> None:
        raise NotImplementedError

    def on_leadership_change(self, leading: list[Partition], not_leading: list[Partition]) -> None:
        """Cluster mode, as Kafka's onLeadershipChange: load the partitions of the topic this
        broker now leads, drop those it no longer leads (a replica manager listener)."""
        for partition in leading:
            if partition.tp.topic == self.topic:
                self.on_elected(partition.tp.partition, partition.leader_epoch)
        for partition in not_leading:
            if partition.tp.topic == self.topic:
                self.on_resigned(partition.tp.partition)

    def _start_load(self, index: int, load: Coroutine[Any, Any, None]) -> None:
        self._tasks[index] = asyncio.get_running_loop().create_task(load)

    def _cancel_load(self, index: int) -> None:
        task = self._tasks.pop(index, None)
        if task is not None:
            task.cancel()

    def stop(self) -> None:
        self.shutting_down = True
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    # -- writes -----------------------------------------------------------------------------------

    def write_batch(
        self,
        index: int,
        build: Callable[[], bytearray],
        timeout_ms: int,
        what: str,
        verification_guard: VerificationGuard | None = None,
    ) -> Awaitable[AppendResult]:
        """Append the batch ``build`` makes to partition ``index`` now, as leader and with
        acks=all (as Kafka's coordinators: the effective min ISR must be there); await the
        result for durability: fsynced if ``flush.messages`` asks for it and below the high
        watermark. ``what`` names the records in a storage failure's log line."""
        replica = self.replica(index)
        if replica is None:
            return _done(AppendResult(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
        if not replica.is_leader:
            return _done(AppendResult(ErrorCode.NOT_LEADER_OR_FOLLOWER))
        leader_state = replica.leader_state
        if leader_state is not None and leader_state.is_under_min_isr(replica.log.config.min_insync_replicas):
            return _done(AppendResult(ErrorCode.NOT_ENOUGH_REPLICAS))
        batch = build()
        try:
            outcome = replica.append_internal(batch, verification_guard)
        except RecordTooLargeError:
            return _done(AppendResult(ErrorCode.MESSAGE_TOO_LARGE))
        except (StorageError, OSError) as exc:
            code = self.broker.replica_manager.storage_failure(replica, exc, f"appending {what} records to")
            return _done(AppendResult(code))
        if outcome.error != ErrorCode.NONE:
            return _done(AppendResult(outcome.error))
        # Kafka's BytesInPerSec / MessagesInPerSec count coordinator appends too.
        self.broker.stats.produced(
            replica.tp.topic, outcome.last_offset - outcome.base_offset + 1, len(batch)
        )
        return self._durable(replica, outcome.base_offset, outcome.last_offset, timeout_ms)

    async def _durable(
        self, replica: Partition, base_offset: int, last_offset: int, timeout_ms: int
    ) -> AppendResult:
        if replica.log.flush_needed():
            # flush.messages reached: fsync (in a disk worker) before answering, as Kafka does.
            try:
                await self.broker.disk.run(replica.log.flush, last_offset + 1)
            except (StorageError, OSError) as exc:
                log.error("cannot flush %s: %s", replica.tp, exc)
                return AppendResult(ErrorCode.KAFKA_STORAGE_ERROR, base_offset)
        # acks=all: answered when the high watermark passes the records (event-driven); on one
        # broker, or with the followers already there, that is now (no waiter to build).
        done, code = replica.check_enough_replicas_reach_offset(last_offset + 1)
        if done:
            return AppendResult(code, base_offset)
        (code,) = await DelayedProduce([(replica, last_offset + 1)], timeout_ms).future
        return AppendResult(code, base_offset)
