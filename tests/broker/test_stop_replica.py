"""StopReplica in cluster mode, as Kafka's ReplicaManager.stopReplicas: deletion removes the
replica's directory (in a disk worker), leader epochs fence old requests, epochs of the controller
and of the broker fence stale ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.replica.control import FetchStart
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.stop_replica_response import StopReplicaResponse
from tests.broker.conftest import Caller
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    stop_replica,
    update_metadata,
)

T_ID = uuid.UUID("5a3e9c1d-7b20-4f6e-8c4d-2e1f0a9b8c7d")
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "10.0.0.2", 9093)]


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
    states = [PState("t", 0, LOCAL, 3, [LOCAL, OTHER]), PState("t", 1, OTHER, 3, [OTHER, LOCAL])]
    assert c(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7).error_code == 0
    return c


def partition_dir(broker: Broker, index: int) -> Path:
    log_dir = broker.log_manager.log_dir_of("t", index)
    assert log_dir is not None
    return log_dir / f"t-{index}"


def codes(response: StopReplicaResponse) -> dict[tuple[str, int], int]:
    return {(p.topic_name, p.partition_index): p.error_code for p in response.partition_errors}


@pytest.mark.parametrize("version", range(5))
def test_delete_removes_the_replica_and_its_directory(ccall: Caller, cluster: Broker, version: int) -> None:
    directory = partition_dir(cluster, 0)
    assert directory.is_dir()
    response = ccall(stop_replica(version, [("t", 0)], delete=True, leader_epoch=3), version)
    response = StopReplicaResponse.decode(response.encode(version), version)
    assert response.error_code == 0
    assert codes(response) == {("t", 0): 0}
    assert cluster.replica_manager.get(TopicPartition("t", 0)) is None
    assert not directory.exists()
    assert cluster.log_manager.get_log("t", 0) is None
    assert cluster.replica_manager.get(TopicPartition("t", 1)) is not None  # the other replica stays


@pytest.mark.parametrize("version", [0, 3])
def test_without_delete_the_replica_stays_with_its_log(ccall: Caller, cluster: Broker, version: int) -> None:
    response = ccall(stop_replica(version, [("t", 1)], delete=False, leader_epoch=3), version)
    assert codes(response) == {("t", 1): 0}
    assert cluster.replica_manager.get(TopicPartition("t", 1)) is not None
    assert partition_dir(cluster, 1).is_dir()


def test_an_older_leader_epoch_is_fenced_sentinels_pass(ccall: Caller, cluster: Broker) -> None:
    fenced = ccall(stop_replica(4, [("t", 0)], delete=True, leader_epoch=2), 4)
    assert codes(fenced) == {("t", 0): ErrorCode.FENCED_LEADER_EPOCH}
    assert partition_dir(cluster, 0).is_dir()
    during_delete = ccall(stop_replica(4, [("t", 0)], delete=True, leader_epoch=-2), 4)
    assert codes(during_delete) == {("t", 0): 0}
    assert cluster.replica_manager.get(TopicPartition("t", 0)) is None


def test_a_log_left_on_disk_without_a_replica_is_deleted(tmp_path: Path) -> None:
    data = tmp_path / "cluster-data"
    b = cluster_broker(data)
    Caller(b)(leader_and_isr(7, [PState("t", 0, LOCAL, 1, [LOCAL])], topic_ids={"t": T_ID}), 7)
    b.log_manager.close()
    b = cluster_broker(data)  # restarted: the log is loaded, the replica not served
    try:
        assert b.log_manager.get_log("t", 0) is not None
        response = Caller(b)(stop_replica(3, [("t", 0)], delete=True, leader_epoch=1), 3)
        assert codes(response) == {("t", 0): 0}
        assert not (data / "t-0").exists()
    finally:
        b.log_manager.close()


def test_an_older_controller_epoch_is_stale(ccall: Caller, cluster: Broker) -> None:
    stale = ccall(stop_replica(3, [("t", 0)], delete=True, controller_epoch=0), 3)
    assert (stale.error_code, stale.partition_errors) == (ErrorCode.STALE_CONTROLLER_EPOCH, [])
    assert partition_dir(cluster, 0).is_dir()


def test_an_older_broker_epoch_is_stale(ccall: Caller, cluster: Broker) -> None:
    cluster.broker_epoch = 10
    stale = ccall(stop_replica(1, [("t", 0)], delete=True, broker_epoch=9), 1)
    assert (stale.error_code, stale.partition_errors) == (ErrorCode.STALE_BROKER_EPOCH, [])
    assert partition_dir(cluster, 0).is_dir()


class RecordingFetchers:
    def __init__(self) -> None:
        self.added: dict[TopicPartition, FetchStart] = {}
        self.removed: set[TopicPartition] = set()

    def add_partitions(self, starts: dict[TopicPartition, FetchStart]) -> None:
        self.added.update(starts)

    def remove_partitions(self, partitions: set[TopicPartition]) -> None:
        self.removed |= partitions
        for tp in partitions:
            self.added.pop(tp, None)


def test_the_fetcher_seam_gets_followers_and_loses_leaders_and_stopped_replicas(tmp_path: Path) -> None:
    b = cluster_broker(tmp_path / "cluster-data")
    try:
        fetchers = RecordingFetchers()
        b.replica_manager.control.fetchers = fetchers
        changes: list[tuple[list[TopicPartition], list[TopicPartition]]] = []
        b.replica_manager.control.listeners.append(
            lambda leaders, followers: changes.append(([p.tp for p in leaders], [p.tp for p in followers]))
        )
        c = Caller(b)
        c(update_metadata(8, NODES, []), 8)
        states = [PState("t", 0, LOCAL, 1, [LOCAL, OTHER]), PState("t", 1, OTHER, 4, [OTHER, LOCAL])]
        c(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
        t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
        assert fetchers.added == {t1: FetchStart(T_ID, OTHER, 4, 0)}
        assert changes == [([t0], [t1])]
        c(stop_replica(3, [("t", 1)], delete=False, leader_epoch=4), 3)
        assert fetchers.added == {} and t1 in fetchers.removed
    finally:
        b.log_manager.close()
