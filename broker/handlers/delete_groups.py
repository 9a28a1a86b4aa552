"""DeleteGroups (key 42), versions 0-2.

Deletes Empty groups and their committed offsets (tombstones in ``__consumer_offsets``); a
group with members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND; NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS and INVALID_GROUP_ID as for the other group apis. Each group id is
answered once; the answer waits for the tombstones to be written.

Authorization (an authorizer configured): DELETE on each group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import GROUP, Op, checker
from protocol.error_codes import ErrorCode
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.delete_groups_response import DeletableGroupResult, DeleteGroupsResponse

API_KEY = 42


async def handle(ctx: RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    may_delete = checker(ctx, Op.DELETE, GROUP)
    allowed = [g for g in request.groups_names if may_delete(g)]
    results = await ctx.broker.group_coordinator.admin.delete(allowed) if allowed else {}
    return DeleteGroupsResponse(
        throttle_time_ms=0,
        results=[
            DeletableGroupResult(group_id, results.get(group_id, ErrorCode.GROUP_AUTHORIZATION_FAILED))
            for group_id in dict.fromkeys(request.groups_names)
        ],
    )


HANDLER = Handler(API_KEY, 0, 2, handle)
