"""Test PKI made with ``cryptography``: a CA, a server certificate for localhost/127.0.0.1,
client certificates (valid, expired, signed by another CA), written as PEM and PKCS12 files."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from storage.fast_dataclass import dataclass

KEY_PASSWORD = "key-secret"
STORE_PASSWORD = "store-secret"


@dataclass(frozen=True, slots=True)
class Identity:
    """One certificate and key as files: ``cert`` (the cert then the CA), ``key`` (unencrypted
    PKCS8), ``keystore`` (key + chain in one PEM, key encrypted with KEY_PASSWORD) and ``p12``
    (PKCS12 with STORE_PASSWORD)."""

    cert: Path
    key: Path
    keystore: Path
    p12: Path
    dn: str


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path  # the trusted CA certificate (PEM)
    ca_key: Path  # its private key (PEM, unencrypted), to issue more certificates in a test
    ca_p12: Path  # the same as a PKCS12 trust store (STORE_PASSWORD)
    server: Identity
    client: Identity
    expired: Identity
    untrusted: Identity


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Brook"),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    directory: Path,
    label: str,
    subject: x509.Name,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    *,
    server: bool,
    expired: bool = False,
    alternative_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=10), now - datetime.timedelta(days=5))
        if expired
        else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in alternative_names]),
            critical=False,
        )
    cert = builder.sign(issuer[0], hashes.SHA256())
    chain = cert.public_bytes(serialization.Encoding.PEM) + issuer[1].public_bytes(serialization.Encoding.PEM)
    plain_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    encrypted_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    paths = Identity(
        cert=directory / f"{label}.crt",
        key=directory / f"{label}.key",
        keystore=directory / f"{label}-keystore.pem",
        p12=directory / f"{label}.p12",
        dn=subject.rfc4514_string(),
    )
    paths.cert.write_bytes(chain)
    paths.key.write_bytes(plain_key)
    paths.keystore.write_bytes(encrypted_key + chain)
    paths.p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            label.encode(),
            key,
            cert,
            [issuer[1]],
            serialization.BestAvailableEncryption(STORE_PASSWORD.encode()),
        )
    )
    return paths


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_server_identity(
    pki: Pki,
    directory: Path,
    label: str,
    *,
    cn: str = "localhost",
    alternative_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Identity:
    """Another server certificate from the test CA (a new key and serial): a key store to
    reload. The same DN and names as ``pki.server`` unless told otherwise."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    return _leaf(
        directory,
        label,
        _name(cn, "brokers"),
        (ca_key, ca_cert),
        server=True,
        alternative_names=alternative_names,
    )


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("Brook Test CA")
    other = _ca("Someone Else's CA")
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    ca_p12 = directory / "truststore.p12"
    ca_p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, None, None, [ca[1]], serialization.BestAvailableEncryption(STORE_PASSWORD.encode())
        )
    )
    ca_key = directory / "ca.key"
    ca_key.write_bytes(
        ca[0].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(
        ca=ca_path,
        ca_key=ca_key,
        ca_p12=ca_p12,
        server=_leaf(directory, "server", _name("localhost", "brokers"), ca, server=True),
        client=_leaf(directory, "client", _name("alice", "clients"), ca, server=False),
        expired=_leaf(directory, "expired", _name("old", "clients"), ca, server=False, expired=True),
        untrusted=_leaf(directory, "untrusted", _name("mallory", "clients"), other, server=False),
    )


def ssl_listener_settings(pki: Pki, *, client_auth: str = "none", port: int = 0) -> dict[str, str]:
    """Broker overrides for one SSL listener on 127.0.0.1 with PEM files."""
    return {
        "listeners": f"SSL://127.0.0.1:{port}",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server.keystore),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": client_auth,
        "security.inter.broker.protocol": "SSL",
    }
