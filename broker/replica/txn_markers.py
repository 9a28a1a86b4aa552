"""Writing transaction markers to the partitions this broker leads (Kafka's
KafkaApis.handleWriteTxnMarkersRequest and ReplicaManager.appendRecords with origin COORDINATOR).

For each marker and each partition it names: the local leader appends one COMMIT or ABORT control
batch (:meth:`Partition.append_txn_marker`), as Kafka with acks=-1: refused with
NOT_ENOUGH_REPLICAS when the ISR is under the effective min ISR, then answered once the high
watermark passes the marker (:class:`DelayedProduce`; NOT_ENOUGH_REPLICAS_AFTER_APPEND,
REQUEST_TIMED_OUT after ``timeout_ms``, ``request.timeout.ms`` as in Kafka), after an fsync when
``flush.messages`` is reached. Per partition errors: UNKNOWN_TOPIC_OR_PARTITION,
NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, INVALID_PRODUCER_EPOCH,
TRANSACTION_COORDINATOR_FENCED. Each marker that became durable is reported to the marker
listeners (the group coordinator completes transactional offset commits), before the answer, as
Kafka completes the group's pending offsets before it answers the coordinator.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from broker.replica.delayed_produce import DelayedProduce
from broker.replica.partition import Partition
from protocol.error_codes import ErrorCode
from protocol.messages.write_txn_markers_request import WritableTxnMarker
from protocol.messages.write_txn_markers_response import (
    WritableTxnMarkerPartitionResult,
    WritableTxnMarkerResult,
    WritableTxnMarkerTopicResult,
)
from storage import StorageError

if TYPE_CHECKING:
    from broker.replica.manager import ReplicaManager

log = logging.getLogger(__name__)


class _Written:
    """One marker appended, waiting for the high watermark to pass it."""

    __slots__ = ("answer", "marker", "offset", "partition")

    def __init__(
        self,
        answer: WritableTxnMarkerPartitionResult,
        partition: Partition,
        marker: WritableTxnMarker,
        offset: int,
    ) -> None:
        self.answer = answer
        self.partition = partition
        self.marker = marker
        self.offset = offset


async def write_txn_markers(
    replicas: ReplicaManager, markers: list[WritableTxnMarker], timeout_ms: int
) -> list[WritableTxnMarkerResult]:
    """Append each marker to each local leader it names; answer per partition once durable."""
    results: list[WritableTxnMarkerResult] = []
    written: list[_Written] = []
    for marker in markers:
        topics: list[WritableTxnMarkerTopicResult] = []
        for topic in marker.topics:
            answers: list[WritableTxnMarkerPartitionResult] = []
            for index in topic.partition_indexes:
                answer = WritableTxnMarkerPartitionResult(partition_index=index, error_code=0)
                answers.append(answer)
                code, partition, offset = _append(replicas, marker, topic.name, index)
                answer.error_code = code
                if code == ErrorCode.NONE and partition is not None:
                    written.append(_Written(answer, partition, marker, offset))
            topics.append(WritableTxnMarkerTopicResult(name=topic.name, partitions=answers))
        results.append(WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
    await _flush_if_needed(replicas, written)
    await _wait_replicated(written, timeout_ms)
    for item in written:
        if item.answer.error_code == ErrorCode.NONE:
            m = item.marker
            replicas.notify_txn_marker(
                item.partition.tp, m.producer_id, m.producer_epoch, m.transaction_result, item.offset
            )
    return results


def _append(
    replicas: ReplicaManager, marker: WritableTxnMarker, topic: str, index: int
) -> tuple[ErrorCode, Partition | None, int]:
    partition, code = replicas.leader_for(topic, index)
    if partition is None:
        return code, None, -1
    leader_state = partition.leader_state
    if leader_state is not None and leader_state.is_under_min_isr(partition.log.config.min_insync_replicas):
        return ErrorCode.NOT_ENOUGH_REPLICAS, None, -1
    try:
        outcome = partition.append_txn_marker(
            marker.producer_id, marker.producer_epoch, marker.coordinator_epoch, marker.transaction_result
        )
    except (StorageError, OSError) as exc:
        return replicas.storage_failure(partition, exc, "writing a transaction marker to"), None, -1
    except Exception:
        log.exception("writing a transaction marker to %s-%d failed", topic, index)
        return ErrorCode.UNKNOWN_SERVER_ERROR, None, -1
    if outcome.error != ErrorCode.NONE:
        log.info(
            "transaction marker for producer %d refused by %s-%d: %s",
            marker.producer_id,
            topic,
            index,
            outcome.message,
        )
    return ErrorCode(outcome.error), partition, outcome.base_offset


async def _flush_if_needed(replicas: ReplicaManager, written: list[_Written]) -> None:
    """flush.messages reached: fsync before answering (in a disk worker), as Kafka's append."""
    disk = replicas.disk
    if disk is None:
        return
    for item in written:
        log_ = item.partition.log
        if not log_.flush_needed():
            continue
        try:
            await disk.run(log_.flush, item.offset + 1)
        except (StorageError, OSError) as exc:
            item.answer.error_code = replicas.storage_failure(item.partition, exc, "flushing")


async def _wait_replicated(written: list[_Written], timeout_ms: int) -> None:
    """acks=-1: each marker is answered once the HW passes it (at once on one node)."""
    pending: list[_Written] = []
    for item in written:
        if item.answer.error_code != ErrorCode.NONE:
            continue
        done, code = item.partition.check_enough_replicas_reach_offset(item.offset + 1)
        if done:
            item.answer.error_code = code
        else:
            pending.append(item)
    if pending:
        codes = await DelayedProduce([(i.partition, i.offset + 1) for i in pending], timeout_ms).future
        for item, code in zip(pending, codes, strict=True):
            item.answer.error_code = code
