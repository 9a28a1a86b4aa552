"""Replica fetchers: followers copy their leaders' logs with the ordinary Fetch API (issue 13).

As Kafka's ReplicaFetcherManager / ReplicaFetcherThread, on the event loop instead of threads:

- :class:`ReplicaFetcherManager` implements :class:`~broker.replica.control.FollowerFetching`.
  It keeps ``num.replica.fetchers`` fetchers per leader; a partition goes to fetcher
  ``abs(31 * javaHash(topic) + partition) % num.replica.fetchers`` (Kafka's getFetcherId).
- :class:`ReplicaFetcher` is one asyncio task with one connection to its leader's inter-broker
  listener (endpoint from the metadata cache). Its loop:

  1. **Truncation** (KIP-101 / KIP-279 / KIP-320), for partitions just handed over. As Kafka
     3.9, a log with a leader epoch fetches at once with ``last_fetched_epoch`` and a leader
     whose log diverged answers a ``diverging_epoch`` instead of records; the follower truncates
     to it (:func:`~broker.replica.truncation.truncation_for`) and fetches again. A log without
     epochs is truncated to its high watermark. With ``truncate_on_fetch`` off, the follower asks
     OffsetForLeaderEpoch (v4, ``replica_id`` set) with its latest epoch first, again while the
     answer names an epoch it lacks.
  2. **Fetch** (v17 as Kafka 3.9's IBP, v12 when a topic id is unknown): ``replica_state`` (v15+)
     or ``replica_id`` names this broker. Fetch sessions (:mod:`~broker.replica.fetch_session`)
     when the leader offers them.
  3. **Append**: the response's record bytes (memoryviews into the response frame, no copy) go
     to :meth:`storage.Log.append_as_follower` in one ``pwrite``; the follower's high watermark
     becomes ``min(leader HW, own LEO)``, its log start follows the leader's, waiters are woken.

  Errors: OFFSET_OUT_OF_RANGE asks the leader's log start and end (ListOffsets) and truncates
  (:func:`~broker.replica.truncation.out_of_range_reset`); FENCED_LEADER_EPOCH drops the
  partition until the next LeaderAndIsr; other partition errors (UNKNOWN_LEADER_EPOCH,
  NOT_LEADER_OR_FOLLOWER, ...) and connection failures back off ``replica.fetch.backoff.ms``.

Disk work off the loop: truncations, log-start moves and appends that bring a new leader epoch
(the epoch checkpoint is fsync'd) run in the broker's disk workers, under the replica manager's
state-change lock so that no LeaderAndIsr changes the partition's role meanwhile. Plain appends
run on the loop, as a leader's do (page cache only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections.abc import Callable
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from broker.network.client import ClientConfig, ClientError, NetworkClient
from broker.replica.control import DiskRunner, FetchStart
from broker.replica.fetch_session import FetchSession, fetch_fields
from broker.replica.truncation import ResetKind, Truncation, out_of_range_reset, truncation_for
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
    ForgottenTopic,
    ReplicaState,
)
from protocol.messages.fetch_response import FetchResponse, PartitionData
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from storage import Log, StorageError
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.cluster.metadata_cache import MetadataCache
    from broker.config import BrokerConfig
    from broker.replica.manager import ReplicaManager
    from broker.replica.partition import Partition

log = logging.getLogger(__name__)

#: Versions a Kafka 3.9 follower sends (MetadataVersion IBP_3_9_IV0).
FETCH_VERSION = 17
FETCH_VERSION_WITHOUT_IDS = 12
OFFSET_FOR_LEADER_EPOCH_VERSION = 4
LIST_OFFSETS_VERSION = 9
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
ZERO_UUID = uuid.UUID(int=0)
#: Seconds between fetch requests that look at every partition's fetch fields (see _build_fetch).
FULL_LOOK_S = 1.0
#: A batch header's partition leader epoch (bytes 12-15) and its length (bytes 8-11).
_LENGTH_AND_EPOCH = struct.Struct(">ii")

# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetcherSettings:
    """The broker keys a follower fetches by."""

    max_bytes: int = 1024 * 1024  # replica.fetch.max.bytes, per partition
    response_max_bytes: int = 10 * 1024 * 1024  # replica.fetch.response.max.bytes
    max_wait_ms: int = 500  # replica.fetch.wait.max.ms
    min_bytes: int = 1  # replica.fetch.min.bytes
    backoff_ms: int = 1000  # replica.fetch.backoff.ms
    num_fetchers: int = 1  # num.replica.fetchers
    #: Kafka 3.9 (IBP >= 2.7): a follower whose log has a leader epoch starts fetching at once
    #: with ``last_fetched_epoch`` and truncates on the leader's ``diverging_epoch``; False asks
    #: OffsetForLeaderEpoch first (Kafka before 2.7, and what a log without epochs does anyway).
    truncate_on_fetch: bool = True

    @classmethod
    def from_config(cls, config: BrokerConfig) -> FetcherSettings:
        def get(name: str) -> int:
            value = config.get(name)
            assert isinstance(value, int), (name, value)
            return value

        return cls(
            max_bytes=get("replica.fetch.max.bytes"),
            response_max_bytes=get("replica.fetch.response.max.bytes"),
            max_wait_ms=get("replica.fetch.wait.max.ms"),
            min_bytes=get("replica.fetch.min.bytes"),
            backoff_ms=get("replica.fetch.backoff.ms"),
            num_fetchers=max(1, get("num.replica.fetchers")),
        )


def java_string_hash(value: str) -> int:
    """Java's String.hashCode (a signed 32-bit int) over UTF-16 code units."""
    h = 0
    data = value.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def fetcher_id_for(tp: TopicPartition, num_fetchers: int) -> int:
    """Kafka's AbstractFetcherManager.getFetcherId: ``Utils.abs(31 * topic.hashCode + partition)
    % numFetchers`` in 32-bit arithmetic (Utils.abs maps MIN_VALUE to 0)."""
    value = (31 * java_string_hash(tp.topic) + tp.partition) & 0xFFFFFFFF
    if value & 0x80000000:
        value = 0 if value == 0x80000000 else (1 << 32) - value
    return value % num_fetchers


