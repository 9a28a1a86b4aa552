"""Topic set-up for tests (through confluent-kafka's admin client) and end-offset waits."""

from __future__ import annotations

import time
import uuid

from compat_tests.harness import wait_until


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=dict(configs or {}))], operation_timeout=15, request_timeout=15
    )
    futures[name].result(timeout=30)
    return name


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """The high watermark of each partition, as a consumer sees it."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"brook-compat-{uuid.uuid4().hex[:8]}"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), 15)[1] for p in range(partitions)]
    finally:
        consumer.close()


def wait_for_total(bootstrap: str, topic: str, partitions: int, total: int, timeout: float = 30.0) -> None:
    """Wait until the partitions hold ``total`` records (acks=0 gives no other signal)."""
    seen: list[int] = []

    def reached() -> bool:
        seen[:] = end_offsets(bootstrap, topic, partitions)
        return sum(seen) >= total

    started = time.monotonic()
    try:
        wait_until(reached, timeout, interval=0.1, message=f"{total} records in {topic}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; end offsets {seen} after {time.monotonic() - started:.1f} s") from None
