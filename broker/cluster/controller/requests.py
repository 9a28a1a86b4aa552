"""The controller-to-broker request batch, as Kafka 3.9's ``AbstractControllerBrokerRequestBatch``.

State changes add partitions to the batch; :meth:`ControllerBrokerRequestBatch.build` turns it
into one LeaderAndIsr (api 4), one UpdateMetadata (api 6) and one StopReplica (api 5) request per
broker, at the versions ``inter.broker.protocol.version`` allows (IBP 3.4+: LeaderAndIsr v7,
UpdateMetadata v8, StopReplica v4), with the controller's id and epoch and each recipient's
broker epoch. Only the generated classes of ``protocol.messages`` describe the layouts.

Partition states leave their own ``topic_name`` empty: only LeaderAndIsr v0-1 and UpdateMetadata
v0-4 carry it, which no supported IBP (2.2-IV0 and later) sends; the topic states name the topic.

Every LeaderAndIsr addition also puts the partition into the UpdateMetadata sent to every live
(or shutting-down) broker, as Kafka does; a partition of a topic queued for deletion is sent with
leader -2. Brokers that are no longer registered when the batch is built get nothing.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable

from broker.cluster.controller.context import (
    EPOCH_DURING_DELETE,
    LEADER_DURING_DELETE,
    NO_EPOCH,
    ControllerContext,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    ReplicaAssignment,
)
from broker.config.versions import LATEST_PRODUCTION, is_at_least
from broker.types import BrokerId, TopicPartition
from protocol.messages.leader_and_isr_request import (
    LeaderAndIsrLiveLeader,
    LeaderAndIsrPartitionState,
    LeaderAndIsrRequest,
    LeaderAndIsrTopicState,
)
from protocol.messages.stop_replica_request import (
    StopReplicaPartitionState,
    StopReplicaRequest,
    StopReplicaTopicState,
    StopReplicaTopicV1,
)
from protocol.messages.update_metadata_request import (
    UpdateMetadataBroker,
    UpdateMetadataEndpoint,
    UpdateMetadataPartitionState,
    UpdateMetadataRequest,
    UpdateMetadataTopicState,
)
from storage.fast_dataclass import dataclass

ControlRequest = LeaderAndIsrRequest | UpdateMetadataRequest | StopReplicaRequest


class UpdateType(enum.IntEnum):
    """LeaderAndIsr v5+ / UpdateMetadata v8 ``type``; ZooKeeper mode sends UNKNOWN (KIP-866 only
    uses the others during a migration)."""

    UNKNOWN = 0
    INCREMENTAL = 1
    FULL = 2


@dataclass(frozen=True, slots=True)
class RequestVersions:
    """Which version of each control request an ``inter.broker.protocol.version`` sends."""

    leader_and_isr: int
    update_metadata: int
    stop_replica: int
    #: KIP-704's leader recovery state is sent (and unclean elections mark RECOVERING) from 3.2.
    leader_recovery_supported: bool

    #: Oldest IBP this batch can build for: LeaderAndIsr v2 / UpdateMetadata v5 / StopReplica v1.
    OLDEST_SUPPORTED_IBP = "2.2-IV0"

    @classmethod
    def for_ibp(cls, ibp: str = LATEST_PRODUCTION) -> RequestVersions:
        """Kafka 3.9's ``ControllerChannelManager`` mapping. ``ValueError`` below 2.2-IV0."""
        if not is_at_least(ibp, cls.OLDEST_SUPPORTED_IBP):
            raise ValueError(
                f"inter.broker.protocol.version {ibp} is older than {cls.OLDEST_SUPPORTED_IBP}, "
                "which Brook's controller does not speak"
            )
        lai = _version_for(ibp, _LEADER_AND_ISR_VERSIONS, 2)
        um = _version_for(ibp, _UPDATE_METADATA_VERSIONS, 5)
        sr = _version_for(ibp, _STOP_REPLICA_VERSIONS, 1)
        return cls(lai, um, sr, is_at_least(ibp, "3.2-IV0"))


#: (first IBP, request version), newest first: Kafka's ControllerChannelManager choices.
_LEADER_AND_ISR_VERSIONS = (("3.4-IV0", 7), ("3.2-IV0", 6), ("2.8-IV1", 5), ("2.4-IV1", 4), ("2.4-IV0", 3))
_UPDATE_METADATA_VERSIONS = (("3.4-IV0", 8), ("2.8-IV1", 7), ("2.4-IV1", 6))
_STOP_REPLICA_VERSIONS = (("3.4-IV0", 4), ("2.6-IV0", 3), ("2.4-IV1", 2))


def _version_for(ibp: str, table: tuple[tuple[str, int], ...], oldest: int) -> int:
    """The version of the first row whose IBP ``ibp`` reaches, else ``oldest``."""
    return next((version for first, version in table if is_at_least(ibp, first)), oldest)


@dataclass(frozen=True, slots=True)
class BrokerRequest:
    """One request for one broker, ready to encode at ``version``."""

    broker: BrokerId
    version: int
    request: ControlRequest

    @property
    def api_key(self) -> int:
        return self.request.API_KEY


