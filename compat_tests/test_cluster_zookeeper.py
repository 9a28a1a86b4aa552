"""ZooKeeper failures around a Brook cluster: a member of a three-member ensemble dies while the
cluster runs; no ZooKeeper at all when a broker starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from compat_tests.cluster import SHARED_OVERRIDES, BrokerCluster
from compat_tests.cluster_clients import (
    Delivery,
    SteadyProducer,
    create_topic,
    new_consumer,
    read_from,
    reading_needs_replication,
)
from compat_tests.harness import REPO, BrokerProcess, free_port
from compat_tests.test_cluster_clients import check_kafka_topic_znode, check_partition_states
from compat_tests.zookeeper import ZooKeeperEnsemble

TIMEOUT = 30.0


def _produce_everywhere(cluster: BrokerCluster, topic: str, partitions: int, tag: str) -> list[Delivery]:
    """One acknowledged record per partition (so every leader takes writes)."""
    producer = SteadyProducer(cluster.bootstrap)
    try:
        values = [f"{tag}-{p}".encode() for p in range(partitions)]
        deliveries = [producer.send_and_wait(topic, [v], p)[0] for p, v in enumerate(values)]
    finally:
        producer.close()
    assert [d.error for d in deliveries] == [None] * partitions, deliveries
    assert [d.partition for d in deliveries] == list(range(partitions))
    return deliveries


def _read_back(cluster: BrokerCluster, topic: str, deliveries: list[Delivery]) -> None:
    consumer = new_consumer(cluster.bootstrap)
    try:
        for d in deliveries:
            (record,) = read_from(consumer, topic, d.partition, d.offset, 1)
            assert record.value() == d.value
    finally:
        consumer.close()


def test_the_cluster_goes_on_when_a_zookeeper_member_dies(
    zookeeper_ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    with BrokerCluster(
        zookeeper_ensemble.connect_string, tmp_path / "cluster", overrides=SHARED_OVERRIDES
    ) as cluster:
        before = create_topic(cluster.bootstrap, "zk-before", 3)
        check_partition_states(cluster, before, check_kafka_topic_znode(cluster, before, 3))

        # The ensemble's leader is the member whose loss costs the most (a new quorum election).
        victim = zookeeper_ensemble.leader()
        assert victim is not None, "the ensemble has no leader"
        victim.kill()

        # Admin (ZooKeeper writes through the controller) and data still work; nobody left.
        after = create_topic(cluster.bootstrap, "zk-after", 3)
        check_partition_states(cluster, after, check_kafka_topic_znode(cluster, after, 3))
        written = {before: _produce_everywhere(cluster, before, 3, "before")}
        written[after] = _produce_everywhere(cluster, after, 3, "after")
        assert cluster.registered_ids() == {1, 2, 3}
        assert cluster.controller_id() in cluster.ids
        assert all(b.alive() for b in cluster.brokers.values()), cluster.logs()
        reading_needs_replication(cluster.bootstrap, after, 0)
        for topic, deliveries in written.items():
            _read_back(cluster, topic, deliveries)


def test_zookeeper_unreachable_at_start_is_a_clear_error_and_a_non_zero_exit(tmp_path: Path) -> None:
    nothing_there = free_port()
    broker = BrokerProcess(
        tmp_path / "data",
        {
            "zookeeper.connect": f"127.0.0.1:{nothing_there}",
            "broker.id": "1",
            "zookeeper.connection.timeout.ms": "2000",
        },
    )
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    try:
        proc = subprocess.run(
            broker.command(), cwd=REPO, capture_output=True, timeout=30, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"")
        raise AssertionError(
            "the broker did not give up 30 s after a 2 s zookeeper.connection.timeout.ms:\n"
            + output.decode(errors="replace")[-3000:]
        ) from None
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0, output
    # Kafka's ZooKeeperClientTimeoutException message, naming where it tried.
    assert "Timed out waiting for connection while in state: CONNECTING" in output, output
    assert f"127.0.0.1:{nothing_there}" in output, output
    assert "Traceback" not in output, "a clear error, not a crash"
