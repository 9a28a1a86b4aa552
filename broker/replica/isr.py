"""The leader's view of its followers: their fetch positions, the ISR and its pending change.

A pure state machine (no I/O, no clock: every call takes ``now_ms``), as Kafka 3.9's
``Replica`` / ``ReplicaState`` and the ISR half of ``Partition``:

- :meth:`FollowerState.record_fetch` is ``updateFetchStateOrThrow``: the follower's log end offset
  is its fetch offset; its last caught-up time moves to this fetch when it fetched from the
  leader's log end, or to the previous fetch when it reached what was the log end then.
- :meth:`LeaderReplicaState.high_watermark_candidate` is ``maybeIncrementLeaderHW``: the smallest
  log end offset over the *maximal* ISR (and over caught-up eligible replicas about to join);
  nothing while the committed ISR is below the effective ``min.insync.replicas``. The caller
  keeps only increases.
- An ISR change is proposed (:meth:`propose_expand`, :meth:`propose_shrink`) and stays pending
  until the controller answers (:meth:`commit`, :meth:`fail`); one at a time. While an expand is
  pending the maximal ISR already holds the new member (the HW waits for it); while a shrink is
  pending it still holds the leaving ones (the HW must not run ahead of a change that may fail).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from broker.types import BrokerId
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass, field

#: Kafka's UnifiedLog.UnknownOffset: a follower that has not fetched in this leadership term.
UNKNOWN_OFFSET = -1


@dataclass(slots=True)
class FollowerState:
    """One follower's position as the leader knows it (Kafka's ``ReplicaState``)."""

    log_end_offset: int = UNKNOWN_OFFSET
    log_start_offset: int = UNKNOWN_OFFSET
    last_fetch_leader_leo: int = 0
    last_fetch_time_ms: int = 0
    last_caught_up_ms: int = 0

    def record_fetch(self, fetch_offset: int, start_offset: int, now_ms: int, leader_leo: int) -> None:
        if fetch_offset >= leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif fetch_offset >= self.last_fetch_leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_time_ms)
        self.log_start_offset = start_offset
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_leo = max(leader_leo, self.last_fetch_leader_leo)
        self.last_fetch_time_ms = now_ms

    def reset(self, now_ms: int, leader_leo: int, new_leader: bool, in_sync: bool) -> None:
        """A new leader epoch (Kafka's ``resetReplicaState``): an ISR member counts as caught up
        now, anyone else as never; a new leader forgets the positions."""
        self.last_caught_up_ms = now_ms if in_sync else 0
        if new_leader:
            self.log_end_offset = UNKNOWN_OFFSET
            self.log_start_offset = UNKNOWN_OFFSET
            self.last_fetch_leader_leo = UNKNOWN_OFFSET
            self.last_fetch_time_ms = 0
        else:
            self.last_fetch_leader_leo = leader_leo
            self.last_fetch_time_ms = now_ms if in_sync else 0

    def is_caught_up(self, leader_leo: int, now_ms: int, max_lag_ms: int) -> bool:
        return leader_leo == self.log_end_offset or now_ms - self.last_caught_up_ms <= max_lag_ms


@dataclass(frozen=True, slots=True)
class PendingIsrChange:
    """An ISR change sent to the controller and not answered yet."""

    expand: bool
    proposed_isr: tuple[BrokerId, ...]
    committed_isr: tuple[BrokerId, ...]
    leader_epoch: int
    partition_epoch: int

    @property
    def maximal_isr(self) -> tuple[BrokerId, ...]:
        return self.proposed_isr if self.expand else self.committed_isr


@dataclass(frozen=True, slots=True)
class CommittedIsr:
    """What the controller answered: the partition's state as it now is in ZooKeeper."""

    leader: BrokerId
    leader_epoch: int
    isr: tuple[BrokerId, ...]
    partition_epoch: int


#: Errors after which the change is dropped and the state left as it is until the controller
#: sends new metadata (Kafka's handleAlterPartitionError); any other error is retried.
_GIVE_UP = frozenset(
    {
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.UNKNOWN_TOPIC_ID,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.INVALID_UPDATE_VERSION,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.NEW_LEADER_ELECTED,
    }
)
#: Errors saying the change was certainly not applied: back to the committed state at once.
_NOT_APPLIED = frozenset({ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.INELIGIBLE_REPLICA})


@dataclass(slots=True)
class LeaderReplicaState:
    """The ISR state of a partition led here."""

    local_id: BrokerId
    replicas: tuple[BrokerId, ...]
    isr: tuple[BrokerId, ...]
    leader_epoch: int
    partition_epoch: int
    followers: dict[BrokerId, FollowerState] = field(default_factory=dict)
    pending: PendingIsrChange | None = None

    def __post_init__(self) -> None:
        for replica in self.replicas:
            if replica != self.local_id:
                self.followers.setdefault(replica, FollowerState())

    # -- views ------------------------------------------------------------------------------------

    @property
    def maximal_isr(self) -> tuple[BrokerId, ...]:
        return self.pending.maximal_isr if self.pending is not None else self.isr

    def effective_min_isr(self, min_insync: int) -> int:
        """``min.insync.replicas`` capped by the replication factor, as Kafka's effectiveMinIsr."""
        return min(min_insync, len(self.followers) + 1)

    def is_under_min_isr(self, min_insync: int) -> bool:
        return len(self.isr) < self.effective_min_isr(min_insync)

    # -- leadership -------------------------------------------------------------------------------

    def become_leader(
        self,
        replicas: Iterable[BrokerId],
        isr: Iterable[BrokerId],
        leader_epoch: int,
        partition_epoch: int,
        *,
        now_ms: int,
        leader_leo: int,
        new_leader: bool,
    ) -> None:
        """A LeaderAndIsr naming this broker leader: the controller's state replaces any pending
        change; on a new leader epoch the followers' states are reset."""
        new_epoch = leader_epoch != self.leader_epoch or new_leader
        self.replicas = tuple(replicas)
        self.isr = tuple(isr)
        self.partition_epoch = partition_epoch
        self.leader_epoch = leader_epoch
        self.pending = None
        self.followers = {
            r: self.followers.get(r, FollowerState()) for r in self.replicas if r != self.local_id
        }
        if new_epoch:
            for replica, state in self.followers.items():
                state.reset(now_ms, leader_leo, new_leader, replica in self.isr)

    # -- follower fetches -------------------------------------------------------------------------

    def record_fetch(
        self, replica: BrokerId, fetch_offset: int, start_offset: int, now_ms: int, leader_leo: int
    ) -> bool:
        """Record a follower's fetch; True when its log end offset changed. KeyError for a
        replica that is not in the assignment (the caller checks first)."""
        state = self.followers[replica]
        before = state.log_end_offset
        state.record_fetch(fetch_offset, start_offset, now_ms, leader_leo)
        return state.log_end_offset != before

    def high_watermark_candidate(
        self,
        leader_leo: int,
        now_ms: int,
        max_lag_ms: int,
        min_insync: int,
        eligible: Callable[[BrokerId], bool],
    ) -> int | None:
        """The high watermark the followers allow, or None while under min ISR (Kafka 3.9 does
        not move the HW then). The caller keeps it only if it is higher than the current one."""
        if self.is_under_min_isr(min_insync):
            return None
        hw = leader_leo
        maximal = self.maximal_isr
        for replica, state in self.followers.items():
            leo = state.log_end_offset
            if leo < hw and (
                replica in maximal
                or (state.is_caught_up(leader_leo, now_ms, max_lag_ms) and eligible(replica))
            ):
                hw = leo
        return hw

    # -- ISR changes ------------------------------------------------------------------------------

    def can_join(self, replica: BrokerId, hw: int, epoch_start_offset: int | None) -> bool:
        """Kafka's needsExpandIsr without the eligibility check: no change in flight, not in the
        ISR, and caught up to the HW and to the start of the leader's epoch."""
        if self.pending is not None or replica in self.isr:
            return False
        state = self.followers.get(replica)
        if state is None or epoch_start_offset is None:
            return False
        return state.log_end_offset >= hw and state.log_end_offset >= epoch_start_offset

    def propose_expand(self, replica: BrokerId) -> PendingIsrChange:
        pending = PendingIsrChange(
            True, (*self.isr, replica), self.isr, self.leader_epoch, self.partition_epoch
        )
        self.pending = pending
        return pending

    def out_of_sync(self, leader_leo: int, now_ms: int, max_lag_ms: int) -> set[BrokerId]:
        """ISR followers not caught up within ``max_lag_ms`` (none while a change is in flight)."""
        if self.pending is not None:
            return set()
        out: set[BrokerId] = set()
        for replica in self.isr:
            if replica == self.local_id:
                continue
            state = self.followers.get(replica)
            if state is None or not state.is_caught_up(leader_leo, now_ms, max_lag_ms):
                out.add(replica)
        return out

    def propose_shrink(self, leaving: Collection[BrokerId]) -> PendingIsrChange:
        proposed = tuple(r for r in self.isr if r not in leaving)
        pending = PendingIsrChange(False, proposed, self.isr, self.leader_epoch, self.partition_epoch)
        self.pending = pending
        return pending

    def commit(self, pending: PendingIsrChange, answer: CommittedIsr) -> bool:
        """The controller's answer to ``pending``; True when it was applied (Kafka's
        handleAlterPartitionUpdate: a stale leader epoch or older partition epoch is ignored)."""
        if self.pending is not pending:
            return False  # overtaken by a LeaderAndIsr meanwhile
        if answer.leader_epoch != self.leader_epoch or answer.partition_epoch < self.partition_epoch:
            return False
        self.isr = answer.isr
        self.partition_epoch = answer.partition_epoch
        self.pending = None
        return True

    def fail(self, pending: PendingIsrChange, error: ErrorCode) -> bool:
        """The controller refused ``pending``; True when it should be sent again."""
        if self.pending is not pending:
            return False
        if error in _NOT_APPLIED:
            self.pending = None
            return False
        return error not in _GIVE_UP
