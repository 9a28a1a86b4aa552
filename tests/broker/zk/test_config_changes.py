"""ConfigChangeWatcher (Kafka's ZkConfigManager) against a real ZooKeeper: stored topic configs
applied at start, then each change notification in sequence order, once; other entity types
skipped; expired notifications purged after processing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from broker.cluster.config_changes import ConfigChangeWatcher, sequence_of
from broker.cluster.zk import paths
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
