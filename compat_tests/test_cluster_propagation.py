"""A broker process in cluster mode, driven over the wire the way a Kafka 3.9 ZooKeeper controller
drives it (UpdateMetadata, LeaderAndIsr, StopReplica sent by a raw client on Brook's codec), and
stock clients that then see the cluster the controller described: two brokers, one of them a
fake that nothing listens for, the controller, and leaders on each.

ZooKeeper is not wired in yet: ``BROOK_CLUSTER_MODE=1`` puts the broker in cluster mode."""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.harness import BrokerProcess, free_port
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.message import Message
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch
from tests.broker.control_kit import LOCAL, OTHER, Node, PState, leader_and_isr, stop_replica, update_metadata

T_ID = uuid.UUID("3c9d1e7a-2b4f-4a60-9e8d-7f1a2b3c4d5e")
TIMEOUT = 15.0


class ControllerLink:
    """A raw connection speaking Brook's codec, as the controller's channel to a broker."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.correlation = 0

    def call(self, request: Message, version: int) -> Any:
        self.correlation += 1
        api_key = request.API_KEY  # type: ignore[attr-defined]
        self.sock.sendall(papi.encode_request(request, version, self.correlation, client_id="controller-2"))
        size = struct.unpack(">i", self._exact(4))[0]
        correlation, body = papi.decode_response(self._exact(size), api_key, version)
        assert correlation == self.correlation
        return body

    def _exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerProcess]:
    monkeypatch.setenv("BROOK_CLUSTER_MODE", "1")
    proc = BrokerProcess(tmp_path / "data", {"broker.id": str(LOCAL)})
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, proc.log_tail()


def test_stock_clients_see_the_cluster_the_controller_describes(node: BrokerProcess) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    fake_port = free_port()  # broker 2: advertised, never listening
    nodes = [Node(LOCAL, "127.0.0.1", node.port), Node(OTHER, "127.0.0.1", fake_port, "rack-b")]
    states = [
        PState("t", 0, LOCAL, 1, [LOCAL, OTHER], isr=[LOCAL]),
        PState("t", 1, OTHER, 1, [OTHER, LOCAL], isr=[OTHER]),
    ]
    link = ControllerLink(node.port)
    try:
        served = {k.api_key for k in link.call(ApiVersionsRequest(), 0).api_keys}
        assert {4, 5, 6} <= served
        assert link.call(update_metadata(8, nodes, states, topic_ids={"t": T_ID}), 8).error_code == 0
        answer = link.call(leader_and_isr(7, states, topic_ids={"t": T_ID}), 7)
        assert answer.error_code == 0
        assert [e.error_code for t in answer.topics for e in t.partition_errors] == [0, 0]

        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        md = admin.list_topics(timeout=TIMEOUT)
        assert sorted(md.brokers) == [LOCAL, OTHER]
        assert md.brokers[OTHER].port == fake_port
        assert md.controller_id == OTHER
        topic = md.topics["t"]
        assert topic.error is None
        assert {i: (p.leader, p.replicas, p.isrs) for i, p in topic.partitions.items()} == {
            0: (LOCAL, [LOCAL, OTHER], [LOCAL]),
            1: (OTHER, [OTHER, LOCAL], [OTHER]),
        }

        # The leader here takes produce and serves fetch.
        producer = Producer({"bootstrap.servers": node.bootstrap, "acks": 1, "enable.idempotence": False})
        delivered: list[Any] = []
        producer.produce(
            "t", b"hello", partition=0, on_delivery=lambda err, msg: delivered.append((err, msg))
        )
        assert producer.flush(TIMEOUT) == 0
        ((err, msg),) = delivered
        assert err is None and msg.offset() == 0
        consumer = Consumer(
            {"bootstrap.servers": node.bootstrap, "group.id": "unused", "enable.auto.commit": False}
        )
        try:
            consumer.assign([TopicPartition("t", 0, 0)])
            got = consumer.poll(TIMEOUT)
            assert got is not None and got.error() is None and got.value() == b"hello"
        finally:
            consumer.close()

        # The follower refuses produce, naming the leader (KIP-951).
        records = build_batch([Record(0, 0, None, b"x", [])], base_timestamp=1_700_000_000_000)
        request = ProduceRequest(
            acks=1, timeout_ms=1000, topic_data=[TopicProduceData("t", [PartitionProduceData(1, records)])]
        )
        refused = link.call(request, 10)
        p1 = refused.responses[0].partition_responses[0]
        assert p1.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert (p1.current_leader.leader_id, p1.current_leader.leader_epoch) == (OTHER, 1)
        assert [(n.node_id, n.port, n.rack) for n in refused.node_endpoints] == [(OTHER, fake_port, "rack-b")]

        # The controller deletes the follower replica.
        follower_dir = node.data_dir / "t-1"
        assert follower_dir.is_dir()
        stopped = link.call(stop_replica(3, [("t", 1)], delete=True, leader_epoch=1), 3)
        assert stopped.error_code == 0 and [p.error_code for p in stopped.partition_errors] == [0]
        assert not follower_dir.exists()

        _kafka_python_sees_both_brokers(node, link, states)
    finally:
        link.close()


def _kafka_python_sees_both_brokers(node: BrokerProcess, link: ControllerLink, states: list[PState]) -> None:
    """kafka-python gives up on a metadata refresh whose chosen node refuses connections, so
    here broker 2 is advertised at this broker's port under another host name."""
    from kafka import KafkaConsumer

    nodes = [Node(LOCAL, "127.0.0.1", node.port), Node(OTHER, "localhost", node.port)]
    assert link.call(update_metadata(8, nodes, states, topic_ids={"t": T_ID}), 8).error_code == 0
    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, request_timeout_ms=10000)
    try:
        assert consumer.partitions_for_topic("t") == {0, 1}
        cluster = consumer._client.cluster  # kafka-python's view of the Metadata answer
        assert sorted((b.node_id, b.host) for b in cluster.brokers()) == [
            (LOCAL, "127.0.0.1"),
            (OTHER, "localhost"),
        ]
        assert cluster.leader_for_partition(_kafka_tp("t", 0)) == LOCAL
        assert cluster.leader_for_partition(_kafka_tp("t", 1)) == OTHER
        assert cluster.controller is not None and cluster.controller.node_id == OTHER
    finally:
        consumer.close()


def _kafka_tp(topic: str, partition: int) -> Any:
    from kafka.structs import TopicPartition

    return TopicPartition(topic, partition)


def test_a_broker_not_in_cluster_mode_neither_advertises_nor_serves_the_control_apis(
    fresh_broker: BrokerProcess,
) -> None:
    fresh_broker.start()
    link = ControllerLink(fresh_broker.port)
    try:
        served = {k.api_key for k in link.call(ApiVersionsRequest(), 0).api_keys}
        assert not {4, 5, 6} & served
        with pytest.raises(ConnectionError):
            link.call(update_metadata(8, [Node(LOCAL, "127.0.0.1", fresh_broker.port)], []), 8)
    finally:
        link.close()
