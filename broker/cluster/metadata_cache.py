"""The read-only metadata cache of a broker in cluster mode, fed by the controller.

As Kafka's ZkMetadataCache: each UpdateMetadata request (api 6, every version 0-8) replaces the
live brokers (with every listener endpoint and rack) and the controller id, and updates the
partition states it names (a partition whose leader is -2, ``LeaderDuringDelete``, is removed;
a topic with no partition left is forgotten with its id). Handlers answer Metadata,
DescribeCluster and FindCoordinator from it, and the KIP-951 leader hints of Produce and Fetch.

Only the event loop reads or changes it (the UpdateMetadata handler runs there), so it has no lock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

from broker.cluster.metadata import INTERNAL_TOPICS, NO_LEADER_ID, BrokerEndpoint
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.metadata_response import MetadataResponsePartition
from protocol.messages.update_metadata_request import UpdateMetadataPartitionState, UpdateMetadataRequest
from protocol.primitives import ZERO_UUID
from storage.fast_dataclass import dataclass, field

log = logging.getLogger(__name__)

#: Kafka's LeaderAndIsr.LeaderDuringDelete: the controller's mark of a partition being deleted.
LEADER_DURING_DELETE = -2
#: Kafka's SecurityProtocol ids; before UpdateMetadata v3 an endpoint's listener is named after
#: its security protocol (ListenerName.forSecurityProtocol).
SECURITY_PROTOCOL_NAMES = {0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}


@dataclass(frozen=True, slots=True)
class CachedBroker:
    """A live broker as the controller described it: its endpoint on every listener."""

    broker_id: BrokerId
    rack: str | None
    endpoints: dict[str, BrokerEndpoint]

    def endpoint(self, listener: str) -> BrokerEndpoint | None:
        return self.endpoints.get(listener)


@dataclass(slots=True)
class CachedPartition:
    """One partition's state as the controller last sent it (UpdateMetadataPartitionState)."""

    topic: str
    partition: int
    controller_epoch: int
    leader: BrokerId
    leader_epoch: int
    isr: list[BrokerId]
    zk_version: int
    replicas: list[BrokerId]
    offline_replicas: list[BrokerId] = field(default_factory=list)


def flat_partition_states(
    request: UpdateMetadataRequest, version: int
) -> Iterator[UpdateMetadataPartitionState]:
    """Every partition state of the request with its topic name set, whatever the version
    (v0-4 carry them ungrouped, v5+ grouped by topic)."""
    if version < 5:
        yield from request.ungrouped_partition_states
        return
    for topic in request.topic_states:
        for state in topic.partition_states:
            state.topic_name = topic.topic_name
            yield state


def live_brokers_of(request: UpdateMetadataRequest, version: int) -> dict[BrokerId, CachedBroker]:
    """The request's live brokers with their endpoints keyed by listener name, by version: v0 has
    one PLAINTEXT host and port, v1-2 name the listener after the security protocol, v3+ name it."""
    brokers: dict[BrokerId, CachedBroker] = {}
    for raw in request.live_brokers:
        broker_id = BrokerId(raw.id)
        rack = raw.rack if version >= 2 else None
        endpoints: dict[str, BrokerEndpoint] = {}
        if version == 0:
            endpoints["PLAINTEXT"] = BrokerEndpoint(broker_id, raw.v0_host, raw.v0_port, rack)
        else:
            for ep in raw.endpoints:
                if version >= 3:
                    name = ep.listener
                else:
                    name = SECURITY_PROTOCOL_NAMES.get(ep.security_protocol, str(ep.security_protocol))
                endpoints[name] = BrokerEndpoint(broker_id, ep.host, ep.port, rack)
        brokers[broker_id] = CachedBroker(broker_id, rack, endpoints)
    return brokers


