"""OffsetFetch (key 9), versions 0-9.

Reads committed offsets (-1 with no metadata where none is committed), whatever the group's
state, so consumers that only store offsets work too. v2+ may ask for every committed offset of
the group (null topics) and carry a group-level error; v5+ answer the leader epoch; v7+
``require_stable`` makes a partition whose commit is still being written, or whose
transactional commit (TxnOffsetCommit) still waits for its marker, answer
UNSTABLE_OFFSET_COMMIT (at the partition: the group-level error stays NONE, as in Kafka's
classic coordinator, and the client retries); v8+ ask for several groups at once, each with
its own error. Kafka 3.9
reads v0 from ZooKeeper; Brook reads it from the coordinator like v1. Before v2 a group-level
error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...) is reported on every requested
partition.

Authorization (an authorizer configured): DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) and on
each topic: a named one answers TOPIC_AUTHORIZATION_FAILED, an all-topics fetch leaves it out.
"""

from __future__ import annotations

from broker.group.offsets import FetchedOffset
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import GROUP, Op, authorize, checker
from protocol.error_codes import ErrorCode
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestGroup
from protocol.messages.offset_fetch_request import OffsetFetchRequestTopics as GroupTopic
from protocol.messages.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

API_KEY = 9
Entries = list[tuple[tuple[str, int], FetchedOffset]]


def handle(ctx: RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse:
    version = ctx.version
    require_stable = version >= 7 and request.require_stable
    if version >= 8:
        groups = []
        for group in request.groups:
            error, entries = _fetch(ctx, group.group_id, _partitions(group.topics), require_stable)
            groups.append(OffsetFetchResponseGroup(group.group_id, _group_topics(entries), error))
        return OffsetFetchResponse(throttle_time_ms=0, groups=groups)
    topics = (
        None if request.topics is None else [GroupTopic(t.name, t.partition_indexes) for t in request.topics]
    )
    single = OffsetFetchRequestGroup(group_id=request.group_id, topics=topics)
    requested = _partitions(single.topics)
    error, entries = _fetch(ctx, single.group_id, requested, require_stable)
    if error != ErrorCode.NONE and version < 2:
        entries = [(tp, FetchedOffset(error=error)) for tp in requested or []]
    return OffsetFetchResponse(
        throttle_time_ms=0, topics=_topics(entries), error_code=error if version >= 2 else ErrorCode.NONE
    )


def _fetch(
    ctx: RequestContext, group_id: str, partitions: list[tuple[str, int]] | None, require_stable: bool
) -> tuple[ErrorCode, Entries]:
    """The group's offsets as the principal may see them: DESCRIBE on the group
    (GROUP_AUTHORIZATION_FAILED) and on each topic (named: TOPIC_AUTHORIZATION_FAILED; all: left out)."""
    offsets = ctx.broker.group_coordinator.offsets
    if ctx.broker.authorizer is None:
        return offsets.fetch(group_id, partitions, require_stable)
    if not authorize(ctx, Op.DESCRIBE, GROUP, group_id):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, []
    may_describe = checker(ctx, Op.DESCRIBE)
    if partitions is None:
        error, entries = offsets.fetch(group_id, None, require_stable)
        return error, [(tp, f) for tp, f in entries if may_describe(tp[0])]
    allowed = [tp for tp in partitions if may_describe(tp[0])]
    error, entries = offsets.fetch(group_id, allowed, require_stable)
    if error != ErrorCode.NONE:
        return error, entries
    refused = FetchedOffset(error=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    found = dict(entries)
    return error, [(tp, found.get(tp, refused)) for tp in partitions]


def _partitions(topics: list[GroupTopic] | None) -> list[tuple[str, int]] | None:
    if topics is None:
        return None
    return [(t.name, p) for t in topics for p in t.partition_indexes]


def _by_topic(entries: Entries) -> dict[str, list[tuple[int, FetchedOffset]]]:
    grouped: dict[str, list[tuple[int, FetchedOffset]]] = {}
    for (topic, partition), fetched in entries:
        grouped.setdefault(topic, []).append((partition, fetched))
    return grouped


def _topics(entries: Entries) -> list[OffsetFetchResponseTopic]:
    return [
        OffsetFetchResponseTopic(
            name,
            [
                OffsetFetchResponsePartition(p, f.offset, f.leader_epoch, f.metadata, f.error)
                for p, f in parts
            ],
        )
        for name, parts in _by_topic(entries).items()
    ]


def _group_topics(entries: Entries) -> list[OffsetFetchResponseTopics]:
    return [
        OffsetFetchResponseTopics(
            name,
            [
                OffsetFetchResponsePartitions(p, f.offset, f.leader_epoch, f.metadata, f.error)
                for p, f in parts
            ],
        )
        for name, parts in _by_topic(entries).items()
    ]


HANDLER = Handler(API_KEY, 0, 9, handle)
