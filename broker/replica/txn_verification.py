"""KIP-890 part 1: the leader verifies a transactional append with the transaction coordinator.

Kafka 3.9 (``transaction.partition.verification.enable``, default true) does not let a
transactional batch open its producer's transaction on a partition unless the transaction
coordinator has that partition in the ongoing transaction; this stops "hanging" transactions (a
late or stray batch that would hold the last stable offset forever). This module is Kafka's
ReplicaManager.maybeStartTransactionVerificationForPartitions plus its AddPartitionsToTxnManager:

- Each partition whose producer has no open transaction gets a
  :class:`~storage.producer_state.VerificationGuard` (:meth:`Partition.maybe_start_transaction_verification`);
  partitions with an open transaction need no question (sentinel guard).
- The transactional id's coordinator leads ``__transaction_state`` partition
  abs(java_hash(id)) % its partition count. On this broker (always on one node) it is asked
  directly (:meth:`TransactionCoordinator.verify_partitions`), synchronously; another broker is
  asked with AddPartitionsToTxn v4 ``verify_only``, batched per coordinator node with one request
  in flight per node, over the inter-broker listener. A coordinator that is unknown or not alive
  is COORDINATOR_NOT_AVAILABLE; a disconnect or timeout NETWORK_EXCEPTION; a broker without v4
  skips verification (as Kafka on a version mismatch).
- A second verification of the same transactional id waiting for the same node replaces the
  first: the older epoch gets INVALID_PRODUCER_EPOCH, the same epoch NETWORK_EXCEPTION.
- Answers as AddPartitionsToTxnManager maps them: PRODUCER_FENCED -> INVALID_PRODUCER_EPOCH,
  TRANSACTION_ABORTABLE -> INVALID_TXN_STATE for clients that predate it (Produce < v11,
  TxnOffsetCommit < v4), a top-level CLUSTER_AUTHORIZATION_FAILED -> INVALID_TXN_STATE.
- :func:`produce_error` is the produce path's translation (ReplicaManager.handleProduceAppend):
  INVALID_TXN_STATE stays, retriable coordinator errors become NOT_ENOUGH_REPLICAS so that old
  clients retry without a metadata refresh.

The append then presents the guard: a marker written meanwhile cleared the verification, so
the append fails with INVALID_TXN_STATE instead of opening a transaction the coordinator ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from broker.group.hashing import partition_for
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.add_partitions_to_txn_response import AddPartitionsToTxnResponse
from storage.producer_state import SENTINEL_GUARD, VerificationGuard

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.network.client import NetworkClient

log = logging.getLogger(__name__)

E = ErrorCode
TRANSACTION_STATE_TOPIC = "__transaction_state"
ADD_PARTITIONS_TO_TXN = 24
#: The first AddPartitionsToTxn version with ``verify_only``.
VERIFY_MIN_VERSION = 4

#: Errors of an unfinished verification that Kafka answers a produce as NOT_ENOUGH_REPLICAS.
RETRIABLE_VERIFICATION_ERRORS = frozenset(
    {
        E.CONCURRENT_TRANSACTIONS,
        E.NETWORK_EXCEPTION,
        E.COORDINATOR_LOAD_IN_PROGRESS,
        E.COORDINATOR_NOT_AVAILABLE,
        E.NOT_COORDINATOR,
    }
)

Errors = dict[TopicPartition, ErrorCode]


def produce_error(error: ErrorCode) -> tuple[ErrorCode, str]:
    """A failed verification as the produce response reports it, with Kafka's message."""
    if error == E.INVALID_TXN_STATE:
        return error, "Partition was not added to the transaction"
    if error in RETRIABLE_VERIFICATION_ERRORS:
        return (
            E.NOT_ENOUGH_REPLICAS,
            "Unable to verify the partition has been added to the transaction. "
            f"Underlying error: {error.name}",
        )
    return error, f"Transaction verification failed: {error.name}"


