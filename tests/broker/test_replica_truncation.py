"""A follower's truncation decisions (KIP-101 / KIP-279) and fetch-session bookkeeping, as pure
functions, against a model of two logs that share a prefix and then diverge."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from broker.replica.fetch_session import FetchSession
from broker.replica.fetcher import fetcher_id_for, java_string_hash
from broker.replica.truncation import (
    ResetKind,
    Truncation,
    out_of_range_reset,
    truncation_for,
)
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from storage.fs import FileSystem
from storage.leader_epoch import LeaderEpochCache

NOWHERE = Path("/nonexistent-brook-dir")  # the cache keeps its entries in memory only


def epoch_cache(epochs: list[int], extra: tuple[int, int] | None = None) -> LeaderEpochCache:
    """The leader-epoch cache of a log whose offset i holds an entry of epoch ``epochs[i]``;
    ``extra`` is an epoch started at the log end with no data yet (a leader's new term)."""
    cache = LeaderEpochCache(FileSystem(), NOWHERE, lambda: len(epochs))
    for offset, epoch in enumerate(epochs):
        if cache.latest_epoch is None or epoch > cache.latest_epoch:
            cache.assign(epoch, offset)
    if extra is not None:
        cache.assign(*extra)
    return cache


@st.composite
def diverged_logs(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    """(common prefix, follower suffix, leader suffix) as epochs per offset. The suffixes use
    disjoint epochs: an epoch has one leader, whose entries at an offset are the same wherever
    they were copied, so two logs that differ at an offset differ in its epoch there."""
    prefix = sorted(draw(st.lists(st.integers(0, 3), max_size=12)))
    base = prefix[-1] if prefix else 0
    pool = list(range(base, base + 6))
    follower_epochs = draw(st.sets(st.sampled_from(pool), max_size=3))
    leader_epochs = draw(st.sets(st.sampled_from([e for e in pool if e not in follower_epochs]), max_size=3))
    follower = (
        sorted(draw(st.lists(st.sampled_from(sorted(follower_epochs)), max_size=8)))
        if follower_epochs
        else []
    )
    leader = (
        sorted(draw(st.lists(st.sampled_from(sorted(leader_epochs)), max_size=8))) if leader_epochs else []
    )
    if follower and leader:
        # Epochs are unique per leader: whichever suffix starts with the prefix's epoch, the other
        # cannot (disjoint), so the logs differ from the first suffix offset on.
        assert follower[0] != leader[0]
    return prefix, follower, leader


@given(diverged_logs())
def test_follower_truncates_exactly_to_where_the_logs_diverge(
    logs: tuple[list[int], list[int], list[int]],
) -> None:
    prefix, follower_suffix, leader_suffix = logs
    leader = prefix + leader_suffix
    follower = prefix + follower_suffix
    current_epoch = max([*leader, *follower, 0]) + 1
    leader_cache = epoch_cache(leader, (current_epoch, len(leader)))
    for _ in range(20):
        if not follower:
            break
        follower_cache = epoch_cache(follower)
        latest = follower_cache.latest_epoch
        assert latest is not None
        # The leader's OffsetForLeaderEpoch answer (as the handler: the cache, LEO for the latest).
        answer_epoch, answer_end = leader_cache.end_offset_for_epoch(latest)

        def follower_end(epoch: int, cache: LeaderEpochCache = follower_cache) -> tuple[int, int] | None:
            found, end = cache.end_offset_for_epoch(epoch)
            return None if end < 0 else (found, end)

        truncation = truncation_for(answer_epoch, answer_end, follower_end, len(follower), len(follower))
        assert 0 <= truncation.offset <= len(follower)
        follower = follower[: truncation.offset]
        if truncation.complete:
            break
    else:
        raise AssertionError("truncation did not complete")
    assert follower == leader[: len(follower)]
    assert len(follower) == len(prefix)


def test_truncation_answers_of_old_or_unknown_leaders() -> None:
    def nothing(epoch: int) -> tuple[int, int] | None:
        return None

    # The leader knows no offset for the epoch: keep the initial fetch offset.
    assert truncation_for(-1, -1, nothing, 50, 40) == Truncation(40, True)
    # A leader answering without an epoch (v0): its end offset, at most ours.
    assert truncation_for(-1, 30, nothing, 50, 50) == Truncation(30, True)
    assert truncation_for(-1, 80, nothing, 50, 50) == Truncation(50, True)
    # We know no epoch at or below the leader's: its end offset, at most ours.
    assert truncation_for(3, 20, nothing, 50, 50) == Truncation(20, True)


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_out_of_range_reset_lands_inside_the_leaders_log(start: int, length: int, log_end: int) -> None:
    end = start + length
    reset = out_of_range_reset(start, end, log_end)
    if log_end > end:
        assert reset.kind is ResetKind.TRUNCATE_TO and reset.offset == end
    elif log_end < start:
        assert reset.kind is ResetKind.START_AT and reset.offset == start
    else:
        assert reset.kind is ResetKind.FETCH_FROM and reset.offset == log_end
    assert start <= reset.offset <= end


def test_fetch_session_goes_incremental_only_when_the_leader_offers_one() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    session = FetchSession()
    assert session.is_full and (session.session_id, session.epoch) == (0, 0)
    session.on_response(0, 0, [a, b])  # declined (as a Brook leader does): stays full
    assert session.is_full and session.epoch == 0 and session.forgotten([a]) == []
    session.on_response(0, 77, [a, b])  # offered
    assert (session.session_id, session.epoch) == (77, 1)
    assert session.forgotten([a]) == [b]
    session.on_response(0, 77, [a])
    assert (session.session_id, session.epoch, session.in_session) == (77, 2, {a})
    session.on_response(ErrorCode.FETCH_SESSION_ID_NOT_FOUND, 0, [a])
    assert session.is_full and session.epoch == 0 and session.in_session == set()


def test_fetcher_ids_follow_kafkas_get_fetcher_id() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("abc") == 96354
    assert java_string_hash("polygenelubricants") == -2147483648  # Integer.MIN_VALUE
    # Utils.abs(31 * hash + partition) % n, with 32-bit wrap-around.
    assert fetcher_id_for(TopicPartition("abc", 1), 7) == (31 * 96354 + 1) % 7
    assert all(0 <= fetcher_id_for(TopicPartition(f"topic-{i}", i), 3) < 3 for i in range(100))
    assert fetcher_id_for(TopicPartition("t", 5), 1) == 0


def test_scan_batches_keeps_whole_batches_and_sees_new_epochs() -> None:
    from broker.replica.fetcher import _scan_batches
    from tests.storage.batches import make_batch

    first = make_batch(2, base_offset=0, partition_leader_epoch=3)
    second = make_batch(1, base_offset=2, partition_leader_epoch=4)
    data = bytes(first + second)
    assert _scan_batches(memoryview(data), 4) == (len(data), False)
    assert _scan_batches(memoryview(data), 3) == (len(data), True)
    assert _scan_batches(memoryview(data), None) == (len(data), True)
    # A leader may cut the last batch at its size limit: only whole batches are appended.
    for cut in (len(first) + 1, len(first) + 20, len(data) - 1):
        assert _scan_batches(memoryview(data[:cut]), 4) == (len(first), False)
    assert _scan_batches(memoryview(data[:10]), None) == (0, False)
