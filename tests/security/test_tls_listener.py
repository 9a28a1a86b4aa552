"""An SSL listener end to end in an embedded broker: handshakes, client certificates and their
principals, large fetches over TLS, and bad input that closes only its own connection."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator

import pytest

from broker import embedding
from broker.embedding import EmbeddedBroker
from compat_tests.clients.raw import frame, read_frame, request_header_v1
from tests.security.certs import Identity, Pki, ssl_listener_settings

API_VERSIONS = 18
TIMEOUT = 10.0


def _client_context(pki: Pki, identity: Identity | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if identity is not None:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    return context


def _tls(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return context.wrap_socket(raw, server_hostname="localhost")


def _api_versions(sock: socket.socket, correlation_id: int = 7) -> int:
    sock.sendall(frame(request_header_v1(API_VERSIONS, 0, correlation_id)))
    body = read_frame(sock)
    got, error = struct.unpack_from(">ih", body)
    assert error == 0
    return int(got)


def _principals(broker: EmbeddedBroker) -> list[str]:
    return broker.call(lambda b: sorted(str(c.security.principal) for c in b.server.connections))


def _closed_by_broker(sock: socket.socket) -> bool:
    """True when the broker closes the connection (EOF or reset) before TIMEOUT."""
    sock.settimeout(TIMEOUT)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False
    return True


@pytest.fixture(scope="module")
def requested(pki: Pki) -> Iterator[EmbeddedBroker]:
    settings = ssl_listener_settings(pki, client_auth="requested")
    settings["ssl.principal.mapping.rules"] = "RULE:^CN=([^,]+),OU=clients,.*$/$1/U, DEFAULT"
    settings["socket.connection.setup.timeout.ms"] = "1000"
    with embedding.embedded(settings) as broker:
        yield broker


@pytest.fixture(scope="module")
def required(pki: Pki) -> Iterator[EmbeddedBroker]:
    with embedding.embedded(ssl_listener_settings(pki, client_auth="required")) as broker:
        yield broker


def test_anonymous_without_a_client_certificate(requested: EmbeddedBroker, pki: Pki) -> None:
    with _tls(requested.port, _client_context(pki)) as sock:
        assert _api_versions(sock) == 7
        assert _principals(requested) == ["User:ANONYMOUS"]


def test_principal_is_the_mapped_certificate_dn(requested: EmbeddedBroker, pki: Pki) -> None:
    with _tls(requested.port, _client_context(pki, pki.client)) as sock:
        assert _api_versions(sock) == 7
        assert _principals(requested) == ["User:ALICE"]
        contexts = requested.call(lambda b: [c.security for c in b.server.connections])
        assert [(c.listener, c.security_protocol) for c in contexts] == [("SSL", "SSL")]


def test_required_client_auth_accepts_a_trusted_certificate(required: EmbeddedBroker, pki: Pki) -> None:
    with _tls(required.port, _client_context(pki, pki.client)) as sock:
        assert _api_versions(sock) == 7
        assert _principals(required) == [f"User:{pki.client.dn}"]


@pytest.mark.parametrize("who", ["none", "expired", "untrusted"])
def test_required_client_auth_refuses_and_keeps_serving(required: EmbeddedBroker, pki: Pki, who: str) -> None:
    identity = {"none": None, "expired": pki.expired, "untrusted": pki.untrusted}[who]
    with _tls(required.port, _client_context(pki, pki.client)) as good:
        assert _api_versions(good, 1) == 1
        refused = False
        try:
            with _tls(required.port, _client_context(pki, identity)) as bad:
                # TLS 1.3: the client learns of the refusal at its first read.
                bad.sendall(frame(request_header_v1(API_VERSIONS, 0, 9)))
                refused = _closed_by_broker(bad)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            refused = True
        assert refused
        assert _api_versions(good, 2) == 2


def test_tls_garbage_closes_only_that_connection(requested: EmbeddedBroker, pki: Pki) -> None:
    with _tls(requested.port, _client_context(pki)) as good:
        for garbage in (b"\x16\x03\x01\x00\x05hello", b"\xff" * 64, b"GET / HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", requested.port), timeout=TIMEOUT) as bad:
                bad.sendall(garbage)
                assert _closed_by_broker(bad)
        assert _api_versions(good) == 7


def test_plaintext_kafka_request_on_the_ssl_port(requested: EmbeddedBroker, pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", requested.port), timeout=TIMEOUT) as plain:
        plain.sendall(frame(request_header_v1(API_VERSIONS, 0, 7)))
        assert _closed_by_broker(plain)
    with _tls(requested.port, _client_context(pki)) as good:
        assert _api_versions(good) == 7


def test_half_open_handshakes_time_out_one_by_one(requested: EmbeddedBroker, pki: Pki) -> None:
    # 200 clients that start a handshake and stall: the handshake deadline
    # (socket.connection.setup.timeout.ms=1000 here) closes each; a real client is served meanwhile.
    half_open = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", requested.port), timeout=TIMEOUT)
            if i % 2:
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello, cut short
            half_open.append(sock)
        with _tls(requested.port, _client_context(pki)) as good:
            assert _api_versions(good) == 7
        for sock in half_open:
            assert _closed_by_broker(sock)
    finally:
        for sock in half_open:
            sock.close()


def test_large_fetch_over_tls_is_byte_exact(requested: EmbeddedBroker, pki: Pki) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    common = {
        "bootstrap.servers": requested.bootstrap_servers,
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
    }
    topic = "tls-large-fetch"
    producer = confluent_kafka.Producer({**common, "linger.ms": 5})
    values = [bytes([i % 251]) * (1000 + 37 * i) for i in range(600)]  # ~7 MB, odd sizes
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = confluent_kafka.Consumer(
        {
            **common,
            "group.id": "tls-large",
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 4 * 1024 * 1024,
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        misses = 0
        while len(got) < len(values) and misses < 40:  # 20 s without a message ends it
            message = consumer.poll(0.5)
            misses = misses + 1 if message is None else 0
            if message is not None and message.error() is None:
                got.append(message.value())
    finally:
        consumer.close()
    assert got == values


@pytest.fixture(scope="module")
def both(pki: Pki) -> Iterator[EmbeddedBroker]:
    settings = ssl_listener_settings(pki)
    settings["listeners"] = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"
    settings["security.inter.broker.protocol"] = "PLAINTEXT"
    with embedding.embedded(settings) as broker:
        yield broker


def test_fetch_over_tls_equals_fetch_over_plaintext_even_read_slowly(both: EmbeddedBroker, pki: Pki) -> None:
    """Pipelined fetches of several MB (file regions: sendfile on one listener, preadv and
    encryption on the other) read by a client with a small receive buffer, so the broker's TLS
    writes block and resume: the response bytes are the same on both listeners."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    from protocol import api as papi
    from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

    topic = "tls-vs-plaintext"
    producer = confluent_kafka.Producer({"bootstrap.servers": both.bootstrap_servers, "linger.ms": 5})
    for i in range(3000):
        producer.produce(topic, bytes([i % 256]) * 2000, partition=0)
    assert producer.flush(30) == 0
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=64 << 20,
        topics=[
            FetchTopic(topic, partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=64 << 20)])
        ],
    )
    frames = b"".join(papi.encode_request(request, 4, correlation) for correlation in range(3))
    ssl_port = both.call(lambda b: b.bound_ports["SSL"])

    def fetch_all(sock: socket.socket) -> list[bytes]:
        sock.sendall(frames)
        return [read_frame(sock) for _ in range(3)]

    with socket.create_connection(("127.0.0.1", both.port), timeout=TIMEOUT) as plain:
        expected = fetch_all(plain)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(TIMEOUT)
    raw.connect(("127.0.0.1", ssl_port))
    with _client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
        got = fetch_all(tls)
    assert len(expected[0]) > 5_000_000
    assert got == expected
