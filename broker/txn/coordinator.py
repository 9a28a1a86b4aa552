"""The transaction coordinator (Kafka 3.9's TransactionCoordinator, transaction version 0).

Its operations return error codes as Kafka's coordinator hands them to KafkaApis; the handlers
map them per api version. Everything runs on the event loop; between a ``prepare_*`` and the
write that completes it, the metadata's pending state makes concurrent calls answer
CONCURRENT_TRANSACTIONS, which replaces Kafka's per-transaction lock.

* InitProducerId: a new id starts at epoch 0; a known id's epoch is bumped (KIP-360: with the
  producer's id and epoch, a retry of the last bump gets the same epoch, a stale one
  PRODUCER_FENCED); an exhausted epoch rotates to a new producer id; an ongoing transaction is
  first aborted under a fenced epoch (PrepareEpochFence, then PrepareAbort) and the caller told
  CONCURRENT_TRANSACTIONS, to retry.
* EndTxn: PrepareCommit/PrepareAbort is written, the client answered, then the markers are sent
  (:mod:`broker.txn.markers`) and CompleteCommit/CompleteAbort written. A retry after completion
  gets NONE, during it CONCURRENT_TRANSACTIONS, the wrong result INVALID_TXN_STATE.
* Timers: every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` transactions
  older than their timeout are aborted with a fenced epoch; every
  ``transaction.remove.expired.transaction.cleanup.interval.ms`` ids idle for
  ``transactional.id.expiration.ms`` are removed (tombstones).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from broker.group.timers import LoopScheduler, Scheduler, TimerHandle
from broker.txn.config import TxnConfig
from broker.txn.markers import MarkerSender, MarkerWriter, TxnMarkers
from broker.txn.state import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    IllegalTransition,
    TransactionMetadata,
    TxnState,
    TxnTransit,
    is_epoch_exhausted,
)
from broker.txn.store import TransactionStateTopic
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker
    from protocol.messages.describe_transactions_response import TransactionState as DescribedTransaction
    from protocol.messages.list_transactions_response import ListTransactionsResponse

log = logging.getLogger(__name__)

E = ErrorCode
S = TxnState


@dataclass(frozen=True, slots=True)
class ProducerIdAndEpoch:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


class TransactionCoordinator:
    """The transactional ids whose ``__transaction_state`` partition this broker leads."""

    def __init__(
        self,
        broker: Broker,
        *,
        config: TxnConfig | None = None,
        scheduler: Scheduler | None = None,
        marker_writer: MarkerWriter | None = None,
    ) -> None:
        self.broker = broker
        self.config = config or TxnConfig.from_broker(broker.config)
        self.scheduler: Scheduler = scheduler or LoopScheduler(broker.clock)
        self.clock = self.scheduler.clock
        self.store = TransactionStateTopic(broker, self.config, self.clock)
        self.markers = MarkerSender(
            broker, self.store, self.config.marker_retry_backoff_ms, writer=marker_writer
        )
        self.store.on_loaded_prepared = self._resend_markers
        self.store.on_unloaded = self.markers.remove_partition
        self.active = False
        self._timers: dict[str, TimerHandle] = {}
        self._background: set[asyncio.Task[object]] = set()

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.active:
            return
        self.active = True
        self.store.start()
        self._every(self.config.abort_timed_out_interval_ms, self.abort_timed_out_transactions)
        self._every(self.config.remove_expired_interval_ms, self.remove_expired_transactional_ids)

    def _every(self, interval_ms: int, work: Callable[[], object]) -> None:
        name = getattr(work, "__name__", repr(work))

        def fire() -> None:
            if not self.active:
                return
            try:
                work()
            except Exception:
                log.exception("transaction coordinator task %s failed", name)
            arm()

        def arm() -> None:
            self._timers[name] = self.scheduler.call_at(self.clock.milliseconds() + interval_ms, fire)

        arm()

    async def stop(self) -> None:
        self.active = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._background:
            task.cancel()
        self.store.stop()
        await self.markers.close()

    async def wait_idle(self) -> None:
        """Until no load, background write or marker is in flight (tests and shutdown)."""
        while True:
            pending = [*self.store.tasks, *self._background, *self.markers.tasks]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    def _now(self) -> int:
        return self.clock.milliseconds()

    # -- InitProducerId ---------------------------------------------------------------------------

    def valid_timeout(self, timeout_ms: int) -> bool:
        return 0 < timeout_ms <= self.config.max_timeout_ms

    async def init_producer_id(
        self, transactional_id: str, timeout_ms: int, expected: tuple[int, int] | None = None
    ) -> ProducerIdAndEpoch:
        """InitProducerId with a transactional id; ``expected`` is the (id, epoch) of KIP-360."""
        if transactional_id == "":
            return ProducerIdAndEpoch(E.INVALID_REQUEST)
        if not self.valid_timeout(timeout_ms):
            return ProducerIdAndEpoch(E.INVALID_TRANSACTION_TIMEOUT)
        found = self.store.get(transactional_id)
        if found.error != E.NONE:
            return ProducerIdAndEpoch(found.error)
        if found.metadata is None:
            producer_id = await self.broker.next_producer_id()
            created = TransactionMetadata(
                transactional_id,
                producer_id,
                NO_PRODUCER_EPOCH,
                timeout_ms,
                S.EMPTY,
                txn_last_update_timestamp=self._now(),
            )
            found = self.store.put_if_absent(created)
            if found.error != E.NONE or found.metadata is None:
                return ProducerIdAndEpoch(found.error)
        metadata = found.metadata
        new_id: int | None = None
        if metadata.epoch_exhausted and (expected is None or expected[1] == metadata.producer_epoch):
            new_id = await self.broker.next_producer_id()
            found = self.store.get(transactional_id)  # the await let other requests in
            if found.error != E.NONE or found.metadata is None:
                return ProducerIdAndEpoch(found.error if found.error != E.NONE else E.CONCURRENT_TRANSACTIONS)
            metadata = found.metadata
        coordinator_epoch = found.coordinator_epoch
        prepared = self._prepare_init(metadata, timeout_ms, expected, new_id)
        if isinstance(prepared, ErrorCode):
            return ProducerIdAndEpoch(prepared)
        if prepared.state is S.PREPARE_EPOCH_FENCE:
            result = await self._end_transaction(
                transactional_id, prepared.producer_id, prepared.producer_epoch, False, from_client=False
            )
            return ProducerIdAndEpoch(E.CONCURRENT_TRANSACTIONS if result.error == E.NONE else result.error)
        error = await self.store.append(transactional_id, coordinator_epoch, prepared)
        if error != E.NONE:
            return ProducerIdAndEpoch(error)
        log.info(
            "initialized transactional id %s with producer id %d and epoch %d",
            transactional_id,
            prepared.producer_id,
            prepared.producer_epoch,
        )
        return ProducerIdAndEpoch(E.NONE, prepared.producer_id, prepared.producer_epoch)

    def _prepare_init(
        self,
        metadata: TransactionMetadata,
        timeout_ms: int,
        expected: tuple[int, int] | None,
        new_id: int | None,
    ) -> TxnTransit | ErrorCode:
        if metadata.pending:
            return E.CONCURRENT_TRANSACTIONS
        if expected is not None and not (
            metadata.producer_epoch == NO_PRODUCER_EPOCH
            or expected[0] == metadata.producer_id
            or (expected[0] == metadata.previous_producer_id and is_epoch_exhausted(expected[1]))
        ):
            return E.PRODUCER_FENCED
        state = metadata.state
        if state in (S.PREPARE_ABORT, S.PREPARE_COMMIT):
            return E.CONCURRENT_TRANSACTIONS
        if state is S.ONGOING:
            return metadata.prepare_fence_producer_epoch()
        if state in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT):
            now = self._now()
            if metadata.epoch_exhausted and (expected is None or expected[1] == metadata.producer_epoch):
                if new_id is None:
                    return E.CONCURRENT_TRANSACTIONS  # exhausted meanwhile: the client retries
                return metadata.prepare_producer_id_rotation(new_id, timeout_ms, now, expected is not None)
            transit = metadata.prepare_increment_producer_epoch(
                timeout_ms, None if expected is None else expected[1], now
            )
            return E.PRODUCER_FENCED if transit is None else transit
        raise IllegalTransition(
            f"found transactional id {metadata.transactional_id} in state {state.state_name}"
        )

    # -- AddPartitionsToTxn / AddOffsetsToTxn -----------------------------------------------------

    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> ErrorCode:
        if not transactional_id:
            return E.INVALID_REQUEST
        found = self.store.get(transactional_id)
        if found.error != E.NONE:
            return found.error
        metadata = found.metadata
        if metadata is None or metadata.producer_id != producer_id:
            return E.INVALID_PRODUCER_ID_MAPPING
        if metadata.producer_epoch != producer_epoch:
            return E.PRODUCER_FENCED
        if metadata.pending or metadata.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            return E.CONCURRENT_TRANSACTIONS
        added = frozenset(partitions)
        if metadata.state is S.ONGOING and added <= metadata.partitions:
            return E.NONE
        transit = metadata.prepare_add_partitions(added, self._now())
        return await self.store.append(transactional_id, found.coordinator_epoch, transit)

    def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, ErrorCode]:
        """AddPartitionsToTxn v4+ ``verify_only`` (Kafka's handleVerifyPartitionsInTransaction):
        NONE for each partition already in the ongoing transaction, TRANSACTION_ABORTABLE for
        the others, or one error for all."""
        wanted = list(partitions)
        if not transactional_id:
            return dict.fromkeys(wanted, E.INVALID_REQUEST)
        found = self.store.get(transactional_id)
        metadata = found.metadata
        if found.error != E.NONE:
            error = found.error
        elif metadata is None or metadata.producer_id != producer_id:
            error = E.INVALID_PRODUCER_ID_MAPPING
        elif metadata.producer_epoch != producer_epoch:
            error = E.PRODUCER_FENCED
        elif metadata.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            error = E.CONCURRENT_TRANSACTIONS
        else:
            return {tp: E.NONE if tp in metadata.partitions else E.TRANSACTION_ABORTABLE for tp in wanted}
        return dict.fromkeys(wanted, error)

    # -- EndTxn -----------------------------------------------------------------------------------

    async def end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> ProducerIdAndEpoch:
        return await self._end_transaction(
            transactional_id, producer_id, producer_epoch, commit, from_client=True
        )

    async def _end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, *, from_client: bool
    ) -> ProducerIdAndEpoch:
        begun = self._begin_end(transactional_id, producer_id, producer_epoch, commit, from_client)
        if isinstance(begun, ProducerIdAndEpoch):
            self._drop_unused_fence(transactional_id)
            return begun
        return await self._finish_end(transactional_id, producer_id, producer_epoch, commit, *begun)

    def _begin_end(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, from_client: bool
    ) -> ProducerIdAndEpoch | tuple[int, TxnTransit, bool]:
        """The checks and the prepared PrepareCommit/PrepareAbort, synchronously: a fence the
        caller prepared just before is taken over with nothing in between (Kafka's lock)."""
        if not transactional_id:
            return ProducerIdAndEpoch(E.INVALID_REQUEST)
        found = self.store.get(transactional_id)
        if found.error != E.NONE:
            return ProducerIdAndEpoch(found.error)
        metadata = found.metadata
        if metadata is None:
            return ProducerIdAndEpoch(E.INVALID_PRODUCER_ID_MAPPING)
        prepared = self._prepare_end(metadata, producer_id, producer_epoch, commit, from_client)
        if isinstance(prepared, ProducerIdAndEpoch):
            return prepared
        return found.coordinator_epoch, *prepared

    async def _finish_end(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        transit: TxnTransit,
        is_epoch_fence: bool,
    ) -> ProducerIdAndEpoch:
        error = await self.store.append(transactional_id, coordinator_epoch, transit)
        if error != E.NONE:
            if is_epoch_fence:
                current = self.store.still_owned(transactional_id, coordinator_epoch)
                if current is not None:
                    current.has_failed_epoch_fence = True
            return ProducerIdAndEpoch(error)
        return self._send_markers(transactional_id, coordinator_epoch, producer_id, producer_epoch, commit)

    def _drop_unused_fence(self, transactional_id: str) -> None:
        """A prepared epoch fence whose abort could not start must not stay pending."""
        metadata = self.store.get(transactional_id).metadata
        if metadata is not None and metadata.pending_state is S.PREPARE_EPOCH_FENCE:
            metadata.pending_state = None

    def _prepare_end(
        self,
        metadata: TransactionMetadata,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        from_client: bool,
    ) -> ProducerIdAndEpoch | tuple[TxnTransit, bool]:
        valid_epoch = (not from_client or producer_epoch == metadata.producer_epoch) and (
            producer_epoch >= metadata.producer_epoch
        )
        if metadata.producer_id != producer_id:
            return ProducerIdAndEpoch(E.INVALID_PRODUCER_ID_MAPPING)
        if not valid_epoch:
            return ProducerIdAndEpoch(E.PRODUCER_FENCED)
        if metadata.pending and metadata.pending_state is not S.PREPARE_EPOCH_FENCE:
            return ProducerIdAndEpoch(E.CONCURRENT_TRANSACTIONS)
        state = metadata.state
        if state is S.ONGOING:
            is_epoch_fence = False
            if not commit and metadata.pending_state is S.PREPARE_EPOCH_FENCE:
                # The fence becomes this abort: its bumped epoch goes into the PrepareAbort record.
                is_epoch_fence = True
                metadata.pending_state = None
                metadata.producer_epoch = producer_epoch
                metadata.last_producer_epoch = NO_PRODUCER_EPOCH
            next_state = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
            return metadata.prepare_abort_or_commit(next_state, self._now()), is_epoch_fence
        completed = S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT
        preparing = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
        if state is completed:
            return ProducerIdAndEpoch(E.NONE, metadata.producer_id, metadata.producer_epoch)
        if state is preparing:
            return ProducerIdAndEpoch(E.CONCURRENT_TRANSACTIONS)
        if state in (S.COMPLETE_COMMIT, S.COMPLETE_ABORT, S.PREPARE_COMMIT, S.PREPARE_ABORT, S.EMPTY):
            log.debug(
                "%s is %s: cannot %s",
                metadata.transactional_id,
                state.state_name,
                "commit" if commit else "abort",
            )
            return ProducerIdAndEpoch(E.INVALID_TXN_STATE)
        raise IllegalTransition(
            f"found transactional id {metadata.transactional_id} in state {state.state_name}"
        )

    def _send_markers(
        self,
        transactional_id: str,
        coordinator_epoch: int,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
    ) -> ProducerIdAndEpoch:
        """After PrepareCommit/PrepareAbort is durable: check nothing moved, prepare the
        completion, answer the client and hand the markers to the sender."""
        found = self.store.get(transactional_id)
        metadata = found.metadata
        if found.error != E.NONE or found.coordinator_epoch != coordinator_epoch or metadata is None:
            return ProducerIdAndEpoch(E.NOT_COORDINATOR)
        if metadata.producer_id != producer_id:
            return ProducerIdAndEpoch(E.INVALID_PRODUCER_ID_MAPPING)
        if metadata.producer_epoch != producer_epoch:
            return ProducerIdAndEpoch(E.PRODUCER_FENCED)
        if metadata.pending:
            return ProducerIdAndEpoch(E.CONCURRENT_TRANSACTIONS)
        if metadata.state is not (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT):
            return ProducerIdAndEpoch(E.INVALID_TXN_STATE)
        complete = metadata.prepare_complete(self._now())
        self.markers.send(TxnMarkers(transactional_id, coordinator_epoch, commit, metadata, complete))
        return ProducerIdAndEpoch(E.NONE, metadata.producer_id, metadata.producer_epoch)

    def _resend_markers(self, index: int, coordinator_epoch: int, metadata: TransactionMetadata) -> None:
        """A loaded transaction in PrepareCommit/PrepareAbort: send its markers again."""
        commit = metadata.state is S.PREPARE_COMMIT
        complete = metadata.prepare_complete(self._now())
        self.markers.send(
            TxnMarkers(metadata.transactional_id, coordinator_epoch, commit, metadata, complete)
        )

    # -- timers -----------------------------------------------------------------------------------

    def timed_out_transactions(self) -> list[TransactionMetadata]:
        now = self._now()
        return [
            metadata
            for _, _, metadata in self.store.all_owned()
            if not metadata.pending
            and metadata.state is S.ONGOING
            and metadata.txn_start_timestamp + metadata.txn_timeout_ms < now
        ]

    def abort_timed_out_transactions(self) -> int:
        """Kafka's abortTimedOutTransactions: fence the producer's epoch, then abort. Returns how
        many aborts were started."""
        started = 0
        for metadata in self.timed_out_transactions():
            if metadata.pending or metadata.state is not S.ONGOING:
                continue
            fence = metadata.prepare_fence_producer_epoch()
            log.info(
                "aborting transaction %s (producer id %d): open longer than its timeout of %d ms",
                metadata.transactional_id,
                metadata.producer_id,
                metadata.txn_timeout_ms,
            )
            tid, pid, epoch = metadata.transactional_id, fence.producer_id, fence.producer_epoch
            begun = self._begin_end(tid, pid, epoch, False, from_client=False)
            if isinstance(begun, ProducerIdAndEpoch):
                log.info("aborting %s was cancelled: %s", tid, begun.error.name)
                self._drop_unused_fence(tid)
                continue
            self._spawn(self._finish_end(tid, pid, epoch, False, *begun))
            started += 1
        return started

    def remove_expired_transactional_ids(self) -> int:
        """Kafka's removeExpiredTransactionalIds: a tombstone for every id idle for
        ``transactional.id.expiration.ms``; removed from the cache once it is durable."""
        deadline = self._now() - self.config.transactional_id_expiration_ms
        removed = 0
        for _, epoch, metadata in self.store.all_owned():
            if metadata.pending or not metadata.state.expiration_allowed:
                continue
            if metadata.txn_last_update_timestamp > deadline:
                continue
            transit = metadata.prepare_dead()
            self._spawn(self.store.append(metadata.transactional_id, epoch, transit))
            removed += 1
        return removed

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- admin ------------------------------------------------------------------------------------

    def describe(self, transactional_id: str) -> DescribedTransaction:
        from protocol.messages.describe_transactions_response import TopicData
        from protocol.messages.describe_transactions_response import TransactionState as DescribedTransaction

        state = DescribedTransaction(transactional_id=transactional_id)
        if not self.active:
            state.error_code = E.COORDINATOR_NOT_AVAILABLE
            return state
        if not transactional_id:
            state.error_code = E.INVALID_REQUEST
            return state
        found = self.store.get(transactional_id)
        metadata = found.metadata
        if found.error != E.NONE:
            state.error_code = found.error
        elif metadata is None or metadata.state is S.DEAD:
            state.error_code = E.TRANSACTIONAL_ID_NOT_FOUND
        else:
            by_topic: dict[str, list[int]] = {}
            for tp in sorted(metadata.partitions):
                by_topic.setdefault(tp.topic, []).append(tp.partition)
            state.topics = [TopicData(topic, indexes) for topic, indexes in by_topic.items()]
            state.producer_id = metadata.producer_id
            state.producer_epoch = metadata.producer_epoch
            state.transaction_state = metadata.state.state_name
            state.transaction_timeout_ms = metadata.txn_timeout_ms
            state.transaction_start_time_ms = metadata.txn_start_timestamp
        return state

    def list_transactions(
        self, state_filters: Iterable[str], producer_id_filters: Iterable[int], duration_filter_ms: int = -1
    ) -> ListTransactionsResponse:
        from protocol.messages.list_transactions_response import ListTransactionsResponse
        from protocol.messages.list_transactions_response import TransactionState as ListedTransaction

        response = ListTransactionsResponse()
        if not self.active:
            response.error_code = E.COORDINATOR_NOT_AVAILABLE
            return response
        if self.store.loading:
            response.error_code = E.COORDINATOR_LOAD_IN_PROGRESS
            return response
        names = list(state_filters)
        states: set[TxnState] = set()
        for name in names:
            state = TxnState.from_name(name)
            if state is None:
                response.unknown_state_filters.append(name)
            else:
                states.add(state)
        producer_ids = set(producer_id_filters)
        now = self._now()
        for _, _, metadata in self.store.all_owned():
            if metadata.state is S.DEAD:
                continue
            if producer_ids and metadata.producer_id not in producer_ids:
                continue
            if names and metadata.state not in states:
                continue
            if duration_filter_ms >= 0 and now - metadata.txn_start_timestamp <= duration_filter_ms:
                continue
            response.transaction_states.append(
                ListedTransaction(metadata.transactional_id, metadata.producer_id, metadata.state.state_name)
            )
        return response
