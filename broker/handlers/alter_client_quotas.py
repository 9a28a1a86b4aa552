"""AlterClientQuotas (key 49), versions 0-1 (v1 is flexible).

Each entry sets or removes quota keys (``producer_byte_rate`` and ``consumer_byte_rate``: whole
numbers; ``request_percentage`` and ``controller_mutation_rate``: doubles) of one entity: a user,
a client id or both, a null name being the default (``<default>``). Entries are applied one by
one and answered one by one, with Kafka's INVALID_REQUEST messages for an empty or unknown
entity, an empty name, an unknown key or a fractional byte rate. ``validate_only`` checks and
stores nothing. Stored in ZooKeeper (with a change notification that every broker applies) or,
on the embedded node, in its quota file (:mod:`broker.quotas.store`); applied here at once.

Authorization (an authorizer configured): ALTER_CONFIGS on the cluster, else
CLUSTER_AUTHORIZATION_FAILED for every entry.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.quotas.service import Op, QuotaRequestError
from broker.security.authz import AclOperation, require_cluster
from protocol.messages.alter_client_quotas_request import AlterClientQuotasRequest
from protocol.messages.alter_client_quotas_response import AlterClientQuotasResponse, EntityData, EntryData

API_KEY = 49


async def handle(ctx: RequestContext, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse:
    require_cluster(ctx, AclOperation.ALTER_CONFIGS)
    service = ctx.broker.quota_service
    results = []
    for entry in request.entries:
        entity = [(e.entity_type, e.entity_name) for e in entry.entity]
        code, message = 0, None
        try:
            ops = [Op(o.key, o.value, o.remove) for o in entry.ops]
            await service.alter(entity, ops, request.validate_only)
        except QuotaRequestError as exc:
            code, message = int(exc.code), exc.message
        results.append(EntryData(code, message, [EntityData(t, n) for t, n in entity]))
    return AlterClientQuotasResponse(entries=results)


HANDLER = Handler(API_KEY, 0, 1, handle)
