"""TLS contexts from ssl.* keys: PEM and PKCS12 stores, inline PEM, listener overrides, protocol
and cipher restrictions, and clear ConfigErrors for what cannot work."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from broker.config import BrokerConfig, ConfigError, load_config
from broker.security.listeners import listen_addresses
from broker.security.ssl_context import client_context, openssl_cipher_name, server_context
from tests.security.certs import KEY_PASSWORD, STORE_PASSWORD, Pki


def _config(**settings: str) -> BrokerConfig:
    base = {
        "listeners": "SSL://127.0.0.1:0",
        "log.dirs": "/tmp/unused-brook",
        "security.inter.broker.protocol": "SSL",
    }
    return load_config(None, [f"{k}={v}" for k, v in {**base, **settings}.items()])


def _pem(pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server.keystore),
        "ssl.key.password": KEY_PASSWORD,
        **extra,
    }


@contextmanager
def _serving(context: ssl.SSLContext) -> Iterator[int]:
    """A one-connection TLS server on a thread: handshakes, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)


def _handshake(port: int, context: ssl.SSLContext, host: str = "localhost") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname=host)


def test_pem_keystore_serves_a_verifying_client(pki: Pki) -> None:
    server = server_context(_config(**_pem(pki)), "SSL")
    with _serving(server) as port, _handshake(port, ssl.create_default_context(cafile=str(pki.ca))) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_pkcs12_keystore_and_truststore(pki: Pki) -> None:
    config = _config(
        **{
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(pki.server.p12),
            "ssl.keystore.password": STORE_PASSWORD,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(pki.ca_p12),
            "ssl.truststore.password": STORE_PASSWORD,
            "ssl.client.auth": "required",
        }
    )
    server = server_context(config, "SSL")
    client = client_context(config, "SSL")  # the broker's own client: PKCS12 trust, its key store
    with _serving(server) as port, _handshake(port, client) as tls:
        assert tls.getpeercert()["subject"][-1] == (("commonName", "localhost"),)


def test_inline_pem_and_listener_prefixed_keys(pki: Pki) -> None:
    key = pki.server.key.read_text()
    chain = pki.server.cert.read_text()
    config = _config(
        **{
            "listener.name.ssl.ssl.keystore.type": "PEM",
            "listener.name.ssl.ssl.keystore.key": key,
            "listener.name.ssl.ssl.keystore.certificate.chain": chain,
            "listener.name.ssl.ssl.truststore.type": "PEM",
            "listener.name.ssl.ssl.truststore.certificates": pki.ca.read_text(),
        }
    )
    server = server_context(config, "SSL")
    with _serving(server) as port, _handshake(port, client_context(config, "SSL")) as tls:
        assert tls.version() is not None


def test_endpoint_identification_checks_the_host_name(pki: Pki) -> None:
    server = server_context(_config(**_pem(pki)), "SSL")
    strict = client_context(_config(**_pem(pki, **{"ssl.truststore.location": str(pki.ca)})), "SSL")
    with _serving(server) as port, pytest.raises(ssl.SSLCertVerificationError):
        _handshake(port, strict, host="not-this-broker.example")
    lax = client_context(
        _config(
            **_pem(
                pki, **{"ssl.truststore.location": str(pki.ca), "ssl.endpoint.identification.algorithm": ""}
            )
        ),
        "SSL",
    )
    with _serving(server) as port, _handshake(port, lax, host="not-this-broker.example") as tls:
        assert tls.version() is not None


