"""A transactional id's metadata and Kafka 3.9's transaction state machine (TransactionMetadata).

Every change goes in two steps, as in Kafka: a ``prepare_*`` method checks the transition
against the table of valid previous states, sets ``pending_state`` and returns the target
(:class:`TxnTransit`); once its record is durable in ``__transaction_state``,
:meth:`TransactionMetadata.complete_transition` applies it. While a transition is pending no
other may start (the coordinator answers CONCURRENT_TRANSACTIONS). Brook implements
transaction version 0 (Kafka 3.9's default): EndTxn never bumps the epoch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NoReturn

from broker.types import TopicPartition

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
SHORT_MAX = 32767


class TxnState(enum.Enum):
    """Kafka's TransactionState: the id written in the log and the name DescribeTransactions shows."""

    EMPTY = (0, "Empty")
    ONGOING = (1, "Ongoing")
    PREPARE_COMMIT = (2, "PrepareCommit")
    PREPARE_ABORT = (3, "PrepareAbort")
    COMPLETE_COMMIT = (4, "CompleteCommit")
    COMPLETE_ABORT = (5, "CompleteAbort")
    DEAD = (6, "Dead")
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence")

    @property
    def id(self) -> int:
        return self.value[0]

    @property
    def state_name(self) -> str:
        return self.value[1]

    @classmethod
    def from_id(cls, state_id: int) -> TxnState:
        for state in cls:
            if state.id == state_id:
                return state
        raise ValueError(f"Unknown transaction state id {state_id} from the transaction status message")

    @classmethod
    def from_name(cls, name: str) -> TxnState | None:
        for state in cls:
            if state.state_name == name:
                return state
        return None

    @property
    def expiration_allowed(self) -> bool:
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


S = TxnState

#: Kafka's ``validPreviousStates`` of each target state.
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}


class IllegalTransition(Exception):
    """A transition the state machine forbids: a bug of the caller, never a client's error."""


def is_epoch_exhausted(epoch: int) -> bool:
    return epoch >= SHORT_MAX - 1


@dataclass(frozen=True, slots=True)
class TxnTransit:
    """The target of a transition (Kafka's TxnTransitMetadata): what the record holds."""

    producer_id: int
    prev_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    txn_timeout_ms: int
    state: TxnState
    partitions: frozenset[TopicPartition]
    txn_start_timestamp: int
    txn_last_update_timestamp: int


