"""``brook acls``: kafka-acls.sh ``--list`` over DescribeAcls. A broker that does not advertise the
ACL apis (Brook until issue 15) gets a clear "not supported" error; adding and removing ACLs is
not implemented here yet."""

from __future__ import annotations

import argparse
from typing import Any

from broker.cli.client import CliError, check_error
from broker.cli.common import add_connection_options, client_from
from protocol.messages.describe_acls_request import DescribeAclsRequest

DESCRIBE_ACLS = 29
#: AclOperation, AclPermissionType, ResourceType and PatternType by their wire codes.
OPERATIONS = {
    0: "UNKNOWN",
    1: "ANY",
    2: "ALL",
    3: "READ",
    4: "WRITE",
    5: "CREATE",
    6: "DELETE",
    7: "ALTER",
    8: "DESCRIBE",
    9: "CLUSTER_ACTION",
    10: "DESCRIBE_CONFIGS",
    11: "ALTER_CONFIGS",
    12: "IDEMPOTENT_WRITE",
    13: "CREATE_TOKENS",
    14: "DESCRIBE_TOKENS",
}
PERMISSIONS = {0: "UNKNOWN", 1: "ANY", 2: "DENY", 3: "ALLOW"}
RESOURCE_TYPES = {
    0: "UNKNOWN",
    1: "ANY",
    2: "TOPIC",
    3: "GROUP",
    4: "CLUSTER",
    5: "TRANSACTIONAL_ID",
    6: "DELEGATION_TOKEN",
    7: "USER",
}
PATTERN_TYPES = {0: "UNKNOWN", 1: "ANY", 2: "MATCH", 3: "LITERAL", 4: "PREFIXED"}
ANY = 1


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("acls", help="List ACLs (kafka-acls.sh --list).")
    add_connection_options(parser)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--remove", action="store_true")
    parser.add_argument("--topic")
    parser.add_argument("--group")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--principal")
    parser.set_defaults(run=run, error_prefix="Error while executing ACL command: ")


def _filter(args: argparse.Namespace) -> tuple[int, str | None]:
    if args.topic:
        return 2, args.topic
    if args.group:
        return 3, args.group
    if args.cluster:
        return 4, "kafka-cluster"
    return ANY, None


def run(args: argparse.Namespace) -> int:
    if args.add or args.remove:
        raise CliError("brook acls supports only --list for now; use kafka-acls.sh to add or remove ACLs")
    if not args.list:
        raise CliError("Command must include exactly one action: --list, --add, --remove.")
    resource_type, name = _filter(args)
    with client_from(args) as client:
        conn = client.any
        if not conn.supports(DESCRIBE_ACLS):
            raise CliError(
                f"The broker at {conn.label} does not support ACLs (DescribeAcls is not advertised): "
                "SecurityDisabledException: No Authorizer is configured on the broker"
            )
        request = DescribeAclsRequest(
            resource_type_filter=resource_type,
            resource_name_filter=name,
            pattern_type_filter=ANY if name is None else 3,
            principal_filter=args.principal,
            host_filter=None,
            operation=ANY,
            permission_type=ANY,
        )
        response = conn.call(request)
        check_error(response.error_code, response.error_message)
    for resource in response.resources:
        kind = RESOURCE_TYPES.get(resource.resource_type, "UNKNOWN")
        pattern = PATTERN_TYPES.get(resource.pattern_type, "UNKNOWN")
        print(
            f"Current ACLs for resource `ResourcePattern(resourceType={kind}, name={resource.resource_name}, "
            f"patternType={pattern})`: "
        )
        for acl in resource.acls:
            print(
                f" \t(principal={acl.principal}, host={acl.host}, "
                f"operation={OPERATIONS.get(acl.operation, 'UNKNOWN')}, "
                f"permissionType={PERMISSIONS.get(acl.permission_type, 'UNKNOWN')}) "
            )
        print()
    return 0
