"""What the controller's requests ask of the replica manager, and the seams around it.

LeaderAndIsr and StopReplica are decoded by their handlers into :class:`PartitionTransition` and
:class:`ReplicaStop` (one per partition, whatever the request version), which
:meth:`ReplicaManager.become_leader_or_follower` and :meth:`ReplicaManager.stop_replicas` apply.

:class:`ControlPlane` is the replica manager's cluster-mode state: the latest controller epoch
(Kafka's ``ReplicaManager.controllerEpoch``, shared by the three control requests), the lock that
serialises state changes (``replicaStateChangeLock``), and two seams:

- ``fetchers`` (:class:`FollowerFetching`): the replica fetchers
  (:class:`broker.replica.fetcher.ReplicaFetcherManager`, set by the broker at start in cluster
  mode). A partition that becomes a follower is handed to it with where to fetch from; one that
  becomes leader or is stopped is taken from it. None on a broker not started (followers then
  keep their log and wait).
- ``listeners`` (:data:`LeadershipChange`): told which replicas now lead and which no longer
  do (became followers after a LeaderAndIsr, or deleted by a StopReplica): Kafka's
  ``onLeadershipChange`` and ``onResignation``; the group coordinator loads and unloads
  ``__consumer_offsets`` partitions there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from broker.types import BrokerId, TopicPartition
from storage.fast_dataclass import dataclass, field

if TYPE_CHECKING:
    from broker.replica.partition import Partition

T = TypeVar("T")

#: Kafka's controller epoch before any controller was seen (KafkaController.InitialControllerEpoch).
INITIAL_CONTROLLER_EPOCH = 0
#: Kafka's LeaderAndIsr.NoEpoch (StopReplica v0-2 carry no leader epoch) and EpochDuringDelete.
NO_EPOCH = -1
EPOCH_DURING_DELETE = -2
#: Kafka's AbstractControlRequest.UNKNOWN_BROKER_EPOCH: the request skips the broker epoch check.
UNKNOWN_BROKER_EPOCH = -1


class DiskRunner(Protocol):
    """The broker's disk workers (:class:`broker.disk.DiskWorkers`)."""

    async def run(self, work: Callable[..., T], *args: Any) -> T: ...


@dataclass(frozen=True, slots=True)
class FetchStart:
    """Where a new follower starts fetching: its leader, the leader epoch and its log end."""

    topic_id: uuid.UUID | None
    leader_id: BrokerId
    leader_epoch: int
    fetch_offset: int


class FollowerFetching(Protocol):
    """The replica fetcher manager (issue 13)."""

    def add_partitions(self, starts: dict[TopicPartition, FetchStart]) -> None: ...

    def remove_partitions(self, partitions: set[TopicPartition]) -> None: ...


LeadershipChange = Callable[[list["Partition"], list["Partition"]], None]


@dataclass(slots=True)
class PartitionTransition:
    """One partition state of a LeaderAndIsr request (LeaderAndIsrPartitionState, normalised)."""

    tp: TopicPartition
    topic_id: uuid.UUID | None  # None: the request carries no (or the zero) topic id
    leader: BrokerId
    leader_epoch: int
    isr: list[BrokerId]
    replicas: list[BrokerId]
    partition_epoch: int
    is_new: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaStop:
    """One partition of a StopReplica request: its leader epoch (or a sentinel) and whether to
    delete the local replica."""

    tp: TopicPartition
    leader_epoch: int
    delete: bool


@dataclass(slots=True)
class ControlPlane:
    controller_epoch: int = INITIAL_CONTROLLER_EPOCH
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetchers: FollowerFetching | None = None
    listeners: list[LeadershipChange] = field(default_factory=list)
