"""SASL/PLAIN (RFC 4616), server side, as Kafka's PlainSaslServer with the JAAS
``user_<name>="<password>"`` entries as its user list. Its failure messages are Kafka's and go
to the client as they are; none holds the password."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


class PlainFailure(Exception):
    pass


class PlainServer:
    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.complete = False
        self.username: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        text = token.decode("utf-8", errors="replace")
        tokens = text.split("\x00", 3)
        if len(tokens) != 3:
            raise PlainFailure(f"Invalid SASL/PLAIN response: expected 3 tokens, got {min(len(tokens), 4)}")
        authzid, username, password = tokens
        if not username:
            raise PlainFailure("Authentication failed: username not specified")
        if not password:
            raise PlainFailure("Authentication failed: password not specified")
        expected = self._users.get(username)
        # Compare in constant time, and also for an unknown user, so timing does not tell.
        ok = hmac.compare_digest((expected or "\x00").encode(), password.encode()) and expected is not None
        if not ok:
            raise PlainFailure("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise PlainFailure(
                "Authentication failed: Client requested an authorization id that is different from username"
            )
        self.username = username
        self.complete = True
        return b""
