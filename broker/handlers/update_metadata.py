"""UpdateMetadata (key 6), versions 0-8: the controller's view of the cluster, into this broker's
read-only metadata cache. Served in cluster mode only (as by Kafka's ZooKeeper-mode brokers).

- A broker epoch (v5+) older than this broker's answers STALE_BROKER_EPOCH (-1 skips the check).
- A controller epoch older than the latest seen (shared with LeaderAndIsr and StopReplica)
  answers STALE_CONTROLLER_EPOCH, as Kafka's ControllerMovedException; else it becomes the latest.
- Otherwise :meth:`MetadataCache.update` replaces the live brokers (v0: one PLAINTEXT host and
  port; v1-2: endpoints named by security protocol; v3+: by listener; racks from v2), the
  controller id, and the partition states named (offline replicas from v4, grouped by topic from
  v5, topic ids from v7; a leader of -2 deletes the partition). Metadata, DescribeCluster,
  FindCoordinator and the KIP-951 hints of Produce and Fetch read the cache from then on.
- ``is_kraft_controller`` and ``type`` (v8, KRaft migration) are ignored: Brook's controllers
  are ZooKeeper controllers.

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import logging

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.error_codes import ErrorCode
from protocol.messages.update_metadata_request import UpdateMetadataRequest
from protocol.messages.update_metadata_response import UpdateMetadataResponse

log = logging.getLogger(__name__)

API_KEY = 6


def handle(ctx: RequestContext, request: UpdateMetadataRequest) -> UpdateMetadataResponse:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    broker = ctx.broker
    if broker.is_broker_epoch_stale(request.broker_epoch):
        log.info(
            "UpdateMetadata from controller %d (epoch %d) has broker epoch %d, older than ours %d",
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
            broker.broker_epoch,
        )
        return UpdateMetadataResponse(error_code=ErrorCode.STALE_BROKER_EPOCH)
    control = broker.replica_manager.control
    if request.controller_epoch < control.controller_epoch:
        log.warning(
            "ignoring UpdateMetadata from controller %d: its epoch %d is older than %d",
            request.controller_id,
            request.controller_epoch,
            control.controller_epoch,
        )
        return UpdateMetadataResponse(error_code=ErrorCode.STALE_CONTROLLER_EPOCH)
    deleted = broker.metadata_cache.update(request, ctx.version)
    control.controller_epoch = request.controller_epoch
    if broker.zk_cluster is not None:
        broker.zk_cluster.notify_metadata_changed()
    if deleted:
        # Kafka then tells the group coordinator (onPartitionsDeleted); Brook's coordinator does
        # not follow cluster metadata yet.
        log.info("the controller deleted %d partitions from the metadata cache", len(deleted))
    return UpdateMetadataResponse(error_code=ErrorCode.NONE)


HANDLER = Handler(API_KEY, 0, 8, handle)
