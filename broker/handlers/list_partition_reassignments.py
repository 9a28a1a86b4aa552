"""ListPartitionReassignments (key 46), version 0: the reassignments in flight, with each
partition's replicas, adding and removing replicas. Served in cluster mode only.

As Kafka 3.9 in ZooKeeper mode (KafkaApis.handleListPartitionReassignmentsRequest ->
KafkaController.listPartitionReassignments): on a broker that is not the active controller a
top-level NOT_CONTROLLER; on the controller, null ``topics`` lists every partition being
reassigned, otherwise only those of the named partitions that are (unknown ones are left out).

Authorization (an authorizer configured): DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Coroutine

from broker.cluster.controller_driver import NotControllerError
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.list_partition_reassignments_request import ListPartitionReassignmentsRequest
from protocol.messages.list_partition_reassignments_response import (
    ListPartitionReassignmentsResponse,
    OngoingPartitionReassignment,
    OngoingTopicReassignment,
)

API_KEY = 46


def _not_controller() -> ListPartitionReassignmentsResponse:
    return ListPartitionReassignmentsResponse(
        error_code=ErrorCode.NOT_CONTROLLER,
        error_message="This is not the correct controller for this cluster.",
    )


def handle(
    ctx: RequestContext, request: ListPartitionReassignmentsRequest
) -> ListPartitionReassignmentsResponse | Coroutine[object, object, ListPartitionReassignmentsResponse]:
    require_cluster(ctx, Op.DESCRIBE)
    cluster = ctx.broker.zk_cluster
    if cluster is None or not cluster.is_active_controller:
        return _not_controller()
    partitions = (
        None
        if request.topics is None
        else [TopicPartition(t.name, i) for t in request.topics for i in t.partition_indexes]
    )
    return _list(ctx, partitions)


async def _list(
    ctx: RequestContext, partitions: list[TopicPartition] | None
) -> ListPartitionReassignmentsResponse:
    cluster = ctx.broker.zk_cluster
    assert cluster is not None and cluster.controller is not None
    try:
        ongoing = await cluster.controller.list_partition_reassignments(partitions)
    except NotControllerError:
        return _not_controller()
    by_topic: dict[str, OngoingTopicReassignment] = {}
    for tp, assignment in ongoing.items():
        topic = by_topic.setdefault(tp.topic, OngoingTopicReassignment(name=tp.topic))
        topic.partitions.append(
            OngoingPartitionReassignment(
                partition_index=tp.partition,
                replicas=list(assignment.replicas),
                adding_replicas=list(assignment.adding_replicas),
                removing_replicas=list(assignment.removing_replicas),
            )
        )
    return ListPartitionReassignmentsResponse(topics=list(by_topic.values()))


HANDLER = Handler(API_KEY, 0, 0, handle)
