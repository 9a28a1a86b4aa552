"""``brook acls``: kafka-acls.sh (AclCommand, Kafka 3.9) over CreateAcls, DescribeAcls and DeleteAcls.

``--add`` / ``--remove`` / ``--list`` on resources (``--topic``, ``--group``, ``--cluster``,
``--transactional-id``, ``--delegation-token``, ``--user-principal``, each repeatable) with
``--resource-pattern-type`` (LITERAL by default; PREFIXED; ANY and MATCH for list and remove),
entries from ``--allow-principal`` / ``--deny-principal`` x ``--operation`` (default All) x
``--allow-host`` / ``--deny-host`` (default ``*``), and the ``--producer`` / ``--consumer`` /
``--idempotent`` conveniences. Output and confirmations as kafka-acls.sh prints them; ``--force``
skips the confirmation of ``--remove``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from broker.cli.client import CliError, NodeConnection, check_error
from broker.cli.common import add_connection_options, client_from
from broker.security.acl import (
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    AccessControlEntry,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    operation_named,
    pattern_type_named,
)
from protocol.messages.create_acls_request import AclCreation, CreateAclsRequest
from protocol.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from protocol.messages.describe_acls_request import DescribeAclsRequest

DESCRIBE_ACLS = 29
ANY = 1
Op = AclOperation
#: Kept for callers that print wire codes by name.
OPERATIONS = {op.value: op.name for op in AclOperation}
PERMISSIONS = {p.value: p.name for p in AclPermissionType}
RESOURCE_TYPES = {t.value: t.name for t in ResourceType}
PATTERN_TYPES = {p.value: p.name for p in PatternType}
NO_RESOURCE = (
    "You must provide at least one resource: --topic <topic> or --cluster or --group <group> or "
    "--delegation-token <Delegation Token ID>"
)

#: A resource filter: (type, name or None, pattern type).
Filter = tuple[ResourceType, str | None, PatternType]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("acls", help="Add, remove and list ACLs (kafka-acls.sh).")
    add_connection_options(parser)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--remove", action="store_true")
    parser.add_argument("--topic", action="append", default=[])
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--transactional-id", action="append", default=[])
    parser.add_argument("--delegation-token", action="append", default=[])
    parser.add_argument("--user-principal", action="append", default=[])
    parser.add_argument("--resource-pattern-type", default="LITERAL")
    parser.add_argument("--allow-principal", action="append", default=[])
    parser.add_argument("--deny-principal", action="append", default=[])
    parser.add_argument("--allow-host", action="append", default=[])
    parser.add_argument("--deny-host", action="append", default=[])
    parser.add_argument("--operation", action="append", default=[])
    parser.add_argument(
        "--principal", action="append", default=[], help="--list: only these principals' ACLs"
    )
    parser.add_argument("--producer", action="store_true")
    parser.add_argument("--consumer", action="store_true")
    parser.add_argument("--idempotent", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.set_defaults(run=run, error_prefix="Error while executing ACL command: ")


# -- what the options mean (AclCommand's getResourceFilter / getAcl) --------------------------------


def _pattern_type(args: argparse.Namespace) -> PatternType:
    try:
        return pattern_type_named(args.resource_pattern_type)
    except ValueError:
        raise CliError(f"Unknown resource pattern type: {args.resource_pattern_type}") from None


def resource_filters(args: argparse.Namespace, *, required: bool = True) -> list[Filter]:
    kind = _pattern_type(args)
    filters: list[Filter] = [(ResourceType.TOPIC, t.strip(), kind) for t in args.topic]
    if kind is PatternType.LITERAL and (args.cluster or args.idempotent):
        filters.append((ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL))
    filters += [(ResourceType.GROUP, g.strip(), kind) for g in args.group]
    filters += [(ResourceType.TRANSACTIONAL_ID, t, kind) for t in args.transactional_id]
    filters += [(ResourceType.DELEGATION_TOKEN, t.strip(), kind) for t in args.delegation_token]
    filters += [(ResourceType.USER, u.strip(), kind) for u in args.user_principal]
    if not filters and required:
        raise CliError(NO_RESOURCE)
    return list(dict.fromkeys(filters))


def _principal(text: str) -> str:
    kind, sep, name = text.strip().partition(":")
    if not sep or not kind or not name:
        raise CliError(f"expected a string in format principalType:principalName but got {text}")
    return f"{kind}:{name}"


def entries(args: argparse.Namespace, operations: set[AclOperation]) -> set[AccessControlEntry]:
    """Every (principal, host, operation) of the allow and deny options."""
    result: set[AccessControlEntry] = set()
    for principals, hosts, permission in (
        (args.allow_principal, args.allow_host, AclPermissionType.ALLOW),
        (args.deny_principal, args.deny_host, AclPermissionType.DENY),
    ):
        hosts = [h.strip() for h in hosts] or (["*"] if principals else [])
        for principal in principals:
            for operation in operations:
                for host in hosts:
                    result.add(AccessControlEntry(_principal(principal), host, operation, permission))
    return result


def _operations(args: argparse.Namespace) -> set[AclOperation]:
    try:
        return {operation_named(o.strip()) for o in args.operation or ["All"]}
    except ValueError as exc:
        raise CliError(str(exc)) from None


def filter_to_entries(args: argparse.Namespace) -> dict[Filter, set[AccessControlEntry]]:
    """AclCommand.getResourceFilterToAcls, with --producer / --consumer."""
    result: dict[Filter, set[AccessControlEntry]] = {}
    if not args.producer and not args.consumer:
        acls = entries(args, _operations(args))
        result = {f: set(acls) for f in resource_filters(args)}
    if args.producer:
        filters = resource_filters(args)
        for f in filters:
            if f[0] is ResourceType.TOPIC:
                result[f] = entries(args, {Op.WRITE, Op.DESCRIBE, Op.CREATE})
            elif f[0] is ResourceType.TRANSACTIONAL_ID:
                result[f] = entries(args, {Op.WRITE, Op.DESCRIBE})
        if args.idempotent:
            result[(ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL)] = entries(
                args, {Op.IDEMPOTENT_WRITE}
            )
    if args.consumer:
        for f in resource_filters(args):
            if f[0] is ResourceType.TOPIC:
                result[f] = result.get(f, set()) | entries(args, {Op.READ, Op.DESCRIBE})
            elif f[0] is ResourceType.GROUP:
                result[f] = result.get(f, set()) | entries(args, {Op.READ})
    for (kind, _name, _pattern), acls in result.items():
        allowed = set(SUPPORTED_OPERATIONS[kind]) | {Op.ALL}
        bad = {e.operation for e in acls} - allowed
        if bad:
            names = ", ".join(_java_name(o) for o in sorted(allowed))
            raise CliError(f"ResourceType {kind.name} only supports operations {names}")
    return result


def _java_name(value: AclOperation) -> str:
    return "".join(part.capitalize() for part in value.name.split("_"))


# -- printing as kafka-acls.sh ---------------------------------------------------------------------


def pattern_text(f: Filter) -> str:
    name = "<any>" if f[1] is None else f[1]
    return f"ResourcePattern(resourceType={f[0].name}, name={name}, patternType={f[2].name})"


def entry_text(entry: AccessControlEntry) -> str:
    return (
        f"(principal={entry.principal}, host={entry.host}, operation={entry.operation.name}, "
        f"permissionType={entry.permission_type.name})"
    )


def _block(acls: list[AccessControlEntry]) -> str:
    """Scala's ``s"$Newline ${acls.map("\\t" + _).mkString(Newline)} $Newline"``."""
    return "\n " + "\n".join("\t" + entry_text(e) for e in acls) + " \n"


