"""The listeners a broker binds, with each SSL listener's TLS settings built from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.network.connection import TlsListener
from broker.network.server import ListenAddress

if TYPE_CHECKING:
    from broker.config import BrokerConfig


def listen_addresses(config: BrokerConfig) -> list[ListenAddress]:
    """One address per entry of ``listeners``; ConfigError when an SSL listener's key material
    or rules are unusable, so the broker refuses to start with the reason.

    The handshake deadline is ``socket.connection.setup.timeout.ms``: the time Kafka gives a
    connection to be set up, and what keeps half-open handshakes from holding sockets."""
    timeout_s = int(str(config.get("socket.connection.setup.timeout.ms"))) / 1000
    addresses = []
    for listener in config.listeners:
        tls = None
        if listener.security_protocol == "SSL":
            # Loaded only for an SSL listener: a PLAINTEXT broker's start does not pay for them.
            from .ssl_context import listener_lookup, server_context
            from .ssl_principal import SslPrincipalMapper

            rules = listener_lookup(config, listener.name)("ssl.principal.mapping.rules")
            mapper = SslPrincipalMapper(None if rules is None else str(rules))
            tls = TlsListener(server_context(config, listener.name), mapper.name, timeout_s)
        addresses.append(
            ListenAddress(listener.name, listener.host, listener.port, listener.security_protocol, tls)
        )
    return addresses
