"""ElectLeaders (key 43), versions 0-2: elect the preferred (or, v1+, an unclean) leader of
partitions. Served in cluster mode only.

As Kafka 3.9 in ZooKeeper mode (KafkaApis.handleElectLeaders -> KafkaController.electLeaders):
- the top-level error is NONE (v1+);
- null ``topic_partitions`` means every partition in the metadata cache, and then the partitions
  that needed no election are left out of the answer;
- on a broker that is not the active controller every partition answers NOT_CONTROLLER;
- on the controller each partition gets ``Controller.elect_leaders``' outcome
  (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
  UNKNOWN_TOPIC_OR_PARTITION...);
- v0 has no election type: preferred.

The answer comes once this broker's metadata shows each elected leader (Kafka's
DelayedElectLeader: the controller's UpdateMetadata reaches itself too); a partition whose new
leader has not shown by ``timeout_ms`` answers REQUEST_TIMED_OUT.

Authorization (an authorizer configured): ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING

from broker.cluster.controller import ElectionOutcomeFor, ElectionType
from broker.cluster.controller_driver import NotControllerError
from broker.cluster.zk_admin import await_cache
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.elect_leaders_request import ElectLeadersRequest
from protocol.messages.elect_leaders_response import (
    ElectLeadersResponse,
    PartitionResult,
    ReplicaElectionResult,
)

if TYPE_CHECKING:
    from broker.cluster.metadata_cache import MetadataCache

API_KEY = 43


def _requested(ctx: RequestContext, request: ElectLeadersRequest) -> list[TopicPartition]:
    if request.topic_partitions is None:
        cache = ctx.broker.metadata_cache
        return [TopicPartition(t, p) for t in cache.topics() for p in range(cache.partition_count(t) or 0)]
    return [TopicPartition(t.topic, p) for t in request.topic_partitions for p in t.partitions]


def _response(outcomes: Mapping[TopicPartition, ElectionOutcomeFor]) -> ElectLeadersResponse:
    by_topic: dict[str, ReplicaElectionResult] = {}
    for tp, outcome in outcomes.items():
        result = by_topic.setdefault(tp.topic, ReplicaElectionResult(topic=tp.topic))
        result.partition_result.append(
            PartitionResult(
                partition_id=tp.partition,
                error_code=outcome.error,
                error_message=None if outcome.error is ErrorCode.NONE else outcome.message,
            )
        )
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=list(by_topic.values()))


def _not_controller(partitions: list[TopicPartition]) -> ElectLeadersResponse:
    return _response({tp: ElectionOutcomeFor(ErrorCode.NOT_CONTROLLER) for tp in partitions})


def handle(
    ctx: RequestContext, request: ElectLeadersRequest
) -> ElectLeadersResponse | Coroutine[object, object, ElectLeadersResponse]:
    require_cluster(ctx, Op.ALTER)
    partitions = _requested(ctx, request)
    cluster = ctx.broker.zk_cluster
    if cluster is None or not cluster.is_active_controller:
        return _not_controller(partitions)
    election = ElectionType.PREFERRED if ctx.version == 0 else ElectionType(request.election_type)
    return _elect(
        ctx,
        partitions,
        election,
        every_partition=request.topic_partitions is None,
        timeout_ms=request.timeout_ms,
    )


async def _until_shown(
    ctx: RequestContext, outcomes: dict[TopicPartition, ElectionOutcomeFor], timeout_ms: int
) -> None:
    """Wait until the metadata cache names each elected leader (woken by its updates); those
    still waiting at ``timeout_ms`` become REQUEST_TIMED_OUT."""
    waiting = {tp: o.leader for tp, o in outcomes.items() if o.error is ErrorCode.NONE}

    def shown(cache: MetadataCache) -> bool:
        for tp, leader in list(waiting.items()):
            cached = cache.partition(tp)
            if cached is not None and cached.leader == leader:
                del waiting[tp]
        return not waiting

    await await_cache(ctx.broker.metadata_cache, shown, timeout_ms / 1000)
    for tp in waiting:
        outcomes[tp] = ElectionOutcomeFor(ErrorCode.REQUEST_TIMED_OUT)


async def _elect(
    ctx: RequestContext,
    partitions: list[TopicPartition],
    election: ElectionType,
    *,
    every_partition: bool,
    timeout_ms: int,
) -> ElectLeadersResponse:
    cluster = ctx.broker.zk_cluster
    assert cluster is not None and cluster.controller is not None
    try:
        outcomes = await cluster.controller.elect_leaders(partitions, election)
    except NotControllerError:
        return _not_controller(partitions)
    answered = {tp: outcomes[tp] for tp in partitions if tp in outcomes}
    await _until_shown(ctx, answered, timeout_ms)
    if every_partition:
        # Kafka: an election over all partitions lists only those elected or failed.
        answered = {tp: o for tp, o in answered.items() if o.error is not ErrorCode.ELECTION_NOT_NEEDED}
    return _response(answered)


HANDLER = Handler(API_KEY, 0, 2, handle)
