"""DescribeClientQuotas (key 48), versions 0-1 (v1 is flexible).

The stored quota configs of users, client ids and (user, client id) pairs that match the filter,
as Kafka's ZooKeeper-mode broker answers it (ZkAdminManager.describeClientQuotas): components by
entity type ``user`` / ``client-id`` (``ip`` is accepted and matches nothing: Brook keeps no IP
quotas), match types exact / default / any specified, ``strict`` leaving out entities with parts
the filter does not name. A bad filter is answered with the error and a null entry list.
Read from the store (ZooKeeper in cluster mode), so any broker answers for the cluster.

Authorization (an authorizer configured): DESCRIBE_CONFIGS on the cluster, else
CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.quotas.service import FilterComponent, QuotaRequestError
from broker.security.authz import Op, require_cluster
from protocol.messages.describe_client_quotas_request import DescribeClientQuotasRequest
from protocol.messages.describe_client_quotas_response import (
    DescribeClientQuotasResponse,
    EntityData,
    EntryData,
    ValueData,
)

API_KEY = 48


async def handle(ctx: RequestContext, request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse:
    require_cluster(ctx, Op.DESCRIBE_CONFIGS)
    components = [FilterComponent(c.entity_type, c.match_type, c.match) for c in request.components]
    try:
        found = await ctx.broker.quota_service.describe(components, request.strict)
    except QuotaRequestError as exc:
        return DescribeClientQuotasResponse(error_code=exc.code, error_message=exc.message, entries=None)
    entries = [
        EntryData(
            entity=[EntityData(entity_type, name) for entity_type, name in entity],
            values=[ValueData(key, value) for key, value in sorted(values.items())],
        )
        for entity, values in found
    ]
    return DescribeClientQuotasResponse(error_code=0, error_message=None, entries=entries)


HANDLER = Handler(API_KEY, 0, 1, handle)
