"""Issue 13's promise under faults, on real processes: 3 brokers, RF 3, ``min.insync.replicas=2``,
unclean election off; an idempotent acks=all producer writes without pause while a fault is
injected; afterwards every partition is read back from its earliest offset and every acknowledged
message must be there exactly once, in order, at the offset it was acknowledged at
(``compat_tests/replication_checker.py``). Counts are printed as ``FAULTS <fault>: ...`` (``-s``).

With unclean election on, the same checker reports the loss that such an election allows.

Settings for speed: ZooKeeper sessions of 6 s (the cluster harness's), ``replica.lag.time.max.ms``
of 10 s (Kafka's default is 30 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.cluster import FAILOVER_SLACK, BrokerCluster, cluster_of
from compat_tests.cluster_clients import create_topic
from compat_tests.fault_workload import Workload, verify
from compat_tests.harness import free_port
from compat_tests.tcp_proxy import TcpProxy
from compat_tests.zookeeper import ZooKeeperServer

PARTITIONS = 3
TIMEOUT = 30.0
SAFE = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "replica.lag.time.max.ms": "10000",
}


@pytest.fixture
def safe_cluster(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    yield from cluster_of(zookeeper.connect_string, tmp_path / "cluster", overrides=SAFE)


def _bound(cluster: BrokerCluster) -> float:
    return cluster.session_timeout_ms / 1000 + FAILOVER_SLACK


def _leader(cluster: BrokerCluster, topic: str, partition: int = 0) -> int:
    return int(cluster.wait_for_leader(topic, partition, lambda leader: leader >= 0, TIMEOUT)["leader"])


def _wait_isr(
    cluster: BrokerCluster, topic: str, partition: int, size: int, timeout: float = TIMEOUT
) -> None:
    def ok(data: bytes | None, _stat: Any) -> bool:
        return bool(data) and len(json.loads(data)["isr"]) == size  # type: ignore[arg-type]

    cluster.wait_data(
        f"/brokers/topics/{topic}/partitions/{partition}/state",
        ok,
        timeout,
        f"an ISR of {size} for {topic}-{partition}",
    )


def _wait_all_in_sync(cluster: BrokerCluster, topic: str) -> None:
    for p in range(PARTITIONS):
        _wait_isr(cluster, topic, p, 3, timeout=TIMEOUT + 10)


def _start(cluster: BrokerCluster) -> tuple[str, Workload]:
    topic = create_topic(cluster.bootstrap, "faults", PARTITIONS)
    _wait_all_in_sync(cluster, topic)
    workload = Workload(cluster.bootstrap, topic, PARTITIONS).start()
    workload.wait_acked(200)
    return topic, workload


def _finish(cluster: BrokerCluster, workload: Workload, what: str) -> None:
    """Let the workload write after the fault, stop it, read back and check."""
    workload.wait_acked(workload.acked_count() + 200)
    workload.stop()
    report = verify(workload, cluster.live_bootstrap(), what)
    assert workload.fatal is None, f"the idempotent producer failed fatally: {workload.fatal}"
    assert report.acknowledged > 0 and report.ok, f"{what}: {report}\n{cluster.logs()}"


def test_kill_9_of_the_leader_cycles(safe_cluster: BrokerCluster) -> None:
    cluster = safe_cluster
    topic, workload = _start(cluster)
    try:
        for _cycle in range(3):
            leader = _leader(cluster, topic)
            before = workload.acked_count()
            cluster.kill(leader)
            cluster.wait_for_leader_change(topic, 0, leader, _bound(cluster))
            workload.wait_acked(before + 100)  # writes go on through the new leader
            cluster.wait_unregistered(leader, _bound(cluster))
            cluster.brokers[leader].start()
            cluster.wait_registered([leader])
            _wait_all_in_sync(cluster, topic)
    finally:
        _finish(cluster, workload, "kill -9 of the leader x3")


def test_sigstop_of_the_leader_past_the_session_timeout(safe_cluster: BrokerCluster) -> None:
    """The frozen leader's session expires and another leader takes over; when it wakes up it
    still believes it leads, and it must not acknowledge anything the new leader does not have."""
    cluster = safe_cluster
    topic, workload = _start(cluster)
    try:
        leader = _leader(cluster, topic)
        old_epoch = cluster.broker_epoch(leader)
        assert old_epoch is not None
        cluster.pause(leader)
        try:
            cluster.wait_for_leader_change(topic, 0, leader, _bound(cluster))
            workload.wait_acked(workload.acked_count() + 100)
        finally:
            cluster.resume(leader)
        cluster.wait_reregistered(leader, old_epoch, _bound(cluster) + 10)
        _wait_all_in_sync(cluster, topic)
    finally:
        _finish(cluster, workload, "SIGSTOP of the leader, then SIGCONT")


def test_zookeeper_session_expiry_of_the_leader(safe_cluster: BrokerCluster) -> None:
    cluster = safe_cluster
    topic, workload = _start(cluster)
    try:
        leader = _leader(cluster, topic)
        cluster.expire_session(leader)
        _wait_all_in_sync(cluster, topic)
    finally:
        _finish(cluster, workload, "session expiry of the leader")


def test_rolling_restart_of_all_brokers(safe_cluster: BrokerCluster) -> None:
    cluster = safe_cluster
    topic, workload = _start(cluster)
    try:
        for broker_id in cluster.ids:
            old_epoch = cluster.broker_epoch(broker_id) or 0
            before = workload.acked_count()
            code = cluster.stop(broker_id)
            assert code == 0, (
                f"broker {broker_id} exited with {code}:\n{cluster.brokers[broker_id].log_tail()}"
            )
            workload.wait_acked(before + 50)  # the two others serve meanwhile
            cluster.brokers[broker_id].start()
            cluster.wait_reregistered(broker_id, old_epoch, TIMEOUT)
            _wait_all_in_sync(cluster, topic)
    finally:
        _finish(cluster, workload, "rolling restart (SIGTERM) of all brokers")


def test_acks_all_with_one_isr_member_left(safe_cluster: BrokerCluster) -> None:
    """With the ISR down to the leader, acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is
    acknowledged; once the followers are back everything acknowledged is there."""
    from confluent_kafka import KafkaError, Producer

    cluster = safe_cluster
    topic = create_topic(cluster.bootstrap, "faults", 1)
    _wait_isr(cluster, topic, 0, 3)
    workload = Workload(cluster.bootstrap, topic, 1).start()
    try:
        workload.wait_acked(100)
        leader = _leader(cluster, topic)
        followers = [b for b in cluster.ids if b != leader]
        epochs = {b: cluster.broker_epoch(b) or 0 for b in followers}
        for follower in followers:
            assert cluster.stop(follower) == 0
        _wait_isr(cluster, topic, 0, 1)

        probe_errors: list[Any] = []
        probe = Producer(
            {"bootstrap.servers": cluster.bootstrap_of(leader), "acks": "all", "retries": 0, "linger.ms": 0}
        )
        try:
            probe.produce(topic, b"probe", partition=0, on_delivery=lambda e, _m: probe_errors.append(e))
            assert probe.flush(TIMEOUT) == 0
        finally:
            probe.close()
        assert len(probe_errors) == 1 and probe_errors[0] is not None
        assert probe_errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, probe_errors[0]

        # The workload keeps sending (its client retries NOT_ENOUGH_REPLICAS); nothing is answered.
        acked = workload.acked_count()
        workload.wait_sent(workload.sent + 100)
        assert workload.acked_count() == acked, "acknowledged with one ISR member of min.insync.replicas=2"

        for follower in followers:
            cluster.brokers[follower].start()
            cluster.wait_reregistered(follower, epochs[follower], TIMEOUT)
        _wait_isr(cluster, topic, 0, 3)
    finally:
        workload.wait_acked(workload.acked_count() + 100)
        workload.stop()
    report = verify(workload, cluster.live_bootstrap(), "acks=all with one ISR member left")
    assert report.ok, report
    assert workload.fatal is None


def test_unclean_election_loss_is_reported(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    """Unclean election on, ``min.insync.replicas=1``: the ISR shrinks to the leader, which then
    acknowledges alone; it dies and a stale replica is elected. The checker must report exactly the
    writes acknowledged by the lone leader as lost."""
    unsafe = {**SAFE, "min.insync.replicas": "1", "unclean.leader.election.enable": "true"}
    cluster = BrokerCluster(zookeeper.connect_string, tmp_path / "cluster", overrides=unsafe)
    try:
        cluster.start()
        topic = create_topic(cluster.bootstrap, "unclean", 1)
        _wait_isr(cluster, topic, 0, 3)
        workload = Workload(cluster.bootstrap, topic, 1)
        workload.start()
        workload.wait_acked(200)
        leader = _leader(cluster, topic)
        followers = [b for b in cluster.ids if b != leader]
        # what is acknowledged while the stale replica is in the ISR is in its log
        shared = workload.acked_count()
        for follower in followers:
            assert cluster.stop(follower) == 0
        _wait_isr(cluster, topic, 0, 1)
        workload.wait_acked(workload.acked_count() + 200)  # acknowledged by the leader alone
        cluster.kill(leader)
        workload.wait_sent(workload.sent + 50)
        cluster.wait_unregistered(leader, _bound(cluster))
        stale = followers[0]
        cluster.brokers[stale].start()  # the only live replica, out of the ISR: elected uncleanly
        cluster.wait_for_leader(
            topic, 0, lambda b: b == stale, _bound(cluster), "the stale replica as leader"
        )
        for other in (leader, followers[1]):
            cluster.brokers[other].start()
        _wait_isr(cluster, topic, 0, 3, timeout=TIMEOUT + 10)
        # no wait for more acknowledgements: the idempotent producer may rightly fail fatally
        # (its sequence numbers are ahead of the truncated log)
        workload.stop()
        report = verify(workload, cluster.live_bootstrap(), "unclean election (expected loss)")
        # What the stale replica had when it was stopped survives; the 200 or more writes that
        # the leader acknowledged alone are not on it and are lost.
        assert report.lost >= 200, f"an unclean election lost nothing? {report}"
        assert report.lost <= report.acknowledged - shared
    finally:
        cluster.close()


def test_network_partition_of_the_leader(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    """The leader is cut off from ZooKeeper and from its peers (followers' fetches, the
    controller's requests) by proxies on those links, while clients still reach it: its session
    expires, another replica is elected, and the isolated one, which still believes it leads,
    must not acknowledge anything. Then the links heal and it rejoins as a follower.

    Each broker reaches ZooKeeper through a proxy of its own and advertises, on an INTERNAL
    inter-broker listener, a proxy in front of that listener. Not cut: the isolated broker's own
    requests to the controller (AlterPartition), which share the controller's proxy with the
    third broker's; the controller fences them by partition epoch."""
    zk_host, _, zk_port = zookeeper.connect_string.split(",")[0].rpartition(":")
    cluster = BrokerCluster(zookeeper.connect_string, tmp_path / "cluster", overrides=SAFE)
    proxies: list[TcpProxy] = []
    zk_links: dict[int, TcpProxy] = {}
    peer_links: dict[int, TcpProxy] = {}
    for broker_id, proc in cluster.brokers.items():
        internal = free_port()
        zk_links[broker_id] = TcpProxy(zk_host, int(zk_port)).start()
        peer_links[broker_id] = TcpProxy("127.0.0.1", internal).start()
        proxies += [zk_links[broker_id], peer_links[broker_id]]
        proc.overrides.update(
            {
                "zookeeper.connect": f"{zk_links[broker_id].address}{cluster.chroot}",
                "listeners": f"PLAINTEXT://127.0.0.1:{proc.port},INTERNAL://127.0.0.1:{internal}",
                "advertised.listeners": (
                    f"PLAINTEXT://127.0.0.1:{proc.port},INTERNAL://{peer_links[broker_id].address}"
                ),
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
                "inter.broker.listener.name": "INTERNAL",
            }
        )
    try:
        cluster.start()
        topic, workload = _start(cluster)
        try:
            controller = cluster.controller_id()
            partition, leader = next(
                (p, _leader(cluster, topic, p))
                for p in range(PARTITIONS)
                if _leader(cluster, topic, p) != controller
            )
            old_epoch = cluster.broker_epoch(leader)
            assert old_epoch is not None
            zk_links[leader].cut()
            peer_links[leader].cut()
            try:
                cluster.wait_for_leader_change(topic, partition, leader, _bound(cluster))
                workload.wait_acked(workload.acked_count() + 300)  # through the new leaders
            finally:
                zk_links[leader].heal()
                peer_links[leader].heal()
            cluster.wait_reregistered(leader, old_epoch, _bound(cluster) + 10)
            _wait_all_in_sync(cluster, topic)
        finally:
            _finish(cluster, workload, "network partition of the leader from ZooKeeper and its peers")
    finally:
        cluster.close()
        for proxy in proxies:
            proxy.close()
