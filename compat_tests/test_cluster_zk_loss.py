"""ZooKeeper lost while a three-broker cluster serves (issue 12, "Failure behaviour").

- While ZooKeeper is away, leaders go on serving produce (acks=1, and acks=all: the ISR cannot
  shrink without ZooKeeper, and a stable ISR needs nothing from it) and fetch; admin requests that
  must write ZooKeeper fail with a clear error within a bounded time instead of hanging.
- ZooKeeper back before the sessions expired (the server killed and restarted: it restores its
  sessions with fresh timeouts): the same sessions, controller, controller epoch and broker epochs.
- ZooKeeper back after the sessions expired (the brokers cut off from a running server by a proxy
  until it expired them): every broker registers again, a controller is elected at a higher
  epoch, and service resumes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from compat_tests.cluster import FAILOVER_SLACK, SHARED_OVERRIDES, BrokerCluster
from compat_tests.cluster_clients import Delivery, SteadyProducer, create_topic, new_consumer, read_from
from compat_tests.tcp_proxy import TcpProxy
from compat_tests.zookeeper import ZooKeeperServer

TIMEOUT = 30.0
PARTITIONS = 3


def _produce(cluster: BrokerCluster, topic: str, tag: str, acks: int | str) -> list[Delivery]:
    """One record per partition with ``acks``, every one acknowledged without error."""
    producer = SteadyProducer(cluster.bootstrap, acks=acks, **{"message.timeout.ms": 15000})
    try:
        deliveries = [producer.send_and_wait(topic, [f"{tag}-{p}".encode()], p)[0] for p in range(PARTITIONS)]
    finally:
        producer.close()
    assert [d.error for d in deliveries] == [None] * PARTITIONS, deliveries
    return deliveries


def _read_back(cluster: BrokerCluster, topic: str, deliveries: list[Delivery]) -> None:
    consumer = new_consumer(cluster.bootstrap)
    try:
        for d in deliveries:
            (record,) = read_from(consumer, topic, d.partition, d.offset, 1)
            assert record.value() == d.value
    finally:
        consumer.close()


def _admin_fails_clearly(cluster: BrokerCluster, topic: str) -> None:
    """CreateTopics and AlterConfigs answer an error naming ZooKeeper within a bound (the ZooKeeper
    request deadline, the session timeout, plus slack), never hang until the client gives up."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

    bound = cluster.session_timeout_ms / 1000 + FAILOVER_SLACK
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    # Both at once: each waits for ZooKeeper on its own.
    started = time.monotonic()
    created = admin.create_topics(
        [NewTopic(f"{topic}-new", PARTITIONS, 3)], operation_timeout=TIMEOUT, request_timeout=TIMEOUT
    )[f"{topic}-new"]
    retention = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[retention])
    altered = admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource]
    for what, future in (("CreateTopics", created), ("AlterConfigs", altered)):
        with pytest.raises(KafkaException) as failed:
            future.result(timeout=TIMEOUT)
        seconds = time.monotonic() - started
        error = failed.value.args[0]
        print(f"\nZK LOSS {what} failed after {seconds:.2f} s: {error}")
        # Kafka's answer to a ZooKeeper client error (ApiError.fromThrowable), with its cause.
        assert error.code() == KafkaError.UNKNOWN, f"{what}: {error}"
        assert "ZooKeeper unavailable" in error.str(), f"{what}: {error}"
        assert seconds < bound, f"{what} took {seconds:.1f} s to fail (bound {bound} s): {error}"


def _reconnect_harness(cluster: BrokerCluster, hosts: str) -> None:
    """A fresh harness client (its old one lived through the outage with backoffs of its own)."""
    cluster.zk.stop()
    cluster.zk.close()
    cluster.zk = KazooClient(hosts=f"{hosts}{cluster.chroot}", timeout=10.0)
    cluster.zk.start(timeout=15)


@pytest.fixture
def private_zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A ZooKeeper of the test's own: it gets killed and restarted."""
    server = ZooKeeperServer(tmp_path / "zookeeper").start()
    try:
        yield server
    finally:
        server.kill()


