"""DescribeAcls (key 29), versions 0-3.

Needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); without an authorizer it answers
SECURITY_DISABLED. The filter selects ACLs as Kafka's AclBindingFilter: a resource type or ANY,
a pattern type (LITERAL, PREFIXED, ANY = exact name in either, MATCH = every pattern that applies
to the name: the literal, the ``*`` wildcard and the prefixes), a name, principal and host or
null for any, an operation and permission or ANY. A filter with an UNKNOWN element answers
INVALID_REQUEST. The ACLs come back grouped by resource pattern.
"""

from __future__ import annotations

from broker.handlers.acl_common import (
    CLUSTER_AUTHORIZATION_FAILED,
    INVALID_REQUEST,
    SECURITY_DISABLED,
    filter_of,
)
from broker.handlers.base import Handler, RequestContext
from broker.security.acl import AccessControlEntry, AclOperation, ResourcePattern
from broker.security.authz import authorize_cluster
from protocol.messages.describe_acls_request import DescribeAclsRequest
from protocol.messages.describe_acls_response import (
    AclDescription,
    DescribeAclsResource,
    DescribeAclsResponse,
)

API_KEY = 29


def handle(ctx: RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse:
    if not authorize_cluster(ctx, AclOperation.DESCRIBE):
        return DescribeAclsResponse(
            error_code=CLUSTER_AUTHORIZATION_FAILED, error_message="Cluster authorization failed."
        )
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return DescribeAclsResponse(
            error_code=SECURITY_DISABLED, error_message="No Authorizer is configured on the broker"
        )
    filter_ = filter_of(request, ctx.version)
    unknown = filter_.unknown_element()
    if unknown is not None:
        return DescribeAclsResponse(
            error_code=INVALID_REQUEST, error_message=f"The filter has an unknown {unknown}"
        )
    grouped: dict[ResourcePattern, list[AccessControlEntry]] = {}
    for binding in authorizer.acls(filter_):
        grouped.setdefault(binding.pattern, []).append(binding.entry)
    resources = [
        DescribeAclsResource(
            pattern.resource_type,
            pattern.name,
            pattern.pattern_type,
            [
                AclDescription(e.principal, e.host, e.operation, e.permission_type)
                for e in sorted(entries, key=lambda e: (e.principal, e.host, e.operation, e.permission_type))
            ],
        )
        for pattern, entries in sorted(
            grouped.items(), key=lambda kv: (kv[0].resource_type, kv[0].name, kv[0].pattern_type)
        )
    ]
    return DescribeAclsResponse(error_code=0, error_message=None, resources=resources)


HANDLER = Handler(API_KEY, 0, 3, handle)
