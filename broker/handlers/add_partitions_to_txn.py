"""AddPartitionsToTxn (key 24), versions 0-5.

v0-3 (clients) carry one transaction; v4+ (brokers verifying a produce, KIP-890) a batch of
them, each answered on its own, and ``verify_only`` asks whether each partition is already in the
ongoing transaction (NONE, or TRANSACTION_ABORTABLE) without adding it. A partition of a topic
this broker does not know fails its transaction: UNKNOWN_TOPIC_OR_PARTITION for it and
OPERATION_NOT_ATTEMPTED for the others, as Kafka. Otherwise the coordinator's one error applies to
every partition of the transaction; PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH for v0-1.

Authorization (an authorizer configured): v0-v3: WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED, the others
OPERATION_NOT_ATTEMPTED); v4+ comes from brokers and needs CLUSTER_ACTION.
"""

from __future__ import annotations

import asyncio

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import TRANSACTIONAL_ID, Op, authorize, checker, require_cluster
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)

API_KEY = 24


def _partitions(topics: list[AddPartitionsToTxnTopic]) -> list[TopicPartition]:
    return [TopicPartition(topic.name, index) for topic in topics for index in topic.partitions]


def _result(transactional_id: str, errors: dict[TopicPartition, ErrorCode]) -> AddPartitionsToTxnResult:
    by_topic: dict[str, list[AddPartitionsToTxnPartitionResult]] = {}
    for tp, error in errors.items():
        by_topic.setdefault(tp.topic, []).append(AddPartitionsToTxnPartitionResult(tp.partition, error))
    return AddPartitionsToTxnResult(
        transactional_id,
        [AddPartitionsToTxnTopicResult(topic, results) for topic, results in by_topic.items()],
    )


async def _one(ctx: RequestContext, txn: AddPartitionsToTxnTransaction) -> AddPartitionsToTxnResult:
    partitions = _partitions(txn.topics)
    if ctx.version < 4 and not authorize(ctx, Op.WRITE, TRANSACTIONAL_ID, txn.transactional_id):
        return _result(
            txn.transactional_id, dict.fromkeys(partitions, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        )
    may_write = checker(ctx, Op.WRITE)
    refused = {tp for tp in partitions if not may_write(tp.topic)}
    if refused:
        return _result(
            txn.transactional_id,
            {
                tp: ErrorCode.TOPIC_AUTHORIZATION_FAILED
                if tp in refused
                else ErrorCode.OPERATION_NOT_ATTEMPTED
                for tp in partitions
            },
        )
    known = [tp for tp in partitions if ctx.broker.partition_exists(tp)]
    if len(known) != len(partitions):
        known_set = set(known)
        return _result(
            txn.transactional_id,
            {
                tp: ErrorCode.OPERATION_NOT_ATTEMPTED
                if tp in known_set
                else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                for tp in partitions
            },
        )
    coordinator = ctx.broker.txn_coordinator
    if ctx.version >= 4 and txn.verify_only:
        errors = coordinator.verify_partitions(
            txn.transactional_id, txn.producer_id, txn.producer_epoch, partitions
        )
        return _result(txn.transactional_id, errors)
    error = await coordinator.add_partitions(
        txn.transactional_id, txn.producer_id, txn.producer_epoch, partitions
    )
    if error == ErrorCode.PRODUCER_FENCED and ctx.version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return _result(txn.transactional_id, dict.fromkeys(partitions, error))


async def handle(ctx: RequestContext, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    if ctx.version >= 4:
        require_cluster(ctx, Op.CLUSTER_ACTION)  # v4+ comes from brokers (KIP-890 verification)
    if ctx.version < 4:
        txn = AddPartitionsToTxnTransaction(
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            False,
            request.v3_and_below_topics,
        )
        result = await _one(ctx, txn)
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=result.topic_results)
    results = await asyncio.gather(*(_one(ctx, txn) for txn in request.transactions))
    return AddPartitionsToTxnResponse(results_by_transaction=list(results))


HANDLER = Handler(API_KEY, 0, 5, handle)
