"""The leader's ISR and high-watermark state machine (broker.replica.isr), pure: follower fetches,
appends, clock moves and controller answers in any order."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.replica.isr import CommittedIsr, FollowerState, LeaderReplicaState
from broker.types import BrokerId
from protocol.error_codes import ErrorCode

LEADER = BrokerId(1)
F2 = BrokerId(2)
F3 = BrokerId(3)
LAG = 30_000


def state(isr: tuple[int, ...] = (1, 2, 3)) -> LeaderReplicaState:
    s = LeaderReplicaState(LEADER, (LEADER, F2, F3), tuple(BrokerId(r) for r in isr), -1, 0)
    s.become_leader((LEADER, F2, F3), s.isr, 5, 0, now_ms=0, leader_leo=0, new_leader=True)
    return s


def test_caught_up_time_follows_kafka_semantics() -> None:
    f = FollowerState()
    f.record_fetch(0, 0, now_ms=100, leader_leo=10)  # reached the end of the previous fetch (0)
    assert f.last_caught_up_ms == 0
    f.record_fetch(10, 0, now_ms=200, leader_leo=20)  # reached what was the end at the last fetch
    assert f.last_caught_up_ms == 100
    f.record_fetch(20, 0, now_ms=300, leader_leo=20)  # at the end now
    assert f.last_caught_up_ms == 300
    f.record_fetch(15, 0, now_ms=400, leader_leo=30)  # went back (truncated): nothing new
    assert f.last_caught_up_ms == 300
    assert f.is_caught_up(30, 300 + LAG, LAG) and not f.is_caught_up(31, 301 + LAG, LAG)


def test_high_watermark_is_min_leo_of_the_isr_and_waits_for_unknown_followers() -> None:
    s = state()
    assert s.high_watermark_candidate(10, 0, LAG, 1, lambda _: True) == -1  # positions unknown
    s.record_fetch(F2, 7, 0, 1, 10)
    s.record_fetch(F3, 4, 0, 1, 10)
    assert s.high_watermark_candidate(10, 1, LAG, 1, lambda _: True) == 4


def test_expand_pending_counts_the_new_member_shrink_pending_keeps_the_old() -> None:
    s = state(isr=(1, 2))
    s.record_fetch(F2, 10, 0, 1, 10)
    s.record_fetch(F3, 3, 0, 1, 10)
    # F3 is not in the ISR, but caught up recently (reset at 0, now 1 <= LAG): the HW waits for it.
    assert s.high_watermark_candidate(10, 1, LAG, 1, lambda _: True) == 3
    # Not caught up any more, not eligible or not: the HW goes on without it.
    assert s.high_watermark_candidate(10, LAG + 10, LAG, 1, lambda _: True) == 10
    assert s.can_join(F3, hw=3, epoch_start_offset=0)
    pending = s.propose_expand(F3)
    assert s.maximal_isr == (1, 2, 3)
    assert not s.can_join(F3, 3, 0)  # one change at a time
    assert s.commit(pending, CommittedIsr(LEADER, 5, (LEADER, F2, F3), 1))
    assert s.isr == (1, 2, 3) and s.partition_epoch == 1 and s.pending is None
    shrink = s.propose_shrink({F3})
    assert shrink.proposed_isr == (1, 2) and s.maximal_isr == (1, 2, 3)
    assert s.fail(shrink, ErrorCode.NOT_CONTROLLER)  # retried
    assert not s.fail(shrink, ErrorCode.INVALID_UPDATE_VERSION)  # given up, left pending
    assert s.pending is shrink


def test_stale_answers_are_ignored() -> None:
    s = state(isr=(1, 2))
    pending = s.propose_expand(F3)
    assert not s.commit(pending, CommittedIsr(LEADER, 4, (LEADER, F2, F3), 1))  # older leader epoch
    s.become_leader((LEADER, F2, F3), (LEADER, F2), 6, 3, now_ms=0, leader_leo=0, new_leader=False)
    assert not s.commit(pending, CommittedIsr(LEADER, 6, (LEADER, F2, F3), 4))  # overtaken
    assert s.isr == (1, 2)


def test_under_min_isr_the_high_watermark_stands_still() -> None:
    s = state(isr=(1,))
    assert s.high_watermark_candidate(10, 0, LAG, 2, lambda _: False) is None
    assert s.high_watermark_candidate(10, 0, LAG, 1, lambda _: False) == 10
    single = LeaderReplicaState(LEADER, (LEADER,), (LEADER,), 0, 0)
    assert single.high_watermark_candidate(10, 0, LAG, 3, lambda _: True) == 10  # capped by RF


# -- the property: sequences of events -------------------------------------------------------------


@dataclass
class Model:
    s: LeaderReplicaState
    leo: int = 0
    now: int = 0
    hw: int = 0
    min_isr: int = 1
    eligible: set[int] = field(default_factory=lambda: {1, 2, 3})


events = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 50)),
        st.tuples(st.just("fetch"), st.sampled_from([2, 3]), st.integers(0, 100)),
        st.tuples(st.just("clock"), st.integers(0, 2 * LAG)),
        st.tuples(st.just("shrink")),
        st.tuples(st.just("answer"), st.booleans()),
        st.tuples(st.just("eligible"), st.sampled_from([2, 3]), st.booleans()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from([(1,), (1, 2), (1, 2, 3)]), st.integers(1, 3))
def test_hw_monotonic_and_bounded_by_the_isr(ops: list[tuple], isr: tuple[int, ...], min_isr: int) -> None:
    m = Model(state(isr), min_isr=min_isr)
    s = m.s
    for op in ops:
        kind = op[0]
        if kind == "append":
            m.leo += op[1]
        elif kind == "fetch":
            replica, fraction = BrokerId(op[1]), op[2]
            # A follower's position only moves forward (it truncates above the HW only).
            previous = max(s.followers[replica].log_end_offset, 0)
            offset = previous + (m.leo - previous) * fraction // 100
            before_isr = s.isr
            s.record_fetch(replica, offset, 0, m.now, m.leo)
            if s.can_join(replica, m.hw, 0) and replica in m.eligible:
                assert offset >= m.hw and replica not in before_isr
                s.propose_expand(replica)
        elif kind == "clock":
            m.now += op[1]
        elif kind == "shrink":
            leaving = s.out_of_sync(m.leo, m.now, LAG)
            for r in leaving:
                f = s.followers[r]
                assert f.log_end_offset != m.leo and m.now - f.last_caught_up_ms > LAG
            if leaving:
                s.propose_shrink(leaving)
        elif kind == "answer" and s.pending is not None:
            pending = s.pending
            if op[1]:
                assert s.commit(pending, CommittedIsr(LEADER, 5, pending.proposed_isr, s.partition_epoch + 1))
            else:
                s.fail(pending, ErrorCode.INELIGIBLE_REPLICA)
                assert s.pending is None
        elif kind == "eligible":
            (m.eligible.add if op[2] else m.eligible.discard)(op[1])
        assert LEADER in s.isr
        candidate = s.high_watermark_candidate(m.leo, m.now, LAG, m.min_isr, lambda r: r in m.eligible)
        if candidate is not None and candidate > m.hw:
            m.hw = candidate
        # Never beyond any member of the (maximal) ISR, nor the leader's log end.
        assert m.hw <= m.leo
        for r in s.maximal_isr:
            if r != LEADER and s.followers[r].log_end_offset >= 0:
                assert m.hw <= s.followers[r].log_end_offset
        if s.is_under_min_isr(m.min_isr):
            assert candidate is None
