"""Kafka 3.9's partition and replica state machines (ZooKeeper mode), without the I/O.

A transition Kafka does not allow (see ``PartitionState.valid_previous_states`` and
``ReplicaState.valid_previous_states``) is refused and logged, as Kafka does, and the partition or
replica keeps its state. Leader/ISR changes are recorded as conditional ZooKeeper writes in the
event's :class:`ControllerDecisions` and applied to the context at once (the partition epoch
becoming the znode's next version); what brokers must learn goes into the request batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from broker.cluster.controller.context import (
    NO_LEADER,
    ControllerContext,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    PartitionReplica,
    PartitionState,
    ReplicaState,
)
from broker.cluster.controller.decisions import ControllerDecisions, PartitionStateWrite
from broker.cluster.controller.election import (
    ElectionResult,
    ElectionStrategy,
    elect_for_controlled_shutdown,
    elect_for_offline,
    elect_for_reassign,
    elect_preferred,
)
from broker.cluster.controller.requests import ControllerBrokerRequestBatch
from broker.types import BrokerId, TopicPartition

log = logging.getLogger("broker.cluster.controller.state_change")

#: Per partition: the new leadership, or why the state change failed.
ElectionOutcome = dict[TopicPartition, LeaderAndIsr | str]


class PartitionWriter:
    """Records leader/ISR writes in the decisions and applies them to the context."""

    def __init__(self, context: ControllerContext, decisions: Callable[[], ControllerDecisions]) -> None:
        self.context = context
        self._decisions = decisions

    def fail(self, message: str) -> None:
        log.error(message)
        self._decisions().failures.append(message)

    def create(self, partition: TopicPartition, state: LeaderAndIsr) -> LeaderIsrAndControllerEpoch:
        stored = LeaderIsrAndControllerEpoch(state.with_partition_epoch(0), self.context.epoch)
        self._decisions().partition_writes.append(PartitionStateWrite(partition, stored, None))
        self.context.leadership[partition] = stored
        return stored

    def update(self, partition: TopicPartition, state: LeaderAndIsr) -> LeaderIsrAndControllerEpoch:
        current = self.context.leadership[partition].leader_and_isr
        expected = current.partition_epoch
        stored = LeaderIsrAndControllerEpoch(state.with_partition_epoch(expected + 1), self.context.epoch)
        self._decisions().partition_writes.append(PartitionStateWrite(partition, stored, expected))
        self.context.leadership[partition] = stored
        return stored


class PartitionStateMachine:
    def __init__(
        self,
        context: ControllerContext,
        batch: ControllerBrokerRequestBatch,
        writer: PartitionWriter,
        controller_id: BrokerId,
        unclean_default: bool,
    ) -> None:
        self.context = context
        self.batch = batch
        self.writer = writer
        self.controller_id = controller_id
        self.unclean_default = unclean_default

    def initialize_states(self) -> None:
        """Fail-over: Online if the recorded leader is live, Offline if not, New without a state."""
        for partition in self.context.all_partitions():
            leadership = self.context.leadership.get(partition)
            if leadership is None:
                self.context.partition_states[partition] = PartitionState.NEW
            elif self.context.is_replica_online(leadership.leader_and_isr.leader, partition):
                self.context.partition_states[partition] = PartitionState.ONLINE
            else:
                self.context.partition_states[partition] = PartitionState.OFFLINE

    def trigger_online_partition_state_change(self, topics: set[str] | None = None) -> ElectionOutcome:
        """New and Offline partitions (of topics not being deleted) to Online."""
        candidates = [
            p
            for p in self.context.partitions_in_states(PartitionState.NEW, PartitionState.OFFLINE)
            if not self.context.is_topic_queued_for_deletion(p.topic)
            and (topics is None or p.topic in topics)
        ]
        return self.handle_state_changes(sorted(candidates), PartitionState.ONLINE, ElectionStrategy.OFFLINE)

    def handle_state_changes(
        self,
        partitions: Sequence[TopicPartition],
        target: PartitionState,
        strategy: ElectionStrategy | None = None,
    ) -> ElectionOutcome:
        for partition in partitions:
            self.context.partition_states.setdefault(partition, PartitionState.NON_EXISTENT)
        valid = []
        for partition in partitions:
            current = self.context.partition_state(partition)
            if current in target.valid_previous_states:
                valid.append(partition)
            else:
                self.writer.fail(
                    f"Controller {self.controller_id} epoch {self.context.epoch} failed to change state for "
                    f"partition {partition} from {current} to {target}: Partition {partition} should be in "
                    f"one of {','.join(sorted(map(str, target.valid_previous_states)))} states before moving "
                    f"to {target} state. Instead it is in {current} state"
                )
        if target is PartitionState.ONLINE:
            new = [p for p in valid if self.context.partition_state(p) is PartitionState.NEW]
            to_elect = [p for p in valid if self.context.partition_state(p) is not PartitionState.NEW]
            for partition in self._initialize_leader_and_isr(new):
                self.context.partition_states[partition] = PartitionState.ONLINE
            if not to_elect:
                return {}
            if strategy is None:
                raise ValueError(
                    "Election strategy is a required field when the target state is OnlinePartition"
                )
            results = self._elect(to_elect, strategy)
            for partition, outcome in results.items():
                if isinstance(outcome, LeaderAndIsr):
                    self.context.partition_states[partition] = PartitionState.ONLINE
            return results
        for partition in valid:
            self.context.partition_states[partition] = target
        return {}

    def _initialize_leader_and_isr(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        """New partition: leader = first live replica, ISR = the live replicas."""
        done = []
        for partition in partitions:
            assignment = self.context.full_assignment(partition)
            live = [r for r in assignment.replicas if self.context.is_replica_online(r, partition)]
            if not live:
                self.writer.fail(
                    f"Controller {self.controller_id} epoch {self.context.epoch} encountered error during "
                    f"state change of partition {partition} from New to Online, assigned replicas are "
                    f"[{','.join(map(str, assignment.replicas))}], live brokers are "
                    f"[{','.join(map(str, sorted(self.context.live_broker_ids)))}]. "
                    "No assigned replica is alive."
                )
                continue
            stored = self.writer.create(partition, LeaderAndIsr.initial(live[0], live))
            self.batch.add_leader_and_isr(
                stored.leader_and_isr.isr, partition, stored, assignment, is_new=True
            )
            done.append(partition)
        return done

    def _unclean_enabled(self, topic: str) -> bool:
        return self.context.topic_unclean_leader_election.get(topic, self.unclean_default)

    def _elect(self, partitions: Sequence[TopicPartition], strategy: ElectionStrategy) -> ElectionOutcome:
        outcome: ElectionOutcome = {}
        results: list[ElectionResult] = []
        for partition in partitions:
            # Kafka's isReplicaOnline: a live broker whose log dir of this partition has not failed.
            live = self.context.online_replicas(partition)
            leadership = self.context.leadership.get(partition)
            if leadership is None:
                outcome[partition] = (
                    f"LeaderAndIsr information doesn't exist for partition {partition} in "
                    f"{self.context.partition_state(partition)} state"
                )
                continue
            if leadership.controller_epoch > self.context.epoch:
                outcome[partition] = (
                    f"Aborted leader election for partition {partition} since the LeaderAndIsr path was "
                    "already written by another controller. This probably means that the current "
                    f"controller {self.controller_id} went through a soft failure and another controller was "
                    f"elected with epoch {leadership.controller_epoch}."
                )
                continue
            current = leadership.leader_and_isr
            assignment = self.context.full_assignment(partition)
            if strategy in (ElectionStrategy.OFFLINE, ElectionStrategy.OFFLINE_ALLOW_UNCLEAN):
                # Unclean only matters when no ISR member is live; then the topic's config decides.
                no_live_isr = not any(r in live for r in current.isr)
                unclean = no_live_isr and (
                    strategy is ElectionStrategy.OFFLINE_ALLOW_UNCLEAN
                    or self._unclean_enabled(partition.topic)
                )
                results.append(
                    elect_for_offline(
                        partition,
                        current,
                        assignment.replicas,
                        live,
                        unclean,
                        self.batch.versions.leader_recovery_supported,
                    )
                )
            elif strategy is ElectionStrategy.REASSIGN:
                results.append(elect_for_reassign(partition, current, assignment.target_replicas, live))
            elif strategy is ElectionStrategy.PREFERRED:
                results.append(elect_preferred(partition, current, assignment.replicas, live))
            else:
                results.append(
                    elect_for_controlled_shutdown(
                        partition,
                        current,
                        assignment.replicas,
                        {
                            r
                            for r in assignment.replicas
                            if self.context.is_replica_online(r, partition, include_shutting_down=True)
                        },
                        self.context.shutting_down_broker_ids,
                    )
                )
        for result in results:
            if result.leader_and_isr is None:
                outcome[result.partition] = (
                    f"Failed to elect leader for partition {result.partition} under strategy {strategy}"
                )
                continue
            stored = self.writer.update(result.partition, result.leader_and_isr)
            self.batch.add_leader_and_isr(
                result.recipients,
                result.partition,
                stored,
                self.context.full_assignment(result.partition),
                is_new=False,
            )
            outcome[result.partition] = stored.leader_and_isr
        for partition, problem in outcome.items():
            if isinstance(problem, str):
                self.writer.fail(
                    f"Controller {self.controller_id} epoch {self.context.epoch} failed to change state for "
                    f"partition {partition} from {self.context.partition_state(partition)} to "
                    f"{PartitionState.ONLINE}: {problem}"
                )
        return outcome


class ReplicaStateMachine:
    def __init__(
        self,
        context: ControllerContext,
        batch: ControllerBrokerRequestBatch,
        writer: PartitionWriter,
        controller_id: BrokerId,
    ) -> None:
        self.context = context
        self.batch = batch
        self.writer = writer
        self.controller_id = controller_id

    def initialize_states(self) -> None:
        """Fail-over: replicas on live brokers Online, the others ReplicaDeletionIneligible."""
        for partition in self.context.all_partitions():
            for replica in self.context.replica_assignment(partition):
                key = PartitionReplica(partition, replica)
                online = self.context.is_replica_online(replica, partition)
                self.context.replica_states[key] = (
                    ReplicaState.ONLINE if online else ReplicaState.DELETION_INELIGIBLE
                )

    def startup(self) -> None:
        """Fail-over: tell every live replica its partition's state, and mark the others offline."""
        online = [r for r, s in self.context.replica_states.items() if s is ReplicaState.ONLINE]
        offline = [r for r, s in self.context.replica_states.items() if s is not ReplicaState.ONLINE]
        self.handle_state_changes(online, ReplicaState.ONLINE)
        self.handle_state_changes(offline, ReplicaState.OFFLINE)

    def handle_state_changes(self, replicas: Iterable[PartitionReplica], target: ReplicaState) -> None:
        by_broker: dict[BrokerId, list[PartitionReplica]] = {}
        for replica in replicas:
            by_broker.setdefault(replica.replica, []).append(replica)
        for broker in sorted(by_broker):
            self._handle(broker, sorted(by_broker[broker]), target)

    def _refuse(self, replica: PartitionReplica, target: ReplicaState, reason: str) -> None:
        self.writer.fail(
            f"Controller {self.controller_id} epoch {self.context.epoch} initiated state change of replica "
            f"{replica.replica} for partition {replica.partition} from "
            f"{self.context.replica_state(replica)} to {target} failed: {reason}"
        )

    def _handle(self, broker: BrokerId, replicas: list[PartitionReplica], target: ReplicaState) -> None:
        for replica in replicas:
            self.context.replica_states.setdefault(replica, ReplicaState.NON_EXISTENT)
        valid = []
        for replica in replicas:
            current = self.context.replica_state(replica)
            if current in target.valid_previous_states:
                valid.append(replica)
            else:
                self._refuse(
                    replica,
                    target,
                    f"Replica {replica.replica} for partition {replica.partition} should be in the "
                    f"{','.join(sorted(map(str, target.valid_previous_states)))} states before moving to "
                    f"{target} state. Instead it is in {current} state",
                )
        states = self.context.replica_states
        if target is ReplicaState.NEW:
            for replica in valid:
                leadership = self.context.leadership.get(replica.partition)
                if leadership is not None and leadership.leader_and_isr.leader == broker:
                    self._refuse(
                        replica,
                        target,
                        f"Replica {broker} for partition {replica.partition} cannot be moved to NewReplica "
                        "state as it is being requested to become leader",
                    )
                    continue
                if leadership is not None:
                    self.batch.add_leader_and_isr(
                        [broker],
                        replica.partition,
                        leadership,
                        self.context.full_assignment(replica.partition),
                        is_new=True,
                    )
                states[replica] = ReplicaState.NEW
        elif target is ReplicaState.ONLINE:
            for replica in valid:
                assignment = self.context.full_assignment(replica.partition)
                if states[replica] is ReplicaState.NEW:
                    if broker not in assignment.replicas:
                        log.error(
                            "Adding replica (%s) that is not part of the assignment %s", broker, assignment
                        )
                        self.context.update_assignment(
                            replica.partition,
                            type(assignment)(
                                (*assignment.replicas, broker),
                                assignment.adding_replicas,
                                assignment.removing_replicas,
                            ),
                        )
                else:
                    leadership = self.context.leadership.get(replica.partition)
                    if leadership is not None:
                        self.batch.add_leader_and_isr(
                            [broker], replica.partition, leadership, assignment, is_new=False
                        )
                states[replica] = ReplicaState.ONLINE
        elif target is ReplicaState.OFFLINE:
            self._to_offline(broker, valid)
        elif target is ReplicaState.DELETION_STARTED:
            for replica in valid:
                states[replica] = ReplicaState.DELETION_STARTED
                self.batch.add_stop_replica([broker], replica.partition, delete=True)
        elif target is ReplicaState.NON_EXISTENT:
            for replica in valid:
                assignment = self.context.full_assignment(replica.partition)
                self.context.update_assignment(replica.partition, assignment.remove_replica(broker))
                del states[replica]
        else:  # DELETION_INELIGIBLE, DELETION_SUCCESSFUL: bookkeeping only
            for replica in valid:
                states[replica] = target

    def _to_offline(self, broker: BrokerId, replicas: list[PartitionReplica]) -> None:
        """StopReplica (no delete) to the replica, and out of the ISR; a leader leaves leadership."""
        for replica in replicas:
            self.batch.add_stop_replica([broker], replica.partition, delete=False)
        for replica in replicas:
            partition = replica.partition
            leadership = self.context.leadership.get(partition)
            if leadership is None:
                self.batch.add_update_metadata(self.context.live_or_shutting_down_broker_ids, [partition])
                self.context.replica_states[replica] = ReplicaState.OFFLINE
                continue
            current = leadership.leader_and_isr
            if broker in current.isr:
                new_leader = NO_LEADER if current.leader == broker else current.leader
                # Kafka never empties the ISR: the last member stays, so that it can come back clean.
                new_isr = (
                    current.isr if len(current.isr) == 1 else tuple(r for r in current.isr if r != broker)
                )
                leadership = self.writer.update(partition, current.new_leader_and_isr(new_leader, new_isr))
                log.info(
                    "Partition %s state changed to %s after removing replica %s from the ISR as part of "
                    "transition to OfflineReplica",
                    partition,
                    leadership,
                    broker,
                )
            if not self.context.is_topic_queued_for_deletion(partition.topic):
                recipients = [r for r in self.context.replica_assignment(partition) if r != broker]
                self.batch.add_leader_and_isr(
                    recipients, partition, leadership, self.context.full_assignment(partition), is_new=False
                )
            self.context.replica_states[replica] = ReplicaState.OFFLINE
