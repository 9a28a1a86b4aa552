"""The broker's side of client quotas: loading them, following their changes, and the checks and
results of DescribeClientQuotas and AlterClientQuotas (Kafka's ZkAdminManager.describeClientQuotas
and alterClientQuotas, with their codes and messages).

The quotas take effect on the request path only while one is configured: ``Server.client_quotas``
is the :class:`ClientQuotas` then, and None otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from broker.quotas import QUOTAS_FILE
from broker.quotas.entity import DEFAULT, QUOTA_KEYS, QuotaEntity, sanitize
from broker.quotas.manager import ClientQuotas, parse_quota_values
from broker.quotas.store import FileQuotaStore, QuotaStore, ZkQuotaStore
from protocol.error_codes import ErrorCode

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

USER, CLIENT_ID, IP = "user", "client-id", "ip"
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
_EPSILON = 1e-6


class QuotaRequestError(Exception):
    """An admin request Kafka refuses: its error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> QuotaRequestError:
    return QuotaRequestError(ErrorCode.INVALID_REQUEST, message)


class FilterComponent(NamedTuple):
    entity_type: str
    match_type: int
    match: str | None


class Op(NamedTuple):
    key: str
    value: float
    remove: bool


def quota_file(broker: Broker) -> Path:
    return broker.log_dirs[0] / QUOTAS_FILE


def java_double(value: float) -> str:
    """Java's Double.toString for the values quotas take (``50.0``, ``1.0E7``)."""
    if value == int(value) and abs(value) < 1e7:
        return f"{value:.1f}"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}E{int(exponent)}"
    return text


