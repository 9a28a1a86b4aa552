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

import pytest

from broker.group.hashing import partition_for
from compat_tests.clients.raw import read_frame
from compat_tests.cluster import FAILOVER_SLACK, BrokerCluster, cluster_of
from compat_tests.zookeeper import ZooKeeperServer
from protocol import api as papi
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest

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
