"""Fixtures: a real broker process per test module (or per test when it must restart)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.cluster import cluster, fresh_cluster  # noqa: F401 - fixtures
from compat_tests.harness import BrokerProcess
from compat_tests.zookeeper import zookeeper, zookeeper_ensemble  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker shared by the tests of one module."""
    proc = BrokerProcess(tmp_path_factory.mktemp("broker") / "data").start()
    try:
        yield proc
    finally:
        proc.kill() if not proc.alive() else proc.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of its own, for tests that restart, kill or reconfigure it."""
    proc = BrokerProcess(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.kill()
