"""Key and trust store reload of SSL listeners on AlterConfigs (Kafka's reconfigurable SslFactory).

An SSL listener's context is rebuilt when its ``ssl.*`` store settings change dynamically
(``listener.name.<l>.ssl.keystore.location`` ... on this broker's BROKER resource) and, as Kafka
does, when AlterConfigs names a store key again with the same value while the file changed on
disk. The new stores are checked before anything is stored: they must load, and the key store's
certificate must keep its subject DN and subject alternative names unless ``ssl.allow.dn.changes``
/ ``ssl.allow.san.changes`` (KIP-978) say otherwise. Connections already open keep their session;
new ones get the new context.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from broker.config.dynamic import SSL_RECONFIGURABLE
from broker.config.errors import ConfigError
from storage.fast_dataclass import dataclass

from .ssl_context import keystore_identity, listener_lookup, server_context

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.network.connection import TlsListener

log = logging.getLogger(__name__)

_STORE_FILES = ("ssl.keystore.location", "ssl.truststore.location")
_FileState = tuple[int, int, int] | None


@dataclass(frozen=True, slots=True)
class _StoreState:
    """What a listener's context was built from: its store settings and the files' states."""

    settings: tuple[str | None, ...]
    files: tuple[_FileState, ...]


def _setting(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))  # a PASSWORD's text is its secret


def _file_state(path: str | None) -> _FileState:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def store_state(config: BrokerConfig, listener: str) -> _StoreState:
    get = listener_lookup(config, listener)
    settings = tuple(_setting(get(key)) for key in sorted(SSL_RECONFIGURABLE))
    return _StoreState(settings, tuple(_file_state(_setting(get(key))) for key in _STORE_FILES))


def _flag(config: BrokerConfig, listener: str, key: str) -> bool:
    return str(listener_lookup(config, listener)(key)).lower() == "true"


class SslStores:
    """The contexts of this broker's SSL listeners and what each was built from."""

    def __init__(self, config: BrokerConfig, listeners: Mapping[str, TlsListener]) -> None:
        self._listeners = dict(listeners)
        self._states = {name: store_state(config, name) for name in listeners}
        self._identities = {name: keystore_identity(config, name) for name in listeners}

    def _changed(self, config: BrokerConfig) -> list[str]:
        return [name for name in self._listeners if store_state(config, name) != self._states[name]]

    def _rebuilt(
        self, config: BrokerConfig, listener: str
    ) -> tuple[ssl.SSLContext, tuple[str, frozenset[str]] | None]:
        """The new context of ``listener``; ConfigError with Kafka's wording when the new stores
        do not load or the certificate's identity changed without permission."""
        try:
            context = server_context(config, listener)
            identity = keystore_identity(config, listener)
        except ConfigError as exc:
            raise ConfigError(f"Validation of dynamic config update of SSLFactory failed: {exc}") from None
        old = self._identities[listener]
        if old is not None and identity is not None:
            if identity[0] != old[0] and not _flag(config, listener, "ssl.allow.dn.changes"):
                raise ConfigError(
                    "Validation of dynamic config update of SSLFactory failed: Keystore DistinguishedName "
                    f"does not match: existing={old[0]}, new={identity[0]}"
                )
            if identity[1] != old[1] and not _flag(config, listener, "ssl.allow.san.changes"):
                raise ConfigError(
                    "Validation of dynamic config update of SSLFactory failed: Keystore SubjectAltNames "
                    f"do not match: existing={sorted(old[1])}, new={sorted(identity[1])}"
                )
        return context, identity

    def check(self, config: BrokerConfig) -> None:
        """Raise ConfigError if the stores ``config`` names (or their changed files) would not
        be accepted; nothing is applied."""
        for listener in self._changed(config):
            self._rebuilt(config, listener)

    def reload(self, config: BrokerConfig) -> list[str]:
        """Rebuild the contexts whose stores changed in ``config`` or on disk; a listener whose new
        stores fail keeps its context (logged). The names of the listeners reloaded."""
        reloaded = []
        for listener in self._changed(config):
            try:
                context, identity = self._rebuilt(config, listener)
            except ConfigError as exc:
                log.error("listener %s keeps its key and trust stores: %s", listener, exc)
                continue
            self._listeners[listener].context = context
            self._states[listener] = store_state(config, listener)
            self._identities[listener] = identity
            reloaded.append(listener)
            log.info("Reloaded the key and trust stores of listener %s", listener)
        if reloaded:
            from broker.network.client import forget_inter_broker_ssl_contexts

            forget_inter_broker_ssl_contexts()
        return reloaded
