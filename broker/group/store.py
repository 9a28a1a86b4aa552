"""``__consumer_offsets`` as the coordinator sees it: which partitions it owns or is loading,
the cache of groups, the topic's creation, and durable appends.

* The topic is created the first time a client looks for a group coordinator, with
  ``offsets.topic.num.partitions`` partitions, ``cleanup.policy=compact``,
  ``compression.type=producer`` and ``segment.bytes=offsets.topic.segment.bytes``. A standalone
  broker (no ``zookeeper.connect``) creates it with ``min(offsets.topic.replication.factor,
  live brokers)`` replicas and warns when that is fewer than configured; in cluster mode too few
  live brokers is an error (COORDINATOR_NOT_AVAILABLE), as in Kafka.
* Leading a partition means owning its groups: on election the partition is replayed
  (:mod:`broker.group.loader`) and its groups answer COORDINATOR_LOAD_IN_PROGRESS until done; on
  resignation its groups are dropped from the cache.
* :meth:`OffsetsTopic.append` writes one batch at once (so the record matches the state it was
  built from) and returns an awaitable that completes when the batch is below the high
  watermark, i.e. durable in Kafka's acks=all sense.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from broker.cluster.metadata import TopicInfo
from broker.cluster.topics import TopicError
from broker.coordinator.partitions import AppendResult, CoordinatorPartitions
from broker.group import OFFSETS_TOPIC
from broker.group.config import GroupConfig
from broker.group.group import ClassicGroup
from broker.group.hashing import partition_for
from broker.group.loader import build_groups, replay
from broker.group.records import NO_SEQUENCE, OFFSET_COMMIT_BASE_SEQUENCE, TxnProducer, build_records
from broker.replica.partition import Partition
from protocol.error_codes import ErrorCode
from storage.clock import Clock
from storage.producer_state import VerificationGuard

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)


GroupHook = Callable[[ClassicGroup], None]
Entries = Sequence[tuple[bytes, bytes | None]]


def offsets_topic_configs(config: GroupConfig) -> dict[str, str]:
    """The overrides ``__consumer_offsets`` is created with (Kafka's groupMetadataTopicConfigs)."""
    return {
        "cleanup.policy": "compact",
        "compression.type": "producer",
        "segment.bytes": str(config.segment_bytes),
    }


class OffsetsTopic(CoordinatorPartitions):
    topic = OFFSETS_TOPIC

    def __init__(
        self,
        broker: Broker,
        config: GroupConfig,
        clock: Clock,
        on_loaded: GroupHook,
        on_unloaded: GroupHook,
    ) -> None:
        super().__init__(broker, clock)
        self.config = config
        self.on_loaded = on_loaded
        self.on_unloaded = on_unloaded
        self.groups: dict[str, ClassicGroup] = {}
        self.owned: set[int] = set()
        self.loading: set[int] = set()
        self.epochs: dict[int, int] = {}
        #: Producer id -> groups holding its pending transactional offsets (Kafka's
        #: openGroupsForProducer), so that a marker finds its groups without a scan.
        self.producer_groups: dict[int, set[str]] = {}
        #: Markers heard for a partition while it loads: (producer id, committed, marker offset).
        self._markers_while_loading: dict[int, list[tuple[int, bool, int]]] = {}
        #: Called with (index, producer id, committed) for each marker of a partition that
        #: the replay did not see (it was written while the partition loaded).
        self.on_marker_after_load: Callable[[int, int, bool], None] | None = None

    # -- partitions -------------------------------------------------------------------------------

    @property
    def partition_count(self) -> int:
        """The topic's partition count once it exists (what groups hash onto), else the config."""
        info = self.info
        return len(info.partitions) if info is not None else self.config.num_partitions

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.partition_count)

    def is_local(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self.owned

    def is_loading(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self.loading

    @property
    def any_loading(self) -> bool:
        return bool(self.loading)

    async def ensure_topic(self) -> TopicInfo:
        """The topic, created (and its local partitions loaded, in disk workers) if it does not
        exist yet, once for all concurrent callers. Raises :class:`TopicError` when it cannot be
        created."""
        if self._creation is None:
            info = await self.broker.topics.created(OFFSETS_TOPIC)
            if info is not None:
                return info
        return await self._create_once(self._create_topic)

    async def _create_topic(self) -> TopicInfo:
        broker = self.broker
        live = len(broker.live_broker_ids())
        rf = self.config.replication_factor
        if rf > live and not broker.config.standalone:
            raise TopicError(
                ErrorCode.COORDINATOR_NOT_AVAILABLE,
                f"Number of alive brokers '{live}' does not meet the required replication factor "
                f"'{rf}' for the offsets topic (configured via 'offsets.topic.replication.factor').",
            )
        rf = self._standalone_replication_factor(rf, live, "offsets.topic.replication.factor")
        created = await broker.topics.create_async(
            OFFSETS_TOPIC,
            self.config.num_partitions,
            rf,
            configs=offsets_topic_configs(self.config),
            allow_internal=True,
        )
        assert created is not None
        self._take_over_led(created.partitions)
        return created

    def start(self) -> None:
        """Take over every local partition this broker leads (a restart is a replay)."""
        info = self.info
        if info is not None:
            self._take_over_led(info.partitions)

    def on_elected(self, index: int, epoch: int) -> None:
        """This broker now leads partition ``index``: load its groups (at once when it is empty)."""
        if self.epochs.get(index, -1) > epoch or index in self.loading:
            return
        self.epochs[index] = epoch
        replica = self.replica(index)
        if replica is None:
            log.warning("elected for %s-%d, but it has no local replica", OFFSETS_TOPIC, index)
            return
        if replica.log_end_offset <= replica.log_start_offset:
            self.owned.add(index)
            return
        self.loading.add(index)
        self._markers_while_loading[index] = []
        self._start_load(index, self._load(index, replica))

    async def _load(self, index: int, replica: Partition) -> None:
        started = self.clock.milliseconds()
        try:
            state = await replay(replica.log, self.config.load_buffer_size)
            if self.shutting_down or index not in self.loading:
                return
            groups = build_groups(state, self.clock.milliseconds())
            for group in groups:
                if group.group_id not in self.groups:
                    self.groups[group.group_id] = group
                    for producer_id in group.active_producers:
                        self.add_producer_group(producer_id, group.group_id)
                    self.on_loaded(group)
            self._apply_markers_heard_while_loading(index, state.end_offset)
            log.info(
                "loaded %d groups (%d records, %d bytes) from %s-%d in %d ms",
                len(groups),
                state.records,
                state.bytes,
                OFFSETS_TOPIC,
                index,
                self.clock.milliseconds() - started,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("error loading offsets and group metadata from %s-%d", OFFSETS_TOPIC, index)
        finally:
            self._tasks.pop(index, None)
            self._markers_while_loading.pop(index, None)
            if index in self.loading:
                self.loading.discard(index)
                self.owned.add(index)

    def note_marker_while_loading(
        self, index: int, producer_id: int, committed: bool, marker_offset: int
    ) -> bool:
        """Keep a marker of a partition being loaded for after the replay; False if not loading."""
        queued = self._markers_while_loading.get(index)
        if queued is None:
            return False
        queued.append((producer_id, committed, marker_offset))
        return True

    def _apply_markers_heard_while_loading(self, index: int, replayed_end: int) -> None:
        """The replay read the log up to ``replayed_end``: markers written after it end the
        transactions the loaded groups still hold as pending."""
        for producer_id, committed, marker_offset in self._markers_while_loading.get(index, []):
            if marker_offset >= replayed_end and self.on_marker_after_load is not None:
                self.on_marker_after_load(index, producer_id, committed)

    def add_producer_group(self, producer_id: int, group_id: str) -> None:
        self.producer_groups.setdefault(producer_id, set()).add(group_id)

    def remove_producer_group(self, producer_id: int, group_id: str) -> None:
        groups = self.producer_groups.get(producer_id)
        if groups is not None:
            groups.discard(group_id)
            if not groups:
                del self.producer_groups[producer_id]

    def groups_of_producer(self, producer_id: int, index: int) -> list[str]:
        """The groups on partition ``index`` with pending offsets of ``producer_id``."""
        count = self.partition_count
        return [g for g in self.producer_groups.get(producer_id, ()) if partition_for(g, count) == index]

    def on_resigned(self, index: int) -> None:
        """Another broker leads partition ``index`` now: forget its groups."""
        self.owned.discard(index)
        self.loading.discard(index)
        self._markers_while_loading.pop(index, None)
        self._cancel_load(index)
        count = self.partition_count
        for group_id, group in list(self.groups.items()):
            if partition_for(group_id, count) == index:
                self.on_unloaded(group)
                del self.groups[group_id]
                for producer_id in group.active_producers:
                    self.remove_producer_group(producer_id, group_id)

    # -- groups -----------------------------------------------------------------------------------

    def get(self, group_id: str) -> ClassicGroup | None:
        return self.groups.get(group_id)

    def add(self, group: ClassicGroup) -> ClassicGroup:
        return self.groups.setdefault(group.group_id, group)

    # -- appends ----------------------------------------------------------------------------------

    def append(
        self,
        group_id: str,
        entries: Entries,
        txn: TxnProducer | None = None,
        verification_guard: VerificationGuard | None = None,
        *,
        offset_commit: bool = False,
    ) -> Awaitable[AppendResult]:
        """Write ``entries`` to the group's partition now, as one batch (transactional, in
        ``txn``'s name, when given, then presenting its KIP-890 ``verification_guard``; numbered
        from sequence 0 for an ``offset_commit``, as Kafka's); await the result for durability."""
        sequence = OFFSET_COMMIT_BASE_SEQUENCE if offset_commit else NO_SEQUENCE
        codec = self.config.compression_codec
        return self.write_batch(
            self.partition_for(group_id),
            lambda: build_records(entries, self.clock.milliseconds(), codec, txn, base_sequence=sequence),
            self.config.commit_timeout_ms,
            "group",
            verification_guard,
        )


def group_write_error(error: ErrorCode) -> ErrorCode:
    """How a failed group-metadata write is reported to the members (Kafka's storeGroup)."""
    if error in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if error == ErrorCode.REQUEST_TIMED_OUT:
        return ErrorCode.REBALANCE_IN_PROGRESS
    if error in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return error


def commit_write_error(error: ErrorCode) -> ErrorCode:
    """How a failed offset write is reported (Kafka's maybeConvertOffsetCommitError)."""
    if error == ErrorCode.NETWORK_EXCEPTION:
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    if error in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if error in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.INVALID_COMMIT_OFFSET_SIZE
    return error
