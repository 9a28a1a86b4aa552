"""One partition replica on this broker: its log, leadership, high watermark and waiters.

The high watermark is the smallest log end offset among the in-sync replicas; with one broker
the ISR is just the leader, so it follows the log end offset. Fetches that wait for data
register a listener that every append (and every high-watermark move) calls: long polls are
woken by events, never by polling.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from broker.cluster.metadata import PartitionState
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.records import batch as rb
from storage import AppendInfo, Log
from storage.producer_state import (
    BatchMetadata,
    InvalidProducerEpoch,
    OutOfOrderSequence,
    ProducerStateManager,
)

log = logging.getLogger(__name__)

Listener = Callable[[], None]


@dataclass(slots=True)
class AppendOutcome:
    """What a produce to one partition answers."""

    error: ErrorCode
    base_offset: int = -1
    last_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    message: str | None = None
    duplicate: bool = False


class Partition:
    """A partition replica hosted here (leader or, in cluster mode, follower)."""

    def __init__(
        self, tp: TopicPartition, topic_id: uuid.UUID, log_: Log, state: PartitionState, local_id: BrokerId
    ) -> None:
        self.tp = tp
        self.topic_id = topic_id
        self.log = log_
        self.state = state
        self.local_id = local_id
        self._listeners: set[Listener] = set()
        #: Log end offsets of follower replicas (cluster mode); the leader's own is the log's.
        self.follower_leo: dict[BrokerId, int] = {}

    # -- state -----------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.state.leader == self.local_id

    @property
    def leader_epoch(self) -> int:
        return self.state.leader_epoch

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def last_stable_offset(self) -> int:
        # No transactions yet: nothing is pending, so everything below the HW is stable.
        return self.log.high_watermark

    @property
    def producers(self) -> ProducerStateManager:
        """The log's producer state (the log restores it at load and truncation)."""
        return self.log.producer_state

    # -- listeners -------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def wake_waiters(self) -> None:
        """Wake whatever waits on this replica (a leadership change: delayed fetches then answer
        NOT_LEADER_OR_FOLLOWER at once, as Kafka completes them when a leader steps down)."""
        self._notify()

    def _notify(self) -> None:
        if self._listeners:
            for listener in list(self._listeners):
                try:
                    listener()
                except Exception:
                    # A waiter's fault must not fail the append that already happened.
                    log.exception("listener of %s failed; removing it", self.tp)
                    self._listeners.discard(listener)

    # -- writes ----------------------------------------------------------------------------------

    def maybe_increment_high_watermark(self) -> bool:
        hw = self.log.log_end_offset
        isr = self.state.isr
        if len(isr) > 1:
            for replica in isr:
                if replica != self.local_id:
                    hw = min(hw, self.follower_leo.get(replica, 0))
        if hw > self.log.high_watermark:
            self.log.high_watermark = hw
            return True
        return False

    def append_as_leader(self, records: memoryview, header: rb.BatchHeader | None) -> AppendOutcome:
        """Append client batches (already validated for shape by the produce handler).

        ``header`` is the single batch's header when the request carried exactly one batch (v3+),
        which is when idempotence applies.
        """
        duplicate: BatchMetadata | None = None
        if header is not None and header.producer_id >= 0:
            try:
                duplicate = self.producers.check(header)
            except InvalidProducerEpoch as exc:
                return AppendOutcome(ErrorCode.INVALID_PRODUCER_EPOCH, message=str(exc))
            except OutOfOrderSequence as exc:
                return AppendOutcome(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message=str(exc))
        if duplicate is not None:
            return AppendOutcome(
                ErrorCode.NONE,
                duplicate.first_offset,
                duplicate.last_offset,
                -1,
                self.log.log_start_offset,
                duplicate=True,
            )
        info: AppendInfo = self.log.append(records, self.state.leader_epoch)
        if header is not None and header.producer_id >= 0:
            self.producers.update(header, info.first_offset)
        elif header is None:
            self._track_producers(records)
        self.maybe_increment_high_watermark()
        self._notify()
        return AppendOutcome(
            ErrorCode.NONE, info.first_offset, info.last_offset, info.log_append_time, info.log_start_offset
        )

    def append_internal(self, records: bytearray | memoryview) -> AppendOutcome:
        """Append batches the broker itself built (coordinator records), as leader."""
        view = records if isinstance(records, memoryview) else memoryview(records)
        return self.append_as_leader(view, None)

    async def wait_for_high_watermark(self, offset: int, timeout_s: float) -> bool:
        """Wait until the high watermark passes ``offset`` (the record is replicated to the ISR:
        what acks=all and the coordinators call durable). True when it did within the timeout.
        With one broker the high watermark follows every append, so this returns at once."""
        if self.log.high_watermark > offset:
            return True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def check() -> None:
            if self.log.high_watermark > offset and not done.done():
                done.set_result(None)

        self.add_listener(check)
        try:
            await asyncio.wait_for(done, timeout_s)
            return True
        except TimeoutError:
            return self.log.high_watermark > offset
        finally:
            self.remove_listener(check)

    def _track_producers(self, records: memoryview) -> None:
        """Producer state of a multi-batch append (old produce versions, internal appends)."""
        for _, header in rb.iter_batches(records):
            if header.producer_id >= 0:
                self.producers.update(header, header.base_offset)

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)
