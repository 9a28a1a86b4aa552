"""ControlledShutdown (key 7), versions 0-3: a broker about to stop asks the controller to move
leadership off it. Served in cluster mode only (Kafka's ZooKeeper-mode brokers; v0 has a request
header without client id, which the protocol layer reads).

- Not the active controller: NOT_CONTROLLER (the broker retries against the controller it finds
  in its metadata).
- Otherwise the controller handles it as an event (``Controller.controlled_shutdown``): a broker
  epoch (v2+) older than the one in ZooKeeper answers STALE_BROKER_EPOCH; an unknown broker
  BROKER_NOT_AVAILABLE; else leadership moves (new LeaderAndIsr/UpdateMetadata sent) and the
  answer lists the partitions the broker still leads (the broker retries until none).

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine

from broker.cluster.controller_driver import NotControllerError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from broker.types import BrokerId
from protocol.error_codes import ErrorCode
from protocol.messages.controlled_shutdown_request import ControlledShutdownRequest
from protocol.messages.controlled_shutdown_response import (
    ControlledShutdownResponse,
    RemainingPartition,
)

log = logging.getLogger(__name__)

API_KEY = 7


def handle(
    ctx: RequestContext, request: ControlledShutdownRequest
) -> ControlledShutdownResponse | Coroutine[object, object, ControlledShutdownResponse]:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    cluster = ctx.broker.zk_cluster
    if cluster is None or not cluster.is_active_controller:
        return ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)
    return _shutdown(ctx, request)


async def _shutdown(ctx: RequestContext, request: ControlledShutdownRequest) -> ControlledShutdownResponse:
    cluster = ctx.broker.zk_cluster
    assert cluster is not None and cluster.controller is not None
    log.info("controlled shutdown requested by broker %d (epoch %d)", request.broker_id, request.broker_epoch)
    try:
        result = await cluster.controller.controlled_shutdown(
            BrokerId(request.broker_id), request.broker_epoch
        )
    except NotControllerError:
        return ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)
    return ControlledShutdownResponse(
        error_code=result.error,
        remaining_partitions=[
            RemainingPartition(topic_name=p.topic, partition_index=p.partition)
            for p in sorted(result.remaining_partitions)
        ],
    )


HANDLER = Handler(API_KEY, 0, 3, handle)
