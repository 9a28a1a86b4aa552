"""DescribeCluster (key 60), versions 0-1.

The live brokers (as advertised on the caller's listener), the cluster id and the controller.
v1 adds ``endpoint_type``: 1 asks for brokers (the only kind a broker serves); 2 (controllers)
is answered with UNSUPPORTED_ENDPOINT_TYPE, as Kafka's brokers do.
Authorization: none needed (as Kafka); the authorized operations, when asked, are the cluster
operations the principal may do, 0 without DESCRIBE on the cluster.
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.handlers.metadata import AUTHORIZED_OPERATIONS_OMITTED
from broker.security.acl import CLUSTER_NAME, ResourceType
from broker.security.authz import Op, authorize_cluster, authorized_operations
from protocol.error_codes import ErrorCode
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_cluster_response import DescribeClusterBroker, DescribeClusterResponse

API_KEY = 60
BROKERS = 1


def handle(ctx: RequestContext, request: DescribeClusterRequest) -> DescribeClusterResponse:
    broker = ctx.broker
    if ctx.version >= 1 and request.endpoint_type != BROKERS:
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message="The broker only supports the broker endpoint type",
            endpoint_type=request.endpoint_type,
            cluster_id=broker.cluster_id,
        )
    brokers = [
        DescribeClusterBroker(b.node_id, b.host, b.port, b.rack)
        for b in broker.live_brokers(ctx.conn.listener)
    ]
    return DescribeClusterResponse(
        error_code=0,
        endpoint_type=BROKERS,
        cluster_id=broker.cluster_id,
        controller_id=broker.controller_id,
        brokers=brokers,
        cluster_authorized_operations=(
            _cluster_operations(ctx)
            if request.include_cluster_authorized_operations
            else AUTHORIZED_OPERATIONS_OMITTED
        ),
    )


def _cluster_operations(ctx: RequestContext) -> int:
    """AuthHelper.computeDescribeClusterResponse: 0 without DESCRIBE on the cluster."""
    if not authorize_cluster(ctx, Op.DESCRIBE):
        return 0
    return authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME)


HANDLER = Handler(API_KEY, 0, 1, handle)
