"""Client quotas with real clients against a broker process: a confluent-kafka producer and
consumer over their byte rates run at them (measured rate within 20 %), report the broker's
throttle time, and do not slow a client without a quota; quotas set with ``brook configs``
(kafka-configs.sh) survive a restart.

The broker runs with ``quota.window.num=3`` (windows of 1 s): Kafka's rate counts at least
``samples - 1`` windows, so a fresh client may first send that many seconds of its quota at once.
With the default 11 samples that burst is 10 s of quota and a few seconds of traffic would measure
it, not the throttling; with 3 it is 2 s, and the measurement starts after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.admin import unique_topic
from compat_tests.harness import BrokerProcess
from compat_tests.test_cli import ok

QUOTA = 256 * 1024
VALUE = b"q" * 1024
#: Seconds of traffic measured after the burst a fresh rate allows.
WARMUP_S = 2.5
MEASURE_S = 4.0
OVERRIDES = {"quota.window.num": "2", "quota.window.size.seconds": "1", "num.partitions": "1"}


@pytest.fixture(scope="module")
def quota_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("quotas") / "data", OVERRIDES).start()
    try:
        yield proc
    finally:
        proc.kill() if not proc.alive() else proc.stop()


def set_quota(bootstrap: str, *entity: str, config: str) -> str:
    return ok("configs", "--bootstrap-server", bootstrap, "--alter", *entity, "--add-config", config)


class Stats:
    """librdkafka's statistics: the largest broker throttle time seen (``brokers.*.throttle``)."""

    def __init__(self) -> None:
        self.max_throttle_ms = 0

    def __call__(self, raw: str) -> None:
        for broker in json.loads(raw).get("brokers", {}).values():
            self.max_throttle_ms = max(self.max_throttle_ms, int(broker.get("throttle", {}).get("max", 0)))


