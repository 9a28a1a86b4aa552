"""The controller's view of the cluster, as Kafka 3.9's ZooKeeper-mode ``ControllerContext``.

Plain data, no I/O: live brokers with their epochs, topics and their full replica assignments,
each partition's leader/ISR as last written to ZooKeeper, and the states of the partition and
replica state machines. The state machines (``state_machine.py``) are the only writers while the
controller runs; the driver fills it once at fail-over from what ZooKeeper holds.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

from broker.types import NO_BROKER, BrokerId, TopicPartition
from storage.fast_dataclass import dataclass, field

#: Kafka's ``LeaderAndIsr.NO_LEADER``.
NO_LEADER = NO_BROKER
#: Kafka's ``LeaderAndIsr.LEADER_DURING_DELETE``: the leader sent in UpdateMetadata for a topic
#: queued for deletion.
LEADER_DURING_DELETE = BrokerId(-2)
#: The leader epoch StopReplica carries for a partition of a topic queued for deletion.
EPOCH_DURING_DELETE = -2
#: The leader epoch StopReplica carries when the controller knows none.
NO_EPOCH = -1


class LeaderRecoveryState(enum.IntEnum):
    """KIP-704: RECOVERING after an unclean election until the leader has an ISR again."""

    RECOVERED = 0
    RECOVERING = 1


@dataclass(frozen=True, slots=True)
class LeaderAndIsr:
    """A partition's leadership, as in its ``/brokers/topics/<t>/partitions/<p>/state`` znode.

    ``partition_epoch`` is that znode's version: every write bumps it by one.
    """

    leader: BrokerId
    leader_epoch: int
    isr: tuple[BrokerId, ...]
    leader_recovery_state: LeaderRecoveryState = LeaderRecoveryState.RECOVERED
    partition_epoch: int = 0

    @classmethod
    def initial(cls, leader: BrokerId, isr: Sequence[BrokerId]) -> LeaderAndIsr:
        return cls(leader, 0, tuple(isr))

    def new_leader(self, leader: BrokerId) -> LeaderAndIsr:
        return replace(self, leader=leader, leader_epoch=self.leader_epoch + 1)

    def new_leader_and_isr(self, leader: BrokerId, isr: Sequence[BrokerId]) -> LeaderAndIsr:
        return replace(self, leader=leader, leader_epoch=self.leader_epoch + 1, isr=tuple(isr))

    def new_recovering_leader_and_isr(self, leader: BrokerId, isr: Sequence[BrokerId]) -> LeaderAndIsr:
        return replace(
            self,
            leader=leader,
            leader_epoch=self.leader_epoch + 1,
            isr=tuple(isr),
            leader_recovery_state=LeaderRecoveryState.RECOVERING,
        )

    def with_partition_epoch(self, partition_epoch: int) -> LeaderAndIsr:
        return replace(self, partition_epoch=partition_epoch)

    def equals_allow_stale_partition_epoch(self, other: LeaderAndIsr) -> bool:
        """Same leadership, and this one's partition epoch no newer: an idempotent retry."""
        return (
            self.leader == other.leader
            and self.leader_epoch == other.leader_epoch
            and self.isr == other.isr
            and self.leader_recovery_state == other.leader_recovery_state
            and self.partition_epoch <= other.partition_epoch
        )