class MetadataCache:
    """Live brokers, the controller and partition states, as the controller last told this broker."""

    def __init__(self, local_id: BrokerId) -> None:
        self.local_id = local_id
        self.controller_id: BrokerId | None = None
        self.alive: dict[BrokerId, CachedBroker] = {}
        self._partitions: dict[str, dict[int, CachedPartition]] = {}
        self._topic_ids: dict[str, uuid.UUID] = {}
        self._topic_names: dict[uuid.UUID, str] = {}
        #: Called (on the loop, no argument) after each UpdateMetadata is applied: the admin
        #: requests that wait for leaders or deletions (Kafka's purgatories) are woken by it.
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("metadata cache listener %r failed", listener)

    # -- updates (the UpdateMetadata handler) ------------------------------------------------------

    def update(self, request: UpdateMetadataRequest, version: int) -> list[TopicPartition]:
        """Apply an UpdateMetadata request; returns the partitions it deleted (Kafka's
        ZkMetadataCache.updateMetadata, without the KRaft-migration full snapshots)."""
        self.controller_id = BrokerId(request.controller_id) if request.controller_id >= 0 else None
        self.alive = live_brokers_of(request, version)
        local = self.alive.get(self.local_id)
        if local is not None:
            listeners = set(local.endpoints)
            if any(set(b.endpoints) != listeners for b in self.alive.values()):
                log.error("listeners are not identical across brokers: %s", self.alive)
        states = list(flat_partition_states(request, version))
        # As Kafka: a topic named without an id (every topic before v7) forgets its id.
        ids = {s.topic_name: ZERO_UUID for s in states}
        if version >= 5:
            ids.update({t.topic_name: t.topic_id for t in request.topic_states})
        for topic, topic_id in ids.items():
            if topic_id == ZERO_UUID:
                self._forget_topic_id(topic)
            else:
                self._set_topic_id(topic, topic_id)
        deleted: dict[TopicPartition, None] = {}
        for state in states:
            tp = TopicPartition(state.topic_name, state.partition_index)
            if state.leader == LEADER_DURING_DELETE:
                self._remove_partition(tp)
                deleted[tp] = None
                continue
            self._partitions.setdefault(tp.topic, {})[tp.partition] = CachedPartition(
                topic=tp.topic,
                partition=tp.partition,
                controller_epoch=state.controller_epoch,
                leader=BrokerId(state.leader),
                leader_epoch=state.leader_epoch,
                isr=[BrokerId(b) for b in state.isr],
                zk_version=state.zk_version,
                replicas=[BrokerId(b) for b in state.replicas],
                offline_replicas=[BrokerId(b) for b in state.offline_replicas] if version >= 4 else [],
            )
            deleted.pop(tp, None)
        self._notify()
        return list(deleted)

    def _set_topic_id(self, topic: str, topic_id: uuid.UUID) -> None:
        self._forget_topic_id(topic)
        self._topic_ids[topic] = topic_id
        self._topic_names[topic_id] = topic

    def _forget_topic_id(self, topic: str) -> None:
        old = self._topic_ids.pop(topic, None)
        if old is not None:
            self._topic_names.pop(old, None)

    def _remove_partition(self, tp: TopicPartition) -> None:
        partitions = self._partitions.get(tp.topic)
        if partitions is None:
            return
        partitions.pop(tp.partition, None)
        if not partitions:
            del self._partitions[tp.topic]
            self._forget_topic_id(tp.topic)

    # -- brokers -------------------------------------------------------------------------------------

    def has_alive_broker(self, broker_id: int) -> bool:
        return broker_id in self.alive

    def alive_broker_ids(self) -> list[BrokerId]:
        return sorted(self.alive)

    def alive_brokers(self, listener: str) -> list[BrokerEndpoint]:
        """The live brokers' endpoints on ``listener`` (brokers without it are left out)."""
        found = (b.endpoint(listener) for _, b in sorted(self.alive.items()))
        return [e for e in found if e is not None]

    def alive_endpoint(self, broker_id: int, listener: str) -> BrokerEndpoint | None:
        broker = self.alive.get(BrokerId(broker_id))
        return None if broker is None else broker.endpoint(listener)

    # -- topics and partitions -------------------------------------------------------------------------

    def topics(self) -> list[str]:
        return list(self._partitions)

    def contains(self, topic: str) -> bool:
        return topic in self._partitions

    def topic_id(self, topic: str) -> uuid.UUID:
        """The topic's id, or the zero uuid when the controller sent none."""
        return self._topic_ids.get(topic, ZERO_UUID)

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        return self._topic_names.get(topic_id)

    def partition_count(self, topic: str) -> int | None:
        partitions = self._partitions.get(topic)
        return None if partitions is None else len(partitions)

    def partition(self, tp: TopicPartition) -> CachedPartition | None:
        partitions = self._partitions.get(tp.topic)
        return None if partitions is None else partitions.get(tp.partition)

    def partition_metadata(
        self,
        topic: str,
        listener: str,
        error_unavailable_endpoints: bool = False,
        error_unavailable_listeners: bool = False,
    ) -> list[MetadataResponsePartition] | None:
        """The topic's partitions as Metadata answers them (ZkMetadataCache.getPartitionMetadata),
        or None for a topic the cache does not know.

        - leader not alive: LEADER_NOT_AVAILABLE, leader -1;
        - leader alive without ``listener``: LISTENER_NOT_FOUND (v6+ requests) or LEADER_NOT_AVAILABLE;
        - v0 requests (``error_unavailable_endpoints``) list only replicas and ISR members alive on
          the listener, and a partition missing some gets REPLICA_NOT_AVAILABLE.
        """
        partitions = self._partitions.get(topic)
        if partitions is None:
            return None
        answer = []
        for index, state in sorted(partitions.items()):
            replicas = self._filter_alive(state.replicas, listener, error_unavailable_endpoints)
            isr = self._filter_alive(state.isr, listener, error_unavailable_endpoints)
            leader = self.alive_endpoint(state.leader, listener)
            if leader is None:
                if state.leader not in self.alive:
                    error = ErrorCode.LEADER_NOT_AVAILABLE
                elif error_unavailable_listeners:
                    error = ErrorCode.LISTENER_NOT_FOUND
                else:
                    error = ErrorCode.LEADER_NOT_AVAILABLE
                leader_id = NO_LEADER_ID
            else:
                missing = len(replicas) < len(state.replicas) or len(isr) < len(state.isr)
                error = ErrorCode.REPLICA_NOT_AVAILABLE if missing else ErrorCode.NONE
                leader_id = state.leader
            answer.append(
                MetadataResponsePartition(
                    error_code=error,
                    partition_index=index,
                    leader_id=leader_id,
                    leader_epoch=state.leader_epoch,
                    replica_nodes=list(replicas),
                    isr_nodes=list(isr),
                    offline_replicas=list(state.offline_replicas),
                )
            )
        return answer

    def _filter_alive(self, brokers: list[BrokerId], listener: str, only_alive: bool) -> list[BrokerId]:
        if not only_alive:
            return brokers
        return [b for b in brokers if self.alive_endpoint(b, listener) is not None]

    @staticmethod
    def is_internal(topic: str) -> bool:
        return topic in INTERNAL_TOPICS
