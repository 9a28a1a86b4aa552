"""Partition reassignment through the controller's phases (KafkaController.onPartitionReassignment):
start (RS = ORS + TRS, new replicas as followers), completion once the target replicas are in the
ISR (reassign election, removed replicas stopped and deleted, RS = TRS), cancellation, the
api's validation, the znode path, and resumption after fail-over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.controller import (
    Controller,
    ControllerDecisions,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    PartitionReplica,
    ReplicaAssignment,
    ReplicaState,
    TopicSnapshot,
    ZkReassignmentRemoval,
)
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import AlterPartitionRequest, PartitionData, TopicData
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest

from .kit import TOPIC_ID, broker, controller, lai_partitions, of_kind, state, stop_partitions, topic

T = "moves"
TP = TopicPartition(T, 0)


def ids(*brokers: int) -> tuple[BrokerId, ...]:
    return tuple(BrokerId(b) for b in brokers)


def cluster(replicas: tuple[int, ...] = (1, 2)) -> Controller:
    ctl = controller(brokers=[1, 2, 3, 4])
    ctl.on_topics_created({T: topic({0: list(replicas)})})
    return ctl


def set_isr(ctl: Controller, isr: list[int]) -> ControllerDecisions:
    """The leader's AlterPartition for ``isr``; it must be accepted."""
    current = state(ctl, T, 0)
    request = AlterPartitionRequest(
        broker_id=current.leader,
        broker_epoch=1000 + current.leader,
        topics=[
            TopicData(
                topic_name=T,
                partitions=[
                    PartitionData(
                        partition_index=0,
                        leader_epoch=current.leader_epoch,
                        new_isr=isr,
                        partition_epoch=current.partition_epoch,
                    )
                ],
            )
        ],
    )
    response, decisions = ctl.alter_partition(request, 1)
    assert [p.error_code for t in response.topics for p in t.partitions] == [0]
    return decisions


def reassign(ctl: Controller, target: list[int] | None) -> tuple[ErrorCode, ControllerDecisions]:
    results, decisions = ctl.alter_partition_reassignments({TP: target})
    return results[TP].error, decisions


def stops(decisions: ControllerDecisions) -> dict[int, dict[tuple[str, int], tuple[int, bool]]]:
    found: dict[int, dict[tuple[str, int], tuple[int, bool]]] = {}
    for sent in of_kind(decisions, StopReplicaRequest):
        found.setdefault(sent.broker, {}).update(stop_partitions(sent.request))
    return found


