"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), sans I/O, as Kafka's ScramSaslServer.

The broker keeps, per user and mechanism, only what RFC 5802 calls the stored key and server key
with their salt and iteration count (Kafka's ScramCredential); the password never reaches it, not
even on AlterUserScramCredentials, where the client sends the salted password. Verifying a proof
is two hashes and an HMAC: nothing slow runs on the event loop.

:class:`ScramServer` is one exchange: ``client-first`` in, ``server-first`` out, ``client-final``
in, ``server-final`` out. :class:`ScramClient` is the other side, for the inter-broker client and
the CLI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

from storage.fast_dataclass import dataclass

#: Kafka's ScramMechanism: name -> (hashlib name, min iterations, max iterations).
MECHANISMS: dict[str, tuple[str, int, int]] = {
    "SCRAM-SHA-256": ("sha256", 4096, 16384),
    "SCRAM-SHA-512": ("sha512", 4096, 16384),
}
#: The mechanism type in Describe/AlterUserScramCredentials (Kafka's ScramMechanism.type()).
MECHANISM_TYPES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES = {code: name for name, code in MECHANISM_TYPES.items()}
#: Kafka's only SCRAM extension: delegation-token authentication (not supported by Brook).
TOKEN_AUTH_EXTENSION = "tokenauth"


class ScramError(Exception):
    """The exchange failed. ``client_message`` is what the client may be told: Kafka hides the
    cause of a failed SCRAM exchange behind a generic message unless it is safe to say."""

    def __init__(self, detail: str, client_message: str | None = None) -> None:
        super().__init__(detail)
        self.client_message = client_message


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_config(self) -> str:
        """Kafka's ScramCredentialUtils.credentialToString, the value kept in ZooKeeper."""
        b64 = base64.b64encode
        return (
            f"salt={b64(self.salt).decode()},stored_key={b64(self.stored_key).decode()},"
            f"server_key={b64(self.server_key).decode()},iterations={self.iterations}"
        )

    @classmethod
    def from_config(cls, text: str) -> ScramCredential:
        """Parse :meth:`to_config`'s form; ValueError when a field is missing or malformed."""
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        try:
            return cls(
                base64.b64decode(fields["salt"], validate=True),
                base64.b64decode(fields["stored_key"], validate=True),
                base64.b64decode(fields["server_key"], validate=True),
                int(fields["iterations"]),
            )
        except (KeyError, binascii.Error) as exc:
            raise ValueError(f"invalid SCRAM credential: {exc!r}") from None


def _hash_name(mechanism: str) -> str:
    return MECHANISMS[mechanism][0]


def hmac_of(mechanism: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, _hash_name(mechanism)).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i) of RFC 5802: PBKDF2 with the mechanism's HMAC (a few ms at 4096)."""
    return hashlib.pbkdf2_hmac(_hash_name(mechanism), password.encode(), salt, iterations)


def credential_from_salted_password(
    mechanism: str, salt: bytes, salted: bytes, iterations: int
) -> ScramCredential:
    client_key = hmac_of(mechanism, salted, b"Client Key")
    stored_key = hashlib.new(_hash_name(mechanism), client_key).digest()
    server_key = hmac_of(mechanism, salted, b"Server Key")
    return ScramCredential(salt, stored_key, server_key, iterations)


def credential_from_password(
    mechanism: str, password: str, iterations: int, salt: bytes | None = None
) -> ScramCredential:
    salt = secrets.token_bytes(32) if salt is None else salt
    return credential_from_salted_password(
        mechanism, salt, salted_password(mechanism, password, salt, iterations), iterations
    )


def secure_random_string() -> str:
    """Kafka's ScramFormatter.secureRandomString: 130 random bits in base 36."""
    value = secrets.randbits(130)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    while value:
        value, digit = divmod(value, 36)
        out.append(digits[digit])
    return "".join(reversed(out)) or "0"


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _decode_saslname(name: str) -> str:
    """RFC 5802's saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` is an error."""
    if re.search(r"=(?!2C|3D)", name):
        raise ScramError("Invalid username")
    return name.replace("=2C", ",").replace("=3D", "=")


def _encode_saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


_CLIENT_FIRST = re.compile(
    r"(?P<gs2>n,(?:a=(?P<authzid>[^,]*))?,)(?P<bare>n=(?P<user>[^,]*),r=(?P<nonce>[\x21-\x2b\x2d-\x7e]+)"
    r"(?P<ext>(?:,[a-zA-Z0-9]+=[^,]*)*))",
    re.DOTALL,
)
_CLIENT_FINAL = re.compile(
    r"(?P<without_proof>c=(?P<binding>[A-Za-z0-9+/=]*),r=(?P<nonce>[\x21-\x2b\x2d-\x7e]+)"
    r"(?:,[a-zA-Z0-9]+=[^,]*)*),p=(?P<proof>[A-Za-z0-9+/=]+)",
    re.DOTALL,
)


