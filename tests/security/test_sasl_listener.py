"""A SASL_PLAINTEXT listener end to end in an embedded broker, on raw sockets: the handshake in
both versions, PLAIN and SCRAM, Kafka's errors and its delayed close, requests out of turn, a
huge token, garbage, re-authentication (KIP-368), SCRAM credentials managed with
Alter/DescribeUserScramCredentials and kept across a restart, and no password in any log."""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from broker import embedding
from broker.embedding import EmbeddedBroker
from broker.security.credentials import CREDENTIALS_FILE
from broker.security.scram import MECHANISM_TYPES, ScramClient, salted_password
from compat_tests.clients.raw import read_frame
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.message import Message
from protocol.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
    ScramCredentialUpsertion,
)
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
    UserName,
)
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from protocol.messages.sasl_handshake_request import SaslHandshakeRequest

TIMEOUT = 10.0
PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def settings(**extra: str) -> dict[str, str]:
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "sasl.jaas.config": SCRAM_JAAS,
        "connection.failed.authentication.delay.ms": "50",
        **extra,
    }


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with embedding.embedded(settings()) as running:
        yield running


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.correlation = 0

    def send(self, body: Message, version: int) -> int:
        self.correlation += 1
        self.sock.sendall(papi.encode_request(body, version, self.correlation))
        return self.correlation

    def call(self, body: Message, version: int) -> Any:
        correlation = self.send(body, version)
        got, response = papi.decode_response(read_frame(self.sock), body.API_KEY, version)
        assert got == correlation
        return response

    def raw(self, token: bytes) -> bytes:
        self.sock.sendall(struct.pack(">i", len(token)) + token)
        return read_frame(self.sock)

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True

    def close(self) -> None:
        self.sock.close()


def sasl_port(broker: EmbeddedBroker) -> int:
    return broker.call(lambda b: b.bound_ports["SASL_PLAINTEXT"])


def plain_token(user: str, password: str) -> bytes:
    return f"\0{user}\0{password}".encode()


def principals(broker: EmbeddedBroker) -> list[str]:
    return broker.call(
        lambda b: sorted(str(c.security.principal) for c in b.server.connections if c.listener != "PLAINTEXT")
    )


def authenticate_plain(broker: EmbeddedBroker, user: str, password: str, version: int = 2) -> Client:
    client = Client(sasl_port(broker))
    handshake = client.call(SaslHandshakeRequest("PLAIN"), 1)
    assert handshake.error_code == 0
    response = client.call(SaslAuthenticateRequest(plain_token(user, password)), version)
    assert response.error_code == 0, response.error_message
    return client


def test_plain_v1_handshake_then_requests(broker: EmbeddedBroker) -> None:
    client = Client(sasl_port(broker))
    versions = client.call(ApiVersionsRequest("brook-test", "1.0"), 3)
    assert {17, 36, 50, 51} <= {api.api_key for api in versions.api_keys}
    handshake = client.call(SaslHandshakeRequest("PLAIN"), 1)
    assert handshake.error_code == 0
    assert handshake.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    response = client.call(SaslAuthenticateRequest(plain_token("alice", "alice-secret")), 1)
    assert (response.error_code, response.session_lifetime_ms) == (0, 0)
    assert principals(broker) == ["User:alice"]
    assert client.call(MetadataRequest(topics=[]), 9).brokers
    # After authentication, SaslHandshake/SaslAuthenticate are Kafka's ILLEGAL_SASL_STATE answers
    # (the client sent SaslAuthenticate v1: SaslHandshake begins a re-authentication instead).
    again = client.call(SaslAuthenticateRequest(b""), 1)
    assert again.error_code == ErrorCode.ILLEGAL_SASL_STATE
    client.close()


