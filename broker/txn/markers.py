"""The transaction marker sender (Kafka's TransactionMarkerChannelManager and
TransactionMarkerRequestCompletionHandler).

Once PrepareCommit/PrepareAbort is durable, every partition of the transaction gets its
COMMIT/ABORT control batch:

* partitions this broker leads through ``ReplicaManager.write_txn_markers`` directly;
* the others with WriteTxnMarkers (v1, or what the leader supports) to their leader's
  inter-broker listener over the :class:`~broker.network.client.NetworkClient`.

Per partition: NONE (or UNSUPPORTED_FOR_MESSAGE_FORMAT / UNSUPPORTED_VERSION, as Kafka) is done;
a partition whose topic no longer exists is dropped; INVALID_PRODUCER_EPOCH and
TRANSACTION_COORDINATOR_FENCED mean a newer coordinator took over: sending stops; anything else
(NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT,
KAFKA_STORAGE_ERROR, a lost connection) is retried against the partition's current leader after
a short backoff. When every marker is written, CompleteCommit/CompleteAbort is appended
(retried while the log answers COORDINATOR_NOT_AVAILABLE). Sending stops when this broker no
longer owns the transaction's ``__transaction_state`` partition at the same coordinator epoch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from broker.txn.state import TransactionMetadata, TxnTransit
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    # Loaded at the first marker (an embedded broker's start is its imports).
    from broker.app import Broker
    from broker.network.client import NetworkClient
    from broker.txn.store import TransactionStateTopic
    from protocol.messages.write_txn_markers_request import WritableTxnMarker
    from protocol.messages.write_txn_markers_response import WritableTxnMarkerResult

log = logging.getLogger(__name__)

E = ErrorCode

#: ``ReplicaManager.write_txn_markers`` (seam 2), or a test double of it.
MarkerWriter = Callable[[list["WritableTxnMarker"]], Awaitable[list["WritableTxnMarkerResult"]]]

_DONE = frozenset({E.NONE, E.UNSUPPORTED_FOR_MESSAGE_FORMAT, E.UNSUPPORTED_VERSION})
_FENCED = frozenset({E.INVALID_PRODUCER_EPOCH, E.TRANSACTION_COORDINATOR_FENCED})
#: The leader id of a partition whose topic is gone.
_DELETED = -2


@dataclass(slots=True)
class TxnMarkers:
    """One transaction's markers in flight."""

    transactional_id: str
    coordinator_epoch: int
    committed: bool
    metadata: TransactionMetadata
    complete: TxnTransit


