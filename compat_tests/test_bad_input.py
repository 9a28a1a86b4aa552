"""Bad input on the wire: the broker answers or closes the connection as Kafka 3.9 does, logs it
with the peer's address, and keeps serving everyone else.

Kafka's behaviour (core/src/main/scala/kafka/network/SocketServer.scala, NetworkReceive,
RequestContext.parseRequest):
- a size prefix below 0 or above socket.request.max.bytes (garbage such as an HTTP request reads
  as a huge size) -> InvalidReceiveException, connection closed;
- a frame whose header or body does not parse (truncated, an empty frame, an array longer than
  the bytes left) -> InvalidRequestException, connection closed;
- an api key Kafka does not know -> closed;
- ApiVersions in a version above the broker's -> answered: a v0 body with UNSUPPORTED_VERSION (35)
  and ApiVersions' own version range, so that the client retries lower;
- any other api in a version outside its range -> closed.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable, Iterator

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import BY_NAME, REFERENCE
from compat_tests.clients.model import Msg
from compat_tests.clients.raw import api_versions, frame, read_frame, request_header_v1
from compat_tests.harness import BrokerProcess, wait_until

UNSUPPORTED_VERSION = 35
API_VERSIONS = 18
METADATA = 3
PRODUCE = 0


@pytest.fixture(scope="module")
def bad(broker: BrokerProcess) -> Iterator[BrokerProcess]:
    # A real client connected before, during and after all of this.
    topic = create_topic(broker.bootstrap, unique_topic("survivor"), partitions=1)
    broker.survivor_topic = topic  # type: ignore[attr-defined]
    yield broker
    assert broker.alive(), broker.log_tail()


def connect(broker: BrokerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.port), timeout=10)


def peer_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def closed_by_broker(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True when the broker closed the connection (EOF or reset) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def assert_still_serving(broker: BrokerProcess) -> None:
    assert broker.alive(), broker.log_tail()
    versions = api_versions("127.0.0.1", broker.port)
    assert versions[PRODUCE][1] >= 9 and versions[API_VERSIONS] == (0, 4)


def assert_logged(broker: BrokerProcess, peer: str) -> None:
    wait_until(lambda: peer in broker.log_text(), 10, message=f"the broker log to mention {peer}")


def metadata_v4_request(correlation_id: int, body: bytes) -> bytes:
    return request_header_v1(METADATA, 4, correlation_id) + body


CLOSING_CASES: dict[str, Callable[[], bytes]] = {
    # "GET " read as a size prefix is 1195725856 bytes, far above socket.request.max.bytes.
    "http request": lambda: b"GET / HTTP/1.1\r\nHost: kafka\r\n\r\n",
    # Noise in a well-formed frame: its "api key" is one Kafka does not define.
    "random garbage": lambda: frame(b"\xfe\xed" + random.Random(7).randbytes(998)),
    "2 GiB size prefix": lambda: struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,
    "negative size prefix": lambda: struct.pack(">I", 0x80000000) + b"\x00" * 64,
    "empty frame": lambda: frame(b""),
    "frame shorter than a request header": lambda: frame(b"\x00\x03\x00"),
    "truncated header": lambda: frame(struct.pack(">hhih", METADATA, 4, 1, 20) + b"client"),
    "truncated body": lambda: frame(request_header_v1(PRODUCE, 7, 1) + struct.pack(">hh", -1, -1)),
    "array longer than the frame": lambda: frame(metadata_v4_request(1, struct.pack(">i", 1_000_000_000))),
    "negative array length": lambda: frame(metadata_v4_request(1, struct.pack(">i", -7) + b"\x01")),
    "unknown api key": lambda: frame(request_header_v1(9999, 0, 1)),
    "api key above Kafka's": lambda: frame(request_header_v1(200, 0, 1)),
    "unsupported Metadata version": lambda: frame(request_header_v1(METADATA, 99, 1) + b"\x00" * 8),
    "unsupported Produce version": lambda: frame(request_header_v1(PRODUCE, 99, 1) + b"\x00" * 16),
}


@pytest.mark.parametrize("case", list(CLOSING_CASES))
def test_bad_input_closes_the_connection(bad: BrokerProcess, case: str) -> None:
    with connect(bad) as sock:
        peer = peer_of(sock)
        sock.sendall(CLOSING_CASES[case]())
        assert closed_by_broker(sock), f"{case}: the connection stayed open"
    assert_logged(bad, peer)
    assert_still_serving(bad)


def test_valid_request_before_garbage_is_answered(bad: BrokerProcess) -> None:
    """Pipelined: the good request in front gets its answer, then the connection is closed."""
    with connect(bad) as sock:
        peer = peer_of(sock)
        sock.sendall(frame(request_header_v1(API_VERSIONS, 0, 41)) + b"GET / HTTP/1.1\r\n\r\n")
        answer = read_frame(sock)
        assert struct.unpack_from(">ih", answer, 0) == (41, 0)
        assert closed_by_broker(sock)
    assert_logged(bad, peer)
    assert_still_serving(bad)


@pytest.mark.parametrize("version", [5, 127, 32767])
def test_unsupported_api_versions_version_is_answered_with_v0(bad: BrokerProcess, version: int) -> None:
    """Kafka answers ApiVersions above its range with a v0 body: UNSUPPORTED_VERSION and the range
    of ApiVersions itself, and keeps the connection for the client's retry."""
    with connect(bad) as sock:
        # A flexible (v3+) request: header v2 with an empty tagged-field section, then a body
        # Kafka does not even read.
        sock.sendall(frame(request_header_v1(API_VERSIONS, version, 77) + b"\x00" + b"\x00\x00\x00"))
        answer = read_frame(sock)
        correlation_id, error_code, count = struct.unpack_from(">ihi", answer, 0)
        assert (correlation_id, error_code) == (77, UNSUPPORTED_VERSION)
        entries = [struct.unpack_from(">hhh", answer, 10 + 6 * i) for i in range(count)]
        assert (API_VERSIONS, 0, 4) in entries
        assert len(answer) == 10 + 6 * count, "a v0 body: no throttle time, no tagged fields"
        # The connection is still good: the client retries with v0.
        sock.sendall(frame(request_header_v1(API_VERSIONS, 0, 78)))
        correlation_id, error_code = struct.unpack_from(">ih", read_frame(sock), 0)
        assert (correlation_id, error_code) == (78, 0)
    assert_still_serving(bad)


