"""``brook transactions``: kafka-transactions.sh — ``list`` (ListTransactions on every broker),
``describe --transactional-id`` (DescribeTransactions on its coordinator) and ``describe-producers
--topic --partition`` (DescribeProducers on the leader or ``--broker-id``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from broker.cli.client import TRANSACTION_KEY_TYPE, CliError, KafkaClient, KafkaError, check_error
from broker.cli.common import add_connection_options, client_from, pretty_table
from protocol.messages.describe_producers_request import DescribeProducersRequest, TopicRequest
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.list_transactions_request import ListTransactionsRequest

DEBUG_HINT = " Enable debug logging for additional detail."


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("transactions", help="List and describe transactions and producers.")
    add_connection_options(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list transactions")
    listing.add_argument("--duration-filter", type=int, default=-1)
    listing.set_defaults(run=run_list)
    describe = actions.add_parser("describe", help="describe the state of an active transactional-id")
    describe.add_argument("--transactional-id", required=True)
    describe.set_defaults(run=run_describe)
    producers = actions.add_parser("describe-producers", help="describe the states of active producers")
    producers.add_argument("--broker-id", type=int)
    producers.add_argument("--topic", required=True)
    producers.add_argument("--partition", type=int, required=True)
    producers.set_defaults(run=run_describe_producers)
    parser.set_defaults(error_prefix="")


def _failure(message: str, exc: CliError) -> CliError:
    return CliError(f"{message}: {str(exc).rstrip('.')}.{DEBUG_HINT}")


def run_list(args: argparse.Namespace) -> int:
    rows: list[list[str]] = []
    with client_from(args) as client:
        try:
            for node_id in sorted(client.brokers()):
                response = client.node(node_id).call(
                    ListTransactionsRequest(duration_filter=args.duration_filter)
                )
                check_error(response.error_code)
                rows += [
                    [t.transactional_id, str(node_id), str(t.producer_id), t.transaction_state]
                    for t in response.transaction_states
                ]
        except CliError as exc:
            raise _failure("Failed to list transactions", exc) from None
    print(pretty_table(["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], rows), end="")
    return 0


def run_describe(args: argparse.Namespace) -> int:
    tid = args.transactional_id
    with client_from(args) as client:
        try:
            node_id, conn = client.coordinator(tid, TRANSACTION_KEY_TYPE)
            state = conn.call(DescribeTransactionsRequest(transactional_ids=[tid])).transaction_states[0]
            check_error(state.error_code)
        except CliError as exc:
            raise _failure(f"Failed to describe transaction state of transactional-id `{tid}`", exc) from None
    if state.transaction_start_time_ms >= 0:
        start = str(state.transaction_start_time_ms)
        duration = str(int(time.time() * 1000) - state.transaction_start_time_ms)
    else:
        start = duration = "None"
    partitions = ",".join(f"{t.topic}-{p}" for t in state.topics for p in t.partitions)
    row = [
        str(node_id),
        tid,
        str(state.producer_id),
        str(state.producer_epoch),
        _state_name(state.transaction_state),
        str(state.transaction_timeout_ms),
        start,
        duration,
        partitions,
    ]
    headers = [
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    print(pretty_table(headers, [row]), end="")
    return 0


def _state_name(wire: str) -> str:
    """TransactionState.toString prints the wire name (Ongoing, PrepareCommit, CompleteAbort, ...)."""
    return wire


def run_describe_producers(args: argparse.Namespace) -> int:
    tp = f"{args.topic}-{args.partition}"
    where = f"broker {args.broker_id}" if args.broker_id is not None else "leader"
    with client_from(args) as client:
        try:
            node_id = (
                args.broker_id if args.broker_id is not None else _leader(client, args.topic, args.partition)
            )
            request = DescribeProducersRequest(topics=[TopicRequest(args.topic, [args.partition])])
            response = client.node(node_id).call(request)
            partition = response.topics[0].partitions[0]
            check_error(partition.error_code, partition.error_message)
        except CliError as exc:
            raise _failure(f"Failed to describe producers for partition {tp} on {where}", exc) from None
    rows = [
        [
            str(p.producer_id),
            str(p.producer_epoch),
            str(p.coordinator_epoch),
            str(p.last_sequence),
            str(p.last_timestamp),
            "None" if p.current_txn_start_offset < 0 else str(p.current_txn_start_offset),
        ]
        for p in partition.active_producers
    ]
    headers = [
        "ProducerId",
        "ProducerEpoch",
        "LatestCoordinatorEpoch",
        "LastSequence",
        "LastTimestamp",
        "CurrentTransactionStartOffset",
    ]
    print(pretty_table(headers, rows), end="")
    return 0


def _leader(client: KafkaClient, topic: str, partition: int) -> int:
    leader = client.leaders([topic]).get((topic, partition))
    if leader is None:
        raise KafkaError(3)
    if leader < 0:
        raise KafkaError(5)
    return leader
