"""Fetch (key 1), versions 0-17 (v17 only adds the replica directory id that KRaft followers send).

Record data leaves as file slices that the connection ``sendfile``s from the segment files; it
is never read into Python except to down-convert for v0-v3 clients (magic 0 for v0-v1, magic 1
for v2-v3). Limits: ``partition_max_bytes`` per partition and ``max_bytes`` (v3+) for the whole
response, capped by the broker's ``fetch.max.bytes`` as in Kafka (which caps ``min_bytes`` by it
too) and, for a consumer with a ``consumer_byte_rate``, by what its quota allows in ``quota.window.num
- 1`` windows, except that the first batch found is always sent whole, so a consumer can always
progress. Reads stop at the high watermark (read_uncommitted) or the last stable offset
(read_committed, v4+: min(HW, first offset of a transaction still open or whose marker is not
yet replicated)); a read_committed answer lists the aborted transactions overlapping the
records it sends (from the segments' ``.txnindex``), so the consumer drops their records. The
LSO moves only with the HW (a marker holds it until replicated), so waiting on HW moves wakes
read_committed long polls too.

Long poll: when less than ``min_bytes`` is available and ``max_wait_ms`` > 0 (and no partition
has an error), the request waits on the partitions' events — never a sleep loop — and is
answered as soon as enough data arrives, or when ``max_wait_ms`` passes. A follower's waits for
appends; a consumer's for high-watermark moves only (it reads below the HW: on a cluster's
leader an append alone shows it nothing).

From v12 a fetch naming its ``last_fetched_epoch`` whose log diverged from the leader's (that
epoch ends here below the fetch offset, or only older epochs are known) gets no records but a
``diverging_epoch``: the epoch and end offset to truncate to (KIP-320; followers truncate this
way, as Kafka 3.9's); an epoch the leader cannot place at all is OFFSET_OUT_OF_RANGE.

Fetch sessions (KIP-227, v7+): a full fetch with epoch 0 gets a session while
``max.incremental.fetch.session.cache.slots`` allows, then incremental fetches read every
partition of their session and answer only those with news; FETCH_SESSION_ID_NOT_FOUND and
INVALID_FETCH_SESSION_EPOCH as Kafka (:mod:`broker.replica.fetch_session_cache`). v13+ names
topics by id (UNKNOWN_TOPIC_ID). A follower's incremental fetch does not read the quiet
partitions of its session (not named by the request, the follower in the ISR and at the log
end, nothing new to tell: ``_quiet_test``), whose read would answer nothing; their fetch is
recorded all the same, and they go dormant until they change (a long poll on the session takes
in those that do). Kafka reads
every one; skipping them keeps a follower's fetch cost with what changed, not with the session
(``__consumer_offsets`` puts ~17 idle partitions in each follower's session on 3 brokers).
Authorization (an authorizer configured): a consumer needs READ on each topic, a follower
CLUSTER_ACTION on the cluster (TOPIC_AUTHORIZATION_FAILED for the partitions otherwise).

Follower fetches (the replica id: ``replica_id`` below v15, ``replica_state.replica_id`` from
v15) are served in cluster mode only (NOT_LEADER_OR_FOLLOWER on the embedded node), as Kafka's
Partition.fetchRecords: a replica outside the assignment gets UNKNOWN_LEADER_EPOCH (the request
carries a leader epoch) or NOT_LEADER_OR_FOLLOWER; reads go to the log end, not the high
watermark; unless its log diverged (above), the fetch records the follower's position
(:meth:`Partition.update_follower_fetch_state`: ISR expansion, HW, waiting acks=all produces)
before the answer, whose high watermark is the one after it. A long poll's later reads do not
record again (as Kafka's DelayedFetch). Data leaves as file slices (sendfile), as for consumers.
In cluster mode, topic ids resolve through the controller's metadata cache; from v16 a
NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition carries the current leader and epoch and
the response that leader's endpoint (KIP-951).

Reads from the closest replica (KIP-392, cluster mode, consumer fetches v11+): a follower replica
serves consumers as Kafka's do (FetchIsolation HIGH_WATERMARK: reads stop at the follower's own
high watermark, an offset between it and the log end reads nothing, one past the log end is
OFFSET_OUT_OF_RANGE). On a leader with ``replica.selector.class`` set, a partition whose selector
picks a follower for the request's ``rack_id`` is answered at once with
``preferred_read_replica``, the leader's offsets and no records. Below v11 only leaders serve.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from broker.cluster.metadata import ZERO_UUID
from broker.handlers.base import Handler, RequestContext
from broker.network.reply import Reply
from broker.replica.partition import Partition
from broker.security.authz import Op, authorize_cluster, checker
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.exceptions import DecodeError
from protocol.messages.fetch_request import FetchPartition, FetchRequest
from protocol.messages.fetch_response import (
    AbortedTransaction,
    EpochEndOffset,
    FetchableTopicResponse,
    FetchResponse,
    LeaderIdAndEpoch,
    NodeEndpoint,
    PartitionData,
)
from protocol.records import batch as rb
from protocol.records.compression import ZSTD
from protocol.records.errors import UnsupportedCompressionError
from storage import FileSlice, OffsetOutOfRangeError, StorageError
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.replica.fetch_session_cache import CachedPartition, FetchSessionCache, SessionContext
    from broker.replica.replication_quota import ReplicationQuota

log = logging.getLogger(__name__)

API_KEY = 1
READ_COMMITTED = 1
#: KIP-227's "no session, and none wanted" (session id 0, epoch -1: FINAL_EPOCH), what clients
#: without fetch sessions send (librdkafka). FetchSessionCache.open would answer it sessionless.
_NO_SESSION = 0
_FINAL_EPOCH = -1
#: Reads shorter than this are copied into the response rather than sent with ``sendfile``:
#: a slice costs a ``dup``, a ``close`` and a second ``sendmsg`` for the frame's bytes after it,
#: more than copying a few KiB (a follower or consumer at the log's end reads a few batches).
COPY_BELOW = 16 * 1024


@dataclass(slots=True)
class _Target:
    """One requested partition, resolved."""

    topic: str
    topic_id: uuid.UUID
    request: FetchPartition
    partition: Partition | None
    error: ErrorCode
    #: A follower's fetch that diverges from the leader's log: (epoch, end offset) to answer.
    diverging: tuple[int, int] | None = None
    #: KIP-392: the replica the consumer should read from instead (answered without records).
    preferred_replica: int = -1
    #: A consumer's read served by a follower replica here (v11+, bounded by its high watermark).
    from_follower: bool = False


def replica_id_of(request: FetchRequest, version: int) -> int:
    """The fetching replica (-1 for a consumer), as Kafka's FetchRequest.replicaId."""
    return request.replica_state.replica_id if version >= 15 else request.replica_id


