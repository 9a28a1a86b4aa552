"""A SASL listener's settings at start: Kafka's keys, per-listener overrides, and a clear error
for what Brook cannot serve (GSSAPI, OAUTHBEARER) or a missing JAAS configuration."""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig, ConfigError
from broker.security.listeners import listen_addresses

PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)


def _config(**settings: str) -> BrokerConfig:
    base = {"listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", "log.dirs": "/tmp/unused"}
    return BrokerConfig({**base, **settings}, warn_unknown=False)


def test_gssapi_default_is_refused_only_on_a_sasl_listener() -> None:
    assert [a.sasl for a in listen_addresses(BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0"}))] == [
        None
    ]
    with pytest.raises(ConfigError, match="GSSAPI enabled on listener SASL_PLAINTEXT is not supported"):
        listen_addresses(_config())
    with pytest.raises(ConfigError, match="OAUTHBEARER"):
        listen_addresses(
            _config(**{"sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER", "sasl.jaas.config": PLAIN_JAAS})
        )


def test_per_listener_mechanisms_and_jaas() -> None:
    addresses = listen_addresses(
        _config(
            **{
                "sasl.enabled.mechanisms": "GSSAPI",  # the broker-wide key loses to the listener's
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "listener.name.sasl_plaintext.scram-sha-256.connections.max.reauth.ms": "60000",
                "security.inter.broker.protocol": "PLAINTEXT",
            }
        )
    )
    sasl = addresses[1].sasl
    assert sasl is not None
    assert sasl.mechanisms == ["PLAIN", "SCRAM-SHA-256"]
    assert sasl.plain_users == {"admin": "admin-secret", "alice": "alice-secret"}
    assert sasl.max_reauth_ms == {"PLAIN": 0, "SCRAM-SHA-256": 60000}
    assert (sasl.max_receive_size, sasl.failed_authentication_delay_ms) == (524288, 100)
    assert "alice-secret" not in repr(addresses)


def test_missing_or_bad_jaas_is_a_start_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="Could not find a JAAS configuration for mechanism PLAIN"):
        listen_addresses(_config(**{"sasl.enabled.mechanisms": "PLAIN"}))
    bad = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="hunter2"'
    with pytest.raises(ConfigError) as failure:
        listen_addresses(
            _config(
                **{
                    "sasl.enabled.mechanisms": "PLAIN",
                    "listener.name.sasl_plaintext.plain.sasl.jaas.config": bad,
                }
            )
        )
    assert "hunter2" not in str(failure.value)


def test_inter_broker_mechanism_must_be_enabled() -> None:
    with pytest.raises(ConfigError, match=r"sasl\.mechanism\.inter\.broker\.protocol must be included"):
        listen_addresses(
            _config(
                **{
                    "sasl.enabled.mechanisms": "PLAIN",
                    "sasl.jaas.config": PLAIN_JAAS,
                    "inter.broker.listener.name": "SASL_PLAINTEXT",
                    "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                }
            )
        )
