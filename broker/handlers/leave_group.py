"""LeaveGroup (key 13), versions 0-5.

Removes members from a group, which then rebalances. v0-v2 name one member and answer one
error code (the member's); v3+ take a batch of members (member id and/or
``group.instance.id``: an empty member id with an instance id removes that static member, as
admin tools do) and answer each one (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); v5+ carry a reason
per member. Group-level errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID.

Authorization (an authorizer configured): READ on the group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.group import LeavingMember
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_group
from protocol.error_codes import ErrorCode
from protocol.messages.leave_group_request import LeaveGroupRequest
from protocol.messages.leave_group_response import LeaveGroupResponse, MemberResponse

API_KEY = 13


def handle(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse:
    require_group(ctx, Op.READ, request.group_id)
    version = ctx.version
    if version >= 3:
        leaving = [
            LeavingMember(m.member_id, m.group_instance_id, m.reason if version >= 5 else None)
            for m in request.members
        ]
    else:
        leaving = [LeavingMember(request.member_id)]
    error, results = ctx.broker.group_coordinator.leave_group(request.group_id, leaving)
    if version >= 3:
        return LeaveGroupResponse(
            throttle_time_ms=0,
            error_code=error,
            members=[MemberResponse(r.member_id, r.group_instance_id, r.error) for r in results],
        )
    if error == ErrorCode.NONE and results:
        error = results[0].error
    return LeaveGroupResponse(throttle_time_ms=0, error_code=error)


HANDLER = Handler(API_KEY, 0, 5, handle)
