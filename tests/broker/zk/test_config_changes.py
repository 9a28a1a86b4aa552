"""ConfigChangeWatcher (Kafka's ZkConfigManager) against a real ZooKeeper: stored topic configs
applied at start, then each change notification in sequence order, once; other entity types
skipped; expired notifications purged after processing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from broker.cluster.config_changes import ConfigChangeWatcher, sequence_of
from broker.cluster.zk import paths
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from compat_tests.zookeeper import ZooKeeperServer
from tests.broker.zk.conftest import run
from tests.broker.zk.zk_admin_kit import connect_zk


def test_sequence_of() -> None:
    assert sequence_of("config_change_0000000042") == 42
    assert sequence_of("config_change_") is None
    assert sequence_of("isr_change_0000000001") is None


def test_changes_are_applied_in_order_once_and_purged_when_expired(connect: str) -> None:
    async def body() -> None:
        writer, reader = await connect_zk(connect), await connect_zk(connect)
        applied: list[tuple[str, dict[str, str]]] = []

        def apply(topic: str, config: Mapping[str, str]) -> None:
            applied.append((topic, dict(config)))

        now = [0]
        watcher = ConfigChangeWatcher(reader, apply, change_expiration_ms=1000, now_ms=lambda: now[0])
        try:
            await writer.set_or_create_entity_config("topics", "before", {"retention.ms": "1"})
            await watcher.start()
            assert applied == [("before", {"retention.ms": "1"})]
            applied.clear()
            watcher.processed.clear()
            await writer.change_entity_config("topics", "a", {"segment.ms": "100"})
            await writer.change_entity_config("brokers", "<default>", {"log.retention.ms": "5"})
            await writer.change_entity_config("topics", "b", {"segment.ms": "200"})
            while ("b", {"segment.ms": "200"}) not in applied:
                await asyncio.wait_for(watcher.processed.wait(), 10)
                watcher.processed.clear()
            assert applied == [("a", {"segment.ms": "100"}), ("b", {"segment.ms": "200"})]
            assert watcher.last_processed == max(
                s
                for n in await reader.get_children(paths.CONFIG_CHANGES) or []
                if (s := sequence_of(n)) is not None
            )
            # Far in the future, the next notification's pass purges every expired one it sees.
            now[0] = 10**15
            applied.clear()
            watcher.processed.clear()
            await writer.change_entity_config("topics", "a", {"segment.ms": "300"})
            while ("a", {"segment.ms": "300"}) not in applied:
                await asyncio.wait_for(watcher.processed.wait(), 10)
                watcher.processed.clear()
            assert applied == [("a", {"segment.ms": "300"})]  # nothing processed twice
            assert await reader.get_children(paths.CONFIG_CHANGES) == []
        finally:
            watcher.stop()
            await writer.close()
            await reader.close()

    run(body())


def test_broker_entities_apply_to_their_broker_only(connect: str) -> None:
    """``brokers/<default>`` and ``brokers/<own id>`` are applied (stored ones at start, default
    first), another broker's id is not (Kafka's BrokerConfigHandler)."""

    async def body() -> None:
        writer, reader = await connect_zk(connect), await connect_zk(connect)
        brokers: list[tuple[str, dict[str, str]]] = []

        def apply_broker(entity: str, config: Mapping[str, str]) -> None:
            brokers.append((entity, dict(config)))

        watcher = ConfigChangeWatcher(
            reader, lambda _t, _c: None, apply_broker=apply_broker, broker_entities=("<default>", "1")
        )
        try:
            await writer.set_or_create_entity_config("brokers", "1", {"log.segment.bytes": "2000000"})
            await watcher.start()
            assert brokers == [("<default>", {}), ("1", {"log.segment.bytes": "2000000"})]
            brokers.clear()
            watcher.processed.clear()
            await writer.change_entity_config("brokers", "2", {"log.retention.ms": "1"})
            await writer.change_entity_config("brokers", "<default>", {"log.retention.ms": "5"})
            while not brokers:
                await asyncio.wait_for(watcher.processed.wait(), 10)
                watcher.processed.clear()
            assert brokers == [("<default>", {"log.retention.ms": "5"})]
        finally:
            watcher.stop()
            await writer.close()
            await reader.close()

    run(body())


@pytest.fixture
def own_zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A server of the test's own, to kill and restart."""
    server = ZooKeeperServer(tmp_path / "zk").start()
    try:
        yield server
    finally:
        server.kill()


def test_changes_after_an_outage_are_applied(own_zookeeper: ZooKeeperServer) -> None:
    """kazoo drops every watch with the connection and fires each at once; the pass it starts
    fails while ZooKeeper is away. The watcher must pass again once the connection is back (the
    same session), or no later change would ever reach this broker."""
    connect = own_zookeeper.connect_string

    async def body() -> None:
        settings = ZkSettings(connect, session_timeout_ms=20000, request_timeout_ms=1000)
        # The writer's requests wait for its own reconnection (up to kazoo's back-off after a slow
        # restart under load); the reader's short deadline makes its pass fail during the outage.
        writer = await KafkaZkClient.connect(dataclasses.replace(settings, request_timeout_ms=40000))
        reader = await KafkaZkClient.connect(settings)
        await writer.create_top_level_paths()
        applied: list[tuple[str, dict[str, str]]] = []
        failed = asyncio.Event()

        def apply(topic: str, config: Mapping[str, str]) -> None:
            applied.append((topic, dict(config)))

        class FailureSeen(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "cannot read config changes" in record.getMessage():
                    failed.set()

        handler = FailureSeen()
        logging.getLogger("broker.cluster.config_changes").addHandler(handler)
        watcher = ConfigChangeWatcher(reader, apply)
        try:
            await watcher.start()
            session = reader.session_id
            await asyncio.to_thread(own_zookeeper.kill)
            await asyncio.wait_for(failed.wait(), 30)  # the watch fired and its pass failed
            await asyncio.to_thread(own_zookeeper.start)
            await writer.change_entity_config("topics", "after", {"segment.ms": "100"})
            while ("after", {"segment.ms": "100"}) not in applied:
                watcher.processed.clear()
                await asyncio.wait_for(watcher.processed.wait(), 40)
            assert reader.session_id == session  # the same session: no new-session trigger
        finally:
            logging.getLogger("broker.cluster.config_changes").removeHandler(handler)
            watcher.stop()
            await reader.close()
            await writer.close()

    run(body(), timeout=150)
