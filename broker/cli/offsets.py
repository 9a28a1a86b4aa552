"""Log offsets (ListOffsets to each leader) and a group's committed offsets (OffsetFetch, OffsetCommit)."""

from __future__ import annotations

import struct
import time
from collections import defaultdict
from collections.abc import Iterable

from broker.cli.client import CliError, KafkaClient, NodeConnection, check_error, retriable
from protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic

TopicPartition = tuple[str, int]
LATEST = -1
EARLIEST = -2
READ_UNCOMMITTED = 0
READ_COMMITTED = 1
_ATTEMPTS = 5
RETRY_BACKOFF_S = 0.1


def list_offsets(
    client: KafkaClient,
    partitions: Iterable[TopicPartition],
    timestamp: int,
    isolation: int = READ_UNCOMMITTED,
) -> dict[TopicPartition, int]:
    """The offset of ``timestamp`` (LATEST, EARLIEST or a time in ms) in each partition, from its
    leader; -1 where no record has that timestamp or later. Leader moves are retried."""
    pending = sorted(set(partitions))
    result: dict[TopicPartition, int] = {}
    for attempt in range(_ATTEMPTS):
        if not pending:
            break
        if attempt:
            time.sleep(RETRY_BACKOFF_S * attempt)  # Kafka's retry.backoff.ms: a new leader is being elected
        leaders = client.leaders({t for t, _ in pending})
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in pending:
            if tp not in leaders:
                raise CliError(f"Partition {tp[0]}-{tp[1]} does not exist")
            by_leader[leaders[tp]].append(tp)
        retry: list[TopicPartition] = []
        for leader, tps in by_leader.items():
            if leader < 0:
                retry += tps
                continue
            topics: dict[str, list[ListOffsetsPartition]] = defaultdict(list)
            for topic, partition in tps:
                topics[topic].append(ListOffsetsPartition(partition_index=partition, timestamp=timestamp))
            request = ListOffsetsRequest(
                replica_id=-1,
                isolation_level=isolation,
                topics=[ListOffsetsTopic(name=t, partitions=ps) for t, ps in topics.items()],
            )
            response = client.node(leader).call(request, cap=None)
            for topic_response in response.topics:
                for p in topic_response.partitions:
                    tp = (topic_response.name, p.partition_index)
                    if retriable(p.error_code):
                        retry.append(tp)
                        continue
                    check_error(p.error_code, None, f"{tp[0]}-{tp[1]}")
                    result[tp] = p.offset
        pending = retry
    if pending:
        raise CliError(f"No leader answered for {', '.join(f'{t}-{p}' for t, p in pending)}")
    return result


def committed_offsets(conn: NodeConnection, group: str) -> dict[TopicPartition, int]:
    """Every offset ``group`` has committed (OffsetFetch with no topics: all of them)."""
    response = conn.call(OffsetFetchRequest(group_id=group, topics=None))
    check_error(response.error_code, None, f"Group {group}")
    result: dict[TopicPartition, int] = {}
    for topic in response.topics:
        for p in topic.partitions:
            check_error(p.error_code, None, f"{topic.name}-{p.partition_index}")
            if p.committed_offset >= 0:
                result[(topic.name, p.partition_index)] = p.committed_offset
    return result


def fetch_committed(
    conn: NodeConnection, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    topics: dict[str, list[int]] = defaultdict(list)
    for topic, partition in partitions:
        topics[topic].append(partition)
    request = OffsetFetchRequest(
        group_id=group,
        topics=[OffsetFetchRequestTopic(name=t, partition_indexes=ps) for t, ps in topics.items()],
    )
    response = conn.call(request)
    check_error(response.error_code, None, f"Group {group}")
    return {
        (t.name, p.partition_index): p.committed_offset
        for t in response.topics
        for p in t.partitions
        if p.error_code == 0 and p.committed_offset >= 0
    }


def commit_offsets(
    conn: NodeConnection,
    group: str,
    offsets: dict[TopicPartition, int],
    *,
    generation: int = -1,
    member_id: str = "",
) -> None:
    """Commit ``offsets`` for ``group`` (as a simple, generation-less commit by default)."""
    topics: dict[str, list[OffsetCommitRequestPartition]] = defaultdict(list)
    for (topic, partition), offset in sorted(offsets.items()):
        topics[topic].append(OffsetCommitRequestPartition(partition_index=partition, committed_offset=offset))
    request = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in topics.items()],
    )
    response = conn.call(request)
    for topic in response.topics:
        for p in topic.partitions:
            check_error(
                p.error_code, None, f"Offset commit of {topic.name}-{p.partition_index} for group {group}"
            )


def decode_assignment(data: bytes) -> list[TopicPartition]:
    """A consumer-protocol member assignment (version prefix, then the versioned struct)."""
    if len(data) < 2:
        return []
    (version,) = struct.unpack_from(">h", data)
    try:
        assignment = ConsumerProtocolAssignment.decode(memoryview(data)[2:], min(max(version, 0), 3))
    except Exception:  # a non-consumer protocol's bytes: no partitions to show
        return []
    return [(tp.topic, p) for tp in assignment.assigned_partitions for p in tp.partitions]
