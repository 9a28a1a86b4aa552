"""Fetch sessions on the serving side (KIP-227): sessions made by full fetches, incremental fetches
answering only partitions with news, forgotten partitions, epochs, closing, and the cache's limit."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from broker.replica.fetch_session_cache import EVICTION_MS, FetchSessionCache
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from protocol.messages.fetch_response import FetchResponse
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch, create, produce


def fetch(
    call: Caller,
    offsets: dict[int, int],
    session_id: int = 0,
    epoch: int = 0,
    forgotten: list[int] | None = None,
    version: int = 12,
) -> FetchResponse:
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        session_id=session_id,
        session_epoch=epoch,
        topics=[
            FetchTopic(
                "s", partitions=[FetchPartition(p, -1, o, -1, -1, 1 << 20) for p, o in offsets.items()]
            )
        ]
        if offsets
        else [],
        forgotten_topics_data=[ForgottenTopic("s", partitions=forgotten)] if forgotten else [],
    )
    return call(request, version)  # type: ignore[no-any-return]


def answered(response: FetchResponse) -> dict[int, tuple[int, bool]]:
    """partition -> (high watermark, has records)"""
    out = {}
    for topic in response.responses:
        for p in topic.partitions:
            records = p.records
            out[p.partition_index] = (p.high_watermark, bool(records is not None and len(records)))
            if hasattr(records, "close"):
                records.close()
    return out


def test_incremental_fetches_answer_only_what_changed(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d")
    call = Caller(broker)
    try:
        create(call, "s", 3)
        produce(call, "s", 0, batch([b"a"]), acks=1)
        full = fetch(call, {0: 0, 1: 0, 2: 0})
        assert full.error_code == 0 and full.session_id != 0
        assert answered(full) == {0: (1, True), 1: (0, False), 2: (0, False)}
        sid = full.session_id

        # Nothing new: an empty answer (the consumer's offsets for 0 moved to 1).
        quiet = fetch(call, {0: 1}, sid, 1)
        assert (quiet.error_code, quiet.session_id, answered(quiet)) == (0, sid, {})
        # New records in partition 1 only; the request names no partition at all.
        produce(call, "s", 1, batch([b"b", b"c"]), acks=1)
        news = fetch(call, {}, sid, 2)
        assert answered(news) == {1: (2, True)}
        # Partition 2 forgotten: its later records are not read any more.
        produce(call, "s", 2, batch([b"d"]), acks=1)
        forgot = fetch(call, {1: 2}, sid, 3, forgotten=[2])
        assert answered(forgot) == {}

        assert fetch(call, {}, sid, 3).error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
        assert fetch(call, {}, sid + 1, 1).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        # Epoch -1 closes the session and is answered in full, sessionless.
        closing = fetch(call, {0: 0}, sid, -1)
        assert closing.session_id == 0 and answered(closing) == {0: (1, True)}
        assert fetch(call, {}, sid, 4).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    finally:
        broker.log_manager.close()


def test_topic_ids_key_the_session_from_v13(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d")
    call = Caller(broker)
    try:
        create(call, "s", 2)
        info = broker.metadata.topic("s")
        assert info is not None
        request = FetchRequest(
            max_wait_ms=0,
            session_epoch=0,
            topics=[FetchTopic(topic_id=info.topic_id, partitions=[FetchPartition(0, -1, 0, -1, -1, 1000)])],
        )
        full = call(request, 13)
        assert full.session_id != 0
        produce(call, "s", 0, batch([b"x"]), acks=1)
        incremental = call(FetchRequest(max_wait_ms=0, session_id=full.session_id, session_epoch=1), 13)
        [topic] = incremental.responses
        assert topic.topic_id == info.topic_id and [p.partition_index for p in topic.partitions] == [0]
        assert topic.partitions[0].records  # the appended batch (a short read: copied bytes)
    finally:
        broker.log_manager.close()


def test_no_slots_no_sessions(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d", **{"max.incremental.fetch.session.cache.slots": "0"})
    call = Caller(broker)
    try:
        create(call, "s", 1)
        assert fetch(call, {0: 0}).session_id == 0
    finally:
        broker.log_manager.close()


def _full(partitions: int) -> FetchRequest:
    return FetchRequest(
        session_epoch=0, topics=[FetchTopic("t", partitions=[FetchPartition(p) for p in range(partitions)])]
    )


def test_a_full_cache_evicts_idle_sessions_and_consumers_for_followers() -> None:
    cache = FetchSessionCache(2, random.Random(1))

    def make(privileged: bool, now: int) -> int:
        context = cache.open(_full(1), 12, privileged, now)
        return cache.finish(context, FetchResponse(), now).session_id

    consumer = make(False, 0)
    follower = make(True, 10)
    assert consumer and follower and len(cache) == 2
    assert make(False, 20) == 0 and cache.declined == 1  # full, nothing idle, not privileged
    newer_follower = make(True, 30)  # a follower's request evicts the consumer's session
    assert newer_follower and cache.get(consumer) is None and cache.get(follower) is not None
    late = make(False, 10 + EVICTION_MS)  # an idle session may go for anyone
    assert late and cache.get(follower) is None and cache.evicted == 2


@given(st.lists(st.sampled_from(["full", "close", "incremental", "bad_epoch"]), max_size=30))
def test_session_epochs_follow_kafkas_rules(steps: list[str]) -> None:
    cache = FetchSessionCache(10, random.Random(0))
    session_id, epoch = 0, 0
    for step in steps:
        if step == "full":
            request = _full(2)
            request.session_id = session_id  # a full fetch naming its session replaces it
            context = cache.open(request, 12, False, 0)
            session_id, epoch = cache.finish(context, FetchResponse(), 0).session_id, 1
            assert session_id
        elif step == "close":
            context = cache.open(FetchRequest(session_id=session_id, session_epoch=-1), 12, False, 0)
            assert context.kind == "sessionless" and cache.get(session_id) is None
            session_id, epoch = 0, 0
        else:
            wrong = step == "bad_epoch"
            expected = max(epoch, 1)  # epoch 0 would be a full fetch
            request = FetchRequest(session_id=session_id, session_epoch=expected + 1 if wrong else expected)
            context = cache.open(request, 12, False, 0)
            if session_id == 0:
                assert context.error == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
            elif wrong:
                assert context.error == ErrorCode.INVALID_FETCH_SESSION_EPOCH
            else:
                assert context.error == 0 and [p.partition for t in request.topics for p in t.partitions] == [
                    0,
                    1,
                ]
                epoch += 1
        assert len(cache) == (1 if session_id else 0)


def test_a_followers_incremental_fetch_records_every_partition_of_its_session(tmp_path: Path) -> None:
    import uuid

    from broker.types import TopicPartition
    from tests.broker.control_kit import (
        LOCAL,
        OTHER,
        Node,
        PState,
        cluster_broker,
        leader_and_isr,
        update_metadata,
    )

    topic_id = uuid.UUID("0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b")
    broker = cluster_broker(tmp_path / "leader")
    call = Caller(broker)
    states = [PState("t", p, LOCAL, 3, [LOCAL, OTHER], isr=[LOCAL, OTHER]) for p in (0, 1)]
    nodes = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "127.0.0.1", 9093)]
    try:
        call(update_metadata(8, nodes, states, topic_ids={"t": topic_id}), 8)
        call(leader_and_isr(7, states, topic_ids={"t": topic_id}), 7)
        for p in (0, 1):
            assert produce(call, "t", p, batch([b"x"]), acks=1).error_code == 0

        def follower_fetch(offsets: dict[int, int], session_id: int, epoch: int) -> FetchResponse:
            request = FetchRequest(
                replica_id=OTHER,
                max_wait_ms=0,
                session_id=session_id,
                session_epoch=epoch,
                topics=[
                    FetchTopic(
                        "t", partitions=[FetchPartition(p, 3, o, -1, 0, 1 << 20) for p, o in offsets.items()]
                    )
                ],
            )
            return call(request, 12)  # type: ignore[no-any-return]

        def hw(p: int) -> int:
            partition = broker.replica_manager.get(TopicPartition("t", p))
            assert partition is not None
            return partition.high_watermark

        full = follower_fetch({0: 0, 1: 0}, 0, 0)
        assert full.session_id and set(answered(full)) == {0, 1}
        assert (hw(0), hw(1)) == (0, 0)
        # Only partition 0 moves: 1 keeps the offset its session holds.
        follower_fetch({0: 1}, full.session_id, 1)
        assert (hw(0), hw(1)) == (1, 0)
        # Now partition 1 moves and 0 is not named: both are recorded, both at 1.
        follower_fetch({1: 1}, full.session_id, 2)
        assert (hw(0), hw(1)) == (1, 1)
    finally:
        broker.log_manager.close()
