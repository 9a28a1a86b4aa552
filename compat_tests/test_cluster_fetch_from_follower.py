"""Fetching from the closest replica (KIP-392) on three real brokers in racks a, b and c.

The brokers run ``replica.selector.class=RackAwareReplicaSelector``; a confluent-kafka consumer
with ``client.rack=b`` reads a partition led by the broker of rack a. The leader answers its
first fetch with ``preferred_read_replica`` = the rack-b follower (checked on the wire too), and
the proof that the data then comes from that follower is that the consumer goes on reading while
the leader is frozen (SIGSTOP, shorter than the ZooKeeper session). Afterwards the leader resumes,
more is written with acks=all, and the consumer reads every acknowledged record, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.admin import unique_topic
from compat_tests.cluster import BrokerCluster
from compat_tests.cluster_clients import SteadyProducer
from compat_tests.harness import wait_until
from compat_tests.zookeeper import ZooKeeperServer

TIMEOUT = 30.0
RACKS = {1: "a", 2: "b", 3: "c"}
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


@pytest.fixture
def racked(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    cluster = BrokerCluster(
        zookeeper.connect_string,
        tmp_path / "racked",
        3,
        overrides={"replica.selector.class": RACK_AWARE, "replica.lag.time.max.ms": "10000"},
    )
    for broker_id, rack in RACKS.items():
        cluster.brokers[broker_id].overrides["broker.rack"] = rack
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def _fetch_v11(cluster: BrokerCluster, broker_id: int, topic: str, rack: str) -> Any:
    """One consumer Fetch v11 (partition 0 from offset 0) sent to ``broker_id``; its partition data."""
    from broker.network.client import BrokerConnection, ClientConfig
    from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

    async def ask() -> Any:
        conn = await BrokerConnection.open(
            broker_id, "127.0.0.1", cluster.brokers[broker_id].port, ClientConfig(client_id="kip392-test")
        )
        try:
            request = FetchRequest(
                replica_id=-1,
                max_wait_ms=0,
                min_bytes=1,
                max_bytes=1 << 20,
                topics=[FetchTopic(topic, partitions=[FetchPartition(0, -1, 0, -1, -1, 1 << 20)])],
                rack_id=rack,
            )
            answer = (await asyncio.wait_for(conn.request(request, version=11), TIMEOUT)).body
            return answer.responses[0].partitions[0]
        finally:
            conn.close()
            await conn.wait_closed()

    return asyncio.run(ask())


def _create(cluster: BrokerCluster, replicas: list[int]) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique_topic("kip392")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, 1, replica_assignment=[replicas], config={"min.insync.replicas": "2"})],
        operation_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )
    futures[topic].result(timeout=TIMEOUT)
    cluster.wait_for_leader(topic, 0, lambda leader: leader == replicas[0], TIMEOUT)
    return topic


def _isr(cluster: BrokerCluster, topic: str) -> set[int]:
    state = cluster.partition_state(topic, 0)
    return set(state["isr"]) if state else set()


def _consume(consumer: Any, count: int, timeout: float = TIMEOUT) -> list[bytes]:
    import time

    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"read {len(got)} of {count} records"
        for m in consumer.consume(count - len(got), min(remaining, 0.5)):
            if m.error() is None:
                got.append(m.value())
    return got


def test_a_consumer_in_rack_b_reads_from_the_rack_b_follower(racked: BrokerCluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = _create(racked, [1, 2, 3])  # broker 1 (rack a) leads
    wait_until(lambda: _isr(racked, topic) == {1, 2, 3}, TIMEOUT, message="a full ISR")
    first = [b"first-%03d" % i for i in range(20)]
    producer = SteadyProducer(racked.bootstrap, acks="all")
    try:
        for value in first:  # one batch each: the consumer below gets one per fetch
            [report] = producer.send_and_wait(topic, [value], 0)
            assert report.error is None, report
        # The rack-b follower learns the high watermark in its next fetch.
        wait_until(
            lambda: _fetch_v11(racked, 2, topic, "").high_watermark == len(first),
            TIMEOUT,
            message="the follower's high watermark",
        )
        sent = _fetch_v11(racked, 1, topic, "b")
        assert (sent.error_code, sent.preferred_read_replica) == (0, 2)
        assert _fetch_v11(racked, 1, topic, "a").preferred_read_replica == -1

        consumer = Consumer(
            {
                "bootstrap.servers": racked.bootstrap,
                "group.id": "kip392",
                "client.rack": "b",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
                "max.partition.fetch.bytes": 1,  # one batch per fetch: the read spans the freeze
            }
        )
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])
            got = _consume(consumer, 1)
            racked.pause(1)  # the leader can serve nothing now
            try:
                got += _consume(consumer, len(first) - 1, timeout=4.0)
            finally:
                racked.resume(1)
            assert got == first

            # Writing goes on (acks=all through the leader); the follower serves that too.
            more = [b"more-%03d" % i for i in range(30)]
            reports = producer.send_and_wait(topic, more, 0)
            assert [r.error for r in reports] == [None] * len(more)
            assert _consume(consumer, len(more)) == more
        finally:
            consumer.close()
    finally:
        producer.close()
