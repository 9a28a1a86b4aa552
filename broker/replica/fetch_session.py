"""A follower's side of fetch sessions (KIP-227), as Kafka's FetchSessionHandler, simplified.

The first request is full (session 0, epoch 0: "make me a session if you will"). A leader that
makes one answers with its id; the next requests are incremental (that id, epochs 1, 2, ...).
They name every partition still fetched (an incremental request may repeat unchanged
partitions: it only updates them) and forget the ones no longer fetched. A leader that declines
answers session 0, and every request stays full. A session error (FETCH_SESSION_ID_NOT_FOUND,
INVALID_FETCH_SESSION_EPOCH) or a failed request starts over with a full request.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.types import TopicPartition
from protocol.error_codes import ErrorCode

#: FetchMetadata's INVALID_SESSION_ID, INITIAL_EPOCH, and the largest epoch before it wraps to 1.
NO_SESSION = 0
INITIAL_EPOCH = 0
SESSION_ERRORS = (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, ErrorCode.INVALID_FETCH_SESSION_EPOCH)


class FetchSession:
    """The session state towards one leader: which session and epoch the next request carries,
    and which partitions the leader's session holds."""

    __slots__ = ("epoch", "in_session", "session_id")

    def __init__(self) -> None:
        self.session_id = NO_SESSION
        self.epoch = INITIAL_EPOCH
        self.in_session: set[TopicPartition] = set()

    @property
    def is_full(self) -> bool:
        """Whether the next request is a full one (no session yet)."""
        return self.session_id == NO_SESSION

    def forgotten(self, fetching: Iterable[TopicPartition]) -> list[TopicPartition]:
        """The partitions an incremental request must drop from the leader's session."""
        if self.is_full:
            return []
        return sorted(self.in_session.difference(fetching))

    def on_response(self, error: int, session_id: int, sent: Iterable[TopicPartition]) -> None:
        """Learn from a response to a request that named ``sent``."""
        if error in SESSION_ERRORS or (error and not self.is_full):
            self.reset()
            return
        if session_id == NO_SESSION:
            self.reset()  # declined: stay sessionless, every request full
            return
        if session_id != self.session_id:
            self.session_id = session_id  # a new session holds exactly what we sent
            self.epoch = INITIAL_EPOCH
        self.in_session = set(sent)
        self.epoch = 1 if self.epoch >= 0x7FFFFFFF else self.epoch + 1

    def reset(self) -> None:
        self.session_id = NO_SESSION
        self.epoch = INITIAL_EPOCH
        self.in_session = set()
