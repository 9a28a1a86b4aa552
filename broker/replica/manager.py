"""The partitions this broker hosts, and the glue between cluster metadata and storage.

The replica manager turns metadata (which topics exist, who leads each partition) into local
:class:`Partition` objects over storage logs. Handlers go through it for every read and write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from broker.cluster.metadata import ClusterMetadata, TopicInfo
from broker.replica.partition import Partition
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from storage import LogConfig, LogManager

log = logging.getLogger(__name__)


class ReplicaManager:
    def __init__(
        self,
        local_id: BrokerId,
        log_manager: LogManager,
        metadata: ClusterMetadata,
        log_config_for: Callable[[TopicInfo], LogConfig],
    ) -> None:
        self.local_id = local_id
        self.log_manager = log_manager
        self.metadata = metadata
        self.log_config_for = log_config_for
        self.partitions: dict[TopicPartition, Partition] = {}

    def get(self, tp: TopicPartition) -> Partition | None:
        return self.partitions.get(tp)

    def leader_for(
        self, topic: str, index: int, current_leader_epoch: int = -1
    ) -> tuple[Partition | None, ErrorCode]:
        """The local leader replica of ``topic``-``index``, or the error a client gets instead:
        UNKNOWN_TOPIC_OR_PARTITION (no such partition), NOT_LEADER_OR_FOLLOWER (led elsewhere),
        FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (the caller's leader epoch, when it sends one,
        is older / newer than ours)."""
        partition = self.partitions.get((topic, index))  # type: ignore[call-overload]
        if partition is None:
            known = self.metadata.partition(TopicPartition(topic, index)) is not None
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER if known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if not partition.is_leader:
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER
        if current_leader_epoch >= 0 and current_leader_epoch != partition.leader_epoch:
            if current_leader_epoch < partition.leader_epoch:
                return None, ErrorCode.FENCED_LEADER_EPOCH
            return None, ErrorCode.UNKNOWN_LEADER_EPOCH
        return partition, ErrorCode.NONE

    def __iter__(self) -> Iterator[Partition]:
        return iter(self.partitions.values())

    def load(self) -> None:
        """Open every local replica named by the metadata (each log restored its producer state)."""
        for info in self.metadata.topics.values():
            self._open_topic(info, 0)
        for stray in self.log_manager.all_logs():
            if TopicPartition(stray.topic, stray.partition) not in self.partitions:
                log.warning("log directory %s belongs to no known topic; leaving it alone", stray.directory)

    def _open_topic(self, info: TopicInfo, first_partition: int) -> None:
        config = self.log_config_for(info)
        for index in range(first_partition, len(info.partitions)):
            state = info.partitions[index]
            if self.local_id not in state.replicas:
                continue
            tp = TopicPartition(info.name, index)
            log_ = self.log_manager.get_or_create_log(info.name, index, info.topic_id, config)
            partition = Partition(tp, info.topic_id, log_, state, self.local_id)
            if partition.is_leader:
                partition.maybe_increment_high_watermark()
            self.partitions[tp] = partition

    def add_topic(self, info: TopicInfo) -> None:
        self._open_topic(info, 0)

    def add_partitions(self, info: TopicInfo, first_new: int) -> None:
        self._open_topic(info, first_new)

    def remove_topic(self, name: str, partition_count: int) -> None:
        for index in range(partition_count):
            tp = TopicPartition(name, index)
            partition = self.partitions.pop(tp, None)
            if partition is not None:
                self.log_manager.delete_log(name, index)

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> int:
        """Forget, on every hosted partition, the producers idle for ``expiration_ms`` or more
        (producer.id.expiration.ms); a dictionary pass per partition, run on the event loop
        because appends mutate the same state there. Returns how many were forgotten."""
        removed = 0
        for partition in self.partitions.values():
            state = partition.log.producer_state
            state.expiration_ms = expiration_ms
            removed += state.expire(now_ms, expiration_ms)
        return removed

    def update_topic_config(self, info: TopicInfo) -> None:
        config = self.log_config_for(info)
        for index in range(len(info.partitions)):
            partition = self.partitions.get(TopicPartition(info.name, index))
            if partition is not None:
                partition.log.update_config(config)
