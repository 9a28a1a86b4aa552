"""Heartbeat (key 12), versions 0-4.

Keeps a member's session alive. Answers REBALANCE_IN_PROGRESS while the group prepares a
rebalance (the member must rejoin), ILLEGAL_GENERATION for another generation,
UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID (v3+ carries ``group.instance.id``) for members that are
gone or replaced, NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / INVALID_GROUP_ID; while the
coordinator is loading the group it answers NONE, as Kafka does.

Authorization (an authorizer configured): READ on the group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_group
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse

API_KEY = 12


def handle(ctx: RequestContext, request: HeartbeatRequest) -> HeartbeatResponse:
    require_group(ctx, Op.READ, request.group_id)
    error = ctx.broker.group_coordinator.heartbeat(
        request.group_id,
        request.member_id,
        request.group_instance_id if ctx.version >= 3 else None,
        request.generation_id,
    )
    return HeartbeatResponse(throttle_time_ms=0, error_code=error)


HANDLER = Handler(API_KEY, 0, 4, handle)
