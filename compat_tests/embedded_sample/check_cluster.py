"""The plugin's kafka_cluster fixture with confluent-kafka: acks=all to a topic of replication
factor 3, the partition's leader killed, every acknowledged record still there."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT = 30.0
RECORDS = 200


def test_acked_records_survive_the_leaders_death(kafka_cluster) -> None:
    assert len(kafka_cluster.brokers) == 3
    kafka_cluster.create_topic(
        "orders", partitions=1, replication_factor=3, config={"min.insync.replicas": 2}
    )
    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers, "acks": "all", "linger.ms": 5})
    failures: list[object] = []
    for i in range(RECORDS):
        producer.produce(
            "orders", f"order-{i}".encode(), partition=0, on_delivery=lambda e, m: e and failures.append(e)
        )
    assert producer.flush(TIMEOUT) == 0
    assert failures == []

    leader = kafka_cluster.leader_of("orders", 0)
    kafka_cluster.brokers[leader].kill()
    new_leaders = kafka_cluster.wait_for_leaders("orders")
    assert new_leaders[0] != leader

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap_servers,
            "group.id": "failover",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition("orders", 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < RECORDS and time.monotonic() < deadline:
            for message in consumer.consume(RECORDS, 0.2):
                if message.error() is None:
                    got.append(message.value())
        assert got == [f"order-{i}".encode() for i in range(RECORDS)]
    finally:
        consumer.close()


@pytest.mark.kafka_cluster(brokers=2, num_partitions=4)
def test_marker_sets_size_and_overrides(kafka_cluster) -> None:
    assert sorted(kafka_cluster.brokers) == [1, 2]
    leaders = kafka_cluster.create_topic("sized", partitions=-1, replication_factor=2)
    assert sorted(leaders) == [0, 1, 2, 3]
    assert kafka_cluster.brokers[1].config.get("log.retention.hours") == 1  # pytest.ini still applies
    # A broker restarted on its data catches up and rejoins the ISR.
    kafka_cluster.brokers[2].restart()
    assert sorted(kafka_cluster.wait_for_leaders("sized")) == [0, 1, 2, 3]
