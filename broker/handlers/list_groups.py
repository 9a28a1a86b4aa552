"""ListGroups (key 16), versions 0-5.

The groups of the ``__consumer_offsets`` partitions this broker leads (clients ask every
broker). v4+ filter by state (case-insensitive) and report it; v5+ filter by group type and
report it ("classic" for every group here: a type filter without "classic" lists none). The
error is COORDINATOR_LOAD_IN_PROGRESS while a partition is still loading (the groups loaded so
far are listed anyway).

Authorization (an authorizer configured): without DESCRIBE on the cluster, only the groups the
principal may DESCRIBE are listed.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import GROUP, Op, authorize_cluster, checker
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.list_groups_response import ListedGroup, ListGroupsResponse

API_KEY = 16


def handle(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse:
    version = ctx.version
    error, groups = ctx.broker.group_coordinator.admin.list(
        request.states_filter if version >= 4 else [], request.types_filter if version >= 5 else []
    )
    if not authorize_cluster(ctx, Op.DESCRIBE):
        # Without DESCRIBE on the cluster, the groups the principal may describe.
        may_describe = checker(ctx, Op.DESCRIBE, GROUP)
        groups = [g for g in groups if may_describe(g.group_id)]
    return ListGroupsResponse(
        throttle_time_ms=0,
        error_code=error,
        groups=[ListedGroup(g.group_id, g.protocol_type, g.state, g.group_type) for g in groups],
    )


HANDLER = Handler(API_KEY, 0, 5, handle)