def _sorted(acls: set[AccessControlEntry]) -> list[AccessControlEntry]:
    return sorted(acls, key=lambda e: (e.principal, e.host, e.operation, e.permission_type))


# -- the three actions --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    actions = sum(bool(a) for a in (args.add, args.remove, args.list))
    if actions != 1:
        raise CliError("Command must include exactly one action: --list, --add, --remove.")
    if args.add and _pattern_type(args) not in (PatternType.LITERAL, PatternType.PREFIXED):
        value = args.resource_pattern_type
        raise CliError(f"A '--resource-pattern-type' value of '{value}' is not valid when adding acls.")
    with client_from(args) as client:
        conn = client.any
        if not conn.supports(DESCRIBE_ACLS):
            raise CliError(
                f"The broker at {conn.label} does not support ACLs (DescribeAcls is not advertised): "
                "SecurityDisabledException: No Authorizer is configured on the broker"
            )
        if args.add:
            return _add(args, conn)
        if args.remove:
            return _remove(args, conn)
        return _list(args, conn)


def _add(args: argparse.Namespace, conn: NodeConnection) -> int:
    plan = filter_to_entries(args)
    if any(not acls for acls in plan.values()):
        raise CliError(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        )
    for f, acls in plan.items():
        ordered = _sorted(acls)
        print(f"Adding ACLs for resource `{pattern_text(f)}`: {_block(ordered)}")
        creations = [
            AclCreation(f[0], f[1] or "", f[2], e.principal, e.host, e.operation, e.permission_type)
            for e in ordered
        ]
        response = conn.call(CreateAclsRequest(creations=creations))
        for result in response.results:
            check_error(result.error_code, result.error_message)
    return 0


