"""Fetch (key 1), versions 0-17 (v17 only adds the replica directory id that KRaft followers send).

Record data leaves as file slices that the connection ``sendfile``s from the segment files; it
is never read into Python except to down-convert for v0-v3 clients (magic 0 for v0-v1, magic 1
for v2-v3). Limits: ``partition_max_bytes`` per partition and ``max_bytes`` (v3+) for the whole
response, capped by the broker's ``fetch.max.bytes`` as in Kafka (which caps ``min_bytes`` by it
too), except that the first batch found is always sent whole, so a consumer can always
progress. Reads stop at the high watermark (read_uncommitted) or the last stable offset
(read_committed, v4+; equal while there are no transactions).

Long poll: when less than ``min_bytes`` is available and ``max_wait_ms`` > 0 (and no partition
has an error), the request waits on the partitions' append events — never a sleep loop — and is
answered as soon as enough data arrives, or when ``max_wait_ms`` passes.

From v12 a fetch naming its ``last_fetched_epoch`` whose log diverged from the leader's (that
epoch ends here below the fetch offset, or is unknown) gets no records but a ``diverging_epoch``:
the epoch and end offset to truncate to (KIP-320; followers truncate this way, as Kafka 3.9's).

Fetch sessions (KIP-227, v7+) are declined the way Kafka declines them when its session cache is
full: full fetches get session id 0, so clients keep sending full requests; an incremental fetch
naming a session gets FETCH_SESSION_ID_NOT_FOUND. v13+ names topics by id (UNKNOWN_TOPIC_ID).
Follower fetches (``replica_id`` before v15, ``replica_state.replica_id`` from v15) are served in
cluster mode only: they read up to the log end offset rather than the high watermark (Kafka's
FetchIsolation.LOG_END), and the fetch offset is taken as the follower's log end offset, which
moves the high watermark (the smallest log end offset of the ISR). A single node refuses them
(NOT_LEADER_OR_FOLLOWER).
In cluster mode, topic ids resolve through the controller's metadata cache; from v16 a
NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition carries the current leader and epoch and
the response that leader's endpoint (KIP-951).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass

from broker.cluster.metadata import ZERO_UUID
from broker.handlers.base import Handler, RequestContext
from broker.replica.partition import Partition
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.exceptions import DecodeError
from protocol.messages.fetch_request import FetchPartition, FetchRequest
from protocol.messages.fetch_response import (
    EpochEndOffset,
    FetchableTopicResponse,
    FetchResponse,
    LeaderIdAndEpoch,
    NodeEndpoint,
    PartitionData,
)
from protocol.records import batch as rb
from protocol.records import downconvert
from protocol.records.compression import ZSTD
from protocol.records.errors import UnsupportedCompressionError
from storage import FileSlice, OffsetOutOfRangeError, StorageError

log = logging.getLogger(__name__)

API_KEY = 1
FINAL_EPOCH = -1
INITIAL_EPOCH = 0
READ_COMMITTED = 1


@dataclass(slots=True)
class _Target:
    """One requested partition, resolved."""

    topic: str
    topic_id: uuid.UUID
    request: FetchPartition
    partition: Partition | None
    error: ErrorCode


def handle(ctx: RequestContext, request: FetchRequest) -> FetchResponse | Awaitable[FetchResponse]:
    version = ctx.version
    follower = _follower_id(request, version)
    if follower >= 0 and not ctx.broker.cluster_mode:
        return FetchResponse(error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER, session_id=0, responses=[])
    if version >= 7:
        session_error = _session_error(request)
        if session_error is not None:
            return FetchResponse(error_code=session_error, session_id=0, responses=[])
    # fetch.max.bytes caps what one response holds, and so what a long poll may wait for.
    cap = ctx.broker.config.fetch_max_bytes
    request.max_bytes = min(request.max_bytes if version >= 3 else 2**31 - 1, cap)
    request.min_bytes = min(request.min_bytes, request.max_bytes)
    targets = _resolve(ctx, request)
    if follower >= 0:
        _note_follower_positions(targets, follower)
    may_wait = request.max_wait_ms > 0 and request.min_bytes > 0 and targets
    if may_wait and _nothing_to_read(
        targets, version >= 4 and request.isolation_level == READ_COMMITTED, follower >= 0
    ):
        # An idle consumer's poll: wait without building the empty answer first.
        return _DelayedFetch(ctx, request, targets).future
    response, total, errors = _read_all(ctx, request, targets)
    if not may_wait or total >= request.min_bytes or errors:
        return response
    _release(response)
    return _DelayedFetch(ctx, request, targets).future


def _follower_id(request: FetchRequest, version: int) -> int:
    """The fetching follower's broker id, or -1 for a consumer."""
    return request.replica_state.replica_id if version >= 15 else request.replica_id