def client_error(error: ErrorCode, generic_errors: bool) -> ErrorCode:
    """A coordinator's per-partition answer as the waiting append sees it."""
    if error == E.PRODUCER_FENCED:
        return E.INVALID_PRODUCER_EPOCH  # producers expect this here
    if error == E.TRANSACTION_ABORTABLE and not generic_errors:
        return E.INVALID_TXN_STATE  # clients that predate TRANSACTION_ABORTABLE
    return error


class _Waiting:
    """One transaction's verification queued for a coordinator node."""

    __slots__ = ("data", "future", "generic_errors")

    def __init__(self, data: AddPartitionsToTxnTransaction, generic_errors: bool) -> None:
        self.data = data
        self.generic_errors = generic_errors
        self.future: asyncio.Future[Errors] = asyncio.get_running_loop().create_future()

    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(t.name, p) for t in self.data.topics for p in t.partitions]

    def resolve(self, errors: Errors) -> None:
        if not self.future.done():
            self.future.set_result(errors)

    def fail_all(self, error: ErrorCode) -> None:
        self.resolve(dict.fromkeys(self.partitions(), error))


class TxnVerifier:
    """The leader's side of KIP-890 verification (Kafka's AddPartitionsToTxnManager)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._client: NetworkClient | None = None
        #: Verifications waiting for the next request to each node, by transactional id.
        self._queued: dict[int, dict[str, _Waiting]] = {}
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def enabled(self) -> bool:
        """``transaction.partition.verification.enable`` (dynamic in Kafka, read at each use)."""
        return bool(self.broker.config.get("transaction.partition.verification.enable"))

    # -- the leader's side ----------------------------------------------------------------------

    def start(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        guards: Iterable[tuple[TopicPartition, VerificationGuard]],
        generic_errors: bool,
    ) -> Errors | asyncio.Future[Errors]:
        """Ask the coordinator about the partitions whose guard is not the sentinel. Returns the
        errors of the partitions not verified (empty when all are), at once when the
        coordinator is local or nothing needs asking, else as a future."""
        wanted = [tp for tp, guard in guards if guard is not SENTINEL_GUARD]
        if not wanted:
            return {}
        node = self._coordinator_node(transactional_id)
        if node is None:
            return dict.fromkeys(wanted, E.COORDINATOR_NOT_AVAILABLE)
        if node == self.broker.node_id:
            answers = self.broker.txn_coordinator.verify_partitions(
                transactional_id, producer_id, producer_epoch, wanted
            )
            return {tp: client_error(e, generic_errors) for tp, e in answers.items() if e != E.NONE}
        return self._enqueue(node, transactional_id, producer_id, producer_epoch, wanted, generic_errors)

    def _coordinator_node(self, transactional_id: str) -> int | None:
        """The broker leading the id's ``__transaction_state`` partition (this one on one node);
        None when there is none alive."""
        broker = self.broker
        if not broker.cluster_mode:
            return broker.node_id
        cache = broker.metadata_cache
        count = cache.partition_count(TRANSACTION_STATE_TOPIC)
        if not count:
            return None
        state = cache.partition(
            TopicPartition(TRANSACTION_STATE_TOPIC, partition_for(transactional_id, count))
        )
        if state is None or state.leader < 0:
            return None
        if state.leader != broker.node_id and not cache.has_alive_broker(state.leader):
            return None
        return state.leader

    # -- batching per coordinator node ----------------------------------------------------------

    def _enqueue(
        self,
        node: int,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: list[TopicPartition],
        generic_errors: bool,
    ) -> asyncio.Future[Errors]:
        topics: dict[str, list[int]] = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(tp.partition)
        data = AddPartitionsToTxnTransaction(
            transactional_id,
            producer_id,
            producer_epoch,
            True,
            [AddPartitionsToTxnTopic(name, indexes) for name, indexes in topics.items()],
        )
        waiting = _Waiting(data, generic_errors)
        queue = self._queued.setdefault(node, {})
        existing = queue.get(transactional_id)
        if existing is not None:
            # Kafka's addTxnData: at most one verification per transactional id and node.
            if existing.data.producer_epoch > producer_epoch:
                waiting.fail_all(E.INVALID_PRODUCER_EPOCH)
                return waiting.future
            older = existing.data.producer_epoch < producer_epoch
            existing.fail_all(E.INVALID_PRODUCER_EPOCH if older else E.NETWORK_EXCEPTION)
        queue[transactional_id] = waiting
        if self._closed:
            self._fail_queued(node, E.NETWORK_EXCEPTION)
        elif node not in self._in_flight:
            self._send_soon(node)
        return waiting.future

    def _send_soon(self, node: int) -> None:
        self._in_flight.add(node)
        task = asyncio.get_running_loop().create_task(self._send(node), name=f"brook-txn-verify-{node}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, node: int) -> None:
        """Send what is queued for ``node`` (gathered until this task runs), then the next batch."""
        try:
            await asyncio.sleep(0)  # let the requests of this loop turn join the batch
            batch = self._queued.pop(node, {})
            if batch:
                await self._exchange(node, batch)
        finally:
            self._in_flight.discard(node)
            if self._queued.get(node) and not self._closed:
                self._send_soon(node)

    async def _exchange(self, node: int, batch: dict[str, _Waiting]) -> None:
        from broker.network.client import ClientConfig, ClientError, NetworkClient, UnsupportedApiVersionError

        broker = self.broker
        endpoint = broker.metadata_cache.alive_endpoint(node, broker.config.inter_broker_listener_name)
        if endpoint is None:
            for waiting in batch.values():
                waiting.fail_all(E.COORDINATOR_NOT_AVAILABLE)
            return
        if self._client is None:
            self._client = NetworkClient(ClientConfig.for_controller(broker.config))
        request = AddPartitionsToTxnRequest(transactions=[w.data for w in batch.values()])
        try:
            conn = await self._client.connect(node, endpoint.host, endpoint.port)
            try:
                version = conn.choose_version(ADD_PARTITIONS_TO_TXN)
            except UnsupportedApiVersionError:
                version = -1
            if version < VERIFY_MIN_VERSION:
                log.warning("broker %d cannot verify transactions (no AddPartitionsToTxn v4): skipped", node)
                for waiting in batch.values():
                    waiting.resolve({})
                return
            response = await conn.request(request, version=version)
        except ClientError as exc:
            log.warning("AddPartitionsToTxn (verify) to broker %d failed: %s", node, exc)
            self._client.disconnect(node)
            for waiting in batch.values():
                waiting.fail_all(E.NETWORK_EXCEPTION)
            return
        except BaseException:
            for waiting in batch.values():
                waiting.fail_all(E.NETWORK_EXCEPTION)
            raise
        self._answer(batch, response.body)

    @staticmethod
    def _answer(batch: dict[str, _Waiting], body: AddPartitionsToTxnResponse) -> None:
        if body.error_code:
            error = ErrorCode(body.error_code)
            if error == E.CLUSTER_AUTHORIZATION_FAILED:
                error = E.INVALID_TXN_STATE  # the client must not see the broker's authorization
            for waiting in batch.values():
                waiting.fail_all(error)
            return
        for result in body.results_by_transaction:
            found = batch.get(result.transactional_id)
            if found is None:
                continue
            unverified: Errors = {}
            for topic in result.topic_results:
                for p in topic.results_by_partition:
                    if p.partition_error_code != E.NONE:
                        error = ErrorCode(p.partition_error_code)
                        unverified[TopicPartition(topic.name, p.partition_index)] = client_error(
                            error, found.generic_errors
                        )
            found.resolve(unverified)
        for waiting in batch.values():  # a transaction the response left out
            waiting.fail_all(E.NETWORK_EXCEPTION)

    def _fail_queued(self, node: int, error: ErrorCode) -> None:
        for waiting in self._queued.pop(node, {}).values():
            waiting.fail_all(error)

    async def close(self) -> None:
        """Answer every waiting verification NETWORK_EXCEPTION and close the connections."""
        self._closed = True
        for node in list(self._queued):
            self._fail_queued(node, E.NETWORK_EXCEPTION)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
