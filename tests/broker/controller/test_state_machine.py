"""The state machines' rules and the controller's events beyond the happy path: refused
transitions, fail-over, unclean election, bounced brokers, AlterPartition validation."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.cluster.controller import (
    Controller,
    ElectionType,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    LeaderRecoveryState,
    PartitionReplica,
    PartitionState,
    ReplicaState,
)
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import (
    AlterPartitionRequest,
    BrokerState,
    PartitionData,
    TopicData,
)
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.update_metadata_request import UpdateMetadataRequest

from .kit import TOPIC_ID, broker, controller, lai_partitions, of_kind, state, topic

TP0 = TopicPartition("a", 0)


def test_invalid_partition_transition_is_refused_and_logged() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]})})
    ctl._begin()
    ctl.partitions.handle_state_changes([TP0], PartitionState.NEW)  # Online -> New: not allowed
    ctl.partitions.handle_state_changes([TP0], PartitionState.NON_EXISTENT)  # Online -> NonExistent neither
    d = ctl._finish()
    assert ctl.context.partition_state(TP0) is PartitionState.ONLINE
    assert len(d.failures) == 2
    assert "should be in one of NonExistentPartition states before moving to NewPartition" in d.failures[0]
    assert d.partition_writes == []


def test_invalid_replica_transition_is_refused() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]})})
    ctl._begin()
    ctl.replicas.handle_state_changes([PartitionReplica(TP0, BrokerId(2))], ReplicaState.DELETION_STARTED)
    d = ctl._finish()
    assert ctl.context.replica_state(PartitionReplica(TP0, BrokerId(2))) is ReplicaState.ONLINE
    assert d.failures and "ReplicaDeletionStarted" in d.failures[0]
    assert d.requests == []


def test_new_partition_without_live_replica_stays_new() -> None:
    ctl = controller(brokers=[1])
    d = ctl.on_topics_created({"a": topic({0: [2, 3]})})
    assert d.partition_writes == []
    assert ctl.context.partition_state(TP0) is PartitionState.NEW
    assert "No assigned replica is alive." in d.failures[0]
    # When a replica's broker arrives, the partition comes online.
    d = ctl.on_broker_startup([broker(3)])
    assert [
        (w.partition, w.state.leader_and_isr.leader, w.expected_zk_version) for w in d.partition_writes
    ] == [(TP0, 3, None)]  # a create: the state znode did not exist yet


def test_failover_loads_zookeeper_state_and_elects_for_offline_partitions() -> None:
    ctl = Controller(controller(brokers=[]).config)
    states = {
        TP0: LeaderIsrAndControllerEpoch(
            LeaderAndIsr(BrokerId(1), 7, (BrokerId(1), BrokerId(2)), partition_epoch=12), 4
        ),
        TopicPartition("a", 1): LeaderIsrAndControllerEpoch(
            LeaderAndIsr(BrokerId(3), 2, (BrokerId(3), BrokerId(2)), partition_epoch=5), 4
        ),
    }
    d = ctl.on_controller_failover(6, 9, [broker(2), broker(3)], {"a": topic({0: [1, 2], 1: [3, 2]})}, states)
    assert d.controller_epoch == 6 and d.controller_epoch_zk_version == 9
    # Broker 1 is gone. As Kafka, the replica state machine starts first and takes it out of the
    # ISR (leader -1), then the partition state machine elects 2 (clean: it is in the ISR).
    assert [(w.partition, w.expected_zk_version) for w in d.partition_writes] == [(TP0, 12), (TP0, 13)]
    first, second = (w.state for w in d.partition_writes)
    assert first.leader_and_isr == LeaderAndIsr(BrokerId(-1), 8, (BrokerId(2),), partition_epoch=13)
    assert second.controller_epoch == 6
    assert second.leader_and_isr == LeaderAndIsr(BrokerId(2), 9, (BrokerId(2),), partition_epoch=14)
    assert ctl.context.partition_state(TopicPartition("a", 1)) is PartitionState.ONLINE
    assert {r.broker for r in of_kind(d, LeaderAndIsrRequest)} == {2, 3}
    for r in of_kind(d, LeaderAndIsrRequest):
        assert r.request.controller_epoch == 6


def test_unclean_election_from_topic_config() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]}), "b": topic({0: [1, 2]}, uuid.uuid4())})
    for t in ("a", "b"):
        ctl.context.leadership[TopicPartition(t, 0)] = LeaderIsrAndControllerEpoch(
            state(ctl, t, 0).new_leader_and_isr(BrokerId(1), [BrokerId(1)]).with_partition_epoch(3), 5
        )
    ctl.context.topic_unclean_leader_election["b"] = True
    d = ctl.on_broker_failure([BrokerId(1)])
    a, b = state(ctl, "a", 0), state(ctl, "b", 0)
    # Clean only: no ISR member lives, so "a" goes leaderless (ISR keeps its last member).
    assert (a.leader, a.isr) == (-1, (1,))
    assert ctl.context.partition_state(TP0) is PartitionState.OFFLINE
    # Unclean allowed: 2 leads alone, RECOVERING.
    assert (b.leader, b.isr, b.leader_recovery_state) == (2, (2,), LeaderRecoveryState.RECOVERING)
    assert any("Failed to elect leader for partition a-0" in f for f in d.failures)


def test_bounced_broker_fails_then_starts() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2, 3]})})
    registered = dict(ctl.context.live_brokers)
    registered[BrokerId(1)] = broker(1, epoch=5000)
    d = ctl.on_broker_change(registered)
    to_1 = [type(r.request).__name__ for r in d.requests if r.broker == 1]
    # Failure then start-up (same id, new epoch): it lost leadership and got its LeaderAndIsr at
    # its new broker epoch; nothing was sent to its old incarnation.
    assert "LeaderAndIsrRequest" in to_1
    assert state(ctl, "a", 0).leader == 2
    assert ctl.context.live_brokers[BrokerId(1)].epoch == 5000
    last_lai = [r.request for r in of_kind(d, LeaderAndIsrRequest) if r.broker == 1][-1]
    assert last_lai.broker_epoch == 5000
    assert lai_partitions(last_lai)[("a", 0)][0] == 2


def test_controlled_shutdown_errors() -> None:
    ctl = controller()
    result, _ = ctl.controlled_shutdown(BrokerId(2), 999)
    assert result.error is ErrorCode.STALE_BROKER_EPOCH
    assert result.message == (
        "Received controlled shutdown request from an old broker epoch 999 for broker 2. "
        "Current broker epoch is 1002."
    )
    result, _ = ctl.controlled_shutdown(BrokerId(9), -1)
    assert (result.error, result.message) == (ErrorCode.BROKER_NOT_AVAILABLE, "Broker id 9 does not exist.")


def test_controlled_shutdown_of_sole_replica_leaves_it_leading() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [2], 1: [2, 3]})})
    result, d = ctl.controlled_shutdown(BrokerId(2), 1002)
    # RF 1 partitions are not acted on: the broker still leads them, and they are not reported
    # as remaining (Kafka's replicatedPartitionsBrokerLeads), or the broker would retry in vain.
    assert state(ctl, "a", 0).leader == 2
    assert result.remaining_partitions == frozenset()
    assert state(ctl, "a", 1).leader == 3
    assert not [r for r in of_kind(d, StopReplicaRequest) if r.broker == 2]


# -- AlterPartition ------------------------------------------------------------------------------


def alter(
    ctl: Controller,
    *,
    leader_epoch: int | None = None,
    partition_epoch: int | None = None,
    isr: list[int],
    version: int = 2,
    broker_epoch: int = 1001,
    recovery: int = 0,
) -> tuple[int, int]:
    """(top-level error, partition error) of an AlterPartition from broker 1 for a-0."""
    current = state(ctl, "a", 0)
    part = PartitionData(
        partition_index=0,
        leader_epoch=current.leader_epoch if leader_epoch is None else leader_epoch,
        partition_epoch=current.partition_epoch if partition_epoch is None else partition_epoch,
        leader_recovery_state=recovery,
    )
    if version >= 3:
        part.new_isr_with_epochs = [BrokerState(broker_id=b, broker_epoch=1000 + b) for b in isr]
    else:
        part.new_isr = isr
    topic_data = (
        TopicData(topic_id=TOPIC_ID, partitions=[part])
        if version > 1
        else TopicData(topic_name="a", partitions=[part])
    )
    request = AlterPartitionRequest(broker_id=1, broker_epoch=broker_epoch, topics=[topic_data])
    request = AlterPartitionRequest.decode(request.encode(version), version)
    response, _ = ctl.alter_partition(request, version)
    if response.error_code:
        return response.error_code, 0
    (t,) = response.topics
    if version > 1:
        assert t.topic_id == TOPIC_ID
    (p,) = t.partitions
    return 0, p.error_code


@pytest.fixture
def three() -> Controller:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2, 3]})})
    return ctl


def test_alter_partition_accepts_and_bumps_partition_epoch(three: Controller) -> None:
    assert alter(three, isr=[1, 2]) == (0, 0)
    now = state(three, "a", 0)
    assert (now.isr, now.partition_epoch, now.leader_epoch) == ((1, 2), 1, 0)
    assert alter(three, isr=[1, 2], version=3) == (0, 0)  # already so: idempotent, no write
    assert state(three, "a", 0).partition_epoch == 1


def test_alter_partition_errors(three: Controller) -> None:
    assert alter(three, isr=[1], broker_epoch=5) == (ErrorCode.STALE_BROKER_EPOCH.value, 0)
    assert alter(three, isr=[1], partition_epoch=1) == (0, ErrorCode.NOT_CONTROLLER.value)
    assert alter(three, isr=[1], leader_epoch=1) == (0, ErrorCode.NOT_CONTROLLER.value)
    assert alter(three, isr=[1, 2]) == (0, 0)
    assert alter(three, isr=[1], partition_epoch=0) == (0, ErrorCode.INVALID_UPDATE_VERSION.value)
    three.on_broker_failure([BrokerId(3)])  # leader epoch stays (1 leads), ISR unchanged (3 not in it)
    assert alter(three, isr=[1, 2, 3]) == (0, ErrorCode.INELIGIBLE_REPLICA.value)
    assert alter(three, isr=[1, 2, 3], version=1) == (0, ErrorCode.OPERATION_NOT_ATTEMPTED.value)
    assert alter(three, isr=[1, 2], recovery=1) == (0, ErrorCode.INVALID_REQUEST.value)
    three.on_broker_failure([BrokerId(1)])  # a dead broker's requests are refused whole
    assert alter(three, isr=[1, 2], leader_epoch=0, partition_epoch=1) == (
        ErrorCode.STALE_BROKER_EPOCH.value,
        0,
    )


def test_alter_partition_unknown_recovery_state_fails_the_request(three: Controller) -> None:
    assert alter(three, isr=[1, 2], recovery=7) == (ErrorCode.UNKNOWN_SERVER_ERROR.value, 0)
    assert state(three, "a", 0).partition_epoch == 0


def test_alter_partition_fenced_leader_epoch(three: Controller) -> None:
    three.on_broker_failure([BrokerId(2)])  # ISR shrink: leader epoch 1
    assert alter(three, isr=[1, 3], leader_epoch=0) == (0, ErrorCode.FENCED_LEADER_EPOCH.value)


def test_alter_partition_unknown_topic_id(three: Controller) -> None:
    request = AlterPartitionRequest(
        broker_id=1,
        broker_epoch=1001,
        topics=[TopicData(topic_id=uuid.uuid4(), partitions=[PartitionData(partition_index=0, new_isr=[1])])],
    )
    response, d = three.alter_partition(request, 2)
    assert response.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_ID.value
    assert d.partition_writes == []


# -- properties of the whole machine ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["fail", "start", "shutdown", "rebalance"]), st.integers(1, 4)), max_size=12
    )
)
def test_leadership_invariants_under_any_broker_history(events: list[tuple[str, int]]) -> None:
    """Whatever brokers do: leaders are live ISR members of the assignment or -1, epochs only
    grow and bump with each leader change, and each write expects the previous version."""
    ctl = controller(brokers=[1, 2, 3, 4])
    ctl.on_topics_created({"a": topic({p: [1 + (p + i) % 4 for i in range(3)] for p in range(8)})})
    epochs = {p: (state(ctl, "a", p).leader_epoch, state(ctl, "a", p).partition_epoch) for p in range(8)}
    generation = 2000
    for kind, b in events:
        bid = BrokerId(b)
        if kind == "fail" and bid in ctl.context.live_brokers:
            d = ctl.on_broker_failure([bid])
        elif kind == "start" and bid not in ctl.context.live_brokers:
            generation += 1
            d = ctl.on_broker_startup([broker(b, epoch=generation)])
        elif kind == "shutdown" and bid in ctl.context.live_brokers:
            d = ctl.controlled_shutdown(bid, -1)[1]
        else:
            d = ctl.auto_rebalance()
        for r in d.requests:
            # Only to registered brokers, at their epoch, and every request survives the codec.
            assert r.request.broker_epoch == ctl.context.live_brokers[r.broker].epoch
            encoded = r.request.encode(r.version)
            assert type(r.request).decode(encoded, r.version) == r.request
        versions: dict[TopicPartition, int] = {}
        for w in d.partition_writes:
            before = versions.get(w.partition, epochs[w.partition.partition][1])
            assert w.expected_zk_version == before
            assert w.state.leader_and_isr.partition_epoch == before + 1
            versions[w.partition] = before + 1
        for p in range(8):
            now = state(ctl, "a", p)
            old_leader_epoch, old_partition_epoch = epochs[p]
            assert now.leader_epoch >= old_leader_epoch
            assert now.partition_epoch >= old_partition_epoch
            if now.leader != -1:
                assert now.leader in ctl.context.live_brokers
                assert now.leader in now.isr
                assert now.leader in ctl.context.replica_assignment(TopicPartition("a", p))
            assert now.isr, "Kafka never empties an ISR"
            epochs[p] = (now.leader_epoch, now.partition_epoch)


def test_elect_leaders_answers_as_kafka() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2], 1: [2, 1], 2: [3, 1]})})
    ctl.on_broker_failure([BrokerId(1)])
    ctl.on_broker_startup([broker(1, epoch=7000)])
    # 1 is back but outside the ISR of a-0: its preferred leader is not available.
    answers, d = ctl.elect_leaders(
        [TP0, TopicPartition("a", 1), TopicPartition("a", 9)], ElectionType.PREFERRED
    )
    assert answers[TP0].error is ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    assert answers[TopicPartition("a", 1)].error is ErrorCode.ELECTION_NOT_NEEDED
    assert answers[TopicPartition("a", 9)].error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert d.partition_writes == []
    ctl.context.leadership[TP0] = LeaderIsrAndControllerEpoch(
        state(ctl, "a", 0).new_leader_and_isr(BrokerId(2), [BrokerId(2), BrokerId(1)]), 5
    )
    answers, d = ctl.elect_leaders([TP0], ElectionType.PREFERRED)
    assert answers[TP0].error is ErrorCode.NONE
    assert state(ctl, "a", 0).leader == 1


def test_unclean_election_type_elects_outside_the_isr() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]})})
    ctl.on_broker_failure([BrokerId(2)])  # ISR (1)
    ctl.on_broker_failure([BrokerId(1)])  # leaderless, ISR stays (1)
    ctl.on_broker_startup([broker(2, epoch=8000)])
    assert state(ctl, "a", 0).leader == -1  # clean election could not use 2
    answers, d = ctl.elect_leaders([TP0], ElectionType.UNCLEAN)
    assert answers[TP0].error is ErrorCode.NONE
    written = d.last_write(TP0)
    assert written is not None and written.state.leader_and_isr.leader == 2
    now = state(ctl, "a", 0)
    assert (now.leader, now.isr, now.leader_recovery_state) == (2, (2,), LeaderRecoveryState.RECOVERING)
    answers, _ = ctl.elect_leaders([TP0], ElectionType.UNCLEAN)
    assert answers[TP0].error is ErrorCode.ELECTION_NOT_NEEDED


def test_partitions_added_come_online_and_not_while_deleting() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]})})
    d = ctl.on_partitions_added(
        "a", {0: topic({0: [1, 2]}).partitions[0], 1: topic({0: [2, 3]}).partitions[0]}
    )
    assert [(w.partition, w.expected_zk_version) for w in d.partition_writes] == [
        (TopicPartition("a", 1), None)
    ]
    assert state(ctl, "a", 1).leader == 2
    lai = {r.broker: lai_partitions(r.request) for r in of_kind(d, LeaderAndIsrRequest)}
    assert set(lai) == {2, 3} and lai[3][("a", 1)] == (2, 0, [2, 3], True)
    ctl.on_broker_failure([BrokerId(1)])  # so that deletion cannot finish
    ctl.on_topic_deletion_requested(["a"])
    d = ctl.on_partitions_added("a", {**ctl.context.assignments["a"], 2: topic({0: [3]}).partitions[0]})
    assert d.partition_writes == [] and "being deleted" in d.failures[0]
    assert 2 not in ctl.context.assignments["a"]


def test_changed_endpoints_are_told_to_every_broker() -> None:
    ctl = controller()
    moved = broker(2)
    moved = type(moved)(moved.id, moved.endpoints[:1], "rack-b", moved.epoch)
    d = ctl.on_broker_change({**ctl.context.live_brokers, BrokerId(2): moved})
    assert d.partition_writes == []
    ums = of_kind(d, UpdateMetadataRequest)
    assert {u.broker for u in ums} == {1, 2, 3}
    assert [(b.id, b.rack, len(b.endpoints)) for b in ums[0].request.live_brokers][1] == (2, "rack-b", 1)
