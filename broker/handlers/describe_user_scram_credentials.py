"""DescribeUserScramCredentials (key 50), version 0.

The SCRAM mechanisms and iteration counts of the users asked (all users with a credential when
``users`` is null or empty), as Kafka's ZkAdminManager: RESOURCE_NOT_FOUND for a user without
credentials or an empty name, DUPLICATE_RESOURCE for a user asked twice. Salts and keys are
never returned. Read from ZooKeeper in cluster mode, from the broker's store on the embedded node.

Authorization (an authorizer configured): DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.messages.describe_user_scram_credentials_request import DescribeUserScramCredentialsRequest
from protocol.messages.describe_user_scram_credentials_response import (
    CredentialInfo,
    DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
)

API_KEY = 50


async def handle(
    ctx: RequestContext, request: DescribeUserScramCredentialsRequest
) -> DescribeUserScramCredentialsResponse:
    require_cluster(ctx, Op.DESCRIBE)
    credentials = ctx.broker.scram_credentials
    await credentials.ensure_loaded()
    users = None if request.users is None else [user.name for user in request.users]
    results = await credentials.describe(users)
    return DescribeUserScramCredentialsResponse(
        error_message=None,
        results=[
            DescribeUserScramCredentialsResult(
                user,
                code,
                message,
                [CredentialInfo(mechanism, iterations) for mechanism, iterations in infos],
            )
            for user, code, message, infos in results
        ],
    )


HANDLER = Handler(API_KEY, 0, 0, handle)
