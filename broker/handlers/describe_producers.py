"""DescribeProducers (key 61), version 0: the active producers of each partition, for
``kafka-transactions.sh describe-producers`` and the admin clients' describeProducers.

Per partition, as Kafka's ReplicaManager.activeProducerState: every producer id in the replica's
producer state with its epoch, last sequence, last batch timestamp, the coordinator epoch of its
last marker and the first offset of its open transaction (-1 when none). Any hosted replica
answers (admin clients ask the leader). Errors: UNKNOWN_TOPIC_OR_PARTITION (no such partition),
NOT_LEADER_OR_FOLLOWER (not hosted here, or its log dir is offline, as Kafka answers for a
storage error).

Authorization (an authorizer configured): READ on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from broker.handlers.base import Handler, RequestContext
from broker.replica.partition import Partition
from broker.security.authz import Op, checker
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.describe_producers_request import DescribeProducersRequest
from protocol.messages.describe_producers_response import (
    DescribeProducersResponse,
    PartitionResponse,
    ProducerState,
    TopicResponse,
)

API_KEY = 61


def handle(ctx: RequestContext, request: DescribeProducersRequest) -> DescribeProducersResponse:
    broker = ctx.broker
    replicas = broker.replica_manager
    cache = broker.metadata_cache if broker.cluster_mode else None
    topics: list[TopicResponse] = []
    may_read = checker(ctx, Op.READ)
    for topic in request.topics:
        answers: list[PartitionResponse] = []
        authorized = may_read(topic.name)
        for index in topic.partition_indexes:
            if not authorized:
                answers.append(
                    PartitionResponse(partition_index=index, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                )
                continue
            tp = TopicPartition(topic.name, index)
            partition = replicas.get(tp)
            if partition is None or replicas.is_offline(tp):
                known = (
                    cache.partition(tp) if cache is not None else broker.metadata.partition(tp)
                ) is not None
                code = ErrorCode.NOT_LEADER_OR_FOLLOWER if known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                answers.append(PartitionResponse(partition_index=index, error_code=code))
                continue
            answers.append(
                PartitionResponse(partition_index=index, error_code=0, active_producers=_producers(partition))
            )
        topics.append(TopicResponse(name=topic.name, partitions=answers))
    return DescribeProducersResponse(throttle_time_ms=0, topics=topics)


def _producers(partition: Partition) -> list[ProducerState]:
    return [
        ProducerState(
            producer_id=pid,
            producer_epoch=entry.epoch,
            last_sequence=entry.last_seq,
            last_timestamp=entry.last_timestamp,
            coordinator_epoch=entry.coordinator_epoch,
            current_txn_start_offset=entry.current_txn_first_offset,
        )
        for pid, entry in list(partition.producers.producers.items())
    ]


HANDLER = Handler(API_KEY, 0, 0, handle)
