"""A ZooKeeper-mode cluster whose inter-broker listener is SSL with required client
certificates: the controller's requests and the replica fetchers go over TLS (each broker's key
store is its client certificate, host names verified), clients use the PLAINTEXT listener.

If inter-broker TLS failed, the cluster would not form (UpdateMetadata travels on it) and acks=all
would time out (followers could not fetch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.clients.roundtrips import confluent_consume
from compat_tests.cluster import BrokerCluster
from compat_tests.harness import free_port, wait_until
from compat_tests.zookeeper import ZooKeeperServer
from tests.security.certs import make_pki, ssl_listener_settings


@pytest.fixture(scope="module")
def tls_cluster(
    zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerCluster]:
    base = Path(tmp_path_factory.mktemp("tls-cluster"))
    pki = make_pki(base / "pki")
    settings = ssl_listener_settings(pki, client_auth="required")
    del settings["security.inter.broker.protocol"]
    cluster = BrokerCluster(
        zookeeper.connect_string,
        base,
        3,
        overrides={**settings, "inter.broker.listener.name": "SSL", "default.replication.factor": "3"},
    )
    # Each broker: PLAINTEXT for clients and the harness on its port, SSL between brokers.
    for broker in cluster.brokers.values():
        broker.overrides["listeners"] = f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{free_port()}"
    try:
        cluster.start()
        yield cluster
        dead = [i for i, b in cluster.brokers.items() if not b.alive()]
        assert not dead, cluster.logs()
        registration = cluster.broker_znode(1)
        assert registration is not None and any(e.startswith("SSL://") for e in registration[0]["endpoints"])
    finally:
        cluster.close()


def test_replication_over_tls(tls_cluster: BrokerCluster) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "tls-replicated"
    admin = AdminClient({"bootstrap.servers": tls_cluster.bootstrap})
    admin.create_topics(
        [NewTopic(topic, 2, 3, config={"min.insync.replicas": "3"})], operation_timeout=15, request_timeout=15
    )[topic].result(timeout=30)
    producer = Producer(
        {"bootstrap.servers": tls_cluster.bootstrap, "acks": "all", "message.timeout.ms": 30_000}
    )
    values = [f"replicated-{i}".encode() * 20 for i in range(300)]
    failures: list[object] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: failures.append(err) if err else None)
    assert producer.flush(45) == 0
    assert failures == []  # min.insync.replicas=3: every follower fetched each batch over TLS
    for partition in (0, 1):
        wait_until(
            lambda p=partition: (
                sorted((tls_cluster.partition_state(topic, p) or {}).get("isr", [])) == [1, 2, 3]
            ),
            30,
            message=f"ISR of {topic}-{partition} to hold every broker",
        )
    got = confluent_consume({"bootstrap.servers": tls_cluster.bootstrap}, topic, "tls-cluster", len(values))
    assert sorted(got) == sorted(values)
