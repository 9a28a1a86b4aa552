"""A ZooKeeper-mode cluster whose inter-broker listener is SASL_PLAINTEXT with SCRAM-SHA-512:
the brokers' own credentials are written to ``/config/users/admin`` before start, in Kafka's
format (as ``kafka-configs.sh --zookeeper`` does), so the controller's requests and the replica
fetchers authenticate with SCRAM. If they could not, the cluster would not form (UpdateMetadata
travels on that listener) and acks=all with min.insync.replicas=3 would time out.

Then a user created with AlterUserScramCredentials (on the controller, as Kafka's admin client
sends it) authenticates on every other broker, which learnt it from the ``users/<user>`` change
notification, and the znode keeps a quota key written next to it by someone else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.security.scram import credential_from_password
from compat_tests.cluster import BrokerCluster
from compat_tests.harness import free_port, wait_until
from compat_tests.zookeeper import ZooKeeperServer

ADMIN_JAAS = (
    "org.apache.kafka.common.security.scram.ScramLoginModule required "
    'username="admin" password="admin-secret";'
)
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def sasl_cluster(
    zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerCluster]:
    base = Path(tmp_path_factory.mktemp("sasl-cluster"))
    cluster = BrokerCluster(
        zookeeper.connect_string,
        base,
        3,
        overrides={
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
            "sasl.jaas.config": ADMIN_JAAS,
            "default.replication.factor": "3",
        },
    )
    ports = {}
    for broker_id, broker in cluster.brokers.items():
        ports[broker_id] = free_port()
        broker.overrides["listeners"] = (
            f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{ports[broker_id]}"
        )
    cluster._connect_zk()
    credential = credential_from_password("SCRAM-SHA-512", "admin-secret", 4096)
    cluster.zk.create(
        "/config/users/admin",
        json.dumps({"version": 1, "config": {"SCRAM-SHA-512": credential.to_config()}}).encode(),
        makepath=True,
    )
    try:
        cluster.start()
        cluster.sasl_ports = ports  # type: ignore[attr-defined]
        yield cluster
        dead = [i for i, b in cluster.brokers.items() if not b.alive()]
        assert not dead, cluster.logs()
        for broker in cluster.brokers.values():
            assert "admin-secret" not in broker.log_text()
    finally:
        cluster.close()


def test_replication_over_sasl_scram(sasl_cluster: BrokerCluster) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "sasl-replicated"
    admin = AdminClient({"bootstrap.servers": sasl_cluster.bootstrap})
    admin.create_topics(
        [NewTopic(topic, 2, 3, config={"min.insync.replicas": "3"})], operation_timeout=15, request_timeout=15
    )[topic].result(timeout=TIMEOUT)
    producer = Producer(
        {"bootstrap.servers": sasl_cluster.bootstrap, "acks": "all", "message.timeout.ms": 30_000}
    )
    failures: list[object] = []
    for i in range(200):
        producer.produce(
            topic, f"v{i}".encode(), on_delivery=lambda err, _m: failures.append(err) if err else None
        )
    assert producer.flush(45) == 0
    assert failures == []  # min.insync.replicas=3: every follower fetched over SASL
    registration = sasl_cluster.broker_znode(1)
    assert registration is not None
    assert any(e.startswith("SASL_PLAINTEXT://") for e in registration[0]["endpoints"])


def test_credentials_altered_on_the_controller_work_on_every_broker(sasl_cluster: BrokerCluster) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    # A quota key written by someone else stays when the credentials change.
    sasl_cluster.zk.create(
        "/config/users/erin", json.dumps({"version": 1, "config": {"producer_byte_rate": "1024"}}).encode()
    )
    controller = sasl_cluster.controller_id()
    assert controller is not None
    admin = AdminClient({"bootstrap.servers": sasl_cluster.bootstrap_of(controller)})
    upsert = UserScramCredentialUpsertion(
        "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"erin-pw"
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(TIMEOUT)
    raw, _ = sasl_cluster.zk.get("/config/users/erin")
    stored = json.loads(raw)["config"]
    assert stored["producer_byte_rate"] == "1024" and stored["SCRAM-SHA-256"].startswith("salt=")
    ports: dict[int, int] = sasl_cluster.sasl_ports  # type: ignore[attr-defined]
    for broker_id in sasl_cluster.ids:
        settings = {
            "bootstrap.servers": f"127.0.0.1:{ports[broker_id]}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256",
            "sasl.username": "erin",
            "sasl.password": "erin-pw",
        }

        def authenticates(s: dict[str, object] = settings) -> bool:
            try:
                return bool(AdminClient(s).list_topics(timeout=5).brokers)
            except Exception:
                return False

        wait_until(authenticates, TIMEOUT, message=f"erin to authenticate on broker {broker_id}")