def _remove(args: argparse.Namespace, conn: NodeConnection) -> int:
    for f, acls in filter_to_entries(args).items():
        if not acls:
            question = (
                f"Are you sure you want to delete all ACLs for resource filter `{pattern_text(f)}`? (y/n)"
            )
        else:
            question = (
                f"Are you sure you want to remove ACLs: {_block(_sorted(acls))} from resource filter "
                f"`{pattern_text(f)}`? (y/n)"
            )
        if not args.force:
            print(question)
            if sys.stdin.readline().strip().lower() != "y":
                continue
        if acls:
            filters = [
                DeleteAclsFilter(f[0], f[1], f[2], e.principal, e.host, e.operation, e.permission_type)
                for e in _sorted(acls)
            ]
        else:
            filters = [DeleteAclsFilter(f[0], f[1], f[2], None, None, ANY, ANY)]
        response = conn.call(DeleteAclsRequest(filters=filters))
        for result in response.filter_results:
            check_error(result.error_code, result.error_message)
    return 0


def _describe(conn: NodeConnection, f: Filter | None) -> dict[Filter, set[AccessControlEntry]]:
    kind, name, pattern = f if f is not None else (ResourceType.ANY, None, PatternType.ANY)
    request = DescribeAclsRequest(
        resource_type_filter=kind,
        resource_name_filter=name,
        pattern_type_filter=pattern,
        principal_filter=None,
        host_filter=None,
        operation=ANY,
        permission_type=ANY,
    )
    response = conn.call(request)
    check_error(response.error_code, response.error_message)
    found: dict[Filter, set[AccessControlEntry]] = {}
    for resource in response.resources:
        key = (
            _enum(ResourceType, resource.resource_type),
            resource.resource_name,
            _enum(PatternType, resource.pattern_type),
        )
        found.setdefault(key, set()).update(
            AccessControlEntry(
                a.principal,
                a.host,
                _enum(AclOperation, a.operation),
                _enum(AclPermissionType, a.permission_type),
            )
            for a in resource.acls
        )
    return found


def _enum(kind: Any, code: int) -> Any:
    try:
        return kind(code)
    except ValueError:
        return kind(0)


def _list(args: argparse.Namespace, conn: NodeConnection) -> int:
    filters: list[Filter | None] = [*resource_filters(args, required=False)] or [None]
    found: dict[Filter, set[AccessControlEntry]] = {}
    for f in filters:
        for key, acls in _describe(conn, f).items():
            found.setdefault(key, set()).update(acls)
    principals = [_principal(p) for p in args.principal]
    if not principals:
        _print_resources(found)
        return 0
    for principal in principals:
        print(f"ACLs for principal `{principal}`")
        _print_resources({k: {e for e in v if e.principal == principal} for k, v in found.items()})
    return 0


def _print_resources(found: dict[Filter, set[AccessControlEntry]]) -> None:
    for f, acls in found.items():
        if acls:
            print(f"Current ACLs for resource `{pattern_text(f)}`: {_block(_sorted(acls))}")


__all__ = ["add_parser", "run"]
