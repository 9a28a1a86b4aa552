"""What the controller decided for one event: ZooKeeper writes and requests to brokers.

The driver applies ``partition_writes`` in order, each conditional on ``expected_zk_version`` and
all of them on the controller epoch znode's version (Kafka's multi-op check), then sends the
requests. The controller has already applied the writes to its context as if they succeeded; if
ZooKeeper refuses one (another controller, or a version race), the driver must resign or reload
that partition's state (:meth:`Controller.reload_partition_states`) before the next event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from broker.cluster.controller.context import LeaderIsrAndControllerEpoch, ReplicaAssignment
from broker.cluster.controller.requests import BrokerRequest
from broker.types import BrokerId, TopicPartition
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.update_metadata_request import UpdateMetadataRequest
from storage.fast_dataclass import dataclass, field


@dataclass(frozen=True, slots=True)
class PartitionStateWrite:
    """Write ``state`` to ``/brokers/topics/<t>/partitions/<p>/state``.

    ``expected_zk_version`` None means create the znode (and its parents); otherwise a setData
    conditional on that version. ``state.leader_and_isr.partition_epoch`` is the version the
    znode has after the write.
    """

    partition: TopicPartition
    state: LeaderIsrAndControllerEpoch
    expected_zk_version: int | None


@dataclass(frozen=True, slots=True)
class AssignmentWrite:
    """Write ``/brokers/topics/<topic>`` with the topic's full assignment (replicas, adding and
    removing replicas), fenced by the controller epoch, any znode version (Kafka's
    ``setTopicAssignmentRaw``)."""

    topic: str
    topic_id: uuid.UUID
    partitions: Mapping[int, ReplicaAssignment]


@dataclass(frozen=True, slots=True)
class ZkReassignmentRemoval:
    """Drop ``partition`` from ``/admin/reassign_partitions`` (Kafka's
    ``maybeRemoveFromZkReassignment``): always when ``replicas`` is None, else only if the znode
    asks for exactly these replicas. The znode is deleted once it lists nothing."""

    partition: TopicPartition
    replicas: tuple[BrokerId, ...] | None = None


@dataclass(slots=True)
class ControllerDecisions:
    controller_epoch: int
    #: Every write is conditional on ``/controller_epoch`` still having this version.
    controller_epoch_zk_version: int
    partition_writes: list[PartitionStateWrite] = field(default_factory=list)
    #: ``/brokers/topics/<t>`` writes, in order, after the partition-state writes.
    assignment_writes: list[AssignmentWrite] = field(default_factory=list)
    #: Entries of ``/admin/reassign_partitions`` to drop, after the assignment writes.
    zk_reassignment_removals: list[ZkReassignmentRemoval] = field(default_factory=list)
    #: In sending order: Kafka sends after each state-machine step, so a bounced broker gets its
    #: StopReplica before its new LeaderAndIsr.
    requests: list[BrokerRequest] = field(default_factory=list)
    #: Topics whose deletion completed: remove ``/brokers/topics/<t>``, ``/config/topics/<t>``
    #: and ``/admin/delete_topics/<t>``.
    deleted_topics: list[str] = field(default_factory=list)
    #: State changes the controller refused or could not make, as Kafka's state-change log says them.
    failures: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.partition_writes
            or self.assignment_writes
            or self.zk_reassignment_removals
            or self.requests
            or self.deleted_topics
        )

    def requests_for(self, broker: BrokerId) -> list[BrokerRequest]:
        return [r for r in self.requests if r.broker == broker]

    def leader_and_isr_for(self, broker: BrokerId) -> list[LeaderAndIsrRequest]:
        return [r.request for r in self.requests_for(broker) if isinstance(r.request, LeaderAndIsrRequest)]

    def update_metadata_for(self, broker: BrokerId) -> list[UpdateMetadataRequest]:
        return [r.request for r in self.requests_for(broker) if isinstance(r.request, UpdateMetadataRequest)]

    def stop_replica_for(self, broker: BrokerId) -> list[StopReplicaRequest]:
        return [r.request for r in self.requests_for(broker) if isinstance(r.request, StopReplicaRequest)]

    def last_write(self, partition: TopicPartition) -> PartitionStateWrite | None:
        return next((w for w in reversed(self.partition_writes) if w.partition == partition), None)