@dataclass(slots=True, eq=False)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    txn_timeout_ms: int = 60000
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int = -1
    previous_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    pending_state: TxnState | None = None
    #: An epoch fence whose write failed: the next fence reuses the bumped epoch.
    has_failed_epoch_fence: bool = False

    @property
    def pending(self) -> bool:
        return self.pending_state is not None

    @property
    def epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    @property
    def has_pending_transaction(self) -> bool:
        return self.state in (S.ONGOING, S.PREPARE_ABORT, S.PREPARE_COMMIT)

    def snapshot(self) -> TxnTransit:
        """The current state as a transit (for writing it unchanged)."""
        return TxnTransit(
            self.producer_id,
            self.previous_producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            self.state,
            frozenset(self.partitions),
            self.txn_start_timestamp,
            self.txn_last_update_timestamp,
        )

    # -- prepare ----------------------------------------------------------------------------------

    def _prepare(
        self,
        state: TxnState,
        producer_id: int,
        epoch: int,
        last_epoch: int,
        timeout_ms: int,
        partitions: frozenset[TopicPartition],
        start: int,
        now: int,
    ) -> TxnTransit:
        if self.pending_state is not None:
            pending = self.pending_state.state_name
            raise IllegalTransition(f"{self.transactional_id}: {state.state_name} while {pending} is pending")
        if producer_id < 0:
            raise IllegalTransition(f"illegal new producer id {producer_id}")
        if state is not S.DEAD and epoch < 0:
            raise IllegalTransition(f"illegal new producer epoch {epoch}")
        if self.state not in VALID_PREVIOUS[state]:
            raise IllegalTransition(
                f"{self.transactional_id}: {state.state_name} is not reachable from {self.state.state_name}"
            )
        self.pending_state = state
        return TxnTransit(
            producer_id, self.producer_id, epoch, last_epoch, timeout_ms, state, partitions, start, now
        )

    def prepare_fence_producer_epoch(self) -> TxnTransit:
        """PrepareEpochFence: bump the epoch so the current producer is fenced before the abort."""
        if self.producer_epoch == SHORT_MAX:
            raise IllegalTransition("cannot fence a producer whose epoch is Short.MaxValue")
        bumped = self.producer_epoch if self.has_failed_epoch_fence else self.producer_epoch + 1
        return self._prepare(
            S.PREPARE_EPOCH_FENCE,
            self.producer_id,
            bumped,
            NO_PRODUCER_EPOCH,
            self.txn_timeout_ms,
            frozenset(self.partitions),
            self.txn_start_timestamp,
            self.txn_last_update_timestamp,
        )

    def prepare_increment_producer_epoch(
        self, timeout_ms: int, expected_epoch: int | None, now: int
    ) -> TxnTransit | None:
        """InitProducerId's epoch bump to Empty; None means PRODUCER_FENCED (KIP-360: a retry
        with the previous epoch gets the current one again)."""
        if self.epoch_exhausted:
            raise IllegalTransition(f"no more producer epochs for producer id {self.producer_id}")
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        else:
            return None
        return self._prepare(S.EMPTY, self.producer_id, epoch, last, timeout_ms, frozenset(), -1, now)

    def prepare_producer_id_rotation(
        self, new_producer_id: int, timeout_ms: int, now: int, record_last_epoch: bool
    ) -> TxnTransit:
        if self.has_pending_transaction:
            raise IllegalTransition("cannot rotate producer ids while a transaction is pending")
        last = self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH
        return self._prepare(S.EMPTY, new_producer_id, 0, last, timeout_ms, frozenset(), -1, now)

    def prepare_add_partitions(
        self, added: set[TopicPartition] | frozenset[TopicPartition], now: int
    ) -> TxnTransit:
        start = (
            now if self.state in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT) else self.txn_start_timestamp
        )
        return self._prepare(
            S.ONGOING,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            frozenset(self.partitions | added),
            start,
            now,
        )

    def prepare_abort_or_commit(self, state: TxnState, now: int) -> TxnTransit:
        return self._prepare(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            frozenset(self.partitions),
            self.txn_start_timestamp,
            now,
        )

    def prepare_complete(self, now: int) -> TxnTransit:
        state = S.COMPLETE_COMMIT if self.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT
        self.has_failed_epoch_fence = False
        return self._prepare(
            state,
            self.producer_id,
            self.producer_epoch,
            self.producer_epoch,
            self.txn_timeout_ms,
            frozenset(),
            self.txn_start_timestamp,
            now,
        )

    def prepare_dead(self) -> TxnTransit:
        return self._prepare(
            S.DEAD,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            frozenset(),
            self.txn_start_timestamp,
            self.txn_last_update_timestamp,
        )

    # -- complete ---------------------------------------------------------------------------------

    def complete_transition(self, transit: TxnTransit) -> None:
        """Apply ``transit`` once its record is durable (Kafka's completeTransitionTo)."""
        target = self.pending_state
        if target is None or target is not transit.state:
            self._fail(transit)
        if target is S.EMPTY:
            bump_ok = transit.producer_epoch == self.producer_epoch + 1 or (
                transit.producer_epoch == 0 and transit.producer_id != self.producer_id
            )
            if (
                (self.producer_epoch != transit.producer_epoch and not bump_ok)
                or transit.partitions
                or transit.txn_start_timestamp != -1
            ):
                self._fail(transit)
            self.txn_timeout_ms = transit.txn_timeout_ms
            self.producer_epoch = transit.producer_epoch
            self.last_producer_epoch = transit.last_producer_epoch
            self.producer_id = transit.producer_id
            self.previous_producer_id = transit.prev_producer_id
        elif target is S.ONGOING:
            if (
                not self._same_producer(transit)
                or not self.partitions <= transit.partitions
                or self.txn_timeout_ms != transit.txn_timeout_ms
            ):
                self._fail(transit)
            self.txn_start_timestamp = transit.txn_start_timestamp
            self.partitions |= transit.partitions
        elif target in (S.PREPARE_ABORT, S.PREPARE_COMMIT):
            if (
                not self._same_producer(transit)
                or self.partitions != transit.partitions
                or self.txn_timeout_ms != transit.txn_timeout_ms
                or self.txn_start_timestamp != transit.txn_start_timestamp
            ):
                self._fail(transit)
        elif target in (S.COMPLETE_ABORT, S.COMPLETE_COMMIT):
            if (
                not self._same_producer(transit)
                or self.txn_timeout_ms != transit.txn_timeout_ms
                or transit.txn_start_timestamp == -1
            ):
                self._fail(transit)
            self.txn_start_timestamp = transit.txn_start_timestamp
            self.partitions.clear()
        else:  # PrepareEpochFence is never written; Dead is removed from the cache, not applied
            self._fail(transit)
        self.txn_last_update_timestamp = transit.txn_last_update_timestamp
        self.pending_state = None
        self.state = target

    def _same_producer(self, transit: TxnTransit) -> bool:
        return transit.producer_epoch == self.producer_epoch and transit.producer_id == self.producer_id

    def _fail(self, transit: TxnTransit) -> NoReturn:
        raise IllegalTransition(
            f"{self.transactional_id}: unexpected transition from {self!r} to {transit!r}"
        )

    @classmethod
    def from_transit(cls, transactional_id: str, transit: TxnTransit) -> TransactionMetadata:
        """The metadata a loaded record describes (Kafka's readTxnRecordValue)."""
        return cls(
            transactional_id,
            transit.producer_id,
            transit.producer_epoch,
            transit.txn_timeout_ms,
            transit.state,
            set(transit.partitions) if transit.state is not S.EMPTY else set(),
            transit.txn_start_timestamp,
            transit.txn_last_update_timestamp,
            previous_producer_id=transit.prev_producer_id,
        )
