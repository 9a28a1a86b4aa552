"""The JSON Kafka's AclAuthorizer keeps ACLs in: one resource's entries as
``{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}``
(AclEntry.toJsonCompatibleMap: Java HashMaps, so keys in their hash order, as Jackson writes
them), and the change events of ``/kafka-acl-changes`` (``TOPIC:name``) and
``/kafka-acl-extended-changes`` (ExtendedAclChangeEvent JSON)."""

from __future__ import annotations

import json
from typing import Any

from broker.cluster.zk.jvm_order import java_hash_order
from broker.security.acl import (
    AccessControlEntry,
    PatternType,
    ResourcePattern,
    operation_named,
    pascal,
    pattern_type_named,
    permission_named,
    resource_type_named,
)

VERSION = 1
_ENTRY_KEYS = java_hash_order(["principal", "permissionType", "operation", "host"])
_TOP_KEYS = java_hash_order(["version", "acls"])


class AclJsonError(ValueError):
    pass


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def entry_map(entry: AccessControlEntry) -> dict[str, str]:
    values = {
        "principal": entry.principal,
        "permissionType": pascal(entry.permission_type.name),
        "operation": pascal(entry.operation.name),
        "host": entry.host,
    }
    return {key: values[key] for key in _ENTRY_KEYS}


def encode_entries(entries: frozenset[AccessControlEntry]) -> bytes:
    ordered = sorted(entries, key=lambda e: (e.principal, e.host, e.operation, e.permission_type))
    values: dict[str, Any] = {"version": VERSION, "acls": [entry_map(e) for e in ordered]}
    return _dumps({key: values[key] for key in _TOP_KEYS})


def decode_entry(item: Any) -> AccessControlEntry:
    try:
        principal, host = str(item["principal"]), str(item["host"])
        if ":" not in principal:
            raise AclJsonError(f"bad principal {principal!r}")
        return AccessControlEntry(
            principal,
            host,
            operation_named(str(item["operation"])),
            permission_named(str(item["permissionType"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AclJsonError(f"bad ACL entry {item!r}: {exc}") from exc


def decode_entries(data: bytes) -> frozenset[AccessControlEntry]:
    """AclEntry.fromBytes: empty data is no ACLs."""
    if not data:
        return frozenset()
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise AclJsonError(f"ACL znode is not JSON: {exc}") from exc
    if value is None:
        return frozenset()
    if (
        not isinstance(value, dict)
        or value.get("version") != VERSION
        or not isinstance(value.get("acls"), list)
    ):
        raise AclJsonError(f"unsupported ACL JSON: {data[:200]!r}")
    return frozenset(decode_entry(item) for item in value["acls"])


def encode_literal_change(pattern: ResourcePattern) -> bytes:
    """LiteralAclChangeStore: ``<ResourceType enum name>:<name>``."""
    return f"{pattern.resource_type.name}:{pattern.name}".encode()


def encode_extended_change(pattern: ResourcePattern) -> bytes:
    return _dumps(
        {
            "version": VERSION,
            "resourceType": pattern.resource_type.name,
            "name": pattern.name,
            "patternType": pattern.pattern_type.name,
        }
    )


def decode_change(data: bytes, *, extended: bool) -> ResourcePattern:
    try:
        if not extended:
            kind, sep, name = data.decode().partition(":")
            if not sep:
                raise AclJsonError(f"expected ResourceType:ResourceName, got {data!r}")
            return ResourcePattern(resource_type_named(kind), name, PatternType.LITERAL)
        event = json.loads(data)
        if int(event["version"]) > VERSION:
            raise AclJsonError(f"unsupported ACL change event version {event['version']}")
        return ResourcePattern(
            resource_type_named(str(event["resourceType"])),
            str(event["name"]),
            pattern_type_named(str(event["patternType"])),
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, AclJsonError):
            raise
        raise AclJsonError(f"bad ACL change event {data[:200]!r}: {exc}") from exc
