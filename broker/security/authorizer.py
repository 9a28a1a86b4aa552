"""Kafka 3.9's AclAuthorizer (``authorizer.class.name=kafka.security.authorizer.AclAuthorizer``;
``org.apache.kafka.metadata.authorizer.StandardAuthorizer`` is accepted as the same semantics).

An action (principal, host, operation, resource type, name) is allowed when the principal is in
``super.users``; or when no ACL applies to the resource at all and
``allow.everyone.if.no.acl.found`` is true; or when no DENY entry matches and an ALLOW entry does.
The ACLs that apply to a name are the LITERAL ones on it, the LITERAL wildcard ``*`` and the
PREFIXED ones whose prefix starts it; an entry matches the principal or ``User:*``, the host or
``*``, and the operation or ALL. ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and
ALLOW of ALTER_CONFIGS allows DESCRIBE_CONFIGS; a DENY denies only what it names (and ALL).

The hot path (produce and fetch check a topic per partition) answers from a decision cache keyed
by (principal, host, operation, resource type, name), cleared whenever any ACL changes; a miss
looks up the literal index, the wildcard and the prefixes of the name in dicts.

The ACLs are kept by an :class:`AclStore`: a file in standalone mode
(:mod:`broker.security.acl_file`), ZooKeeper in cluster mode (:mod:`broker.security.zk_acls`),
whose change notifications call :meth:`AclAuthorizer.apply`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from broker.security.acl import (
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    WILDCARD_RESOURCE,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    allowing_operations,
    pascal,
)

log = logging.getLogger("kafka.authorizer.logger")

ACL_AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: Kafka's authorized-operations value when the client did not ask for them.
AUTHORIZED_OPERATIONS_OMITTED = -2147483648

Entries = frozenset[AccessControlEntry]
_NONE: Entries = frozenset()
_CACHE_LIMIT = 100_000
_ALLOW = AclPermissionType.ALLOW
_DENY = AclPermissionType.DENY


Change = Callable[[Entries], Entries]


class AclStore(Protocol):
    """Where the ACLs live. ``update`` applies each change to its resource's current entries
    (each atomically with respect to other writers; a store may write them all at once) and
    returns the entries stored per resource."""

    async def load(self) -> dict[ResourcePattern, Entries]: ...

    async def update(self, changes: Mapping[ResourcePattern, Change]) -> dict[ResourcePattern, Entries]: ...

    async def close(self) -> None: ...


def parse_super_users(text: str | None) -> frozenset[str]:
    """``super.users``: principals separated by semicolons (``User:admin;User:broker``)."""
    return frozenset(p.strip() for p in (text or "").split(";") if p.strip())


class AclAuthorizer:
    def __init__(
        self, store: AclStore, *, super_users: Iterable[str] = (), allow_if_no_acl: bool = False
    ) -> None:
        self.store = store
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._acls: dict[ResourcePattern, Entries] = {}
        # resource type -> name -> entries, per pattern type
        self._literal: dict[ResourceType, dict[str, Entries]] = {t: {} for t in SUPPORTED_OPERATIONS}
        self._prefixed: dict[ResourceType, dict[str, Entries]] = {t: {} for t in SUPPORTED_OPERATIONS}
        # (principal, host, operation, resource type) -> name -> decision
        self._cache: dict[tuple[str, str, int, int], dict[str, bool]] = {}
        self._write_lock = asyncio.Lock()

    # -- state ------------------------------------------------------------------------------------

    async def start(self) -> None:
        for pattern, entries in (await self.store.load()).items():
            self.apply(pattern, entries)

    async def close(self) -> None:
        await self.store.close()

    def apply(self, pattern: ResourcePattern, entries: Entries) -> None:
        """Make ``entries`` the ACLs of ``pattern`` in memory (a load, a write, a notification)."""
        index = self._index(pattern.pattern_type).get(pattern.resource_type)
        if index is None:
            return
        if entries:
            self._acls[pattern] = entries
            index[pattern.name] = entries
        else:
            self._acls.pop(pattern, None)
            index.pop(pattern.name, None)
        self._cache.clear()

    def replace_all(self, acls: Mapping[ResourcePattern, Entries]) -> None:
        for pattern in list(self._acls):
            if pattern not in acls:
                self.apply(pattern, _NONE)
        for pattern, entries in acls.items():
            self.apply(pattern, entries)

    @property
    def acls_by_pattern(self) -> Mapping[ResourcePattern, Entries]:
        return self._acls

    def _index(self, pattern_type: PatternType) -> dict[ResourceType, dict[str, Entries]]:
        return self._prefixed if pattern_type is PatternType.PREFIXED else self._literal

    # -- decisions --------------------------------------------------------------------------------

    def authorize(
        self,
        principal: str,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: str,
        *,
        log_denied: bool = True,
    ) -> bool:
        decisions = self.decisions(principal, host, operation, resource_type)
        decision = decisions.get(name)
        if decision is None:
            decision = self._decide(principal, host, operation, resource_type, name)
            if len(decisions) >= _CACHE_LIMIT:
                decisions.clear()
            decisions[name] = decision
            if not decision and log_denied:
                # Kafka's authorizer log line; here once per decision computed (the cache keeps
                # a flood of identical denials out of the log).
                log.info(
                    "Principal = %s is Denied Operation = %s from host = %s on resource = %s:%s",
                    principal,
                    pascal(operation.name),
                    host,
                    pascal(resource_type.name),
                    name,
                )
        return decision

    def decisions(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> dict[str, bool]:
        """The cached decisions by resource name for one (principal, host, operation, type): what a
        request's checks look names up in. Replaced (not emptied) when ACLs change."""
        key = (principal, host, int(operation), int(resource_type))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[key] = {}
        return found

    def _matching(self, resource_type: ResourceType, name: str) -> list[Entries]:
        literal = self._literal[resource_type]
        found = [e for e in (literal.get(name), literal.get(WILDCARD_RESOURCE)) if e]
        if name == WILDCARD_RESOURCE and found:
            found = found[:1]
        prefixed = self._prefixed[resource_type]
        if prefixed:
            if len(prefixed) <= len(name):
                found.extend(e for prefix, e in prefixed.items() if name.startswith(prefix))
            else:
                found.extend(e for i in range(1, len(name) + 1) if (e := prefixed.get(name[:i])))
        return found

    def _decide(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType, name: str
    ) -> bool:
        if principal in self.super_users:
            return True
        acls = self._matching(resource_type, name)
        if not acls:
            return self.allow_if_no_acl
        denying = frozenset({operation, AclOperation.ALL})
        allowing = allowing_operations(operation)
        allowed = False
        for entries in acls:
            for entry in entries:
                if entry.principal != principal and entry.principal != WILDCARD_PRINCIPAL:
                    continue
                if entry.host != host and entry.host != WILDCARD_HOST:
                    continue
                if entry.permission_type is _DENY:
                    if entry.operation in denying:
                        return False
                elif entry.operation in allowing:
                    allowed = True
        return allowed

    def authorized_operations(self, principal: str, host: str, resource_type: ResourceType, name: str) -> int:
        """The bit field of supported operations allowed on the resource (bit = operation code)."""
        bits = 0
        for operation in SUPPORTED_OPERATIONS[resource_type]:
            if self.authorize(principal, host, operation, resource_type, name, log_denied=False):
                bits |= 1 << operation
        return bits

    def authorize_by_resource_type(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        """Kafka's authorizeByResourceType: could the principal do ``operation`` on some resource of
        the type? Allowed by an ALLOW literal or prefix not shadowed by a DENY on the wildcard, the
        same name, or a prefix of it."""
        if principal in self.super_users:
            return True
        ops = frozenset({operation, AclOperation.ALL})

        def names(index: dict[str, Entries], permission: AclPermissionType) -> set[str]:
            return {
                name
                for name, entries in index.items()
                if any(
                    e.permission_type is permission
                    and e.operation in ops
                    and (e.principal == principal or e.principal == WILDCARD_PRINCIPAL)
                    and (e.host == host or e.host == WILDCARD_HOST)
                    for e in entries
                )
            }

        literal, prefixed = self._literal[resource_type], self._prefixed[resource_type]
        deny_literals = names(literal, _DENY)
        if WILDCARD_RESOURCE in deny_literals:
            return False
        if self.allow_if_no_acl:
            return True
        deny_prefixes = names(prefixed, _DENY)

        def denied(name: str) -> bool:
            return name in deny_literals or any(name.startswith(p) for p in deny_prefixes)

        allow = names(literal, _ALLOW) | names(prefixed, _ALLOW)
        return any(not denied(name) for name in allow)

    # -- the ACL apis -----------------------------------------------------------------------------

    def acls(self, filter_: AclBindingFilter) -> list[AclBinding]:
        return [
            AclBinding(pattern, entry)
            for pattern, entries in self._acls.items()
            if filter_.matches_pattern(pattern)
            for entry in entries
            if filter_.matches_entry(entry)
        ]

    async def create_acls(self, bindings: list[AclBinding]) -> list[str | None]:
        """One result per binding: None, or the INVALID_REQUEST message."""
        results: list[str | None] = [None] * len(bindings)
        by_pattern: dict[ResourcePattern, list[AccessControlEntry]] = {}
        for i, binding in enumerate(bindings):
            problem = _invalid(binding)
            if problem is not None:
                results[i] = problem
            else:
                by_pattern.setdefault(binding.pattern, []).append(binding.entry)
        changes: dict[ResourcePattern, Change] = {
            pattern: (lambda current, a=frozenset(added): current | a)  # type: ignore[misc]
            for pattern, added in by_pattern.items()
        }
        async with self._write_lock:
            for pattern, stored in (await self.store.update(changes)).items():
                self.apply(pattern, stored)
        return results

    async def delete_acls(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        """Per filter, the bindings it deleted (a binding counts for the first filter matching it)."""
        deleted: dict[AclBinding, int] = {}
        async with self._write_lock:
            candidates = set(self._acls)
            for filter_ in filters:
                if (
                    filter_.name is not None
                    and filter_.resource_type not in (ResourceType.ANY,)
                    and filter_.pattern_type in (PatternType.LITERAL, PatternType.PREFIXED)
                ):
                    candidates.add(ResourcePattern(filter_.resource_type, filter_.name, filter_.pattern_type))
            changes: dict[ResourcePattern, Change] = {}
            for pattern in candidates:
                matching = [(i, f) for i, f in enumerate(filters) if f.matches_pattern(pattern)]
                if not matching:
                    continue

                def change(
                    current: Entries,
                    matching: list[tuple[int, AclBindingFilter]] = matching,
                    pattern: ResourcePattern = pattern,
                ) -> Entries:
                    removed = set()
                    for entry in current:
                        for i, f in matching:
                            if f.matches_entry(entry):
                                deleted.setdefault(AclBinding(pattern, entry), i)
                                removed.add(entry)
                                break
                    return current - removed

                changes[pattern] = change
            if changes:
                for pattern, stored in (await self.store.update(changes)).items():
                    self.apply(pattern, stored)
        results: list[list[AclBinding]] = [[] for _ in filters]
        for binding, i in deleted.items():
            results[i].append(binding)
        return results


def _invalid(binding: AclBinding) -> str | None:
    """AclApis' and AclAuthorizer's checks of a binding to create."""
    pattern = binding.pattern
    if binding.unknown_element() is not None:
        return "Failed to create ACL: ACL binding contains unknown elements"
    if pattern.resource_type is ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not pattern.name:
        return "Invalid empty resource name"
    if pattern.pattern_type is PatternType.PREFIXED and pattern.name == WILDCARD_RESOURCE:
        # ResourcePattern rejects a prefixed wildcard in Kafka: a prefix of "*" means nothing else.
        return "Failed to create ACL: PREFIXED pattern type with a wildcard name is invalid"
    principal = binding.entry.principal
    if ":" not in principal or not principal.split(":", 1)[1]:
        return f"Failed to create ACL: Invalid principal {principal!r}"
    return None
