"""A broker's log dir fails: the controller learns which replicas are offline from LeaderAndIsr
answers (KAFKA_STORAGE_ERROR), moves their leadership, drops them from the ISRs and tells every
broker (Kafka's onBrokerLogDirFailure / processLeaderAndIsrResponseReceived)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.cluster.controller import Controller, ControllerDecisions, ElectionType, ReplicaState
from broker.cluster.controller.context import NO_LEADER, PartitionReplica
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.update_metadata_request import UpdateMetadataRequest

from .kit import (
    broker,
    controller,
    lai_partitions,
    of_kind,
    recipients,
    state,
    stop_partitions,
    topic,
    um_partitions,
)

T = "events"
ASSIGNMENT = {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}
B1 = BrokerId(1)


def tp(p: int) -> TopicPartition:
    return TopicPartition(T, p)


def cluster() -> Controller:
    ctl = controller()
    ctl.on_topics_created({T: topic(ASSIGNMENT)})
    return ctl


def storage_error_on(ctl: Controller, broker_id: int, *partitions: int) -> ControllerDecisions:
    """Broker ``broker_id`` answers its LeaderAndIsr: those partitions failed, the others are fine."""
    errors = {
        tp(p): ErrorCode.KAFKA_STORAGE_ERROR if p in partitions else ErrorCode.STALE_CONTROLLER_EPOCH
        for p, replicas in ASSIGNMENT.items()
        if broker_id in replicas
    }
    return ctl.on_leader_and_isr_response(BrokerId(broker_id), errors)


def test_a_log_dir_event_asks_the_broker_about_all_its_replicas_and_changes_nothing_yet() -> None:
    ctl = cluster()
    d = ctl.on_log_dir_failure([B1])
    assert d.partition_writes == []
    assert recipients(d, LeaderAndIsrRequest) == {1}
    (lai,) = of_kind(d, LeaderAndIsrRequest)
    # The current leaderships, unchanged epochs: only offline replicas answer with an error.
    assert lai_partitions(lai.request) == {
        (T, 0): (1, 0, [1, 2, 3], False),
        (T, 1): (2, 0, [2, 3, 1], False),
        (T, 2): (3, 0, [3, 1, 2], False),
    }
    assert all(ctl.context.is_replica_online(B1, tp(p)) for p in ASSIGNMENT)


def test_unknown_or_dead_brokers_in_log_dir_events_are_ignored() -> None:
    ctl = cluster()
    ctl.on_broker_failure([BrokerId(3)])
    d = ctl.on_log_dir_failure([BrokerId(3), BrokerId(9)])
    assert d.is_empty


def test_storage_error_moves_leadership_and_shrinks_the_isr() -> None:
    ctl = cluster()
    ctl.on_log_dir_failure([B1])
    d = storage_error_on(ctl, 1, 0, 1)

    assert not ctl.context.is_replica_online(B1, tp(0))
    assert not ctl.context.is_replica_online(B1, tp(1))
    assert ctl.context.is_replica_online(B1, tp(2))
    # Partition 0 was led by 1: a clean election among the live ISR members.
    assert state(ctl, T, 0).leader == 2
    assert state(ctl, T, 0).leader_epoch == 1
    assert state(ctl, T, 0).isr == (2, 3)
    # Partition 1 keeps its leader; 1 leaves its ISR (a new leader epoch, as Kafka).
    assert state(ctl, T, 1).leader == 2
    assert state(ctl, T, 1).isr == (2, 3)
    # Partition 2 is untouched.
    assert state(ctl, T, 2).leader == 3
    assert state(ctl, T, 2).isr == (3, 1, 2)
    assert {w.partition.partition for w in d.partition_writes} == {0, 1}

    # The new leadership goes to the online replicas only; broker 1 stops its failed replicas.
    assert recipients(d, LeaderAndIsrRequest) == {2, 3}
    stops = of_kind(d, StopReplicaRequest)
    assert {s.broker for s in stops} == {1}
    assert set(stop_partitions(stops[0].request)) == {(T, 0), (T, 1)}
    assert all(not delete for _, delete in stop_partitions(stops[0].request).values())
    assert ctl.context.replica_state(PartitionReplica(tp(0), B1)) is ReplicaState.OFFLINE

    # Every broker (1 included: it is alive) learns the offline replicas.
    assert recipients(d, UpdateMetadataRequest) == {1, 2, 3}
    last = um_partitions(of_kind(d, UpdateMetadataRequest)[-1].request)
    assert last[(T, 0)] == (2, [2, 3], [1])
    assert last[(T, 1)] == (2, [2, 3], [1])


def test_the_same_answer_again_changes_nothing() -> None:
    ctl = cluster()
    storage_error_on(ctl, 1, 0)
    before = state(ctl, T, 0)
    d = storage_error_on(ctl, 1, 0)
    assert d.is_empty
    assert state(ctl, T, 0) == before


def test_a_request_level_error_changes_nothing() -> None:
    ctl = cluster()
    d = ctl.on_leader_and_isr_response(
        B1, {tp(0): ErrorCode.KAFKA_STORAGE_ERROR}, ErrorCode.STALE_CONTROLLER_EPOCH
    )
    assert d.is_empty
    assert ctl.context.is_replica_online(B1, tp(0))


def test_an_answer_from_a_broker_that_is_gone_changes_nothing() -> None:
    ctl = cluster()
    ctl.on_broker_failure([BrokerId(3)])
    d = ctl.on_leader_and_isr_response(BrokerId(3), {tp(2): ErrorCode.KAFKA_STORAGE_ERROR})
    assert d.is_empty


def test_offline_replicas_cannot_lead_by_preference() -> None:
    ctl = cluster()
    storage_error_on(ctl, 1, 0)
    answers, _ = ctl.elect_leaders([tp(0)], ElectionType.PREFERRED)
    assert answers[tp(0)].error is ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    assert tp(0) not in ctl.partitions_to_rebalance()


def test_a_later_success_brings_the_replica_back_online() -> None:
    ctl = cluster()
    storage_error_on(ctl, 1, 0)
    d = ctl.on_leader_and_isr_response(B1, {tp(0): ErrorCode.NONE})
    assert d.partition_writes == []
    assert ctl.context.is_replica_online(B1, tp(0))
    assert B1 not in ctl.context.replicas_on_offline_dirs


def test_a_restart_forgets_the_failed_dirs() -> None:
    ctl = cluster()
    storage_error_on(ctl, 1, 0)
    ctl.on_broker_change({b: broker(b, epoch=2000 + b) for b in (1, 2, 3)})  # all bounced
    assert ctl.context.replicas_on_offline_dirs == {}
    assert ctl.context.is_replica_online(B1, tp(0))


def test_last_isr_member_offline_leaves_the_partition_leaderless() -> None:
    ctl = controller()
    ctl.on_topics_created({"solo": topic({0: [1]})})
    d = ctl.on_leader_and_isr_response(B1, {TopicPartition("solo", 0): ErrorCode.KAFKA_STORAGE_ERROR})
    got = state(ctl, "solo", 0)
    assert got.leader == NO_LEADER
    assert got.isr == (1,)  # Kafka never empties the ISR
    last = um_partitions(of_kind(d, UpdateMetadataRequest)[-1].request)
    assert last[("solo", 0)] == (NO_LEADER, [1], [1])


@settings(max_examples=60, deadline=None)
@given(
    failures=st.lists(
        st.tuples(st.sampled_from([1, 2, 3]), st.sets(st.sampled_from(sorted(ASSIGNMENT)))),
        min_size=1,
        max_size=4,
    )
)
def test_no_offline_replica_leads_or_stays_in_a_shared_isr(failures: list[tuple[int, set[int]]]) -> None:
    """Whatever replicas fail, in whatever order: a partition with an online ISR member is led
    by an online replica, and offline replicas are in no ISR they share with an online one."""
    ctl = cluster()
    for broker_id, partitions in failures:
        hosted = [p for p in partitions if broker_id in ASSIGNMENT[p]]
        ctl.on_log_dir_failure([BrokerId(broker_id)])
        storage_error_on(ctl, broker_id, *hosted)
    ctx = ctl.context
    for p in ASSIGNMENT:
        current = state(ctl, T, p)
        online_isr = [r for r in current.isr if ctx.is_replica_online(r, tp(p))]
        if online_isr:
            assert current.leader in online_isr
            assert len(online_isr) == len(current.isr)
        else:
            assert current.leader == NO_LEADER
            assert len(current.isr) == 1
