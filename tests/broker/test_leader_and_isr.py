"""LeaderAndIsr in cluster mode: leaders and followers as Kafka's ReplicaManager makes them, with
controller-, broker- and leader-epoch fencing, and the KIP-951 hints a follower answers with."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.app import Broker
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import FetchResponse
from protocol.messages.leader_and_isr_response import LeaderAndIsrResponse
from protocol.messages.produce_response import ProduceResponse
from storage.checkpoint import encode_topic_id
from tests.broker.conftest import Caller, InlineDisk
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)
from tests.broker.test_data_plane import batch, produce

T_ID = uuid.UUID("0f4b2f5e-8a61-4c53-b4a5-0d8f3b6f7a21")
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "10.0.0.2", 9093, "r2")]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Broker]:
    b = cluster_broker(tmp_path / "cluster-data")
    try:
        yield b
    finally:
        b.log_manager.close()


@pytest.fixture
def ccall(cluster: Broker) -> Caller:
    c = Caller(cluster)
    c(update_metadata(8, NODES, []), 8)
    return c


def errors_of(response: LeaderAndIsrResponse, version: int) -> dict[tuple[str | uuid.UUID, int], int]:
    if version < 5:
        return {(e.topic_name, e.partition_index): e.error_code for e in response.partition_errors}
    return {
        (t.topic_id, e.partition_index): e.error_code for t in response.topics for e in t.partition_errors
    }


def roundtrip(response: object, version: int) -> object:
    return type(response).decode(response.encode(version), version)  # type: ignore[attr-defined]


def epochs_on_disk(broker: Broker, topic: str, partition: int) -> list[tuple[int, int]]:
    log_dir = broker.log_manager.log_dir_of(topic, partition)
    assert log_dir is not None
    lines = (log_dir / f"{topic}-{partition}" / "leader-epoch-checkpoint").read_text().split("\n")
    count = int(lines[1])
    return [(int(a), int(b)) for a, b in (line.split() for line in lines[2 : 2 + count])]


@pytest.mark.parametrize("version", range(8))
def test_every_version_makes_this_broker_leader_with_a_log_and_its_epoch(
    ccall: Caller, cluster: Broker, version: int
) -> None:
    states = [PState("t", 0, LOCAL, 4, [LOCAL, OTHER]), PState("t", 1, OTHER, 2, [OTHER, LOCAL])]
    response = ccall(leader_and_isr(version, states, topic_ids={"t": T_ID}), version)
    assert response.error_code == 0
    key = T_ID if version >= 5 else "t"
    assert errors_of(roundtrip(response, version), version) == {(key, 0): 0, (key, 1): 0}
    p0 = cluster.replica_manager.get(TopicPartition("t", 0))
    p1 = cluster.replica_manager.get(TopicPartition("t", 1))
    assert p0 is not None and p1 is not None
    assert (p0.is_leader, p0.leader_epoch, p0.state.replicas) == (True, 4, [LOCAL, OTHER])
    assert (p1.is_leader, p1.leader_epoch, p1.state.leader) == (False, 2, OTHER)
    assert epochs_on_disk(cluster, "t", 0) == [(4, 0)]
    log_dir = cluster.log_manager.log_dir_of("t", 0)
    assert log_dir is not None
    metadata_file = log_dir / "t-0" / "partition.metadata"
    if version >= 5:
        assert f"topic_id: {encode_topic_id(T_ID)}" in metadata_file.read_text()
    else:  # no topic id before v5, as Kafka: no partition.metadata either
        assert not metadata_file.exists()


def test_leader_then_follower_then_leader_again(ccall: Caller, cluster: Broker) -> None:
    states = [PState("t", 0, LOCAL, 1, [LOCAL, OTHER], isr=[LOCAL])]
    assert ccall(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7).error_code == 0
    ccall(update_metadata(8, NODES, states, topic_ids={"t": T_ID}), 8)
    assert produce(ccall, "t", 0, batch([b"a", b"b"]), version=9, acks=1).error_code == 0

    # The controller moves leadership to broker 2.
    follower = [PState("t", 0, OTHER, 2, [LOCAL, OTHER], isr=[OTHER, LOCAL])]
    assert errors_of(ccall(leader_and_isr(7, follower, topic_ids={"t": T_ID}), 7), 7) == {(T_ID, 0): 0}
    ccall(update_metadata(8, NODES, follower, topic_ids={"t": T_ID}), 8)
    partition = cluster.replica_manager.get(TopicPartition("t", 0))
    assert partition is not None and not partition.is_leader and partition.log_end_offset == 2  # log kept

    old = produce(ccall, "t", 0, batch([b"c"]), version=9, acks=1)
    assert old.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    request_v10 = _produce_request(batch([b"c"]))
    answer = roundtrip(ccall(request_v10, 10), 10)
    assert isinstance(answer, ProduceResponse)
    hinted = answer.responses[0].partition_responses[0]
    assert hinted.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert (hinted.current_leader.leader_id, hinted.current_leader.leader_epoch) == (OTHER, 2)
    assert [(n.node_id, n.host, n.port, n.rack) for n in answer.node_endpoints] == [
        (OTHER, "10.0.0.2", 9093, "r2")
    ]

    # Below v11 consumers read from leaders only; from v11 a follower serves them (KIP-392), so
    # the KIP-951 hint shows on a stale leader epoch.
    old_fetch = ccall(_fetch_request(version=10), 10)
    assert old_fetch.responses[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    fetched = roundtrip(ccall(_fetch_request(version=16, leader_epoch=1), 16), 16)
    assert isinstance(fetched, FetchResponse)
    data = fetched.responses[0].partitions[0]
    assert data.error_code == ErrorCode.FENCED_LEADER_EPOCH
    assert (data.current_leader.leader_id, data.current_leader.leader_epoch) == (OTHER, 2)
    assert [n.node_id for n in fetched.node_endpoints] == [OTHER]

    # And back: the new epoch starts at the log end.
    back = [PState("t", 0, LOCAL, 3, [LOCAL, OTHER], isr=[LOCAL])]
    assert errors_of(ccall(leader_and_isr(7, back, topic_ids={"t": T_ID}), 7), 7) == {(T_ID, 0): 0}
    assert produce(ccall, "t", 0, batch([b"d"]), version=9, acks=1).error_code == 0
    assert epochs_on_disk(cluster, "t", 0) == [(1, 0), (3, 2)]
    assert partition.log_end_offset == 3


def _produce_request(data: bytes) -> object:
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData

    return ProduceRequest(
        acks=1, timeout_ms=1000, topic_data=[TopicProduceData("t", [PartitionProduceData(0, data)])]
    )


def _fetch_request(version: int, leader_epoch: int = -1) -> FetchRequest:
    partition = FetchPartition(
        partition=0, fetch_offset=0, partition_max_bytes=1 << 20, current_leader_epoch=leader_epoch
    )
    return FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic="t" if version < 13 else "",
                topic_id=T_ID if version >= 13 else uuid.UUID(int=0),
                partitions=[partition],
            )
        ],
    )


def test_a_fenced_fetch_gets_the_leader_hint_too(ccall: Caller) -> None:
    states = [PState("t", 0, LOCAL, 5, [LOCAL], isr=[LOCAL])]
    ccall(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
    ccall(update_metadata(8, NODES, states, topic_ids={"t": T_ID}), 8)
    fetched = roundtrip(ccall(_fetch_request(16, leader_epoch=4), 16), 16)
    assert isinstance(fetched, FetchResponse)
    data = fetched.responses[0].partitions[0]
    assert data.error_code == ErrorCode.FENCED_LEADER_EPOCH
    assert (data.current_leader.leader_id, data.current_leader.leader_epoch) == (LOCAL, 5)
    assert [(n.node_id, n.port) for n in fetched.node_endpoints] == [(LOCAL, 9092)]
    ok = ccall(_fetch_request(15, leader_epoch=5), 15).responses[0].partitions[0]
    assert ok.error_code == 0


def test_a_partition_led_elsewhere_and_not_hosted_is_not_leader_and_unknown_ones_unknown(
    ccall: Caller,
) -> None:
    ccall(update_metadata(8, NODES, [PState("t", 0, OTHER, 7, [OTHER])], topic_ids={"t": T_ID}), 8)
    answer = roundtrip(ccall(_produce_request(batch([b"x"])), 10), 10)
    p = answer.responses[0].partition_responses[0]  # type: ignore[attr-defined]
    assert p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (OTHER, 7)
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData

    unknown = ProduceRequest(
        acks=1, timeout_ms=1000, topic_data=[TopicProduceData("u", [PartitionProduceData(0, batch([b"x"]))])]
    )
    assert (
        ccall(unknown, 10).responses[0].partition_responses[0].error_code
        == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )


def test_partition_level_checks(ccall: Caller, cluster: Broker) -> None:
    ccall(leader_and_isr(7, [PState("t", 0, LOCAL, 5, [LOCAL, OTHER])], topic_ids={"t": T_ID}), 7)
    states = [
        PState("t", 0, LOCAL, 4, [LOCAL, OTHER]),  # older leader epoch
        PState("u", 0, OTHER, 1, [OTHER]),  # this broker is not a replica
    ]
    response = ccall(leader_and_isr(7, states, topic_ids={"t": T_ID, "u": uuid.uuid4()}), 7)
    errors = {
        e.partition_index: e.error_code
        for t in response.topics
        for e in t.partition_errors
        if t.topic_id == T_ID
    }
    assert errors == {0: ErrorCode.STALE_CONTROLLER_EPOCH}
    (u_errors,) = [t for t in response.topics if t.topic_id != T_ID]
    assert u_errors.partition_errors[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    same = ccall(leader_and_isr(7, [PState("t", 0, LOCAL, 5, [LOCAL, OTHER])], topic_ids={"t": T_ID}), 7)
    assert errors_of(same, 7) == {(T_ID, 0): ErrorCode.STALE_CONTROLLER_EPOCH}
    other_id = uuid.uuid4()
    wrong = ccall(leader_and_isr(7, [PState("t", 0, LOCAL, 6, [LOCAL, OTHER])], topic_ids={"t": other_id}), 7)
    assert errors_of(wrong, 7) == {(other_id, 0): ErrorCode.INCONSISTENT_TOPIC_ID}
    partition = cluster.replica_manager.get(TopicPartition("t", 0))
    assert partition is not None and partition.leader_epoch == 5


def test_an_existing_log_of_another_topic_id_is_inconsistent(tmp_path: Path) -> None:
    data = tmp_path / "cluster-data"
    b = cluster_broker(data)
    Caller(b)(leader_and_isr(7, [PState("t", 0, LOCAL, 1, [LOCAL])], topic_ids={"t": T_ID}), 7)
    b.log_manager.close()
    b = cluster_broker(data)  # restarted: the log is loaded, no replica is served yet
    try:
        c = Caller(b)
        assert b.replica_manager.get(TopicPartition("t", 0)) is None
        other = uuid.uuid4()
        response = c(leader_and_isr(7, [PState("t", 0, LOCAL, 2, [LOCAL])], topic_ids={"t": other}), 7)
        assert errors_of(response, 7) == {(other, 0): ErrorCode.INCONSISTENT_TOPIC_ID}
        response = c(leader_and_isr(7, [PState("t", 0, LOCAL, 2, [LOCAL])], topic_ids={"t": T_ID}), 7)
        assert errors_of(response, 7) == {(T_ID, 0): 0}
        assert epochs_on_disk(b, "t", 0) == [(2, 0)]  # epoch 1 held no record: replaced, as Kafka
    finally:
        b.log_manager.close()


def test_a_follower_of_a_leader_not_alive_only_gets_its_log(tmp_path: Path) -> None:
    b = cluster_broker(tmp_path / "cluster-data")
    try:
        c = Caller(b)
        c(update_metadata(8, NODES[:1], []), 8)  # broker 2 is not alive
        response = c(leader_and_isr(7, [PState("t", 0, OTHER, 3, [OTHER, LOCAL])], topic_ids={"t": T_ID}), 7)
        assert errors_of(response, 7) == {(T_ID, 0): 0}
        partition = b.replica_manager.get(TopicPartition("t", 0))
        assert partition is not None and partition.leader_epoch == -1 and not partition.is_leader
        assert b.log_manager.get_log("t", 0) is not None
    finally:
        b.log_manager.close()


@pytest.mark.parametrize("version", [0, 4, 5, 7])
def test_an_older_controller_epoch_is_stale_for_the_request_and_every_partition(
    ccall: Caller, cluster: Broker, version: int
) -> None:
    ccall(
        leader_and_isr(
            version, [PState("t", 0, LOCAL, 1, [LOCAL])], controller_epoch=3, topic_ids={"t": T_ID}
        ),
        version,
    )
    stale = ccall(
        leader_and_isr(
            version, [PState("t", 0, OTHER, 2, [LOCAL, OTHER])], controller_epoch=2, topic_ids={"t": T_ID}
        ),
        version,
    )
    assert stale.error_code == ErrorCode.STALE_CONTROLLER_EPOCH
    assert set(errors_of(roundtrip(stale, version), version).values()) == {ErrorCode.STALE_CONTROLLER_EPOCH}
    partition = cluster.replica_manager.get(TopicPartition("t", 0))
    assert partition is not None and partition.is_leader and partition.leader_epoch == 1


@pytest.mark.parametrize("version", [2, 7])
def test_an_older_broker_epoch_is_stale(ccall: Caller, cluster: Broker, version: int) -> None:
    cluster.broker_epoch = 42
    stale = ccall(
        leader_and_isr(version, [PState("t", 0, LOCAL, 1, [LOCAL])], broker_epoch=41, topic_ids={"t": T_ID}),
        version,
    )
    assert stale.error_code == ErrorCode.STALE_BROKER_EPOCH
    assert set(errors_of(stale, version).values()) == {ErrorCode.STALE_BROKER_EPOCH}
    assert cluster.replica_manager.get(TopicPartition("t", 0)) is None
    fresh = ccall(
        leader_and_isr(version, [PState("t", 0, LOCAL, 1, [LOCAL])], broker_epoch=43, topic_ids={"t": T_ID}),
        version,
    )
    assert fresh.error_code == 0


@st.composite
def transitions(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(controller epoch, leader, leader epoch) triples, epochs wandering up and down."""
    return draw(
        st.lists(
            st.tuples(st.integers(1, 6), st.sampled_from([LOCAL, OTHER]), st.integers(0, 12)),
            min_size=1,
            max_size=12,
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=transitions())
def test_random_sequences_keep_epochs_monotone(
    tmp_path_factory: pytest.TempPathFactory, sequence: list[tuple[int, int, int]]
) -> None:
    b = cluster_broker(tmp_path_factory.mktemp("seq"))
    b.disk = InlineDisk()  # type: ignore[assignment]
    try:
        c = Caller(b)
        c(update_metadata(8, NODES, []), 8)
        controller_epoch, leader_epoch, leader = 0, -1, None
        for request_controller_epoch, request_leader, request_epoch in sequence:
            state = PState("t", 0, request_leader, request_epoch, [LOCAL, OTHER])
            response = c(
                leader_and_isr(7, [state], controller_epoch=request_controller_epoch, topic_ids={"t": T_ID}),
                7,
            )
            if request_controller_epoch < controller_epoch:
                assert response.error_code == ErrorCode.STALE_CONTROLLER_EPOCH
                continue
            controller_epoch = request_controller_epoch
            (code,) = errors_of(response, 7).values()
            if request_epoch > leader_epoch:
                assert code == 0
                leader_epoch, leader = request_epoch, request_leader
            else:
                assert code == ErrorCode.STALE_CONTROLLER_EPOCH
            partition = b.replica_manager.get(TopicPartition("t", 0))
            assert partition is not None
            assert (partition.leader_epoch, partition.state.leader) == (leader_epoch, leader)
            assert partition.is_leader == (leader == LOCAL)
        if b.log_manager.get_log("t", 0) is not None and leader_epoch >= 0:
            recorded = [e for e, _ in epochs_on_disk(b, "t", 0)] if _has_epochs(b) else []
            assert recorded == sorted(set(recorded))  # strictly increasing
            assert all(e <= leader_epoch for e in recorded)
    finally:
        b.log_manager.close()


def _has_epochs(b: Broker) -> bool:
    log_dir = b.log_manager.log_dir_of("t", 0)
    return log_dir is not None and (log_dir / "t-0" / "leader-epoch-checkpoint").exists()


def test_a_waiting_fetch_answers_not_leader_when_the_leader_steps_down(ccall: Caller) -> None:
    states = [PState("t", 0, LOCAL, 1, [LOCAL, OTHER], isr=[LOCAL])]
    ccall(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
    ccall(update_metadata(8, NODES, states, topic_ids={"t": T_ID}), 8)  # topic ids resolve through it
    follower = [PState("t", 0, OTHER, 2, [LOCAL, OTHER], isr=[OTHER, LOCAL])]

    async def scenario() -> FetchResponse:
        request = _fetch_request(16)
        request.max_wait_ms = 60_000
        task = asyncio.ensure_future(ccall.start(request, 16))
        await asyncio.sleep(0.05)
        assert not task.done(), "the fetch should wait for data"
        ccall.start(update_metadata(8, NODES, follower, topic_ids={"t": T_ID}), 8)
        await ccall.start(leader_and_isr(7, follower, topic_ids={"t": T_ID}), 7)
        # Woken by the step-down, not by the 60 s max wait.
        return await asyncio.wait_for(task, 10)

    response = asyncio.run(scenario())
    data = response.responses[0].partitions[0]
    assert data.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert (data.current_leader.leader_id, data.current_leader.leader_epoch) == (OTHER, 2)


def test_clients_cannot_produce_to_an_internal_topic_led_here(ccall: Caller) -> None:
    states = [PState("__consumer_offsets", 0, LOCAL, 1, [LOCAL])]
    ccall(leader_and_isr(7, states), 7)
    ccall(update_metadata(8, NODES, states), 8)
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData

    request = ProduceRequest(
        acks=1,
        timeout_ms=1000,
        topic_data=[TopicProduceData("__consumer_offsets", [PartitionProduceData(0, batch([b"x"]))])],
    )
    answer = ccall(request, 9).responses[0].partition_responses[0]
    assert answer.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


def test_replicas_in_a_failed_log_dir_answer_storage_error_at_the_same_epoch(
    ccall: Caller, cluster: Broker
) -> None:
    """What the controller's log-dir-failure probe relies on (Kafka's onBrokerLogDirFailure): it
    resends the current leaderships, and only replicas in an offline dir answer
    KAFKA_STORAGE_ERROR; the healthy ones answer STALE_CONTROLLER_EPOCH (epoch not newer)."""
    states = [PState("t", 0, LOCAL, 3, [LOCAL, OTHER]), PState("t", 1, OTHER, 3, [OTHER, LOCAL])]
    first = ccall(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
    assert errors_of(first, 7) == {(T_ID, 0): 0, (T_ID, 1): 0}
    log_dir = cluster.log_manager.log_dir_of("t", 0)
    assert log_dir is not None
    told: list[Path] = []
    cluster.log_manager.on_dir_offline = told.append
    assert cluster.log_manager.mark_dir_offline(log_dir, "appending to t-0", OSError(28, "No space left"))
    assert told == [log_dir]
    again = ccall(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
    expected = {
        (T_ID, p): ErrorCode.KAFKA_STORAGE_ERROR
        if cluster.log_manager.log_dir_of("t", p) == log_dir
        else ErrorCode.STALE_CONTROLLER_EPOCH
        for p in (0, 1)
    }
    assert errors_of(roundtrip(again, 7), 7) == expected