@dataclass(frozen=True, slots=True)
class LeaderIsrAndControllerEpoch:
    leader_and_isr: LeaderAndIsr
    controller_epoch: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    listener: str
    host: str
    port: int
    #: Kafka's SecurityProtocol id: PLAINTEXT 0, SSL 1, SASL_PLAINTEXT 2, SASL_SSL 3.
    security_protocol: int = 0


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A registered broker: its ``/brokers/ids/<id>`` znode, and the czxid as its epoch."""

    id: BrokerId
    endpoints: tuple[Endpoint, ...]
    rack: str | None = None
    epoch: int = 0

    def endpoint(self, listener: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.listener == listener), None)


@dataclass(frozen=True, slots=True)
class ReplicaAssignment:
    """A partition's replicas, with those being added or removed by a reassignment."""

    replicas: tuple[BrokerId, ...]
    adding_replicas: tuple[BrokerId, ...] = ()
    removing_replicas: tuple[BrokerId, ...] = ()

    @classmethod
    def of(cls, replicas: Iterable[int]) -> ReplicaAssignment:
        return cls(tuple(BrokerId(r) for r in replicas))

    @property
    def is_being_reassigned(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    @property
    def target_replicas(self) -> tuple[BrokerId, ...]:
        return tuple(r for r in self.replicas if r not in self.removing_replicas)

    @property
    def origin_replicas(self) -> tuple[BrokerId, ...]:
        return tuple(r for r in self.replicas if r not in self.adding_replicas)

    def reassign_to(self, target: Sequence[BrokerId]) -> ReplicaAssignment:
        """Kafka's ``ReplicaAssignment.reassignTo``: RS = TRS + ORS (distinct, target first),
        AR = RS - ORS, RR = RS - TRS."""
        origin = self.origin_replicas
        full = tuple(dict.fromkeys((*target, *origin)))
        return ReplicaAssignment(
            full, tuple(r for r in full if r not in origin), tuple(r for r in full if r not in target)
        )

    def remove_replica(self, replica: BrokerId) -> ReplicaAssignment:
        return ReplicaAssignment(
            tuple(r for r in self.replicas if r != replica),
            tuple(r for r in self.adding_replicas if r != replica),
            tuple(r for r in self.removing_replicas if r != replica),
        )


class PartitionState(enum.Enum):
    NEW = "NewPartition"
    ONLINE = "OnlinePartition"
    OFFLINE = "OfflinePartition"
    NON_EXISTENT = "NonExistentPartition"

    @property
    def valid_previous_states(self) -> frozenset[PartitionState]:
        return _PARTITION_PREVIOUS[self]

    def __str__(self) -> str:
        return self.value


_PARTITION_PREVIOUS: dict[PartitionState, frozenset[PartitionState]] = {
    PartitionState.NEW: frozenset({PartitionState.NON_EXISTENT}),
    PartitionState.ONLINE: frozenset({PartitionState.NEW, PartitionState.ONLINE, PartitionState.OFFLINE}),
    PartitionState.OFFLINE: frozenset({PartitionState.NEW, PartitionState.ONLINE, PartitionState.OFFLINE}),
    PartitionState.NON_EXISTENT: frozenset({PartitionState.OFFLINE}),
}


class ReplicaState(enum.Enum):
    NEW = "NewReplica"
    ONLINE = "OnlineReplica"
    OFFLINE = "OfflineReplica"
    DELETION_STARTED = "ReplicaDeletionStarted"
    DELETION_SUCCESSFUL = "ReplicaDeletionSuccessful"
    DELETION_INELIGIBLE = "ReplicaDeletionIneligible"
    NON_EXISTENT = "NonExistentReplica"

    @property
    def valid_previous_states(self) -> frozenset[ReplicaState]:
        return _REPLICA_PREVIOUS[self]

    def __str__(self) -> str:
        return self.value


_R = ReplicaState
_REPLICA_PREVIOUS: dict[ReplicaState, frozenset[ReplicaState]] = {
    _R.NEW: frozenset({_R.NON_EXISTENT}),
    _R.ONLINE: frozenset({_R.NEW, _R.ONLINE, _R.OFFLINE, _R.DELETION_INELIGIBLE}),
    _R.OFFLINE: frozenset({_R.NEW, _R.ONLINE, _R.OFFLINE, _R.DELETION_INELIGIBLE}),
    _R.DELETION_STARTED: frozenset({_R.OFFLINE}),
    _R.DELETION_SUCCESSFUL: frozenset({_R.DELETION_STARTED}),
    _R.DELETION_INELIGIBLE: frozenset({_R.OFFLINE, _R.DELETION_STARTED}),
    _R.NON_EXISTENT: frozenset({_R.DELETION_SUCCESSFUL}),
}


class PartitionReplica(NamedTuple):
    """One replica of one partition: Kafka's ``PartitionAndReplica``."""

    partition: TopicPartition
    replica: BrokerId

    @property
    def topic(self) -> str:
        return self.partition.topic


@dataclass(slots=True)
class ControllerContext:
    """Everything the controller knows. Mutated only by the state machines and event handlers."""

    #: The controller epoch (``/controller_epoch``'s value) and that znode's version, which
    #: every ZooKeeper write of this controller is conditional on.
    epoch: int = 0
    epoch_zk_version: int = 0
    live_brokers: dict[BrokerId, BrokerInfo] = field(default_factory=dict)
    shutting_down_broker_ids: set[BrokerId] = field(default_factory=set)
    topic_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    assignments: dict[str, dict[int, ReplicaAssignment]] = field(default_factory=dict)
    leadership: dict[TopicPartition, LeaderIsrAndControllerEpoch] = field(default_factory=dict)
    partition_states: dict[TopicPartition, PartitionState] = field(default_factory=dict)
    replica_states: dict[PartitionReplica, ReplicaState] = field(default_factory=dict)
    topics_to_be_deleted: set[str] = field(default_factory=set)
    topics_with_deletion_started: set[str] = field(default_factory=set)
    topics_ineligible_for_deletion: set[str] = field(default_factory=set)
    #: Per-topic ``unclean.leader.election.enable`` overrides (``/config/topics/<t>``).
    topic_unclean_leader_election: dict[str, bool] = field(default_factory=dict)
    #: Replicas of live brokers that answered KAFKA_STORAGE_ERROR to a LeaderAndIsr: their log
    #: dir failed (Kafka's ``replicasOnOfflineDirs``). Forgotten when the broker dies or restarts.
    replicas_on_offline_dirs: dict[BrokerId, set[TopicPartition]] = field(default_factory=dict)
    #: Partitions with a reassignment in flight (Kafka's ``partitionsBeingReassigned``).
    partitions_being_reassigned: set[TopicPartition] = field(default_factory=set)

    # -- brokers ------------------------------------------------------------------------------

    @property
    def live_broker_ids(self) -> set[BrokerId]:
        """Live brokers that are not shutting down, as Kafka's ``liveBrokerIds``."""
        return set(self.live_brokers) - self.shutting_down_broker_ids

    @property
    def live_or_shutting_down_broker_ids(self) -> set[BrokerId]:
        return set(self.live_brokers)

    def broker_epoch(self, broker: BrokerId) -> int | None:
        info = self.live_brokers.get(broker)
        return None if info is None else info.epoch

    def is_replica_online(
        self, broker: BrokerId, partition: TopicPartition, *, include_shutting_down: bool = False
    ) -> bool:
        if include_shutting_down:
            online = broker in self.live_brokers
        else:
            online = broker in self.live_brokers and broker not in self.shutting_down_broker_ids
        return online and partition not in self.replicas_on_offline_dirs.get(broker, ())

    def online_replicas(self, partition: TopicPartition) -> set[BrokerId]:
        """The assigned replicas that are online: live brokers, not shutting down, dir not failed."""
        return {r for r in self.replica_assignment(partition) if self.is_replica_online(r, partition)}

    # -- topics and assignments ---------------------------------------------------------------

    def add_topic(self, topic: str, topic_id: uuid.UUID, assignment: Mapping[int, ReplicaAssignment]) -> None:
        self.topic_ids[topic] = topic_id
        self.assignments[topic] = dict(assignment)

    def remove_topic(self, topic: str) -> None:
        for partition in self.partitions_for_topic(topic):
            self.leadership.pop(partition, None)
            self.partition_states.pop(partition, None)
            self.partitions_being_reassigned.discard(partition)
        self.replica_states = {r: s for r, s in self.replica_states.items() if r.topic != topic}
        self.assignments.pop(topic, None)
        self.topic_ids.pop(topic, None)
        self.topics_to_be_deleted.discard(topic)
        self.topics_with_deletion_started.discard(topic)
        self.topics_ineligible_for_deletion.discard(topic)
        self.topic_unclean_leader_election.pop(topic, None)

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        return next((t for t, i in self.topic_ids.items() if i == topic_id), None)

    @property
    def all_topics(self) -> set[str]:
        return set(self.assignments)

    def all_partitions(self) -> Iterator[TopicPartition]:
        for topic, partitions in self.assignments.items():
            for index in partitions:
                yield TopicPartition(topic, index)

    def partitions_for_topic(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in sorted(self.assignments.get(topic, {}))]

    def full_assignment(self, partition: TopicPartition) -> ReplicaAssignment:
        return self.assignments.get(partition.topic, {}).get(partition.partition, ReplicaAssignment(()))

    def replica_assignment(self, partition: TopicPartition) -> tuple[BrokerId, ...]:
        return self.full_assignment(partition).replicas

    def update_assignment(self, partition: TopicPartition, assignment: ReplicaAssignment) -> None:
        # Kafka ignores assignments of topics it does not know (e.g. deleted meanwhile)
        if partition.topic in self.assignments:
            self.assignments[partition.topic][partition.partition] = assignment

    def replicas_for_partitions(self, partitions: Iterable[TopicPartition]) -> list[PartitionReplica]:
        return [PartitionReplica(p, r) for p in partitions for r in self.replica_assignment(p)]

    def replicas_for_topic(self, topic: str) -> list[PartitionReplica]:
        return self.replicas_for_partitions(self.partitions_for_topic(topic))

    def replicas_on_brokers(self, brokers: Iterable[BrokerId]) -> list[PartitionReplica]:
        wanted = set(brokers)
        return [
            PartitionReplica(p, r)
            for p in self.all_partitions()
            for r in self.replica_assignment(p)
            if r in wanted
        ]

    def partitions_on_broker(self, broker: BrokerId) -> list[TopicPartition]:
        return [p for p in self.all_partitions() if broker in self.replica_assignment(p)]

    # -- leadership ---------------------------------------------------------------------------

    def leader_and_isr(self, partition: TopicPartition) -> LeaderAndIsr | None:
        info = self.leadership.get(partition)
        return None if info is None else info.leader_and_isr

    def partitions_with_leaders(self) -> list[TopicPartition]:
        return [p for p in self.leadership if p.topic in self.assignments]

    def partitions_with_offline_leader(self) -> list[TopicPartition]:
        return [
            p
            for p, info in self.leadership.items()
            if not self.is_replica_online(info.leader_and_isr.leader, p)
            and not self.is_topic_queued_for_deletion(p.topic)
        ]

    def partition_leaders_on_broker(self, broker: BrokerId) -> set[TopicPartition]:
        return {
            p
            for p, info in self.leadership.items()
            if info.leader_and_isr.leader == broker and not self.is_topic_queued_for_deletion(p.topic)
        }

    # -- deletion -----------------------------------------------------------------------------

    def is_topic_queued_for_deletion(self, topic: str) -> bool:
        return topic in self.topics_to_be_deleted

    def is_topic_deletion_in_progress(self, topic: str) -> bool:
        return any(
            s is ReplicaState.DELETION_STARTED for r, s in self.replica_states.items() if r.topic == topic
        )

    def replicas_in_state(self, topic: str, state: ReplicaState) -> set[PartitionReplica]:
        return {r for r, s in self.replica_states.items() if r.topic == topic and s is state}

    def are_all_replicas_in_state(self, topic: str, state: ReplicaState) -> bool:
        return all(self.replica_states.get(r) is state for r in self.replicas_for_topic(topic))

    # -- state machine states -----------------------------------------------------------------

    def partition_state(self, partition: TopicPartition) -> PartitionState:
        return self.partition_states.get(partition, PartitionState.NON_EXISTENT)

    def replica_state(self, replica: PartitionReplica) -> ReplicaState:
        return self.replica_states.get(replica, ReplicaState.NON_EXISTENT)

    def partitions_in_states(self, *states: PartitionState) -> list[TopicPartition]:
        return [p for p, s in self.partition_states.items() if s in states]
