"""A follower's truncation decisions, as pure functions (KIP-101 / KIP-279, Kafka's
AbstractFetcherThread.getOffsetTruncationState and fetchOffsetAndTruncate).

A follower that starts fetching from a (new) leader first makes its log a prefix of the
leader's: it asks the leader where its own latest epoch ends (OffsetForLeaderEpoch, or the
``diverging_epoch`` a Fetch v12+ response carries) and truncates there. When the leader's answer
names an epoch the follower does not have, the follower truncates to where its own largest
smaller epoch ends and asks again (the answer is then not final).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from storage.fast_dataclass import dataclass

#: OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1

#: The follower's own end offset for an epoch: ``(epoch, end_offset)`` of the largest epoch at or
#: below the one asked (Kafka's UnifiedLog.endOffsetForEpoch), None when it knows none.
EndOffsetForEpoch = Callable[[int], "tuple[int, int] | None"]


@dataclass(frozen=True, slots=True)
class Truncation:
    """Truncate the follower's log to ``offset``; ``complete`` False means ask the leader again
    with the follower's new latest epoch before fetching."""

    offset: int
    complete: bool


def truncation_for(
    leader_epoch: int,
    leader_end_offset: int,
    follower_end_for: EndOffsetForEpoch,
    log_end_offset: int,
    fetch_offset: int,
) -> Truncation:
    """Where to truncate, given the leader's answer ``(leader_epoch, leader_end_offset)`` to the
    follower's latest epoch (Kafka's getOffsetTruncationState).

    - The leader knows no offset for it (UNDEFINED_EPOCH_OFFSET): keep the initial fetch offset.
    - The leader answers no epoch (a pre-KIP-279 leader): its end offset, at most our end.
    - We have the epoch the leader answered: the smaller of both ends for it (and of our end).
    - We lack it: where our largest epoch below it ends; not final, ask again.
    - We know no epoch at or below it: the leader's end offset, at most ours.
    """
    if leader_end_offset == UNDEFINED_EPOCH_OFFSET:
        return Truncation(min(fetch_offset, log_end_offset), True)
    if leader_epoch == UNDEFINED_EPOCH:
        return Truncation(min(leader_end_offset, log_end_offset), True)
    ours = follower_end_for(leader_epoch)
    if ours is None:
        return Truncation(min(leader_end_offset, log_end_offset), True)
    follower_epoch, follower_end = ours
    if follower_epoch != leader_epoch:
        return Truncation(min(follower_end, log_end_offset), False)
    return Truncation(min(follower_end, leader_end_offset, log_end_offset), True)


class ResetKind(Enum):
    """What an OFFSET_OUT_OF_RANGE answer makes the follower do to its log."""

    #: Our log goes past the leader's end (unclean election): truncate to the leader's end.
    TRUNCATE_TO = "truncate_to"
    #: The leader's log starts past our end (retention ran while we were away): empty our log
    #: and start it at the leader's log start.
    START_AT = "start_at"
    #: Our end is within the leader's log after all (it moved meanwhile): fetch from it again.
    FETCH_FROM = "fetch_from"


@dataclass(frozen=True, slots=True)
class OutOfRangeReset:
    kind: ResetKind
    offset: int


def out_of_range_reset(
    leader_start_offset: int, leader_end_offset: int, log_end_offset: int
) -> OutOfRangeReset:
    """Kafka's fetchOffsetAndTruncate, after the leader refused our fetch offset."""
    if leader_end_offset < log_end_offset:
        return OutOfRangeReset(ResetKind.TRUNCATE_TO, leader_end_offset)
    if leader_start_offset > log_end_offset:
        return OutOfRangeReset(ResetKind.START_AT, leader_start_offset)
    return OutOfRangeReset(ResetKind.FETCH_FROM, log_end_offset)
