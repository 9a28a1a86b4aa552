"""The SASL authenticator's state machine (Kafka's SaslServerAuthenticator) without sockets:
any sequence of client steps either authenticates (only with good credentials, after a
handshake) or fails with a SaslFailure; nothing else escapes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.security.credentials import ScramCredentialStore
from broker.security.sasl_config import SaslListener
from broker.security.sasl_server import (
    COMPLETE,
    HANDSHAKE_REQUEST,
    IllegalSaslState,
    SaslFailure,
    SaslServerAuthenticator,
)
from broker.security.scram import ScramClient, credential_from_password

GOOD = b"\0alice\0alice-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _listener(reauth_ms: int = 0) -> SaslListener:
    store = ScramCredentialStore()
    store.set_user("bob", {"SCRAM-SHA-256": credential_from_password("SCRAM-SHA-256", "bob-pw", 4096)})
    return SaslListener(
        ["PLAIN", "SCRAM-SHA-256"],
        {"alice": "alice-secret"},
        store,
        max_reauth_ms={"PLAIN": reauth_ms, "SCRAM-SHA-256": reauth_ms},
    )


def test_order_of_kafka_requests() -> None:
    auth = SaslServerAuthenticator(_listener())
    auth.check_request("ApiVersions", True, False)
    auth.api_versions_answered()
    assert auth.state == HANDSHAKE_REQUEST
    with pytest.raises(
        IllegalSaslState, match="Unexpected Kafka request of type ApiVersions during SASL handshake"
    ):
        auth.check_request("ApiVersions", True, False)
    with pytest.raises(IllegalSaslState, match="Metadata during SASL handshake"):
        SaslServerAuthenticator(_listener()).check_request("Metadata", False, False)
    assert auth.handshake(1, "PLAIN") and auth.headers
    assert auth.authenticate(GOOD, 1) == (b"", 0)
    assert auth.state == COMPLETE and str(auth.principal) == "User:alice" and auth.supports_reauth


def test_unsupported_mechanism_fails() -> None:
    auth = SaslServerAuthenticator(_listener())
    assert not auth.handshake(1, "GSSAPI")
    with pytest.raises(SaslFailure):
        auth.authenticate(GOOD, 1)


def test_session_lifetime_and_reauthentication() -> None:
    clock = Clock()
    auth = SaslServerAuthenticator(_listener(reauth_ms=1000), clock=clock)
    auth.handshake(1, "SCRAM-SHA-256")
    client = ScramClient("SCRAM-SHA-256", "bob", "bob-pw")
    first, lifetime = auth.authenticate(client.first(), 2)
    assert lifetime == 0
    final, lifetime = auth.authenticate(client.final(first), 2)
    client.verify(final)
    assert lifetime == 1000 and not auth.session_expired()
    clock.now += 1.5
    assert auth.session_expired()
    auth.begin_reauthentication()
    assert auth.handshake(1, "PLAIN")  # enabled, but not the session's mechanism
    with pytest.raises(SaslFailure, match="not supported for re-authentication"):
        auth.authenticate(GOOD, 1)


def test_reauthentication_as_another_principal_fails() -> None:
    auth = SaslServerAuthenticator(_listener())
    auth.handshake(1, "PLAIN")
    auth.authenticate(GOOD, 1)
    auth.begin_reauthentication()
    auth.handshake(1, "PLAIN")
    listener = auth.listener
    listener.plain_users["eve"] = "eve-pw"
    with pytest.raises(SaslFailure, match="Cannot change principals"):
        auth.authenticate(b"\0eve\0eve-pw", 1)


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("versions")),
        st.tuples(
            st.just("handshake"), st.integers(0, 1), st.sampled_from(["PLAIN", "SCRAM-SHA-256", "GSSAPI", ""])
        ),
        st.tuples(
            st.just("token"), st.sampled_from([GOOD, b"\0alice\0nope", b"", b"n,,n=bob,r=x", b"\xff\x00"])
        ),
        st.tuples(st.just("token"), st.binary(max_size=40)),
        st.tuples(
            st.just("other"),
        ),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(_STEPS)
def test_any_sequence_authenticates_only_properly(steps: list[tuple[Any, ...]]) -> None:
    auth = SaslServerAuthenticator(_listener())
    handshaken = False
    good_token_after_plain_handshake = False
    for step in steps:
        try:
            if step[0] == "versions":
                auth.check_request("ApiVersions", True, False)
                auth.api_versions_answered()
            elif step[0] == "handshake":
                auth.check_request("SaslHandshake", False, True)
                ok = auth.handshake(step[1], step[2])
                handshaken = ok and step[2] == "PLAIN"
                if not ok:
                    return
            elif step[0] == "token":
                auth.authenticate(step[1], 1)
                good_token_after_plain_handshake = handshaken and step[1] == GOOD
            else:
                auth.check_request("Metadata", False, False)
        except SaslFailure:
            assert not auth.complete
            return
        if auth.complete:
            assert good_token_after_plain_handshake and str(auth.principal) == "User:alice"
            return
