"""AclAuthorizer's decisions against a direct reading of Kafka 3.9's rules (a reference model
written over the flat list of bindings, without the authorizer's indexes and cache), plus the
named rules one by one: deny wins, implied operations, literal vs prefixed vs wildcard, super
users, allow.everyone.if.no.acl.found, authorizeByResourceType, filters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from broker.security.acl import AclOperation as Op
from broker.security.authorizer import AclAuthorizer

Entries = frozenset[AccessControlEntry]
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
T = ResourceType.TOPIC


class MemoryStore:
    def __init__(self) -> None:
        self.acls: dict[ResourcePattern, Entries] = {}

    async def load(self) -> dict[ResourcePattern, Entries]:
        return dict(self.acls)

    async def update(
        self, changes: Mapping[ResourcePattern, Callable[[Entries], Entries]]
    ) -> dict[ResourcePattern, Entries]:
        stored = {}
        for pattern, change in changes.items():
            new = stored[pattern] = change(self.acls.get(pattern, frozenset()))
            if new:
                self.acls[pattern] = new
            else:
                self.acls.pop(pattern, None)
        return stored

    async def close(self) -> None:
        return None


def make(bindings: list[AclBinding], **kwargs: object) -> AclAuthorizer:
    authorizer = AclAuthorizer(MemoryStore(), **kwargs)  # type: ignore[arg-type]
    assert asyncio.run(authorizer.create_acls(bindings)) == [None] * len(bindings)
    return authorizer


def bind(
    name: str,
    principal: str,
    op: Op,
    permission: AclPermissionType = ALLOW,
    pattern: PatternType = PatternType.LITERAL,
    host: str = "*",
    resource_type: ResourceType = T,
) -> AclBinding:
    return AclBinding(
        ResourcePattern(resource_type, name, pattern), AccessControlEntry(principal, host, op, permission)
    )


# -- the reference model ----------------------------------------------------------------------------

IMPLIED = {
    Op.DESCRIBE: {Op.DESCRIBE, Op.READ, Op.WRITE, Op.DELETE, Op.ALTER},
    Op.DESCRIBE_CONFIGS: {Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS},
}


def reference(
    bindings: list[AclBinding],
    principal: str,
    host: str,
    op: Op,
    name: str,
    super_users: frozenset[str] = frozenset(),
    allow_if_no_acl: bool = False,
) -> bool:
    if principal in super_users:
        return True

    def applies(b: AclBinding) -> bool:
        p = b.pattern
        if p.resource_type != T:
            return False
        if p.pattern_type is PatternType.LITERAL:
            return p.name in (name, "*")
        return name.startswith(p.name)

    acls = [b.entry for b in bindings if applies(b)]
    if not acls:
        return allow_if_no_acl

    def matches(e: AccessControlEntry, ops: set[Op]) -> bool:
        return (
            e.principal in (principal, "User:*")
            and e.host in (host, "*")
            and (e.operation in ops or e.operation is Op.ALL)
        )

    if any(e.permission_type is DENY and matches(e, {op}) for e in acls):
        return False
    return any(e.permission_type is ALLOW and matches(e, IMPLIED.get(op, {op})) for e in acls)


NAMES = st.sampled_from(["a", "ab", "abc", "b", "ba", "*"])
PRINCIPALS = st.sampled_from(["User:alice", "User:bob", "User:*"])
HOSTS = st.sampled_from(["*", "10.0.0.1", "10.0.0.2"])
OPS = st.sampled_from([o for o in Op if o not in (Op.UNKNOWN, Op.ANY)])
BINDINGS = st.builds(
    bind,
    NAMES,
    PRINCIPALS,
    OPS,
    st.sampled_from([ALLOW, DENY]),
    st.sampled_from([PatternType.LITERAL, PatternType.PREFIXED]),
    HOSTS,
).filter(lambda b: not (b.pattern.pattern_type is PatternType.PREFIXED and b.pattern.name == "*"))


@settings(max_examples=300, deadline=None)
@given(
    bindings=st.lists(BINDINGS, max_size=8),
    principal=st.sampled_from(["User:alice", "User:bob", "User:carol"]),
    host=st.sampled_from(["10.0.0.1", "10.0.0.2"]),
    op=st.sampled_from([o for o in Op if o not in (Op.UNKNOWN, Op.ANY, Op.ALL)]),
    name=st.sampled_from(["a", "ab", "abc", "b", "ba", "c"]),
    allow_if_no_acl=st.booleans(),
    super_alice=st.booleans(),
)
def test_decisions_match_kafkas_rules(
    bindings: list[AclBinding],
    principal: str,
    host: str,
    op: Op,
    name: str,
    allow_if_no_acl: bool,
    super_alice: bool,
) -> None:
    supers = frozenset({"User:alice"}) if super_alice else frozenset()
    authorizer = make(bindings, super_users=supers, allow_if_no_acl=allow_if_no_acl)
    expected = reference(bindings, principal, host, op, name, supers, allow_if_no_acl)
    assert authorizer.authorize(principal, host, op, T, name) is expected
    # The cached answer is the same, and a change clears the cache.
    assert authorizer.authorize(principal, host, op, T, name) is expected
    extra = bind(name, principal, op, DENY)
    asyncio.run(authorizer.create_acls([extra]))
    assert authorizer.authorize(principal, host, op, T, name) is (principal in supers)


@settings(max_examples=200, deadline=None)
@given(bindings=st.lists(BINDINGS, min_size=1, max_size=6), op=OPS, name=NAMES)
def test_a_matching_deny_always_wins(bindings: list[AclBinding], op: Op, name: str) -> None:
    deny = bind(name, "User:alice", op, DENY)
    authorizer = make([*bindings, deny])
    checked = op if op is not Op.ALL else Op.READ
    assert not authorizer.authorize("User:alice", "10.0.0.1", checked, T, name)


def test_implied_operations() -> None:
    authorizer = make([bind("t", "User:alice", Op.WRITE), bind("t", "User:alice", Op.ALTER_CONFIGS)])
    assert authorizer.authorize("User:alice", "h", Op.WRITE, T, "t")
    assert authorizer.authorize("User:alice", "h", Op.DESCRIBE, T, "t")  # WRITE implies DESCRIBE
    assert authorizer.authorize("User:alice", "h", Op.DESCRIBE_CONFIGS, T, "t")
    assert not authorizer.authorize("User:alice", "h", Op.READ, T, "t")
    assert not authorizer.authorize("User:alice", "h", Op.ALTER, T, "t")
    # A DENY of WRITE does not deny DESCRIBE granted by READ.
    authorizer = make([bind("t", "User:bob", Op.READ), bind("t", "User:bob", Op.WRITE, DENY)])
    assert authorizer.authorize("User:bob", "h", Op.DESCRIBE, T, "t")
    assert not authorizer.authorize("User:bob", "h", Op.WRITE, T, "t")


def test_all_allows_and_denies_everything() -> None:
    authorizer = make([bind("t", "User:*", Op.ALL), bind("t", "User:mallory", Op.ALL, DENY)])
    for op in (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DELETE, Op.ALTER_CONFIGS):
        assert authorizer.authorize("User:alice", "h", op, T, "t")
        assert not authorizer.authorize("User:mallory", "h", op, T, "t")


def test_prefixed_literal_and_wildcard_patterns() -> None:
    authorizer = make(
        [
            bind("orders-", "User:alice", Op.READ, pattern=PatternType.PREFIXED),
            bind("orders-secret", "User:alice", Op.READ, DENY),
            bind("*", "User:bob", Op.WRITE),
        ]
    )
    assert authorizer.authorize("User:alice", "h", Op.READ, T, "orders-eu")
    assert authorizer.authorize("User:alice", "h", Op.READ, T, "orders-")
    assert not authorizer.authorize("User:alice", "h", Op.READ, T, "orders")
    assert not authorizer.authorize("User:alice", "h", Op.READ, T, "orders-secret")
    assert authorizer.authorize("User:bob", "h", Op.WRITE, T, "anything")
    assert not authorizer.authorize("User:bob", "h", Op.WRITE, ResourceType.GROUP, "anything")


def test_hosts_and_super_users_and_no_acl_default() -> None:
    authorizer = make([bind("t", "User:alice", Op.READ, host="10.0.0.1")], super_users={"User:admin"})
    assert authorizer.authorize("User:alice", "10.0.0.1", Op.READ, T, "t")
    assert not authorizer.authorize("User:alice", "10.0.0.2", Op.READ, T, "t")
    assert authorizer.authorize("User:admin", "10.0.0.2", Op.DELETE, T, "t")
    assert not authorizer.authorize("User:alice", "10.0.0.1", Op.READ, T, "no-acls")
    everyone = make([bind("t", "User:alice", Op.READ)], allow_if_no_acl=True)
    assert everyone.authorize("User:bob", "h", Op.READ, T, "no-acls")
    assert not everyone.authorize("User:bob", "h", Op.READ, T, "t")  # ACLs exist there


def test_authorize_by_resource_type() -> None:
    authorizer = make([bind("t", "User:alice", Op.WRITE)])
    assert authorizer.authorize_by_resource_type("User:alice", "h", Op.WRITE, T)
    assert not authorizer.authorize_by_resource_type("User:bob", "h", Op.WRITE, T)
    shadowed = make(
        [
            bind("t", "User:alice", Op.WRITE),
            bind("t", "User:alice", Op.WRITE, DENY, pattern=PatternType.PREFIXED),
        ]
    )
    assert not shadowed.authorize_by_resource_type("User:alice", "h", Op.WRITE, T)
    wildcard_deny = make([bind("x", "User:alice", Op.WRITE), bind("*", "User:alice", Op.WRITE, DENY)])
    assert not wildcard_deny.authorize_by_resource_type("User:alice", "h", Op.WRITE, T)


def test_authorized_operations_bits() -> None:
    authorizer = make([bind("t", "User:alice", Op.READ)])
    bits = authorizer.authorized_operations("User:alice", "h", T, "t")
    assert bits == (1 << Op.READ) | (1 << Op.DESCRIBE)


def test_filters_any_match_and_exact() -> None:
    bindings = [
        bind("orders", "User:alice", Op.READ),
        bind("ord", "User:alice", Op.READ, pattern=PatternType.PREFIXED),
        bind("*", "User:bob", Op.WRITE),
        bind("other", "User:bob", Op.WRITE),
    ]
    authorizer = make(bindings)

    def names(pattern_type: PatternType, name: str | None, principal: str | None = None) -> set[str]:
        f = AclBindingFilter(T, name, pattern_type, principal, None, Op.ANY, AclPermissionType.ANY)
        return {b.pattern.name for b in authorizer.acls(f)}

    assert names(PatternType.MATCH, "orders") == {"orders", "ord", "*"}
    assert names(PatternType.ANY, "orders") == {"orders"}
    assert names(PatternType.LITERAL, None) == {"orders", "*", "other"}
    assert names(PatternType.PREFIXED, None) == {"ord"}
    assert names(PatternType.ANY, None, "User:bob") == {"*", "other"}


def test_delete_lists_each_binding_under_its_first_filter() -> None:
    authorizer = make([bind("a", "User:alice", Op.READ), bind("b", "User:alice", Op.READ)])
    any_topic = AclBindingFilter(T, None, PatternType.ANY, None, None, Op.ANY, AclPermissionType.ANY)
    only_a = AclBindingFilter(T, "a", PatternType.LITERAL, None, None, Op.ANY, AclPermissionType.ANY)
    deleted = asyncio.run(authorizer.delete_acls([only_a, any_topic]))
    assert [sorted(b.pattern.name for b in d) for d in deleted] == [["a"], ["b"]]
    assert authorizer.acls(any_topic) == []


def test_invalid_bindings_are_refused() -> None:
    authorizer = AclAuthorizer(MemoryStore())
    results = asyncio.run(
        authorizer.create_acls(
            [
                bind("t", "User:alice", Op.ANY),
                bind("not-kafka-cluster", "User:alice", Op.ALTER, resource_type=ResourceType.CLUSTER),
                bind("", "User:alice", Op.READ),
                bind("t", "alice", Op.READ),
                bind("t", "User:alice", Op.READ),
            ]
        )
    )
    assert [r is None for r in results] == [False, False, False, False, True]
