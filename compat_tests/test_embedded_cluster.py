"""``broker.embedded_cluster``: N ZooKeeper-mode brokers in this process, on a real ZooKeeper
(its own, started from the installed package, or a given one), and nothing left after stop."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import broker
from broker import testing_zookeeper
from broker.admin_client import KafkaAdmin
from broker.config import ConfigError
from broker.embedding_cluster import EmbeddedCluster
from compat_tests.zookeeper import ZooKeeperServer, free_port


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """The first event loop of a process (libuv's one pipe) and the lazy imports happen once:
    the leak checks below compare after that."""
    with broker.embedded():
        pass


def test_own_zookeeper_and_brokers_leave_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    fds_before = open_descriptors()
    cluster = broker.embedded_cluster(brokers=3)
    with cluster:
        zookeeper = cluster.zookeeper
        assert zookeeper is not None and zookeeper.proc is not None
        zookeeper_process = zookeeper.proc
        data = {i: b.data_dir for i, b in cluster.brokers.items()}
        assert sorted(data) == [1, 2, 3]
        assert cluster.controller_id in (1, 2, 3)
        assert cluster.zookeeper_connect.startswith(f"{zookeeper.connect_string}/brook-")
        assert len(cluster.bootstrap_servers.split(",")) == 3
    assert zookeeper_process.poll() is not None  # the ZooKeeper process has exited
    assert cluster.zookeeper is None
    for path in data.values():
        assert not path.exists()
        assert not path.parent.exists()  # the cluster's temporary directory
    assert set(threading.enumerate()) == threads_before  # kazoo's threads included
    assert open_descriptors() == fds_before
    cluster.stop()  # idempotent


def test_controller_failover_and_a_restarted_broker(zookeeper: ZooKeeperServer) -> None:
    with broker.embedded_cluster(3, zookeeper.connect_string) as cluster:
        assert cluster.zookeeper is None  # given, not started
        leaders = cluster.create_topic("events", partitions=3, replication_factor=3)
        assert sorted(leaders) == [0, 1, 2]
        controller = cluster.controller_id
        cluster.brokers[controller].kill()
        new_controller = cluster.wait_for_brokers()
        assert new_controller != controller
        assert controller not in cluster.wait_for_leaders("events").values()
        cluster.brokers[controller].start()
        assert cluster.wait_for_brokers() == new_controller
        # The restarted broker catches up and is back in every partition's ISR.
        cluster.wait_for_leaders("events")
        state = cluster.describe(["events"]).topics["events"]
        assert all(controller in s.isr for s in state.values())


def test_admin_follows_the_controller_and_skips_a_dead_address(zookeeper: ZooKeeperServer) -> None:
    with broker.embedded_cluster(2, zookeeper.connect_string) as cluster:
        controller = cluster.controller_id
        other = next(b for i, b in cluster.brokers.items() if i != controller)
        dead = f"127.0.0.1:{free_port()}"
        with KafkaAdmin(f"{dead},{other.bootstrap_servers}") as admin:
            admin.create_topic("via-the-controller", partitions=2, replication_factor=2)
            assert admin.address == ("127.0.0.1", cluster.brokers[controller].port)  # moved there
        assert sorted(cluster.wait_for_leaders("via-the-controller")) == [0, 1]


def test_clusters_on_one_zookeeper_are_isolated(zookeeper: ZooKeeperServer) -> None:
    with (
        broker.embedded_cluster(1, zookeeper.connect_string) as first,
        broker.embedded_cluster(1, zookeeper.connect_string) as second,
    ):
        assert first.zookeeper_connect != second.zookeeper_connect
        first.create_topic("only-in-first", replication_factor=1)
        assert "only-in-first" not in second.describe().topics
        assert set(second.describe().brokers) == {1}


def test_a_given_chroot_is_used_as_it_is(zookeeper: ZooKeeperServer) -> None:
    connect = f"{zookeeper.connect_string}/mine"
    with broker.embedded_cluster(1, connect) as cluster:
        assert cluster.zookeeper_connect == connect


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="at least one broker"):
        EmbeddedCluster(0)
    with pytest.raises(ValueError, match=r"broker\.id"):
        EmbeddedCluster(3, None, {"broker.id": "7"})
    with pytest.raises(ConfigError, match=r"num\.partitons"):
        EmbeddedCluster(3, num_partitons=3)


def test_no_installed_zookeeper_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(testing_zookeeper.ZOOKEEPER_HOME_ENV, raising=False)
    monkeypatch.setattr(testing_zookeeper, "ZOOKEEPER_JAR", tmp_path / "absent.jar")
    cluster = EmbeddedCluster(3)
    threads_before = set(threading.enumerate())
    with pytest.raises(testing_zookeeper.ZooKeeperMissing, match="apt-get install zookeeper"):
        cluster.start()
    assert not cluster.running
    assert set(threading.enumerate()) == threads_before
