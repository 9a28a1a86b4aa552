"""What OffsetCommit and TxnOffsetCommit share in reading a request: the partitions to commit,
TOPIC_AUTHORIZATION_FAILED for those of topics the principal may not read and
UNKNOWN_TOPIC_OR_PARTITION for those that do not exist (Kafka answers both without asking the
coordinator)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from broker.group.records import OffsetAndMetadata
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode

TopicPartitionKey = tuple[str, int]


class CommitPartition(Protocol):
    @property
    def partition_index(self) -> int: ...


P_co = TypeVar("P_co", bound=CommitPartition, covariant=True)


class CommitTopic(Protocol[P_co]):
    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> Sequence[P_co]: ...


P = TypeVar("P", bound=CommitPartition)


def offsets_to_commit(
    topics: Iterable[CommitTopic[P]],
    partition_exists: Callable[[TopicPartition], bool],
    to_offset: Callable[[P], OffsetAndMetadata],
    may_read: Callable[[str], bool],
) -> tuple[dict[TopicPartitionKey, ErrorCode], dict[TopicPartitionKey, OffsetAndMetadata]]:
    """(errors, offsets): TOPIC_AUTHORIZATION_FAILED for each partition of a topic ``may_read``
    refuses, UNKNOWN_TOPIC_OR_PARTITION for each that does not exist, ``to_offset`` of each of
    the others."""
    errors: dict[TopicPartitionKey, ErrorCode] = {}
    offsets: dict[TopicPartitionKey, OffsetAndMetadata] = {}
    for topic in topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if not may_read(topic.name):
                errors[tp] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif partition_exists(TopicPartition(*tp)):
                offsets[tp] = to_offset(p)
            else:
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    return errors, offsets
