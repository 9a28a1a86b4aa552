"""AlterPartitionReassignments (key 45), version 0: start, replace or cancel partition
reassignments. Served in cluster mode only.

As Kafka 3.9 in ZooKeeper mode (KafkaApis.handleAlterPartitionReassignmentsRequest ->
KafkaController.alterPartitionReassignments):
- on a broker that is not the active controller the answer is a top-level NOT_CONTROLLER with no
  partitions (the admin client retries against the controller);
- on the controller each partition gets ``Controller.alter_partition_reassignments``' outcome:
  NONE once the reassignment started (or completed at once), INVALID_REPLICA_ASSIGNMENT for an
  empty list, duplicates, negative ids or new replicas on dead brokers,
  UNKNOWN_TOPIC_OR_PARTITION, and NO_REASSIGNMENT_IN_PROGRESS for a cancellation (null
  ``replicas``) of nothing;
- a partition named twice takes the last entry.

The answer comes when the reassignment's first phase is written and its requests queued, not
when it completes; ListPartitionReassignments shows it until then.

Authorization (an authorizer configured): ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping

from broker.cluster.controller import ReassignmentOutcome
from broker.cluster.controller_driver import NotControllerError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_reassignments_request import AlterPartitionReassignmentsRequest
from protocol.messages.alter_partition_reassignments_response import (
    AlterPartitionReassignmentsResponse,
    ReassignablePartitionResponse,
    ReassignableTopicResponse,
)

API_KEY = 45


def _response(outcomes: Mapping[TopicPartition, ReassignmentOutcome]) -> AlterPartitionReassignmentsResponse:
    by_topic: dict[str, ReassignableTopicResponse] = {}
    for tp, outcome in outcomes.items():
        topic = by_topic.setdefault(tp.topic, ReassignableTopicResponse(name=tp.topic))
        topic.partitions.append(
            ReassignablePartitionResponse(
                partition_index=tp.partition, error_code=outcome.error, error_message=outcome.message
            )
        )
    return AlterPartitionReassignmentsResponse(responses=list(by_topic.values()))


def _not_controller() -> AlterPartitionReassignmentsResponse:
    return AlterPartitionReassignmentsResponse(
        error_code=ErrorCode.NOT_CONTROLLER,
        error_message="This is not the correct controller for this cluster.",
    )


def handle(
    ctx: RequestContext, request: AlterPartitionReassignmentsRequest
) -> AlterPartitionReassignmentsResponse | Coroutine[object, object, AlterPartitionReassignmentsResponse]:
    require_cluster(ctx, Op.ALTER)
    cluster = ctx.broker.zk_cluster
    if cluster is None or not cluster.is_active_controller:
        return _not_controller()
    requested: dict[TopicPartition, list[int] | None] = {}
    for topic in request.topics:
        for partition in topic.partitions:
            requested[TopicPartition(topic.name, partition.partition_index)] = (
                None if partition.replicas is None else list(partition.replicas)
            )
    return _alter(ctx, requested)


async def _alter(
    ctx: RequestContext, requested: dict[TopicPartition, list[int] | None]
) -> AlterPartitionReassignmentsResponse:
    cluster = ctx.broker.zk_cluster
    assert cluster is not None and cluster.controller is not None
    try:
        outcomes = await cluster.controller.alter_partition_reassignments(requested)
    except NotControllerError:
        return _not_controller()
    return _response(outcomes)


HANDLER = Handler(API_KEY, 0, 0, handle)