# -- per-partition state ---------------------------------------------------------------------------


@dataclass(slots=True)
class PartitionFetchState:
    """One partition a fetcher replicates (Kafka's PartitionFetchState)."""

    topic_id: uuid.UUID | None
    leader_epoch: int
    fetch_offset: int
    truncating: bool = True
    #: Loop time before which the partition is not fetched (backoff after an error).
    delayed_until: float = 0.0
    #: The leader's high watermark minus our fetch offset after the last answer (None before
    #: one): 0 is Kafka's isReplicaInSync, which exempts the partition from the follower throttle.
    lag: int | None = None


@dataclass(slots=True)
class FetcherStats:
    """Counters a fetcher keeps (tests and the bench read them)."""

    fetches: int = 0
    bytes_appended: int = 0
    batches_appended: int = 0
    truncations: int = 0
    errors: int = 0


# -- the manager -----------------------------------------------------------------------------------


class ReplicaFetcherManager:
    """Kafka's ReplicaFetcherManager: followers to fetchers, one set of fetchers per leader."""

    def __init__(
        self,
        local_id: BrokerId,
        replicas: ReplicaManager,
        metadata_cache: MetadataCache,
        settings: FetcherSettings,
        client_config: Callable[[int], ClientConfig],
        listener: str,
        broker_epoch: Callable[[], int],
        disk: DiskRunner,
    ) -> None:
        self.local_id = local_id
        self.replicas = replicas
        self.metadata_cache = metadata_cache
        self.settings = settings
        self.client_config = client_config
        self.listener = listener
        self.broker_epoch = broker_epoch
        self.disk = disk
        self.fetchers: dict[tuple[BrokerId, int], ReplicaFetcher] = {}
        self._closed = False

    @classmethod
    def for_broker(cls, broker: Broker) -> ReplicaFetcherManager:
        """The manager of a cluster-mode :class:`broker.app.Broker`."""
        config = broker.config
        return cls(
            broker.node_id,
            broker.replica_manager,
            broker.metadata_cache,
            FetcherSettings.from_config(config),
            lambda fetcher_id: ClientConfig.for_replica_fetcher(config, fetcher_id),
            config.inter_broker_listener_name,
            lambda: int(broker.broker_epoch),
            broker.disk,
        )

    def add_partitions(self, starts: dict[TopicPartition, FetchStart]) -> None:
        """Start replicating ``starts`` from their leaders (each first truncates, then fetches)."""
        if self._closed:
            return
        self.remove_partitions(set(starts))
        for tp, start in starts.items():
            key = (start.leader_id, fetcher_id_for(tp, self.settings.num_fetchers))
            fetcher = self.fetchers.get(key)
            if fetcher is None:
                fetcher = self.fetchers[key] = ReplicaFetcher(self, key[0], key[1])
                fetcher.start()
            partition = self.replicas.get(tp)
            known_epoch = partition is not None and partition.log.leader_epochs.latest_epoch is not None
            truncating = not (self.settings.truncate_on_fetch and known_epoch)
            fetcher.add(
                tp, PartitionFetchState(start.topic_id, start.leader_epoch, start.fetch_offset, truncating)
            )

    def remove_partitions(self, partitions: set[TopicPartition]) -> None:
        """Stop replicating ``partitions``; a fetcher left with nothing is shut down."""
        for key, fetcher in list(self.fetchers.items()):
            fetcher.remove(partitions)
            if not fetcher.partitions:
                del self.fetchers[key]
                fetcher.stop()

    def fetch_state(self, tp: TopicPartition) -> PartitionFetchState | None:
        for fetcher in self.fetchers.values():
            state = fetcher.partitions.get(tp)
            if state is not None:
                return state
        return None

    async def shutdown(self) -> None:
        """Stop every fetcher and wait for their tasks: nothing is left running."""
        self._closed = True
        fetchers = list(self.fetchers.values())
        self.fetchers.clear()
        for fetcher in fetchers:
            fetcher.stop()
        for fetcher in fetchers:
            await fetcher.wait_stopped()


