"""KIP-392's RackAwareReplicaSelector: which replica a consumer is sent to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.replica.selector import (
    RACK_AWARE_SELECTOR,
    RackAwareReplicaSelector,
    ReplicaView,
    preferred_read_replica,
    selector_from_config,
)

RACKS = ["a", "b", "c", None]


def view(broker: int, rack: str | None, leo: int = 10, since: int = 0) -> ReplicaView:
    return ReplicaView(broker, rack, leo, since)


def test_the_follower_in_the_clients_rack_is_preferred() -> None:
    leader = view(1, "a")
    followers = [view(2, "b"), view(3, "c")]
    assert preferred_read_replica(RackAwareReplicaSelector(), "b", leader, followers) == 2


def test_the_leader_serves_when_it_is_in_the_clients_rack_or_no_replica_is() -> None:
    selector = RackAwareReplicaSelector()
    leader = view(1, "b")
    assert preferred_read_replica(selector, "b", leader, [view(2, "b", leo=99)]) == -1
    assert preferred_read_replica(selector, "z", view(1, "a"), [view(2, "b")]) == -1
    assert preferred_read_replica(selector, "", view(1, "a"), [view(2, "b")]) == -1


def test_the_most_caught_up_follower_of_the_rack_wins() -> None:
    selector = RackAwareReplicaSelector()
    leader = view(1, "a")
    assert preferred_read_replica(selector, "b", leader, [view(2, "b", 5), view(3, "b", 7)]) == 3
    # Equal log ends: the one caught up most recently.
    assert preferred_read_replica(selector, "b", leader, [view(2, "b", 7, 10), view(3, "b", 7, 90)]) == 2


def test_configuration_names_kafkas_class_or_nothing() -> None:
    assert selector_from_config(None) is None
    assert selector_from_config("") is None
    assert isinstance(selector_from_config(RACK_AWARE_SELECTOR), RackAwareReplicaSelector)
    with pytest.raises(ValueError, match=r"replica\.selector\.class"):
        selector_from_config("com.example.MySelector")


@given(
    client_rack=st.sampled_from(["a", "b", "c", ""]),
    leader_rack=st.sampled_from(RACKS),
    followers=st.lists(
        st.tuples(st.sampled_from(RACKS), st.integers(0, 50), st.integers(0, 1000)), max_size=5
    ),
)
def test_a_preferred_replica_is_always_a_follower_of_the_clients_rack(
    client_rack: str, leader_rack: str | None, followers: list[tuple[str | None, int, int]]
) -> None:
    leader = view(1, leader_rack, 50)
    views = [view(i + 2, rack, leo, since) for i, (rack, leo, since) in enumerate(followers)]
    chosen = preferred_read_replica(RackAwareReplicaSelector(), client_rack, leader, views)
    same_rack = [v for v in views if client_rack and v.rack == client_rack]
    if not same_rack or leader_rack == client_rack:
        assert chosen == -1
    else:
        best = max(v.log_end_offset for v in same_rack)
        picked = next(v for v in views if v.broker_id == chosen)
        assert picked.rack == client_rack and picked.log_end_offset == best
