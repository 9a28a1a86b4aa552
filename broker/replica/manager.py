"""The partitions this broker hosts, and the glue between cluster metadata and storage.

The replica manager turns metadata (which topics exist, who leads each partition) into local
:class:`Partition` objects over storage logs. Handlers go through it for every read and write.

Disk errors, as Kafka's ReplicaManager.handleLogDirFailure: an ``OSError`` from a partition's
log (append, read, index, checkpoint, retention, cleaning, in a handler or in the background)
takes the whole log dir offline (:meth:`LogManager.mark_dir_offline`, one ERROR line naming the
dir and the cause). That partition answers KAFKA_STORAGE_ERROR, and so does every partition of
the dir from then on (``leader_for``); Metadata reports them as Kafka's metadata cache does once
the controller took the only replica offline: no leader, LEADER_NOT_AVAILABLE, this broker in
``offline_replicas``. Partitions in other log dirs go on. Deliberate deviation: Kafka halts the
broker when every log dir is offline; Brook keeps running so that metadata and admin requests
(DescribeLogDirs names the failed dirs) still answer. The dir comes back after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from broker.cluster.metadata import ClusterMetadata, TopicInfo
from broker.replica.partition import Partition
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from storage import LogConfig, LogDirOfflineError, LogManager, StorageCorruptionError, StorageError

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
        #: Replicas this broker should host but whose log could not be opened or created because
        #: of a disk error (Kafka: HostedPartition.Offline); they answer KAFKA_STORAGE_ERROR.
        self.offline_partitions: set[TopicPartition] = set()

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
            if self.offline_partitions and TopicPartition(topic, index) in self.offline_partitions:
                return None, ErrorCode.KAFKA_STORAGE_ERROR
            known = self.metadata.partition(TopicPartition(topic, index)) is not None
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER if known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if self.log_manager.offline_dirs and self.log_manager.is_offline(topic, index):
            return None, ErrorCode.KAFKA_STORAGE_ERROR
        if not partition.is_leader:
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER
        if current_leader_epoch >= 0 and current_leader_epoch != partition.leader_epoch:
            if current_leader_epoch < partition.leader_epoch:
                return None, ErrorCode.FENCED_LEADER_EPOCH
            return None, ErrorCode.UNKNOWN_LEADER_EPOCH
        return partition, ErrorCode.NONE

    def any_offline(self) -> bool:
        """Whether any replica here is offline (a cheap test before asking per partition)."""
        return bool(self.offline_partitions or self.log_manager.offline_dirs)

    def is_offline(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` is hosted here in a log dir taken offline after a disk error."""
        if tp in self.offline_partitions:
            return True
        return bool(self.log_manager.offline_dirs) and self.log_manager.is_offline(tp.topic, tp.partition)

    def storage_failure(self, partition: Partition, exc: OSError | StorageError, action: str) -> ErrorCode:
        """The error code for a storage failure of ``partition`` during ``action`` ("appending
        records to"). An ``OSError`` is a disk error: the partition's log dir goes offline. A
        ``StorageError`` here means the log was closed or its dir already went offline."""
        tp = partition.tp
        if isinstance(exc, OSError):
            self.log_manager.mark_offline_for(partition.log, f"{action} {tp.topic}-{tp.partition}", exc)
        else:
            log.error("%s %s-%d failed: %s", action, tp.topic, tp.partition, exc)
        return ErrorCode.KAFKA_STORAGE_ERROR

    def __iter__(self) -> Iterator[Partition]:
        return iter(self.partitions.values())

    def load(self) -> None:
        """Open every local replica named by the metadata (each log restored its producer state)."""
        for info in self.metadata.topics.values():
            self.register(self.open_partitions(info))
        for stray in self.log_manager.all_logs():
            if TopicPartition(stray.topic, stray.partition) not in self.partitions:
                log.warning("log directory %s belongs to no known topic; leaving it alone", stray.directory)

    def open_partitions(
        self, info: TopicInfo, first_partition: int = 0, stop: int | None = None
    ) -> list[Partition]:
        """The local replicas of ``info`` from ``first_partition`` (to ``stop``), their logs opened or
        created (directories, metadata files: blocking, so the broker calls this in a worker
        thread; the log manager is thread-safe). Not served until :meth:`register`."""
        config = self.log_config_for(info)
        opened: list[Partition] = []
        for index in range(first_partition, len(info.partitions) if stop is None else stop):
            state = info.partitions[index]
            if self.local_id not in state.replicas:
                continue
            tp = TopicPartition(info.name, index)
            try:
                log_ = self.log_manager.get_or_create_log(info.name, index, info.topic_id, config)
            except (LogDirOfflineError, StorageCorruptionError, OSError) as exc:
                # As Kafka's makeLeaders on a KafkaStorageException: this replica is offline (a
                # log found corrupt at start-up included: it is kept out of service, not served).
                log_dir = self.log_manager.log_dir_of(info.name, index)
                if isinstance(exc, OSError) and log_dir is not None:
                    self.log_manager.mark_dir_offline(log_dir, f"opening the log of {info.name}-{index}", exc)
                else:
                    log.error("the replica of %s-%d is offline: %s", info.name, index, exc)
                self.offline_partitions.add(tp)
                continue
            partition = Partition(tp, info.topic_id, log_, state, self.local_id)
            if partition.is_leader:
                if log_.leader_epochs.latest_epoch is None and log_.log_end_offset == log_.log_start_offset:
                    # Kafka's makeLeader: the new epoch starts at the log end (the checkpoint is
                    # written here, in the worker, not by the first produce on the event loop).
                    log_.maybe_assign_epoch_start_offset(state.leader_epoch, log_.log_end_offset)
                partition.maybe_increment_high_watermark()
            opened.append(partition)
        return opened

    def register(self, partitions: list[Partition]) -> None:
        """Serve partitions :meth:`open_partitions` prepared (event loop; no disk work)."""
        for partition in partitions:
            self.partitions[partition.tp] = partition

    def detach_topic(self, name: str, partition_count: int) -> list[Partition]:
        """Stop serving the topic's local replicas (no disk work); see :meth:`delete_logs`."""
        detached = []
        for index in range(partition_count):
            tp = TopicPartition(name, index)
            self.offline_partitions.discard(tp)
            partition = self.partitions.pop(tp, None)
            if partition is not None:
                detached.append(partition)
        return detached

    def delete_logs(self, partitions: list[Partition]) -> None:
        """Delete the logs of detached replicas (renames and fsyncs: a worker thread's job)."""
        for partition in partitions:
            self.log_manager.delete_log(partition.tp.topic, partition.tp.partition)

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