class MarkerSender:
    def __init__(
        self,
        broker: Broker,
        store: TransactionStateTopic,
        retry_backoff_ms: int,
        *,
        writer: MarkerWriter | None = None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.retry_backoff_ms = retry_backoff_ms
        #: None: ``broker.replica_manager.write_txn_markers``, looked up at each use.
        self.writer = writer
        self._client: NetworkClient | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def send(self, markers: TxnMarkers) -> None:
        """Write the markers, then the completion, in a task of its own."""
        previous = self._tasks.pop(markers.transactional_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.get_running_loop().create_task(
            self._run(markers), name=f"txn-markers-{markers.transactional_id}"
        )
        self._tasks[markers.transactional_id] = task
        task.add_done_callback(lambda t: self._finished(markers.transactional_id, t))

    def _finished(self, transactional_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(transactional_id) is task:
            del self._tasks[transactional_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("sending the markers of %s failed", transactional_id, exc_info=task.exception())

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The transactions whose markers are in flight."""
        return list(self._tasks.values())

    def remove_partition(self, index: int) -> None:
        """The coordinator resigned ``__transaction_state`` partition ``index``: stop its markers."""
        for transactional_id, task in list(self._tasks.items()):
            if self.store.partition_for(transactional_id) == index:
                task.cancel()

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- one transaction --------------------------------------------------------------------------

    def _owned(self, markers: TxnMarkers) -> bool:
        return self.store.still_owned(markers.transactional_id, markers.coordinator_epoch) is markers.metadata

    async def _run(self, markers: TxnMarkers) -> None:
        metadata = markers.metadata
        while metadata.partitions:
            if not self._owned(markers):
                return
            errors = await self._send_round(markers, set(metadata.partitions))
            retry = False
            for tp, error in errors.items():
                if error in _DONE:
                    metadata.partitions.discard(tp)
                elif error in _FENCED:
                    log.info(
                        "stopped the markers of %s: %s (a newer coordinator)",
                        markers.transactional_id,
                        error.name,
                    )
                    return
                else:
                    retry = True
            if retry:
                await asyncio.sleep(self.retry_backoff_ms / 1000)
        while self._owned(markers):
            error = await self.store.append(
                markers.transactional_id,
                markers.coordinator_epoch,
                markers.complete,
                keep_pending_on_unavailable=True,
            )
            if error != E.COORDINATOR_NOT_AVAILABLE:
                if error != E.NONE:
                    log.info("completing %s failed: %s", markers.transactional_id, error.name)
                return
            await asyncio.sleep(self.retry_backoff_ms / 1000)

    async def _send_round(
        self, markers: TxnMarkers, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, ErrorCode]:
        by_leader: dict[int, list[TopicPartition]] = {}
        errors: dict[TopicPartition, ErrorCode] = {}
        for tp in partitions:
            leader = self._leader_of(tp)
            if leader == _DELETED:
                log.info(
                    "dropping the marker of %s for %s: the topic no longer exists",
                    markers.transactional_id,
                    tp,
                )
                errors[tp] = E.NONE
            elif leader < 0:
                errors[tp] = E.NOT_LEADER_OR_FOLLOWER
            else:
                by_leader.setdefault(leader, []).append(tp)
        sends = [self._send_to(leader, markers, tps) for leader, tps in by_leader.items()]
        for result in await asyncio.gather(*sends):
            errors.update(result)
        return errors

    def _leader_of(self, tp: TopicPartition) -> int:
        broker = self.broker
        if broker.cluster_mode:
            cache = broker.metadata_cache
            if not cache.contains(tp.topic):
                return _DELETED
            state = cache.partition(tp)
            return -1 if state is None else state.leader
        info = broker.metadata.topic(tp.topic)
        if info is None or tp.partition >= len(info.partitions):
            return _DELETED
        return info.partitions[tp.partition].leader

    def _marker(self, markers: TxnMarkers, partitions: list[TopicPartition]) -> WritableTxnMarker:
        from protocol.messages.write_txn_markers_request import WritableTxnMarker, WritableTxnMarkerTopic

        by_topic: dict[str, list[int]] = {}
        for tp in sorted(partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        return WritableTxnMarker(
            producer_id=markers.metadata.producer_id,
            producer_epoch=markers.metadata.producer_epoch,
            transaction_result=markers.committed,
            topics=[WritableTxnMarkerTopic(topic, indexes) for topic, indexes in by_topic.items()],
            coordinator_epoch=markers.coordinator_epoch,
        )

    async def _send_to(
        self, leader: int, markers: TxnMarkers, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, ErrorCode]:
        from broker.network.client import ClientError

        marker = self._marker(markers, partitions)
        try:
            if leader == self.broker.node_id:
                results = await self._local_writer()([marker])
            else:
                results = await self._send_remote(leader, marker)
        except (ClientError, OSError) as exc:
            log.info("sending markers to broker %d failed: %s", leader, exc)
            return dict.fromkeys(partitions, E.NETWORK_EXCEPTION)
        except Exception:
            # A bug, not the peer: logged, retried after a longer pause rather than lost.
            log.exception("writing markers of %s on broker %d failed", markers.transactional_id, leader)
            await asyncio.sleep(1)
            return dict.fromkeys(partitions, E.UNKNOWN_SERVER_ERROR)
        errors = dict.fromkeys(partitions, E.UNKNOWN_SERVER_ERROR)
        for result in results:
            for topic in result.topics:
                for partition in topic.partitions:
                    tp = TopicPartition(topic.name, partition.partition_index)
                    if tp in errors:
                        errors[tp] = ErrorCode(partition.error_code)
        return errors

    def _local_writer(self) -> MarkerWriter:
        if self.writer is not None:
            return self.writer
        # Seam 2: txnpart adds ReplicaManager.write_txn_markers (absent until the branches merge).
        writer: MarkerWriter = getattr(self.broker.replica_manager, "write_txn_markers")  # noqa: B009
        return writer

    async def _send_remote(self, leader: int, marker: WritableTxnMarker) -> list[WritableTxnMarkerResult]:
        from broker.network.client import ClientConfig, ClientError, NetworkClient
        from protocol.messages.write_txn_markers_request import WriteTxnMarkersRequest

        broker = self.broker
        endpoint = broker.metadata_cache.alive_endpoint(leader, broker.config.inter_broker_listener_name)
        if endpoint is None:
            raise ClientError(f"broker {leader} is not alive")
        if self._client is None:
            self._client = NetworkClient(ClientConfig.for_controller(broker.config))
        try:
            response = await self._client.send(
                leader, endpoint.host, endpoint.port, WriteTxnMarkersRequest(markers=[marker]), max_version=1
            )
        except ClientError:
            self._client.disconnect(leader)
            raise
        result: list[WritableTxnMarkerResult] = response.body.markers
        return result
