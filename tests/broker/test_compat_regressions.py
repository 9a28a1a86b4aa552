"""Regressions found by the compatibility tests with stock clients (compat_tests/), pinned here
at the unit level over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.metadata_response import MetadataResponse
from protocol.records import ZSTD, Record, build_batch, iter_legacy_messages
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch, create, produce
from tests.broker.test_network import Running, read_frame

# What librdkafka 2.16 sends for AdminClient.list_topics(): a Metadata v12 request for every
# topic whose body is followed by three more bytes. Kafka ignores them and answers.
LIBRDKAFKA_METADATA_V12_ALL_TOPICS = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(make_broker(tmp_path / "data"))
    try:
        yield r
    finally:
        r.stop()


def test_bytes_after_a_request_body_are_ignored(running: Running) -> None:
    with running.connect() as sock:
        request = LIBRDKAFKA_METADATA_V12_ALL_TOPICS
        sock.sendall(struct.pack(">i", len(request)) + request)
        frame = read_frame(sock)
    correlation_id = struct.unpack_from(">i", frame, 0)[0]
    assert correlation_id == 3
    # Response header v1 (flexible): correlation id, then an empty tagged-field section.
    response = MetadataResponse.decode(frame[5:], 12)
    assert [b.node_id for b in response.brokers] == [running.broker.node_id]


def test_decode_request_is_strict_unless_asked() -> None:
    from protocol.exceptions import TrailingBytesError

    with pytest.raises(TrailingBytesError):
        papi.decode_request(LIBRDKAFKA_METADATA_V12_ALL_TOPICS)
    request = papi.decode_request(LIBRDKAFKA_METADATA_V12_ALL_TOPICS, allow_trailing=True)
    assert request.body.topics is None


def _closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_requests_before_a_bad_size_prefix_are_answered_then_closed(running: Running) -> None:
    """Kafka reads one request at a time: a good request followed by garbage in the same read is
    answered before the garbage (a size above socket.request.max.bytes) closes the connection."""
    good = papi.encode_request(ApiVersionsRequest(), 0, 41)
    with running.connect() as sock:
        sock.sendall(good + b"GET / HTTP/1.1\r\n\r\n")
        response = read_frame(sock)
        assert struct.unpack_from(">ih", response, 0) == (41, 0)
        assert _closed(sock)


def test_long_poll_before_a_malformed_request_is_answered_then_closed(running: Running) -> None:
    async def create() -> None:
        running.broker.topics.create("waiting", 1, 1)

    asyncio.run_coroutine_threadsafe(create(), running.loop).result(10)
    fetch = FetchRequest(
        max_wait_ms=300,
        min_bytes=1,
        topics=[FetchTopic("waiting", partitions=[FetchPartition(0, partition_max_bytes=1024)])],
    )
    garbage = struct.pack(">i", 8) + struct.pack(">hhi", 9999, 0, 2)  # an api key Kafka does not know
    with running.connect() as sock:
        started = time.monotonic()
        sock.sendall(papi.encode_request(fetch, 4, 42) + garbage)
        response = read_frame(sock)
        assert struct.unpack_from(">i", response, 0) == (42,)
        assert time.monotonic() - started >= 0.25, "the long poll was answered before its time"
        assert _closed(sock)


# -- down-conversion for v0-v3 fetches (kafka-python api_version=(0, 10, 1), librdkafka fallback) --


def _old_fetch(call: Caller, topic: str, offset: int, version: int = 2) -> object:
    wanted = FetchPartition(0, fetch_offset=offset, partition_max_bytes=1 << 20)
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[FetchTopic(topic, partitions=[wanted])],
    )
    return call(request, version).responses[0].partitions[0]


def test_old_fetch_stops_before_a_zstd_batch_then_reports_it(call: Caller) -> None:
    """A zstd batch cannot be down-converted. Kafka sends what comes before it, then answers
    UNSUPPORTED_COMPRESSION_TYPE; an empty answer instead made old consumers spin at the offset."""
    create(call, "mixed")
    produce(call, "mixed", 0, batch([b"plain"]))
    record = Record(0, 0, b"k", b"z" * 100, [])
    zstd = build_batch([record], base_timestamp=1_700_000_000_000, compression=ZSTD)
    produce(call, "mixed", 0, zstd)
    first = _old_fetch(call, "mixed", 0)
    assert first.error_code == 0  # type: ignore[attr-defined]
    messages = list(iter_legacy_messages(first.records))  # type: ignore[attr-defined]
    assert [(m.offset, m.value) for m in messages] == [(0, b"plain")]
    second = _old_fetch(call, "mixed", 1)
    assert second.error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE  # type: ignore[attr-defined]


def test_old_fetch_of_a_zstd_topic_is_refused(call: Caller) -> None:
    create(call, "zstd-topic")
    call.broker.topics.set_configs("zstd-topic", {"compression.type": "zstd"})
    produce(call, "zstd-topic", 0, batch([b"x"]))
    refused = _old_fetch(call, "zstd-topic", 0, version=9)
    assert refused.error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE  # type: ignore[attr-defined]
    assert _old_fetch(call, "zstd-topic", 0, version=10).error_code == 0  # type: ignore[attr-defined]


def test_old_fetch_without_down_conversion_is_refused(call: Caller) -> None:
    create(call, "no-down")
    call.broker.topics.set_configs("no-down", {"message.downconversion.enable": "false"})
    produce(call, "no-down", 0, batch([b"x"]))
    refused = _old_fetch(call, "no-down", 0, version=3)
    assert refused.error_code == ErrorCode.UNSUPPORTED_VERSION  # type: ignore[attr-defined]
    assert _old_fetch(call, "no-down", 0, version=4).error_code == 0  # type: ignore[attr-defined]
