"""One partition replica on this broker: its log, leadership, high watermark and waiters.

The high watermark is the smallest log end offset among the in-sync replicas; with one broker
the ISR is just the leader, so it follows the log end offset. In cluster mode the leader keeps
its followers' positions (:class:`~broker.replica.isr.LeaderReplicaState`) from their fetches
(:meth:`Partition.update_follower_fetch_state`), moves the high watermark when they advance, and
asks the controller for ISR changes (AlterPartition, through ``isr_sender``): a follower that
reaches the high watermark joins, one not caught up for ``replica.lag.time.max.ms`` leaves
(:meth:`Partition.maybe_shrink_isr`, run every half of it).

Fetches and produces that wait register a listener: long polls and acks=all are completed by
events, never by polling. Follower fetches wait for appends (:meth:`Partition.add_listener`:
every append, high-watermark move, ISR or leadership change); consumer fetches wait for the high
watermark (:meth:`Partition.add_watermark_listener`: the same events but appends that leave the
high watermark where it was, which in a cluster is every leader append). acks=all produces wait
in offset order (:meth:`Partition.await_replication`, Kafka's produce purgatory keyed by
partition): a high-watermark move calls only the waiters it passed, so its cost does not grow
with the number of produces still waiting (a backlog of pipelined produces made every move
re-check them all); ISR and leadership changes, which may answer them with an error, call all.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from broker.cluster.metadata import PartitionState
from broker.metrics.stats import IsrChangeCounts
from broker.replica.isr import CommittedIsr, LeaderReplicaState, PendingIsrChange
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.records import batch as rb
from storage import AppendInfo, Log
from storage.fast_dataclass import dataclass
from storage.producer_state import (
    BatchMetadata,
    CoordinatorFenced,
    InvalidProducerEpoch,
    InvalidTxnState,
    OutOfOrderSequence,
    ProducerStateManager,
    VerificationGuard,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

Listener = Callable[[], None]
#: Sends an ISR change to the controller (:meth:`AlterPartitionManager.submit`).
IsrAnswer = CommittedIsr | ErrorCode
IsrSender = Callable[[TopicPartition, uuid.UUID, PendingIsrChange], "asyncio.Future[IsrAnswer]"]
#: Kafka's replica.lag.time.max.ms default.
DEFAULT_MAX_LAG_MS = 30_000


class ReplicationWaiter(Protocol):
    """What waits in :meth:`Partition.await_replication` (a :class:`DelayedProduce`)."""

    @property
    def done(self) -> bool: ...

    def check(self) -> None: ...


#: Timed-out waiters left in a partition's queue before it is compacted (they go anyway once the
#: high watermark passes them; this bounds the queue while it is stuck, e.g. under min ISR).
_COMPACT_AFTER = 64


def _always(_: BrokerId) -> bool:
    return True


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
        self._watermark_listeners: set[Listener] = set()
        #: acks=all waiters as a heap of (required offset, arrival order, waiter).
        self._replication_waiters: list[tuple[int, int, ReplicationWaiter]] = []
        self._waiter_order = itertools.count()
        self._abandoned_waiters = 0
        #: The followers' positions and the ISR while this replica leads; None otherwise.
        self.leader_state: LeaderReplicaState | None = None
        #: Cluster mode: where ISR changes go (None: the ISR never changes, as on one node).
        self.isr_sender: IsrSender | None = None
        #: Whether a broker may join the ISR (Kafka, ZooKeeper mode: it is alive).
        self.isr_eligible: Callable[[BrokerId], bool] = _always
        self.max_lag_ms = DEFAULT_MAX_LAG_MS
        #: Where committed ISR shrinks and expands are counted (the broker's metrics).
        self.isr_changes: IsrChangeCounts | None = None

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
        """min(HW, first unstable offset): what a read_committed consumer may read below."""
        return self.log.last_stable_offset

    @property
    def producers(self) -> ProducerStateManager:
        """The log's producer state (the log restores it at load and truncation)."""
        return self.log.producer_state

    @contextmanager
    def current_log(self) -> Iterator[Log]:
        """The partition's log, locked for the caller's writes (any thread).

        A move between log dirs replaces ``self.log`` under the old log's lock (Kafka swaps under
        the partition's write lock): a writer that read ``self.log`` just before the swap and
        then waited for that lock would write to a log renamed for deletion. Taking the lock
        first and checking that the log is still current closes that window; the lock is
        re-entrant, so the log's own methods take it again."""
        while True:
            log_ = self.log
            with log_.lock:
                if self.log is log_:
                    yield log_
                    return

    def on_current_log(self, action: Callable[[Log], _T]) -> _T:
        """``action(log)`` on the current log, locked (see :meth:`current_log`); for disk workers."""
        with self.current_log() as log_:
            return action(log_)

    # -- listeners -------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every append, high-watermark move, ISR or leadership change."""
        self._listeners.add(listener)

    def add_watermark_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every high-watermark move, ISR or leadership change, but not
        after an append that leaves the high watermark where it was (what a consumer's long poll
        and an acks=all produce wait for)."""
        self._watermark_listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Forget ``listener``, however it was added."""
        self._listeners.discard(listener)
        self._watermark_listeners.discard(listener)

    def await_replication(self, required_offset: int, waiter: ReplicationWaiter) -> None:
        """Call ``waiter.check()`` once the high watermark reaches ``required_offset``, and on
        every ISR or leadership change before that. A waiter that is ``done`` is skipped (and
        dropped); one that gives up early calls :meth:`replication_waiter_abandoned`."""
        heapq.heappush(self._replication_waiters, (required_offset, next(self._waiter_order), waiter))

    def replication_waiter_abandoned(self) -> None:
        """A waiter ended before the high watermark reached it (its timeout): compact the queue
        once such leftovers are many, so a stuck high watermark does not make it grow forever."""
        self._abandoned_waiters += 1
        waiters = self._replication_waiters
        if self._abandoned_waiters > _COMPACT_AFTER and self._abandoned_waiters * 2 > len(waiters):
            self._replication_waiters = [entry for entry in waiters if not entry[2].done]
            heapq.heapify(self._replication_waiters)
            self._abandoned_waiters = 0

    def wake_waiters(self) -> None:
        """Wake whatever waits on this replica (a leadership change: delayed fetches then answer
        NOT_LEADER_OR_FOLLOWER at once, as Kafka completes them when a leader steps down)."""
        self._notify(state_changed=True)

    def _notify(self, watermark_moved: bool = True, state_changed: bool = False) -> None:
        """Call the listeners; the watermark listeners only when ``watermark_moved`` (anything but
        an append that left the high watermark in place); the replication waiters the high
        watermark passed, or all of them on a ``state_changed`` (ISR, leadership)."""
        self._call(self._listeners)
        if watermark_moved or state_changed:
            self._call(self._watermark_listeners)
        if self._replication_waiters:
            if state_changed:
                self._check_all_replication_waiters()
            elif watermark_moved:
                self._complete_replicated()

    def _complete_replicated(self) -> None:
        """Call the replication waiters whose offset the high watermark reached, in offset order."""
        waiters = self._replication_waiters
        hw = self.log.high_watermark
        while waiters and waiters[0][0] <= hw:
            waiter = heapq.heappop(waiters)[2]
            if not waiter.done:
                self._check(waiter)

    def _check_all_replication_waiters(self) -> None:
        waiters = self._replication_waiters
        self._replication_waiters = []
        self._abandoned_waiters = 0
        for entry in waiters:
            if not entry[2].done:
                self._check(entry[2])
        # Those still waiting (the HW below them, enough replicas) stay, in order.
        kept = [entry for entry in waiters if not entry[2].done]
        self._replication_waiters.extend(kept)
        heapq.heapify(self._replication_waiters)

    def _check(self, waiter: ReplicationWaiter) -> None:
        try:
            waiter.check()
        except Exception:
            # A waiter's fault must not fail the append or fetch that moved the high watermark.
            log.exception("replication waiter of %s failed", self.tp)

    def _call(self, listeners: set[Listener]) -> None:
        if listeners:
            for listener in list(listeners):
                try:
                    listener()
                except Exception:
                    # A waiter's fault must not fail the append that already happened.
                    log.exception("listener of %s failed; removing it", self.tp)
                    listeners.discard(listener)

    # -- writes ----------------------------------------------------------------------------------

    def maybe_increment_high_watermark(self, now_ms: int | None = None) -> bool:
        """Kafka's maybeIncrementLeaderHW: the smallest log end offset over the maximal ISR (and
        caught-up replicas about to join); never backwards. True when it moved."""
        leader_state = self.leader_state
        if leader_state is None:
            if len(self.state.isr) > 1:
                return False  # followers' positions are unknown until this replica leads
            hw = self.log.log_end_offset
        else:
            candidate = leader_state.high_watermark_candidate(
                self.log.log_end_offset,
                self.log.clock.milliseconds() if now_ms is None else now_ms,
                self.max_lag_ms,
                self.log.config.min_insync_replicas,
                self.isr_eligible,
            )
            if candidate is None:
                return False
            hw = candidate
        if hw > self.log.high_watermark:
            self.log.high_watermark = hw
            return True
        return False

    # -- leadership and the ISR (cluster mode) ---------------------------------------------------

    def make_leader(self, was_leader: bool, now_ms: int) -> None:
        """This replica now leads under ``state`` (a LeaderAndIsr was applied): the controller's
        ISR replaces any pending change; a new leader epoch resets the followers' states."""
        st = self.state
        if self.leader_state is None:
            self.leader_state = LeaderReplicaState(
                self.local_id, tuple(st.replicas), tuple(st.isr), -1, st.partition_epoch
            )
        self.leader_state.become_leader(
            st.replicas,
            st.isr,
            st.leader_epoch,
            st.partition_epoch,
            now_ms=now_ms,
            leader_leo=self.log.log_end_offset,
            new_leader=not was_leader,
        )
        self.maybe_increment_high_watermark(now_ms)

    def make_follower(self) -> None:
        self.leader_state = None

    def is_assigned(self, replica: BrokerId) -> bool:
        return self.leader_state is not None and replica in self.leader_state.followers

    def update_follower_fetch_state(
        self, replica: BrokerId, fetch_offset: int, start_offset: int, leader_leo: int, now_ms: int
    ) -> None:
        """A follower fetched from ``fetch_offset`` while the log ended at ``leader_leo`` (Kafka's
        updateFollowerFetchState): record it, maybe add it to the ISR, maybe move the HW. O(replicas)."""
        leader_state = self.leader_state
        if leader_state is None or replica not in leader_state.followers:
            return
        moved = leader_state.record_fetch(replica, fetch_offset, start_offset, now_ms, leader_leo)
        self._maybe_expand_isr(replica)
        if moved and self.maybe_increment_high_watermark(now_ms):
            self._notify()

    def _maybe_expand_isr(self, replica: BrokerId) -> None:
        leader_state = self.leader_state
        if leader_state is None or self.isr_sender is None:
            return
        if leader_state.pending is not None or replica in leader_state.isr:
            return  # the usual case, decided before looking up the epoch's start
        if not leader_state.can_join(replica, self.log.high_watermark, self._epoch_start_offset()):
            return
        if not self.isr_eligible(replica):
            return
        change = leader_state.propose_expand(replica)
        log.info(
            "Expanding ISR of %s from %s to %s",
            self.tp,
            list(change.committed_isr),
            list(change.proposed_isr),
        )
        self._submit(change)

    def maybe_shrink_isr(self, now_ms: int) -> None:
        """Kafka's isr-expiration task: ISR followers not caught up for ``replica.lag.time.max.ms``
        are proposed out of the ISR."""
        leader_state = self.leader_state
        if leader_state is None or self.isr_sender is None:
            return
        leaving = leader_state.out_of_sync(self.log.log_end_offset, now_ms, self.max_lag_ms)
        if not leaving:
            return
        change = leader_state.propose_shrink(leaving)
        log.info(
            "Shrinking ISR of %s from %s to %s (HW %d, LEO %d); out of sync: %s",
            self.tp,
            list(change.committed_isr),
            list(change.proposed_isr),
            self.log.high_watermark,
            self.log.log_end_offset,
            {r: leader_state.followers[r] for r in leaving if r in leader_state.followers},
        )
        self._submit(change)

    def _submit(self, change: PendingIsrChange) -> None:
        assert self.isr_sender is not None
        future = self.isr_sender(self.tp, self.topic_id, change)
        future.add_done_callback(lambda f: self._on_alter_partition(change, f))

    def _on_alter_partition(self, change: PendingIsrChange, future: asyncio.Future[IsrAnswer]) -> None:
        if future.cancelled():
            return
        leader_state = self.leader_state
        if leader_state is None or leader_state.pending is not change:
            return  # overtaken by a leadership change
        answer = future.result()
        if isinstance(answer, CommittedIsr):
            if not leader_state.commit(change, answer):
                log.info("Ignoring ISR %s of %s from the controller: stale epochs", answer, self.tp)
                return
            st = self.state
            counts = self.isr_changes
            if counts is not None and len(answer.isr) != len(st.isr):
                # Kafka's IsrShrinksPerSec / IsrExpandsPerSec, marked when the change commits.
                if len(answer.isr) < len(st.isr):
                    counts.shrinks += 1
                else:
                    counts.expands += 1
            self.state = PartitionState(
                list(st.replicas), st.leader, st.leader_epoch, list(answer.isr), answer.partition_epoch
            )
            log.info(
                "ISR of %s updated to %s, partition epoch %d",
                self.tp,
                list(answer.isr),
                answer.partition_epoch,
            )
            self.maybe_increment_high_watermark()
            self._notify(state_changed=True)  # delayed produces re-check (HW, ISR size)
            return
        if leader_state.fail(change, answer):
            log.warning("ISR change of %s failed with %s; retrying", self.tp, answer.name)
            self._submit(change)
        else:
            log.info("ISR change of %s refused by the controller: %s", self.tp, answer.name)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """Kafka's lastOffsetForLeaderEpoch on the leader: the largest epoch not above ``epoch``
        and where it ends (the log end for the current epoch); (-1, -1) when unknown."""
        found, end = self.log.leader_epochs.end_offset_for_epoch(epoch)
        if found == self.leader_epoch or (found >= 0 and end > self.log.log_end_offset):
            end = self.log.log_end_offset
        return found, end

    def _epoch_start_offset(self) -> int | None:
        """Where the current leader epoch starts in the log (Kafka's leaderEpochStartOffsetOpt)."""
        for entry in reversed(self.log.leader_epochs.entries()):
            if entry.epoch == self.leader_epoch:
                return entry.start_offset
            if entry.epoch < self.leader_epoch:
                break
        return None

    def check_enough_replicas_reach_offset(self, required_offset: int) -> tuple[bool, ErrorCode]:
        """Kafka's checkEnoughReplicasReachOffset for a delayed produce: done when the HW reached
        ``required_offset`` (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR is then below
        min.insync), or at once when this replica no longer leads."""
        if not self.is_leader:
            return True, ErrorCode.NOT_LEADER_OR_FOLLOWER
        min_isr = self.log.config.min_insync_replicas
        leader_state = self.leader_state
        maximal = len(leader_state.maximal_isr) if leader_state is not None else len(self.state.isr)
        effective = leader_state.effective_min_isr(min_isr) if leader_state is not None else min(min_isr, 1)
        if self.log.high_watermark >= required_offset:
            enough = effective <= maximal
            return True, ErrorCode.NONE if enough else ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        if leader_state is not None and leader_state.pending is None and len(leader_state.isr) < effective:
            # Deliberate: Kafka 3.9 stops the HW under min ISR and lets the request time out;
            # answering now tells the producer without making it wait request.timeout.ms.
            return True, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return False, ErrorCode.NONE

    def maybe_start_transaction_verification(
        self, producer_id: int, sequence: int, epoch: int
    ) -> VerificationGuard:
        """KIP-890 (Kafka's Partition.maybeStartTransactionVerification): the guard an append of
        this producer's transactional batch must present once the coordinator verified the
        partition; the sentinel when its transaction is already open here."""
        return self.producers.maybe_start_verification(
            producer_id, sequence, epoch, self.log.clock.milliseconds()
        )

    def append_as_leader(
        self,
        records: memoryview,
        header: rb.BatchHeader | None,
        verification_guard: VerificationGuard | None = None,
    ) -> AppendOutcome:
        """Append client batches (already validated for shape by the produce handler).

        ``header`` is the single batch's header when the request carried exactly one batch (v3+),
        which is when idempotence applies. ``verification_guard`` (KIP-890 verification on): a
        transactional batch that would open its producer's transaction needs that guard to be
        the current verification's (INVALID_TXN_STATE otherwise).
        """
        while True:  # current_log(), inline: this is the produce path
            log_ = self.log
            with log_.lock:
                if self.log is log_:
                    outcome = self._append_as_leader(log_, records, header, verification_guard)
                    break
        if outcome.error == ErrorCode.NONE and not outcome.duplicate:
            self._notify(watermark_moved=self.maybe_increment_high_watermark())
        return outcome

    def _append_as_leader(
        self,
        log_: Log,
        records: memoryview,
        header: rb.BatchHeader | None,
        verification_guard: VerificationGuard | None,
    ) -> AppendOutcome:
        duplicate: BatchMetadata | None = None
        if header is not None and header.producer_id >= 0:
            try:
                duplicate = log_.producer_state.check(header, verification_guard)
            except InvalidProducerEpoch as exc:
                return AppendOutcome(ErrorCode.INVALID_PRODUCER_EPOCH, message=str(exc))
            except OutOfOrderSequence as exc:
                return AppendOutcome(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message=str(exc))
            except InvalidTxnState as exc:
                return AppendOutcome(ErrorCode.INVALID_TXN_STATE, message=str(exc))
        if duplicate is not None:
            return AppendOutcome(
                ErrorCode.NONE,
                duplicate.first_offset,
                duplicate.last_offset,
                -1,
                log_.log_start_offset,
                duplicate=True,
            )
        info: AppendInfo = log_.append(records, self.state.leader_epoch)
        if header is not None and header.producer_id >= 0:
            log_.producer_state.update(header, info.first_offset)
        elif header is None:
            self._track_producers(log_, records)
        return AppendOutcome(
            ErrorCode.NONE, info.first_offset, info.last_offset, info.log_append_time, info.log_start_offset
        )

    def append_txn_marker(
        self, producer_id: int, producer_epoch: int, coordinator_epoch: int, committed: bool
    ) -> AppendOutcome:
        """Append a COMMIT/ABORT marker as leader (WriteTxnMarkers). INVALID_PRODUCER_EPOCH or
        TRANSACTION_COORDINATOR_FENCED when the producer state fences it, nothing written."""
        try:
            with self.current_log() as log_:
                info = log_.append_txn_marker(
                    producer_id, producer_epoch, coordinator_epoch, committed, self.state.leader_epoch
                )
        except InvalidProducerEpoch as exc:
            return AppendOutcome(ErrorCode.INVALID_PRODUCER_EPOCH, message=str(exc))
        except CoordinatorFenced as exc:
            return AppendOutcome(ErrorCode.TRANSACTION_COORDINATOR_FENCED, message=str(exc))
        # The HW may move (one node), and with it the LSO: read_committed long polls wake.
        self._notify(watermark_moved=self.maybe_increment_high_watermark())
        return AppendOutcome(
            ErrorCode.NONE, info.first_offset, info.last_offset, info.log_append_time, info.log_start_offset
        )

    def append_internal(
        self, records: bytearray | memoryview, verification_guard: VerificationGuard | None = None
    ) -> AppendOutcome:
        """Append batches the broker itself built (coordinator records), as leader. A
        transactional batch (the group coordinator's TxnOffsetCommit records: producer id and
        epoch, no sequence; Kafka's AppendOrigin.COORDINATOR) opens its producer's transaction
        without any sequence check, as a client's would, so the LSO and the marker that ends it
        work the same. With a ``verification_guard`` its transactional batches need their
        KIP-890 verification still to hold (INVALID_TXN_STATE otherwise)."""
        view = records if isinstance(records, memoryview) else memoryview(records)
        if verification_guard is not None:
            for _, header in rb.iter_batches(view):
                if header.is_transactional and not header.is_control and header.producer_id >= 0:
                    try:
                        self.producers.check_verified(header.producer_id, verification_guard)
                    except InvalidTxnState as exc:
                        return AppendOutcome(ErrorCode.INVALID_TXN_STATE, message=str(exc))
        return self.append_as_leader(view, None)

    def _track_producers(self, log_: Log, records: memoryview) -> None:
        """Producer state of a multi-batch append (old produce versions, internal appends)."""
        for _, header in rb.iter_batches(records):
            if header.producer_id >= 0:
                log_.producer_state.update(header, header.base_offset)

    def truncate_to(self, offset: int) -> None:
        with self.current_log() as log_:
            log_.truncate_to(offset)
