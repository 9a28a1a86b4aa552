"""The leader's side of fetch sessions (KIP-227), as Kafka's FetchManager and FetchSessionCache.

A fetch (v7+) with session 0 and epoch 0 is full and asks for a session: after its response the
broker keeps the partitions it named, with what they last answered (high watermark, log start
offset), under a new session id, if ``max.incremental.fetch.session.cache.slots`` allows (a full
cache evicts a session idle for two minutes, or, for a follower's request, the least recently
used consumer session; otherwise the answer is session 0 and the client stays sessionless).
Epoch -1 is a sessionless full fetch; a full fetch naming a session closes it first.

An incremental fetch (a session id, epoch 1, 2, ...) updates the session: partitions it names are
added or take its fetch offsets, ``forgotten_topics_data`` leaves. Every partition of the session
is read, and the response holds only those with something new: records, a changed high
watermark or log start offset, an error, a diverging epoch or a preferred read replica. Those
move to the end of the session's order (the next reads start with the others, for fairness). An
unknown session is FETCH_SESSION_ID_NOT_FOUND; a wrong epoch INVALID_FETCH_SESSION_EPOCH.
A follower's session on the leader skips the read of its quiet partitions (the ``quiet`` test
of :meth:`FetchSessionCache.open`, from the fetch handler), which would answer nothing. A quiet
partition goes dormant: the next fetches do not look at it at all until it is woken (by the
partition's own change event, which the test's ``watch`` hooks; by a request naming it; or when
the test no longer holds at the refresh every ``DORMANT_REFRESH_MS``, which also records its
fetch again). So a follower's fetch costs what changed, not what its session holds.

Partitions are keyed as the request names them: by topic name below v13, by topic id from v13.
Pure: no I/O; the fetch handler drives it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import FetchResponse, PartitionData
from storage.fast_dataclass import dataclass, field

NO_SESSION = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
#: Kafka's FetchSessionCache evictionMs: a session unused this long may be evicted for a new one.
EVICTION_MS = 120_000
#: How often a fetch in a follower's session looks at its dormant partitions again: their fetch
#: is recorded by the quiet test (the follower's caught-up time moves on: no ISR shrink, with
#: ``replica.lag.time.max.ms`` far above this) and what no event tells (a log start moved by
#: retention) is found.
DORMANT_REFRESH_MS = 1_000

#: (topic name or topic id, partition)
Key = tuple[str | uuid.UUID, int]


@dataclass(slots=True)
class CachedPartition:
    """One partition of a session: what its next read asks and what it last answered."""

    topic: str
    topic_id: uuid.UUID
    request: FetchPartition
    high_watermark: int = -1
    log_start_offset: int = -1
    #: The replica the last read of it resolved to (a follower session's quiet test; the fetch
    #: handler sets it, this module never looks inside).
    partition: Any = None
    #: While dormant: ends the watch on its changes (from :meth:`QuietTest.watch`).
    unwatch: Callable[[], None] | None = None

    def must_respond(self, data: PartitionData) -> bool:
        """Kafka's CachedPartition.maybeUpdateResponseData: whether an incremental response must
        carry ``data``; the cached offsets follow what is answered."""
        respond = _records_size(data) > 0 or data.preferred_read_replica >= 0
        if data.high_watermark != self.high_watermark:
            respond = True
            self.high_watermark = data.high_watermark
        if data.log_start_offset != self.log_start_offset:
            respond = True
            self.log_start_offset = data.log_start_offset
        if data.error_code:
            self.high_watermark = -1  # resent once the error is gone
            respond = True
        diverging = data.diverging_epoch
        return respond or diverging.epoch >= 0 or diverging.end_offset >= 0


class QuietTest(Protocol):
    """The fetch handler's test for a follower's session (see :meth:`FetchSessionCache.open`)."""

    def __call__(self, cached: CachedPartition) -> bool:
        """Whether ``cached`` would answer nothing (and then its fetch is recorded)."""

    def watch(self, cached: CachedPartition, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` when the partition changes; returns what ends that."""


