"""``__transaction_state`` as the transaction coordinator sees it (Kafka's
TransactionStateManager): the topic's creation, which partitions this broker owns or is
loading and at which coordinator epoch, the cache of transactional ids, and durable writes.

* The topic is created on the first FindCoordinator of a transactional id with
  ``transaction.state.log.num.partitions`` partitions, ``transaction.state.log.replication.factor``
  replicas (capped to the live brokers in standalone mode only, as the offsets topic) and
  Kafka's configs (compacted, uncompressed, ``min.insync.replicas`` from
  ``transaction.state.log.min.isr``, no unclean election).
* Leading a partition means owning its transactional ids, at coordinator epoch = the
  partition's leader epoch. On election the partition is replayed; until then its ids answer
  COORDINATOR_LOAD_IN_PROGRESS, and ids of partitions this broker does not lead NOT_COORDINATOR.
* :meth:`TransactionStateTopic.append` writes one transition as one batch with acks=all (it
  completes when the high watermark passes it), then completes the transition in the cache if
  this broker still owns the partition at the same epoch, as Kafka's appendTransactionToLog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker.cluster.topics import TopicError
from broker.coordinator.partitions import CoordinatorPartitions
from broker.group.hashing import partition_for
from broker.replica.partition import Partition
from broker.txn import TRANSACTION_STATE_TOPIC
from broker.txn.config import TxnConfig, transaction_topic_configs
from broker.txn.loader import replay
from broker.txn.records import build_records, key_bytes, value_bytes
from broker.txn.state import TransactionMetadata, TxnState, TxnTransit
from protocol.error_codes import ErrorCode
from storage.clock import Clock
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

E = ErrorCode

#: Called with (partition index, coordinator epoch, metadata) for each transaction found in
#: PrepareCommit/PrepareAbort when a partition is loaded: its markers must be (re)sent.
OnLoadedPrepared = Callable[[int, int, TransactionMetadata], None]


@dataclass(frozen=True, slots=True)
class Lookup:
    """What :meth:`TransactionStateTopic.get` found: an error, or the metadata (None when the
    id is unknown) and the coordinator epoch of its partition."""

    error: ErrorCode
    coordinator_epoch: int = -1
    metadata: TransactionMetadata | None = None


def append_error(error: ErrorCode) -> ErrorCode:
    """How a failed write to the log is reported (Kafka's appendTransactionToLog)."""
    if error in (
        E.UNKNOWN_TOPIC_OR_PARTITION,
        E.NOT_ENOUGH_REPLICAS,
        E.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        E.REQUEST_TIMED_OUT,
    ):
        return E.COORDINATOR_NOT_AVAILABLE
    if error in (E.NOT_LEADER_OR_FOLLOWER, E.KAFKA_STORAGE_ERROR):
        return E.NOT_COORDINATOR
    if error in (E.MESSAGE_TOO_LARGE, E.RECORD_LIST_TOO_LARGE):
        return E.UNKNOWN_SERVER_ERROR
    return error


class TransactionStateTopic(CoordinatorPartitions):
    topic = TRANSACTION_STATE_TOPIC

    def __init__(self, broker: Broker, config: TxnConfig, clock: Clock) -> None:
        super().__init__(broker, clock)
        self.config = config
        #: partition index -> coordinator epoch, for partitions loaded and served.
        self.owned: dict[int, int] = {}
        self.loading: dict[int, int] = {}
        #: partition index -> transactional id -> metadata.
        self.transactions: dict[int, dict[str, TransactionMetadata]] = {}
        self.on_loaded_prepared: OnLoadedPrepared = lambda index, epoch, metadata: None
        #: Called with a partition index when this broker stops owning it.
        self.on_unloaded: Callable[[int], None] = lambda index: None

    # -- partitions -------------------------------------------------------------------------------

    @property
    def partition_count(self) -> int:
        """The topic's partition count once it exists (what ids hash onto), else the config."""
        if self.broker.cluster_mode:
            count = self.broker.metadata_cache.partition_count(TRANSACTION_STATE_TOPIC)
            return count if count else self.config.num_partitions
        info = self.info
        return len(info.partitions) if info is not None else self.config.num_partitions

    def partition_for(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.partition_count)

    def exists(self) -> bool:
        if self.broker.cluster_mode:
            return self.broker.metadata_cache.contains(TRANSACTION_STATE_TOPIC)
        return self.info is not None

    async def ensure_topic(self) -> None:
        """Create the topic if it does not exist (shared by concurrent callers, finished even if
        the request that started it is cancelled). Raises :class:`TopicError`."""
        if self.exists():
            return
        await self._create_once(self._create_topic)

    async def _create_topic(self) -> None:
        broker = self.broker
        rf = self.config.replication_factor
        configs = transaction_topic_configs(self.config)
        admin = broker.zk_admin
        if admin is not None:
            # ZooKeeper mode: written to ZooKeeper; the controller elects leaders.
            await admin.create_topic(
                TRANSACTION_STATE_TOPIC, self.config.num_partitions, rf, configs=configs, allow_internal=True
            )
            return
        if broker.cluster_mode:
            raise TopicError(E.COORDINATOR_NOT_AVAILABLE, "no ZooKeeper to create the transaction topic in")
        live = len(broker.live_broker_ids())
        rf = self._standalone_replication_factor(rf, live, "transaction.state.log.replication.factor")
        created = await broker.topics.create_async(
            TRANSACTION_STATE_TOPIC, self.config.num_partitions, rf, configs=configs, allow_internal=True
        )
        assert created is not None
        self._take_over_led(created.partitions)

    def start(self) -> None:
        """The embedded node: take over every local partition it leads (a restart is a replay)."""
        info = self.info
        if info is not None and not self.broker.cluster_mode:
            self._take_over_led(info.partitions)

    def on_elected(self, index: int, epoch: int) -> None:
        """This broker now leads partition ``index`` at ``epoch``: load it."""
        current = self.owned.get(index, self.loading.get(index, -1))
        if current >= epoch and (index in self.owned or index in self.loading):
            return
        self._drop(index)
        replica = self.replica(index)
        if replica is None:
            log.warning("elected for %s-%d, but it has no local replica", TRANSACTION_STATE_TOPIC, index)
            return
        self.loading[index] = epoch
        self._start_load(index, self._load(index, epoch, replica))

    async def _load(self, index: int, epoch: int, replica: Partition) -> None:
        try:
            loaded = await replay(replica.log, self.config.load_buffer_size)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not served at all rather than served empty (new producer ids would break fencing),
            # as Kafka: the partition answers NOT_COORDINATOR until it is elected again.
            log.exception("error loading transactions from %s-%d", TRANSACTION_STATE_TOPIC, index)
            if self.loading.get(index) == epoch:
                del self.loading[index]
            return
        finally:
            self._tasks.pop(index, None)
        if self.shutting_down or self.loading.get(index) != epoch:
            return
        del self.loading[index]
        self.owned[index] = epoch
        self.transactions[index] = loaded
        log.info(
            "loaded %d transactional ids from %s-%d at coordinator epoch %d",
            len(loaded),
            TRANSACTION_STATE_TOPIC,
            index,
            epoch,
        )
        for metadata in loaded.values():
            if metadata.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                self.on_loaded_prepared(index, epoch, metadata)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The loads in progress."""
        return list(self._tasks.values())

    def on_resigned(self, index: int) -> None:
        """Another broker leads partition ``index`` now: forget its transactions."""
        self._drop(index)

    def _drop(self, index: int) -> None:
        was_owned = index in self.owned or index in self.loading
        self.owned.pop(index, None)
        self.loading.pop(index, None)
        self.transactions.pop(index, None)
        self._cancel_load(index)
        if was_owned:
            self.on_unloaded(index)

    # -- the cache --------------------------------------------------------------------------------

    def get(self, transactional_id: str) -> Lookup:
        """Kafka's getTransactionState: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS, or the
        id's metadata (None if unknown) with its coordinator epoch."""
        index = self.partition_for(transactional_id)
        if index in self.loading:
            return Lookup(E.COORDINATOR_LOAD_IN_PROGRESS)
        epoch = self.owned.get(index)
        if epoch is None:
            return Lookup(E.NOT_COORDINATOR)
        return Lookup(E.NONE, epoch, self.transactions[index].get(transactional_id))

    def put_if_absent(self, metadata: TransactionMetadata) -> Lookup:
        index = self.partition_for(metadata.transactional_id)
        found = self.get(metadata.transactional_id)
        if found.error != E.NONE or found.metadata is not None:
            return found
        self.transactions[index][metadata.transactional_id] = metadata
        return Lookup(E.NONE, found.coordinator_epoch, metadata)

    def all_owned(self) -> list[tuple[int, int, TransactionMetadata]]:
        """(partition, coordinator epoch, metadata) of every transactional id served here."""
        return [
            (index, self.owned[index], metadata)
            for index, by_id in self.transactions.items()
            if index in self.owned
            for metadata in by_id.values()
        ]

    def still_owned(self, transactional_id: str, coordinator_epoch: int) -> TransactionMetadata | None:
        found = self.get(transactional_id)
        if found.error != E.NONE or found.coordinator_epoch != coordinator_epoch:
            return None
        return found.metadata

    # -- writes -----------------------------------------------------------------------------------

    async def append(
        self,
        transactional_id: str,
        coordinator_epoch: int,
        transit: TxnTransit,
        *,
        keep_pending_on_unavailable: bool = False,
    ) -> ErrorCode:
        """Write ``transit`` durably, then complete it in the cache (a Dead transit removes the
        id). On failure the pending state is cleared, except for COORDINATOR_NOT_AVAILABLE when
        the caller retries the same transit (the marker sender's completion, as Kafka's
        retryOnError). Returns the error for the client."""
        value = None if transit.state is TxnState.DEAD else value_bytes(transit)
        key = key_bytes(transactional_id)
        written = await self.write_batch(
            self.partition_for(transactional_id),
            lambda: build_records([(key, value)], self.clock.milliseconds()),
            self.config.request_timeout_ms,
            "transaction",
        )
        error = written.error
        metadata = self.still_owned(transactional_id, coordinator_epoch)
        if error != E.NONE:
            error = append_error(error)
            keep = keep_pending_on_unavailable and error == E.COORDINATOR_NOT_AVAILABLE
            if metadata is not None and metadata.pending_state is transit.state and not keep:
                metadata.pending_state = None
            log.info("appending %s for %s failed: %s", transit.state.state_name, transactional_id, error.name)
            return error
        if metadata is None:
            # Another epoch (or broker) took the partition over while the write was pending.
            return E.NOT_COORDINATOR
        if transit.state is TxnState.DEAD:
            if metadata.pending_state is TxnState.DEAD:
                self.transactions[self.partition_for(transactional_id)].pop(transactional_id, None)
            return E.NONE
        metadata.complete_transition(transit)
        return E.NONE
