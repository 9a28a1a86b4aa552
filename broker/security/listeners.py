"""The listeners a broker binds, with each SSL listener's TLS settings and each SASL listener's
mechanisms and users built from its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.network.connection import TlsListener
from broker.network.server import ListenAddress

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.security.credentials import ScramCredentialStore


def listen_addresses(
    config: BrokerConfig, scram_credentials: ScramCredentialStore | None = None
) -> list[ListenAddress]:
    """One address per entry of ``listeners``; ConfigError when an SSL listener's key material
    or rules are unusable, or a SASL listener's mechanisms or JAAS configuration are, so the
    broker refuses to start with the reason. SASL listeners check SCRAM clients against
    ``scram_credentials``.

    The handshake deadline is ``socket.connection.setup.timeout.ms``: the time Kafka gives a
    connection to be set up, and what keeps half-open handshakes from holding sockets."""
    timeout_s = int(str(config.get("socket.connection.setup.timeout.ms"))) / 1000
    addresses = []
    for listener in config.listeners:
        tls = None
        if listener.security_protocol in ("SSL", "SASL_SSL"):
            # Loaded only for an SSL listener: a PLAINTEXT broker's start does not pay for them.
            from .ssl_context import listener_lookup, server_context
            from .ssl_principal import SslPrincipalMapper

            rules = listener_lookup(config, listener.name)("ssl.principal.mapping.rules")
            mapper = SslPrincipalMapper(None if rules is None else str(rules))
            tls = TlsListener(server_context(config, listener.name), mapper.name, timeout_s)
        sasl = None
        if listener.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            from .sasl_config import check_inter_broker_sasl, sasl_listener

            sasl = sasl_listener(config, listener.name, scram_credentials)
            if listener.name == config.inter_broker_listener_name:
                check_inter_broker_sasl(config, listener.name, sasl.mechanisms)
        addresses.append(
            ListenAddress(listener.name, listener.host, listener.port, listener.security_protocol, tls, sasl)
        )
    return addresses