def _note_follower_positions(targets: list[_Target], follower: int) -> None:
    """A follower's fetch offset is its log end offset: the leader's high watermark may move."""
    for target in targets:
        partition = target.partition
        if partition is None or target.error:
            continue
        partition.follower_leo[BrokerId(follower)] = target.request.fetch_offset
        if partition.maybe_increment_high_watermark():
            partition.wake_waiters()


def _nothing_to_read(targets: list[_Target], committed: bool, follower: bool = False) -> bool:
    """True when every partition is healthy and its fetch offset is at its end (the log end for a
    follower, else the high watermark or the last stable offset), so a read would return nothing
    and no error."""
    for target in targets:
        partition = target.partition
        if partition is None or target.error:
            return False
        offset = target.request.fetch_offset
        if follower:
            end = partition.log_end_offset
        else:
            end = partition.last_stable_offset if committed else partition.high_watermark
        if offset != end or offset < partition.log_start_offset:
            return False
    return True


def _session_error(request: FetchRequest) -> ErrorCode | None:
    if request.session_id != 0:
        return ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    if request.session_epoch not in (FINAL_EPOCH, INITIAL_EPOCH):
        return ErrorCode.INVALID_FETCH_SESSION_EPOCH
    return None


def _resolve(ctx: RequestContext, request: FetchRequest) -> list[_Target]:
    broker = ctx.broker
    metadata = broker.metadata
    replicas = broker.replica_manager
    by_id = ctx.version >= 13
    targets: list[_Target] = []
    cache = broker.metadata_cache if broker.cluster_mode else None
    for topic in request.topics:
        named: tuple[str, uuid.UUID] | None
        if cache is not None:
            # Cluster mode: ids resolve through the controller's cache; names go straight to the
            # replica manager, which knows hosted replicas and tells "led elsewhere" from unknown.
            name = cache.topic_name(topic.topic_id) if by_id else topic.topic
            named = None if name is None else (name, cache.topic_id(name))
        else:
            info = metadata.topic_by_id(topic.topic_id) if by_id else metadata.topic(topic.topic)
            named = None if info is None else (info.name, info.topic_id)
        for p in topic.partitions:
            if named is None:
                code = ErrorCode.UNKNOWN_TOPIC_ID if by_id else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                targets.append(_Target(topic.topic, topic.topic_id, p, None, code))
                continue
            partition, code = replicas.leader_for(named[0], p.partition, p.current_leader_epoch)
            targets.append(_Target(named[0], named[1], p, partition, code))
    return targets