def handle(ctx: RequestContext, request: FetchRequest) -> FetchResponse | Awaitable[FetchResponse]:
    version = ctx.version
    replica_id = replica_id_of(request, version)
    if replica_id >= 0 and not ctx.broker.cluster_mode:
        return FetchResponse(error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER, session_id=0, responses=[])
    session: SessionContext | None = None
    # A sessionless fetch skips the cache (and its import at a first fetch) as open() would.
    if version >= 7 and (request.session_id != _NO_SESSION or request.session_epoch != _FINAL_EPOCH):
        now_ms = ctx.broker.clock.milliseconds()
        quiet = _quiet_test(ctx, BrokerId(replica_id), now_ms) if replica_id >= 0 else None
        session = _sessions(ctx).open(request, version, replica_id >= 0, now_ms, quiet)
        if session.error:
            return FetchResponse(error_code=session.error, session_id=0, responses=[])
    # fetch.max.bytes caps what one response holds, and so what a long poll may wait for.
    cap = ctx.broker.config.fetch_max_bytes
    server = ctx.broker.server
    quotas = server.client_quotas if server is not None and replica_id < 0 else None
    if quotas is not None:
        # Kafka's getMaxValueInQuotaWindow: never more than the quota allows in one window span.
        cap = min(cap, quotas.max_fetch_bytes(ctx.security.principal.name, ctx.client_id))
    request.max_bytes = min(request.max_bytes if version >= 3 else 2**31 - 1, cap)
    request.min_bytes = min(request.min_bytes, request.max_bytes)
    follower = replica_id >= 0
    # KIP-392: a consumer's fetch from v11 may read from a follower, and may be told where to read.
    reads_from_followers = ctx.broker.cluster_mode and not follower and version >= 11
    targets = _resolve(ctx, request, reads_from_followers)
    if session is not None and session.active:
        for cached, target in zip(session.active, targets, strict=True):
            cached.partition = target.partition  # for the next fetch's quiet test
    if version >= 12:
        _find_divergence(targets)
    if follower:
        _record_follower_fetches(ctx, BrokerId(replica_id), targets)
    elif reads_from_followers and ctx.broker.replica_manager.replica_selector is not None:
        _choose_read_replicas(ctx, request.rack_id, targets)
    may_wait = (
        request.max_wait_ms > 0
        and request.min_bytes > 0
        and (targets or (session is not None and session.has_dormant))
    )
    if may_wait and _nothing_to_read(
        targets, version >= 4 and request.isolation_level == READ_COMMITTED, follower
    ):
        # An idle consumer's poll: wait without building the empty answer first.
        return _DelayedFetch(ctx, request, targets, session).future
    response, total, errors = _read_all(ctx, request, targets)
    if not may_wait or total >= request.min_bytes or errors:
        return _finish(ctx, session, response, request, targets)
    _release(response)
    return _DelayedFetch(ctx, request, targets, session).future