def test_incomplete_frame_then_disconnect(bad: BrokerProcess) -> None:
    """Half a frame and a hang-up: nothing to answer, nothing to break."""
    for _ in range(20):
        with connect(bad) as sock:
            sock.sendall(struct.pack(">i", 500) + request_header_v1(METADATA, 4, 1))
    with connect(bad) as sock:  # and a large half frame
        sock.sendall(struct.pack(">i", 50_000_000) + b"\x00" * 100_000)
    assert_still_serving(bad)


def test_slow_client_does_not_block_others(bad: BrokerProcess) -> None:
    """A connection holding an incomplete frame open does not stop anyone else."""
    with connect(bad) as slow:
        slow.sendall(struct.pack(">i", 1000) + request_header_v1(METADATA, 4, 1))
        assert_still_serving(bad)
        topic = bad.survivor_topic  # type: ignore[attr-defined]
        REFERENCE.produce(bad.bootstrap, topic, [Msg(b"while-slow", partition=0)], acks="all")
        assert not closed_by_broker(slow, timeout=0.5), "Kafka waits for the rest of a frame"


def test_real_clients_still_work_afterwards(bad: BrokerProcess) -> None:
    topic = bad.survivor_topic  # type: ignore[attr-defined]
    REFERENCE.produce(bad.bootstrap, topic, [Msg(b"after-bad-input", partition=0)], acks="all")
    values = [r.value for r in REFERENCE.consume(bad.bootstrap, topic, [0])]
    assert values[-1] == b"after-bad-input"
    again = BY_NAME["kafka-python"].consume(bad.bootstrap, topic, [0])
    assert [r.value for r in again] == values


@pytest.mark.parametrize("version", [10, 11])
def test_metadata_naming_a_topic_by_null_is_answered_invalid_request(
    bad: BrokerProcess, version: int
) -> None:
    """Well-formed, but refused: KafkaApis throws InvalidRequestException for a null topic name below
    v12, and MetadataRequest.getErrorResponse answers it (the name comes back as ""); the
    connection stays open."""
    topic_id = bytes(range(16))
    body = b"\x02" + topic_id + b"\x00" + b"\x00"  # one topic: id, null name, no tagged fields
    body += b"\x01\x00" if version == 11 else b"\x01\x00\x00"  # auto-create, (cluster ops,) topic ops
    body += b"\x00"
    with connect(bad) as sock:
        sock.sendall(frame(request_header_v1(METADATA, version, 91) + b"\x00" + body))
        answer = read_frame(sock)
        no_operations = struct.pack(">i", -(2**31))
        topic = struct.pack(">h", 42) + b"\x01" + topic_id + b"\x00" + b"\x01" + no_operations + b"\x00"
        expected = struct.pack(">i", 91) + b"\x00"  # correlation id, header tagged fields
        expected += struct.pack(">i", 0) + b"\x01" + b"\x00" + struct.pack(">i", -1)  # no brokers, cluster
        expected += b"\x02" + topic
        expected += (no_operations if version == 10 else b"") + b"\x00"
        assert answer == expected
        sock.sendall(frame(request_header_v1(API_VERSIONS, 0, 92)))
        assert struct.unpack_from(">ih", read_frame(sock), 0) == (92, 0)
    assert_still_serving(bad)
