"""Helpers of the transaction coordinator's tests: a test double of the WriteTxnMarkers seam
(``ReplicaManager.write_txn_markers``, written on the partition side) and request shortcuts."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.write_txn_markers_request import WritableTxnMarker
from protocol.messages.write_txn_markers_response import (
    WritableTxnMarkerPartitionResult,
    WritableTxnMarkerResult,
    WritableTxnMarkerTopicResult,
)
from tests.broker.conftest import Caller

Written = tuple[TopicPartition, int, int, bool, int]


class FakeMarkerWriter:
    """Answers every marker as ``error_for(tp)`` says (NONE by default) and records the written
    ones as (partition, producer id, epoch, committed, coordinator epoch)."""

    def __init__(self, error_for: Callable[[TopicPartition], ErrorCode] | None = None) -> None:
        self.error_for = error_for or (lambda tp: ErrorCode.NONE)
        self.written: list[Written] = []
        self.attempts = 0

    async def __call__(self, markers: list[WritableTxnMarker]) -> list[WritableTxnMarkerResult]:
        results = []
        for marker in markers:
            topics = []
            for topic in marker.topics:
                partitions = []
                for index in topic.partition_indexes:
                    tp = TopicPartition(topic.name, index)
                    self.attempts += 1
                    error = self.error_for(tp)
                    if error == ErrorCode.NONE:
                        self.written.append(
                            (
                                tp,
                                marker.producer_id,
                                marker.producer_epoch,
                                marker.transaction_result,
                                marker.coordinator_epoch,
                            )
                        )
                    partitions.append(WritableTxnMarkerPartitionResult(index, error))
                topics.append(WritableTxnMarkerTopicResult(topic.name, partitions))
            results.append(WritableTxnMarkerResult(marker.producer_id, topics))
        return results


async def acall(c: Caller, request: Any, version: int) -> Any:
    result = c.start(request, version)
    return await result if inspect.isawaitable(result) else result
