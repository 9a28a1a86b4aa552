"""SCRAM (RFC 5802 / RFC 7677): the server and client against the RFC 7677 SCRAM-SHA-256 test
vector, both mechanisms end to end, Kafka's credential string, and the failures."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.security.scram import (
    ScramClient,
    ScramCredential,
    ScramError,
    ScramServer,
    credential_from_password,
)

# RFC 7677, section 3.
USER, PASSWORD = "user", "pencil"
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _rfc_credential() -> ScramCredential:
    return credential_from_password("SCRAM-SHA-256", PASSWORD, 4096, SALT)


def test_server_reproduces_the_rfc7677_exchange() -> None:
    credential = _rfc_credential()
    server = ScramServer("SCRAM-SHA-256", {USER: credential}.get, nonce=SERVER_NONCE)
    assert server.evaluate(CLIENT_FIRST) == SERVER_FIRST
    assert not server.complete
    assert server.evaluate(CLIENT_FINAL) == SERVER_FINAL
    assert server.complete and server.username == USER


def test_client_reproduces_the_rfc7677_exchange() -> None:
    client = ScramClient("SCRAM-SHA-256", USER, PASSWORD, nonce=CLIENT_NONCE)
    assert client.first() == CLIENT_FIRST
    assert client.final(SERVER_FIRST) == CLIENT_FINAL
    client.verify(SERVER_FINAL)
    with pytest.raises(ScramError):
        client.verify(b"v=" + base64.b64encode(b"\x00" * 32))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_round_trip_and_wrong_password(mechanism: str) -> None:
    credential = credential_from_password(mechanism, "s3cret", 4096)
    lookup = {"alice": credential}.get
    client = ScramClient(mechanism, "alice", "s3cret")
    server = ScramServer(mechanism, lookup)
    final = client.final(server.evaluate(client.first()))
    client.verify(server.evaluate(final))
    assert server.complete

    wrong = ScramClient(mechanism, "alice", "not-it")
    server = ScramServer(mechanism, lookup)
    with pytest.raises(ScramError):
        server.evaluate(wrong.final(server.evaluate(wrong.first())))
    assert not server.complete


def test_unknown_user_fails_at_the_first_message() -> None:
    server = ScramServer("SCRAM-SHA-256", lambda _user: None)
    with pytest.raises(ScramError) as failure:
        server.evaluate(b"n,,n=nobody,r=abc")
    assert failure.value.client_message is None  # the generic message is used: existence not told


def test_credential_string_round_trips_in_kafkas_form() -> None:
    credential = _rfc_credential()
    text = credential.to_config()
    assert text.startswith("salt=W22ZaJ0SNY7soEsUEjb6gQ==,stored_key=") and text.endswith(",iterations=4096")
    assert ScramCredential.from_config(text) == credential
    with pytest.raises(ValueError):
        ScramCredential.from_config("salt=abc,iterations=4096")


def test_nonce_channel_binding_and_authzid_are_checked() -> None:
    credential = _rfc_credential()
    lookup = {USER: credential, "other": credential}.get
    server = ScramServer("SCRAM-SHA-256", lookup, nonce=SERVER_NONCE)
    server.evaluate(CLIENT_FIRST)
    with pytest.raises(ScramError):
        server.evaluate(CLIENT_FINAL.replace(b"r=rOpr", b"r=XOpr"))
    server = ScramServer("SCRAM-SHA-256", lookup, nonce=SERVER_NONCE)
    server.evaluate(CLIENT_FIRST)
    with pytest.raises(ScramError):
        server.evaluate(CLIENT_FINAL.replace(b"c=biws", b"c=eSws"))
    with pytest.raises(ScramError) as failure:
        ScramServer("SCRAM-SHA-256", lookup).evaluate(b"n,a=other,n=user,r=abc")
    assert failure.value.client_message is not None and "authorization id" in failure.value.client_message
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-256", lookup).evaluate(b"n,,n=user,r=abc,tokenauth=true")


def test_too_few_iterations_in_store_fail() -> None:
    weak = credential_from_password("SCRAM-SHA-256", PASSWORD, 1024, SALT)
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-256", {USER: weak}.get).evaluate(CLIENT_FIRST)


def test_username_escapes() -> None:
    credential = credential_from_password("SCRAM-SHA-256", "pw", 4096)
    server = ScramServer("SCRAM-SHA-256", {"a,b=c": credential}.get)
    client = ScramClient("SCRAM-SHA-256", "a,b=c", "pw")
    assert b"n=a=2Cb=3Dc," in client.first()
    client.verify(server.evaluate(client.final(server.evaluate(client.first()))))
    assert server.username == "a,b=c"
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-256", {"x": credential}.get).evaluate(b"n,,n=a=ZZ,r=abc")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_garbage_fails_with_scram_error_only(token: bytes, after_first: bool) -> None:
    server = ScramServer("SCRAM-SHA-256", {USER: _rfc_credential()}.get, nonce=SERVER_NONCE)
    if after_first:
        server.evaluate(CLIENT_FIRST)
    try:
        server.evaluate(token)
    except ScramError:
        return
    # Only a well-formed first message, or the one right final message, is accepted.
    assert (not after_first and token.startswith(b"n,")) or token == CLIENT_FINAL


def test_kafka_python_client_authenticates_against_the_server() -> None:
    """An independent client implementation (kafka-python's) against this server."""
    scram = pytest.importorskip("kafka.net.sasl.scram")
    client_cls = scram.ScramClient
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        credential = credential_from_password(mechanism, "pw", 4096)
        server = ScramServer(mechanism, {"bob": credential}.get)
        client = client_cls("bob", "pw", mechanism)
        server_first = server.evaluate(client.first_message())
        client.process_server_first_message(server_first)
        server_final = server.evaluate(client.final_message())
        client.process_server_final_message(server_final)
        assert server.complete


def test_old_librdkafka_nonce_prefix_is_accepted_as_kafka_does() -> None:
    """librdkafka before 2.1 repeats its nonce in front of the combined one; Kafka checks only
    that the final nonce ends with the server-first nonce, and so does Brook."""
    server = ScramServer("SCRAM-SHA-256", {USER: _rfc_credential()}.get, nonce=SERVER_NONCE)
    server.evaluate(CLIENT_FIRST)
    doubled = CLIENT_FINAL.replace(b"r=rOpr", b"r=" + CLIENT_NONCE.encode() + b"rOpr")
    # The proof covers the nonce as sent: the RFC proof no longer matches, so it fails on the
    # proof, not on the nonce.
    with pytest.raises(ScramError, match="Invalid client credentials"):
        server.evaluate(doubled)
