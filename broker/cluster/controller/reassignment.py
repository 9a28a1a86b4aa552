"""Partition reassignment, as Kafka 3.9's ZooKeeper-mode ``KafkaController.onPartitionReassignment``.

RS is the partition's replica set, ORS the original replicas, TRS the target, AR = RS - ORS the
replicas being added and RR = RS - TRS those being removed. A reassignment runs in two phases:

- **Start** (the target replicas are not all in the ISR): RS = ORS + TRS with AR and RR is
  written to ``/brokers/topics/<t>``; the leader epoch is bumped and LeaderAndIsr goes to ORS + TRS
  (``is_new`` for AR); AR go NewReplica, so they start fetching from the leader.
- **Completion** (every target replica is in the ISR, found when an AlterPartition expands it):
  AR go OnlineReplica; RS = TRS in memory; a leader outside TRS (or dead) is replaced by the first
  live ISR member of TRS (reassign election), otherwise the leader epoch is bumped; RR go
  Offline (out of the ISR), then NonExistent with StopReplica(delete); RS = TRS is written; the
  partition leaves ``/admin/reassign_partitions``; every broker gets UpdateMetadata.

Sources: ``/admin/reassign_partitions`` (created by kafka-reassign-partitions.sh's legacy path),
AlterPartitionReassignments (api 45; null replicas cancel), and at fail-over the assignments
that still have adding or removing replicas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from broker.cluster.controller.context import (
    ControllerContext,
    PartitionReplica,
    PartitionState,
    ReplicaAssignment,
    ReplicaState,
)
from broker.cluster.controller.decisions import AssignmentWrite, ControllerDecisions, ZkReassignmentRemoval
from broker.cluster.controller.election import ElectionStrategy
from broker.cluster.controller.requests import ControllerBrokerRequestBatch
from broker.cluster.controller.state_machine import (
    PartitionStateMachine,
    PartitionWriter,
    ReplicaStateMachine,
)
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReassignmentOutcome:
    """One partition's answer to AlterPartitionReassignments (Kafka's ``ApiError``)."""

    error: ErrorCode
    message: str | None = None


OK = ReassignmentOutcome(ErrorCode.NONE)
_UNKNOWN = ReassignmentOutcome(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")
_NO_REASSIGNMENT = ReassignmentOutcome(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS)


class Reassignments:
    """The reassignment flow over the controller's context, state machines and request batch."""

    def __init__(
        self,
        context: ControllerContext,
        batch: ControllerBrokerRequestBatch,
        writer: PartitionWriter,
        partitions: PartitionStateMachine,
        replicas: ReplicaStateMachine,
        decisions: Callable[[], ControllerDecisions],
        flush: Callable[[], None],
        resume_deletions: Callable[[], None],
    ) -> None:
        self.context = context
        self.batch = batch
        self.writer = writer
        self.partitions = partitions
        self.replicas = replicas
        self._decisions = decisions
        self._flush = flush
        self._resume_deletions = resume_deletions

    # -- sources ------------------------------------------------------------------------------

    def validate_replicas(
        self, partition: TopicPartition, replicas: Sequence[int]
    ) -> ReassignmentOutcome | None:
        """Kafka's ``validateReplicas`` for the api: non-empty, distinct, non-negative, and the
        replicas to add alive."""
        if not replicas:
            return ReassignmentOutcome(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "Empty replica list specified in partition reassignment.",
            )
        if len(set(replicas)) != len(replicas):
            return ReassignmentOutcome(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Duplicate replica ids in partition reassignment replica list: {list(replicas)}",
            )
        if any(r < 0 for r in replicas):
            return ReassignmentOutcome(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Invalid broker id in replica list: {list(replicas)}"
            )
        new = self.context.full_assignment(partition).reassign_to([BrokerId(r) for r in replicas])
        live = self.context.live_broker_ids
        if not set(new.adding_replicas) <= live:
            return ReassignmentOutcome(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "Replica assignment has brokers that are not alive. Replica list: "
                f"{list(new.adding_replicas)}, live broker list: {sorted(live)}",
            )
        return None

    def build(self, partition: TopicPartition, target: Sequence[int] | None) -> ReplicaAssignment | None:
        """Kafka's ``maybeBuildReassignment``: None cancels an ongoing reassignment (back to ORS)
        and means nothing when there is none."""
        current = self.context.full_assignment(partition)
        if target is None:
            return current.reassign_to(current.origin_replicas) if current.is_being_reassigned else None
        return current.reassign_to([BrokerId(r) for r in target])

    def from_api(
        self, requested: Mapping[TopicPartition, Sequence[int] | None]
    ) -> dict[TopicPartition, ReassignmentOutcome]:
        """AlterPartitionReassignments (Kafka's ``processApiPartitionReassignment``)."""
        results: dict[TopicPartition, ReassignmentOutcome] = {}
        to_reassign: dict[TopicPartition, ReplicaAssignment] = {}
        for partition, target in requested.items():
            error = None if target is None else self.validate_replicas(partition, target)
            if error is not None:
                results[partition] = error
                continue
            built = self.build(partition, target)
            if built is None:
                results[partition] = _NO_REASSIGNMENT
            else:
                to_reassign[partition] = built
        # The latest reassignment, by api or znode, wins: the znode forgets these partitions.
        self._decisions().zk_reassignment_removals.extend(ZkReassignmentRemoval(p) for p in to_reassign)
        results.update(self._trigger(to_reassign))
        return results

    def from_znode(self, requested: Mapping[TopicPartition, Sequence[int]]) -> set[TopicPartition]:
        """``/admin/reassign_partitions`` was created (Kafka's ``processZkPartitionReassignment``):
        the partitions started; the failed ones leave the znode."""
        to_reassign = {
            p: self.context.full_assignment(p).reassign_to([BrokerId(r) for r in t])
            for p, t in requested.items()
        }
        results = self._trigger(to_reassign)
        failed = [p for p, r in results.items() if r.error is not ErrorCode.NONE]
        if failed:
            log.warning(
                "Failed reassignment through zk with the following errors: %s",
                {p: results[p] for p in failed},
            )
            self._decisions().zk_reassignment_removals.extend(ZkReassignmentRemoval(p) for p in failed)
        return {p for p, r in results.items() if r.error is ErrorCode.NONE}

    def resume(self, skip: Iterable[TopicPartition] = ()) -> None:
        """Fail-over: restart the reassignments found in the assignments (Kafka's
        ``maybeResumeReassignments``)."""
        skipped = set(skip)
        for partition in sorted(self.context.partitions_being_reassigned - skipped):
            self.on_partition_reassignment(partition, self.context.full_assignment(partition))

    def maybe_complete(self, partition: TopicPartition) -> None:
        """The ISR of a reassigning partition changed: finish it if every target replica is in."""
        if partition not in self.context.partitions_being_reassigned:
            return
        assignment = self.context.full_assignment(partition)
        if self.is_complete(partition, assignment):
            log.info(
                "Target replicas %s have all caught up with the leader for reassigning partition %s",
                list(assignment.target_replicas),
                partition,
            )
            self.on_partition_reassignment(partition, assignment)

    def restart_for_new_brokers(self, brokers: Iterable[BrokerId]) -> None:
        """Brokers came (back): reassignments with replicas on them start again, which resends
        their LeaderAndIsr (Kafka's ``onBrokerStartup``)."""
        new = set(brokers)
        for partition in sorted(self.context.partitions_being_reassigned):
            assignment = self.context.full_assignment(partition)
            if new & set(assignment.replicas):
                self.on_partition_reassignment(partition, assignment)

    def _trigger(
        self, reassignments: Mapping[TopicPartition, ReplicaAssignment]
    ) -> dict[TopicPartition, ReassignmentOutcome]:
        results: dict[TopicPartition, ReassignmentOutcome] = {}
        for partition, reassignment in sorted(reassignments.items()):
            if self.context.is_topic_queued_for_deletion(partition.topic):
                log.info("Skipping reassignment of %s since the topic is currently being deleted", partition)
                results[partition] = _UNKNOWN
            elif not self.context.replica_assignment(partition):
                results[partition] = _UNKNOWN
            else:
                self.on_partition_reassignment(partition, reassignment)
                results[partition] = OK
        return results

    # -- the phases ---------------------------------------------------------------------------

    def is_complete(self, partition: TopicPartition, assignment: ReplicaAssignment) -> bool:
        """Kafka's ``isReassignmentComplete``: nothing to reassign, or TRS within the ISR."""
        if not assignment.is_being_reassigned:
            return True
        state = self.context.leader_and_isr(partition)
        return state is not None and set(assignment.target_replicas) <= set(state.isr)

    def on_partition_reassignment(self, partition: TopicPartition, reassignment: ReplicaAssignment) -> None:
        ctx = self.context
        if ctx.is_topic_queued_for_deletion(partition.topic):
            ctx.topics_ineligible_for_deletion.add(partition.topic)
        self._update_current(partition, reassignment)
        if not self.is_complete(partition, reassignment):
            # A1: LeaderAndIsr with RS, AR and RR to ORS + TRS; A2: AR -> NewReplica.
            self._bump_leader_epoch_and_send(partition, reassignment)
            for replica in reassignment.adding_replicas:
                self.replicas.handle_state_changes([PartitionReplica(partition, replica)], ReplicaState.NEW)
            self._flush()
            return
        # B1: AR -> OnlineReplica; B2: RS = TRS in memory.
        self.replicas.handle_state_changes(
            [PartitionReplica(partition, r) for r in reassignment.adding_replicas], ReplicaState.ONLINE
        )
        self._flush()
        completed = ReplicaAssignment(reassignment.target_replicas)
        ctx.update_assignment(partition, completed)
        # B3: a leader from TRS, or the same leader in a new epoch.
        self._move_leader_if_required(partition, completed)
        # B4, B5: RR out of the ISR, stopped and deleted.
        self._stop_removed_replicas(partition, reassignment.removing_replicas)
        # B6: RS = TRS in ZooKeeper; B7: out of /admin/reassign_partitions.
        self._write_assignment(partition)
        self._decisions().zk_reassignment_removals.append(
            ZkReassignmentRemoval(partition, completed.replicas)
        )
        ctx.partitions_being_reassigned.discard(partition)
        # B8: the replicas and the ISR changed; every broker learns them.
        self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids, [partition])
        self._flush()
        if ctx.is_topic_queued_for_deletion(partition.topic):
            ctx.topics_ineligible_for_deletion.discard(partition.topic)
            self._resume_deletions()

    def _update_current(self, partition: TopicPartition, reassignment: ReplicaAssignment) -> None:
        ctx = self.context
        current = ctx.full_assignment(partition)
        if current != reassignment:
            log.debug("Updating assignment of partition %s from %s to %s", partition, current, reassignment)
            ctx.update_assignment(partition, reassignment)
            self._write_assignment(partition)
            # Replicas added by a reassignment this one replaces, and not in it, go at once.
            unneeded = [r for r in current.replicas if r not in reassignment.replicas]
            if unneeded:
                self._stop_removed_replicas(partition, unneeded)
        ctx.partitions_being_reassigned.add(partition)

    def _bump_leader_epoch_and_send(self, partition: TopicPartition, assignment: ReplicaAssignment) -> None:
        """Kafka's ``updateLeaderEpochAndSendRequest``."""
        ctx = self.context
        leadership = ctx.leadership.get(partition)
        if leadership is None or leadership.controller_epoch > ctx.epoch:
            self.writer.fail(
                f"Failed to send LeaderAndIsr request with new assignment {assignment} to leader for "
                f"partition being reassigned {partition}"
            )
            return
        current = leadership.leader_and_isr
        stored = self.writer.update(partition, current.new_leader(current.leader))
        self.batch.add_leader_and_isr(assignment.origin_replicas, partition, stored, assignment, is_new=False)
        self.batch.add_leader_and_isr(assignment.adding_replicas, partition, stored, assignment, is_new=True)
        self._flush()

    def _move_leader_if_required(self, partition: TopicPartition, assignment: ReplicaAssignment) -> None:
        state = self.context.leader_and_isr(partition)
        leader = None if state is None else state.leader
        if (
            leader is not None
            and leader in assignment.replicas
            and self.context.is_replica_online(leader, partition)
        ):
            self._bump_leader_epoch_and_send(partition, assignment)
            return
        log.info(
            "Leader %s for partition %s being reassigned is not a live member of %s. Re-electing leader",
            leader,
            partition,
            list(assignment.replicas),
        )
        self.partitions.handle_state_changes([partition], PartitionState.ONLINE, ElectionStrategy.REASSIGN)
        self._flush()

    def _stop_removed_replicas(self, partition: TopicPartition, removed: Sequence[BrokerId]) -> None:
        replicas = [PartitionReplica(partition, r) for r in removed]
        if not replicas:
            return
        for target in (
            ReplicaState.OFFLINE,
            ReplicaState.DELETION_STARTED,
            ReplicaState.DELETION_SUCCESSFUL,
            ReplicaState.NON_EXISTENT,
        ):
            self.replicas.handle_state_changes(replicas, target)
        self._flush()

    def _write_assignment(self, partition: TopicPartition) -> None:
        topic = partition.topic
        ctx = self.context
        if topic in ctx.assignments:
            self._decisions().assignment_writes.append(
                AssignmentWrite(topic, ctx.topic_ids[topic], dict(ctx.assignments[topic]))
            )


__all__ = ["OK", "ReassignmentOutcome", "Reassignments"]
