"""Replication between two broker processes in cluster mode (``BROOK_CLUSTER_MODE=1``), told their
roles over the wire as a ZooKeeper controller would: records produced by confluent-kafka to the
leader become visible to a consumer once the follower has them, the follower's segment files
end up identical to the leader's, and both processes stop cleanly (exit 0: no fetcher left)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.network.client import BrokerConnection, ClientConfig
from compat_tests.harness import BrokerProcess
from tests.broker.control_kit import Node, PState, leader_and_isr, update_metadata

TOPIC = "replicated"
T_ID = uuid.UUID("6e1d2c3b-4a59-4867-8f9e-0a1b2c3d4e5f")
TIMEOUT = 30.0


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[int, BrokerProcess]]:
    monkeypatch.setenv("BROOK_CLUSTER_MODE", "1")
    brokers = {i: BrokerProcess(tmp_path / f"b{i}", {"broker.id": str(i)}) for i in (1, 2)}
    try:
        for broker in brokers.values():
            broker.start()
        yield brokers
    finally:
        for broker in brokers.values():
            broker.kill()


async def assign(brokers: dict[int, BrokerProcess], states: list[PState]) -> None:
    nodes = [Node(i, "127.0.0.1", b.port) for i, b in brokers.items()]
    for broker_id, broker in brokers.items():
        conn = await BrokerConnection.open(
            broker_id, "127.0.0.1", broker.port, ClientConfig(client_id="controller")
        )
        try:
            ids = {TOPIC: T_ID}
            answer = (await conn.request(update_metadata(8, nodes, states, topic_ids=ids), version=8)).body
            assert answer.error_code == 0
            answer = (await conn.request(leader_and_isr(7, states, topic_ids=ids), version=7)).body
            assert answer.error_code == 0
            assert all(e.error_code == 0 for t in answer.topics for e in t.partition_errors)
        finally:
            conn.close()
            await conn.wait_closed()


def test_records_replicate_between_processes_byte_for_byte(pair: dict[int, BrokerProcess]) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    states = [PState(TOPIC, p, 1, 1, [1, 2], isr=[1, 2]) for p in range(2)]
    asyncio.run(assign(pair, states))
    bootstrap = pair[1].bootstrap
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 2})
    delivered: list[Any] = []
    for i in range(2000):
        producer.produce(
            TOPIC, b"value-%d" % i, partition=i % 2, on_delivery=lambda e, m: delivered.append(e)
        )
        producer.poll(0)
    assert producer.flush(TIMEOUT) == 0
    assert delivered == [None] * 2000
    # A consumer reads below the leader's high watermark only, which reaches the log end once
    # broker 2 has fetched everything: reading all 2000 records waits for the replication.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in (0, 1)])
        seen: set[bytes] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 2000 and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                seen.add(msg.value())
        assert seen == {b"value-%d" % i for i in range(2000)}
        marks = [consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=TIMEOUT)[1] for p in (0, 1)]
        assert marks == [1000, 1000]
    finally:
        consumer.close()
    for broker in pair.values():
        assert broker.stop() == 0, broker.log_tail()
    for p in (0, 1):
        logs = [
            b"".join(f.read_bytes() for f in sorted((b.data_dir / f"{TOPIC}-{p}").glob("*.log")))
            for b in (pair[1], pair[2])
        ]
        assert len(logs[0]) > 10_000 and logs[0] == logs[1]
        checkpoints = [
            (b.data_dir / f"{TOPIC}-{p}" / "leader-epoch-checkpoint").read_text() for b in pair.values()
        ]
        assert checkpoints[0] == checkpoints[1]
