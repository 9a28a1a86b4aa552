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

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from broker.cluster.metadata import ClusterMetadata, LeaderHint, PartitionState, TopicInfo
from broker.metrics.stats import IsrChangeCounts
from broker.replica.control import (
    EPOCH_DURING_DELETE,
    NO_EPOCH,
    ControlPlane,
    DiskRunner,
    FetchStart,
    PartitionTransition,
    ReplicaStop,
)
from broker.replica.partition import DEFAULT_MAX_LAG_MS, IsrSender, Partition
from broker.replica.replication_quota import ReplicationQuotas
from broker.types import NO_BROKER, BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from storage import (
    InconsistentTopicIdError,
    Log,
    LogConfig,
    LogDirOfflineError,
    LogManager,
    StorageCorruptionError,
    StorageError,
)

if TYPE_CHECKING:
    from broker.cluster.metadata_cache import MetadataCache
    from broker.replica.log_dir_mover import LogDirMover
    from broker.replica.selector import ReplicaSelector
    from protocol.messages.write_txn_markers_request import WritableTxnMarker
    from protocol.messages.write_txn_markers_response import WritableTxnMarkerResult

log = logging.getLogger(__name__)
_T = TypeVar("_T")
#: (partition, producer id, producer epoch, committed, offset of the marker)
TxnMarkerListener = Callable[[TopicPartition, int, int, bool, int], None]
#: Kafka writes markers with request.timeout.ms (30 s by default) as the append timeout.
DEFAULT_TXN_MARKER_TIMEOUT_MS = 30_000


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
        #: Cluster mode: the controller's view (set by the broker); None on the embedded node.
        self.metadata_cache: MetadataCache | None = None
        #: Cluster mode: the controller epoch last seen, the follower fetchers and leadership
        #: listeners (see :mod:`broker.replica.control`).
        self.control = ControlPlane()
        #: ZooKeeper mode: reads the overrides of topics (``/config/topics/<t>``) whose logs a
        #: LeaderAndIsr is about to create, before the disk work; None: the local metadata's. The
        #: mapping returned stays live (the config watcher updates it): a change applied during
        #: the disk work is caught up afterwards.
        self.fetch_topic_configs: Callable[[list[str]], Awaitable[Mapping[str, Mapping[str, str]]]] | None = (
            None
        )
        #: Cluster mode: where leaders send ISR changes (the AlterPartition manager), and
        #: ``replica.lag.time.max.ms``; set by the broker.
        self.isr_sender: IsrSender | None = None
        self.replica_lag_time_max_ms = DEFAULT_MAX_LAG_MS
        #: Called after a transaction marker (COMMIT/ABORT control batch) is written to a local
        #: partition as leader; the group coordinator completes transactional offset commits there.
        self._txn_marker_listeners: list[TxnMarkerListener] = []
        #: Cluster mode: ``replica.selector.class`` (KIP-392); None: consumers read from leaders.
        self.replica_selector: ReplicaSelector | None = None
        #: Moves between log dirs (AlterReplicaLogDirs); made by the broker at first use.
        self.log_dir_mover: LogDirMover | None = None
        #: How long a marker write waits for replication (Kafka: request.timeout.ms, 30 s).
        self.txn_marker_timeout_ms = DEFAULT_TXN_MARKER_TIMEOUT_MS
        #: The broker's disk workers, for the fsync a marker write owes to flush.messages (None:
        #: not flushed there; the next flush covers it).
        self.disk: DiskRunner | None = None
        #: Committed ISR shrinks and expands of the partitions led here (metrics).
        self.isr_changes = IsrChangeCounts()
        #: Replication throttles (unbounded until configured; the broker's read the topic overrides).
        self.replication_quotas = ReplicationQuotas(local_id)

    def add_txn_marker_listener(self, listener: TxnMarkerListener) -> None:
        """``listener(tp, producer_id, producer_epoch, committed, marker_offset)`` after each marker."""
        self._txn_marker_listeners.append(listener)

    def notify_txn_marker(
        self, tp: TopicPartition, producer_id: int, producer_epoch: int, committed: bool, marker_offset: int
    ) -> None:
        """Tell the listeners that ``producer_id``'s transaction on ``tp`` ended with a marker at
        ``marker_offset`` (a listener's failure is logged, never propagated to the marker write)."""
        for listener in self._txn_marker_listeners:
            try:
                listener(tp, producer_id, producer_epoch, committed, marker_offset)
            except Exception:
                log.exception("transaction marker listener failed for %s-%d", tp[0], tp[1])

    async def write_txn_markers(self, markers: list[WritableTxnMarker]) -> list[WritableTxnMarkerResult]:
        """Append each COMMIT/ABORT marker to each partition it names that this broker leads, with
        acks=-1, and answer per partition once the marker is replicated (or failed); the marker
        listeners hear of each durable marker first. See :mod:`broker.replica.txn_markers`."""
        # Imported at the first marker: a broker without transactions never loads the messages.
        from broker.replica.txn_markers import write_txn_markers

        return await write_txn_markers(self, markers, self.txn_marker_timeout_ms)

    def get(self, tp: TopicPartition) -> Partition | None:
        return self.partitions.get(tp)

    def leader_for(
        self, topic: str, index: int, current_leader_epoch: int = -1
    ) -> tuple[Partition | None, ErrorCode]:
        """The local leader replica of ``topic``-``index``, or the error a client gets instead:
        UNKNOWN_TOPIC_OR_PARTITION (no such partition), NOT_LEADER_OR_FOLLOWER (led elsewhere),
        FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (the caller's leader epoch, when it sends one,
        is older / newer than ours)."""
        return self._local_replica(topic, index, current_leader_epoch, require_leader=True)

    def replica_for_read(
        self, topic: str, index: int, current_leader_epoch: int = -1
    ) -> tuple[Partition | None, ErrorCode]:
        """The local replica of ``topic``-``index``, leader or follower, for a consumer that may
        read from followers (Fetch v11+, KIP-392; Kafka's localLogWithEpochOrThrow without
        requireLeader); the same errors as :meth:`leader_for` but NOT_LEADER_OR_FOLLOWER for a
        follower."""
        return self._local_replica(topic, index, current_leader_epoch, require_leader=False)

    def _local_replica(
        self, topic: str, index: int, current_leader_epoch: int, *, require_leader: bool
    ) -> tuple[Partition | None, ErrorCode]:
        partition = self.partitions.get((topic, index))  # type: ignore[call-overload]
        if partition is None:
            if self.offline_partitions and TopicPartition(topic, index) in self.offline_partitions:
                return None, ErrorCode.KAFKA_STORAGE_ERROR
            tp = TopicPartition(topic, index)
            cache = self.metadata_cache
            known = (cache.partition(tp) if cache is not None else self.metadata.partition(tp)) is not None
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER if known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if self.log_manager.offline_dirs and self.log_manager.is_offline(topic, index):
            return None, ErrorCode.KAFKA_STORAGE_ERROR
        if require_leader and not partition.is_leader:
            return None, ErrorCode.NOT_LEADER_OR_FOLLOWER
        if current_leader_epoch >= 0 and current_leader_epoch != partition.leader_epoch:
            if current_leader_epoch < partition.leader_epoch:
                return None, ErrorCode.FENCED_LEADER_EPOCH
            return None, ErrorCode.UNKNOWN_LEADER_EPOCH
        return partition, ErrorCode.NONE

    def preferred_read_replica(
        self, partition: Partition, client_rack: str, fetch_offset: int, listener: str, now_ms: int
    ) -> int:
        """Kafka's findPreferredReadReplica for a consumer's fetch (v11+) from the leader: the
        follower ``replica.selector.class`` picks among the committed ISR members whose logs cover
        ``fetch_offset`` and that are alive on ``listener``, or -1 (read from the leader)."""
        selector = self.replica_selector
        leader_state = partition.leader_state
        cache = self.metadata_cache
        if selector is None or leader_state is None or cache is None or not partition.is_leader:
            return -1
        # Cluster mode with replica.selector.class only: not loaded by an embedded node.
        from broker.replica.selector import ReplicaView, preferred_read_replica

        followers: list[ReplicaView] = []
        for broker_id, state in leader_state.followers.items():
            if broker_id not in leader_state.isr:
                continue  # a lagging follower might never catch up with the consumer
            if not state.log_start_offset <= fetch_offset <= state.log_end_offset:
                continue
            endpoint = cache.alive_endpoint(broker_id, listener)
            if endpoint is None:
                continue  # Kafka's Node.noNode(): never chosen
            followers.append(
                ReplicaView(broker_id, endpoint.rack, state.log_end_offset, now_ms - state.last_caught_up_ms)
            )
        own = cache.alive_endpoint(self.local_id, listener)
        leader = ReplicaView(self.local_id, own.rack if own else None, partition.log_end_offset, 0)
        return preferred_read_replica(selector, client_rack, leader, followers)

    def current_leader(self, tp: TopicPartition, listener: str) -> LeaderHint:
        """Kafka's getCurrentLeader, for the KIP-951 hints of a NOT_LEADER_OR_FOLLOWER (or fenced)
        answer: the hosted replica's leader and epoch, else the metadata cache's; the leader's
        endpoint on ``listener`` when the cache knows it alive."""
        partition = self.partitions.get(tp)
        cache = self.metadata_cache
        if partition is not None:
            leader, epoch = int(partition.state.leader), partition.leader_epoch
        elif cache is not None and (state := cache.partition(tp)) is not None:
            leader, epoch = int(state.leader), state.leader_epoch
        else:
            return LeaderHint()
        leader = max(leader, -1)
        endpoint = cache.alive_endpoint(leader, listener) if cache is not None and leader >= 0 else None
        return LeaderHint(leader, epoch, endpoint)

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

    # -- cluster mode: what the controller asks (LeaderAndIsr, StopReplica) -------------------------

    async def become_leader_or_follower(
        self,
        controller_id: int,
        controller_epoch: int,
        transitions: list[PartitionTransition],
        disk: DiskRunner,
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """:meth:`_become_leader_or_follower`, carried through to the end even when the caller is
        cancelled (the controller's connection closed, as when the controller itself shuts down):
        the new epochs are applied before the disk work, so a change stopped half-way would keep
        them without handing followers to their new leaders' fetchers, and the next controller's
        LeaderAndIsr at the same epoch would be ignored as not newer."""
        return await _uncancellable(
            self._become_leader_or_follower(controller_id, controller_epoch, transitions, disk)
        )

    async def _become_leader_or_follower(
        self,
        controller_id: int,
        controller_epoch: int,
        transitions: list[PartitionTransition],
        disk: DiskRunner,
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """Kafka's ReplicaManager.becomeLeaderOrFollower: the request-level error (an older
        controller epoch than the latest seen: STALE_CONTROLLER_EPOCH) and one error per partition.

        Per partition: a replica in an offline log dir answers KAFKA_STORAGE_ERROR; a topic id
        other than the hosted replica's, INCONSISTENT_TOPIC_ID; a leader epoch not newer than the
        hosted one, STALE_CONTROLLER_EPOCH (as Kafka, for an older or equal epoch); a replica list
        without this broker, UNKNOWN_TOPIC_OR_PARTITION. The others become leaders or followers:
        new replicas get a log (topic id in ``partition.metadata``); a new leader records its
        epoch at its log end in the leader-epoch cache (disk work, in ``disk``); a follower keeps
        its log, stops answering as leader and is handed to the fetcher seam. A follower whose
        leader the metadata cache does not know alive only gets its log, as Kafka.
        """
        control = self.control
        async with control.lock:
            if controller_epoch < control.controller_epoch:
                log.warning(
                    "ignoring LeaderAndIsr from controller %d: its epoch %d is older than %d",
                    controller_id,
                    controller_epoch,
                    control.controller_epoch,
                )
                return ErrorCode.STALE_CONTROLLER_EPOCH, {}
            control.controller_epoch = controller_epoch
            # Answered in the request's order; every entry is overwritten below.
            errors: dict[TopicPartition, ErrorCode] = {t.tp: ErrorCode.NONE for t in transitions}
            accepted: list[PartitionTransition] = []
            for transition in transitions:
                code = self._check_transition(transition)
                if code is None:
                    accepted.append(transition)
                else:
                    errors[transition.tp] = code
            # Hosted replicas change role at once: no append as the old leader after this point.
            changing = {id(t) for t in accepted if self._leader_known(t)}
            for transition in accepted:
                if id(transition) not in changing:
                    continue
                partition = self.partitions.get(transition.tp)
                if partition is not None:
                    self._apply(partition, transition)
            work = [(t, self.partitions.get(t.tp), t.leader == self.local_id) for t in accepted]
            overrides = await self._overrides_of_new(work)
            new_topics = {t.tp.topic for t, existing, _ in work if existing is None}
            used = {topic: dict(overrides[topic]) for topic in new_topics if topic in overrides}
            opened = await disk.run(self._open_logs, work, used) if work else {}
            self._catch_up_configs(work, opened, used, overrides)
            leaders: list[Partition] = []
            followers: list[Partition] = []
            for transition, existing, _ in work:
                outcome = opened[transition.tp]
                if not isinstance(outcome, Log):
                    errors[transition.tp] = self._open_failure(transition.tp, outcome)
                    continue
                errors[transition.tp] = ErrorCode.NONE
                partition = existing
                if partition is None:
                    topic_id = transition.topic_id or outcome.topic_id or uuid.UUID(int=0)
                    unknown = PartitionState(list(transition.replicas), NO_BROKER, -1, list(transition.isr))
                    partition = Partition(transition.tp, topic_id, outcome, unknown, self.local_id)
                    if id(transition) in changing:
                        self._apply(partition, transition)
                    self.offline_partitions.discard(transition.tp)
                    self.partitions[transition.tp] = partition
                if id(transition) not in changing:
                    continue
                (leaders if partition.is_leader else followers).append(partition)
            self._hand_over(leaders, followers)
            return ErrorCode.NONE, errors

    def _check_transition(self, transition: PartitionTransition) -> ErrorCode | None:
        tp = transition.tp
        if self.is_offline(tp):
            log.warning("ignoring LeaderAndIsr for %s: its replica is in an offline log dir", tp)
            return ErrorCode.KAFKA_STORAGE_ERROR
        partition = self.partitions.get(tp)
        current_epoch = partition.leader_epoch if partition is not None else -1
        hosted_id = partition.topic_id if partition is not None and partition.topic_id.int else None
        if transition.topic_id is not None and hosted_id is not None and transition.topic_id != hosted_id:
            log.error(
                "topic id %s of %s does not match %s from the controller", hosted_id, tp, transition.topic_id
            )
            return ErrorCode.INCONSISTENT_TOPIC_ID
        if transition.leader_epoch <= current_epoch:
            log.info(
                "ignoring LeaderAndIsr for %s: leader epoch %d is not newer than %d",
                tp,
                transition.leader_epoch,
                current_epoch,
            )
            return ErrorCode.STALE_CONTROLLER_EPOCH
        if self.local_id not in transition.replicas:
            log.warning("ignoring LeaderAndIsr for %s: broker %d is not a replica", tp, self.local_id)
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return None

    def _leader_known(self, transition: PartitionTransition) -> bool:
        """A leader, or a follower whose leader is alive in the metadata cache (Kafka's
        makeFollowers changes nothing but the log for a follower of an unknown leader)."""
        if transition.leader == self.local_id or self.metadata_cache is None:
            return True
        if self.metadata_cache.has_alive_broker(transition.leader):
            return True
        log.error(
            "cannot make %s a follower: its leader %d is not alive in the metadata cache",
            transition.tp,
            transition.leader,
        )
        return False

    async def _overrides_of_new(
        self, work: list[tuple[PartitionTransition, Partition | None, bool]]
    ) -> Mapping[str, Mapping[str, str]]:
        """The topic overrides of the replicas about to get a log (as Kafka's createLog reads
        them from ZooKeeper), fetched on the loop before the disk work."""
        new_topics = sorted({t.tp.topic for t, existing, _ in work if existing is None})
        if self.fetch_topic_configs is None or not new_topics:
            return {}
        return await self.fetch_topic_configs(new_topics)

    def _catch_up_configs(
        self,
        work: list[tuple[PartitionTransition, Partition | None, bool]],
        opened: Mapping[TopicPartition, Log | BaseException],
        used: Mapping[str, Mapping[str, str]],
        latest: Mapping[str, Mapping[str, str]],
    ) -> None:
        """A config change applied while the new logs were being created (``latest`` is kept up
        to date by the config watcher) missed them: they get it now."""
        for transition, existing, _ in work:
            tp = transition.tp
            new_log = opened.get(tp)
            now = latest.get(tp.topic)
            if (
                existing is None
                and isinstance(new_log, Log)
                and now is not None
                and now != used.get(tp.topic)
            ):
                new_log.update_config(self._config_for(tp.topic, transition.topic_id, now))

    def _open_logs(
        self,
        work: list[tuple[PartitionTransition, Partition | None, bool]],
        overrides: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[TopicPartition, Log | BaseException]:
        """Open or create the logs of the transitions, and start the leaders' new epochs at their
        log ends (a disk worker's job: directories, metadata files, the epoch checkpoint)."""
        results: dict[TopicPartition, Log | BaseException] = {}
        for transition, existing, becomes_leader in work:
            tp = transition.tp
            try:
                if existing is not None:
                    log_ = existing.log
                else:
                    config = self._config_for(tp.topic, transition.topic_id, (overrides or {}).get(tp.topic))
                    log_ = self.log_manager.get_or_create_log(
                        tp.topic, tp.partition, transition.topic_id, config
                    )
                if becomes_leader:
                    # Kafka's makeLeader: the new epoch starts at the log end. An append under the
                    # new epoch since the state change already started it; this is then a no-op.
                    log_.maybe_assign_epoch_start_offset(transition.leader_epoch, log_.log_end_offset)
                results[tp] = log_
            except (StorageError, OSError, ValueError) as exc:
                results[tp] = exc
        return results

    def _config_for(
        self, topic: str, topic_id: uuid.UUID | None, overrides: Mapping[str, str] | None = None
    ) -> LogConfig:
        # ZooKeeper mode passes the overrides read from /config/topics; otherwise the local
        # metadata's, and the broker's defaults for a topic it does not know.
        if overrides is not None:
            return self.log_config_for(TopicInfo(topic, topic_id or uuid.UUID(int=0), [], dict(overrides)))
        info = self.metadata.topic(topic) or TopicInfo(topic, topic_id or uuid.UUID(int=0), [])
        return self.log_config_for(info)

    def _open_failure(self, tp: TopicPartition, exc: BaseException) -> ErrorCode:
        if isinstance(exc, InconsistentTopicIdError):
            log.error("cannot host %s: %s", tp, exc)
            return ErrorCode.INCONSISTENT_TOPIC_ID
        if isinstance(exc, OSError):
            log_dir = self.log_manager.log_dir_of(tp.topic, tp.partition)
            if log_dir is not None:
                self.log_manager.mark_dir_offline(log_dir, f"opening the log of {tp}", exc)
        elif isinstance(exc, ValueError):
            log.error("cannot host %s: %s", tp, exc)
            return ErrorCode.INVALID_REQUEST
        else:
            log.error("the replica of %s is offline: %s", tp, exc)
        self.offline_partitions.add(tp)
        return ErrorCode.KAFKA_STORAGE_ERROR

    def _hand_over(self, leaders: list[Partition], followers: list[Partition]) -> None:
        """Tell the fetcher seam and the leadership listeners what changed."""
        fetchers = self.control.fetchers
        if fetchers is not None:
            fetchers.remove_partitions({p.tp for p in leaders} | {p.tp for p in followers})
            if followers:
                fetchers.add_partitions(
                    {
                        p.tp: FetchStart(p.topic_id, p.state.leader, p.leader_epoch, p.log_end_offset)
                        for p in followers
                    }
                )
        mover = self.log_dir_mover
        for partition in (*leaders, *followers):
            partition.wake_waiters()
            if mover is not None:
                mover.start(partition.tp)  # a move a stop interrupted goes on
        self._tell_listeners(leaders, followers)

    def _apply(self, partition: Partition, transition: PartitionTransition) -> None:
        """The partition's new state from the controller (a fresh object: in the embedded mode the
        old one is shared with the local metadata), and its leader or follower role."""
        was_leader = partition.is_leader
        partition.state = PartitionState(
            list(transition.replicas),
            transition.leader,
            transition.leader_epoch,
            list(transition.isr),
            transition.partition_epoch,
        )
        if transition.leader == self.local_id:
            partition.isr_sender = self.isr_sender
            partition.isr_changes = self.isr_changes
            partition.isr_eligible = self._isr_eligible
            partition.max_lag_ms = self.replica_lag_time_max_ms
            partition.make_leader(was_leader, self.log_manager.clock.milliseconds())
        else:
            partition.make_follower()

    def _isr_eligible(self, broker_id: BrokerId) -> bool:
        """Kafka's isReplicaIsrEligible in ZooKeeper mode: the broker is alive."""
        cache = self.metadata_cache
        return cache is None or cache.has_alive_broker(broker_id)

    def maybe_shrink_isr(self) -> None:
        """Kafka's isr-expiration task (every ``replica.lag.time.max.ms`` / 2, on the loop)."""
        now_ms = self.log_manager.clock.milliseconds()
        for partition in list(self.partitions.values()):
            if partition.leader_state is not None and partition.is_leader:
                try:
                    partition.maybe_shrink_isr(now_ms)
                except Exception:
                    log.exception("ISR expiration of %s failed", partition.tp)

    def _tell_listeners(self, leading: list[Partition], not_leading: list[Partition]) -> None:
        for listener in list(self.control.listeners):
            try:
                listener(leading, not_leading)
            except Exception:
                log.exception("leadership listener %r failed", listener)

    async def stop_replicas(
        self, controller_id: int, controller_epoch: int, stops: list[ReplicaStop], disk: DiskRunner
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """:meth:`_stop_replicas`, carried through to the end even when the caller is cancelled."""
        return await _uncancellable(self._stop_replicas(controller_id, controller_epoch, stops, disk))

    async def _stop_replicas(
        self, controller_id: int, controller_epoch: int, stops: list[ReplicaStop], disk: DiskRunner
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """Kafka's ReplicaManager.stopReplicas: STALE_CONTROLLER_EPOCH for an older controller, else
        per partition KAFKA_STORAGE_ERROR (offline replica), FENCED_LEADER_EPOCH (a leader epoch
        older than the hosted one; -1 and -2 skip the check), or NONE. Stopped replicas leave the
        fetcher; with ``delete`` they stop being served and their logs are deleted in ``disk``
        (also when no replica is hosted here but a log is left on disk)."""
        control = self.control
        async with control.lock:
            if controller_epoch < control.controller_epoch:
                log.warning(
                    "ignoring StopReplica from controller %d: its epoch %d is older than %d",
                    controller_id,
                    controller_epoch,
                    control.controller_epoch,
                )
                return ErrorCode.STALE_CONTROLLER_EPOCH, {}
            control.controller_epoch = controller_epoch
            errors: dict[TopicPartition, ErrorCode] = {s.tp: ErrorCode.NONE for s in stops}
            stopped: list[ReplicaStop] = []
            for stop in stops:
                partition = self.partitions.get(stop.tp)
                if self.is_offline(stop.tp):
                    errors[stop.tp] = ErrorCode.KAFKA_STORAGE_ERROR
                elif (
                    partition is not None
                    and stop.leader_epoch not in (NO_EPOCH, EPOCH_DURING_DELETE)
                    and stop.leader_epoch < partition.leader_epoch
                ):
                    errors[stop.tp] = ErrorCode.FENCED_LEADER_EPOCH
                else:
                    stopped.append(stop)
                    errors[stop.tp] = ErrorCode.NONE
            if control.fetchers is not None and stopped:
                control.fetchers.remove_partitions({s.tp for s in stopped})
            to_delete = [s.tp for s in stopped if s.delete]
            detached: list[Partition] = []
            for tp in to_delete:
                partition = self.partitions.pop(tp, None)
                if partition is not None:
                    # No longer anyone's replica here: waiting fetches answer NOT_LEADER_OR_FOLLOWER.
                    partition.state = PartitionState(list(partition.state.replicas), NO_BROKER, -1, [])
                    partition.make_follower()
                    partition.wake_waiters()
                    detached.append(partition)
            if detached:
                self._tell_listeners([], detached)
            if to_delete:
                failures = await disk.run(self._delete_local_logs, to_delete)
                for tp, exc in failures.items():
                    log.error("deleting the replica of %s failed: %s", tp, exc)
                    errors[tp] = ErrorCode.KAFKA_STORAGE_ERROR
            return ErrorCode.NONE, errors

    def _delete_local_logs(self, partitions: list[TopicPartition]) -> dict[TopicPartition, BaseException]:
        """Delete the logs of stopped replicas (renames and fsyncs: a disk worker's job)."""
        failures: dict[TopicPartition, BaseException] = {}
        for tp in partitions:
            try:
                self.log_manager.delete_log(tp.topic, tp.partition)
            except (StorageError, OSError) as exc:
                failures[tp] = exc
        return failures


_RUNNING: set[asyncio.Task[object]] = set()


async def _uncancellable(work: Awaitable[_T]) -> _T:
    """Await ``work`` as a task of its own that a cancellation of the caller does not stop (it is
    kept referenced until done; a failure nobody awaits any more is logged)."""
    task: asyncio.Task[_T] = asyncio.ensure_future(work)
    _RUNNING.add(task)

    def done(t: asyncio.Task[_T]) -> None:
        _RUNNING.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("a controller request's state change failed", exc_info=t.exception())

    task.add_done_callback(done)
    return await asyncio.shield(task)
