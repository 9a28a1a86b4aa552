"""The client side of SASL for this broker's own connections (replica fetchers, controller
channels) and the ``brook`` CLI: PLAIN and SCRAM-SHA-256/512 token exchanges, no I/O.

The inter-broker credentials are the ``username`` and ``password`` options of the inter-broker
listener's JAAS login module for ``sasl.mechanism.inter.broker.protocol``, as Kafka's
SaslClientAuthenticator takes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.security.sasl_config import PLAIN, SUPPORTED_MECHANISMS
from broker.security.scram import ScramClient

if TYPE_CHECKING:
    from broker.config import BrokerConfig


class SaslClientSettings:
    """Mechanism, user and password; the password never appears in its repr."""

    __slots__ = ("mechanism", "password", "username")

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        if mechanism not in SUPPORTED_MECHANISMS:
            raise ValueError(
                f"unsupported SASL mechanism {mechanism} (supported: {', '.join(SUPPORTED_MECHANISMS)})"
            )
        self.mechanism = mechanism
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return f"SaslClientSettings({self.mechanism}, {self.username!r}, password=[hidden])"

    def exchange(self) -> SaslClientExchange:
        return SaslClientExchange(self)


class SaslClientExchange:
    """``first()``, then ``respond(server_token)`` until it returns None (done). Raises
    ScramError when the server's answer is wrong (SCRAM checks the server's signature)."""

    def __init__(self, settings: SaslClientSettings) -> None:
        self.settings = settings
        self._scram = (
            None
            if settings.mechanism == PLAIN
            else ScramClient(settings.mechanism, settings.username, settings.password)
        )
        self._step = 0

    def first(self) -> bytes:
        if self._scram is None:
            return f"\0{self.settings.username}\0{self.settings.password}".encode()
        return self._scram.first()

    def respond(self, server_token: bytes) -> bytes | None:
        self._step += 1
        if self._scram is None:
            return None
        if self._step == 1:
            return self._scram.final(server_token)
        self._scram.verify(server_token)
        return None


def inter_broker_sasl(config: BrokerConfig) -> SaslClientSettings | None:
    """The SASL settings of this broker's connections to other brokers, None when the
    inter-broker listener is not a SASL one."""
    from broker.security.sasl_config import client_credentials

    listener = config.inter_broker_listener_name
    protocol = config.listener_security_protocol_map.get(listener, listener)
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return None
    mechanism = str(config.get("sasl.mechanism.inter.broker.protocol"))
    username, password = client_credentials(config, listener, mechanism)
    return SaslClientSettings(mechanism, username, password)
