"""A SASL listener's settings from Kafka 3.9's keys, checked at start.

- ``listener.name.<l>.sasl.enabled.mechanisms``, else ``sasl.enabled.mechanisms`` (Kafka's
  default is GSSAPI). Brook serves PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; any other mechanism
  enabled on a SASL listener is a ConfigError at start.
- The JAAS login context of each mechanism: ``listener.name.<l>.<mechanism>.sasl.jaas.config``
  (mechanism in lower case), else ``sasl.jaas.config``. PLAIN's users are its ``user_<name>``
  options; SCRAM users come from the credential store (AlterUserScramCredentials).
- ``listener.name.<l>.<mechanism>.connections.max.reauth.ms``, else ``connections.max.reauth.ms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.config.errors import ConfigError
from broker.security.jaas import JaasError, LoginModule, single_login_module
from broker.security.scram import MECHANISMS as SCRAM_MECHANISMS
from storage.fast_dataclass import dataclass, field

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.security.credentials import ScramCredentialStore

PLAIN = "PLAIN"
SUPPORTED_MECHANISMS = (PLAIN, *SCRAM_MECHANISMS)
_USER_PREFIX = "user_"


@dataclass(frozen=True, slots=True)
class SaslListener:
    """What a SASL listener's connections need to authenticate their clients."""

    mechanisms: list[str]
    #: PLAIN: user -> password, from the JAAS ``user_<name>`` options (never in the repr).
    plain_users: dict[str, str] = field(repr=False)
    scram_credentials: ScramCredentialStore | None
    max_receive_size: int = 524288
    failed_authentication_delay_ms: int = 100
    #: connections.max.reauth.ms per mechanism (0: sessions never expire).
    max_reauth_ms: dict[str, int] = field(default_factory=dict)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(getattr(value, "value", value))  # a Password's text is its secret
    return text or None


def _lookup(config: BrokerConfig, *names: str) -> object:
    for name in names:
        if name in config and config.get(name) is not None:
            return config.get(name)
    return None


def enabled_mechanisms(config: BrokerConfig, listener: str) -> list[str]:
    value = _lookup(
        config, f"listener.name.{listener.lower()}.sasl.enabled.mechanisms", "sasl.enabled.mechanisms"
    )
    if isinstance(value, list):
        items = [str(item).strip() for item in value]
    else:
        items = [item.strip() for item in str(value or "").split(",")]
    return [item for item in items if item]


def jaas_config_text(config: BrokerConfig, listener: str, mechanism: str) -> str | None:
    return _text(
        _lookup(
            config,
            f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config",
            "sasl.jaas.config",
        )
    )


def login_module(config: BrokerConfig, listener: str, mechanism: str) -> LoginModule | None:
    """The mechanism's JAAS login module on ``listener``; None when none is configured."""
    text = jaas_config_text(config, listener, mechanism)
    if text is None:
        return None
    try:
        return single_login_module(text)
    except JaasError as exc:
        name = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
        raise ConfigError(
            f"Invalid value for configuration {name}: {exc}", name=name, value="[hidden]"
        ) from None


def sasl_listener(config: BrokerConfig, listener: str, store: ScramCredentialStore | None) -> SaslListener:
    """The listener's SASL settings; ConfigError names what is wrong (never a password)."""
    mechanisms = enabled_mechanisms(config, listener)
    if not mechanisms:
        raise ConfigError(
            f"No SASL mechanisms are enabled on listener {listener} (sasl.enabled.mechanisms)",
            name="sasl.enabled.mechanisms",
        )
    unsupported = [m for m in mechanisms if m not in SUPPORTED_MECHANISMS]
    if unsupported:
        raise ConfigError(
            f"SASL mechanism {', '.join(unsupported)} enabled on listener {listener} is not supported "
            "by Brook "
            f"(supported: {', '.join(SUPPORTED_MECHANISMS)}); set sasl.enabled.mechanisms or "
            f"listener.name.{listener.lower()}.sasl.enabled.mechanisms",
            name="sasl.enabled.mechanisms",
            value=",".join(mechanisms),
        )
    plain_users: dict[str, str] = {}
    reauth: dict[str, int] = {}
    for mechanism in mechanisms:
        module = login_module(config, listener, mechanism)
        if module is None:
            raise ConfigError(
                f"Could not find a JAAS configuration for mechanism {mechanism} on listener {listener}: set "
                f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config "
                "(or sasl.jaas.config)",
                name="sasl.jaas.config",
            )
        if mechanism == PLAIN:
            plain_users = {
                key[len(_USER_PREFIX) :]: value
                for key, value in module.options.items()
                if key.startswith(_USER_PREFIX)
            }
        value = _lookup(
            config,
            f"listener.name.{listener.lower()}.{mechanism.lower()}.connections.max.reauth.ms",
            "connections.max.reauth.ms",
        )
        reauth[mechanism] = int(str(value or 0))
    return SaslListener(
        mechanisms,
        plain_users,
        store,
        int(str(config.get("sasl.server.max.receive.size"))),
        int(str(config.get("connection.failed.authentication.delay.ms"))),
        reauth,
    )


def client_credentials(config: BrokerConfig, listener: str, mechanism: str) -> tuple[str, str]:
    """The inter-broker client's username and password: the ``username`` and ``password`` options
    of the listener's JAAS login module for ``mechanism`` (Kafka's SaslClientAuthenticator)."""
    module = login_module(config, listener, mechanism)
    if module is None or "username" not in module.options or "password" not in module.options:
        raise ConfigError(
            f"The JAAS configuration of mechanism {mechanism} on inter-broker listener {listener} needs "
            "username and password options",
            name="sasl.mechanism.inter.broker.protocol",
            value=mechanism,
        )
    return module.options["username"], module.options["password"]


def check_inter_broker_sasl(config: BrokerConfig, listener: str, enabled: list[str]) -> None:
    """Kafka's start-up rule: the inter-broker mechanism is enabled on the inter-broker listener;
    and in cluster mode (where brokers connect to each other) its JAAS module names the user."""
    mechanism = str(config.get("sasl.mechanism.inter.broker.protocol"))
    if mechanism not in enabled:
        raise ConfigError(
            "sasl.mechanism.inter.broker.protocol must be included in sasl.enabled.mechanisms when SASL "
            f"is used for inter-broker communication (it is {mechanism}; enabled on {listener}: "
            f"{', '.join(enabled)})",
            name="sasl.mechanism.inter.broker.protocol",
            value=mechanism,
        )
    if not config.standalone:
        client_credentials(config, listener, mechanism)
