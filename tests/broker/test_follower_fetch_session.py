"""The follower's incremental fetch requests (Kafka's FetchSessionHandler) against the leader's real
session cache: a request names only the partitions whose fetch fields changed, and after every
exchange the leader's session must hold, for every partition fetched, exactly the follower's
current fetch fields (what the leader then reads at). Pure: no sockets."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.replica.fetch_session import FetchSession, fetch_fields
from broker.replica.fetch_session_cache import FetchSessionCache
from broker.types import TopicPartition
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from protocol.messages.fetch_response import FetchableTopicResponse, FetchResponse, PartitionData

VERSION = 17
TOPIC_IDS = {"a": uuid.UUID(int=1), "b": uuid.UUID(int=2)}
PARTITIONS = [TopicPartition(t, p) for t in ("a", "b") for p in range(3)]

# One step: some partitions' offsets move, some leave the fetch set, some (re)join it.
steps = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(PARTITIONS), st.integers(0, 3), max_size=6),  # offset moves
        st.sets(st.sampled_from(PARTITIONS), max_size=2),  # not fetched this round
    ),
    min_size=1,
    max_size=25,
)


def exchange(
    cache: FetchSessionCache, session: FetchSession, fetching: dict[TopicPartition, FetchPartition]
) -> tuple[FetchRequest, dict[TopicPartition, FetchPartition]]:
    """One follower request (as ReplicaFetcher._build_fetch makes it) through the leader's cache."""
    named = {tp: p for tp, p in fetching.items() if session.must_send(tp, p)}
    topics: dict[str, FetchTopic] = {}
    for tp, p in named.items():
        topics.setdefault(tp.topic, FetchTopic(tp.topic, TOPIC_IDS[tp.topic], [])).partitions.append(p)
    forgotten: dict[str, ForgottenTopic] = {}
    for tp in session.forgotten(fetching):
        forgotten.setdefault(tp.topic, ForgottenTopic(tp.topic, TOPIC_IDS[tp.topic], [])).partitions.append(
            tp.partition
        )
    request = FetchRequest(
        session_id=session.session_id,
        session_epoch=session.epoch,
        topics=list(topics.values()),
        forgotten_topics_data=list(forgotten.values()),
    )
    context = cache.open(request, VERSION, True, 0)
    assert not context.error
    response = FetchResponse(
        error_code=0,
        session_id=0,
        responses=[
            FetchableTopicResponse("", t.topic_id, [PartitionData(p.partition, 0, 0) for p in t.partitions])
            for t in request.topics
        ],
    )
    response = cache.finish(context, response, 0)
    session.on_response(response.error_code, response.session_id, fetching, named)
    return request, named


@settings(max_examples=150, deadline=None)
@given(steps)
def test_the_leader_session_always_holds_the_follower_fetch_state(
    rounds: list[tuple[dict[TopicPartition, int], set[TopicPartition]]],
) -> None:
    cache = FetchSessionCache(10)
    session = FetchSession()
    offsets = dict.fromkeys(PARTITIONS, 0)
    for moves, idle in rounds:
        for tp, delta in moves.items():
            offsets[tp] += delta
        fetching = {
            tp: FetchPartition(tp.partition, 5, offsets[tp], 4, 0, 1 << 20)
            for tp in PARTITIONS
            if tp not in idle
        }
        incremental, before = not session.is_full, set(session.in_session)
        _, named = exchange(cache, session, fetching)
        if incremental:
            # Named: only what moved or (re)joins; every other partition the session already holds.
            assert all(moves.get(tp, 0) > 0 or tp not in before for tp in named)
        held = cache.get(session.session_id)
        assert held is not None
        seen = {
            TopicPartition(c.topic, c.request.partition): c.request.fetch_offset
            for c in held.partitions.values()
        }
        assert seen == {tp: p.fetch_offset for tp, p in fetching.items()}


def test_an_unchanged_partition_is_not_named_again() -> None:
    cache = FetchSessionCache(10)
    session = FetchSession()
    a0, b0 = TopicPartition("a", 0), TopicPartition("b", 0)
    first, named = exchange(
        cache, session, {a0: FetchPartition(0, 5, 0, 4, 0, 100), b0: FetchPartition(0, 5, 0, 4, 0, 100)}
    )
    assert first.session_epoch == 0 and set(named) == {a0, b0}
    second, named = exchange(
        cache, session, {a0: FetchPartition(0, 5, 7, 4, 0, 100), b0: FetchPartition(0, 5, 0, 4, 0, 100)}
    )
    assert second.session_epoch == 1 and set(named) == {a0}
    third, named = exchange(
        cache, session, {a0: FetchPartition(0, 5, 7, 4, 0, 100), b0: FetchPartition(0, 5, 0, 4, 0, 100)}
    )
    assert third.session_epoch == 2 and named == {}
    session.reset()  # a session error or a failed request: full again
    fourth, named = exchange(cache, session, {a0: FetchPartition(0, 5, 7, 4, 0, 100)})
    assert fourth.session_epoch == 0 and set(named) == {a0}


fields_strategy = st.fixed_dictionaries(
    {
        "fetch_offset": st.integers(0, 3),
        "current_leader_epoch": st.integers(0, 2),
        "last_fetched_epoch": st.integers(-1, 2),
        "log_start_offset": st.integers(0, 2),
        "partition_max_bytes": st.sampled_from([100, 1 << 20]),
    }
)


@settings(max_examples=200, deadline=None)
@given(taken=fields_strategy, now=fields_strategy)
def test_must_send_fields_decides_as_must_send(taken: dict[str, int], now: dict[str, int]) -> None:
    """The fetcher asks with the fields alone (no request part built for a partition the session
    holds as it is): the answer must be the one the built part would get."""
    session = FetchSession()
    tp = TopicPartition("a", 0)
    session.on_response(0, 7, [tp], {tp: FetchPartition(partition=0, **taken)})
    assert not session.is_full
    assert session.must_send_fields(tp, fetch_fields(**now)) == session.must_send(
        tp, FetchPartition(partition=0, **now)
    )
    assert session.must_send_fields(tp, fetch_fields(**now)) == (taken != now)
