"""The network layer over real loopback sockets, with the broker's event loop in a thread."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse
from protocol.messages.metadata_request import MetadataRequest
from tests.broker.conftest import make_broker


class Running:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(broker.start(), self.loop).result(10)
        self.port = broker.bound_ports["PLAINTEXT"]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.stop(2), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(make_broker(tmp_path / "data"))
    try:
        yield r
    finally:
        r.stop()


def read_frame(sock: socket.socket) -> bytes:
    head = _exact(sock, 4)
    return _exact(sock, struct.unpack(">i", head)[0])


def _exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_pipelined_requests_are_answered_in_order(running: Running) -> None:
    sock = running.connect()
    frames = b"".join(
        papi.encode_request(
            MetadataRequest(topics=[]) if i % 2 else ApiVersionsRequest(), 1 if i % 2 else 0, i
        )
        for i in range(50)
    )
    sock.sendall(frames)
    for i in range(50):
        api_key = 3 if i % 2 else 18
        correlation, _ = papi.decode_response(read_frame(sock), api_key, 1 if i % 2 else 0)
        assert correlation == i
    sock.close()


def test_unknown_api_versions_version_gets_a_v0_error_body(running: Running) -> None:
    sock = running.connect()
    # ApiVersions v99: header v2 (flexible), body unknown to the broker.
    header = struct.pack(">hhi", 18, 99, 7) + struct.pack(">h", 3) + b"cli" + b"\x00"
    sock.sendall(struct.pack(">i", len(header) + 3) + header + b"\x01\x01\x00")
    payload = read_frame(sock)
    (correlation,) = struct.unpack_from(">i", payload, 0)
    body = ApiVersionsResponse.decode(payload[4:], 0)
    assert correlation == 7
    assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert [(k.api_key, k.min_version, k.max_version) for k in body.api_keys] == [(18, 0, 4)]
    # The connection stays usable: the client retries with a version we know.
    sock.sendall(papi.encode_request(ApiVersionsRequest(), 0, 8))
    correlation, body = papi.decode_response(read_frame(sock), 18, 0)
    assert correlation == 8 and body.error_code == 0
    sock.close()


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack(">i", 2**31 - 1) + b"xx",  # far above socket.request.max.bytes
        struct.pack(">i", -5),
        struct.pack(">i", 8) + struct.pack(">hhi", 999, 0, 1),  # unknown api key
        struct.pack(">i", 8) + struct.pack(">hhi", 3, 77, 1),  # unsupported Metadata version
        struct.pack(">i", 12) + b"\xff" * 12,  # garbage
        struct.pack(">i", 6) + struct.pack(">hhh", 3, 1, 0),  # truncated header
    ],
    ids=["huge", "negative", "unknown-api", "bad-version", "garbage", "truncated"],
)
def test_bad_input_closes_only_that_connection(running: Running, payload: bytes) -> None:
    bad = running.connect()
    good = running.connect()
    bad.sendall(payload)
    assert closed_by_peer(bad)
    good.sendall(papi.encode_request(ApiVersionsRequest(), 0, 1))
    correlation, body = papi.decode_response(read_frame(good), 18, 0)
    assert correlation == 1 and body.error_code == 0
    good.close()
    bad.close()


def test_client_disconnecting_mid_request_is_harmless(running: Running) -> None:
    sock = running.connect()
    request = papi.encode_request(MetadataRequest(topics=None), 12, 3)
    sock.sendall(request[: len(request) // 2])
    sock.close()
    other = running.connect()
    other.sendall(papi.encode_request(ApiVersionsRequest(), 0, 1))
    assert papi.decode_response(read_frame(other), 18, 0)[0] == 1
    other.close()


def test_stop_writes_the_clean_shutdown_marker(tmp_path: Path) -> None:
    r = Running(make_broker(tmp_path / "data"))
    r.stop()
    assert (tmp_path / "data" / ".kafka_cleanshutdown").exists()


def test_acks_0_produce_gets_no_response_and_a_failed_one_closes_the_connection(running: Running) -> None:
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
    from protocol.records import Record, build_batch

    def produce(topic: str, correlation: int) -> bytes:
        batch = build_batch([Record(0, 0, None, b"v")], base_timestamp=1)
        body = ProduceRequest(
            acks=0, timeout_ms=1000, topic_data=[TopicProduceData(topic, [PartitionProduceData(0, batch)])]
        )
        return papi.encode_request(body, 9, correlation)

    from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

    sock = running.connect()
    create = CreateTopicsRequest(topics=[CreatableTopic("acks0", 1, 1)], timeout_ms=5000)
    sock.sendall(papi.encode_request(create, 5, 0))
    read_frame(sock)
    # Pipelined: the acks=0 produce between two ApiVersions takes no place in the answers.
    sock.sendall(
        papi.encode_request(ApiVersionsRequest(), 0, 1)
        + produce("acks0", 2)
        + papi.encode_request(ApiVersionsRequest(), 0, 3)
    )
    assert [papi.decode_response(read_frame(sock), 18, 0)[0] for _ in range(2)] == [1, 3]
    # A partition that cannot take the data: no answer either, the connection is closed.
    sock.sendall(produce("__consumer_offsets", 4))
    assert closed_by_peer(sock)
    sock.close()


@pytest.mark.parametrize("version", [10, 11])
def test_metadata_naming_a_topic_by_null_below_v12_is_answered_invalid_request(
    running: Running, version: int
) -> None:
    import uuid

    from protocol.messages.metadata_request import MetadataRequestTopic
    from protocol.messages.metadata_response import MetadataResponse, MetadataResponseTopic

    topic_id = uuid.UUID(int=7)
    sock = running.connect()
    sock.sendall(
        papi.encode_request(MetadataRequest(topics=[MetadataRequestTopic(topic_id, None)]), version, 5)
    )
    correlation, body = papi.decode_response(read_frame(sock), 3, version)
    assert correlation == 5
    # Kafka's MetadataRequest.getErrorResponse: the null name comes back as "", nothing else set.
    assert body == MetadataResponse(
        topics=[MetadataResponseTopic(error_code=ErrorCode.INVALID_REQUEST, name="", topic_id=topic_id)]
    )
    # The connection stays usable.
    sock.sendall(papi.encode_request(ApiVersionsRequest(), 0, 6))
    assert papi.decode_response(read_frame(sock), 18, 0)[0] == 6
    sock.close()
