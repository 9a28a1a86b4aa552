"""ACLs in a ZooKeeper-mode cluster: stored as Kafka's AclAuthorizer stores them, set through one
broker and enforced by another (change notifications), and inter-broker traffic authorized as in
Kafka: the brokers' principal (ANONYMOUS on PLAINTEXT) is a super user, or holds CLUSTER_ACTION
from ACLs written to ZooKeeper before the brokers start (as ``kafka-acls.sh
--authorizer-properties zookeeper.connect=...`` does)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import broker
from broker.embedding import EmbeddedBroker
from broker.security.acl import AclOperation, ResourceType
from compat_tests.cluster import BrokerCluster
from compat_tests.harness import free_port
from compat_tests.zookeeper import ZooKeeperServer
from tests.security.certs import make_pki, ssl_listener_settings

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclBindingFilter,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
)
from confluent_kafka.admin import AclOperation as COp  # noqa: E402
from confluent_kafka.admin import ResourceType as CType  # noqa: E402

TIMEOUT = 30.0
AUTHORIZER = {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}


def _wait(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _allows(member: EmbeddedBroker, principal: str, op: AclOperation, topic: str) -> bool:
    def check(b: broker.Broker) -> bool:
        assert b.authorizer is not None
        return b.authorizer.authorize(principal, "10.1.1.1", op, ResourceType.TOPIC, topic)

    return member.call(check, timeout=5)


def _zk(zookeeper: ZooKeeperServer, chroot: str) -> KazooClient:
    client = KazooClient(hosts=f"{zookeeper.connect_string}{chroot}", timeout=10)
    client.start(timeout=10)
    return client


def _produce_all_acks(bootstrap: str, topic: str, count: int = 20) -> list[object]:
    errors: list[object] = []
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 20_000}
    )
    for i in range(count):
        producer.produce(topic, f"m{i}".encode(), on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(TIMEOUT) == 0
    return errors


def test_acls_set_on_one_broker_are_enforced_on_another(zookeeper: ZooKeeperServer) -> None:
    with broker.embedded_cluster(
        2, zookeeper.connect_string, {**AUTHORIZER, "super.users": "User:ANONYMOUS"}
    ) as cluster:
        chroot = cluster.zookeeper_connect[len(zookeeper.connect_string) :]
        first, second = cluster.brokers[1], cluster.brokers[2]
        # Inter-broker traffic (the controller's requests, follower fetches) runs as the super user.
        assert sorted(cluster.create_topic("replicated", partitions=2, replication_factor=2)) == [0, 1]
        assert _produce_all_acks(cluster.bootstrap_servers, "replicated") == [None] * 20

        admin = AdminClient({"bootstrap.servers": first.bootstrap_servers})
        literal = AclBinding(
            CType.TOPIC,
            "orders",
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            COp.READ,
            AclPermissionType.ALLOW,
        )
        prefixed = AclBinding(
            CType.TOPIC,
            "orders-",
            ResourcePatternType.PREFIXED,
            "User:*",
            "*",
            COp.WRITE,
            AclPermissionType.DENY,
        )
        for future in admin.create_acls([literal, prefixed]).values():
            assert future.result(TIMEOUT) is None

        zk = _zk(zookeeper, chroot)
        try:
            data, _ = zk.get("/kafka-acl/Topic/orders")
            assert json.loads(data) == {
                "version": 1,
                "acls": [
                    {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}
                ],
            }
            data, _ = zk.get("/kafka-acl-extended/prefixed/Topic/orders-")
            assert json.loads(data)["acls"][0]["permissionType"] == "Deny"
            changes = zk.get_children("/kafka-acl-changes")
            assert [zk.get(f"/kafka-acl-changes/{c}")[0] for c in changes] == [b"TOPIC:orders"]
            extended = zk.get_children("/kafka-acl-extended-changes")
            assert json.loads(zk.get(f"/kafka-acl-extended-changes/{extended[0]}")[0]) == {
                "version": 1,
                "resourceType": "TOPIC",
                "name": "orders-",
                "patternType": "PREFIXED",
            }
        finally:
            zk.stop()
            zk.close()

        _wait(lambda: _allows(second, "User:alice", AclOperation.READ, "orders"), "broker 2 to load the ACL")
        assert _allows(second, "User:alice", AclOperation.DESCRIBE, "orders")
        assert not _allows(second, "User:bob", AclOperation.READ, "orders")
        assert not _allows(second, "User:alice", AclOperation.WRITE, "orders-eu")

        everything = AclBindingFilter(
            CType.ANY, None, ResourcePatternType.ANY, None, None, COp.ANY, AclPermissionType.ANY
        )
        other_admin = AdminClient({"bootstrap.servers": second.bootstrap_servers})
        assert sorted(map(str, other_admin.describe_acls(everything).result(TIMEOUT))) == sorted(
            map(str, [literal, prefixed])
        )
        assert len(admin.delete_acls([everything])[everything].result(TIMEOUT)) == 2
        _wait(
            lambda: not _allows(second, "User:alice", AclOperation.READ, "orders"), "broker 2 to drop the ACL"
        )
        assert other_admin.describe_acls(everything).result(TIMEOUT) == []


def test_inter_broker_traffic_with_cluster_action_from_zookeeper_acls(zookeeper: ZooKeeperServer) -> None:
    chroot = "/brook-acl-preset"
    zk = _zk(zookeeper, "")
    try:
        # What kafka-acls.sh writes for: --allow-principal User:ANONYMOUS --operation ClusterAction
        # --operation Create --operation Describe --cluster, and --operation All --topic '*'.
        cluster_acls = {
            "version": 1,
            "acls": [
                {"principal": "User:ANONYMOUS", "permissionType": "Allow", "operation": op, "host": "*"}
                for op in ("ClusterAction", "Create", "Describe")
            ],
        }
        zk.create(
            f"{chroot}/kafka-acl/Cluster/kafka-cluster", json.dumps(cluster_acls).encode(), makepath=True
        )
        topic_acls = {
            "version": 1,
            "acls": [
                {"principal": "User:ANONYMOUS", "permissionType": "Allow", "operation": "All", "host": "*"}
            ],
        }
        zk.create(f"{chroot}/kafka-acl/Topic/*", json.dumps(topic_acls).encode(), makepath=True)
    finally:
        zk.stop()
        zk.close()
    cluster = broker.embedded_cluster(2, f"{zookeeper.connect_string}{chroot}", AUTHORIZER)
    with cluster:
        leaders = cluster.create_topic("preset", partitions=2, replication_factor=2)
        assert sorted(leaders) == [0, 1]
        # acks=all needs the follower's fetches (CLUSTER_ACTION) to move the high watermark.
        assert _produce_all_acks(cluster.bootstrap_servers, "preset") == [None] * 20
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        # ANONYMOUS has no ALTER on the cluster: it may not manage ACLs.
        binding = AclBinding(
            CType.TOPIC,
            "x",
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            COp.READ,
            AclPermissionType.ALLOW,
        )
        with pytest.raises(confluent_kafka.KafkaException) as refused:
            admin.create_acls([binding])[binding].result(TIMEOUT)
        assert refused.value.args[0].code() == confluent_kafka.KafkaError.CLUSTER_AUTHORIZATION_FAILED


def test_ssl_inter_broker_listener_whose_certificate_is_a_super_user(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    """Brokers talk over SSL with the server certificate (CN=localhost -> User:localhost, a super
    user). ANONYMOUS (the PLAINTEXT clients) is DENIED CLUSTER_ACTION by an ACL written before the
    start, so the cluster forms and replicates only if the SSL principal is what is checked."""
    pki = make_pki(tmp_path / "pki")
    settings = ssl_listener_settings(pki, client_auth="required")
    del settings["security.inter.broker.protocol"]
    cluster = BrokerCluster(
        zookeeper.connect_string,
        tmp_path,
        2,
        overrides={
            **settings,
            **AUTHORIZER,
            "inter.broker.listener.name": "SSL",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
            "super.users": "User:localhost",
            "allow.everyone.if.no.acl.found": "true",
            "default.replication.factor": "2",
        },
    )
    for member in cluster.brokers.values():
        member.overrides["listeners"] = f"PLAINTEXT://127.0.0.1:{member.port},SSL://127.0.0.1:{free_port()}"
    zk = _zk(zookeeper, "")
    try:
        acls = {
            "version": 1,
            "acls": [
                {
                    "principal": "User:ANONYMOUS",
                    "permissionType": "Deny",
                    "operation": "ClusterAction",
                    "host": "*",
                },
                {
                    "principal": "User:ANONYMOUS",
                    "permissionType": "Allow",
                    "operation": "Create",
                    "host": "*",
                },
                {
                    "principal": "User:ANONYMOUS",
                    "permissionType": "Allow",
                    "operation": "Describe",
                    "host": "*",
                },
            ],
        }
        zk.create(
            f"{cluster.chroot}/kafka-acl/Cluster/kafka-cluster", json.dumps(acls).encode(), makepath=True
        )
    finally:
        zk.stop()
        zk.close()
    try:
        cluster.start()
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        from confluent_kafka.admin import NewTopic

        admin.create_topics([NewTopic("ssl-acl", 2, 2, config={"min.insync.replicas": "2"})])[
            "ssl-acl"
        ].result(TIMEOUT)
        _wait(
            lambda: all(
                len((cluster.partition_state("ssl-acl", p) or {}).get("isr", [])) == 2 for p in (0, 1)
            ),
            "both replicas in the ISR",
        )
        # min.insync.replicas=2: every batch needs the follower's fetch (over SSL, as User:localhost).
        assert _produce_all_acks(cluster.bootstrap, "ssl-acl") == [None] * 20
        # The same inter-broker api from ANONYMOUS on PLAINTEXT is refused: the DENY holds.
        assert (
            _controlled_shutdown_error(cluster.bootstrap.split(",")[0]) == 31
        )  # CLUSTER_AUTHORIZATION_FAILED
    finally:
        cluster.close()


def _controlled_shutdown_error(address: str) -> int:
    import socket
    import struct

    from protocol import api as papi
    from protocol.messages.controlled_shutdown_request import ControlledShutdownRequest

    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(papi.encode_request(ControlledShutdownRequest(broker_id=99, broker_epoch=-1), 3, 5))
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        data = sock.recv(size, socket.MSG_WAITALL)
    correlation, response = papi.decode_response(data, 7, 3)
    assert correlation == 5
    return int(response.error_code)