def test_reassign_to_other_brokers_runs_both_phases() -> None:
    ctl = cluster((1, 2))
    before = state(ctl, T, 0)
    assert (before.leader, before.isr) == (1, (1, 2))

    # -- start: RS = TRS + ORS with AR and RR, a new epoch, new replicas as followers ----------
    error, d = reassign(ctl, [3, 4])
    assert error is ErrorCode.NONE
    moving = ReplicaAssignment(ids(3, 4, 1, 2), ids(3, 4), ids(1, 2))
    assert ctl.context.full_assignment(TP) == moving
    assert [w.partitions[0] for w in d.assignment_writes] == [moving]
    assert d.assignment_writes[0].topic_id == TOPIC_ID
    assert d.zk_reassignment_removals == [ZkReassignmentRemoval(TP)]  # the api wins over the znode
    [write] = d.partition_writes
    assert (write.state.leader_and_isr.leader, write.state.leader_and_isr.leader_epoch) == (
        1,
        before.leader_epoch + 1,
    )
    lai = {s.broker: lai_partitions(s.request)[(T, 0)] for s in of_kind(d, LeaderAndIsrRequest)}
    assert set(lai) == {1, 2, 3, 4}
    assert {b: is_new for b, (_, _, _, is_new) in lai.items()} == {1: False, 2: False, 3: True, 4: True}
    for sent in of_kind(d, LeaderAndIsrRequest):
        p = sent.request.topic_states[0].partition_states[0]
        assert (p.replicas, p.adding_replicas, p.removing_replicas) == ([3, 4, 1, 2], [3, 4], [1, 2])
    assert ctl.context.replica_state(PartitionReplica(TP, BrokerId(3))) is ReplicaState.NEW
    assert stops(d) == {}
    assert ctl.list_partition_reassignments() == {TP: moving}

    # -- one target replica caught up: not yet ----------------------------------------------
    d = set_isr(ctl, [1, 2, 3])
    assert d.assignment_writes == [] and stops(d) == {}
    assert TP in ctl.context.partitions_being_reassigned

    # -- all target replicas in the ISR: completion ------------------------------------------
    d = set_isr(ctl, [1, 2, 3, 4])
    after = state(ctl, T, 0)
    assert after.leader == 3  # the first live ISR member of TRS
    assert after.isr == (3, 4)  # the removed replicas left the ISR on their way offline
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(3, 4))
    assert d.assignment_writes[-1].partitions[0] == ReplicaAssignment(ids(3, 4))
    assert d.zk_reassignment_removals == [ZkReassignmentRemoval(TP, ids(3, 4))]
    assert {b: {k: delete for k, (_, delete) in s.items()} for b, s in stops(d).items()} == {
        1: {(T, 0): True},
        2: {(T, 0): True},
    }
    # The new leader learns it from a LeaderAndIsr naming only the target replicas.
    lai_to_3 = [lai_partitions(s.request)[(T, 0)] for s in of_kind(d, LeaderAndIsrRequest) if s.broker == 3]
    assert lai_to_3 and lai_to_3[-1][0] == 3
    assert ctl.context.replica_state(PartitionReplica(TP, BrokerId(1))) is ReplicaState.NON_EXISTENT
    assert ctl.context.replica_state(PartitionReplica(TP, BrokerId(4))) is ReplicaState.ONLINE
    assert ctl.list_partition_reassignments() == {}
    assert ctl.context.partitions_being_reassigned == set()


def test_leader_kept_when_it_stays_in_the_target() -> None:
    ctl = cluster((1, 2))
    assert reassign(ctl, [1, 3])[0] is ErrorCode.NONE
    epoch = state(ctl, T, 0).leader_epoch
    d = set_isr(ctl, [1, 2, 3])
    after = state(ctl, T, 0)
    assert after.leader == 1 and after.isr == (1, 3)
    assert after.leader_epoch > epoch
    assert set(stops(d)) == {2}
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(1, 3))


def test_complete_at_once_when_target_already_in_isr() -> None:
    ctl = cluster((1, 2))
    error, d = reassign(ctl, [2])
    assert error is ErrorCode.NONE
    after = state(ctl, T, 0)
    assert after.leader == 2 and after.isr == (2,)
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(2))
    assert set(stops(d)) == {1}
    assert ctl.list_partition_reassignments() == {}


def test_cancel_goes_back_to_the_original_replicas() -> None:
    ctl = cluster((1, 2))
    reassign(ctl, [3, 4])
    error, d = reassign(ctl, None)
    assert error is ErrorCode.NONE
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(1, 2))
    assert set(stops(d)) == {3, 4}
    assert all(delete for s in stops(d).values() for _, delete in s.values())
    assert state(ctl, T, 0).leader == 1
    assert ctl.list_partition_reassignments() == {}
    # Nothing left to cancel.
    assert reassign(ctl, None)[0] is ErrorCode.NO_REASSIGNMENT_IN_PROGRESS


def test_a_new_reassignment_replaces_the_ongoing_one() -> None:
    ctl = cluster((1, 2))
    reassign(ctl, [3, 4])
    error, d = reassign(ctl, [1, 3])
    assert error is ErrorCode.NONE
    # ORS stays {1, 2}; 4 was only being added and goes at once.
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(1, 3, 2), ids(3), ids(2))
    assert set(stops(d)) == {4}


def test_api_validation() -> None:
    ctl = cluster((1, 2))
    results, _ = ctl.alter_partition_reassignments(
        {
            TopicPartition(T, 0): [],
            TopicPartition(T, 1): [3],
            TopicPartition("nope", 0): [1],
        }
    )
    assert results[TopicPartition(T, 0)].error is ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert results[TopicPartition(T, 1)].error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert results[TopicPartition("nope", 0)].error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    for bad in ([1, 1], [1, -3], [1, 9]):
        error, _ = reassign(ctl, bad)
        assert error is ErrorCode.INVALID_REPLICA_ASSIGNMENT, bad
    ctl.on_broker_failure([BrokerId(4)])
    assert reassign(ctl, [3, 4])[0] is ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(1, 2))


