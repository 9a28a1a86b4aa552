"""A leader's log dir fails in a three-broker cluster: leadership moves, producers go on.

Broker 2's only log dir is a small tmpfs. A topic of one partition, replicas [2, 3, 1] (broker 2
leads), takes acks=all records; then the tmpfs is filled up and the next append on broker 2 fails
with ENOSPC. As Kafka 3.9 in ZooKeeper mode: broker 2 takes the dir offline and writes
``/log_dir_event_notification/log_dir_event_<seq>``; the controller sends it a LeaderAndIsr,
learns from its KAFKA_STORAGE_ERROR answer that the replica is offline, elects broker 3 (the next
ISR member), drops 2 from the ISR and tells every broker, whose Metadata then lists 2 among the
partition's offline replicas; the notification is deleted. The producer, never restarted, gets
every later record acknowledged, and every acknowledged record is read back from the new leader.
Broker 2 stays alive. Mounting needs root (CI runs as root).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.cluster import BrokerCluster
from compat_tests.cluster_clients import SteadyProducer, new_consumer, read_from
from compat_tests.zookeeper import ZooKeeperServer

TIMEOUT = 30.0
TOPIC = "logdir-failure"
SMALL_DISK = "8m"
FAILING = 2


@pytest.fixture
def cluster_with_small_disk(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as a log dir needs root (CI runs these tests as root)")
    cluster = BrokerCluster(
        zookeeper.connect_string, tmp_path / "cluster", 3, {"auto.create.topics.enable": "false"}
    )
    mount_point = cluster.brokers[FAILING].data_dir
    mount_point.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mount_point)],
        check=True,
        timeout=30,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()  # the processes go before the dir under them
        done = subprocess.run(["umount", str(mount_point)], timeout=30, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=True)


def _fill(directory: Path) -> int:
    """Write a file until the filesystem is full; the bytes written."""
    written = 0
    chunk = b"\0" * (256 * 1024)
    with open(directory / "filler", "wb", buffering=0) as out:
        while True:
            try:
                written += out.write(chunk) or 0
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return written


def _offline_replicas(bootstrap: str, topic: str) -> tuple[int, list[int], list[int], list[int]]:
    """(leader, replicas, isr, offline replicas) of partition 0 in Metadata v9 from ``bootstrap``
    (confluent-kafka does not expose offline replicas)."""
    from broker.admin_client import KafkaAdmin
    from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

    with KafkaAdmin(bootstrap, timeout=TIMEOUT) as admin:
        response = admin._call(MetadataRequest(topics=[MetadataRequestTopic(name=topic)]), 9)
    (found,) = response.topics
    (p0,) = found.partitions
    return p0.leader_id, list(p0.replica_nodes), list(p0.isr_nodes), list(p0.offline_replicas)


def _wait_metadata(bootstrap: str, wanted: tuple[int, list[int], list[int], list[int]]) -> None:
    """Poll one broker's Metadata (UpdateMetadata reaches brokers in turn; no event tells a client)."""
    deadline = time.monotonic() + TIMEOUT
    while (seen := _offline_replicas(bootstrap, TOPIC)) != wanted:
        assert time.monotonic() < deadline, f"{bootstrap} still says {seen}, not {wanted}"
        time.sleep(0.1)


def _create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(TOPIC, 1, replica_assignment=[[2, 3, 1]])], operation_timeout=TIMEOUT
    )
    futures[TOPIC].result(timeout=TIMEOUT)


def test_a_failed_log_dir_moves_leadership_and_producers_go_on(
    cluster_with_small_disk: BrokerCluster,
) -> None:
    cluster = cluster_with_small_disk
    _create_topic(cluster.bootstrap)
    cluster.wait_for_leader(TOPIC, 0, lambda leader: leader == FAILING, TIMEOUT)
    # Everyone in the ISR before the fault, so that the election is clean.
    cluster.wait_data(
        f"/brokers/topics/{TOPIC}/partitions/0/state",
        lambda data, _stat: data is not None and sorted(json.loads(data)["isr"]) == [1, 2, 3],
        TIMEOUT,
        "the full ISR",
    )

    producer = SteadyProducer(cluster.bootstrap, acks="all", **{"message.timeout.ms": 60000})
    try:
        before = [f"before-{i}".encode() + b"x" * 1000 for i in range(20)]
        reports = producer.send_and_wait(TOPIC, before, 0)
        assert [d.error for d in reports] == [None] * len(before)

        _fill(cluster.brokers[FAILING].data_dir)
        # Big records: the next append needs new pages of the full tmpfs.
        after = [f"after-{i}".encode() + b"y" * 60_000 for i in range(20)]
        reports = producer.send_and_wait(TOPIC, after, 0)
        assert [d.error for d in reports] == [None] * len(after), cluster.logs()

        state = cluster.partition_state(TOPIC, 0)
        assert state is not None
        assert state["leader"] == 3, state
        assert FAILING not in state["isr"], state
        assert cluster.brokers[FAILING].alive(), cluster.brokers[FAILING].log_tail()
        failing_log = cluster.brokers[FAILING].log_text()
        assert "No space left on device" in failing_log, failing_log[-3000:]
        assert "the controller is told through /log_dir_event_notification/log_dir_event_" in failing_log
        # Every broker's metadata (the failed one's included) names 2 as an offline replica.
        for broker_id in cluster.ids:
            _wait_metadata(cluster.bootstrap_of(broker_id), (3, [2, 3, 1], [3, 1], [FAILING]))
        # The controller deleted the notification it processed.
        cluster.wait_children(
            "/log_dir_event_notification", lambda c: not c, TIMEOUT, "no log dir event left"
        )

        consumer = new_consumer(cluster.bootstrap)
        try:
            got = read_from(consumer, TOPIC, 0, 0, len(before) + len(after))
            assert [m.value() for m in got] == before + after
        finally:
            consumer.close()
    finally:
        producer.close()
