"""The ZooKeeper harness: a missing package is an error that says how to fix it, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_tests import zookeeper as harness


def test_missing_package_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(harness, "ZOOKEEPER_JAR", tmp_path / "absent.jar")
    with pytest.raises(harness.ZooKeeperMissing, match="install Debian's zookeeper package"):
        harness.ZooKeeperServer(tmp_path / "zk").start()


def test_server_modes(zookeeper: harness.ZooKeeperServer) -> None:
    assert harness.server_mode(zookeeper.client_port) == "standalone"
    assert harness.server_mode(harness.free_port()) is None
