"""Real ZooKeeper servers for Brook's tests: the launcher is :mod:`broker.testing_zookeeper` (shared
with the ``kafka_cluster`` fixture); this module adds the pytest fixtures and keeps the names the
tests import.

A missing package is an error that says how to install it, never a skip: ``make test`` installs it
when run as root, and CI does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.testing_ports import free_port
from broker.testing_zookeeper import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    ZOOKEEPER_JAR,
    ZooKeeperEnsemble,
    ZooKeeperMissing,
    ZooKeeperServer,
    four_letter_word,
    require_zookeeper,
    server_mode,
)

__all__ = [
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "ZOOKEEPER_JAR",
    "ZooKeeperEnsemble",
    "ZooKeeperMissing",
    "ZooKeeperServer",
    "four_letter_word",
    "free_port",
    "require_zookeeper",
    "server_mode",
    "zookeeper",
    "zookeeper_ensemble",
]


def _fresh_dir(tmp_path_factory: pytest.TempPathFactory | None, name: str) -> Path:
    if tmp_path_factory is not None:
        return tmp_path_factory.mktemp(name)
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One standalone ZooKeeper for the session; tests isolate themselves with their own chroot."""
    server = ZooKeeperServer(_fresh_dir(tmp_path_factory, "zookeeper")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def zookeeper_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """A 3-member quorum of its own (members get killed by the tests that use it)."""
    ensemble = ZooKeeperEnsemble(_fresh_dir(tmp_path_factory, "zk-ensemble"), 3).start()
    try:
        yield ensemble
    finally:
        ensemble.kill()
