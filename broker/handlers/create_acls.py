"""CreateAcls (key 30), versions 0-3.

Needs ALTER on the cluster (else every creation answers CLUSTER_AUTHORIZATION_FAILED); without an
authorizer every creation answers SECURITY_DISABLED. Each binding must be concrete (no ANY or
UNKNOWN element; v0 is always LITERAL), a CLUSTER resource must be named ``kafka-cluster`` and a
name must not be empty, else that creation answers INVALID_REQUEST. The rest are stored (file or
ZooKeeper) before the answer, grouped by resource as Kafka's AclAuthorizer writes them.
"""

from __future__ import annotations

from broker.handlers.acl_common import (
    CLUSTER_AUTHORIZATION_FAILED,
    INVALID_REQUEST,
    NO_AUTHORIZER,
    SECURITY_DISABLED,
    binding_of,
)
from broker.handlers.base import Handler, RequestContext
from broker.security.acl import AclOperation
from broker.security.authz import authorize_cluster
from protocol.messages.create_acls_request import CreateAclsRequest
from protocol.messages.create_acls_response import AclCreationResult, CreateAclsResponse

API_KEY = 30


def _all(request: CreateAclsRequest, code: int, message: str | None) -> CreateAclsResponse:
    return CreateAclsResponse(results=[AclCreationResult(code, message) for _ in request.creations])


async def handle(ctx: RequestContext, request: CreateAclsRequest) -> CreateAclsResponse:
    if not authorize_cluster(ctx, AclOperation.ALTER):
        return _all(request, CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _all(request, SECURITY_DISABLED, NO_AUTHORIZER)
    bindings = [binding_of(creation, ctx.version) for creation in request.creations]
    problems = await authorizer.create_acls(bindings)
    return CreateAclsResponse(
        results=[
            AclCreationResult(0, None) if problem is None else AclCreationResult(INVALID_REQUEST, problem)
            for problem in problems
        ]
    )


HANDLER = Handler(API_KEY, 0, 3, handle)
