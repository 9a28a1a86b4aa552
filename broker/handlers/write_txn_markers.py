"""WriteTxnMarkers (key 27), versions 0-1 (v1 is the flexible encoding): a transaction coordinator
asks this broker to end a producer's transaction on the partitions it leads.

A thin wrapper over :meth:`ReplicaManager.write_txn_markers`: for each marker and partition, a
COMMIT or ABORT control batch (producer id and epoch, the coordinator epoch) is appended with
acks=-1 and answered once replicated. Per partition errors: UNKNOWN_TOPIC_OR_PARTITION,
NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
REQUEST_TIMED_OUT, INVALID_PRODUCER_EPOCH (an epoch older than the producer's), and
TRANSACTION_COORDINATOR_FENCED (a coordinator epoch older than the last marker's). Served on the
embedded node and in cluster mode; there are no ACLs, so CLUSTER_AUTHORIZATION_FAILED is never
answered.

Authorization (an authorizer configured): CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from protocol.messages.write_txn_markers_request import WriteTxnMarkersRequest
from protocol.messages.write_txn_markers_response import WriteTxnMarkersResponse

API_KEY = 27


async def handle(ctx: RequestContext, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse:
    require_cluster(ctx, Op.CLUSTER_ACTION)
    results = await ctx.broker.replica_manager.write_txn_markers(request.markers)
    return WriteTxnMarkersResponse(markers=results)


HANDLER = Handler(API_KEY, 0, 1, handle)
