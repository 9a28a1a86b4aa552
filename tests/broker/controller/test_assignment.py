"""Replica assignment as Kafka's AdminUtils: its own test vectors, errors, and its guarantees."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.controller.assignment import (
    MIXED_RACKS_MESSAGE,
    AssignmentError,
    BrokerPlacement,
    assign_replicas_to_brokers,
    new_partitions_assignment,
    rack_alternated_brokers,
)
from broker.types import BrokerId
from protocol.error_codes import ErrorCode


def placements(racks: dict[int, str | None]) -> list[BrokerPlacement]:
    return [BrokerPlacement(BrokerId(b), r) for b, r in racks.items()]


def test_rack_unaware_matches_kafka() -> None:
    brokers = placements(dict.fromkeys(range(5)))
    got = assign_replicas_to_brokers(brokers, 10, 3, fixed_start_index=0)
    assert got == {
        0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 4], 3: [3, 4, 0], 4: [4, 0, 1],
        5: [0, 2, 3], 6: [1, 3, 4], 7: [2, 4, 0], 8: [3, 0, 1], 9: [4, 1, 2],
    }  # fmt: skip


def test_rack_aware_matches_kafka() -> None:
    racks: dict[int, str | None] = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated_brokers({BrokerId(b): r for b, r in racks.items() if r}) == [0, 3, 1, 5, 4, 2]
    got = assign_replicas_to_brokers(placements(racks), 7, 3, fixed_start_index=0, start_partition_id=0)
    assert got == {
        0: [0, 3, 1], 1: [3, 1, 5], 2: [1, 5, 4], 3: [5, 4, 2], 4: [4, 2, 0], 5: [2, 0, 3], 6: [0, 4, 2],
    }  # fmt: skip


def test_errors_as_kafka() -> None:
    two = placements({1: None, 2: None})
    with pytest.raises(AssignmentError) as too_many:
        assign_replicas_to_brokers(two, 3, 3)
    assert too_many.value.code is ErrorCode.INVALID_REPLICATION_FACTOR
    assert str(too_many.value) == "Replication factor: 3 larger than available brokers: 2."
    with pytest.raises(AssignmentError) as zero_rf:
        assign_replicas_to_brokers(two, 3, 0)
    assert zero_rf.value.code is ErrorCode.INVALID_REPLICATION_FACTOR
    with pytest.raises(AssignmentError) as no_partitions:
        assign_replicas_to_brokers(two, 0, 1)
    assert no_partitions.value.code is ErrorCode.INVALID_PARTITIONS
    with pytest.raises(AssignmentError) as mixed:
        assign_replicas_to_brokers(placements({1: "a", 2: None}), 3, 2)
    assert mixed.value.code is ErrorCode.UNKNOWN_SERVER_ERROR
    assert str(mixed.value) == MIXED_RACKS_MESSAGE


def test_new_partitions_continue_from_partition0_first_replica() -> None:
    brokers = placements(dict.fromkeys(range(5)))
    existing = {0: [BrokerId(3), BrokerId(4)], 1: [BrokerId(4), BrokerId(0)]}
    got = new_partitions_assignment(existing, brokers, 5)
    # Kafka: start index = index of the first broker id >= 3, partitions numbered from 2.
    assert got == assign_replicas_to_brokers(brokers, 3, 2, fixed_start_index=3, start_partition_id=2)
    assert sorted(got) == [2, 3, 4]
    assert all(len(r) == 2 for r in got.values())
    with pytest.raises(AssignmentError) as shrink:
        new_partitions_assignment(existing, brokers, 2)
    assert shrink.value.code is ErrorCode.INVALID_PARTITIONS


def test_random_start_comes_from_injected_rng() -> None:
    brokers = placements(dict.fromkeys(range(6)))
    a = assign_replicas_to_brokers(brokers, 12, 3, rng=random.Random(7))
    b = assign_replicas_to_brokers(brokers, 12, 3, rng=random.Random(7))
    assert a == b
    starts = {assign_replicas_to_brokers(brokers, 1, 1, rng=random.Random(s))[0][0] for s in range(40)}
    assert len(starts) > 1


@given(st.integers(1, 8), st.integers(1, 4), st.integers(1, 40), st.integers(0, 2**32))
def test_rack_unaware_guarantees(n_brokers: int, rf: int, rounds: int, seed: int) -> None:
    rf = min(rf, n_brokers)
    brokers = placements(dict.fromkeys(range(100, 100 + n_brokers)))
    n_partitions = rounds * n_brokers
    got = assign_replicas_to_brokers(brokers, n_partitions, rf, rng=random.Random(seed))
    assert sorted(got) == list(range(n_partitions))
    for replicas in got.values():
        assert len(replicas) == rf
        assert len(set(replicas)) == rf
    # Whole rounds: every broker leads, and holds, exactly the same number of replicas.
    leaders = Counter(r[0] for r in got.values())
    assert set(leaders.values()) == {rounds}
    assert set(Counter(b for r in got.values() for b in r).values()) == {rounds * rf}


@given(
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=9),
    st.integers(1, 4),
    st.integers(1, 30),
    st.integers(0, 2**32),
)
def test_rack_aware_guarantees(racks: list[str], rf: int, n_partitions: int, seed: int) -> None:
    rf = min(rf, len(racks))
    rack_of = {BrokerId(i): r for i, r in enumerate(racks)}
    got = assign_replicas_to_brokers(
        [BrokerPlacement(b, r) for b, r in rack_of.items()], n_partitions, rf, rng=random.Random(seed)
    )
    n_racks = len(set(racks))
    for replicas in got.values():
        assert len(replicas) == rf
        assert len(set(replicas)) == rf
        # As many racks as the replication factor allows.
        assert len({rack_of[b] for b in replicas}) == min(rf, n_racks)
    if n_partitions % len(racks) == 0:
        assert len(set(Counter(r[0] for r in got.values()).values())) == 1


def test_topic_admin_assignment_delegates_here() -> None:
    from broker.cluster.topics import TopicError, assign_replicas

    brokers = [BrokerId(b) for b in (0, 1, 2)]
    existing = [[BrokerId(1), BrokerId(2)], [BrokerId(2), BrokerId(0)]]
    got = assign_replicas(brokers, 2, 2, start_partition=2, existing=existing)
    # Start index and shift = index of broker 1; partition ids go on from 2 (3 bumps the shift).
    assert got == [[0, 2], [1, 2]]
    assert got == list(
        new_partitions_assignment(
            dict(enumerate(existing)), [BrokerPlacement(b) for b in brokers], 4
        ).values()
    )
    with pytest.raises(TopicError) as error:
        assign_replicas(brokers, 1, 4)
    assert error.value.code is ErrorCode.INVALID_REPLICATION_FACTOR
    assert error.value.message == "Replication factor: 4 larger than available brokers: 3."