def _quiet_test(ctx: RequestContext, replica: BrokerId, now_ms: int) -> _QuietTest | None:
    """For a follower's incremental fetch, the test of :meth:`FetchSessionCache.open`; None (read
    everything) while a replica here is offline or an authorizer is configured."""
    broker = ctx.broker
    replicas = broker.replica_manager
    if replicas.any_offline() or broker.authorizer is not None:
        return None
    return _QuietTest(replicas.get, replica, now_ms)


class _QuietTest:
    """Whether a partition of a follower's session, not named by the request, is quiet, i.e.
    its read would answer nothing: still led here in the epoch the follower knows, the follower
    in the ISR and at the log end (as its last fetch recorded), the high watermark and log start
    offset as last answered. A quiet partition's fetch is recorded here (its caught-up time
    moves on, as a read would do) and it is not read; it goes dormant, woken by its partition's
    listeners (an append, a HW move, an ISR or leadership change)."""

    __slots__ = ("hosted", "now_ms", "replica")

    def __init__(
        self, hosted: Callable[[TopicPartition], Partition | None], replica: BrokerId, now_ms: int
    ) -> None:
        self.hosted = hosted
        self.replica = replica
        self.now_ms = now_ms

    def __call__(self, cached: CachedPartition) -> bool:
        partition: Partition | None = cached.partition
        if partition is None or self.hosted(partition.tp) is not partition or not _still_quiet(cached):
            return False
        leader_state = partition.leader_state
        replica = self.replica
        if leader_state is None or replica not in leader_state.isr:
            return False
        state = leader_state.followers.get(replica)
        leo = cached.request.fetch_offset
        if state is None or state.log_end_offset != leo:
            return False
        # update_follower_fetch_state without what cannot happen here: the follower is in the
        # ISR and its log end does not move, so neither the ISR nor the HW can change.
        state.record_fetch(leo, cached.request.log_start_offset, self.now_ms, leo)
        return True

    def watch(self, cached: CachedPartition, wake: Callable[[], None]) -> Callable[[], None]:
        partition: Partition = cached.partition
        partition.add_listener(wake)
        return lambda: partition.remove_listener(wake)


def _still_quiet(cached: CachedPartition) -> bool:
    """Nothing to read or tell of a quiet partition since its fetch (see ``_quiet_test``)."""
    partition: Partition = cached.partition
    request = cached.request
    return (
        partition.is_leader
        and request.current_leader_epoch == partition.leader_epoch
        and request.fetch_offset == partition.log_end_offset
        and partition.high_watermark == cached.high_watermark
        and partition.log_start_offset == cached.log_start_offset
        and partition.log.is_open
    )


def _sessions(ctx: RequestContext) -> FetchSessionCache:
    cache = ctx.broker.fetch_sessions
    if cache is None:
        from broker.replica.fetch_session_cache import FetchSessionCache

        cache = FetchSessionCache(ctx.broker.config.max_incremental_fetch_session_cache_slots)
        ctx.broker.fetch_sessions = cache
    return cache


