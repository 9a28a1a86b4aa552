"""The controller's event handling, as Kafka 3.9's ZooKeeper-mode ``KafkaController`` and
``TopicDeletionManager``, without the I/O.

The driver (the ZooKeeper watcher and the inter-broker client, elsewhere) turns ZooKeeper events
and broker responses into calls here, one at a time on the event loop, and carries out the
returned :class:`ControllerDecisions`: first the ZooKeeper writes, then the requests in order.
Requests are flushed after each state-machine step, where Kafka calls ``sendRequestsToBrokers``.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence

from broker.cluster.controller.alter_partition import validate_alter_partition
from broker.cluster.controller.context import (
    NO_LEADER,
    BrokerInfo,
    ControllerContext,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    LeaderRecoveryState,
    PartitionReplica,
    PartitionState,
    ReplicaAssignment,
    ReplicaState,
)
from broker.cluster.controller.decisions import ControllerDecisions
from broker.cluster.controller.election import ElectionStrategy, preferred_replica_leader
from broker.cluster.controller.reassignment import ReassignmentOutcome, Reassignments
from broker.cluster.controller.requests import ControllerBrokerRequestBatch, RequestVersions
from broker.cluster.controller.state_machine import (
    ElectionOutcome,
    PartitionStateMachine,
    PartitionWriter,
    ReplicaStateMachine,
)
from broker.config.versions import LATEST_PRODUCTION
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import AlterPartitionRequest
from protocol.messages.alter_partition_response import AlterPartitionResponse
from protocol.messages.alter_partition_response import PartitionData as AlterPartitionResponsePartition
from protocol.messages.alter_partition_response import TopicData as AlterPartitionResponseTopic
from storage.fast_dataclass import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """The broker settings the controller's decisions depend on."""

    controller_id: BrokerId
    inter_broker_listener: str = "PLAINTEXT"
    inter_broker_protocol_version: str = LATEST_PRODUCTION
    unclean_leader_election_enable: bool = False
    leader_imbalance_per_broker_percentage: int = 10
    delete_topic_enable: bool = True


@dataclass(frozen=True, slots=True)
class TopicSnapshot:
    """A topic as ``/brokers/topics/<t>`` holds it."""

    topic_id: uuid.UUID
    partitions: Mapping[int, ReplicaAssignment]


@dataclass(frozen=True, slots=True)
class ControlledShutdownResult:
    """ControlledShutdown's answer: an error, or the partitions the broker still leads."""

    error: ErrorCode
    remaining_partitions: frozenset[TopicPartition] = frozenset()
    message: str | None = None


class ElectionType(enum.IntEnum):
    """ElectLeaders' ``election_type``."""

    PREFERRED = 0
    UNCLEAN = 1


@dataclass(frozen=True, slots=True)
class ElectionOutcomeFor:
    """One partition's answer to ElectLeaders."""

    error: ErrorCode
    message: str | None = None
    #: The leader elected (NONE only): ElectLeaders answers once the metadata shows it.
    leader: int = -1


@dataclass(slots=True)
class _Event:
    decisions: ControllerDecisions
    election_results: dict[TopicPartition, LeaderAndIsr | str] = field(default_factory=dict)