class ControllerBrokerRequestBatch:
    """Collects what each broker must be told during one event, then builds the requests."""

    def __init__(
        self,
        context: ControllerContext,
        controller_id: BrokerId,
        inter_broker_listener: str,
        versions: RequestVersions,
    ) -> None:
        self.context = context
        self.controller_id = controller_id
        self.inter_broker_listener = inter_broker_listener
        self.versions = versions
        self.update_type = UpdateType.UNKNOWN
        self._leader_and_isr: dict[BrokerId, dict[TopicPartition, LeaderAndIsrPartitionState]] = {}
        self._stop_replica: dict[BrokerId, dict[TopicPartition, StopReplicaPartitionState]] = {}
        self._update_metadata_brokers: set[BrokerId] = set()
        self._update_metadata_partitions: dict[TopicPartition, UpdateMetadataPartitionState] = {}

    @property
    def is_empty(self) -> bool:
        return not (self._leader_and_isr or self._stop_replica or self._update_metadata_brokers)

    def add_leader_and_isr(
        self,
        brokers: Iterable[BrokerId],
        partition: TopicPartition,
        leadership: LeaderIsrAndControllerEpoch,
        assignment: ReplicaAssignment,
        *,
        is_new: bool,
    ) -> None:
        state = leadership.leader_and_isr
        for broker in brokers:
            if broker < 0:
                continue
            per_broker = self._leader_and_isr.setdefault(broker, {})
            already_new = partition in per_broker and per_broker[partition].is_new
            per_broker[partition] = LeaderAndIsrPartitionState(
                partition_index=partition.partition,
                controller_epoch=leadership.controller_epoch,
                leader=state.leader,
                leader_epoch=state.leader_epoch,
                isr=list(state.isr),
                partition_epoch=state.partition_epoch,
                replicas=list(assignment.replicas),
                adding_replicas=list(assignment.adding_replicas),
                removing_replicas=list(assignment.removing_replicas),
                is_new=is_new or already_new,
                leader_recovery_state=int(state.leader_recovery_state)
                if self.versions.leader_recovery_supported
                else 0,
            )
        self.add_update_metadata(self.context.live_or_shutting_down_broker_ids, [partition])

    def add_stop_replica(
        self, brokers: Iterable[BrokerId], partition: TopicPartition, *, delete: bool
    ) -> None:
        epoch = self._stop_replica_epoch(partition)
        for broker in brokers:
            if broker < 0:
                continue
            per_broker = self._stop_replica.setdefault(broker, {})
            already_delete = partition in per_broker and per_broker[partition].delete_partition
            per_broker[partition] = StopReplicaPartitionState(
                partition_index=partition.partition,
                leader_epoch=epoch,
                delete_partition=already_delete or delete,
            )

    def add_update_metadata(
        self, brokers: Iterable[BrokerId], partitions: Iterable[TopicPartition] = ()
    ) -> None:
        """Tell ``brokers`` the live brokers and the current state of ``partitions``."""
        self._update_metadata_brokers.update(b for b in brokers if b >= 0)
        for partition in partitions:
            leadership = self.context.leadership.get(partition)
            if leadership is None:
                continue  # no leader assigned yet: nothing to say about it
            state = leadership.leader_and_isr
            replicas = self.context.replica_assignment(partition)
            if self.context.is_topic_queued_for_deletion(partition.topic):
                # Kafka's LeaderAndIsr.duringDelete: leader -2, epochs reset, the ISR kept.
                state = LeaderAndIsr(LEADER_DURING_DELETE, 0, state.isr)
            self._update_metadata_partitions[partition] = UpdateMetadataPartitionState(
                partition_index=partition.partition,
                controller_epoch=leadership.controller_epoch,
                leader=state.leader,
                leader_epoch=state.leader_epoch,
                isr=list(state.isr),
                zk_version=state.partition_epoch,
                replicas=list(replicas),
                offline_replicas=[r for r in replicas if not self.context.is_replica_online(r, partition)],
            )

    def build(self) -> list[BrokerRequest]:
        """LeaderAndIsr, then UpdateMetadata, then StopReplica (Kafka's send order); empties the batch."""
        live = self.context.live_or_shutting_down_broker_ids
        requests: list[BrokerRequest] = []
        for broker in sorted(self._leader_and_isr):
            if broker in live:
                requests.append(self._leader_and_isr_request(broker, self._leader_and_isr[broker]))
        if self._update_metadata_brokers:
            requests.extend(self._update_metadata_requests(sorted(self._update_metadata_brokers & live)))
        for broker in sorted(self._stop_replica):
            if broker in live:
                requests.extend(self._stop_replica_requests(broker, self._stop_replica[broker]))
        self._leader_and_isr.clear()
        self._stop_replica.clear()
        self._update_metadata_brokers.clear()
        self._update_metadata_partitions.clear()
        return requests

    # -- building -----------------------------------------------------------------------------

    def _stop_replica_epoch(self, partition: TopicPartition) -> int:
        if self.context.is_topic_queued_for_deletion(partition.topic):
            return EPOCH_DURING_DELETE
        state = self.context.leader_and_isr(partition)
        return NO_EPOCH if state is None else state.leader_epoch

    def _broker_epoch(self, broker: BrokerId) -> int:
        epoch = self.context.broker_epoch(broker)
        return -1 if epoch is None else epoch

    def _topic_id(self, topic: str) -> uuid.UUID:
        return self.context.topic_ids.get(topic, uuid.UUID(int=0))

    def _leader_and_isr_request(
        self, broker: BrokerId, states: dict[TopicPartition, LeaderAndIsrPartitionState]
    ) -> BrokerRequest:
        leader_ids = {s.leader for s in states.values()}
        live_leaders = []
        for leader in sorted(leader_ids):
            info = self.context.live_brokers.get(BrokerId(leader))
            endpoint = None if info is None else info.endpoint(self.inter_broker_listener)
            if endpoint is not None:
                live_leaders.append(
                    LeaderAndIsrLiveLeader(broker_id=leader, host_name=endpoint.host, port=endpoint.port)
                )
        topics: dict[str, LeaderAndIsrTopicState] = {}
        for partition, state in sorted(states.items()):
            topic = topics.setdefault(
                partition.topic,
                LeaderAndIsrTopicState(topic_name=partition.topic, topic_id=self._topic_id(partition.topic)),
            )
            topic.partition_states.append(state)
        version = self.versions.leader_and_isr
        request = LeaderAndIsrRequest(
            controller_id=self.controller_id,
            is_kraft_controller=False,
            controller_epoch=self.context.epoch,
            broker_epoch=self._broker_epoch(broker),
            type=int(self.update_type) if version >= 5 else 0,
            topic_states=list(topics.values()),
            live_leaders=live_leaders,
        )
        return BrokerRequest(broker, version, request)

    def _live_brokers(self) -> list[UpdateMetadataBroker]:
        result = []
        for broker_id in sorted(self.context.live_brokers):
            info = self.context.live_brokers[broker_id]
            result.append(
                UpdateMetadataBroker(
                    id=broker_id,
                    endpoints=[
                        UpdateMetadataEndpoint(
                            port=e.port,
                            host=e.host,
                            listener=e.listener,
                            security_protocol=e.security_protocol,
                        )
                        for e in info.endpoints
                    ],
                    rack=info.rack,
                )
            )
        return result

    def _update_metadata_requests(self, brokers: list[BrokerId]) -> list[BrokerRequest]:
        version = self.versions.update_metadata
        live_brokers = self._live_brokers()
        requests = []
        for broker in brokers:
            # Each request gets its own topic states: requests are handed to separate senders.
            topics: dict[str, UpdateMetadataTopicState] = {}
            for partition, state in sorted(self._update_metadata_partitions.items()):
                topic = topics.setdefault(
                    partition.topic,
                    UpdateMetadataTopicState(
                        topic_name=partition.topic, topic_id=self._topic_id(partition.topic)
                    ),
                )
                topic.partition_states.append(state)
            request = UpdateMetadataRequest(
                controller_id=self.controller_id,
                is_kraft_controller=False,
                type=int(self.update_type) if version >= 8 else 0,
                controller_epoch=self.context.epoch,
                broker_epoch=self._broker_epoch(broker),
                topic_states=list(topics.values()),
                live_brokers=live_brokers,
            )
            requests.append(BrokerRequest(broker, version, request))
        return requests

    def _stop_replica_requests(
        self, broker: BrokerId, states: dict[TopicPartition, StopReplicaPartitionState]
    ) -> list[BrokerRequest]:
        version = self.versions.stop_replica

        def request(**fields: object) -> StopReplicaRequest:
            return StopReplicaRequest(
                controller_id=self.controller_id,
                is_kraft_controller=False,
                controller_epoch=self.context.epoch,
                broker_epoch=self._broker_epoch(broker),
                **fields,  # type: ignore[arg-type]
            )

        ordered = sorted(states.items())
        if version >= 3:
            # v3+ carries delete and leader epoch per partition: one request.
            topics: dict[str, StopReplicaTopicState] = {}
            for partition, state in ordered:
                topics.setdefault(partition.topic, StopReplicaTopicState(topic_name=partition.topic))
                topics[partition.topic].partition_states.append(state)
            return [BrokerRequest(broker, version, request(topic_states=list(topics.values())))]
        # v1-v2: one request with delete_partitions=true and one without, as Kafka splits them.
        requests = []
        for delete in (True, False):
            chosen = [p for p, s in ordered if s.delete_partition == delete]
            if not chosen:
                continue
            v1_topics: dict[str, StopReplicaTopicV1] = {}
            for partition in chosen:
                v1_topics.setdefault(partition.topic, StopReplicaTopicV1(name=partition.topic))
                v1_topics[partition.topic].partition_indexes.append(partition.partition)
            requests.append(
                BrokerRequest(
                    broker, version, request(delete_partitions=delete, topics=list(v1_topics.values()))
                )
            )
        return requests


__all__ = [
    "BrokerRequest",
    "ControlRequest",
    "ControllerBrokerRequestBatch",
    "RequestVersions",
    "UpdateType",
]