def _finish(
    ctx: RequestContext,
    session: SessionContext | None,
    response: FetchResponse,
    request: FetchRequest,
    targets: list[_Target],
) -> FetchResponse:
    """The final response, as its fetch session has it (KIP-227, :mod:`fetch_session_cache`)."""
    if replica_id_of(request, ctx.version) < 0:
        _count_bytes_out(ctx, response, targets)
    elif (throttle := _leader_throttle(ctx)) is not None:
        _record_throttled_bytes(throttle, response, targets)
    if session is None:
        return response
    return _sessions(ctx).finish(session, response, ctx.broker.clock.milliseconds())


def _count_bytes_out(ctx: RequestContext, response: FetchResponse, targets: list[_Target]) -> None:
    """Kafka's BytesOutPerSec: the record bytes of a consumer's answer, per topic (a follower's
    are ReplicationBytesOutPerSec, not counted here). ``_read_all`` answers each target with one
    partition entry, in order."""
    stats = ctx.broker.stats
    answered = (p for topic in response.responses for p in topic.partitions)
    for target, data in zip(targets, answered, strict=False):
        if size := _records_size(data.records):
            stats.fetched(target.topic, size)


def _leader_throttle(ctx: RequestContext) -> ReplicationQuota | None:
    """The leader's replication throttle, when a rate is set."""
    throttle = ctx.broker.replica_manager.replication_quotas.leader
    return throttle if throttle.active else None


def _record_throttled_bytes(
    throttle: ReplicationQuota, response: FetchResponse, targets: list[_Target]
) -> None:
    """Kafka's sizeOfThrottledPartitions, recorded once per answer to a follower: the record
    bytes of its throttled partitions (in-sync followers' too, so the total stays bounded)."""
    answered = (p for topic in response.responses for p in topic.partitions)
    size = sum(
        _records_size(data.records)
        for target, data in zip(targets, answered, strict=False)
        if target.partition is not None and throttle.is_throttled(target.partition.tp)
    )
    throttle.record(size)


def _records_size(records: Any) -> int:
    if isinstance(records, FileSlice):
        return records.length
    return len(records) if records else 0


def _find_divergence(targets: list[_Target]) -> None:
    """Kafka's Partition.readRecords with a last fetched epoch (v12+, KIP-320; consumers and
    followers): an epoch the leader cannot place, or a fetch offset below the log start, is
    OFFSET_OUT_OF_RANGE; when that epoch ends here below the fetch offset, or the leader only
    knows an older one, the log diverged there: answered with ``diverging_epoch``, no records."""
    for target in targets:
        partition = target.partition
        p = target.request
        if partition is None or target.error or p.last_fetched_epoch < 0:
            continue
        epoch, end = partition.end_offset_for_epoch(p.last_fetched_epoch)
        if epoch < 0 or end < 0 or p.fetch_offset < partition.log_start_offset:
            target.error = ErrorCode.OFFSET_OUT_OF_RANGE
        elif epoch < p.last_fetched_epoch or end < p.fetch_offset:
            target.diverging = (epoch, end)


def _choose_read_replicas(ctx: RequestContext, client_rack: str, targets: list[_Target]) -> None:
    """KIP-392 on the leader: where ``replica.selector.class`` prefers a follower for this
    consumer, the partition is answered with ``preferred_read_replica`` and no records."""
    replicas = ctx.broker.replica_manager
    selector = replicas.replica_selector
    if selector is None or (not client_rack and selector.picks_leader_without_rack):
        return  # no replica views to build per partition for what would be the leader anyway
    now_ms = ctx.broker.clock.milliseconds()
    listener = ctx.conn.listener
    for target in targets:
        partition = target.partition
        if partition is None or target.error or target.diverging is not None or target.from_follower:
            continue
        target.preferred_replica = replicas.preferred_read_replica(
            partition, client_rack, target.request.fetch_offset, listener, now_ms
        )
        if target.preferred_replica >= 0:
            log.debug(
                "RackAwareReplicaSelector returned preferred replica %d for %s-%d (client rack %r)",
                target.preferred_replica,
                target.topic,
                target.request.partition,
                client_rack,
            )