def test_zookeeper_down_and_back_before_the_sessions_expire(
    private_zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    # The brokers reach ZooKeeper through a proxy that refuses while it is down and opens only
    # once the restarted server serves: a JVM ZooKeeper accepts connections before it serves,
    # and a session handshake sent then is never answered (the client gives up after the session
    # timeout, by which time the restarted server has expired the session: seen once in CI).
    host, port = private_zookeeper.connect_string.split(":")
    proxy = TcpProxy(host, int(port)).start()
    cluster = BrokerCluster(proxy.address, tmp_path / "cluster", overrides=SHARED_OVERRIDES)
    cluster.zk = KazooClient(hosts=f"{private_zookeeper.connect_string}{cluster.chroot}", timeout=10.0)
    with contextlib.closing(proxy), cluster:
        topic = create_topic(cluster.bootstrap, "zk-down", PARTITIONS)
        before = _produce(cluster, topic, "before", "all")
        controller, controller_epoch = cluster.controller_id(), cluster.controller_epoch()
        epochs = {i: cluster.broker_epoch(i) for i in cluster.ids}
        states = {p: cluster.partition_state(topic, p) for p in range(PARTITIONS)}

        cluster.zk.stop()
        proxy.refuse()
        private_zookeeper.kill()

        during = _produce(cluster, topic, "during-acks1", 1) + _produce(
            cluster, topic, "during-acksall", "all"
        )
        _read_back(cluster, topic, before + during)
        _admin_fails_clearly(cluster, topic)
        assert all(b.alive() for b in cluster.brokers.values()), cluster.logs()

        private_zookeeper.start()  # returns once it serves
        _reconnect_harness(cluster, private_zookeeper.connect_string)
        proxy.heal()
        # The same sessions: nothing re-registered, no election, no leader or ISR change.
        assert {i: cluster.broker_epoch(i) for i in cluster.ids} == epochs
        assert (cluster.controller_id(), cluster.controller_epoch()) == (controller, controller_epoch)
        assert {p: cluster.partition_state(topic, p) for p in range(PARTITIONS)} == states

        # Admin works again through the same controller, and so does data.
        again = create_topic(cluster.bootstrap, "zk-back", PARTITIONS)
        after = _produce(cluster, topic, "after", "all") + _produce(cluster, again, "new", "all")
        _read_back(cluster, topic, after[:PARTITIONS])
        _read_back(cluster, again, after[PARTITIONS:])
        assert (cluster.controller_id(), cluster.controller_epoch()) == (controller, controller_epoch)
        assert {i: cluster.broker_epoch(i) for i in cluster.ids} == epochs


def test_zookeeper_back_after_the_sessions_expired(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    host, port = zookeeper.connect_string.split(":")
    proxy = TcpProxy(host, int(port)).start()
    cluster = BrokerCluster(proxy.address, tmp_path / "cluster", overrides=SHARED_OVERRIDES)
    # The harness reads ZooKeeper directly: it sees the sessions expire while the brokers cannot.
    cluster.zk = KazooClient(hosts=f"{zookeeper.connect_string}{cluster.chroot}", timeout=10.0)
    try:
        cluster.start()
        topic = create_topic(cluster.bootstrap, "zk-expired", PARTITIONS)
        before = _produce(cluster, topic, "before", "all")
        controller_epoch = cluster.controller_epoch()
        assert controller_epoch is not None
        epochs = {i: cluster.broker_epoch(i) or 0 for i in cluster.ids}

        proxy.refuse()
        during = _produce(cluster, topic, "during", 1)
        # ZooKeeper itself expires the silent sessions: the ephemeral znodes go.
        cluster.wait_children(
            "/brokers/ids",
            lambda c: not c,
            cluster.session_timeout_ms / 1000 * 2 + 10,
            "every session expired",
        )
        assert all(b.alive() for b in cluster.brokers.values()), cluster.logs()

        proxy.heal()
        for broker_id, old in epochs.items():
            cluster.wait_reregistered(broker_id, old, TIMEOUT)
        new_controller = cluster.wait_controller(min_epoch=controller_epoch + 1, timeout=TIMEOUT)
        cluster.wait_metadata_converged(set(cluster.ids), new_controller, TIMEOUT)

        again = create_topic(cluster.bootstrap, "zk-renewed", PARTITIONS)
        after = _produce(cluster, topic, "after", "all") + _produce(cluster, again, "new", "all")
        _read_back(cluster, topic, before + during + after[:PARTITIONS])
        _read_back(cluster, again, after[PARTITIONS:])
        assert all(b.alive() for b in cluster.brokers.values()), cluster.logs()
    finally:
        cluster.close()
        proxy.close()
