"""Client quotas in a three-broker ZooKeeper-mode cluster (real processes, a real ZooKeeper):
set through one broker, they land in Kafka's znodes with a ``/config/changes`` notification, keep
the SCRAM credentials that share a user's znode, and are applied by the other brokers."""

from __future__ import annotations

import json
import time

from compat_tests.clients.admin import unique_topic
from compat_tests.cluster import BrokerCluster
from compat_tests.harness import wait_until
from compat_tests.test_cli import ok
from compat_tests.test_client_quotas import produce_for, set_quota

WAIT = 30.0


def znode(cluster: BrokerCluster, path: str) -> dict[str, object]:
    data, _ = cluster.zk.get(path)
    return dict(json.loads(bytes(data)))


def change_paths(cluster: BrokerCluster) -> list[object]:
    return [
        json.loads(bytes(cluster.zk.get(f"/config/changes/{c}")[0]))
        for c in sorted(cluster.zk.get_children("/config/changes"))
    ]


def test_quotas_through_zookeeper(fresh_cluster: BrokerCluster) -> None:
    cluster = fresh_cluster
    one, two = cluster.bootstrap_of(1), cluster.bootstrap_of(2)

    # SASL's credentials live in the same znode: a quota change keeps them.
    scram = "salt=c2FsdA==,stored_key=a2V5,server_key=c2VydmVy,iterations=4096"
    cluster.zk.create(
        "/config/users/alice",
        json.dumps({"version": 1, "config": {"SCRAM-SHA-256": scram}}).encode(),
        makepath=True,
    )
    set_quota(one, "--user", "alice", config="producer_byte_rate=1024")
    assert znode(cluster, "/config/users/alice") == {
        "version": 1,
        "config": {"SCRAM-SHA-256": scram, "producer_byte_rate": "1024"},
    }
    set_quota(one, "--user", "alice", "--client", "my app", config="consumer_byte_rate=2048")
    assert znode(cluster, "/config/users/alice/clients/my%20app") == {
        "version": 1,
        "config": {"consumer_byte_rate": "2048"},
    }
    changes = change_paths(cluster)
    assert {"version": 2, "entity_path": "users/alice"} in changes
    assert {"version": 2, "entity_path": "users/alice/clients/my%20app"} in changes

    # Any broker describes them (from ZooKeeper); SCRAM keys are not quotas, and are described
    # apart as ConfigCommand does for every user.
    assert ok("configs", "--bootstrap-server", two, "--describe", "--entity-type", "users") == (
        "Quota configs for user-principal 'alice' are producer_byte_rate=1024.0\n"
        "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=4096\n"
    )

    # Applied by another broker: a client over a quota set through broker 1 is throttled by the
    # leader of its partition, whichever broker that is.
    topic = unique_topic("cluster-quota")
    ok(
        "topics", "--bootstrap-server", one, "--create", "--topic", topic,
        "--partitions", "1", "--replication-factor", "1",
    )  # fmt: skip
    wait_until(lambda: cluster.leader_of(topic, 0) is not None, WAIT, message="a leader")
    leader = cluster.leader_of(topic, 0)
    assert leader is not None
    setter = 2 if leader == 1 else 1
    set_quota(cluster.bootstrap_of(setter), "--client", "cluster-slow", config="producer_byte_rate=16384")
    # The leader applies it from the notification; produce until its throttle shows.
    deadline = time.monotonic() + WAIT
    throttled = 0
    while not throttled and time.monotonic() < deadline:
        _, stats = produce_for(cluster.bootstrap_of(leader), topic, "cluster-slow", 2.0)
        throttled = stats.max_throttle_ms
    assert throttled > 0, f"broker {leader} never throttled a quota set through broker {setter}"

    # Removing it is applied as well: Kafka's znode keeps an empty config.
    ok(
        "configs", "--bootstrap-server", cluster.bootstrap_of(setter), "--alter",
        "--client", "cluster-slow", "--delete-config", "producer_byte_rate",
    )  # fmt: skip
    assert znode(cluster, "/config/clients/cluster-slow") == {"version": 1, "config": {}}
    deadline = time.monotonic() + WAIT
    while throttled and time.monotonic() < deadline:
        _, stats = produce_for(cluster.bootstrap_of(leader), topic, "cluster-slow", 1.0)
        throttled = stats.max_throttle_ms
    assert throttled == 0, f"broker {leader} still throttles after the quota was removed"
