"""A follower's side of fetch sessions (KIP-227), as Kafka's FetchSessionHandler, simplified.

The first request is full (session 0, epoch 0: "make me a session if you will"). A leader that
makes one answers with its id; the next requests are incremental (that id, epochs 1, 2, ...).
As Kafka's, they name only the partitions that are new to the session or whose fetch fields
changed since the session last took them (:meth:`FetchSession.must_send`: after an append, the
partitions that got records), and forget the ones no longer fetched; the leader keeps reading
the others at the offsets it holds. With many quiet partitions per leader (``__consumer_offsets``)
that keeps each replication round small on both sides. A leader that declines answers session
0, and every request stays full. A session error (FETCH_SESSION_ID_NOT_FOUND,
INVALID_FETCH_SESSION_EPOCH) or a failed request starts over with a full request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition

#: FetchMetadata's INVALID_SESSION_ID, INITIAL_EPOCH, and the largest epoch before it wraps to 1.
NO_SESSION = 0
INITIAL_EPOCH = 0
SESSION_ERRORS = (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, ErrorCode.INVALID_FETCH_SESSION_EPOCH)


class FetchSession:
    """The session state towards one leader: which session and epoch the next request carries,
    and which partitions the leader's session holds."""

    __slots__ = ("epoch", "in_session", "session_id", "taken")

    def __init__(self) -> None:
        self.session_id = NO_SESSION
        self.epoch = INITIAL_EPOCH
        self.in_session: set[TopicPartition] = set()
        #: What the leader's session holds for each partition: the fields last sent and answered.
        self.taken: dict[TopicPartition, tuple[object, ...]] = {}

    @property
    def is_full(self) -> bool:
        """Whether the next request is a full one (no session yet)."""
        return self.session_id == NO_SESSION

    def forgotten(self, fetching: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The partitions an incremental request must drop from the leader's session."""
        if self.is_full:
            return []
        return sorted(self.in_session.difference(fetching))

    def must_send(self, tp: TopicPartition, partition: FetchPartition) -> bool:
        """Whether the next request names ``tp``: always in a full request; in an incremental one
        when the session lacks it or holds other fetch fields (Kafka's FetchSessionHandler)."""
        return self.must_send_fields(tp, _fields(partition))

    def must_send_fields(self, tp: TopicPartition, fields: tuple[object, ...]) -> bool:
        """:meth:`must_send` for the :func:`fetch_fields` of a partition (the fetcher builds a
        request part only for the partitions it names)."""
        return self.is_full or self.taken.get(tp) != fields

    def on_response(
        self,
        error: int,
        session_id: int,
        sent: Iterable[TopicPartition],
        named: Mapping[TopicPartition, FetchPartition] | None = None,
    ) -> None:
        """Learn from a response to a request fetching ``sent``, of which it named ``named``
        (all of ``sent`` when None)."""
        if error in SESSION_ERRORS or (error and not self.is_full):
            self.reset()
            return
        if session_id == NO_SESSION:
            self.reset()  # declined: stay sessionless, every request full
            return
        if session_id != self.session_id:
            self.session_id = session_id  # a new session holds exactly what we sent
            self.epoch = INITIAL_EPOCH
            self.taken = {}
        self.in_session = set(sent)
        if named is not None:
            for tp, partition in named.items():
                self.taken[tp] = _fields(partition)
        for tp in [tp for tp in self.taken if tp not in self.in_session]:
            del self.taken[tp]
        self.epoch = 1 if self.epoch >= 0x7FFFFFFF else self.epoch + 1

    def reset(self) -> None:
        self.session_id = NO_SESSION
        self.epoch = INITIAL_EPOCH
        self.in_session = set()
        self.taken = {}


def fetch_fields(
    *,
    fetch_offset: int,
    current_leader_epoch: int,
    last_fetched_epoch: int,
    log_start_offset: int,
    partition_max_bytes: int,
) -> tuple[object, ...]:
    """The fetch fields a session keeps per partition (what an incremental request updates), as
    :meth:`FetchSession.must_send_fields` compares them."""
    return (fetch_offset, current_leader_epoch, last_fetched_epoch, log_start_offset, partition_max_bytes)


def _fields(p: FetchPartition) -> tuple[object, ...]:
    return fetch_fields(
        fetch_offset=p.fetch_offset,
        current_leader_epoch=p.current_leader_epoch,
        last_fetched_epoch=p.last_fetched_epoch,
        log_start_offset=p.log_start_offset,
        partition_max_bytes=p.partition_max_bytes,
    )
