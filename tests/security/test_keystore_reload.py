"""Key store reload on AlterConfigs, driven by confluent-kafka's admin client over the SSL
listener itself: a new key store path, the same path with the file replaced (Kafka's in-place
reload), and the checks that refuse a store that does not load or changes the certificate's DN or
alternative names (unless ``ssl.allow.dn.changes`` / ``ssl.allow.san.changes``)."""

from __future__ import annotations

import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from cryptography import x509

from broker import embedding
from broker.embedding import EmbeddedBroker
from tests.security.certs import Identity, Pki, issue_server_identity, ssl_listener_settings

TIMEOUT = 10.0
KEYSTORE = "listener.name.ssl.ssl.keystore.location"


def served_serial(broker: EmbeddedBroker, pki: Pki) -> int:
    """The serial number of the certificate a new TLS connection is shown."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    raw = socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def serial_of(identity: Identity) -> int:
    return int(x509.load_pem_x509_certificates(identity.cert.read_bytes())[0].serial_number)


def alter(broker: EmbeddedBroker, pki: Pki, configs: dict[str, str]) -> None:
    """IncrementalAlterConfigs SET on this broker's resource; raises KafkaException on an error."""
    admin = AdminClient(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "security.protocol": "SSL",
            "ssl.ca.location": str(pki.ca),
        }
    )
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
    resource = ConfigResource(
        ResourceType.BROKER, str(broker.call(lambda b: b.node_id)), incremental_configs=entries
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=TIMEOUT)


@pytest.fixture
def keystore(pki: Pki, tmp_path: Path) -> Path:
    """A copy of the server key store the broker starts with, to be replaced in place."""
    path = tmp_path / "keystore.pem"
    shutil.copyfile(pki.server.keystore, path)
    return path


@pytest.fixture
def broker(pki: Pki, keystore: Path) -> Iterator[EmbeddedBroker]:
    settings = ssl_listener_settings(pki)
    settings["ssl.keystore.location"] = str(keystore)
    with embedding.embedded(settings) as started:
        yield started


def test_a_new_keystore_path_is_served_to_new_connections(
    broker: EmbeddedBroker, pki: Pki, tmp_path: Path
) -> None:
    assert served_serial(broker, pki) == serial_of(pki.server)
    renewed = issue_server_identity(pki, tmp_path, "renewed")
    alter(broker, pki, {KEYSTORE: str(renewed.keystore)})
    assert served_serial(broker, pki) == serial_of(renewed)


def test_the_same_path_reloads_a_file_replaced_in_place(
    broker: EmbeddedBroker, pki: Pki, keystore: Path, tmp_path: Path
) -> None:
    alter(broker, pki, {KEYSTORE: str(keystore)})
    assert served_serial(broker, pki) == serial_of(pki.server)
    renewed = issue_server_identity(pki, tmp_path, "renewed")
    shutil.copyfile(renewed.keystore, keystore)
    alter(broker, pki, {KEYSTORE: str(keystore)})
    assert served_serial(broker, pki) == serial_of(renewed)


@pytest.mark.parametrize(
    ("change", "allow"),
    [
        ({"cn": "someone-else"}, "ssl.allow.dn.changes"),
        ({"alternative_names": ("localhost", "127.0.0.1", "broker.example")}, "ssl.allow.san.changes"),
    ],
)
def test_an_identity_change_is_refused_unless_allowed(
    broker: EmbeddedBroker, pki: Pki, tmp_path: Path, change: dict[str, object], allow: str
) -> None:
    other = issue_server_identity(pki, tmp_path, "other", **change)  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"does not match|do not match") as refused:
        alter(broker, pki, {KEYSTORE: str(other.keystore)})
    assert "INVALID_CONFIG" in str(refused.value)
    assert served_serial(broker, pki) == serial_of(pki.server)
    alter(broker, pki, {f"listener.name.ssl.{allow}": "true", KEYSTORE: str(other.keystore)})
    assert served_serial(broker, pki) == serial_of(other)


def test_a_broken_keystore_is_refused_and_the_old_one_kept(
    broker: EmbeddedBroker, pki: Pki, keystore: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(Exception, match="SSLFactory") as refused:
        alter(broker, pki, {KEYSTORE: str(garbage)})
    assert "INVALID_CONFIG" in str(refused.value)
    # A file broken in place is refused the same way and the running context stays.
    keystore.write_bytes(b"broken")
    with pytest.raises(Exception, match="SSLFactory"):
        alter(broker, pki, {KEYSTORE: str(keystore)})
    assert served_serial(broker, pki) == serial_of(pki.server)
