"""SyncGroup (key 14), versions 0-5.

After a join phase the leader sends the assignment of every member and each member receives
its own (see :mod:`broker.group.coordinator`). The leader's assignment is written to
``__consumer_offsets`` first; every member's answer waits until it is durable, so this handler
is asynchronous. v3+ carries ``group.instance.id``; v5+ must name the protocol type and name
(INCONSISTENT_GROUP_PROTOCOL when missing or different from the group's) and answers them.
Errors: REBALANCE_IN_PROGRESS (also while the coordinator is loading, so that the member
rejoins), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID.

Authorization (an authorizer configured): READ on the group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_group
from protocol.error_codes import ErrorCode
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.sync_group_response import SyncGroupResponse

API_KEY = 14


async def handle(ctx: RequestContext, request: SyncGroupRequest) -> SyncGroupResponse:
    require_group(ctx, Op.READ, request.group_id)
    version = ctx.version
    if version >= 5 and (request.protocol_type is None or request.protocol_name is None):
        return SyncGroupResponse(error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL, assignment=b"")
    result = await ctx.broker.group_coordinator.sync_group(
        request.group_id,
        request.generation_id,
        request.member_id,
        request.protocol_type if version >= 5 else None,
        request.protocol_name if version >= 5 else None,
        request.group_instance_id if version >= 3 else None,
        {a.member_id: bytes(a.assignment) for a in request.assignments},
    )
    return SyncGroupResponse(
        throttle_time_ms=0,
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


HANDLER = Handler(API_KEY, 0, 5, handle)
