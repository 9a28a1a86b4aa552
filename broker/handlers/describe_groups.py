"""DescribeGroups (key 15), versions 0-5.

Per group: state, protocol type and (when Stable) the selected protocol with each member's
metadata and assignment; outside Stable the members are listed without them, as in Kafka. A
group this coordinator does not know is reported as "Dead" with no error. v3+ can ask for the
authorized operations (all of a group's: READ, DELETE, DESCRIBE, as there is no authorizer);
v4+ report ``group.instance.id``. Per-group errors: NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE.

Authorization (an authorizer configured): DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED);
authorized operations (v3+, when asked) are the group operations the principal may do.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.handlers.metadata import AUTHORIZED_OPERATIONS_OMITTED
from broker.security.authz import GROUP, Op, authorized_operations, checker
from protocol.error_codes import ErrorCode
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.describe_groups_response import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsResponse,
)

API_KEY = 15
# AclOperation codes READ 3, DELETE 6, DESCRIBE 8: what a group supports (AclEntry).
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def handle(ctx: RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    admin = ctx.broker.group_coordinator.admin
    include_ops = ctx.version >= 3 and request.include_authorized_operations
    groups = []
    may_describe = checker(ctx, Op.DESCRIBE, GROUP)
    for group_id in request.groups:
        if not may_describe(group_id):
            groups.append(
                DescribedGroup(
                    error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED,
                    group_id=group_id,
                    authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
                )
            )
            continue
        error, summary = admin.describe(group_id)
        groups.append(
            DescribedGroup(
                error_code=error,
                group_id=group_id,
                group_state=summary.state,
                protocol_type=summary.protocol_type,
                protocol_data=summary.protocol,
                members=[
                    DescribedGroupMember(
                        m.member_id, m.group_instance_id, m.client_id, m.client_host, m.metadata, m.assignment
                    )
                    for m in summary.members
                ],
                authorized_operations=authorized_operations(ctx, GROUP, group_id)
                if include_ops and error == ErrorCode.NONE
                else AUTHORIZED_OPERATIONS_OMITTED,
            )
        )
    return DescribeGroupsResponse(throttle_time_ms=0, groups=groups)


HANDLER = Handler(API_KEY, 0, 5, handle)
