"""Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and offset expiration.

As Kafka 3.9's classic coordinator:

* a commit with generation -1 (admin tools, consumers using ``assign``) is accepted while the
  group is Empty (a group that does not exist yet is created Empty for it); otherwise the member
  id (and static instance id) must be current (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and the
  generation must match (ILLEGAL_GENERATION); during CompletingRebalance a member's commit gets
  REBALANCE_IN_PROGRESS; a commit also counts as a heartbeat;
* metadata longer than ``offset.metadata.max.bytes`` is OFFSET_METADATA_TOO_LARGE;
* the offsets become visible once their batch is durable; a fetch never returns a stale
  offset: with ``require_stable`` a partition with a commit in flight is UNSTABLE_OFFSET_COMMIT;
* ``offsets.retention.minutes`` after a group became Empty its offsets expire (tombstones), and
  an Empty group without offsets is removed (with a tombstone for its metadata);
* OffsetDelete removes offsets of an Empty group, or of topics a consumer group does not
  subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for the others).

Transactional offset commits (TxnOffsetCommit, KIP-98/447, Kafka's handleTxnCommitOffsets):

* a group that does not exist is created Empty; a commit naming a member (v3+: generation,
  member id, instance id) is fenced as a plain one is (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
  ILLEGAL_GENERATION), one naming none is accepted whatever the group's state; it is no
  heartbeat and is not refused during a rebalance;
* the offsets are written as one transactional batch of the producer and are then pending for
  (group, producer id): OffsetFetch does not return them (``require_stable`` answers
  UNSTABLE_OFFSET_COMMIT) until the producer's COMMIT marker lands on the group's partition,
  which makes them visible unless a plain commit from a later batch wrote the partition since;
  an ABORT marker drops them (:meth:`OffsetManager.complete_txn`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from broker.group.coordinator import Api
from broker.group.group import ClassicGroup, CommittedOffset, TopicPartitionKey
from broker.group.records import (
    OffsetAndMetadata,
    TxnProducer,
    group_metadata_key,
    offset_commit_key,
    offset_commit_value,
)
from broker.group.state import GroupState
from broker.group.store import commit_write_error
from protocol.error_codes import ErrorCode
from protocol.records.batch import NO_SEQUENCE
from storage.fast_dataclass import dataclass
from storage.producer_state import VerificationGuard

if TYPE_CHECKING:
    from broker.group.coordinator import GroupCoordinator

log = logging.getLogger(__name__)

E = ErrorCode
S = GroupState
NO_OFFSET = -1


@dataclass(frozen=True, slots=True)
class FetchedOffset:
    offset: int = NO_OFFSET
    leader_epoch: int = -1
    metadata: str = ""
    error: ErrorCode = ErrorCode.NONE


Selector = Callable[[ClassicGroup], dict[TopicPartitionKey, OffsetAndMetadata]]


class OffsetManager:
    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.store = coordinator.store

    # -- OffsetCommit -------------------------------------------------------------------------------

    async def commit(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        generation_id: int,
        offsets: Mapping[TopicPartitionKey, OffsetAndMetadata],
    ) -> dict[TopicPartitionKey, ErrorCode]:
        coordinator = self.coordinator
        error = coordinator.validate_group_status(group_id, Api.OFFSET_COMMIT)
        if error is not None:
            return dict.fromkeys(offsets, error)
        group = self.store.get(group_id)
        if group is None:
            if generation_id >= 0:
                # A commit from an older generation of a group that is gone.
                return dict.fromkeys(offsets, E.ILLEGAL_GENERATION)
            # Offsets kept for a consumer that does not use group management.
            group = self.store.add(ClassicGroup(group_id, S.EMPTY, coordinator.now()))
        error = self._validate(group, member_id, instance_id, generation_id)
        if error is not None:
            return dict.fromkeys(offsets, error)
        if group.state is S.COMPLETING_REBALANCE:
            return dict.fromkeys(offsets, E.REBALANCE_IN_PROGRESS)
        if group.state in (S.STABLE, S.PREPARING_REBALANCE):
            coordinator.touch_member(group, member_id)
        return await self._store_offsets(group, offsets)

    def _validate(
        self, group: ClassicGroup, member_id: str, instance_id: str | None, generation_id: int
    ) -> ErrorCode | None:
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.state is S.EMPTY:
            return None
        if generation_id >= 0 or member_id != "" or instance_id is not None:
            error = self.coordinator._validate_current_member(group, member_id, instance_id)
            if error is not None:
                return error
            return E.ILLEGAL_GENERATION if generation_id != group.generation_id else None
        if group.state is not S.EMPTY:
            return E.UNKNOWN_MEMBER_ID  # only members commit to a group that has some
        return None

    async def _store_offsets(
        self, group: ClassicGroup, offsets: Mapping[TopicPartitionKey, OffsetAndMetadata]
    ) -> dict[TopicPartitionKey, ErrorCode]:
        limit = self.coordinator.config.metadata_max_bytes
        valid = {tp: om for tp, om in offsets.items() if len(om.metadata.encode()) <= limit}
        if not valid:
            return dict.fromkeys(offsets, E.OFFSET_METADATA_TOO_LARGE)
        entries = [
            (offset_commit_key(group.group_id, tp[0], tp[1]), offset_commit_value(om))
            for tp, om in valid.items()
        ]
        group.prepare_offset_commit(valid)
        result = await self.store.append(group.group_id, entries, offset_commit=True)
        if result.error == E.NONE:
            if group.state is not S.DEAD:
                for tp, om in valid.items():
                    group.on_offset_commit_appended(tp, CommittedOffset(result.base_offset, om))
            error = E.NONE
        else:
            if group.state is not S.DEAD:
                for tp, om in valid.items():
                    group.fail_pending_offset_write(tp, om)
            error = commit_write_error(result.error)
            log.debug("offset commit of group %s failed: %s", group.group_id, error.name)
        return {tp: (error if tp in valid else E.OFFSET_METADATA_TOO_LARGE) for tp in offsets}

    # -- TxnOffsetCommit ----------------------------------------------------------------------------

    async def txn_commit(
        self,
        group_id: str,
        producer: TxnProducer,
        member_id: str,
        instance_id: str | None,
        generation_id: int,
        offsets: Mapping[TopicPartitionKey, OffsetAndMetadata],
        transactional_id: str | None = None,
        generic_errors: bool = False,
    ) -> dict[TopicPartitionKey, ErrorCode]:
        """Write ``offsets`` in ``producer``'s transaction; they stay pending until its marker.

        With ``transactional_id`` and ``transaction.partition.verification.enable``, the group's
        partition must first be verified in the ongoing transaction with the coordinator
        (KIP-890, Kafka's handleTxnCommitOffsets); ``generic_errors`` (v4+) keeps
        TRANSACTION_ABORTABLE, which older clients get as INVALID_TXN_STATE."""
        coordinator = self.coordinator
        error = coordinator.validate_group_status(group_id, Api.TXN_OFFSET_COMMIT)
        if error is not None:
            return dict.fromkeys(offsets, error)
        guard: VerificationGuard | None = None
        if transactional_id is not None:
            verified = await self._verify(group_id, transactional_id, producer, generic_errors)
            if isinstance(verified, ErrorCode):
                return dict.fromkeys(offsets, commit_write_error(verified))
            guard = verified
        group = self.store.get(group_id) or self.store.add(ClassicGroup(group_id, S.EMPTY, coordinator.now()))
        error = self._validate_txn(group, member_id, instance_id, generation_id)
        if error is not None:
            return dict.fromkeys(offsets, error)
        limit = coordinator.config.metadata_max_bytes
        valid = {tp: om for tp, om in offsets.items() if len(om.metadata.encode()) <= limit}
        if not valid:
            return dict.fromkeys(offsets, E.OFFSET_METADATA_TOO_LARGE)
        producer_id = producer.producer_id
        entries = [
            (offset_commit_key(group_id, tp[0], tp[1]), offset_commit_value(om)) for tp, om in valid.items()
        ]
        self.store.add_producer_group(producer_id, group_id)
        group.prepare_txn_offset_commit(producer_id, valid)
        result = await self.store.append(group_id, entries, producer, guard, offset_commit=True)
        if result.error == E.NONE:
            if group.state is not S.DEAD:
                for tp, om in valid.items():
                    group.on_txn_offset_commit_appended(
                        producer_id, tp, CommittedOffset(result.base_offset, om)
                    )
            error = E.NONE
        else:
            if group.state is not S.DEAD:
                for tp in valid:
                    group.fail_pending_txn_offset_commit(producer_id, tp)
                if not group.has_pending_offset_commits_from(producer_id):
                    self.store.remove_producer_group(producer_id, group_id)
            error = commit_write_error(result.error)
            log.debug("transactional offset commit of group %s failed: %s", group_id, error.name)
        return {tp: (error if tp in valid else E.OFFSET_METADATA_TOO_LARGE) for tp in offsets}

    async def _verify(
        self, group_id: str, transactional_id: str, producer: TxnProducer, generic_errors: bool
    ) -> VerificationGuard | ErrorCode | None:
        """KIP-890 for the group's ``__consumer_offsets`` partition: the guard the append must
        present (None when verification is off or the partition is not led here: the append
        answers that), or the error of a failed verification."""
        broker = self.store.broker
        verifier = broker.txn_verifier
        if not verifier.enabled:
            return None
        replica = self.store.replica(self.store.partition_for(group_id))
        if replica is None or not replica.is_leader:
            return None
        guard = replica.maybe_start_transaction_verification(
            producer.producer_id, NO_SEQUENCE, producer.producer_epoch
        )
        answer = verifier.start(
            transactional_id,
            producer.producer_id,
            producer.producer_epoch,
            [(replica.tp, guard)],
            generic_errors,
        )
        errors = answer if isinstance(answer, dict) else await answer
        error = errors.get(replica.tp, E.NONE)
        return guard if error == E.NONE else error

    def _validate_txn(
        self, group: ClassicGroup, member_id: str, instance_id: str | None, generation_id: int
    ) -> ErrorCode | None:
        """Kafka's validateOffsetCommit for a transactional commit (KIP-447)."""
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if generation_id >= 0 or member_id != "" or instance_id is not None:
            error = self.coordinator._validate_current_member(group, member_id, instance_id)
            if error is not None:
                return error
            return E.ILLEGAL_GENERATION if generation_id != group.generation_id else None
        return None

    def complete_txn(self, index: int, producer_id: int, committed: bool) -> None:
        """``producer_id``'s marker was written on ``__consumer_offsets`` partition ``index``:
        make its pending offsets in that partition's groups visible (COMMIT) or drop them
        (ABORT), as Kafka's handleTxnCompletion."""
        for group_id in self.store.groups_of_producer(producer_id, index):
            group = self.store.get(group_id)
            if group is not None and group.state is not S.DEAD:
                group.complete_pending_txn_offset_commit(producer_id, committed)
            self.store.remove_producer_group(producer_id, group_id)

    # -- OffsetFetch --------------------------------------------------------------------------------

    def fetch(
        self, group_id: str, partitions: list[TopicPartitionKey] | None, require_stable: bool
    ) -> tuple[ErrorCode, list[tuple[TopicPartitionKey, FetchedOffset]]]:
        """The group's committed offsets (all of them when ``partitions`` is None); offsets are
        returned whatever the group's state, since simple consumers store offsets without it."""
        error = self.coordinator.validate_group_status(group_id, Api.OFFSET_FETCH)
        if error is not None:
            return error, []
        group = self.store.get(group_id)
        if group is None or group.state is S.DEAD:
            return E.NONE, [(tp, FetchedOffset()) for tp in partitions or []]
        wanted = list(group.offsets) if partitions is None else partitions
        results: list[tuple[TopicPartitionKey, FetchedOffset]] = []
        for tp in wanted:
            if require_stable and group.has_pending_offset_commits_for(tp):
                results.append((tp, FetchedOffset(error=E.UNSTABLE_OFFSET_COMMIT)))
                continue
            value = group.offset(tp)
            if value is None:
                results.append((tp, FetchedOffset()))
            else:
                results.append((tp, FetchedOffset(value.offset, value.leader_epoch, value.metadata)))
        return E.NONE, results

    # -- OffsetDelete -------------------------------------------------------------------------------

    async def delete(
        self, group_id: str, partitions: list[TopicPartitionKey]
    ) -> tuple[ErrorCode, dict[TopicPartitionKey, ErrorCode]]:
        coordinator = self.coordinator
        error = coordinator.validate_group_status(group_id, Api.OFFSET_DELETE)
        if error is not None:
            return error, {}
        group = self.store.get(group_id)
        if group is None or group.state is S.DEAD:
            return (E.GROUP_ID_NOT_FOUND if coordinator.group_not_exists(group_id) else E.NOT_COORDINATOR), {}
        results: dict[TopicPartitionKey, ErrorCode] = {}
        if group.state is S.EMPTY:
            eligible = list(partitions)
        elif group.is_consumer_group:
            eligible = [tp for tp in partitions if not group.is_subscribed_to(tp[0])]
            results.update(
                {tp: E.GROUP_SUBSCRIBED_TO_TOPIC for tp in partitions if group.is_subscribed_to(tp[0])}
            )
        else:
            return E.NON_EMPTY_GROUP, {}
        if eligible:
            removed = await self.cleanup([group], lambda g: g.remove_offsets(eligible), wait=True)
            log.info("deleted %d offsets of group %s", removed, group_id)
            results.update(dict.fromkeys(eligible, E.NONE))
        return E.NONE, results

    # -- expiration and cleanup ---------------------------------------------------------------------

    def expire_offsets(self) -> None:
        """One pass of ``offsets.retention.check.interval.ms``: drop expired offsets and the
        Empty groups left with none."""
        now = self.coordinator.now()
        retention = self.coordinator.config.retention_ms
        self.coordinator.spawn(
            self.cleanup(list(self.store.groups.values()), lambda g: g.remove_expired_offsets(now, retention))
        )

    async def cleanup(self, groups: Iterable[ClassicGroup], selector: Selector, *, wait: bool = False) -> int:
        """Remove offsets chosen by ``selector`` from each group, mark Empty groups without
        offsets Dead (dropping them from the cache), and write the tombstones."""
        removed_count = 0
        pending = []
        for group in groups:
            group_id = group.group_id
            removed = selector(group)
            if group.state is S.EMPTY and not group.has_offsets():
                log.info("group %s transitioned to Dead in generation %d", group_id, group.generation_id)
                group.transition_to(S.DEAD, self.coordinator.now())
            tombstones: list[tuple[bytes, bytes | None]] = [
                (offset_commit_key(group_id, topic, partition), None) for topic, partition in removed
            ]
            if group.state is S.DEAD and self.store.groups.get(group_id) is group:
                del self.store.groups[group_id]
                # A group that only stored offsets (generation 0) never wrote its metadata.
                if group.generation_id > 0:
                    tombstones.append((group_metadata_key(group_id), None))
            if tombstones and self.store.is_local(group_id):
                pending.append(self.store.append(group_id, tombstones))
                removed_count += len(removed)
        if removed_count:
            log.info("removed %d expired or deleted offsets", removed_count)
        for write in pending:
            result = await write
            if result.error != E.NONE and wait:
                log.warning("writing tombstones failed: %s", result.error.name)
        return removed_count

    def on_partitions_deleted(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """Topics were deleted: their committed offsets go too (Kafka's handleDeletedPartitions).
        A coordinator that was never started holds no group state, so there is nothing to do."""
        if not self.coordinator.active:
            return
        tps = list(partitions)
        self.coordinator.spawn(
            self.cleanup(list(self.store.groups.values()), lambda g: g.remove_offsets(tps))
        )
