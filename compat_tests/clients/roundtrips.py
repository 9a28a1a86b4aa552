"""Produce a list of values and read them back with one stock client, given that client's
connection settings (TLS, SASL...): the round trip the security suites run per client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any


def confluent_roundtrip(
    settings: Mapping[str, object], topic: str, values: list[bytes], timeout: float
) -> list[bytes]:
    """confluent-kafka: produce ``values`` then consume them as group ``topic`` from earliest;
    the values read (stops after 30 s without a message)."""
    import confluent_kafka

    producer = confluent_kafka.Producer({**settings, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(timeout) == 0
    return confluent_consume(settings, topic, topic, len(values))


def confluent_consume(settings: Mapping[str, object], topic: str, group: str, count: int) -> list[bytes]:
    """confluent-kafka: up to ``count`` values of ``topic`` read as ``group`` from earliest (stops
    after 30 s without a message)."""
    import confluent_kafka

    consumer = confluent_kafka.Consumer({**settings, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        misses = 0
        while len(got) < count and misses < 60:
            message = consumer.poll(0.5)
            misses = misses + 1 if message is None else 0
            if message is not None and message.error() is None:
                got.append(message.value())
    finally:
        consumer.close()
    return got


def kafka_python_roundtrip(
    settings: Mapping[str, Any], topic: str, values: list[bytes], timeout: float
) -> list[bytes]:
    """kafka-python: the same round trip (the consumer gives up after 15 s without a record)."""
    import kafka

    producer = kafka.KafkaProducer(**settings)
    for value in values:
        producer.send(topic, value)
    producer.flush(timeout)
    producer.close(timeout)
    consumer = kafka.KafkaConsumer(
        topic, group_id=topic, auto_offset_reset="earliest", consumer_timeout_ms=15_000, **settings
    )
    try:
        return [record.value for _, record in zip(range(len(values)), consumer, strict=False)]
    finally:
        consumer.close()


async def aiokafka_consume(consumer: Any, count: int, timeout: float) -> list[bytes]:
    """Start an aiokafka consumer, read ``count`` values within ``timeout`` and stop it."""
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            async for record in consumer:
                got.append(record.value)
                if len(got) == count:
                    break
    finally:
        await consumer.stop()
    return got


def aiokafka_roundtrip(
    settings: Mapping[str, Any], topic: str, values: list[bytes], timeout: float
) -> list[bytes]:
    """aiokafka: the same round trip, on a loop of its own."""
    import aiokafka

    async def roundtrip() -> list[bytes]:
        producer = aiokafka.AIOKafkaProducer(**settings)
        await producer.start()
        try:
            for value in values:
                await producer.send(topic, value)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(topic, group_id=topic, auto_offset_reset="earliest", **settings)
        return await aiokafka_consume(consumer, len(values), timeout)

    return asyncio.run(roundtrip())
