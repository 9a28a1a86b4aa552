"""The replica manager's transaction-marker listeners: every listener hears every marker, and one
that fails does not stop the others (nor the marker write that notifies them)."""

from __future__ import annotations

import logging

import pytest

from broker.replica.manager import ReplicaManager
from broker.types import TopicPartition


def _bare_manager() -> ReplicaManager:
    manager = ReplicaManager.__new__(ReplicaManager)
    manager._txn_marker_listeners = []
    return manager


def test_every_listener_hears_each_marker_even_after_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    manager = _bare_manager()
    heard: list[tuple[TopicPartition, int, int, bool, int]] = []

    def failing(*_: object) -> None:
        raise RuntimeError("boom")

    manager.add_txn_marker_listener(failing)
    manager.add_txn_marker_listener(lambda *args: heard.append(args))
    tp = TopicPartition("__consumer_offsets", 7)
    with caplog.at_level(logging.ERROR):
        manager.notify_txn_marker(tp, 42, 3, True, 100)
        manager.notify_txn_marker(tp, 42, 3, False, 101)
    assert heard == [(tp, 42, 3, True, 100), (tp, 42, 3, False, 101)]
    assert "transaction marker listener failed for __consumer_offsets-7" in caplog.text
