"""The ZooKeeper harness: a missing package is an error that says how to fix it, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import testing_zookeeper
from compat_tests import zookeeper as harness


def test_missing_package_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(testing_zookeeper.ZOOKEEPER_HOME_ENV, raising=False)
    monkeypatch.setattr(testing_zookeeper, "ZOOKEEPER_JAR", tmp_path / "absent.jar")
    with pytest.raises(harness.ZooKeeperMissing, match="install Debian's zookeeper package"):
        harness.ZooKeeperServer(tmp_path / "zk").start()
    assert not (tmp_path / "zk").exists()  # nothing written before the check


def test_zookeeper_home_without_a_jar_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    monkeypatch.setenv(testing_zookeeper.ZOOKEEPER_HOME_ENV, str(tmp_path))
    with pytest.raises(harness.ZooKeeperMissing, match="ZOOKEEPER_HOME"):
        testing_zookeeper.zookeeper_classpath()
    assert not testing_zookeeper.zookeeper_available()


def test_zookeeper_home_lib_jars_are_the_classpath(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    for name in ("zookeeper-3.8.4.jar", "zookeeper-jute-3.8.4.jar", "netty-handler-4.1.jar"):
        (tmp_path / "lib" / name).write_bytes(b"")
    monkeypatch.setenv(testing_zookeeper.ZOOKEEPER_HOME_ENV, str(tmp_path))
    if testing_zookeeper.shutil.which("java") is None:
        pytest.fail("java is needed by the ZooKeeper tests")
    names = [p.name for p in testing_zookeeper.zookeeper_classpath()]
    assert names == ["netty-handler-4.1.jar", "zookeeper-3.8.4.jar", "zookeeper-jute-3.8.4.jar"]


def test_server_modes(zookeeper: harness.ZooKeeperServer) -> None:
    assert harness.server_mode(zookeeper.client_port) == "standalone"
    assert harness.server_mode(harness.free_port()) is None
