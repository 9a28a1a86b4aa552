"""TLS contexts from Kafka's ``ssl.*`` keys, per listener (``listener.name.<l>.ssl.*`` first).

Key stores: ``PEM`` (``ssl.keystore.location`` holding the key and the chain, or inline
``ssl.keystore.key`` + ``ssl.keystore.certificate.chain``; ``ssl.key.password`` decrypts the key)
and ``PKCS12`` (``ssl.keystore.password``). ``JKS``, Kafka's default type, is read as PKCS12
since Java 9's keytool writes PKCS12 under that name; a real JKS file is refused with the keytool
command that converts it. Trust stores: ``PEM`` (``ssl.truststore.location`` or inline
``ssl.truststore.certificates``) and PKCS12; none configured means the system's CAs, as the JVM's.

``ssl.cipher.suites`` takes Java's (IANA) names and applies them to TLS 1.2; Python's ssl module
cannot restrict TLS 1.3 suites, which are always OpenSSL's defaults.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from broker.config.errors import ConfigError

if TYPE_CHECKING:
    from broker.config import BrokerConfig

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_JKS_MAGIC = b"\xfe\xed\xfe\xed"

Lookup = Callable[[str], object]


def listener_lookup(config: BrokerConfig, listener: str) -> Lookup:
    """The value of a key for one listener: ``listener.name.<listener lower-case>.<key>`` when
    set, else the broker-wide key (Kafka's ListenerName.configPrefix)."""
    prefix = f"listener.name.{listener.lower()}."

    def get(key: str) -> object:
        if prefix + key in config:
            return config.get(prefix + key)
        return config.get(key) if key in config else None

    return get


def _text(value: object) -> str | None:
    if value is None:
        return None
    # PASSWORD values are wrapped so that they never print; their text is the secret.
    secret = getattr(value, "value", value)
    text = str(secret)
    return text if text != "" else None


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def server_context(config: BrokerConfig, listener: str) -> ssl.SSLContext:
    """The context of an SSL listener; ConfigError when its key material is missing or bad."""
    get = listener_lookup(config, listener)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_common(context, get)
    if not _load_keystore(context, get):
        raise ConfigError(
            f"Listener {listener} is SSL but has no key store: set ssl.keystore.location (or "
            f"ssl.keystore.key and ssl.keystore.certificate.chain), or their listener.name."
            f"{listener.lower()}. forms",
            name="ssl.keystore.location",
        )
    auth = (_text(get("ssl.client.auth")) or "none").lower()
    if auth not in _CLIENT_AUTH:
        raise ConfigError.invalid("ssl.client.auth", auth, "expected one of required, requested, none")
    context.verify_mode = _CLIENT_AUTH[auth]
    if auth != "none":
        _load_truststore(context, get)
    return context


def client_context(config: BrokerConfig, listener: str) -> ssl.SSLContext:
    """The context this broker connects to the ``listener`` of other brokers with: the peer's
    chain always verified, its host name too when ``ssl.endpoint.identification.algorithm`` is
    ``https`` (the default), and this broker's own key store presented when there is one."""
    return client_context_from(listener_lookup(config, listener))


def client_context_from(get: Lookup) -> ssl.SSLContext:
    """A client context from Kafka's ``ssl.*`` keys as ``get`` returns them (the broker's
    listener keys, or a client's properties: the ``brook`` command line)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_common(context, get)
    algorithm = (_text(get("ssl.endpoint.identification.algorithm")) or "").lower()
    if algorithm not in ("", "https"):
        raise ConfigError.invalid(
            "ssl.endpoint.identification.algorithm", algorithm, "only https or an empty value is supported"
        )
    context.check_hostname = algorithm == "https"
    context.verify_mode = ssl.CERT_REQUIRED
    _load_truststore(context, get)
    _load_keystore(context, get)
    return context


def keystore_identity(config: BrokerConfig, listener: str) -> tuple[str, frozenset[str]] | None:
    """The subject DN (RFC 4514) and subject alternative names of the first certificate of the
    listener's key store; None without a key store."""
    get = listener_lookup(config, listener)
    location = _text(get("ssl.keystore.location"))
    inline_chain = _text(get("ssl.keystore.certificate.chain"))
    x509 = _x509()
    if location is None:
        if inline_chain is None:
            return None
        certificate = x509.load_pem_x509_certificates(inline_chain.encode())[0]
    else:
        data = _read(location, "ssl.keystore.location")
        if _store_type(get, "ssl.keystore.type", data) == "PEM":
            start = data.find(b"-----BEGIN CERTIFICATE-----")
            if start < 0:
                raise ConfigError.invalid("ssl.keystore.location", location, "it holds no certificate")
            certificate = x509.load_pem_x509_certificates(data[start:])[0]
        else:
            _, pkcs12 = _cryptography()
            password = _text(get("ssl.keystore.password"))
            try:
                _, certificate, _ = pkcs12.load_key_and_certificates(
                    data, password.encode() if password else None
                )
            except ValueError as exc:
                raise ConfigError.invalid("ssl.keystore.location", location, str(exc)) from exc
            if certificate is None:
                return None
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alternative = frozenset(str(name.value) for name in names)
    except x509.ExtensionNotFound:
        alternative = frozenset()
    return certificate.subject.rfc4514_string(), alternative


def _x509():  # type: ignore[no-untyped-def]
    from cryptography import x509

    return x509


def _apply_common(context: ssl.SSLContext, get: Lookup) -> None:
    protocols = _list(get("ssl.enabled.protocols")) or ["TLSv1.2", "TLSv1.3"]
    unknown = [p for p in protocols if p not in _VERSIONS]
    if unknown:
        raise ConfigError.invalid(
            "ssl.enabled.protocols", ",".join(protocols), f"unsupported protocol(s) {', '.join(unknown)}"
        )
    versions = sorted(_VERSIONS[p] for p in protocols)
    context.minimum_version = versions[0]
    context.maximum_version = versions[-1]
    suites = [s for s in _list(get("ssl.cipher.suites")) if "_WITH_" in s]
    if suites:
        names = ":".join(openssl_cipher_name(s) for s in suites)
        try:
            context.set_ciphers(names)
        except ssl.SSLError as exc:
            raise ConfigError.invalid(
                "ssl.cipher.suites", ",".join(suites), f"no usable cipher suite ({exc})"
            ) from exc


def openssl_cipher_name(iana: str) -> str:
    """``TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`` -> ``ECDHE-RSA-AES256-GCM-SHA384``."""
    exchange, _, cipher = iana.removeprefix("TLS_").removeprefix("SSL_").partition("_WITH_")
    exchange = "" if exchange == "RSA" else exchange.replace("_", "-") + "-"
    parts = cipher.split("_")
    if parts[0] == "AES" and len(parts) >= 3:
        parts = [f"AES{parts[1]}", *parts[2:]]
    if "CBC" in parts:
        parts.remove("CBC")
    if parts[0] == "CHACHA20":
        parts = ["CHACHA20", "POLY1305"]
    return exchange + "-".join(parts)


# -- key material -------------------------------------------------------------------------------------


@contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A file only this process can read, removed when the key has been loaded from it
    (``load_cert_chain`` takes paths only)."""
    fd, path = tempfile.mkstemp(prefix="brook-key-", suffix=".pem")
    try:
        os.write(fd, data)
        os.close(fd)
        yield path
    finally:
        os.unlink(path)


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError.invalid(key, path, f"cannot read it: {exc.strerror or exc}") from exc


def _store_type(get: Lookup, key: str, data: bytes | None) -> str:
    kind = (_text(get(key)) or "JKS").upper()
    if kind == "JKS":
        if data is not None and data.startswith(_JKS_MAGIC):
            raise ConfigError.invalid(
                key.replace(".type", ".location"),
                _text(get(key.replace(".type", ".location"))),
                "a JKS key store cannot be read by Brook; convert it with keytool -importkeystore "
                "-deststoretype PKCS12, or use PEM",
            )
        if data is not None and data.lstrip().startswith(b"-----BEGIN"):
            return "PEM"
        return "PKCS12"
    if kind not in ("PEM", "PKCS12"):
        raise ConfigError.invalid(
            key, kind, "supported types are PEM and PKCS12 (and JKS files in PKCS12 form)"
        )
    return kind


def _load_keystore(context: ssl.SSLContext, get: Lookup) -> bool:
    location = _text(get("ssl.keystore.location"))
    inline_key = _text(get("ssl.keystore.key"))
    inline_chain = _text(get("ssl.keystore.certificate.chain"))
    key_password = _text(get("ssl.key.password"))
    if location is None and inline_key is None and inline_chain is None:
        return False
    if location is not None and (inline_key or inline_chain):
        raise ConfigError(
            "Both ssl.keystore.location and ssl.keystore.key/ssl.keystore.certificate.chain are set: use one",
            name="ssl.keystore.location",
        )
    if location is None:
        if not inline_key or not inline_chain:
            raise ConfigError(
                "ssl.keystore.key and ssl.keystore.certificate.chain must be set together",
                name="ssl.keystore.key",
            )
        pem = inline_key.encode() + b"\n" + inline_chain.encode() + b"\n"
        _load_pem_chain(context, pem, key_password, "ssl.keystore.key")
        return True
    data = _read(location, "ssl.keystore.location")
    if _store_type(get, "ssl.keystore.type", data) == "PEM":
        _load_pem_chain(context, data, key_password, "ssl.keystore.location")
    else:
        _load_pem_chain(
            context,
            *_pkcs12_as_pem(data, _text(get("ssl.keystore.password")), location),
            "ssl.keystore.location",
        )
    return True


def _load_pem_chain(context: ssl.SSLContext, pem: bytes, password: str | None, key: str) -> None:
    with _private_file(pem) as path:
        try:
            # Never None: OpenSSL would then prompt for the password on the terminal.
            context.load_cert_chain(path, password=password if password is not None else _no_password)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"Cannot load the key store of {key}: {exc} (is ssl.key.password right, and does it hold "
                "a private key and its certificate chain?)",
                name=key,
            ) from exc


def _no_password() -> bytes:
    return b""


def _pkcs12_as_pem(data: bytes, password: str | None, location: str) -> tuple[bytes, str]:
    """A PKCS12 key store as PEM, its key re-encrypted with a one-time password."""
    serialization, pkcs12 = _cryptography()
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        raise ConfigError.invalid(
            "ssl.keystore.location",
            location,
            f"cannot open the PKCS12 key store (ssl.keystore.password?): {exc}",
        ) from exc
    if key is None or cert is None:
        raise ConfigError.invalid(
            "ssl.keystore.location", location, "the PKCS12 key store holds no private key entry"
        )
    one_time = secrets.token_hex(16)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode()),
    )
    for certificate in (cert, *extra):
        pem += certificate.public_bytes(serialization.Encoding.PEM)
    return pem, one_time


def _load_truststore(context: ssl.SSLContext, get: Lookup) -> None:
    location = _text(get("ssl.truststore.location"))
    inline = _text(get("ssl.truststore.certificates"))
    if location is None and inline is None:
        context.load_default_certs()  # the system's CAs, as the JVM's default trust store
        return
    try:
        if inline is not None:
            context.load_verify_locations(cadata=inline)
            return
        assert location is not None
        data = _read(location, "ssl.truststore.location")
        if _store_type(get, "ssl.truststore.type", data) == "PEM":
            context.load_verify_locations(cadata=data.decode("ascii", "replace"))
            return
        serialization, pkcs12 = _cryptography()
        password = _text(get("ssl.truststore.password"))
        try:
            store = pkcs12.load_pkcs12(data, password.encode() if password else None)
        except ValueError as exc:
            raise ConfigError.invalid(
                "ssl.truststore.location", location, f"cannot open the PKCS12 trust store: {exc}"
            ) from exc
        certs = [c.certificate for c in store.additional_certs]
        if store.cert is not None:
            certs.append(store.cert.certificate)
        if not certs:
            raise ConfigError.invalid(
                "ssl.truststore.location", location, "the trust store holds no certificate"
            )
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
        )
    except ssl.SSLError as exc:
        raise ConfigError(f"Cannot load the trust store: {exc}", name="ssl.truststore.location") from exc


def _cryptography():  # type: ignore[no-untyped-def]
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigError("PKCS12 key and trust stores need the 'cryptography' package") from exc
    return serialization, pkcs12
