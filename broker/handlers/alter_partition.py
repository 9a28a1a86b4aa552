"""AlterPartition (key 56), versions 0-3: a partition leader asks the controller to change the
ISR (Kafka 3.9's ZooKeeper-mode controller handles it). Served in cluster mode only.

Not the active controller: NOT_CONTROLLER for the whole request (the leader retries against the
controller). On the controller, as an event: ``Controller.alter_partition`` validates each
partition (STALE_BROKER_EPOCH, FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA...),
the accepted states are written to ZooKeeper (fenced) and every broker gets UpdateMetadata; the
answer carries each partition's new state.

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Coroutine

from broker.cluster.controller_driver import NotControllerError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import AlterPartitionRequest
from protocol.messages.alter_partition_response import AlterPartitionResponse

API_KEY = 56


def handle(
    ctx: RequestContext, request: AlterPartitionRequest
) -> AlterPartitionResponse | Coroutine[object, object, AlterPartitionResponse]:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    cluster = ctx.broker.zk_cluster
    if cluster is None or not cluster.is_active_controller:
        return AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)
    return _alter(ctx, request)


async def _alter(ctx: RequestContext, request: AlterPartitionRequest) -> AlterPartitionResponse:
    cluster = ctx.broker.zk_cluster
    assert cluster is not None and cluster.controller is not None
    try:
        return await cluster.controller.alter_partition(request, ctx.version)
    except NotControllerError:
        return AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)


HANDLER = Handler(API_KEY, 0, 3, handle)
