"""Kafka's leader election algorithms: examples from its behaviour, and their invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.controller.context import LeaderAndIsr, LeaderRecoveryState
from broker.cluster.controller.election import (
    controlled_shutdown_leader,
    elect_for_controlled_shutdown,
    elect_for_offline,
    elect_for_reassign,
    elect_preferred,
    offline_partition_leader,
    preferred_replica_leader,
)
from broker.types import BrokerId, TopicPartition

TP = TopicPartition("t", 0)


def ids(*values: int) -> list[BrokerId]:
    return [BrokerId(v) for v in values]


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[BrokerId], LeaderAndIsr, set[BrokerId]]:
    """An assignment, a current leadership whose ISR is a subset of it, and the live brokers."""
    assignment = ids(*draw(st.lists(st.integers(0, 9), min_size=1, max_size=6, unique=True)))
    isr = draw(st.lists(st.sampled_from(assignment), min_size=1, unique=True))
    leader = draw(st.sampled_from([*isr, BrokerId(-1)]))
    epoch = draw(st.integers(0, 1000))
    live = set(ids(*draw(st.lists(st.integers(0, 9), unique=True))))
    state = LeaderAndIsr(leader, epoch, tuple(isr), partition_epoch=draw(st.integers(0, 1000)))
    return assignment, state, live


def test_offline_examples() -> None:
    assert offline_partition_leader(ids(1, 2, 3), ids(3, 2), {BrokerId(2), BrokerId(3)}, False) == 2
    assert offline_partition_leader(ids(1, 2, 3), ids(1), {BrokerId(2), BrokerId(3)}, False) is None
    assert offline_partition_leader(ids(1, 2, 3), ids(1), {BrokerId(3), BrokerId(2)}, True) == 2


def test_unclean_election_resets_isr_and_marks_recovering() -> None:
    current = LeaderAndIsr(BrokerId(1), 4, (BrokerId(1),), partition_epoch=9)
    result = elect_for_offline(TP, current, ids(1, 2, 3), {BrokerId(3)}, True, leader_recovery_supported=True)
    assert result.leader_and_isr == LeaderAndIsr(
        BrokerId(3), 5, (BrokerId(3),), LeaderRecoveryState.RECOVERING, 9
    )
    older_ibp = elect_for_offline(
        TP, current, ids(1, 2, 3), {BrokerId(3)}, True, leader_recovery_supported=False
    )
    assert older_ibp.leader_and_isr is not None
    assert older_ibp.leader_and_isr.leader_recovery_state is LeaderRecoveryState.RECOVERED


def test_preferred_only_first_replica() -> None:
    assert preferred_replica_leader(ids(1, 2), ids(1, 2), {BrokerId(1), BrokerId(2)}) == 1
    assert preferred_replica_leader(ids(1, 2), ids(2), {BrokerId(1), BrokerId(2)}) is None
    assert preferred_replica_leader(ids(1, 2), ids(1, 2), {BrokerId(2)}) is None


def test_controlled_shutdown_example() -> None:
    current = LeaderAndIsr(BrokerId(2), 3, tuple(ids(2, 1, 3)))
    result = elect_for_controlled_shutdown(TP, current, ids(2, 1, 3), set(ids(1, 2, 3)), {BrokerId(2)})
    assert result.leader_and_isr == LeaderAndIsr(BrokerId(1), 4, tuple(ids(1, 3)))
    assert controlled_shutdown_leader(ids(2), ids(2), {BrokerId(2)}, {BrokerId(2)}) is None


@given(partitions(), st.booleans())
def test_offline_election_invariants(
    case: tuple[list[BrokerId], LeaderAndIsr, set[BrokerId]], unclean: bool
) -> None:
    assignment, current, live = case
    result = elect_for_offline(TP, current, assignment, live, unclean, leader_recovery_supported=True)
    live_isr = [r for r in assignment if r in live and r in current.isr]
    new = result.leader_and_isr
    assert set(result.recipients) == {r for r in assignment if r in live}
    if live_isr:
        # Clean: the first live ISR member in assignment order, ISR = live part of the old ISR.
        assert new is not None
        assert new.leader == live_isr[0]
        assert set(new.isr) == set(current.isr) & live
        assert new.leader_recovery_state == current.leader_recovery_state
    elif unclean and any(r in live for r in assignment):
        assert new is not None
        assert new.leader == next(r for r in assignment if r in live)
        assert new.isr == (new.leader,)
        assert new.leader_recovery_state is LeaderRecoveryState.RECOVERING
    else:
        assert new is None
    if new is not None:
        assert new.leader in live and new.leader in assignment
        assert new.leader in new.isr
        assert new.leader_epoch == current.leader_epoch + 1
        assert new.partition_epoch == current.partition_epoch  # the write bumps it, not the election


@given(partitions())
def test_preferred_election_invariants(case: tuple[list[BrokerId], LeaderAndIsr, set[BrokerId]]) -> None:
    assignment, current, live = case
    new = elect_preferred(TP, current, assignment, live).leader_and_isr
    if assignment[0] in live and assignment[0] in current.isr:
        assert new is not None
        assert new.leader == assignment[0]
        assert new.isr == current.isr
        assert new.leader_epoch == current.leader_epoch + 1
    else:
        assert new is None


@given(partitions(), st.data())
def test_controlled_shutdown_invariants(
    case: tuple[list[BrokerId], LeaderAndIsr, set[BrokerId]], data: st.DataObject
) -> None:
    assignment, current, live = case
    shutting = set(data.draw(st.lists(st.sampled_from(assignment), unique=True)))
    new = elect_for_controlled_shutdown(TP, current, assignment, live | shutting, shutting).leader_and_isr
    eligible = [r for r in assignment if r in (live | shutting) and r in current.isr and r not in shutting]
    if eligible:
        assert new is not None
        assert new.leader == eligible[0]
        assert not set(new.isr) & shutting
        assert new.leader in new.isr
        assert new.leader_epoch == current.leader_epoch + 1
    else:
        assert new is None


@given(partitions(), st.data())
def test_reassign_election_uses_target_replicas(
    case: tuple[list[BrokerId], LeaderAndIsr, set[BrokerId]], data: st.DataObject
) -> None:
    assignment, current, live = case
    target = data.draw(st.permutations(assignment))
    new = elect_for_reassign(TP, current, target, live).leader_and_isr
    candidates = [r for r in target if r in live and r in current.isr]
    assert (new is None) == (not candidates)
    if new is not None:
        assert new.leader == candidates[0]
        assert new.isr == current.isr
