"""The plugin's fixtures with aiokafka (no pytest-asyncio needed: each test runs its own loop)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def round_trip(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id="aio-sample", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < len(values):
            message = await asyncio.wait_for(consumer.getone(), 20.0)
            got.append(message.value)
        return got
    finally:
        await consumer.stop()


def test_aiokafka_round_trip(kafka_bootstrap: str, kafka_topic: str) -> None:
    assert asyncio.run(round_trip(kafka_bootstrap, kafka_topic, [b"a", b"b", b"c"])) == [b"a", b"b", b"c"]


@pytest.mark.kafka_topic(partitions=2)
def test_aiokafka_sees_the_marker_partitions(kafka_bootstrap: str, kafka_topic: str) -> None:
    async def partitions() -> set[int]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            return await producer.partitions_for(kafka_topic)
        finally:
            await producer.stop()

    assert asyncio.run(partitions()) == {0, 1}
