"""Each broker of a ZooKeeper-mode cluster serves its own /metrics: the controller count is 1 on
the controller alone, and killing a broker shows up as under-replicated partitions and ISR
shrinks on the leaders, and as offline partitions on the controller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.cluster import SESSION_TIMEOUT_MS, BrokerCluster
from compat_tests.cluster_clients import create_topic
from compat_tests.harness import free_port, wait_until
from compat_tests.zookeeper import ZooKeeperServer
from tests.broker.metrics_kit import Scrape, scrape, value

TIMEOUT = 30.0


def _metered(
    zookeeper: ZooKeeperServer, base_dir: Path, session_timeout_ms: int
) -> Iterator[tuple[BrokerCluster, dict[int, int]]]:
    """Three brokers, each with a metrics port of its own; ISR shrinks after 2 s of silence."""
    cluster = BrokerCluster(
        zookeeper.connect_string,
        base_dir,
        overrides={"replica.lag.time.max.ms": "2000"},
        session_timeout_ms=session_timeout_ms,
    )
    ports = {broker_id: free_port() for broker_id in cluster.ids}
    for broker_id, proc in cluster.brokers.items():
        proc.overrides["brook.metrics.listener"] = f"http://127.0.0.1:{ports[broker_id]}"
    try:
        cluster.start()
        yield cluster, ports
    finally:
        cluster.close()


@pytest.fixture
def metered(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[tuple[BrokerCluster, dict[int, int]]]:
    yield from _metered(zookeeper, tmp_path / "cluster", SESSION_TIMEOUT_MS)


@pytest.fixture
def metered_long_session(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> Iterator[tuple[BrokerCluster, dict[int, int]]]:
    """A session (60 s) that outlives a SIGSTOP: only the leaders notice a paused follower."""
    yield from _metered(zookeeper, tmp_path / "cluster", 60_000)


def _scrape_live(cluster: BrokerCluster, ports: dict[int, int]) -> dict[int, Scrape]:
    return {i: scrape(ports[i]) for i, proc in cluster.brokers.items() if proc.alive()}


def _total(scrapes: dict[int, Scrape], name: str) -> float:
    return sum(value(s, name) for s in scrapes.values())


def test_controller_count_and_replica_gauges_follow_a_broker_kill(
    metered: tuple[BrokerCluster, dict[int, int]],
) -> None:
    cluster, ports = metered
    replicated = create_topic(cluster.bootstrap, "metrics-rf3", partitions=3, replication=3)
    single = create_topic(cluster.bootstrap, "metrics-rf1", partitions=3, replication=1)
    for topic in (replicated, single):
        for p in range(3):
            cluster.wait_for_leader(topic, p, lambda leader: leader >= 0, TIMEOUT)

    def hosted_everywhere() -> bool:
        scrapes = _scrape_live(cluster, ports)
        # 3 replicas of each rf3 partition plus the 3 rf1 partitions: 12 replicas, 6 leaders.
        return (
            _total(scrapes, "kafka_server_replicamanager_partitioncount") == 12
            and _total(scrapes, "kafka_server_replicamanager_leadercount") == 6
        )

    wait_until(hosted_everywhere, TIMEOUT, 0.2, "every replica hosted")
    scrapes = _scrape_live(cluster, ports)
    controller = cluster.controller_id()
    counts = {
        i: value(s, "kafka_controller_kafkacontroller_activecontrollercount") for i, s in scrapes.items()
    }
    assert counts == {i: (1 if i == controller else 0) for i in cluster.ids}
    assert _total(scrapes, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert _total(scrapes, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0

    victim = next(i for i in cluster.ids if i != controller)
    lost = [p for p in range(3) if cluster.partition_state(single, p)["leader"] == victim]  # type: ignore[index]
    cluster.kill(victim)

    def shrunk() -> bool:
        live = _scrape_live(cluster, ports)
        # Every rf3 partition lost a replica: whoever leads it now reports it under-replicated.
        return _total(live, "kafka_server_replicamanager_underreplicatedpartitions") == 3 and value(
            live[controller], "kafka_controller_kafkacontroller_offlinepartitionscount"
        ) == len(lost)

    wait_until(shrunk, TIMEOUT, 0.2, "under-replicated and offline partitions reported")
    live = _scrape_live(cluster, ports)
    assert {
        i: value(s, "kafka_controller_kafkacontroller_activecontrollercount") for i, s in live.items()
    } == {i: (1 if i == controller else 0) for i in cluster.ids if i != victim}
    # ISR shrinks are not checked here: the controller takes a dead broker out of every ISR
    # itself (Kafka's onBrokerFailure), racing the leaders' own AlterPartition. See below.


def test_a_paused_follower_is_one_isr_shrink_per_partition_and_one_expand_when_it_returns(
    metered_long_session: tuple[BrokerCluster, dict[int, int]],
) -> None:
    from confluent_kafka import Producer

    cluster, ports = metered_long_session
    topic = create_topic(cluster.bootstrap, "metrics-isr", partitions=3, replication=3)
    leaders = {
        p: int(cluster.wait_for_leader(topic, p, lambda leader: leader >= 0, TIMEOUT)["leader"])
        for p in range(3)
    }
    victim = next(i for i in cluster.ids if i != cluster.controller_id())
    followed = [p for p, leader in leaders.items() if leader != victim]
    assert followed
    before = _scrape_live(cluster, ports)
    shrinks, expands = (
        "kafka_server_replicamanager_isrshrinks_total",
        "kafka_server_replicamanager_isrexpands_total",
    )
    others = [i for i in cluster.ids if i != victim]

    def total(name: str) -> float:
        return sum(value(scrape(ports[i]), name) for i in others)

    cluster.pause(victim)
    try:
        # A silent follower stays in sync while it has everything (Kafka's rule): append behind it.
        producer = Producer({"bootstrap.servers": cluster.live_bootstrap(), "acks": "1"})
        for p in followed:  # the partition the paused broker leads would not answer
            producer.produce(topic, b"behind the paused follower", partition=p)
        assert producer.flush(TIMEOUT) == 0
        wait_until(
            lambda: total(shrinks) - sum(value(before[i], shrinks) for i in others) >= len(followed),
            TIMEOUT,
            0.2,
            "the leaders' ISR shrinks",
        )
    finally:
        cluster.resume(victim)
    wait_until(
        lambda: total(expands) - sum(value(before[i], expands) for i in others) >= len(followed),
        TIMEOUT,
        0.2,
        "the leaders' ISR expands",
    )
    after = {i: scrape(ports[i]) for i in others}
    assert sum(value(after[i], shrinks) - value(before[i], shrinks) for i in others) == len(followed)
    assert sum(value(after[i], expands) - value(before[i], expands) for i in others) == len(followed)
    wait_until(
        lambda: (
            _total(_scrape_live(cluster, ports), "kafka_server_replicamanager_underreplicatedpartitions") == 0
        ),
        TIMEOUT,
        0.2,
        "no partition under-replicated",
    )


def test_the_coordinator_alone_reports_its_groups_lag_from_every_leader(
    metered: tuple[BrokerCluster, dict[int, int]],
) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    cluster, ports = metered
    topic = create_topic(cluster.bootstrap, "metrics-lag", partitions=3, replication=1)
    ends = {0: 5, 1: 7, 2: 9}
    committed = {0: 2, 1: 3, 2: 9}
    leaders = {
        p: cluster.wait_for_leader(topic, p, lambda leader: leader >= 0, TIMEOUT)["leader"] for p in ends
    }
    assert len(set(leaders.values())) > 1  # the coordinator leads at most some of them
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for p, count in ends.items():
        for i in range(count):
            producer.produce(topic, b"m%d" % i, partition=p)
    assert producer.flush(TIMEOUT) == 0
    group = "metrics-lag-group"
    consumer = Consumer(
        {"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, offset) for p, offset in committed.items()], asynchronous=False
        )
    finally:
        consumer.close()

    def lag_series() -> dict[int, dict[str, float]]:
        found: dict[int, dict[str, float]] = {}
        for broker_id, samples in _scrape_live(cluster, ports).items():
            for (name, labels), v in samples.items():
                if name == "kafka_consumergroup_lag" and ("consumergroup", group) in labels:
                    found.setdefault(broker_id, {})[dict(labels)["partition"]] = v
        return found

    wait_until(lambda: any(len(s) == 3 for s in lag_series().values()), TIMEOUT, 0.2, "the group's lag")
    reported = lag_series()
    assert len(reported) == 1, reported  # the coordinator only
    assert next(iter(reported.values())) == {str(p): float(ends[p] - committed[p]) for p in ends}
