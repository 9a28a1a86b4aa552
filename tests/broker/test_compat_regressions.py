"""Regressions found by the compatibility tests with stock clients (compat_tests/), pinned here
at the unit level over real loopback sockets."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import api as papi
from protocol.messages.metadata_response import MetadataResponse
from tests.broker.conftest import make_broker
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
