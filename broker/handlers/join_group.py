"""JoinGroup (key 11), versions 0-9.

Joins a member to a classic group (see :mod:`broker.group.coordinator` for the protocol). By
version: v0 has no rebalance timeout (the session timeout serves as one); v4+ requires a dynamic
member that joins without a member id to rejoin with the id it is given (MEMBER_ID_REQUIRED),
older versions join it at once; v5+ carries ``group.instance.id`` (static membership); v7+
answers the protocol type and a nullable protocol name (v0-v6: "" when there is none); v8+ a
join reason; v9+ lets a restarted static leader skip the assignment of a Stable group
(``skip_assignment``). The answer comes when the join phase completes, so this handler is
asynchronous. Errors: INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE, INVALID_SESSION_TIMEOUT (outside ``group.min.session.timeout.ms`` -
``group.max.session.timeout.ms``), INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID,
FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED (``group.max.size``), MEMBER_ID_REQUIRED.

Authorization (an authorizer configured): READ on the group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.group import JoinRequest
from broker.group.member import JoinResult, client_host
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_group
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.join_group_response import JoinGroupResponse, JoinGroupResponseMember

API_KEY = 11


async def handle(ctx: RequestContext, request: JoinGroupRequest) -> JoinGroupResponse:
    require_group(ctx, Op.READ, request.group_id)
    version = ctx.version
    instance_id = request.group_instance_id if version >= 5 else None
    join = JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=instance_id,
        require_known_member_id=version >= 4 and instance_id is None,
        support_skip_assignment=version >= 9,
        client_id=ctx.client_id or "",
        client_host=client_host(ctx.peer),
        rebalance_timeout_ms=request.session_timeout_ms if version == 0 else request.rebalance_timeout_ms,
        session_timeout_ms=request.session_timeout_ms,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        reason=request.reason if version >= 8 else None,
    )
    result = await ctx.broker.group_coordinator.join_group(join)
    return response(result, version)


def response(result: JoinResult, version: int) -> JoinGroupResponse:
    protocol_name = result.protocol_name
    if version < 7 and protocol_name is None:
        protocol_name = ""
    elif version >= 7 and protocol_name == "":
        protocol_name = None
    return JoinGroupResponse(
        throttle_time_ms=0,
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=protocol_name,
        leader=result.leader_id,
        skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=[
            JoinGroupResponseMember(m.member_id, m.group_instance_id, m.metadata) for m in result.members
        ],
    )


HANDLER = Handler(API_KEY, 0, 9, handle)
