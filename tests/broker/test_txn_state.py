"""The transaction state machine (Kafka's TransactionMetadata): the table of valid transitions,
the two-step prepare/complete, and the epoch rules of InitProducerId (KIP-360)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.txn.state import (
    NO_PRODUCER_EPOCH,
    SHORT_MAX,
    VALID_PREVIOUS,
    IllegalTransition,
    TransactionMetadata,
    TxnState,
    TxnTransit,
)
from broker.types import TopicPartition

S = TxnState
TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def fresh(epoch: int = NO_PRODUCER_EPOCH) -> TransactionMetadata:
    return TransactionMetadata("tx", 1000, epoch, 60000, S.EMPTY, txn_last_update_timestamp=0)


def test_the_table_is_kafkas() -> None:
    assert VALID_PREVIOUS[S.PREPARE_ABORT] == {S.ONGOING, S.PREPARE_EPOCH_FENCE}
    assert VALID_PREVIOUS[S.DEAD] == {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}
    assert VALID_PREVIOUS[S.COMPLETE_COMMIT] == {S.PREPARE_COMMIT}
    assert [s.id for s in TxnState] == list(range(8))
    assert TxnState.from_name("PrepareEpochFence") is S.PREPARE_EPOCH_FENCE
    assert TxnState.from_name("nope") is None
    with pytest.raises(ValueError):
        TxnState.from_id(8)


def test_a_transaction_from_init_to_complete_commit() -> None:
    m = fresh()
    init = m.prepare_increment_producer_epoch(60000, None, now=1)
    assert init is not None and (init.producer_epoch, init.state) == (0, S.EMPTY)
    assert m.pending_state is S.EMPTY
    m.complete_transition(init)
    assert (m.producer_epoch, m.pending_state) == (0, None)
    add = m.prepare_add_partitions({TP0}, now=5)
    m.complete_transition(add)
    assert (m.state, m.partitions, m.txn_start_timestamp) == (S.ONGOING, {TP0}, 5)
    add2 = m.prepare_add_partitions({TP1}, now=7)
    m.complete_transition(add2)
    assert m.partitions == {TP0, TP1} and m.txn_start_timestamp == 5
    prepare = m.prepare_abort_or_commit(S.PREPARE_COMMIT, now=9)
    m.complete_transition(prepare)
    complete = m.prepare_complete(now=11)
    assert complete.state is S.COMPLETE_COMMIT and complete.partitions == frozenset()
    m.complete_transition(complete)
    assert (m.state, m.partitions, m.txn_last_update_timestamp) == (S.COMPLETE_COMMIT, set(), 11)


def test_only_one_transition_may_be_pending() -> None:
    m = fresh(0)
    m.prepare_add_partitions({TP0}, now=1)
    with pytest.raises(IllegalTransition):
        m.prepare_add_partitions({TP1}, now=2)


def test_an_invalid_transition_is_refused_and_leaves_nothing_pending() -> None:
    m = fresh(0)
    with pytest.raises(IllegalTransition):
        m.prepare_abort_or_commit(S.PREPARE_COMMIT, now=1)  # Empty -> PrepareCommit
    assert m.pending_state is None


def test_completing_another_transit_than_the_pending_one_fails() -> None:
    m = fresh(0)
    transit = m.prepare_add_partitions({TP0}, now=1)
    other = TxnTransit(1000, 1000, 0, -1, 60000, S.PREPARE_ABORT, frozenset({TP0}), 1, 1)
    with pytest.raises(IllegalTransition):
        m.complete_transition(other)
    m.complete_transition(transit)


def test_kip_360_epochs() -> None:
    m = fresh(5)
    # the producer's current epoch: bumped, the old one remembered
    t = m.prepare_increment_producer_epoch(60000, 5, now=1)
    assert t is not None and (t.producer_epoch, t.last_producer_epoch) == (6, 5)
    m.complete_transition(t)
    # a retry with the previous epoch (the response was lost): the same epoch again
    retry = m.prepare_increment_producer_epoch(60000, 5, now=2)
    assert retry is not None and (retry.producer_epoch, retry.last_producer_epoch) == (6, 5)
    m.complete_transition(retry)
    # anything older is fenced, with nothing pending
    assert m.prepare_increment_producer_epoch(60000, 3, now=3) is None
    assert m.pending_state is None


def test_the_epoch_fence_bumps_once_even_after_a_failed_write() -> None:
    m = fresh(3)
    m.complete_transition(m.prepare_add_partitions({TP0}, now=1))
    fence = m.prepare_fence_producer_epoch()
    assert (fence.state, fence.producer_epoch) == (S.PREPARE_EPOCH_FENCE, 4)
    m.pending_state = None
    m.has_failed_epoch_fence = True
    m.producer_epoch = 4
    assert m.prepare_fence_producer_epoch().producer_epoch == 4


def test_producer_id_rotation_when_the_epoch_is_exhausted() -> None:
    m = fresh(SHORT_MAX - 1)
    assert m.epoch_exhausted
    with pytest.raises(IllegalTransition):
        m.prepare_increment_producer_epoch(60000, None, now=1)
    t = m.prepare_producer_id_rotation(2000, 60000, now=1, record_last_epoch=True)
    m.complete_transition(t)
    assert (m.producer_id, m.producer_epoch, m.previous_producer_id, m.last_producer_epoch) == (
        2000,
        0,
        1000,
        SHORT_MAX - 1,
    )


# -- hypothesis: any sequence of operations keeps the machine within its table -----------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["init", "add", "commit", "abort", "complete", "fence", "dead", "fail"]),
        st.integers(0, 2),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_every_reachable_state_follows_the_table(ops: list[tuple[str, int]]) -> None:
    m = fresh(0)
    now = 0
    for op, partition in ops:
        now += 1
        before = m.state
        try:
            if op == "init":
                t = m.prepare_increment_producer_epoch(60000, None, now)
            elif op == "add":
                t = m.prepare_add_partitions({TopicPartition("t", partition)}, now)
            elif op == "commit":
                t = m.prepare_abort_or_commit(S.PREPARE_COMMIT, now)
            elif op == "abort":
                t = m.prepare_abort_or_commit(S.PREPARE_ABORT, now)
            elif op == "complete":
                if m.state not in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
                    continue
                t = m.prepare_complete(now)
            elif op == "fence":
                t = m.prepare_fence_producer_epoch()
            elif op == "dead":
                t = m.prepare_dead()
            else:  # a failed write: the pending state is dropped
                m.pending_state = None
                continue
        except IllegalTransition:
            assert m.pending_state is None
            continue
        assert t is not None
        assert before in VALID_PREVIOUS[t.state], (before, t.state)
        assert m.pending_state is t.state
        if t.state in (S.PREPARE_EPOCH_FENCE, S.DEAD):
            m.pending_state = None  # never completed in the cache (written as abort / tombstone)
            continue
        m.complete_transition(t)
        assert m.state is t.state and m.pending_state is None
        if m.state in (S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT):
            assert not m.partitions
        if m.state is S.ONGOING:
            assert m.partitions and m.txn_start_timestamp >= 0