def _record_follower_fetches(ctx: RequestContext, replica: BrokerId, targets: list[_Target]) -> None:
    """A follower's fetch: check it is a replica, and record its position where the read will
    succeed (Kafka records after the read, with the log end from before it; on the
    event loop nothing appends in between)."""
    now_ms = ctx.broker.clock.milliseconds()
    for target in targets:
        partition = target.partition
        if partition is None or target.error:
            continue
        p = target.request
        if not partition.is_assigned(replica):
            known_epoch = p.current_leader_epoch >= 0
            target.error = ErrorCode.UNKNOWN_LEADER_EPOCH if known_epoch else ErrorCode.NOT_LEADER_OR_FOLLOWER
            continue
        if target.diverging is not None:
            continue  # recorded once the follower has truncated
        leo = partition.log_end_offset
        if not partition.log_start_offset <= p.fetch_offset <= leo:
            continue  # the read answers OFFSET_OUT_OF_RANGE
        partition.update_follower_fetch_state(replica, p.fetch_offset, p.log_start_offset, leo, now_ms)


def _nothing_to_read(targets: list[_Target], committed: bool, follower: bool = False) -> bool:
    """True when every partition is healthy and its fetch offset is at its end (the log end for a
    follower, else the high watermark or the last stable offset), so a read would return nothing
    and no error."""
    for target in targets:
        partition = target.partition
        if partition is None or target.error or target.diverging is not None or target.preferred_replica >= 0:
            return False
        offset = target.request.fetch_offset
        if follower:
            end = partition.log_end_offset
        else:
            end = partition.last_stable_offset if committed else partition.high_watermark
        if offset != end or offset < partition.log_start_offset:
            return False
    return True