def test_enabled_protocols_and_cipher_suites(pki: Pki) -> None:
    only_13 = server_context(_config(**_pem(pki, **{"ssl.enabled.protocols": "TLSv1.3"})), "SSL")
    old_client = ssl.create_default_context(cafile=str(pki.ca))
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with _serving(only_13) as port, pytest.raises(ssl.SSLError):
        _handshake(port, old_client)
    suite = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert openssl_cipher_name(suite) == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert openssl_cipher_name("TLS_RSA_WITH_AES_256_CBC_SHA256") == "AES256-SHA256"
    one_suite = server_context(
        _config(**_pem(pki, **{"ssl.enabled.protocols": "TLSv1.2", "ssl.cipher.suites": suite})), "SSL"
    )
    with _serving(one_suite) as port, _handshake(port, old_client) as tls:
        cipher = tls.cipher()
        assert cipher is not None and cipher[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "has no key store"),
        ({"ssl.keystore.location": "/nonexistent/ks.pem", "ssl.keystore.type": "PEM"}, "cannot read it"),
        ({"ssl.keystore.type": "BCFKS", "ssl.keystore.location": "KS"}, "supported types are PEM and PKCS12"),
        ({"ssl.enabled.protocols": "SSLv3"}, "unsupported protocol"),
        ({"ssl.cipher.suites": "TLS_NOPE_WITH_NOTHING_SHA1"}, "no usable cipher suite"),
        ({"ssl.principal.mapping.rules": "RULE:broken"}, "Invalid rule"),
    ],
)
def test_unusable_settings_are_config_errors(
    pki: Pki, tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    base = _pem(pki) if settings and "ssl.keystore.location" not in settings else {}
    resolved = {k: (str(pki.server.keystore) if v == "KS" else v) for k, v in settings.items()}
    with pytest.raises(ConfigError, match=message):
        listen_addresses(_config(**{**base, **resolved}))


def test_wrong_key_password_and_jks_file(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ssl\.key\.password"):
        server_context(_config(**_pem(pki, **{"ssl.key.password": "wrong"})), "SSL")
    # An encrypted key and no password: an error, never a prompt on the terminal.
    with pytest.raises(ConfigError, match=r"ssl\.key\.password"):
        server_context(
            _config(**{"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.server.keystore)}), "SSL"
        )
    jks = tmp_path / "old.jks"
    jks.write_bytes(b"\xfe\xed\xfe\xed" + b"\x00" * 64)
    with pytest.raises(ConfigError, match="keytool -importkeystore"):
        server_context(_config(**{"ssl.keystore.location": str(jks)}), "SSL")
    with pytest.raises(ConfigError, match=r"ssl\.keystore\.password"):
        server_context(
            _config(**{"ssl.keystore.location": str(pki.server.p12), "ssl.keystore.password": "wrong"}), "SSL"
        )


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_listeners_load_and_refuse_kafkas_default_gssapi_at_start(protocol: str) -> None:
    from broker.security.listeners import listen_addresses

    config = load_config(
        None, [f"listeners={protocol}://127.0.0.1:0", f"security.inter.broker.protocol={protocol}"]
    )
    with pytest.raises(ConfigError, match=r"GSSAPI enabled on listener .* is not supported|has no key store"):
        listen_addresses(config)


def test_docker_image_settings(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The container takes TLS as KAFKA_* variables, also in apache/kafka's file-name convention
    (key stores and password files under the secrets directory)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "brook_entrypoint_tls", Path(__file__).resolve().parents[2] / "docker" / "entrypoint.py"
    )
    assert spec is not None and spec.loader is not None
    entrypoint = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = entrypoint
    spec.loader.exec_module(entrypoint)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "broker.p12").write_bytes(pki.server.p12.read_bytes())
    (secrets / "truststore.p12").write_bytes(pki.ca_p12.read_bytes())
    (secrets / "store_creds").write_text(STORE_PASSWORD + "\n")
    monkeypatch.setattr(entrypoint, "SECRETS_DIR", secrets)
    env = {
        "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:9092,SSL://0.0.0.0:9093",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:9092,SSL://localhost:9093",
        "KAFKA_SSL_KEYSTORE_FILENAME": "broker.p12",
        "KAFKA_SSL_KEYSTORE_CREDENTIALS": "store_creds",
        "KAFKA_SSL_KEY_CREDENTIALS": "store_creds",
        "KAFKA_SSL_TRUSTSTORE_FILENAME": "truststore.p12",
        "KAFKA_SSL_TRUSTSTORE_CREDENTIALS": "store_creds",
        "KAFKA_SSL_CLIENT_AUTH": "required",
        "KAFKA_LISTENER_NAME_SSL_SSL_PRINCIPAL_MAPPING_RULES": "RULE:^CN=([^,]+),.*$/$1/",
    }
    config, _ = entrypoint.load(env, entrypoint.Arguments())
    assert config.get("ssl.keystore.location") == str(secrets / "broker.p12")
    assert "ssl.keystore.filename" not in config.names
    [plain, tls] = listen_addresses(config)
    assert plain.tls is None and tls.tls is not None
    assert tls.tls.context.verify_mode == ssl.CERT_REQUIRED
    assert tls.tls.principal_name("CN=alice,OU=clients") == "alice"
    assert entrypoint.healthcheck_target(config) == ("127.0.0.1", 9092)
