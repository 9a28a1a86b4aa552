"""AlterUserScramCredentials (key 51), version 0.

Upserts and deletes SCRAM credentials as Kafka's ZkAdminManager: the client sends the salt and
the salted password (never the password); the broker keeps the salt, stored key, server key and
iterations. Per-user errors: UNACCEPTABLE_CREDENTIAL (empty name, fewer than 4096 or more than
16384 iterations), UNSUPPORTED_SASL_MECHANISM (unknown mechanism), DUPLICATE_RESOURCE (a user and
mechanism twice), RESOURCE_NOT_FOUND (deleting a missing credential). In cluster mode only the
active controller answers (NOT_CONTROLLER elsewhere, as Kafka) and writes ``/config/users/<user>``
with a change notification that every broker applies; the embedded node writes its credentials
file before answering.

Authorization (an authorizer configured): ALTER on the cluster, checked after the controller
check as KafkaApis does; CLUSTER_AUTHORIZATION_FAILED for every user otherwise.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.error_codes import ErrorCode
from protocol.messages.alter_user_scram_credentials_request import AlterUserScramCredentialsRequest
from protocol.messages.alter_user_scram_credentials_response import (
    AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult,
)

API_KEY = 51
NOT_CONTROLLER_MESSAGE = "This is not the correct controller for this cluster."


async def handle(
    ctx: RequestContext, request: AlterUserScramCredentialsRequest
) -> AlterUserScramCredentialsResponse:
    broker = ctx.broker
    cluster = broker.zk_cluster
    if cluster is not None and not cluster.is_active_controller:
        users = dict.fromkeys([u.name for u in request.upsertions] + [d.name for d in request.deletions])
        return AlterUserScramCredentialsResponse(
            results=[
                AlterUserScramCredentialsResult(user, ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MESSAGE)
                for user in users
            ]
        )
    require_cluster(ctx, Op.ALTER)
    credentials = broker.scram_credentials
    await credentials.ensure_loaded()
    results = await credentials.alter(request.upsertions, request.deletions)
    return AlterUserScramCredentialsResponse(
        results=[AlterUserScramCredentialsResult(r.user, r.error_code, r.message) for r in results]
    )


HANDLER = Handler(API_KEY, 0, 0, handle)
