"""Throttling on real loopback sockets: the response carries throttle_time_ms at once, then the
connection is muted (requests already read wait too); acks=0 produce is muted without an answer;
a consumer fetch over its quota is answered empty; a client without a quota is never muted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.network.connection import Connection
from broker.quotas.entity import QuotaEntity
from protocol import api as papi
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch
from tests.broker.conftest import make_broker
from tests.broker.test_network import Running, read_frame

TIMEOUT = 10.0


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(make_broker(tmp_path / "data"))
    try:
        yield r
    finally:
        r.stop()


def on_loop(running: Running, fn: Any) -> Any:
    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), running.loop).result(TIMEOUT)


def set_quota(running: Running, entity: QuotaEntity, values: dict[str, float]) -> None:
    def apply() -> None:
        running.broker.quota_service.quotas.set_entity(entity, values)
        running.broker.quota_service._publish()

    on_loop(running, apply)


def connection_of(running: Running) -> Connection:
    (conn,) = on_loop(running, lambda: list(running.broker.server.connections))  # type: ignore[union-attr]
    return conn  # type: ignore[no-any-return]


def create_topic(running: Running, name: str) -> None:
    sock = running.connect()
    sock.sendall(papi.encode_request(CreateTopicsRequest([CreatableTopic(name, 1, 1)], 5000), 5, 0))
    read_frame(sock)
    sock.close()


def produce_frame(topic: str, correlation: int, acks: int, client_id: str, size: int = 1000) -> bytes:
    batch = build_batch([Record(0, 0, None, b"v" * size)], base_timestamp=1)
    body = ProduceRequest(
        acks=acks, timeout_ms=1000, topic_data=[TopicProduceData(topic, [PartitionProduceData(0, batch)])]
    )
    return papi.encode_request(body, 9, correlation, client_id)


def test_the_answer_carries_the_throttle_and_the_next_request_waits(running: Running) -> None:
    # A request-time quota no request can stay under: every request is throttled (at most one
    # window, 1 s, as Kafka caps request-time throttles).
    set_quota(running, QuotaEntity(None, "busy"), {"request_percentage": 1e-9})
    sock = running.connect()
    sock.sendall(
        papi.encode_request(MetadataRequest(topics=[]), 9, 1, "busy")
        + papi.encode_request(MetadataRequest(topics=[]), 9, 2, "busy")
    )
    correlation, first = papi.decode_response(read_frame(sock), 3, 9)
    assert correlation == 1 and 0 < first.throttle_time_ms <= 1000
    # The connection is muted, and the request read with the first waits for the mute to end.
    conn = connection_of(running)
    held = on_loop(running, lambda: (conn.throttled, conn.reading, len(conn._held)))
    assert held in ((True, False, 1), (False, True, 0))  # (False...): the mute already ended
    correlation, second = papi.decode_response(read_frame(sock), 3, 9)
    assert correlation == 2 and second.throttle_time_ms > 0
    sock.close()


def test_a_client_without_a_quota_is_never_muted(running: Running) -> None:
    set_quota(running, QuotaEntity(None, "busy"), {"request_percentage": 1e-9})
    sock = running.connect()
    for correlation in range(5):
        sock.sendall(papi.encode_request(MetadataRequest(topics=[]), 9, correlation, "free"))
        _, body = papi.decode_response(read_frame(sock), 3, 9)
        assert body.throttle_time_ms == 0
    conn = connection_of(running)
    assert not on_loop(running, lambda: conn.throttled)
    sock.close()


def test_acks_0_produce_over_its_byte_rate_is_muted_without_an_answer(running: Running) -> None:
    create_topic(running, "q0")
    set_quota(running, QuotaEntity(None, "p0"), {"producer_byte_rate": 1.0})
    sock = running.connect()
    # 20 KB against 1 B/s (10 s windows: 10 B allowed): throttled. No response for acks=0.
    sock.sendall(produce_frame("q0", 1, 0, "p0", size=20_000))
    conn = connection_of(running)

    async def muted() -> None:
        while not conn.throttled:
            await asyncio.sleep(0.01)

    asyncio.run_coroutine_threadsafe(asyncio.wait_for(muted(), TIMEOUT), running.loop).result(TIMEOUT + 1)
    quotas = running.broker.quota_service.quotas
    assert quotas.produce.throttle_count == 1 and quotas.request.throttle_count == 0
    assert on_loop(running, lambda: conn.reading) is False
    sock.close()


def test_a_consumer_fetch_over_its_quota_is_answered_empty(running: Running) -> None:
    create_topic(running, "qf")
    sock = running.connect()
    for correlation in range(3):
        sock.sendall(produce_frame("qf", correlation, 1, "producer", size=5000))
        read_frame(sock)
    set_quota(running, QuotaEntity(None, "c"), {"consumer_byte_rate": 100.0})
    topic_id = running.broker.metadata.topic("qf").topic_id  # type: ignore[union-attr]

    def fetch(correlation: int) -> Any:
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=1 << 20,
            topics=[
                FetchTopic(
                    topic="qf",
                    topic_id=topic_id,
                    partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 20)],
                )
            ],
        )
        sock.sendall(papi.encode_request(request, 12, correlation, "c"))
        return papi.decode_response(read_frame(sock), 1, 12)[1]

    # 100 B/s over 10 s windows allows 1,000 bytes: the first fetch of 15 KB goes over it.
    first = fetch(1)
    assert first.throttle_time_ms > 0 and first.responses == []
    quotas = running.broker.quota_service.quotas
    assert quotas.fetch.throttle_count == 1
    # Its bytes were taken back: the rate holds nothing for this client.
    ((tags, rate),) = quotas.fetch.rates.items()
    assert tags == ("", "c") and rate.total_and_window(quotas.now_ms())[0] == 0
    sock.close()


def test_quota_rates_and_throttle_times_are_in_the_metrics(running: Running) -> None:
    from broker.metrics.collector import BrokerCollector

    create_topic(running, "qm")
    set_quota(running, QuotaEntity(None, "pm"), {"producer_byte_rate": 1.0})
    sock = running.connect()
    sock.sendall(produce_frame("qm", 1, 1, "pm", size=20_000))
    _, response = papi.decode_response(read_frame(sock), 0, 9)
    sock.close()
    assert response.throttle_time_ms > 0
    families = {
        f.name: f.samples
        for f in on_loop(running, lambda: list(BrokerCollector(running.broker)._quota_metrics()))
    }
    ((labels, rate),) = [(s.labels, s.value) for s in families["kafka_server_produce_byte_rate"]]
    assert labels == {"user": "", "client_id": "pm"} and rate > 1.0
    ((labels, throttle),) = [(s.labels, s.value) for s in families["kafka_server_produce_throttle_time"]]
    assert labels == {"user": "", "client_id": "pm"} and throttle == response.throttle_time_ms
