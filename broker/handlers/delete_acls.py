"""DeleteAcls (key 31), versions 0-3.

Needs ALTER on the cluster (else every filter answers CLUSTER_AUTHORIZATION_FAILED); without an
authorizer every filter answers SECURITY_DISABLED; a filter with an UNKNOWN element answers
INVALID_REQUEST. Each other filter deletes the ACLs it matches (see DescribeAcls for the
matching) and lists them; an ACL matched by several filters is listed under the first, as
Kafka's AclAuthorizer.deleteAcls.
"""

from __future__ import annotations

from broker.handlers.acl_common import (
    CLUSTER_AUTHORIZATION_FAILED,
    INVALID_REQUEST,
    NO_AUTHORIZER,
    SECURITY_DISABLED,
    filter_of,
)
from broker.handlers.base import Handler, RequestContext
from broker.security.acl import AclBindingFilter, AclOperation
from broker.security.authz import authorize_cluster
from protocol.messages.delete_acls_request import DeleteAclsRequest
from protocol.messages.delete_acls_response import (
    DeleteAclsFilterResult,
    DeleteAclsMatchingAcl,
    DeleteAclsResponse,
)

API_KEY = 31


def _all(request: DeleteAclsRequest, code: int, message: str | None) -> DeleteAclsResponse:
    return DeleteAclsResponse(
        filter_results=[DeleteAclsFilterResult(code, message, []) for _ in request.filters]
    )


async def handle(ctx: RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse:
    if not authorize_cluster(ctx, AclOperation.ALTER):
        return _all(request, CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _all(request, SECURITY_DISABLED, NO_AUTHORIZER)
    filters = [filter_of(f, ctx.version) for f in request.filters]
    valid: list[AclBindingFilter] = [f for f in filters if f.unknown_element() is None]
    deleted = iter(await authorizer.delete_acls(valid))
    results: list[DeleteAclsFilterResult] = []
    for filter_ in filters:
        unknown = filter_.unknown_element()
        if unknown is not None:
            results.append(
                DeleteAclsFilterResult(INVALID_REQUEST, f"The filter has an unknown {unknown}", [])
            )
            continue
        matching = [
            DeleteAclsMatchingAcl(
                0,
                None,
                b.pattern.resource_type,
                b.pattern.name,
                b.pattern.pattern_type,
                b.entry.principal,
                b.entry.host,
                b.entry.operation,
                b.entry.permission_type,
            )
            for b in next(deleted)
        ]
        results.append(DeleteAclsFilterResult(0, None, matching))
    return DeleteAclsResponse(filter_results=results)


HANDLER = Handler(API_KEY, 0, 3, handle)
