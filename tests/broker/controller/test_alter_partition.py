"""AlterPartition validation: what may be written, whatever a leader proposes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.controller.alter_partition import validate_alter_partition
from broker.cluster.controller.context import LeaderAndIsr, LeaderRecoveryState
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode

TP = TopicPartition("t", 0)


def states() -> st.SearchStrategy[LeaderAndIsr]:
    return st.builds(
        LeaderAndIsr,
        st.integers(0, 4).map(BrokerId),
        st.integers(0, 3),
        st.lists(st.integers(0, 4).map(BrokerId), min_size=1, max_size=4, unique=True).map(tuple),
        st.sampled_from(LeaderRecoveryState),
        st.integers(0, 3),
    )


@given(states(), states(), st.sets(st.integers(0, 4).map(BrokerId)), st.integers(0, 3))
def test_only_current_epochs_and_live_isr_are_written(
    current: LeaderAndIsr, proposed: LeaderAndIsr, live: set[BrokerId], version: int
) -> None:
    verdict = validate_alter_partition(TP, current, proposed, live, version)
    if verdict is None:
        assert proposed.leader_epoch == current.leader_epoch
        assert proposed.partition_epoch == current.partition_epoch
        assert set(proposed.isr) <= live
        assert not proposed.equals_allow_stale_partition_epoch(current)
        assert not (
            current.leader_recovery_state is LeaderRecoveryState.RECOVERED
            and proposed.leader_recovery_state is LeaderRecoveryState.RECOVERING
        )
    elif isinstance(verdict, LeaderAndIsr):
        assert verdict is current
        assert proposed.equals_allow_stale_partition_epoch(current)
    else:
        if (
            proposed.leader_epoch < current.leader_epoch
            and proposed.partition_epoch <= current.partition_epoch
        ):
            assert verdict is ErrorCode.FENCED_LEADER_EPOCH
        if proposed.leader_epoch > current.leader_epoch or proposed.partition_epoch > current.partition_epoch:
            assert verdict is ErrorCode.NOT_CONTROLLER


def test_unknown_partition() -> None:
    proposed = LeaderAndIsr(BrokerId(1), 0, (BrokerId(1),))
    assert (
        validate_alter_partition(TP, None, proposed, {BrokerId(1)}, 2) is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )


def test_recovering_leader_may_only_shrink_to_itself_then_recover() -> None:
    current = LeaderAndIsr(BrokerId(1), 3, (BrokerId(1),), LeaderRecoveryState.RECOVERING, 5)
    live = {BrokerId(1), BrokerId(2)}
    grow_while_recovering = LeaderAndIsr(
        BrokerId(1), 3, (BrokerId(1), BrokerId(2)), LeaderRecoveryState.RECOVERING, 5
    )
    assert validate_alter_partition(TP, current, grow_while_recovering, live, 2) is ErrorCode.INVALID_REQUEST
    recovered = LeaderAndIsr(BrokerId(1), 3, (BrokerId(1),), LeaderRecoveryState.RECOVERED, 5)
    assert validate_alter_partition(TP, current, recovered, live, 2) is None