class QuotaService:
    """Quota configs of one broker: stored, applied and administered."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        config = broker.config
        samples = config.get("quota.window.num")
        window_seconds = config.get("quota.window.size.seconds")
        assert isinstance(samples, int) and isinstance(window_seconds, int)
        self.quotas = ClientQuotas(samples, window_seconds)
        self.store: QuotaStore
        if broker.zk_cluster is not None:
            self.store = ZkQuotaStore(broker.zk_cluster.zk)
        else:
            self.store = FileQuotaStore(quota_file(broker), broker.fs, broker.disk.run)

    async def start(self) -> None:
        """Apply every stored quota (start-up)."""
        for entity, config in (await self.store.load_all()).items():
            self.quotas.apply_stored(entity, config)
        self._publish()

    def apply(self, entity: QuotaEntity, config: Mapping[str, str]) -> None:
        self.quotas.apply_stored(entity, config)
        self._publish()

    async def entity_changed(self, entity_path: str) -> None:
        """A ``/config/changes`` notification for ``users/...`` or ``clients/...``."""
        try:
            entity = QuotaEntity.from_path(entity_path)
        except ValueError as exc:
            log.error("ignoring a config change: %s", exc)
            return
        self.apply(entity, await self.store.read(entity))

    def _publish(self) -> None:
        server = self.broker.server
        if server is not None:
            server.client_quotas = self.quotas if self.quotas.enabled else None

    # -- AlterClientQuotas ---------------------------------------------------------------------

    async def alter(
        self, entity: Sequence[tuple[str, str | None]], ops: Sequence[Op], validate_only: bool
    ) -> None:
        """One entry of AlterClientQuotas; QuotaRequestError as Kafka answers it."""
        target = parse_entity(entity)
        stored = await self.store.read(target)
        new = dict(stored)
        for op in ops:
            if op.remove:
                new.pop(op.key, None)
                continue
            is_long = QUOTA_KEYS.get(op.key)
            if is_long is None:
                raise _invalid(f"Invalid configuration key {op.key}")
            if is_long:
                whole = int(op.value + _EPSILON)
                if abs(whole - op.value) > _EPSILON:
                    raise QuotaRequestError(
                        ErrorCode.INVALID_REQUEST, f"Configuration {op.key} must be a LONG value"
                    )
                new[op.key] = str(whole)
            else:
                new[op.key] = java_double(op.value)
        if validate_only:
            return
        await self.store.write(target, new)
        # Every broker applies it from the change notification; this one at once too.
        self.apply(target, new)

    # -- DescribeClientQuotas --------------------------------------------------------------------

    async def describe(
        self, components: Sequence[FilterComponent], strict: bool
    ) -> list[tuple[list[tuple[str, str | None]], dict[str, float]]]:
        """(entity as (type, name) pairs, quota values) for every stored entity the filter
        matches; QuotaRequestError as Kafka answers a bad filter."""
        user_c: FilterComponent | None = None
        client_c: FilterComponent | None = None
        ip_c: FilterComponent | None = None
        for c in components:
            if c.match_type == MATCH_EXACT and c.match is None:
                raise _invalid("Unexpected null match for exact match type")
            if c.match_type in (MATCH_DEFAULT, MATCH_SPECIFIED) and c.match is not None:
                raise _invalid("Unexpected match for non-exact match type")
            if c.match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
                raise _invalid(f"Unexpected match type: {c.match_type}")
            if c.entity_type == USER:
                if user_c is not None:
                    raise _invalid("Duplicate user filter component entity type")
                user_c = c
            elif c.entity_type == CLIENT_ID:
                if client_c is not None:
                    raise QuotaRequestError(
                        ErrorCode.INVALID_REQUEST, "Duplicate client filter component entity type"
                    )
                client_c = c
            elif c.entity_type == IP:
                if ip_c is not None:
                    raise _invalid("Duplicate ip filter component entity type")
                ip_c = c
            elif c.entity_type == "":
                raise _invalid("Unexpected empty filter component entity type")
            else:
                raise QuotaRequestError(
                    ErrorCode.UNSUPPORTED_VERSION, f"Custom entity type '{c.entity_type}' not supported"
                )
        if (user_c is not None or client_c is not None) and ip_c is not None:
            raise _invalid(
                "Invalid entity filter component combination, IP filter component should not be used "
                "with user or clientId filter component.",
            )
        if ip_c is not None:
            return []  # Brook keeps no IP quotas (connection_creation_rate)
        found = []
        for entity, config in sorted((await self.store.load_all()).items(), key=lambda kv: kv[0].path):
            values = parse_quota_values(config)
            if not values:
                continue
            if _matches(user_c, entity.user, strict) and _matches(client_c, entity.client_id, strict):
                user, client_id = entity.names()
                pairs: list[tuple[str, str | None]] = []
                if entity.user is not None:
                    pairs.append((USER, user))
                if entity.client_id is not None:
                    pairs.append((CLIENT_ID, client_id))
                found.append((pairs, values))
        return found


def _matches(component: FilterComponent | None, part: str | None, strict: bool) -> bool:
    """Kafka's ZkAdminManager ``matches`` on a sanitized entity part (None: absent)."""
    if component is None:
        return part is None or not strict
    if part is None:
        return False
    if component.match_type == MATCH_SPECIFIED:
        return True
    if component.match_type == MATCH_DEFAULT:
        return part == DEFAULT
    assert component.match is not None
    return part == sanitize(component.match)


def parse_entity(entity: Sequence[tuple[str, str | None]]) -> QuotaEntity:
    """Kafka's parseAndSanitizeQuotaEntity for users and client ids."""
    if not entity:
        raise _invalid("Invalid empty client quota entity")
    user: str | None = None
    client_id: str | None = None
    ip = False
    for entity_type, name in entity:
        part = DEFAULT if name is None else sanitize(name)
        if entity_type == USER:
            user = part
        elif entity_type == CLIENT_ID:
            client_id = part
        elif entity_type == IP:
            ip = True
        else:
            raise _invalid(f"Unhandled client quota entity type: {entity_type}")
        if name is not None and not name:
            raise _invalid(f"Empty {entity_type} not supported")
    if ip:
        if user is not None or client_id is not None:
            raise _invalid(
                "Invalid quota entity combination, IP entity should not be used with user/client ID entity.",
            )
        raise _invalid("Brook does not support IP quotas (connection_creation_rate) yet")
    return QuotaEntity(user, client_id)