class Controller:
    """The active controller's decisions. Not thread-safe: drive it from one thread (the loop)."""

    def __init__(self, config: ControllerConfig, context: ControllerContext | None = None) -> None:
        self.config = config
        self.context = context or ControllerContext()
        self.versions = RequestVersions.for_ibp(config.inter_broker_protocol_version)
        self.batch = ControllerBrokerRequestBatch(
            self.context, config.controller_id, config.inter_broker_listener, self.versions
        )
        self._event: _Event | None = None
        self.writer = PartitionWriter(self.context, self._current_decisions)
        self.partitions = PartitionStateMachine(
            self.context, self.batch, self.writer, config.controller_id, config.unclean_leader_election_enable
        )
        self.replicas = ReplicaStateMachine(self.context, self.batch, self.writer, config.controller_id)
        self.reassignments = Reassignments(
            self.context,
            self.batch,
            self.writer,
            self.partitions,
            self.replicas,
            self._current_decisions,
            self._flush,
            self._resume_deletions,
        )

    # -- event plumbing -----------------------------------------------------------------------

    def _current_decisions(self) -> ControllerDecisions:
        if self._event is None:
            raise RuntimeError("controller state changed outside an event")
        return self._event.decisions

    def _begin(self) -> None:
        self._event = _Event(ControllerDecisions(self.context.epoch, self.context.epoch_zk_version))

    def _flush(self) -> None:
        self._current_decisions().requests.extend(self.batch.build())

    def _finish(self) -> ControllerDecisions:
        self._flush()
        assert self._event is not None
        decisions, self._event = self._event.decisions, None
        return decisions

    # -- fail-over ----------------------------------------------------------------------------

    def on_controller_failover(
        self,
        epoch: int,
        epoch_zk_version: int,
        brokers: Iterable[BrokerInfo],
        topics: Mapping[str, TopicSnapshot],
        partition_states: Mapping[TopicPartition, LeaderIsrAndControllerEpoch],
        topics_to_delete: Iterable[str] = (),
        topic_unclean_leader_election: Mapping[str, bool] | None = None,
    ) -> ControllerDecisions:
        """This broker became controller: load what ZooKeeper holds, tell every broker, and
        elect leaders for partitions that have none."""
        ctx = self.context
        ctx.epoch, ctx.epoch_zk_version = epoch, epoch_zk_version
        ctx.live_brokers = {b.id: b for b in brokers}
        ctx.shutting_down_broker_ids.clear()
        ctx.topic_ids.clear()
        ctx.assignments.clear()
        for name, snapshot in topics.items():
            ctx.add_topic(name, snapshot.topic_id, snapshot.partitions)
        ctx.leadership = {p: s for p, s in partition_states.items() if p.topic in ctx.assignments}
        ctx.partition_states.clear()
        ctx.replica_states.clear()
        ctx.topic_unclean_leader_election = dict(topic_unclean_leader_election or {})
        # Learnt again from the LeaderAndIsr answers to the requests below.
        ctx.replicas_on_offline_dirs.clear()
        ctx.partitions_being_reassigned = {
            p for p in ctx.all_partitions() if ctx.full_assignment(p).is_being_reassigned
        }
        self._begin()
        queued = {t for t in topics_to_delete if t in ctx.assignments}
        if not self.config.delete_topic_enable:
            self._current_decisions().deleted_topics.extend(sorted(set(topics_to_delete)))
            queued = set()
        ctx.topics_to_be_deleted = set(queued)
        ctx.topics_with_deletion_started = set()
        # Topics with replicas on dead brokers cannot be deleted until those come back.
        ctx.topics_ineligible_for_deletion = {
            t
            for t in queued
            if any(not ctx.is_replica_online(r.replica, r.partition) for r in ctx.replicas_for_topic(t))
        }
        self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids)
        self._flush()
        self.replicas.initialize_states()
        self.replicas.startup()
        self._flush()
        self.partitions.initialize_states()
        self.partitions.trigger_online_partition_state_change()
        self._flush()
        self._resume_deletions()
        return self._finish()

    def reload_partition_states(self, states: Mapping[TopicPartition, LeaderIsrAndControllerEpoch]) -> None:
        """After a refused conditional write: take ZooKeeper's state as the truth again."""
        for partition, state in states.items():
            if partition.topic in self.context.assignments:
                self.context.leadership[partition] = state

    def on_isr_changes(
        self, states: Mapping[TopicPartition, LeaderIsrAndControllerEpoch]
    ) -> ControllerDecisions:
        """``/isr_change_notification``: leaders wrote new ISRs; take ZooKeeper's states and tell
        every broker (Kafka's processIsrChangeNotification: UpdateMetadata for those partitions)."""
        self.reload_partition_states(states)
        self._begin()
        known = [p for p in states if p.topic in self.context.assignments]
        if known:
            self.batch.add_update_metadata(self.context.live_or_shutting_down_broker_ids, known)
            self._flush()
        for partition in sorted(known):
            self.reassignments.maybe_complete(partition)
        return self._finish()

    # -- brokers ------------------------------------------------------------------------------

    def on_broker_change(self, registered: Mapping[BrokerId, BrokerInfo]) -> ControllerDecisions:
        """``/brokers/ids`` changed: new, dead and bounced (same id, new epoch) brokers, in
        Kafka's order."""
        ctx = self.context
        current = dict(ctx.live_brokers)
        new = sorted(set(registered) - set(current))
        dead = sorted(set(current) - set(registered))
        bounced = sorted(b for b in set(current) & set(registered) if registered[b].epoch > current[b].epoch)
        self._begin()
        if new:
            for broker in new:
                ctx.live_brokers[broker] = registered[broker]
            self._on_broker_startup(new)
        if bounced:
            for broker in bounced:
                del ctx.live_brokers[broker]
            self._on_broker_failure(bounced)
            for broker in bounced:
                ctx.live_brokers[broker] = registered[broker]
            self._on_broker_startup(bounced)
        if dead:
            for broker in dead:
                del ctx.live_brokers[broker]
            self._on_broker_failure(dead)
        for broker in set(current) & set(registered):
            if broker not in bounced and registered[broker] != ctx.live_brokers[broker]:
                # Same epoch, new endpoints or rack: Kafka's BrokerModifications.
                ctx.live_brokers[broker] = registered[broker]
                self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids)
        return self._finish()

    def on_broker_startup(self, brokers: Iterable[BrokerInfo]) -> ControllerDecisions:
        registered = dict(self.context.live_brokers)
        registered.update({b.id: b for b in brokers})
        return self.on_broker_change(registered)

    def on_broker_failure(self, broker_ids: Iterable[BrokerId]) -> ControllerDecisions:
        gone = set(broker_ids)
        return self.on_broker_change({b: i for b, i in self.context.live_brokers.items() if b not in gone})

    def _on_broker_startup(self, new_brokers: list[BrokerId]) -> None:
        ctx = self.context
        for broker in new_brokers:
            ctx.replicas_on_offline_dirs.pop(broker, None)
        existing = ctx.live_or_shutting_down_broker_ids - set(new_brokers)
        # Old brokers learn the new ones; new ones learn every partition.
        self.batch.add_update_metadata(existing)
        self._flush()
        self.batch.add_update_metadata(new_brokers, ctx.partitions_with_leaders())
        self._flush()
        replicas_on_new = ctx.replicas_on_brokers(new_brokers)
        self.replicas.handle_state_changes(replicas_on_new, ReplicaState.ONLINE)
        self._flush()
        self.partitions.trigger_online_partition_state_change()
        self._flush()
        self.reassignments.restart_for_new_brokers(new_brokers)
        resumed = {r.topic for r in replicas_on_new if ctx.is_topic_queued_for_deletion(r.topic)}
        if resumed:
            ctx.topics_ineligible_for_deletion -= resumed
            self._resume_deletions()

    def _on_broker_failure(self, dead: list[BrokerId]) -> None:
        ctx = self.context
        for broker in dead:
            ctx.shutting_down_broker_ids.discard(broker)
            ctx.replicas_on_offline_dirs.pop(broker, None)
        self._on_replicas_offline(ctx.replicas_on_brokers(dead))

    # -- log dir failures ---------------------------------------------------------------------

    def on_log_dir_failure(self, broker_ids: Iterable[BrokerId]) -> ControllerDecisions:
        """``/log_dir_event_notification`` named these brokers (Kafka's onBrokerLogDirFailure):
        send each a LeaderAndIsr for all its replicas; the replicas in failed dirs answer
        KAFKA_STORAGE_ERROR, which :meth:`on_leader_and_isr_response` acts on."""
        ctx = self.context
        brokers = sorted({b for b in broker_ids if b in ctx.live_brokers})
        self._begin()
        if brokers:
            log.info("Handling log directory failure for brokers %s", ",".join(map(str, brokers)))
            self.replicas.handle_state_changes(ctx.replicas_on_brokers(brokers), ReplicaState.ONLINE)
        return self._finish()

    def on_leader_and_isr_response(
        self,
        broker: BrokerId,
        errors: Mapping[TopicPartition, ErrorCode],
        error: ErrorCode = ErrorCode.NONE,
    ) -> ControllerDecisions:
        """A broker answered a LeaderAndIsr (Kafka's processLeaderAndIsrResponseReceived):
        KAFKA_STORAGE_ERROR marks that replica offline, NONE online again; replicas newly
        offline go through :meth:`_on_replicas_offline` (new leaders, out of the ISRs,
        UpdateMetadata with ``offline_replicas``). Other errors change nothing."""
        ctx = self.context
        self._begin()
        if error is not ErrorCode.NONE:
            log.error("Received error %s in LeaderAndIsr response from broker %d", error.name, broker)
            return self._finish()
        if broker not in ctx.live_brokers:
            return self._finish()
        previous = ctx.replicas_on_offline_dirs.get(broker, set())
        online = {p for p, e in errors.items() if e is ErrorCode.NONE}
        offline = {p for p, e in errors.items() if e is ErrorCode.KAFKA_STORAGE_ERROR}
        current = (previous - online) | offline
        if current:
            ctx.replicas_on_offline_dirs[broker] = current
        else:
            ctx.replicas_on_offline_dirs.pop(broker, None)
        newly_offline = sorted(current - previous)
        if newly_offline:
            log.info("Mark replicas %s on broker %d as offline", ",".join(map(str, newly_offline)), broker)
            self._on_replicas_offline([PartitionReplica(p, broker) for p in newly_offline])
        return self._finish()

    def _on_replicas_offline(self, offline: list[PartitionReplica]) -> None:
        ctx = self.context
        for_deletion = [r for r in offline if ctx.is_topic_queued_for_deletion(r.topic)]
        not_for_deletion = [r for r in offline if not ctx.is_topic_queued_for_deletion(r.topic)]
        self.partitions.handle_state_changes(
            sorted(ctx.partitions_with_offline_leader()), PartitionState.OFFLINE
        )
        self._flush()
        results = self.partitions.trigger_online_partition_state_change()
        self._flush()
        self.replicas.handle_state_changes(not_for_deletion, ReplicaState.OFFLINE)
        self._flush()
        if for_deletion:
            self._fail_replica_deletion(for_deletion)
        if not not_for_deletion and all(isinstance(r, str) for r in results.values()):
            # Nothing else told the brokers: at least the live broker list changed.
            self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids)
            self._flush()

    # -- topics -------------------------------------------------------------------------------

    def on_topics_created(self, topics: Mapping[str, TopicSnapshot]) -> ControllerDecisions:
        """New ``/brokers/topics/<t>`` znodes: their partitions go New, then Online."""
        self._begin()
        new_partitions = []
        for name, snapshot in sorted(topics.items()):
            if name in self.context.assignments:
                continue
            self.context.add_topic(name, snapshot.topic_id, snapshot.partitions)
            new_partitions.extend(self.context.partitions_for_topic(name))
        self._on_new_partitions(new_partitions)
        return self._finish()

    def on_partitions_added(
        self, topic: str, assignment: Mapping[int, ReplicaAssignment]
    ) -> ControllerDecisions:
        """``/brokers/topics/<t>`` gained partitions (CreatePartitions)."""
        self._begin()
        known = self.context.assignments.get(topic)
        if known is None:
            self._current_decisions().failures.append(f"Partitions added to unknown topic {topic}")
            return self._finish()
        added = sorted(p for p in assignment if p not in known)
        if added and self.context.is_topic_queued_for_deletion(topic):
            # Kafka refuses and writes the old assignment back; the driver restores the znode.
            self._current_decisions().failures.append(
                f"Skipping adding partitions {','.join(map(str, added))} for topic {topic} since it is "
                "currently being deleted"
            )
            return self._finish()
        for index in added:
            known[index] = assignment[index]
        self._on_new_partitions([TopicPartition(topic, p) for p in added])
        return self._finish()

    def _on_new_partitions(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        log.info("New partition creation callback for %s", ",".join(map(str, partitions)))
        replicas = self.context.replicas_for_partitions(partitions)
        self.partitions.handle_state_changes(partitions, PartitionState.NEW)
        self._flush()
        self.replicas.handle_state_changes(replicas, ReplicaState.NEW)
        self._flush()
        self.partitions.handle_state_changes(partitions, PartitionState.ONLINE, ElectionStrategy.OFFLINE)
        self._flush()
        self.replicas.handle_state_changes(replicas, ReplicaState.ONLINE)
        self._flush()

    def on_topic_deletion_requested(self, topics: Iterable[str]) -> ControllerDecisions:
        """``/admin/delete_topics`` children: queue them, and start where possible."""
        ctx = self.context
        self._begin()
        requested = set(topics)
        unknown = requested - ctx.all_topics
        decisions = self._current_decisions()
        # Unknown topics (and all of them when deletion is disabled) only lose their admin znode.
        decisions.deleted_topics.extend(sorted(unknown))
        requested -= unknown
        if not self.config.delete_topic_enable:
            decisions.deleted_topics.extend(sorted(requested))
            return self._finish()
        reassigning = {
            t for t in requested if any(a.is_being_reassigned for a in ctx.assignments[t].values())
        }
        ctx.topics_to_be_deleted |= requested
        ctx.topics_ineligible_for_deletion |= reassigning
        self._resume_deletions()
        return self._finish()

    def on_stop_replica_response(
        self, broker: BrokerId, errors: Mapping[TopicPartition, ErrorCode]
    ) -> ControllerDecisions:
        """A StopReplica with delete answered: replicas of topics being deleted are done or failed."""
        ctx = self.context
        self._begin()
        relevant = {
            PartitionReplica(p, broker): e
            for p, e in errors.items()
            if ctx.is_topic_queued_for_deletion(p.topic)
            and ctx.replica_state(PartitionReplica(p, broker)) is ReplicaState.DELETION_STARTED
        }
        failed = [r for r, e in relevant.items() if e is not ErrorCode.NONE]
        succeeded = [r for r, e in relevant.items() if e is ErrorCode.NONE]
        if failed:
            self._fail_replica_deletion(failed)
        if succeeded:
            self.replicas.handle_state_changes(succeeded, ReplicaState.DELETION_SUCCESSFUL)
            self._flush()
            self._resume_deletions()
        return self._finish()

    def _fail_replica_deletion(self, replicas: list[PartitionReplica]) -> None:
        ctx = self.context
        queued = [r for r in replicas if ctx.is_topic_queued_for_deletion(r.topic)]
        self.replicas.handle_state_changes(queued, ReplicaState.DELETION_INELIGIBLE)
        self._flush()
        ctx.topics_ineligible_for_deletion |= {r.topic for r in queued}
        self._resume_deletions()

    def _resume_deletions(self) -> None:
        ctx = self.context
        for topic in sorted(ctx.topics_to_be_deleted):
            if ctx.are_all_replicas_in_state(topic, ReplicaState.DELETION_SUCCESSFUL):
                self._complete_delete_topic(topic)
                continue
            if ctx.is_topic_deletion_in_progress(topic):
                continue
            ineligible = ctx.replicas_in_state(topic, ReplicaState.DELETION_INELIGIBLE)
            if ineligible and topic not in ctx.topics_ineligible_for_deletion:
                # Retry replicas whose deletion failed: back to Offline, then started again.
                self.replicas.handle_state_changes(sorted(ineligible), ReplicaState.OFFLINE)
                self._flush()
            if topic not in ctx.topics_ineligible_for_deletion:
                self._on_topic_deletion(topic)

    def _on_topic_deletion(self, topic: str) -> None:
        ctx = self.context
        partitions = ctx.partitions_for_topic(topic)
        if topic not in ctx.topics_with_deletion_started:
            self.partitions.handle_state_changes(partitions, PartitionState.OFFLINE)
            self.partitions.handle_state_changes(partitions, PartitionState.NON_EXISTENT)
            ctx.topics_with_deletion_started.add(topic)
        # Every broker learns that the topic is going (leader -2).
        self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids, partitions)
        self._flush()
        alive: list[PartitionReplica] = []
        dead: list[PartitionReplica] = []
        for replica in ctx.replicas_for_topic(topic):
            (alive if ctx.is_replica_online(replica.replica, replica.partition) else dead).append(replica)
        done = ctx.replicas_in_state(topic, ReplicaState.DELETION_SUCCESSFUL)
        retry = [r for r in alive if r not in done]
        self.replicas.handle_state_changes(dead, ReplicaState.DELETION_INELIGIBLE)
        self.replicas.handle_state_changes(retry, ReplicaState.OFFLINE)
        self.replicas.handle_state_changes(retry, ReplicaState.DELETION_STARTED)
        self._flush()
        if dead:
            ctx.topics_ineligible_for_deletion.add(topic)

    def _complete_delete_topic(self, topic: str) -> None:
        ctx = self.context
        self.replicas.handle_state_changes(
            sorted(ctx.replicas_in_state(topic, ReplicaState.DELETION_SUCCESSFUL)), ReplicaState.NON_EXISTENT
        )
        self._flush()
        ctx.remove_topic(topic)
        self._current_decisions().deleted_topics.append(topic)
        log.info("Deletion of topic %s successfully completed", topic)

    # -- preferred leaders --------------------------------------------------------------------

    def partitions_to_rebalance(self) -> set[TopicPartition]:
        """Kafka's ``checkAndTriggerAutoLeaderRebalance`` check: for each preferred broker whose
        share of partitions not led by it exceeds ``leader.imbalance.per.broker.percentage``,
        those partitions whose preferred replica can lead."""
        ctx = self.context
        by_preferred: dict[BrokerId, list[TopicPartition]] = {}
        for partition in ctx.all_partitions():
            replicas = ctx.replica_assignment(partition)
            if replicas and not ctx.is_topic_queued_for_deletion(partition.topic):
                by_preferred.setdefault(replicas[0], []).append(partition)
        threshold = self.config.leader_imbalance_per_broker_percentage / 100
        chosen: set[TopicPartition] = set()
        for broker, partitions in by_preferred.items():
            not_preferred = [
                p
                for p in partitions
                if (state := ctx.leader_and_isr(p)) is not None and state.leader != broker
            ]
            if len(not_preferred) / len(partitions) > threshold:
                chosen.update(p for p in not_preferred if self._can_preferred_lead(p))
        return chosen

    def _can_preferred_lead(self, partition: TopicPartition) -> bool:
        state = self.context.leader_and_isr(partition)
        if state is None:
            return False
        replicas = self.context.replica_assignment(partition)
        live = [r for r in replicas if self.context.is_replica_online(r, partition)]
        return preferred_replica_leader(replicas, state.isr, live) is not None

    def auto_rebalance(self) -> ControllerDecisions:
        """The periodic ``auto.leader.rebalance.enable`` task (the driver schedules it)."""
        return self.elect_leaders(self.partitions_to_rebalance(), ElectionType.PREFERRED)[1]

    def elect_leaders(
        self, partitions: Iterable[TopicPartition], election_type: ElectionType
    ) -> tuple[dict[TopicPartition, ElectionOutcomeFor], ControllerDecisions]:
        """ElectLeaders (api 43) and ``/admin/preferred_replica_election``, as Kafka's
        ``processReplicaLeaderElection``: PREFERRED moves leadership to the first replica when it
        is a live ISR member; UNCLEAN elects for leaderless partitions, unclean if it must."""
        ctx = self.context
        self._begin()
        answers: dict[TopicPartition, ElectionOutcomeFor] = {}
        to_elect = []
        for partition in sorted(set(partitions)):
            state = ctx.leader_and_isr(partition)
            if partition.partition not in ctx.assignments.get(partition.topic, {}) or state is None:
                answers[partition] = ElectionOutcomeFor(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."
                )
            elif ctx.is_topic_queued_for_deletion(partition.topic):
                answers[partition] = ElectionOutcomeFor(
                    ErrorCode.INVALID_TOPIC_EXCEPTION, "The topic is being deleted"
                )
            elif (
                state.leader != ctx.replica_assignment(partition)[0]
                if election_type is ElectionType.PREFERRED
                else state.leader == NO_LEADER or state.leader not in ctx.live_brokers
            ):
                to_elect.append(partition)
            else:
                answers[partition] = ElectionOutcomeFor(
                    ErrorCode.ELECTION_NOT_NEEDED, "Leader election not needed for topic partition."
                )
        preferred = election_type is ElectionType.PREFERRED
        results: ElectionOutcome = self.partitions.handle_state_changes(
            to_elect,
            PartitionState.ONLINE,
            ElectionStrategy.PREFERRED if preferred else ElectionStrategy.OFFLINE_ALLOW_UNCLEAN,
        )
        self._flush()
        failed = (
            ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
            if preferred
            else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
        )
        for partition in to_elect:
            outcome = results.get(partition, f"Failed to elect leader for partition {partition}")
            if isinstance(outcome, LeaderAndIsr):
                answers[partition] = ElectionOutcomeFor(ErrorCode.NONE, leader=outcome.leader)
            else:
                answers[partition] = ElectionOutcomeFor(failed, outcome)
        return answers, self._finish()

    # -- controlled shutdown ------------------------------------------------------------------

    def controlled_shutdown(
        self, broker: BrokerId, broker_epoch: int
    ) -> tuple[ControlledShutdownResult, ControllerDecisions]:
        """ControlledShutdown (api 7): move leadership off ``broker``, stop its followers, and
        answer with the partitions it still leads (the broker retries until none)."""
        ctx = self.context
        self._begin()
        known_epoch = ctx.broker_epoch(broker)
        if broker_epoch != -1 and known_epoch is not None and broker_epoch < known_epoch:
            message = (
                f"Received controlled shutdown request from an old broker epoch {broker_epoch} for broker "
                f"{broker}. Current broker epoch is {known_epoch}."
            )
            return ControlledShutdownResult(ErrorCode.STALE_BROKER_EPOCH, message=message), self._finish()
        if broker not in ctx.live_brokers:
            message = f"Broker id {broker} does not exist."
            return ControlledShutdownResult(ErrorCode.BROKER_NOT_AVAILABLE, message=message), self._finish()
        ctx.shutting_down_broker_ids.add(broker)
        to_act_on = [
            p
            for p in ctx.partitions_on_broker(broker)
            if len(ctx.replica_assignment(p)) > 1
            and p in ctx.leadership
            and not ctx.is_topic_queued_for_deletion(p.topic)
        ]
        led = [p for p in to_act_on if ctx.leadership[p].leader_and_isr.leader == broker]
        followed = [p for p in to_act_on if ctx.leadership[p].leader_and_isr.leader != broker]
        self.partitions.handle_state_changes(led, PartitionState.ONLINE, ElectionStrategy.CONTROLLED_SHUTDOWN)
        self._flush()
        for partition in followed:
            self.batch.add_stop_replica([broker], partition, delete=False)
        self._flush()
        self.replicas.handle_state_changes(
            [PartitionReplica(p, broker) for p in followed], ReplicaState.OFFLINE
        )
        self._flush()
        # As Kafka's replicatedPartitionsBrokerLeads: a partition with one replica cannot move and
        # does not hold the shutdown back.
        remaining = frozenset(
            p for p in ctx.partition_leaders_on_broker(broker) if len(ctx.replica_assignment(p)) > 1
        )
        return ControlledShutdownResult(ErrorCode.NONE, remaining), self._finish()

    # -- AlterPartition -----------------------------------------------------------------------

    def alter_partition(
        self, request: AlterPartitionRequest, version: int
    ) -> tuple[AlterPartitionResponse, ControllerDecisions]:
        """AlterPartition (api 56) from a leader: validate each partition's new ISR against the
        controller's state (Kafka 3.9 ZK-mode ``processAlterPartition``), write the accepted ones."""
        ctx = self.context
        self._begin()
        use_topic_ids = version > 1
        known_epoch = ctx.broker_epoch(BrokerId(request.broker_id))
        if known_epoch is None or known_epoch != request.broker_epoch:
            response = AlterPartitionResponse(error_code=ErrorCode.STALE_BROKER_EPOCH.value)
            return response, self._finish()
        answers: dict[TopicPartition, LeaderAndIsr | ErrorCode] = {}
        unknown_ids: list[AlterPartitionResponseTopic] = []
        proposed: dict[TopicPartition, LeaderAndIsr] = {}
        for topic_req in request.topics:
            name = ctx.topic_name(topic_req.topic_id) if use_topic_ids else topic_req.topic_name
            if name is None:
                unknown_ids.append(
                    AlterPartitionResponseTopic(
                        topic_id=topic_req.topic_id,
                        partitions=[
                            AlterPartitionResponsePartition(
                                partition_index=p.partition_index, error_code=ErrorCode.UNKNOWN_TOPIC_ID.value
                            )
                            for p in topic_req.partitions
                        ],
                    )
                )
                continue
            for p in topic_req.partitions:
                if p.leader_recovery_state not in (0, 1):
                    # Kafka's LeaderRecoveryState.of throws, and the whole request fails so.
                    log.info(
                        "AlterPartition with an unknown leader recovery state %d", p.leader_recovery_state
                    )
                    response = AlterPartitionResponse(error_code=ErrorCode.UNKNOWN_SERVER_ERROR.value)
                    return response, self._finish()
                isr = [s.broker_id for s in p.new_isr_with_epochs] if version >= 3 else list(p.new_isr)
                proposed[TopicPartition(name, p.partition_index)] = LeaderAndIsr(
                    BrokerId(request.broker_id),
                    p.leader_epoch,
                    tuple(BrokerId(b) for b in isr),
                    LeaderRecoveryState(p.leader_recovery_state),
                    p.partition_epoch,
                )
        for partition, new in proposed.items():
            verdict = validate_alter_partition(
                partition, ctx.leader_and_isr(partition), new, ctx.live_broker_ids, version
            )
            if isinstance(verdict, ErrorCode):
                answers[partition] = verdict
            elif verdict is None:
                answers[partition] = self.writer.update(partition, new).leader_and_isr
            else:
                answers[partition] = verdict
        self.batch.add_update_metadata(ctx.live_or_shutting_down_broker_ids, proposed)
        self._flush()
        # An ISR that grew may hold every target replica of a reassignment now.
        for partition, answer in sorted(answers.items()):
            if not isinstance(answer, ErrorCode):
                self.reassignments.maybe_complete(partition)
        response = AlterPartitionResponse(topics=unknown_ids)
        by_topic: dict[str, AlterPartitionResponseTopic] = {}
        for partition, answer in sorted(answers.items()):
            topic = by_topic.get(partition.topic)
            if topic is None:
                topic = AlterPartitionResponseTopic(
                    topic_id=ctx.topic_ids.get(partition.topic, uuid.UUID(int=0))
                    if use_topic_ids
                    else uuid.UUID(int=0),
                    topic_name="" if use_topic_ids else partition.topic,
                )
                by_topic[partition.topic] = topic
                response.topics.append(topic)
            if isinstance(answer, ErrorCode):
                topic.partitions.append(
                    AlterPartitionResponsePartition(
                        partition_index=partition.partition, error_code=answer.value
                    )
                )
            else:
                topic.partitions.append(
                    AlterPartitionResponsePartition(
                        partition_index=partition.partition,
                        leader_id=answer.leader,
                        leader_epoch=answer.leader_epoch,
                        isr=list(answer.isr),
                        leader_recovery_state=int(answer.leader_recovery_state),
                        partition_epoch=answer.partition_epoch,
                    )
                )
        return response, self._finish()

    # -- reassignment -------------------------------------------------------------------------

    def alter_partition_reassignments(
        self, requested: Mapping[TopicPartition, Sequence[int] | None]
    ) -> tuple[dict[TopicPartition, ReassignmentOutcome], ControllerDecisions]:
        """AlterPartitionReassignments (api 45): start, replace or (None) cancel reassignments."""
        self._begin()
        results = self.reassignments.from_api(requested)
        return results, self._finish()

    def on_zk_reassignment(self, requested: Mapping[TopicPartition, Sequence[int]]) -> ControllerDecisions:
        """``/admin/reassign_partitions`` was created with these target replicas."""
        self._begin()
        self.reassignments.from_znode(requested)
        return self._finish()

    def initialize_reassignments(
        self, zk_requested: Mapping[TopicPartition, Sequence[int]]
    ) -> ControllerDecisions:
        """After fail-over: the znode's reassignments, then those left in the assignments by
        the api (Kafka's ``initializePartitionReassignments``)."""
        self._begin()
        started = self.reassignments.from_znode(zk_requested) if zk_requested else set()
        self.reassignments.resume(skip=started)
        return self._finish()

    def list_partition_reassignments(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, ReplicaAssignment]:
        """ListPartitionReassignments (api 46): the ongoing ones among ``partitions`` (None: all)."""
        ctx = self.context
        chosen = ctx.partitions_being_reassigned if partitions is None else set(partitions)
        return {
            p: ctx.full_assignment(p) for p in sorted(chosen) if ctx.full_assignment(p).is_being_reassigned
        }