def _resolve(ctx: RequestContext, request: FetchRequest, reads_from_followers: bool = False) -> list[_Target]:
    broker = ctx.broker
    metadata = broker.metadata
    replicas = broker.replica_manager
    by_id = ctx.version >= 13
    targets: list[_Target] = []
    cache = broker.metadata_cache if broker.cluster_mode else None
    # Authorization: a follower needs CLUSTER_ACTION, a consumer READ on each topic.
    if broker.authorizer is None:
        may_read = None
    elif replica_id_of(request, ctx.version) >= 0:
        cluster_allowed = authorize_cluster(ctx, Op.CLUSTER_ACTION)
        may_read = lambda _name: cluster_allowed  # noqa: E731
    else:
        may_read = checker(ctx, Op.READ)
    for topic in request.topics:
        named: tuple[str, uuid.UUID] | None
        if cache is not None:
            # Cluster mode: ids resolve through the controller's cache; names go straight to the
            # replica manager, which knows hosted replicas and tells "led elsewhere" from unknown.
            name = cache.topic_name(topic.topic_id) if by_id else topic.topic
            named = None if name is None else (name, topic.topic_id if by_id else cache.topic_id(name))
        else:
            info = metadata.topic_by_id(topic.topic_id) if by_id else metadata.topic(topic.topic)
            named = None if info is None else (info.name, info.topic_id)
        denied = (
            may_read is not None
            and (named is not None or not by_id)
            and not may_read(named[0] if named is not None else topic.topic)
        )
        for p in topic.partitions:
            if denied:
                targets.append(
                    _Target(topic.topic, topic.topic_id, p, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                )
                continue
            if named is None:
                code = ErrorCode.UNKNOWN_TOPIC_ID if by_id else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                targets.append(_Target(topic.topic, topic.topic_id, p, None, code))
                continue
            if reads_from_followers:
                partition, code = replicas.replica_for_read(named[0], p.partition, p.current_leader_epoch)
            else:
                partition, code = replicas.leader_for(named[0], p.partition, p.current_leader_epoch)
            from_follower = partition is not None and not partition.is_leader
            targets.append(_Target(named[0], named[1], p, partition, code, from_follower=from_follower))
    return targets


def _read_all(
    ctx: RequestContext, request: FetchRequest, targets: list[_Target]
) -> tuple[FetchResponse, int, bool]:
    """Read every target once; returns the response, bytes of record data and whether any
    partition has an error."""
    version = ctx.version
    budget = request.max_bytes
    replica_id = replica_id_of(request, version)
    follower = replica_id >= 0
    committed = not follower and version >= 4 and request.isolation_level == READ_COMMITTED
    # Reassignment throttle (Kafka's shouldLeaderThrottle): None unless a leader rate is set.
    throttle = _leader_throttle(ctx) if follower else None
    legacy_magic = 0 if version <= 1 else (1 if version <= 3 else 2)
    total = 0
    errors = False
    min_one = True
    topics: list[FetchableTopicResponse] = []
    current: FetchableTopicResponse | None = None
    current_topic = ""
    current_id = ZERO_UUID
    for target in targets:
        # Partitions of one requested topic share one topic entry, as in Kafka's response. (The
        # partitions of a topic share its name and id objects: ``is`` spares UUID.__eq__.)
        topic_name, topic_id = target.topic, target.topic_id
        if (
            current is None
            or (topic_name is not current_topic and topic_name != current_topic)
            or (topic_id is not current_id and topic_id != current_id)
        ):
            current_topic, current_id = topic_name, topic_id
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
        if not _still_serves(ctx, target, partition):
            # It stepped down (or was deleted) while this fetch waited on it.
            errors = True
            current.partitions.append(
                _partition_error(p.partition, ErrorCode.NOT_LEADER_OR_FOLLOWER, version)
            )
            continue
        refused = _refused_for_old_fetch(partition, version, legacy_magic) if version < 10 else None
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
        if target.diverging is not None:
            data.diverging_epoch = EpochEndOffset(*target.diverging)
            errors = True  # answered at once: the follower must truncate before fetching on
            current.partitions.append(data)
            continue
        if target.preferred_replica >= 0:
            data.preferred_read_replica = target.preferred_replica
            errors = True  # answered at once, as Kafka: the consumer goes to that replica
            current.partitions.append(data)
            continue
        # A follower reads to the log end; a consumer to the HW (or the LSO).
        end = partition.log_end_offset if follower else (lso if committed else hw)
        if p.fetch_offset == end and partition.log_start_offset <= end and partition.log.is_open:
            # At its end: the read would find nothing (the usual case for most partitions of a
            # fetch session, read on every fetch and every wake of a long poll).
            current.partitions.append(data)
            continue
        if (
            throttle is not None
            and replica_id not in partition.state.isr
            and throttle.is_throttled(partition.tp)
            and throttle.is_exceeded()
        ):
            current.partitions.append(data)  # no records for it until the rate falls
            continue
        limit = min(p.partition_max_bytes, budget)
        if limit > 0 or min_one:
            max_offset = None if follower else end
            try:
                result = partition.log.read(p.fetch_offset, max(limit, 0), max_offset, min_one, COPY_BELOW)
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
            records = result.records
            if committed and records is not None:
                try:
                    data.aborted_transactions = _aborted(partition, p.fetch_offset, result.next_offset)
                except (StorageError, OSError) as exc:
                    result.close()
                    errors = True
                    code = ctx.broker.replica_manager.storage_failure(partition, exc, "reading from")
                    current.partitions.append(_partition_error(p.partition, code, version))
                    continue
            if records is not None:
                size = len(records)
                total += size
                budget -= size
                min_one = False
                if legacy_magic == 2:
                    data.records = records
                else:
                    try:
                        converted = _downconvert(records, legacy_magic, p.fetch_offset)
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


def _still_serves(ctx: RequestContext, target: _Target, partition: Partition) -> bool:
    """Whether ``partition`` may still answer this fetch: the leader, or for a consumer reading
    from a follower (KIP-392) the replica still hosted here."""
    if partition.is_leader:
        return True
    return target.from_follower and ctx.broker.replica_manager.get(partition.tp) is partition


def _aborted(partition: Partition, start: int, end: int) -> list[AbortedTransaction]:
    """Kafka's FetchDataInfo.abortedTransactions: the aborted transactions overlapping the records
    sent, ``[start, end)``, from the ``.txnindex`` files (in memory after their first read)."""
    return [
        AbortedTransaction(producer_id=t.producer_id, first_offset=t.first_offset)
        for t in partition.log.collect_aborted_transactions(start, end)
    ]


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


def _downconvert(data: FileSlice | bytes, magic: int, fetch_offset: int) -> bytes | ErrorCode:
    """Down-convert the batches read for a v0-v3 fetch. zstd batches cannot be down-converted:
    as Kafka's lazy conversion, what comes before the first one is sent, and a fetch that starts
    at one gets UNSUPPORTED_COMPRESSION_TYPE (an empty answer would make the consumer ask again
    forever)."""
    from protocol.records.convert import downconvert  # old clients only: loaded at first use

    if isinstance(data, FileSlice):
        with data:
            raw = data.read()
    else:
        raw = data
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
    the end of the appender's turn of the loop) or by its ``max_wait_ms`` timer. Callbacks and
    one future, no task: an idle long poll costs a timer and a listener per partition."""

    __slots__ = (
        "committed",
        "ctx",
        "follower",
        "future",
        "loop",
        "partitions",
        "pending",
        "request",
        "session",
        "session_state",
        "targets",
        "timer",
    )

    def __init__(
        self,
        ctx: RequestContext,
        request: FetchRequest,
        targets: list[_Target],
        session: SessionContext | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        #: A check is scheduled: events until it runs (appends of one read, HW moves) share it.
        self.pending = False
        self.ctx = ctx
        self.request = request
        self.session = session
        self.targets = targets
        #: Answered in the call that completes it (and written then): see broker.network.reply.
        self.future: asyncio.Future[FetchResponse] = Reply(loop=loop)
        self.partitions = list(
            {id(t.partition): t.partition for t in targets if t.partition is not None}.values()
        )
        # A consumer sees nothing of an append until the HW moves past it: only that wakes it.
        follower = replica_id_of(request, ctx.version) >= 0
        self.follower = follower
        self.committed = not follower and ctx.version >= 4 and request.isolation_level == READ_COMMITTED
        for partition in self.partitions:
            if follower:
                partition.add_listener(self.wake)
            else:
                partition.add_watermark_listener(self.wake)
        #: A follower session with dormant partitions: those woken by a change join the targets.
        self.session_state = session.session if session is not None and session.has_dormant else None
        if self.session_state is not None:
            self.session_state.on_wake = self._woken
        self.timer = loop.call_later(request.max_wait_ms / 1000.0, self.expire)
        # Completion, expiry and cancellation (the connection closed) all end here.
        self.future.add_done_callback(self._forget)

    def wake(self) -> None:
        """A watched partition changed: look at the end of this turn of the loop, so that the
        appends (or HW moves) of one read of requests are answered in one response."""
        if not self.pending and not self.future.done():
            self.pending = True
            self.loop.call_soon(self._check)

    def _check(self) -> None:
        self.pending = False
        if self.future.done():
            return
        if _nothing_to_read(self.targets, self.committed, self.follower) and self._all_still_served():
            # Woken by an event that gives it nothing to read (a high-watermark move or another
            # follower's append seen by a follower's fetch): no read of every partition.
            return
        response, total, errors = _read_all(self.ctx, self.request, self.targets)
        if total >= self.request.min_bytes or errors:
            self.future.set_result(_finish(self.ctx, self.session, response, self.request, self.targets))
        else:
            _release(response)

    def _woken(self, cached: CachedPartition) -> None:
        """A dormant partition of the session changed (an append, a HW move, an ISR or
        leadership change): it joins the targets, read and answered if there is news."""
        if self.future.done():
            return
        partition: Partition = cached.partition
        self.targets.append(_Target(cached.topic, cached.topic_id, cached.request, partition, ErrorCode.NONE))
        if all(p is not partition for p in self.partitions):
            self.partitions.append(partition)
            partition.add_listener(self.wake)
        self.wake()

    def _all_still_served(self) -> bool:
        ctx = self.ctx
        return all(
            _still_serves(ctx, target, target.partition)
            for target in self.targets
            if target.partition is not None
        )

    def expire(self) -> None:
        if not self.future.done():
            response = _read_all(self.ctx, self.request, self.targets)[0]
            self.future.set_result(_finish(self.ctx, self.session, response, self.request, self.targets))

    def _forget(self, _: object) -> None:
        self.timer.cancel()
        for partition in self.partitions:
            partition.remove_listener(self.wake)
        state = self.session_state
        if state is not None and state.on_wake == self._woken:
            state.on_wake = None


HANDLER = Handler(API_KEY, 0, 17, handle)