@dataclass(slots=True)
class FetchSession:
    id: int
    privileged: bool
    #: The partitions, in the order they are read.
    partitions: dict[Key, CachedPartition]
    #: The epoch the next incremental request must carry.
    epoch: int = 1
    last_used_ms: int = 0
    #: ``partitions`` less the dormant ones, in the same order: what a fetch looks at.
    awake: dict[Key, CachedPartition] = field(default_factory=dict)
    #: Quiet partitions no fetch looks at until they are woken (a follower's session).
    dormant: dict[Key, CachedPartition] = field(default_factory=dict)
    #: When the dormant partitions were last looked at (DORMANT_REFRESH_MS).
    refreshed_ms: int = 0
    #: Called with a partition woken by its change (set by a fetch parked on this session).
    on_wake: Callable[[CachedPartition], None] | None = None

    def next_epoch(self) -> None:
        self.epoch = 1 if self.epoch >= 0x7FFFFFFF else self.epoch + 1

    def add(self, key: Key, cached: CachedPartition) -> None:
        self.partitions[key] = cached
        self.awake[key] = cached

    def drop(self, key: Key) -> None:
        self.wake(key)
        self.partitions.pop(key, None)
        self.awake.pop(key, None)

    def move_to_end(self, key: Key) -> None:
        self.partitions[key] = self.partitions.pop(key)
        if key in self.awake:
            self.awake[key] = self.awake.pop(key)

    def sleep(self, key: Key, cached: CachedPartition, quiet: QuietTest) -> None:
        """Make ``cached`` dormant until it changes (or a request names it)."""

        def changed() -> None:
            if self.dormant.get(key) is cached:
                self.wake(key)
                if self.on_wake is not None:
                    self.on_wake(cached)

        del self.awake[key]
        self.dormant[key] = cached
        cached.unwatch = quiet.watch(cached, changed)

    def wake(self, key: Key) -> None:
        cached = self.dormant.pop(key, None)
        if cached is None:
            return
        unwatch, cached.unwatch = cached.unwatch, None
        if unwatch is not None:
            unwatch()
        self.awake[key] = cached

    def wake_all(self) -> None:
        for key in list(self.dormant):
            self.wake(key)


@dataclass(slots=True)
class SessionContext:
    """How one fetch uses sessions: ``kind`` is "sessionless", "new" (full, a session is made
    after the response if the cache has room) or "incremental"."""

    kind: str
    by_id: bool
    privileged: bool
    session: FetchSession | None = None
    error: ErrorCode = ErrorCode.NONE
    #: The request's partitions, for a new session.
    requested: list[tuple[str, uuid.UUID, FetchPartition]] = field(default_factory=list)
    #: An incremental fetch with a quiet test: the partitions it reads, in the order of the
    #: request's ``topics`` (the dormant ones are left out).
    active: list[CachedPartition] = field(default_factory=list)

    @property
    def has_dormant(self) -> bool:
        """Whether partitions of the session were left out as dormant (a long poll waits on them)."""
        return self.session is not None and bool(self.session.dormant)