class ScramServer:
    """One server-side exchange. ``lookup(user)`` returns the user's credential for this mechanism
    (None when unknown). ``evaluate`` raises ScramError on any failure."""

    def __init__(
        self, mechanism: str, lookup: Callable[[str], ScramCredential | None], *, nonce: str | None = None
    ) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SCRAM mechanism {mechanism}")
        self.mechanism = mechanism
        self._lookup = lookup
        self._server_nonce = nonce if nonce is not None else secure_random_string()
        self._state = "first"
        self._credential: ScramCredential | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._gs2 = ""
        self.username: str | None = None
        self.complete = False

    def evaluate(self, token: bytes) -> bytes:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("SCRAM message is not UTF-8") from None
        if self._state == "first":
            return self._client_first(text)
        if self._state == "final":
            return self._client_final(text)
        raise ScramError(f"Unexpected challenge in Sasl server state {self._state}")

    def _client_first(self, text: str) -> bytes:
        match = _CLIENT_FIRST.fullmatch(text)
        if match is None:
            raise ScramError("Invalid SCRAM client first message")
        extensions = {
            key: value for key, _, value in (item.partition("=") for item in match["ext"].split(",")[1:])
        }
        if set(extensions) - {TOKEN_AUTH_EXTENSION}:
            raise ScramError(f"Unsupported extensions will not be used: {sorted(extensions)}")
        if extensions.get(TOKEN_AUTH_EXTENSION, "false").lower() == "true":
            raise ScramError("Token Authentication failed: delegation tokens are not supported")
        username = _decode_saslname(match["user"])
        credential = self._lookup(username)
        if credential is None:
            raise ScramError("Authentication failed: Invalid user credentials")
        authzid = match["authzid"]
        if authzid and _decode_saslname(authzid) != username:
            raise ScramError(
                "authzid differs from username",
                "Authentication failed: Client requested an authorization id that is different from username",
            )
        minimum = MECHANISMS[self.mechanism][1]
        if credential.iterations < minimum:
            raise ScramError(f"Iterations {credential.iterations} is less than the minimum {minimum}")
        self.username = username
        self._credential = credential
        self._gs2 = match["gs2"]
        self._client_first_bare = match["bare"]
        self._nonce = match["nonce"] + self._server_nonce
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        self._state = "final"
        return self._server_first.encode()

    def _client_final(self, text: str) -> bytes:
        match = _CLIENT_FINAL.fullmatch(text)
        if match is None:
            raise ScramError("Authentication failed: Invalid client final message")
        # Kafka checks only that the nonce ends with the server-first one: librdkafka before 2.1
        # sends its own nonce twice in front of it.
        if not match["nonce"].endswith(self._nonce):
            raise ScramError("Invalid client nonce in the final client message.")
        try:
            binding = base64.b64decode(match["binding"], validate=True)
            proof = base64.b64decode(match["proof"], validate=True)
        except binascii.Error:
            raise ScramError("Authentication failed: Invalid client final message") from None
        if binding != self._gs2.encode():
            raise ScramError("Invalid channel binding")
        credential = self._credential
        assert credential is not None
        auth_message = f"{self._client_first_bare},{self._server_first},{match['without_proof']}".encode()
        signature = hmac_of(self.mechanism, credential.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("Invalid client credentials")
        client_key = _xor(proof, signature)
        computed = hashlib.new(_hash_name(self.mechanism), client_key).digest()
        if not hmac.compare_digest(computed, credential.stored_key):
            raise ScramError("Invalid client credentials")
        server_signature = hmac_of(self.mechanism, credential.server_key, auth_message)
        self._state = "complete"
        self.complete = True
        return b"v=" + base64.b64encode(server_signature)


class ScramClient:
    """The client side: ``first()``, then ``final(server_first)``, then ``verify(server_final)``."""

    def __init__(self, mechanism: str, username: str, password: str, *, nonce: str | None = None) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SCRAM mechanism {mechanism}")
        self.mechanism = mechanism
        self._password = password
        self._nonce = nonce if nonce is not None else secure_random_string()
        self._bare = f"n={_encode_saslname(username)},r={self._nonce}"
        self._server_signature = b""

    def first(self) -> bytes:
        return ("n,," + self._bare).encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        nonce, salt, iterations = fields.get("r", ""), fields.get("s", ""), fields.get("i", "0")
        if not nonce.startswith(self._nonce):
            raise ScramError("Invalid server nonce: does not start with client nonce")
        count = int(iterations)
        if count < MECHANISMS[self.mechanism][1]:
            raise ScramError(f"Requested iterations {count} is less than the minimum")
        salted = salted_password(self.mechanism, self._password, base64.b64decode(salt), count)
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._bare},{text},{without_proof}".encode()
        client_key = hmac_of(self.mechanism, salted, b"Client Key")
        stored_key = hashlib.new(_hash_name(self.mechanism), client_key).digest()
        proof = _xor(client_key, hmac_of(self.mechanism, stored_key, auth_message))
        server_key = hmac_of(self.mechanism, salted, b"Server Key")
        self._server_signature = hmac_of(self.mechanism, server_key, auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        text = server_final.decode(errors="replace")
        if text.startswith("e="):
            raise ScramError(f"Sasl authentication using {self.mechanism} failed with error: {text[2:]}")
        if not hmac.compare_digest(text, "v=" + base64.b64encode(self._server_signature).decode()):
            raise ScramError("Invalid server signature in server final message")
