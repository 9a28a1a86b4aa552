"""Quota entities and Kafka's precedence among them.

An entity is (user, client id), each part absent (None), a name, or the default ``<default>``,
with names *sanitized* as Kafka keeps them in ZooKeeper (Sanitizer: URL-encoded, ``*`` as
``%2A``, space as ``%20``). That makes an entity its ZooKeeper path: ``users/<u>``,
``clients/<c>``, ``users/<u>/clients/<c>``. A user really named ``<default>`` is sanitized to
``%3Cdefault%3E``, so it never collides with the default.

Which configured entity applies to a request of (user, client id) follows Kafka's
DefaultQuotaCallback, most specific first::

    users/<user>/clients/<client-id>     users/<default>/clients/<client-id>
    users/<user>/clients/<default>       users/<default>/clients/<default>
    users/<user>                          users/<default>
                                          clients/<client-id>
                                          clients/<default>

Clients whose requests resolve to the same entity share one rate (Kafka's metric tags): e.g.
with only ``users/alice`` set, every client id of alice counts against one byte rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote, unquote

DEFAULT = "<default>"

#: Kafka's quota config keys (QuotaConfig), the same for users, clients and both.
PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
#: key -> True for LONG keys (values must be whole), False for DOUBLE keys.
QUOTA_KEYS: Mapping[str, bool] = {
    PRODUCER_BYTE_RATE: True,
    CONSUMER_BYTE_RATE: True,
    REQUEST_PERCENTAGE: False,
    CONTROLLER_MUTATION_RATE: False,
}


def sanitize(name: str) -> str:
    """Kafka's Sanitizer.sanitize: Java's URLEncoder (UTF-8; letters, digits and ``.-*_`` kept,
    space as ``+``), then ``*`` -> ``%2A`` and ``+`` -> ``%20``."""
    return quote(name, safe=".-_").replace("~", "%7E")


def desanitize(name: str) -> str:
    """Kafka's Sanitizer.desanitize (URLDecoder: ``+`` is a space)."""
    return unquote(name.replace("+", " "))


class QuotaEntity(NamedTuple):
    """(user, client id) in sanitized form; None when the entity has no such part."""

    user: str | None
    client_id: str | None

    @property
    def path(self) -> str:
        """The entity's config path under /config (and its change notification's entity_path)."""
        if self.user is not None and self.client_id is not None:
            return f"users/{self.user}/clients/{self.client_id}"
        if self.user is not None:
            return f"users/{self.user}"
        if self.client_id is not None:
            return f"clients/{self.client_id}"
        raise ValueError("a quota entity has a user, a client id or both")

    @classmethod
    def from_path(cls, path: str) -> QuotaEntity:
        """The inverse of :attr:`path`; ValueError for another kind of path."""
        parts = path.split("/")
        if len(parts) == 2 and parts[0] == "users" and parts[1]:
            return cls(parts[1], None)
        if len(parts) == 2 and parts[0] == "clients" and parts[1]:
            return cls(None, parts[1])
        if len(parts) == 4 and parts[0] == "users" and parts[2] == "clients" and parts[1] and parts[3]:
            return cls(parts[1], parts[3])
        raise ValueError(f"not a client quota entity path: {path!r}")

    def names(self) -> tuple[str | None, str | None]:
        """(user, client id) as the admin apis show them: desanitized, None for the default."""
        return (
            None if self.user is None or self.user == DEFAULT else desanitize(self.user),
            None if self.client_id is None or self.client_id == DEFAULT else desanitize(self.client_id),
        )


def metric_tags(entities: Mapping[QuotaEntity, object], user: str, client_id: str) -> tuple[str, str]:
    """Kafka's DefaultQuotaCallback.quotaMetricTags: the (user, client id) tags that key the rate
    a request of sanitized ``user`` and ``client_id`` counts against, given the entities that
    have a quota of this type. An empty tag means "any"."""
    if QuotaEntity(user, client_id) in entities or QuotaEntity(user, DEFAULT) in entities:
        return user, client_id
    if QuotaEntity(user, None) in entities:
        return user, ""
    if QuotaEntity(DEFAULT, client_id) in entities or QuotaEntity(DEFAULT, DEFAULT) in entities:
        return user, client_id
    if QuotaEntity(DEFAULT, None) in entities:
        return user, ""
    return "", client_id


def quota_limit(quotas: Mapping[QuotaEntity, float], tags: tuple[str, str]) -> float | None:
    """Kafka's DefaultQuotaCallback.quotaLimit: the quota of the rate keyed by ``tags``, the most
    specific configured entity first; None when none applies."""
    user, client_id = tags
    candidates: tuple[QuotaEntity, ...]
    if user and client_id:
        candidates = (
            QuotaEntity(user, client_id),
            QuotaEntity(user, DEFAULT),
            QuotaEntity(DEFAULT, client_id),
            QuotaEntity(DEFAULT, DEFAULT),
        )
    elif user:
        candidates = (QuotaEntity(user, None), QuotaEntity(DEFAULT, None))
    elif client_id:
        candidates = (QuotaEntity(None, client_id), QuotaEntity(None, DEFAULT))
    else:
        return None
    for entity in candidates:
        found = quotas.get(entity)
        if found is not None:
            return found
    return None