class FetchSessionCache:
    def __init__(self, max_entries: int, rng: random.Random | None = None) -> None:
        self.max_entries = max_entries
        self._sessions: dict[int, FetchSession] = {}
        self._rng = rng or random.Random()
        #: Counters, for tests and the bench: sessions made, evicted, and declined.
        self.created = 0
        self.evicted = 0
        self.declined = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self._sessions.get(session_id)

    def remove(self, session_id: int) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session.wake_all()  # no watch outlives its session

    def open(
        self,
        request: FetchRequest,
        version: int,
        privileged: bool,
        now_ms: int,
        quiet: QuietTest | None = None,
    ) -> SessionContext:
        """Kafka's FetchManager.newContext. An incremental request's ``topics`` are replaced by
        the session's partitions (updated by the request), which is what the fetch then reads.

        ``quiet`` (the leader's test for a follower's session) leaves out of that read each
        partition the request does not name for which it returns True: one whose read could
        answer nothing (Kafka reads every partition of the session and drops those from the
        answer; Brook skips the read). Such a partition goes dormant (module docstring)."""
        by_id = version >= 13
        if version < 7 or request.session_epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if request.session_id != NO_SESSION:
                self.remove(request.session_id)
            if version < 7 or request.session_epoch == FINAL_EPOCH:
                return SessionContext("sessionless", by_id, privileged)
            requested = [(t.topic, t.topic_id, p) for t in request.topics for p in t.partitions]
            return SessionContext("new", by_id, privileged, requested=requested)
        session = self._sessions.get(request.session_id)
        if session is None:
            return SessionContext(
                "incremental", by_id, privileged, error=ErrorCode.FETCH_SESSION_ID_NOT_FOUND
            )
        if session.epoch != request.session_epoch:
            error = ErrorCode.INVALID_FETCH_SESSION_EPOCH
            return SessionContext("incremental", by_id, privileged, error=error)
        named: set[Key] = set()
        for topic in request.topics:
            for p in topic.partitions:
                key = _key(topic.topic, topic.topic_id, p.partition, by_id)
                named.add(key)
                cached = session.partitions.get(key)
                if cached is None:
                    session.add(key, CachedPartition(topic.topic, topic.topic_id, p))
                else:
                    cached.request = p
                    session.wake(key)
        for forgotten in request.forgotten_topics_data:
            for index in forgotten.partitions:
                session.drop(_key(forgotten.topic, forgotten.topic_id, index, by_id))
        session.next_epoch()
        session.last_used_ms = now_ms
        request.forgotten_topics_data = []
        context = SessionContext("incremental", by_id, privileged, session=session)
        if quiet is None:
            session.wake_all()
            request.topics = _as_topics(session.partitions.values(), by_id)
            return context
        if now_ms - session.refreshed_ms >= DORMANT_REFRESH_MS:
            session.refreshed_ms = now_ms
            for key, cached in list(session.dormant.items()):
                if not quiet(cached):
                    session.wake(key)  # looked at again below, and read
        for key, cached in list(session.awake.items()):
            if key not in named and quiet(cached):
                session.sleep(key, cached, quiet)
            else:
                context.active.append(cached)
        request.topics = _as_topics(context.active, by_id)
        return context

    def finish(self, context: SessionContext, response: FetchResponse, now_ms: int) -> FetchResponse:
        """The response as the session has it: a new session made (its id answered), or an
        incremental response cut to the partitions with news."""
        if context.kind == "new":
            response.session_id = self._maybe_create(context, response, now_ms)
        elif context.kind == "incremental" and context.session is not None:
            session = context.session
            response.session_id = session.id
            moved: list[Key] = []
            for topic in response.responses:
                kept = []
                for data in topic.partitions:
                    key = _key(topic.topic, topic.topic_id, data.partition_index, context.by_id)
                    cached = session.partitions.get(key)
                    if cached is None or cached.must_respond(data):
                        kept.append(data)
                        moved.append(key)
                topic.partitions = kept
            response.responses = [t for t in response.responses if t.partitions]
            for key in moved:  # partitions with news go last (fairness across reads)
                if key in session.partitions:
                    session.move_to_end(key)
        return response

    def _maybe_create(self, context: SessionContext, response: FetchResponse, now_ms: int) -> int:
        if response.error_code or not context.requested or not self._make_room(context.privileged, now_ms):
            self.declined += 1
            return NO_SESSION
        partitions: dict[Key, CachedPartition] = {}
        for topic, topic_id, p in context.requested:
            key = _key(topic, topic_id, p.partition, context.by_id)
            partitions[key] = CachedPartition(topic, topic_id, p)
        for topic_data in response.responses:
            for data in topic_data.partitions:
                key = _key(topic_data.topic, topic_data.topic_id, data.partition_index, context.by_id)
                cached = partitions.get(key)
                if cached is not None:
                    cached.must_respond(data)  # records what was answered
        session_id = self._new_id()
        self._sessions[session_id] = FetchSession(
            session_id, context.privileged, partitions, 1, now_ms, awake=dict(partitions), refreshed_ms=now_ms
        )
        self.created += 1
        return session_id

    def _make_room(self, privileged: bool, now_ms: int) -> bool:
        """Kafka's tryEvict, simplified: room is free; or a session idle for EVICTION_MS goes; or,
        for a follower, the least recently used consumer session goes."""
        if self.max_entries <= 0:
            return False
        if len(self._sessions) < self.max_entries:
            return True
        by_age = sorted(self._sessions.values(), key=lambda s: s.last_used_ms)
        victim = next((s for s in by_age if now_ms - s.last_used_ms >= EVICTION_MS), None)
        if victim is None and privileged:
            victim = next((s for s in by_age if not s.privileged), None)
        if victim is None:
            return False
        self.remove(victim.id)
        self.evicted += 1
        return True

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.randint(1, 0x7FFFFFFF)
            if candidate not in self._sessions:
                return candidate


def _key(topic: str, topic_id: uuid.UUID, partition: int, by_id: bool) -> Key:
    return (topic_id if by_id else topic, partition)


def _as_topics(partitions: Iterable[CachedPartition], by_id: bool) -> list[FetchTopic]:
    """The session's partitions as request topics, consecutive partitions of a topic together."""
    topics: list[FetchTopic] = []
    for cached in partitions:
        last = topics[-1] if topics else None
        if last is None or (last.topic_id != cached.topic_id if by_id else last.topic != cached.topic):
            last = FetchTopic(cached.topic, cached.topic_id, [])
            topics.append(last)
        assert last is not None
        last.partitions.append(cached.request)
    return topics


def _records_size(data: PartitionData) -> int:
    records = data.records
    if records is None:
        return 0
    length = getattr(records, "length", None)
    return int(length) if length is not None else len(records)
