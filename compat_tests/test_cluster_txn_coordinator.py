"""The transaction coordinator on a three-broker ZooKeeper-mode cluster (real processes, real
ZooKeeper): confluent-kafka's ``init_transactions()`` makes the first FindCoordinator create
``__transaction_state`` (RF 3, Kafka's configs in ZooKeeper); the coordinator of the id is the
leader of its partition; after SIGKILL of that broker the partition's new leader loads the
id's state from its replica and a new producer with the same transactional id gets the same
producer id with the next epoch (the old one is fenced)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.group.hashing import partition_for
from compat_tests.clients.raw import read_frame
from compat_tests.cluster import FAILOVER_SLACK, BrokerCluster, cluster_of
from compat_tests.cluster_clients import create_topic as create_replicated_topic
from compat_tests.zookeeper import ZooKeeperServer
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch

TXN_TOPIC = "__transaction_state"
TXN_PARTITIONS = 5
TIMEOUT = 30.0


@pytest.fixture
def txn_cluster(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    overrides = {"transaction.state.log.num.partitions": str(TXN_PARTITIONS)}
    yield from cluster_of(zookeeper.connect_string, tmp_path / "cluster", overrides=overrides)


def describe(cluster: BrokerCluster, broker_id: int, transactional_id: str) -> tuple[int, str, int, int]:
    host, _, port = cluster.bootstrap_of(broker_id).rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(papi.encode_request(DescribeTransactionsRequest([transactional_id]), 0, 1))
        _, body = papi.decode_response(read_frame(sock), 65, 0)
    (state,) = body.transaction_states
    return state.error_code, state.transaction_state, state.producer_id, state.producer_epoch


def init_transactions(bootstrap: str, transactional_id: str) -> object:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(60)
    return producer


def test_the_coordinator_moves_with_its_partition_across_kill_9(txn_cluster: BrokerCluster) -> None:
    cluster = txn_cluster
    tid = f"cluster-tx-{uuid.uuid4().hex[:8]}"
    init_transactions(cluster.bootstrap, tid)
    raw, _ = cluster.zk.get(f"/config/topics/{TXN_TOPIC}")
    assert json.loads(raw) == {
        "version": 1,
        "config": {
            "cleanup.policy": "compact",
            "compression.type": "uncompressed",
            "min.insync.replicas": "2",
            "segment.bytes": "104857600",
            "unclean.leader.election.enable": "false",
        },
    }
    index = partition_for(tid, TXN_PARTITIONS)
    state = cluster.wait_for_leader(TXN_TOPIC, index, lambda leader: leader > 0, TIMEOUT)
    assert sorted(state["isr"]) == [1, 2, 3], state  # the record was written with acks=all
    coordinator = int(state["leader"])
    error, name, producer_id, epoch = describe(cluster, coordinator, tid)
    assert (error, name, epoch) == (0, "Empty", 0) and producer_id >= 0
    other = next(i for i in cluster.ids if i != coordinator)
    assert describe(cluster, other, tid)[0] == 16  # NOT_COORDINATOR

    killed_at = time.monotonic()
    cluster.kill(coordinator)
    bound = cluster.session_timeout_ms / 1000 + FAILOVER_SLACK
    new_state = cluster.wait_for_leader_change(TXN_TOPIC, index, coordinator, bound + 10)
    successor = int(new_state["leader"])
    init_transactions(cluster.live_bootstrap(), tid)
    print(
        f"\nTXN coordinator {coordinator} killed, {successor} took over; init_transactions answered "
        f"{time.monotonic() - killed_at:.1f} s after the kill (session timeout "
        f"{cluster.session_timeout_ms / 1000:.0f} s)"
    )
    assert describe(cluster, successor, tid) == (0, "Empty", producer_id, 1)


def call(cluster: BrokerCluster, broker_id: int, request: Any, version: int) -> Any:
    """One request to ``broker_id`` on a connection of its own; the response body."""
    host, _, port = cluster.bootstrap_of(broker_id).rpartition(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(papi.encode_request(request, version, 1))
        _, body = papi.decode_response(read_frame(sock), request.API_KEY, version)
    return body


def test_a_leader_verifies_a_transactional_batch_with_the_coordinator_on_another_broker(
    txn_cluster: BrokerCluster,
) -> None:
    """KIP-890 across brokers: the leader of a partition asks the coordinator (another broker)
    with AddPartitionsToTxn v4 verify_only; a batch whose partition the transaction does not
    hold is INVALID_TXN_STATE, and it is appended once AddPartitionsToTxn added it."""
    cluster = txn_cluster
    tid = f"verify-tx-{uuid.uuid4().hex[:8]}"
    init_transactions(cluster.bootstrap, tid)  # creates __transaction_state, loads the coordinator
    coordinator = int(
        cluster.wait_for_leader(
            TXN_TOPIC, partition_for(tid, TXN_PARTITIONS), lambda leader: leader > 0, TIMEOUT
        )["leader"]
    )
    topic = create_replicated_topic(cluster.bootstrap, "verify", partitions=3)
    leaders = {
        p: int(cluster.wait_for_leader(topic, p, lambda leader: leader > 0, TIMEOUT)["leader"])
        for p in range(3)
    }
    partition, leader = next((p, b) for p, b in leaders.items() if b != coordinator)
    # The confluent producer's epoch is bumped by a second init from raw InitProducerId: fenced.
    init = call(cluster, coordinator, InitProducerIdRequest(tid, 60_000), 4)
    assert init.error_code == 0, init
    pid, epoch = init.producer_id, init.producer_epoch

    def produce(seq: int) -> int:
        batch = build_batch(
            [Record(0, 0, b"k", b"v%d" % seq)],
            base_timestamp=int(time.time() * 1000),
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
            transactional=True,
        )
        request = ProduceRequest(
            transactional_id=tid,
            acks=-1,
            timeout_ms=10_000,
            topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, batch)])],
        )
        response = call(cluster, leader, request, 9)
        return int(response.responses[0].partition_responses[0].error_code)

    deadline = time.monotonic() + TIMEOUT
    while (error := produce(0)) in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_LEADER_OR_FOLLOWER):
        # the leader has not applied the controller's LeaderAndIsr yet: retry, as clients do
        assert time.monotonic() < deadline, f"{topic}-{partition} is not served by broker {leader}"
        time.sleep(0.05)
    assert error == ErrorCode.INVALID_TXN_STATE
    added = call(
        cluster,
        coordinator,
        AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=tid,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(topic, [partition])],
        ),
        3,
    )
    assert [
        p.partition_error_code for t in added.results_by_topic_v3_and_below for p in t.results_by_partition
    ] == [0]
    assert produce(0) == ErrorCode.NONE
    assert produce(1) == ErrorCode.NONE
    print(f"\nKIP-890: leader {leader} of {topic}-{partition} verified with coordinator {coordinator}")