def test_topic_being_deleted_is_not_reassigned() -> None:
    ctl = cluster((1, 2))
    ctl.on_topic_deletion_requested([T])
    assert reassign(ctl, [3, 4])[0] is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_znode_reassignment_and_its_failures() -> None:
    ctl = cluster((1, 2))
    d = ctl.on_zk_reassignment({TP: [3, 4], TopicPartition("gone", 0): [1]})
    assert ctl.context.full_assignment(TP).target_replicas == ids(3, 4)
    # The unknown partition leaves the znode at once; the other when it completes.
    assert d.zk_reassignment_removals == [ZkReassignmentRemoval(TopicPartition("gone", 0))]
    d = set_isr(ctl, [1, 2, 3, 4])
    assert d.zk_reassignment_removals == [ZkReassignmentRemoval(TP, ids(3, 4))]


def test_failover_resumes_reassignments_in_the_assignment() -> None:
    ctl = Controller(controller(brokers=[]).config)
    moving = ReplicaAssignment(ids(3, 1, 2), ids(3), ids(2))
    recorded = LeaderIsrAndControllerEpoch(LeaderAndIsr(BrokerId(1), 4, ids(1, 2), partition_epoch=9), 6)
    ctl.on_controller_failover(
        7, 6, [broker(b) for b in (1, 2, 3)], {T: TopicSnapshot(TOPIC_ID, {0: moving})}, {TP: recorded}
    )
    assert ctl.context.partitions_being_reassigned == {TP}
    d = ctl.initialize_reassignments({})
    lai = {s.broker: lai_partitions(s.request)[(T, 0)] for s in of_kind(d, LeaderAndIsrRequest)}
    assert {b: (leader, epoch, is_new) for b, (leader, epoch, _, is_new) in lai.items()} == {
        1: (1, 5, False),
        2: (1, 5, False),
        3: (1, 5, True),
    }
    assert ctl.list_partition_reassignments([TP, TopicPartition(T, 9)]) == {TP: moving}


@given(
    origin=st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True),
    target=st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True),
)
def test_reassign_to_invariants(origin: list[int], target: list[int]) -> None:
    moving = ReplicaAssignment.of(origin).reassign_to(ids(*target))
    assert moving.target_replicas == ids(*target)
    assert set(moving.origin_replicas) == set(origin)
    assert moving.replicas[: len(target)] == ids(*target)  # Kafka's order: the target first
    assert set(moving.replicas) == set(origin) | set(target)
    assert set(moving.adding_replicas) == set(target) - set(origin)
    assert set(moving.removing_replicas) == set(origin) - set(target)
    # Cancelling goes back to the origin (in RS order, as Kafka), with nothing in flight.
    cancelled = moving.reassign_to(moving.origin_replicas)
    assert not cancelled.is_being_reassigned
    assert cancelled.replicas == moving.origin_replicas


def test_a_returning_target_broker_gets_the_reassignment_again() -> None:
    ctl = cluster((1, 2))
    reassign(ctl, [3, 4])
    ctl.on_broker_failure([BrokerId(4)])
    assert TP in ctl.context.partitions_being_reassigned
    d = ctl.on_broker_startup([broker(4, epoch=2000)])
    lai = [lai_partitions(s.request)[(T, 0)] for s in of_kind(d, LeaderAndIsrRequest) if s.broker == 4]
    assert lai and lai[-1][3]  # is_new: the adding replica starts (again) as a follower
    # Still waiting for 3 and 4 to join the ISR.
    assert ctl.list_partition_reassignments() == {
        TP: ReplicaAssignment(ids(3, 4, 1, 2), ids(3, 4), ids(1, 2))
    }
    d = set_isr(ctl, [1, 2, 3, 4])
    assert ctl.context.full_assignment(TP) == ReplicaAssignment(ids(3, 4))
