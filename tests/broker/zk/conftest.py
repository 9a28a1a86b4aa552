"""Fixtures for the ZooKeeper layer: the real server from compat_tests/zookeeper.py, one chroot per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from compat_tests.zookeeper import ZooKeeperServer, zookeeper, zookeeper_ensemble  # noqa: F401

T = TypeVar("T")
TEST_TIMEOUT = 30.0


def run(coro: Coroutine[Any, Any, T], timeout: float = TEST_TIMEOUT) -> T:
    """Run one test's coroutine on a fresh loop, with a deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def chroot() -> str:
    """A chroot of the test's own on the shared server: tests never see each other's znodes."""
    return f"/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def connect(zookeeper: ZooKeeperServer, chroot: str) -> str:  # noqa: F811
    return f"{zookeeper.connect_string}{chroot}"
