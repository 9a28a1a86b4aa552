"""TLS and SASL for the ``brook`` command line, from a Kafka client's properties
(``--command-config``): ``security.protocol`` PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL;
``sasl.mechanism`` PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with the ``username`` and ``password`` of
``sasl.jaas.config``; the ``ssl.truststore.*`` / ``ssl.keystore.*`` keys (PEM or PKCS12, files or
inline) and ``ssl.endpoint.identification.algorithm`` (``https`` by default, as Kafka's clients)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from broker.cli.client import CliError
from broker.config.errors import ConfigError
from broker.security.jaas import JaasError, single_login_module
from broker.security.sasl_client import SaslClientSettings
from broker.security.sasl_config import SUPPORTED_MECHANISMS

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: Kafka's client defaults for the keys the TLS context reads.
_SSL_DEFAULTS = {"ssl.endpoint.identification.algorithm": "https"}


class ClientSecurity:
    __slots__ = ("protocol", "sasl", "ssl_context")

    def __init__(
        self, protocol: str, ssl_context: ssl.SSLContext | None = None, sasl: SaslClientSettings | None = None
    ) -> None:
        self.protocol = protocol
        self.ssl_context = ssl_context
        self.sasl = sasl


def security_from(props: Mapping[str, str]) -> ClientSecurity:
    """The connection security the properties ask for; CliError when they cannot be honoured."""
    protocol = props.get("security.protocol", "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise CliError(
            f"Invalid value {protocol} for configuration security.protocol: must be one of {PROTOCOLS}"
        )
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        from broker.security.ssl_context import client_context_from

        def get(key: str) -> object:
            return props.get(key, _SSL_DEFAULTS.get(key))

        try:
            context = client_context_from(get)
        except (ConfigError, OSError, ValueError, ssl.SSLError) as exc:
            raise CliError(f"Invalid TLS client settings: {exc}") from None
    sasl = None
    if protocol.startswith("SASL_"):
        mechanism = props.get("sasl.mechanism", "GSSAPI").strip()
        if mechanism not in SUPPORTED_MECHANISMS:
            raise CliError(
                f"sasl.mechanism={mechanism} is not supported by the brook command line "
                f"(supported: {', '.join(SUPPORTED_MECHANISMS)})"
            )
        jaas = props.get("sasl.jaas.config")
        if not jaas:
            raise CliError("sasl.jaas.config must be set (a login module with username and password)")
        try:
            options = single_login_module(jaas).options
        except JaasError as exc:
            raise CliError(f"Invalid sasl.jaas.config: {exc}") from None
        if "username" not in options or "password" not in options:
            raise CliError("sasl.jaas.config must give username and password")
        sasl = SaslClientSettings(mechanism, options["username"], options["password"])
    return ClientSecurity(protocol, context, sasl)