# -- one fetcher -----------------------------------------------------------------------------------


class ReplicaFetcher:
    """One fetch loop towards one leader (Kafka's ReplicaFetcherThread)."""

    def __init__(self, manager: ReplicaFetcherManager, leader_id: BrokerId, fetcher_id: int) -> None:
        self.manager = manager
        self.leader_id = leader_id
        self.fetcher_id = fetcher_id
        self.settings = manager.settings
        self.partitions: dict[TopicPartition, PartitionFetchState] = {}
        #: Topic id -> name of every partition added (an answer by id names no topic).
        self._topic_names: dict[uuid.UUID, str] = {}
        self.session = FetchSession()
        #: Partitions whose fetch fields other than the offset may have changed since the leader's
        #: session took them (added, truncated, log start moved): an incremental request looks at
        #: those and at the ones whose fetch offset is not the session's; the others are in the
        #: session as they are.
        self._touched: set[TopicPartition] = set()
        #: Loop time of the next request that looks at every partition (what no event marks,
        #: such as a log start moved by this broker's retention, is sent within that period).
        self._next_full_look = 0.0
        #: Partitions added without a topic id (they need a Fetch version below 13).
        self._without_ids: set[TopicPartition] = set()
        #: The Fetch version the session was made with (a change of version starts a new one).
        self._session_version = FETCH_VERSION
        self.stats = FetcherStats()
        self.client = NetworkClient(manager.client_config(fetcher_id))
        self._changed = asyncio.Event()
        #: Set after every turn of the loop (a request answered, or a wait ended): what a caller
        #: watching the fetcher's progress awaits (:meth:`next_turn`).
        self._turned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"ReplicaFetcher(leader={self.leader_id}, id={self.fetcher_id})"

    # -- control (event loop, synchronous) ---------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"brook-replica-fetcher-{self.leader_id}-{self.fetcher_id}"
        )

    def add(self, tp: TopicPartition, state: PartitionFetchState) -> None:
        self.partitions[tp] = state
        self._touched.add(tp)
        if state.topic_id not in (None, ZERO_UUID):
            # A topic id names one topic for its whole life: kept, never stale.
            self._topic_names[state.topic_id] = tp.topic
            self._without_ids.discard(tp)
        else:
            self._without_ids.add(tp)
        self._changed.set()

    def remove(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self.partitions.pop(tp, None)
        self._changed.set()

    def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()

    async def next_turn(self) -> None:
        """Wait until the loop has gone round once more."""
        self._turned.clear()
        await self._turned.wait()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    # -- the loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    await self._once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A bug or an unreadable answer must not end replication: retry after the backoff.
                    self.stats.errors += 1
                    log.exception("%r failed; retrying after the backoff", self)
                    self.session.reset()
                    self._back_off_all()
                self._turned.set()
        finally:
            with contextlib.suppress(Exception):
                await self.client.close()

    async def _once(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        fetching: list[TopicPartition] = []
        truncating: list[TopicPartition] = []
        for tp, s in self.partitions.items():  # one pass: every fetch turn visits each partition
            if s.delayed_until <= now:
                (truncating if s.truncating else fetching).append(tp)
        if not fetching and not truncating:
            await self._wait_for_change(self._next_ready(now) - now)
            return
        try:
            if truncating:
                await self._truncate(truncating)
                return
            await self._fetch(fetching)
        except ClientError as exc:
            self.stats.errors += 1
            self.session.reset()
            log.info("%r: request to broker %d failed: %s", self, self.leader_id, exc)
            self._back_off_all()

    def _next_ready(self, now: float) -> float:
        delays = [s.delayed_until for s in self.partitions.values()]
        return min(delays) if delays else now + 3600.0

    async def _wait_for_change(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(0.0, timeout))

    def _back_off_all(self) -> None:
        until = asyncio.get_running_loop().time() + self.settings.backoff_ms / 1000
        for state in self.partitions.values():
            state.delayed_until = until

    def _back_off(self, tp: TopicPartition) -> None:
        state = self.partitions.get(tp)
        if state is not None:
            state.delayed_until = asyncio.get_running_loop().time() + self.settings.backoff_ms / 1000

    async def _connection_request(self, request: Any, version: int) -> Any:
        endpoint = self.manager.metadata_cache.alive_endpoint(self.leader_id, self.manager.listener)
        if endpoint is None:
            raise _LeaderUnknown(f"broker {self.leader_id} has no live endpoint on {self.manager.listener}")
        response = await self.client.send(
            self.leader_id, endpoint.host, endpoint.port, request, version=version
        )
        return response.body

    def _current(self, tp: TopicPartition, state: PartitionFetchState) -> Partition | None:
        """The follower replica, if ``state`` is still what this fetcher holds for it."""
        if self.partitions.get(tp) is not state:
            return None
        partition = self.manager.replicas.get(tp)
        if partition is None or partition.is_leader:
            return None
        return partition

    # -- truncation --------------------------------------------------------------------------------

    async def _truncate(self, tps: list[TopicPartition]) -> None:
        asking: dict[TopicPartition, tuple[PartitionFetchState, int]] = {}
        for tp in tps:
            state = self.partitions.get(tp)  # an earlier truncation awaited: it may be gone
            if state is None:
                continue
            partition = self._current(tp, state)
            if partition is None:
                self.partitions.pop(tp, None)
                continue
            latest = partition.log.leader_epochs.latest_epoch
            if latest is None:
                # Kafka's truncateToHighWatermark for a log without epochs.
                await self._apply_truncation(tp, state, Truncation(partition.high_watermark, True))
            else:
                asking[tp] = (state, latest)
        if not asking:
            return
        by_topic: dict[str, OffsetForLeaderTopic] = {}
        for tp, (state, latest) in asking.items():
            by_topic.setdefault(tp.topic, OffsetForLeaderTopic(tp.topic)).partitions.append(
                OffsetForLeaderPartition(tp.partition, state.leader_epoch, latest)
            )
        request = OffsetForLeaderEpochRequest(
            replica_id=self.manager.local_id, topics=list(by_topic.values())
        )
        response = await self._connection_request(request, OFFSET_FOR_LEADER_EPOCH_VERSION)
        for topic in response.topics:
            for answer in topic.partitions:
                tp = TopicPartition(topic.topic, answer.partition)
                entry = asking.get(tp)
                if entry is None:
                    continue
                state = entry[0]
                if answer.error_code != ErrorCode.NONE:
                    self._partition_error(tp, state, ErrorCode(answer.error_code), "OffsetForLeaderEpoch")
                    continue
                partition = self._current(tp, state)
                if partition is None:
                    continue
                log_ = partition.log
                truncation = truncation_for(
                    answer.leader_epoch,
                    answer.end_offset,
                    _follower_end_for(log_),
                    log_.log_end_offset,
                    state.fetch_offset,
                )
                await self._apply_truncation(tp, state, truncation)

    async def _apply_truncation(
        self, tp: TopicPartition, state: PartitionFetchState, truncation: Truncation
    ) -> None:
        control = self.manager.replicas.control
        async with control.lock:
            partition = self._current(tp, state)
            if partition is None:
                return
            log_ = partition.log
            if truncation.offset < log_.log_end_offset:
                log.info(
                    "%s: truncating from %d to %d (leader %d, epoch %d)",
                    tp,
                    log_.log_end_offset,
                    truncation.offset,
                    self.leader_id,
                    state.leader_epoch,
                )
                self.stats.truncations += 1
            try:
                truncate = methodcaller("truncate_to", truncation.offset)
                await self.manager.disk.run(partition.on_current_log, truncate)
            except (StorageError, OSError) as exc:
                self._storage_failure(partition, exc, "truncating")
                return
            if self._current(tp, state) is None:
                return
            state.fetch_offset = partition.log_end_offset
            state.truncating = not truncation.complete
            self._touched.add(tp)

    # -- fetch -------------------------------------------------------------------------------------

    def _build_fetch(
        self, tps: list[TopicPartition]
    ) -> tuple[
        FetchRequest,
        int,
        dict[TopicPartition, tuple[PartitionFetchState, int]],
        dict[TopicPartition, FetchPartition],
    ]:
        """The next fetch: ``sent`` holds every partition fetched (what the answer may carry),
        ``named`` those the request names (all of them unless the session is incremental)."""
        manager = self.manager
        settings = self.settings
        version = FETCH_VERSION
        if self._without_ids and not self._without_ids.isdisjoint(tps):
            version = FETCH_VERSION_WITHOUT_IDS
        if version != self._session_version:
            # The leader's session keys partitions by name below v13, by id from it.
            self.session.reset()
            self._session_version = version
        session = self.session
        throttle = manager.replicas.replication_quotas.follower
        throttling = throttle.active and throttle.is_exceeded()
        # An incremental request looks only at the partitions whose fetch offset the session
        # does not hold, or that were touched; every one at least once per FULL_LOOK_S, and all
        # while throttling.
        now = asyncio.get_running_loop().time()
        look_at_all = session.is_full or throttling or now >= self._next_full_look
        if look_at_all:
            self._next_full_look = now + FULL_LOOK_S
        touched = self._touched
        taken = session.taken
        sent: dict[TopicPartition, tuple[PartitionFetchState, int]] = {}
        named: dict[TopicPartition, FetchPartition] = {}
        topics: dict[str, FetchTopic] = {}
        for tp in tps:
            state = self.partitions[tp]
            if not look_at_all and tp not in touched:
                held = taken.get(tp)
                if held is not None and held[0] == state.fetch_offset:
                    sent[tp] = (state, state.fetch_offset)  # unchanged: the session holds it
                    continue
            partition = self._current(tp, state)
            if partition is None:
                # Led here now, or deleted: nothing to fetch (and no empty request in a loop).
                del self.partitions[tp]
                continue
            if throttling and state.lag != 0 and throttle.is_throttled(tp):
                continue  # Kafka's shouldFollowerThrottle: left out until the rate falls
            touched.discard(tp)
            log_ = partition.log
            latest = log_.leader_epochs.latest_epoch
            last_fetched_epoch = -1 if latest is None else latest
            sent[tp] = (state, state.fetch_offset)
            fields = fetch_fields(
                fetch_offset=state.fetch_offset,
                current_leader_epoch=state.leader_epoch,
                last_fetched_epoch=last_fetched_epoch,
                log_start_offset=log_.log_start_offset,
                partition_max_bytes=settings.max_bytes,
            )
            if not session.must_send_fields(tp, fields):
                continue  # the leader's session holds it as it is (most partitions: no request part built)
            fetch = FetchPartition(
                partition=tp.partition,
                current_leader_epoch=state.leader_epoch,
                fetch_offset=state.fetch_offset,
                last_fetched_epoch=last_fetched_epoch,
                log_start_offset=log_.log_start_offset,
                partition_max_bytes=settings.max_bytes,
            )
            named[tp] = fetch
            topic = topics.get(tp.topic)
            if topic is None:
                topic = topics[tp.topic] = FetchTopic(tp.topic, state.topic_id or ZERO_UUID)
            topic.partitions.append(fetch)
        forgotten: dict[str, ForgottenTopic] = {}
        for tp in self.session.forgotten(sent):
            topic_id = self._topic_id_of(tp)
            forgotten.setdefault(tp.topic, ForgottenTopic(tp.topic, topic_id)).partitions.append(tp.partition)
        request = FetchRequest(
            replica_id=manager.local_id if version < 15 else -1,
            replica_state=ReplicaState(manager.local_id, manager.broker_epoch()),
            max_wait_ms=settings.max_wait_ms,
            min_bytes=settings.min_bytes,
            max_bytes=settings.response_max_bytes,
            isolation_level=0,
            session_id=self.session.session_id,
            session_epoch=self.session.epoch,
            topics=list(topics.values()),
            forgotten_topics_data=list(forgotten.values()),
        )
        return request, version, sent, named

    def _topic_id_of(self, tp: TopicPartition) -> uuid.UUID:
        state = self.partitions.get(tp)
        if state is not None and state.topic_id is not None:
            return state.topic_id
        return self.manager.metadata_cache.topic_id(tp.topic)

    async def _fetch(self, tps: list[TopicPartition]) -> None:
        request, version, sent, named = self._build_fetch(tps)
        if not sent:
            if any(tp in self.partitions for tp in tps):
                # All left out by the throttle: wait as Kafka's fetcher does after an empty fetch.
                await self._wait_for_change(self.settings.backoff_ms / 1000)
            return
        self.stats.fetches += 1
        response: FetchResponse = await self._connection_request(request, version)
        self.session.on_response(response.error_code, response.session_id, sent, named)
        if response.error_code != ErrorCode.NONE:
            self.stats.errors += 1
            log.info("%r: fetch failed with %s", self, ErrorCode(response.error_code).name)
            self._back_off_all()
            return
        # An incremental answer may carry partitions the request did not name: every fetched one.
        names = self._topic_names
        for topic in response.responses:
            name = names.get(topic.topic_id, "") if version >= 13 else topic.topic
            for data in topic.partitions:
                tp = TopicPartition(name, data.partition_index)
                asked = sent.get(tp)
                if asked is None:
                    continue
                state, offset = asked
                if self.partitions.get(tp) is not state or state.truncating or state.fetch_offset != offset:
                    continue  # removed, re-added or moved meanwhile: the answer is stale
                await self._process(tp, state, data)

    async def _process(self, tp: TopicPartition, state: PartitionFetchState, data: PartitionData) -> None:
        error = ErrorCode(data.error_code)
        if error == ErrorCode.OFFSET_OUT_OF_RANGE:
            await self._reset_out_of_range(tp, state)
            return
        if error != ErrorCode.NONE:
            self._partition_error(tp, state, error, "Fetch")
            return
        partition = self._current(tp, state)
        if partition is None:
            return
        diverging = data.diverging_epoch
        if diverging.epoch >= 0 or diverging.end_offset >= 0:
            log_ = partition.log
            truncation = truncation_for(
                diverging.epoch,
                diverging.end_offset,
                _follower_end_for(log_),
                log_.log_end_offset,
                state.fetch_offset,
            )
            # Not final or not: the next fetch (with our new last epoch) tells.
            before = (log_.log_end_offset, log_.leader_epochs.latest_epoch)
            await self._apply_truncation(tp, state, Truncation(truncation.offset, True))
            if (log_.log_end_offset, log_.leader_epochs.latest_epoch) == before:
                # Nothing changed, so the leader would answer the same at once: do not spin.
                self._back_off(tp)
            return
        records = data.records
        if records is not None and len(records) > 0:
            throttle = self.manager.replicas.replication_quotas.follower
            if throttle.active and throttle.is_throttled(tp):
                throttle.record(len(records))  # in-sync replicas' bytes count too, as Kafka's
            if not await self._append(tp, state, partition, records):
                return
        state.lag = max(0, data.high_watermark - state.fetch_offset)
        log_ = partition.log
        high_watermark = min(data.high_watermark, log_.log_end_offset)
        if high_watermark > log_.high_watermark:
            log_.high_watermark = high_watermark
        if data.log_start_offset > log_.log_start_offset and data.log_start_offset <= log_.high_watermark:
            await self._advance_log_start(tp, state, data.log_start_offset)
        partition.wake_waiters()

    async def _append(
        self, tp: TopicPartition, state: PartitionFetchState, partition: Partition, records: Any
    ) -> bool:
        view = records if isinstance(records, memoryview) else memoryview(records)
        whole, new_epoch = _scan_batches(view, partition.log.leader_epochs.latest_epoch)
        if whole == 0:
            return True  # only a partial batch (a leader may cut one at the size limit)
        view = view[:whole]
        try:
            if new_epoch:
                # The epoch checkpoint is fsync'd: a disk worker's job, with the role fixed.
                async with self.manager.replicas.control.lock:
                    if self._current(tp, state) is None or state.fetch_offset != partition.log_end_offset:
                        return False
                    append = methodcaller("append_as_follower", view)
                    info = await self.manager.disk.run(partition.on_current_log, append)
            else:
                with partition.current_log() as log_:
                    if state.fetch_offset != log_.log_end_offset:
                        log.warning(
                            "%s: fetch offset %d is not the log end %d",
                            tp,
                            state.fetch_offset,
                            log_.log_end_offset,
                        )
                        state.truncating = True
                        return False
                    info = log_.append_as_follower(view)
        except OSError as exc:
            self._storage_failure(partition, exc, "appending fetched records to")
            return False
        except StorageError as exc:
            # Corrupt or out-of-order data (Kafka: CorruptRecordException, a failed partition):
            # retry after the backoff, from scratch.
            self.stats.errors += 1
            log.error("%s: cannot append the leader's records at %d: %s", tp, state.fetch_offset, exc)
            state.truncating = True
            self._back_off(tp)
            return False
        if self.partitions.get(tp) is state:
            state.fetch_offset = partition.log_end_offset  # a new offset: looked at next request
        self.stats.bytes_appended += info.bytes
        self.stats.batches_appended += info.batches
        return True

    async def _advance_log_start(self, tp: TopicPartition, state: PartitionFetchState, offset: int) -> None:
        async with self.manager.replicas.control.lock:
            partition = self._current(tp, state)
            if partition is None:
                return
            try:
                advance = methodcaller("delete_records_before", offset)
                await self.manager.disk.run(partition.on_current_log, advance)
                self._touched.add(tp)
            except (StorageError, OSError) as exc:
                log.warning("%s: cannot move the log start to the leader's %d: %s", tp, offset, exc)

    async def _reset_out_of_range(self, tp: TopicPartition, state: PartitionFetchState) -> None:
        """Kafka's fetchOffsetAndTruncate: ask the leader's log end and start, then truncate."""
        ends: dict[int, int] = {}
        for timestamp in (LATEST_TIMESTAMP, EARLIEST_TIMESTAMP):
            request = ListOffsetsRequest(
                replica_id=self.manager.local_id,
                topics=[
                    ListOffsetsTopic(
                        tp.topic, [ListOffsetsPartition(tp.partition, state.leader_epoch, timestamp)]
                    )
                ],
            )
            response = await self._connection_request(request, LIST_OFFSETS_VERSION)
            answer = response.topics[0].partitions[0]
            if answer.error_code != ErrorCode.NONE:
                self._partition_error(tp, state, ErrorCode(answer.error_code), "ListOffsets")
                return
            ends[timestamp] = answer.offset
        partition = self._current(tp, state)
        if partition is None:
            return
        reset = out_of_range_reset(ends[EARLIEST_TIMESTAMP], ends[LATEST_TIMESTAMP], partition.log_end_offset)
        log.warning(
            "%s: fetch offset %d out of range at leader %d: %s", tp, state.fetch_offset, self.leader_id, reset
        )
        async with self.manager.replicas.control.lock:
            partition = self._current(tp, state)
            if partition is None:
                return
            try:
                if reset.kind is ResetKind.TRUNCATE_TO:
                    truncate = methodcaller("truncate_to", reset.offset)
                    await self.manager.disk.run(partition.on_current_log, truncate)
                elif reset.kind is ResetKind.START_AT:
                    start_at = methodcaller("truncate_fully_and_start_at", reset.offset)
                    await self.manager.disk.run(partition.on_current_log, start_at)
            except (StorageError, OSError) as exc:
                self._storage_failure(partition, exc, "truncating")
                return
            if self._current(tp, state) is None:
                return
            if reset.kind is ResetKind.FETCH_FROM and state.fetch_offset == partition.log_end_offset:
                # Our offset is in the leader's range, so it refused our last fetched epoch; the
                # same fetch would be refused at once: retry after the backoff, not in a loop.
                self._back_off(tp)
            state.fetch_offset = partition.log_end_offset
            self._touched.add(tp)

    # -- errors ------------------------------------------------------------------------------------

    def _partition_error(
        self, tp: TopicPartition, state: PartitionFetchState, error: ErrorCode, api: str
    ) -> None:
        self.stats.errors += 1
        if error == ErrorCode.FENCED_LEADER_EPOCH:
            # Our leader epoch is older than the leader's: wait for the controller's LeaderAndIsr,
            # which hands the partition over again (Kafka marks it failed).
            log.warning(
                "%s: %s answered FENCED_LEADER_EPOCH at epoch %d; waiting for LeaderAndIsr",
                tp,
                api,
                state.leader_epoch,
            )
            if self.partitions.get(tp) is state:
                del self.partitions[tp]
            return
        log.info("%s: %s from leader %d answered %s; backing off", tp, api, self.leader_id, error.name)
        self._back_off(tp)

    def _storage_failure(self, partition: Partition, exc: BaseException, action: str) -> None:
        if isinstance(exc, (OSError, StorageError)):
            self.manager.replicas.storage_failure(partition, exc, action)
        self.partitions.pop(partition.tp, None)


class _LeaderUnknown(ClientError):
    """The metadata cache has no live endpoint for the leader (yet)."""


def _follower_end_for(log_: Log) -> Callable[[int], tuple[int, int] | None]:
    def end_for(epoch: int) -> tuple[int, int] | None:
        found_epoch, end = log_.leader_epochs.end_offset_for_epoch(epoch)
        return None if end < 0 else (found_epoch, end)

    return end_for


def _scan_batches(records: memoryview, latest: int | None) -> tuple[int, bool]:
    """A header walk over fetched ``records`` (8 bytes read per batch): the length of the whole
    batches (a leader may send a partial last one when a size limit cuts it, as Kafka's do) and
    whether one carries a partition leader epoch newer than ``latest``."""
    pos = 0
    size = len(records)
    new_epoch = False
    while size - pos >= 16:
        length, epoch = _LENGTH_AND_EPOCH.unpack_from(records, pos + 8)
        if length <= 0 or pos + 12 + length > size:
            break
        if epoch >= 0 and (latest is None or epoch > latest):
            new_epoch = True
        pos += 12 + length
    return pos, new_epoch