def test_plain_v0_handshake_exchanges_raw_tokens(broker: EmbeddedBroker) -> None:
    client = Client(sasl_port(broker))
    assert client.call(SaslHandshakeRequest("PLAIN"), 0).error_code == 0
    assert client.raw(plain_token("admin", "admin-secret")) == b""
    assert client.call(MetadataRequest(topics=[]), 1).brokers
    # v0 clients cannot re-authenticate: a later SaslHandshake is ILLEGAL_SASL_STATE.
    assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    client.close()


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "wrong"), ("mallory", "alice-secret"), ("alice", "")]
)
def test_bad_credentials_get_kafkas_error_and_a_delayed_close(
    broker: EmbeddedBroker, user: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = authenticate_plain(broker, "admin", "admin-secret")
    bad = Client(sasl_port(broker))
    assert bad.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
    with caplog.at_level(logging.DEBUG):
        response = bad.call(SaslAuthenticateRequest(plain_token(user, password)), 2)
    assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    expected = (
        "Authentication failed: password not specified"
        if not password
        else "Authentication failed: Invalid username or password"
    )
    assert response.error_message == expected
    assert bad.closed()
    assert good.call(MetadataRequest(topics=[]), 9).brokers
    assert "alice-secret" not in caplog.text and "wrong" not in caplog.text.replace("wrong ", "")
    good.close()


def test_unsupported_mechanism_lists_the_enabled_ones(broker: EmbeddedBroker) -> None:
    client = Client(sasl_port(broker))
    response = client.call(SaslHandshakeRequest("GSSAPI"), 1)
    assert response.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
    assert response.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert client.closed()


def test_a_request_before_the_handshake_closes_the_connection(broker: EmbeddedBroker) -> None:
    client = Client(sasl_port(broker))
    client.send(MetadataRequest(topics=[]), 9)
    assert client.closed()
    client = Client(sasl_port(broker))
    client.call(ApiVersionsRequest(), 0)
    client.send(ApiVersionsRequest(), 0)  # only one ApiVersions before the handshake
    assert client.closed()


def test_a_request_instead_of_a_token_is_illegal_sasl_state(broker: EmbeddedBroker) -> None:
    client = Client(sasl_port(broker))
    assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
    response = client.call(MetadataRequest(topics=[]), 9)
    assert response.topics == [] and response.brokers == []
    assert client.closed()


def test_huge_token_and_garbage_close_only_their_connection(broker: EmbeddedBroker) -> None:
    good = authenticate_plain(broker, "alice", "alice-secret")
    huge = Client(sasl_port(broker))
    assert huge.call(SaslHandshakeRequest("PLAIN"), 0).error_code == 0
    huge.sock.sendall(struct.pack(">i", 524288 + 1) + b"\0" * 1024)
    assert huge.closed()
    before_handshake = Client(sasl_port(broker))
    before_handshake.sock.sendall(struct.pack(">i", 10 * 1024 * 1024))
    assert before_handshake.closed()
    for garbage in (
        struct.pack(">i", 19) + plain_token("alice", "alice-secret"),  # a SASL token before the handshake
        b"\xff" * 64,
        b"\x00\x00\x00\x08" + b"\x00\x11" + b"\xff" * 6,
        b"GET / HTTP/1.1\r\n\r\n",
    ):
        bad = Client(sasl_port(broker))
        bad.sock.sendall(garbage)
        assert bad.closed()
    assert good.call(MetadataRequest(topics=[]), 9).brokers
    good.close()


def _admin(broker: EmbeddedBroker) -> Client:
    return Client(broker.port)  # the PLAINTEXT listener, first in ``listeners``


def _upsert(user: str, mechanism: str, password: str, iterations: int = 4096) -> ScramCredentialUpsertion:
    salt = os.urandom(16)
    return ScramCredentialUpsertion(
        user,
        MECHANISM_TYPES[mechanism],
        iterations,
        salt,
        salted_password(mechanism, password, salt, iterations),
    )


def _scram(broker: EmbeddedBroker, mechanism: str, user: str, password: str) -> tuple[Client, Any]:
    client = Client(sasl_port(broker))
    assert client.call(SaslHandshakeRequest(mechanism), 1).error_code == 0
    scram = ScramClient(mechanism, user, password)
    first = client.call(SaslAuthenticateRequest(scram.first()), 2)
    if first.error_code:
        return client, first
    final = client.call(SaslAuthenticateRequest(scram.final(first.auth_bytes)), 2)
    if final.error_code == 0:
        scram.verify(final.auth_bytes)
    return client, final


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_credentials_from_alter_user_scram_credentials(broker: EmbeddedBroker, mechanism: str) -> None:
    user = f"bob-{mechanism[-3:]}"
    admin = _admin(broker)
    altered = admin.call(
        AlterUserScramCredentialsRequest(upsertions=[_upsert(user, mechanism, "bob-pw", 8192)]), 0
    )
    assert [(r.user, r.error_code) for r in altered.results] == [(user, 0)]
    described = admin.call(DescribeUserScramCredentialsRequest([UserName(user)]), 0)
    [result] = described.results
    assert (result.user, result.error_code) == (user, 0)
    assert [(i.mechanism, i.iterations) for i in result.credential_infos] == [
        (MECHANISM_TYPES[mechanism], 8192)
    ]

    client, response = _scram(broker, mechanism, user, "bob-pw")
    assert response.error_code == 0
    assert f"User:{user}" in principals(broker)
    client.close()
    client, response = _scram(broker, mechanism, user, "not-bob-pw")
    assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert response.error_message == (
        "Authentication failed during authentication due to invalid credentials with SASL mechanism "
        f"{mechanism}"
    )
    assert client.closed()
    client, response = _scram(broker, mechanism, "nobody", "bob-pw")
    assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert client.closed()

    deleted = admin.call(
        AlterUserScramCredentialsRequest(
            deletions=[ScramCredentialDeletion(user, MECHANISM_TYPES[mechanism])]
        ),
        0,
    )
    assert [(r.user, r.error_code) for r in deleted.results] == [(user, 0)]
    client, response = _scram(broker, mechanism, user, "bob-pw")
    assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    admin.close()


def test_alter_user_scram_credentials_errors(broker: EmbeddedBroker) -> None:
    admin = _admin(broker)
    response = admin.call(
        AlterUserScramCredentialsRequest(
            deletions=[ScramCredentialDeletion("ghost", 1), ScramCredentialDeletion("x", 9)],
            upsertions=[
                _upsert("", "SCRAM-SHA-256", "pw"),
                _upsert("few", "SCRAM-SHA-256", "pw", 1000),
                _upsert("many", "SCRAM-SHA-256", "pw", 16385),
                _upsert("twice", "SCRAM-SHA-256", "pw"),
                _upsert("twice", "SCRAM-SHA-256", "pw"),
            ],
        ),
        0,
    )
    got = {r.user: (r.error_code, r.error_message) for r in response.results}
    assert got == {
        "x": (ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        "": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
        "few": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
        "many": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
        "twice": (
            ErrorCode.DUPLICATE_RESOURCE,
            "A user credential cannot be altered twice in the same request",
        ),
        "ghost": (ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"),
    }
    described = admin.call(DescribeUserScramCredentialsRequest([UserName("ghost"), UserName("")]), 0)
    assert [(r.user, r.error_code) for r in described.results] == [
        ("ghost", ErrorCode.RESOURCE_NOT_FOUND),
        ("", ErrorCode.RESOURCE_NOT_FOUND),
    ]
    admin.close()


def test_credentials_survive_a_restart_in_an_owner_only_file(tmp_path: Any) -> None:
    overrides = {**settings(), "log.dirs": str(tmp_path / "data")}
    with embedding.embedded(overrides) as first:
        admin = _admin(first)
        response = admin.call(
            AlterUserScramCredentialsRequest(upsertions=[_upsert("carol", "SCRAM-SHA-512", "c-pw")]), 0
        )
        assert response.results[0].error_code == 0
        admin.close()
    path = tmp_path / "data" / CREDENTIALS_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"c-pw" not in path.read_bytes()
    with embedding.embedded(overrides) as second:
        client, result = _scram(second, "SCRAM-SHA-512", "carol", "c-pw")
        assert result.error_code == 0
        client.close()


def test_reauthentication_and_session_expiry() -> None:
    with embedding.embedded(settings(**{"connections.max.reauth.ms": "300"})) as broker:
        client = Client(sasl_port(broker))
        assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
        response = client.call(SaslAuthenticateRequest(plain_token("alice", "alice-secret")), 1)
        assert (response.error_code, response.session_lifetime_ms) == (0, 300)
        # Re-authenticate: a new handshake on the authenticated connection (KIP-368).
        assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
        response = client.call(SaslAuthenticateRequest(plain_token("alice", "alice-secret")), 1)
        assert (response.error_code, response.session_lifetime_ms) == (0, 300)
        assert client.call(MetadataRequest(topics=[]), 9).brokers
        # Another principal is refused at re-authentication.
        assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
        response = client.call(SaslAuthenticateRequest(plain_token("admin", "admin-secret")), 1)
        assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert client.closed()
        # A session past its lifetime is closed at its next request.
        expired = Client(sasl_port(broker))
        assert expired.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
        assert expired.call(SaslAuthenticateRequest(plain_token("alice", "alice-secret")), 1).error_code == 0
        broker.call(lambda b: _age_sessions(b, 1.0))
        expired.send(MetadataRequest(topics=[]), 9)
        assert expired.closed()


def _age_sessions(broker: Any, seconds: float) -> None:
    """Move every session's expiry into the past (no waiting on the wall clock)."""
    for conn in broker.server.connections:
        auth = conn.authenticator
        if auth is not None and auth.session_expiry is not None:
            auth.session_expiry -= seconds


def test_no_password_in_the_request_log(broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("kafka.request.logger").setLevel(logging.DEBUG)
        try:
            client = authenticate_plain(broker, "alice", "alice-secret")
            client.call(MetadataRequest(topics=[]), 9)
            admin = _admin(broker)
            admin.call(
                AlterUserScramCredentialsRequest(upsertions=[_upsert("dave", "SCRAM-SHA-256", "d-pw")]), 0
            )
            admin.close()
            client.close()
        finally:
            logging.getLogger("kafka.request.logger").setLevel(logging.NOTSET)
    assert "alice-secret" not in caplog.text
    assert '"principal":"User:alice"' in caplog.text and '"securityProtocol":"SASL_PLAINTEXT"' in caplog.text


def test_stalled_handshakes_do_not_block_others(broker: EmbeddedBroker) -> None:
    """Fifty clients stop mid-way (half a size prefix, half a token, a handshake and nothing);
    a new client authenticates meanwhile."""
    stalled = []
    for i in range(50):
        client = Client(sasl_port(broker))
        if i % 3 == 0:
            client.sock.sendall(b"\x00\x00")
        elif i % 3 == 1:
            assert client.call(SaslHandshakeRequest("PLAIN"), 0).error_code == 0
            client.sock.sendall(struct.pack(">i", 100) + b"\0alice")
        else:
            assert client.call(SaslHandshakeRequest("PLAIN"), 1).error_code == 0
        stalled.append(client)
    good = authenticate_plain(broker, "alice", "alice-secret")
    assert good.call(MetadataRequest(topics=[]), 9).brokers
    good.close()
    for client in stalled:
        client.close()