def _read_all(
    ctx: RequestContext, request: FetchRequest, targets: list[_Target]
) -> tuple[FetchResponse, int, bool]:
    """Read every target once; returns the response, bytes of record data and whether any
    partition has an error."""
    version = ctx.version
    budget = request.max_bytes
    committed = version >= 4 and request.isolation_level == READ_COMMITTED
    legacy_magic = 0 if version <= 1 else (1 if version <= 3 else 2)
    follower = _follower_id(request, version) >= 0
    total = 0
    errors = False
    min_one = True
    topics: list[FetchableTopicResponse] = []
    current: FetchableTopicResponse | None = None
    current_key: tuple[str, uuid.UUID] | None = None
    for target in targets:
        # Partitions of one requested topic share one topic entry, as in Kafka's response.
        key = (target.topic, target.topic_id)
        if current is None or key != current_key:
            current_key = key
            current = FetchableTopicResponse(
                topic=target.topic if version < 13 else "",
                topic_id=target.topic_id if version >= 13 else ZERO_UUID,
                partitions=[],
            )
            topics.append(current)
        p = target.request
        partition = target.partition
        if target.error or partition is None:
            errors = True
            current.partitions.append(
                _partition_error(p.partition, target.error or ErrorCode.UNKNOWN_SERVER_ERROR, version)
            )
            continue
        if not partition.is_leader:
            # It stepped down (or was deleted) while this fetch waited on it.
            errors = True
            current.partitions.append(
                _partition_error(p.partition, ErrorCode.NOT_LEADER_OR_FOLLOWER, version)
            )
            continue
        refused = _refused_for_old_fetch(partition, version, legacy_magic)
        if refused is not None:
            errors = True
            current.partitions.append(_partition_error(p.partition, refused, version))
            continue
        hw = partition.high_watermark
        lso = partition.last_stable_offset
        data = PartitionData(
            partition_index=p.partition,
            error_code=0,
            high_watermark=hw,
            last_stable_offset=lso if version >= 4 else -1,
            log_start_offset=partition.log_start_offset if version >= 5 else -1,
            aborted_transactions=([] if committed else None) if version >= 4 else [],
            preferred_read_replica=-1,
            records=b"",
        )
        if version >= 12 and p.last_fetched_epoch >= 0:
            diverging = _diverging_epoch(partition, p.last_fetched_epoch, p.fetch_offset)
            if diverging is not None:
                # No records: the fetcher truncates first (KIP-320, Kafka's truncation on fetch).
                data.diverging_epoch = diverging
                current.partitions.append(data)
                continue
        limit = min(p.partition_max_bytes, budget)
        if limit > 0 or min_one:
            try:
                bound = partition.log_end_offset if follower else (lso if committed else hw)
                result = partition.log.read(p.fetch_offset, max(limit, 0), bound, min_one)
            except OffsetOutOfRangeError:
                errors = True
                data.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                data.records = b""
                current.partitions.append(data)
                continue
            except (StorageError, OSError) as exc:
                errors = True
                code = ctx.broker.replica_manager.storage_failure(partition, exc, "reading from")
                # Offsets unknown (-1), as Kafka's LogReadResult for a KafkaStorageException.
                current.partitions.append(_partition_error(p.partition, code, version))
                continue
            if result.slice is not None:
                size = result.slice.length
                total += size
                budget -= size
                min_one = False
                if legacy_magic == 2:
                    data.records = result.slice
                else:
                    try:
                        converted = _downconvert(result.slice, legacy_magic, p.fetch_offset)
                    except OSError as exc:  # reading the slice back from the segment failed
                        converted = ctx.broker.replica_manager.storage_failure(partition, exc, "reading from")
                    if isinstance(converted, ErrorCode):
                        errors = True
                        current.partitions.append(_partition_error(p.partition, converted, version))
                        continue
                    data.records = converted
        current.partitions.append(data)
    response = FetchResponse(throttle_time_ms=0, error_code=0, session_id=0, responses=topics)
    if errors and version >= 16:
        response.node_endpoints = _leader_hints(ctx, targets, topics)
    return response, total, errors


def _diverging_epoch(
    partition: Partition, last_fetched_epoch: int, fetch_offset: int
) -> EpochEndOffset | None:
    """Kafka's Partition.validateFetchOffsetAndMaybeGetDivergingEpoch (v12+): where the leader's
    log ends for the fetcher's last fetched epoch, when that is below the fetch offset or names an
    older epoch (the fetcher's log diverged from ours there); None when the fetch is consistent."""
    epoch, end = partition.log.leader_epochs.end_offset_for_epoch(last_fetched_epoch)
    if epoch == partition.leader_epoch or (epoch >= 0 and end > partition.log_end_offset):
        end = partition.log_end_offset  # the current epoch ends at the log end (as OffsetForLeaderEpoch)
    if epoch < last_fetched_epoch or end < fetch_offset:
        return EpochEndOffset(epoch, end)
    return None


def _leader_hints(
    ctx: RequestContext, targets: list[_Target], topics: list[FetchableTopicResponse]
) -> list[NodeEndpoint]:
    """KIP-951 (v16+): a NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition names the current
    leader and epoch, and the response carries that leader's endpoint, as Kafka's handleFetchRequest."""
    replicas = ctx.broker.replica_manager
    endpoints: dict[int, NodeEndpoint] = {}
    answered = (p for topic in topics for p in topic.partitions)
    for target, data in zip(targets, answered, strict=True):
        if data.error_code not in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH):
            continue
        hint = replicas.current_leader(TopicPartition(target.topic, data.partition_index), ctx.conn.listener)
        data.current_leader = LeaderIdAndEpoch(hint.leader_id, hint.leader_epoch)
        node = hint.endpoint
        if node is not None:
            endpoints[node.node_id] = NodeEndpoint(node.node_id, node.host, node.port, node.rack)
    return list(endpoints.values())