def produce_for(
    bootstrap: str, topic: str, client_id: str, seconds: float, batch_size: int = 65536
) -> tuple[list[tuple[float, int]], Stats]:
    """Produce 1 KiB values as fast as the producer may for ``seconds``; (delivery time, bytes)
    of every acknowledged value, and the statistics."""
    from confluent_kafka import Producer

    stats = Stats()
    delivered: list[tuple[float, int]] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:  # the values purged at the end fail; they were never sent
            delivered.append((time.monotonic(), len(msg.value())))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "acks": 1,
            "linger.ms": 5,
            "compression.type": "none",
            "statistics.interval.ms": 200,
            "stats_cb": stats,
            # Requests of 64 KiB, a quarter of a second of quota: librdkafka's default of 1 MB
            # would move four seconds of quota per request, too coarse to measure over seconds.
            "batch.size": batch_size,
            "queue.buffering.max.kbytes": 4 * batch_size // 1024,
        }
    )
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            producer.produce(topic, VALUE, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
            continue
        producer.poll(0)
    producer.purge(in_queue=True, in_flight=False)  # what is still queued was never sent
    assert producer.flush(30) == 0
    producer.poll(0.5)  # a last statistics callback
    return delivered, stats


def rate_after(events: list[tuple[float, int]], start: float, warmup: float) -> float:
    """Bytes per second of the events after ``start + warmup``: the least-squares slope of the
    bytes delivered so far, sampled every 50 ms. Kafka's rate lets a throttled client move in
    steps (a sample holding a burst leaves the window at once), so the bytes of any one span
    depend on where the steps fall; the slope over the whole measurement does not."""
    begin = start + warmup
    later = sorted((t, n) for t, n in events if t >= begin)
    assert len(later) >= 2, f"only {len(later)} events after the warm-up"
    end = later[-1][0]
    points: list[tuple[float, float]] = []
    total, index, now = 0.0, 0, begin
    while now <= end:
        while index < len(later) and later[index][0] <= now:
            total += later[index][1]
            index += 1
        points.append((now - begin, total))
        now += 0.05
    mean_t = sum(t for t, _ in points) / len(points)
    mean_b = sum(b for _, b in points) / len(points)
    covariance = sum((t - mean_t) * (b - mean_b) for t, b in points)
    variance = sum((t - mean_t) ** 2 for t, _ in points)
    return covariance / variance


def test_a_producer_over_its_byte_rate_is_throttled_to_it(quota_broker: BrokerProcess) -> None:
    bootstrap = quota_broker.bootstrap
    topic = unique_topic("quota-produce")
    ok("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    assert (
        set_quota(
            bootstrap,
            "--entity-type",
            "clients",
            "--entity-name",
            "slow-producer",
            config=f"producer_byte_rate={QUOTA}",
        )
        == "Completed updating config for client slow-producer.\n"
    )

    start = time.monotonic()
    delivered, stats = produce_for(bootstrap, topic, "slow-producer", WARMUP_S + MEASURE_S)
    rate = rate_after(delivered, start, WARMUP_S)
    assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, (
        f"{rate / 1024:.0f} KiB/s against a quota of {QUOTA // 1024} KiB/s"
    )
    assert stats.max_throttle_ms > 0  # the broker's throttle_time_ms reached the client

    # Another client id on the same broker has no quota and is not slowed.
    start = time.monotonic()
    free, free_stats = produce_for(bootstrap, topic, "free-producer", 2.0)
    free_rate = sum(n for _, n in free) / (free[-1][0] - start)
    assert free_rate > 3 * QUOTA, f"{free_rate / 1024:.0f} KiB/s"
    assert free_stats.max_throttle_ms == 0


def test_a_consumer_over_its_byte_rate_is_throttled_to_it(quota_broker: BrokerProcess) -> None:
    from confluent_kafka import Consumer

    bootstrap = quota_broker.bootstrap
    topic = unique_topic("quota-fetch")
    ok("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    # Batches of 16 KiB: a fetch returns at least one whole batch, whatever its size limit.
    produced, _ = produce_for(bootstrap, topic, "filler", 1.0, batch_size=16384)
    while sum(n for _, n in produced) < 4 * 1024 * 1024:
        more, _ = produce_for(bootstrap, topic, "filler", 1.0, batch_size=16384)
        produced += more
    set_quota(bootstrap, "--client", "slow-consumer", config=f"consumer_byte_rate={QUOTA}")

    stats = Stats()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "slow-consumer",
            "group.id": unique_topic("quota-group"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "statistics.interval.ms": 200,
            "stats_cb": stats,
            # Responses of 16 KiB. A fetch that would go over the quota is answered empty, and
            # the client waits as if it had received it (Kafka's throttling): each such wait
            # costs up to one response's worth of quota, a small share with small responses.
            # librdkafka's default of 50 MB would be one step for the whole test.
            "fetch.max.bytes": 16 * 1024,
            "max.partition.fetch.bytes": 16 * 1024,
            "message.max.bytes": 16 * 1024,
        }
    )
    consumed: list[tuple[float, int]] = []
    try:
        consumer.subscribe([topic])
        start = None
        while start is None or time.monotonic() < start + WARMUP_S + MEASURE_S:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            now = time.monotonic()
            start = start or now
            consumed.append((now, len(msg.value())))
        consumer.poll(0.5)
    finally:
        consumer.close()
    assert start is not None
    rate = rate_after(consumed, start, WARMUP_S)
    assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, (
        f"{rate / 1024:.0f} KiB/s against a quota of {QUOTA // 1024} KiB/s"
    )
    assert stats.max_throttle_ms > 0


def test_kafka_python_sees_the_throttle_time(quota_broker: BrokerProcess) -> None:
    from kafka import KafkaProducer

    bootstrap = quota_broker.bootstrap
    topic = unique_topic("quota-kafka-python")
    ok("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    set_quota(bootstrap, "--client", "kp-producer", config="producer_byte_rate=20000")
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="kp-producer", linger_ms=5)
    try:
        for _ in range(400):  # 400 KiB against 20 KB/s: throttled once the 2 s burst is spent
            producer.send(topic, VALUE)
        producer.flush(timeout=60)
        # kafka-python's connection metrics: ``throttle-time-max`` of the responses' throttle_time_ms.
        maxima = [m["throttle-time-max"] for m in producer.metrics().values() if "throttle-time-max" in m]
        assert maxima and max(maxima) > 0, producer.metrics()
    finally:
        producer.close(timeout=5)


def test_quotas_set_with_brook_configs_survive_a_restart(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data", OVERRIDES).start()
    try:
        bootstrap = proc.bootstrap
        set_quota(bootstrap, "--user", "alice", config="producer_byte_rate=1024,consumer_byte_rate=2048")
        set_quota(bootstrap, "--user", "alice", "--client", "app", config="request_percentage=50")
        assert set_quota(
            bootstrap, "--entity-type", "clients", "--entity-default", config="producer_byte_rate=65536"
        ) == ("Completed updating default config for clients in the cluster.\n")
        before = ok("configs", "--bootstrap-server", bootstrap, "--describe", "--entity-type", "users")
        alice = "Quota configs for user-principal 'alice' are"
        assert before == f"{alice} consumer_byte_rate=2048.0, producer_byte_rate=1024.0\n"
        proc.stop()
        proc.start()
        assert (
            ok("configs", "--bootstrap-server", bootstrap, "--describe", "--entity-type", "users") == before
        )
        assert ok(
            "configs", "--bootstrap-server", bootstrap, "--describe", "--user", "alice", "--client", "app"
        ) == ("Quota configs for user-principal 'alice', client-id 'app' are request_percentage=50.0\n")
        assert ok("configs", "--bootstrap-server", bootstrap, "--describe", "--client-defaults") == (
            "Quota configs for the default client-id are producer_byte_rate=65536.0\n"
        )
        # Applied at start too: a client without a quota of its own gets the default's.
        topic = unique_topic("quota-restart")
        ok("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
        _, stats = produce_for(bootstrap, topic, "anyone", 3.0)
        assert stats.max_throttle_ms > 0
    finally:
        proc.kill()
