"""Restart on the same data: stop the broker (SIGTERM, and in another test SIGKILL while a producer
is writing), start it again: every acknowledged message is there, and topics, topic ids and
configs persist. Clients that stayed up reconnect and carry on."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import BY_NAME, REFERENCE
from compat_tests.clients.model import Msg
from compat_tests.harness import BrokerProcess, wait_until

CONFIGS = {"retention.ms": "123456789", "max.message.bytes": "500000", "segment.bytes": "1048576"}


def _describe(bootstrap: str, topics: list[str]) -> dict[str, tuple[str, int, dict[str, str]]]:
    """Topic id, partition count and overridden configs of each topic (confluent-kafka admin)."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection(topics))
    out = {}
    for topic in topics:
        desc = described[topic].result(timeout=30)
        resource = ConfigResource(ResourceType.TOPIC, topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        overrides = {
            name: entry.value
            for name, entry in configs.items()
            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }
        out[topic] = (str(desc.topic_id), len(desc.partitions), overrides)
    return out


def test_restart_after_sigterm(fresh_broker: BrokerProcess) -> None:
    broker = fresh_broker.start()
    bootstrap = broker.bootstrap
    topics = [create_topic(bootstrap, unique_topic(f"keep{i}"), 3, CONFIGS) for i in range(2)]
    compacted = create_topic(bootstrap, unique_topic("keepc"), 1, {"cleanup.policy": "compact"})
    before = _describe(bootstrap, [*topics, compacted])

    # Acknowledged writes from several clients, acks=all and acks=1.
    acked: dict[str, list[tuple[int, int, bytes]]] = {t: [] for t in topics}
    for name, acks, topic in [
        ("confluent-kafka", "all", topics[0]),
        ("kafka-python", "1", topics[0]),
        ("aiokafka", "all", topics[1]),
        ("kafka-python", "all", topics[1]),
    ]:
        msgs = [Msg(f"{name}-{acks}-{i}".encode(), key=f"k{i}".encode()) for i in range(200)]
        reports = BY_NAME[name].produce(bootstrap, topic, msgs, acks=acks)
        for msg, ack in zip(msgs, reports, strict=True):
            assert ack is not None and ack.offset is not None
            acked[topic].append((ack.partition, ack.offset, msg.value))
    REFERENCE.produce(bootstrap, compacted, [Msg(b"v1", key=b"a"), Msg(b"v2", key=b"b")], acks="all")

    assert broker.stop() == 0, broker.log_tail()
    assert "stopped cleanly" in broker.log_text()
    broker.start()

    assert _describe(bootstrap, [*topics, compacted]) == before
    for topic in topics:
        records = REFERENCE.consume(bootstrap, topic, [0, 1, 2])
        found = {(r.partition, r.offset): r.value for r in records}
        assert len(records) == len(acked[topic]) == 400
        for partition, offset, value in acked[topic]:
            assert found.get((partition, offset)) == value, f"{topic} [{partition}] @{offset}"
    assert [r.value for r in REFERENCE.consume(bootstrap, compacted, [0])] == [b"v1", b"v2"]
    # Writing goes on after the last offsets.
    (ack,) = REFERENCE.produce(bootstrap, topics[0], [Msg(b"after", partition=0)], acks="all")
    assert ack is not None and ack.offset == sum(1 for p, _, _ in acked[topics[0]] if p == 0)


def test_restart_after_sigkill_while_producing(fresh_broker: BrokerProcess) -> None:
    """An idempotent producer keeps writing while the broker is killed and restarted: everything
    acknowledged before the kill survives, and after the restart the producer's retries are
    recognised (producer state rebuilt from the log), so each record is in the log once."""
    from confluent_kafka import Producer

    broker = fresh_broker.start()
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("kill"), partitions=3, configs=CONFIGS)
    before = _describe(bootstrap, [topic])

    acked: list[tuple[int, int, bytes]] = []
    errors: list[Any] = []
    lock = threading.Lock()

    def delivered(err: Any, msg: Any) -> None:
        with lock:
            if err is not None:
                errors.append(err)
            else:
                acked.append((msg.partition(), msg.offset(), msg.value()))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "reconnect.backoff.max.ms": 200,
            # Shown only when the test fails (pytest captures it): what the producer waited for.
            "debug": "eos,protocol,broker",
        }
    )
    total = 6000
    stop = threading.Event()

    def produce() -> None:
        for i in range(total):
            if stop.is_set():
                return
            while True:
                try:
                    producer.produce(topic, f"m{i}".encode(), key=f"k{i}".encode(), on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if i % 100 == 99:
                time.sleep(0.05)  # about 3 s of writing, spread over the kill and the restart

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    try:

        def enough_acked() -> bool:
            producer.poll(0.05)  # serve delivery reports even once the writer is done
            return len(acked) >= 1500

        try:
            wait_until(enough_acked, 60, message="1500 acknowledged records")
        except AssertionError as exc:
            detail = f"{len(acked)} acknowledged; broker log:\n{broker.log_tail()}"
            raise AssertionError(f"{exc}; {detail}") from None
        broker.kill()
        with lock:
            acked_before_kill = list(acked)
        broker.start()
        writer.join(120)
        assert not writer.is_alive(), "the producer did not finish"
        assert producer.flush(60) == 0, "records still undelivered 60 s after the restart"
    finally:
        stop.set()
        writer.join(5)
    assert not errors, errors[:5]
    assert len(acked) == total
    assert len(acked_before_kill) < total, "everything was written before the kill: nothing was tested"

    records = REFERENCE.consume(bootstrap, topic, [0, 1, 2])
    found = {(r.partition, r.offset): r.value for r in records}
    for partition, offset, value in acked_before_kill:
        assert found.get((partition, offset)) == value, f"acknowledged, then lost: [{partition}] @{offset}"
    counts = Counter(r.value for r in records)
    assert counts == Counter(f"m{i}".encode() for i in range(total)), {
        v: n for v, n in counts.items() if n != 1
    }
    for partition, offset, value in acked:
        assert found.get((partition, offset)) == value
    assert _describe(bootstrap, [topic]) == before
    assert "Brook broker" in broker.log_text()