def _refused_for_old_fetch(partition: Partition, version: int, legacy_magic: int) -> ErrorCode | None:
    """Kafka's KafkaApis.maybeConvertFetchedData: a topic whose compression.type is zstd cannot be
    fetched below v10, and message.downconversion.enable=false refuses fetches that need it."""
    config = partition.log.config
    if version < 10 and config.compression_type == "zstd":
        return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    if legacy_magic < 2 and not config.message_downconversion_enable:
        return ErrorCode.UNSUPPORTED_VERSION
    return None


def _downconvert(data: FileSlice, magic: int, fetch_offset: int) -> bytes | ErrorCode:
    """Down-convert a slice for a v0-v3 fetch. zstd batches cannot be down-converted: as Kafka's
    lazy conversion, what comes before the first one is sent, and a fetch that starts at one gets
    UNSUPPORTED_COMPRESSION_TYPE (an empty answer would make the consumer ask again forever)."""
    try:
        raw = data.read()
    finally:
        data.close()
    try:
        return downconvert(raw, magic, first_offset=fetch_offset)
    except UnsupportedCompressionError:
        cut = _first_zstd_batch(raw)
        if not cut:
            return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        try:
            return downconvert(memoryview(raw)[:cut], magic, first_offset=fetch_offset)
        except (DecodeError, UnsupportedCompressionError):
            return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    except DecodeError as exc:
        log.warning("cannot down-convert to magic %d for an old fetch: %s", magic, exc)
        return b""


def _first_zstd_batch(raw: bytes) -> int | None:
    """Position of the first zstd-compressed v2 batch in ``raw``."""
    try:
        for pos, _ in rb.iter_entries(raw):
            if rb.magic_at(raw, pos) == 2 and rb.read_header(raw, pos).compression == ZSTD:
                return pos
    except DecodeError:
        return None
    return None


def _partition_error(index: int, code: ErrorCode, version: int) -> PartitionData:
    return PartitionData(
        partition_index=index,
        error_code=code,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        aborted_transactions=None if version >= 4 else [],
        preferred_read_replica=-1,
        records=b"",
    )


def _release(response: FetchResponse) -> None:
    for topic in response.responses:
        for p in topic.partitions:
            if isinstance(p.records, FileSlice):
                p.records.close()


class _DelayedFetch:
    """A fetch waiting for data: completed by an append to one of its partitions (checked at
    once, in the appender's call) or by its ``max_wait_ms`` timer. Callbacks and one future, no
    task: an idle long poll costs a timer and a listener per partition."""

    __slots__ = ("ctx", "future", "partitions", "request", "targets", "timer")

    def __init__(self, ctx: RequestContext, request: FetchRequest, targets: list[_Target]) -> None:
        loop = asyncio.get_running_loop()
        self.ctx = ctx
        self.request = request
        self.targets = targets
        self.future: asyncio.Future[FetchResponse] = loop.create_future()
        self.partitions = list(
            {id(t.partition): t.partition for t in targets if t.partition is not None}.values()
        )
        for partition in self.partitions:
            partition.add_listener(self.wake)
        self.timer = loop.call_later(request.max_wait_ms / 1000.0, self.expire)
        # Completion, expiry and cancellation (the connection closed) all end here.
        self.future.add_done_callback(self._forget)

    def wake(self) -> None:
        if self.future.done():
            return
        response, total, errors = _read_all(self.ctx, self.request, self.targets)
        if total >= self.request.min_bytes or errors:
            self.future.set_result(response)
        else:
            _release(response)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_result(_read_all(self.ctx, self.request, self.targets)[0])

    def _forget(self, _: object) -> None:
        self.timer.cancel()
        for partition in self.partitions:
            partition.remove_listener(self.wake)


HANDLER = Handler(API_KEY, 0, 17, handle)
