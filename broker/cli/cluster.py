"""``brook cluster``: kafka-cluster.sh ``cluster-id``, a ``describe`` of the brokers and the controller
(DescribeCluster, Metadata before it), and ``log-dirs`` as kafka-log-dirs.sh --describe (JSON)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from broker.cli.client import CliError, KafkaClient, UnsupportedApi, check_error
from broker.cli.common import add_connection_options, client_from, progress
from protocol.error_codes import ErrorCode, error_name
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest

#: Exception classes Kafka's admin names a log dir's error by (kafka-log-dirs.sh prints the class).
ERROR_CLASSES = {
    ErrorCode.KAFKA_STORAGE_ERROR: "org.apache.kafka.common.errors.KafkaStorageException",
    ErrorCode.UNKNOWN_SERVER_ERROR: "org.apache.kafka.common.errors.UnknownServerException",
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("cluster", help="The cluster id, brokers, controller and log dirs.")
    add_connection_options(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("cluster-id", help="Get information about the ID of a cluster.").set_defaults(
        run=run_id
    )
    actions.add_parser("describe", help="The cluster id, controller and brokers.").set_defaults(
        run=run_describe
    )
    log_dirs = actions.add_parser("log-dirs", help="Log dirs of brokers, as kafka-log-dirs.sh --describe.")
    log_dirs.add_argument("--describe", action="store_true")
    log_dirs.add_argument("--broker-list")
    log_dirs.add_argument("--topic-list")
    log_dirs.set_defaults(run=run_log_dirs)


def describe_cluster(client: KafkaClient) -> tuple[str | None, int, list[tuple[int, str, int, str | None]]]:
    """(cluster id, controller id, brokers as (id, host, port, rack))."""
    try:
        response = client.any.call(DescribeClusterRequest())
        check_error(response.error_code, response.error_message)
        brokers = [(b.broker_id, b.host, b.port, b.rack) for b in response.brokers]
        return response.cluster_id, response.controller_id, sorted(brokers)
    except UnsupportedApi:
        metadata = client.metadata([])
        brokers = [(b.node_id, b.host, b.port, b.rack) for b in metadata.brokers]
        return metadata.cluster_id, metadata.controller_id, sorted(brokers)


def run_id(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        cluster_id, _, _ = describe_cluster(client)
    if cluster_id:
        print(f"Cluster ID: {cluster_id}")
    else:
        print("No cluster ID found. The Kafka version is probably too old.")
    return 0


def run_describe(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        cluster_id, controller, brokers = describe_cluster(client)
    print(f"Cluster ID: {cluster_id or 'None'}")
    print(f"Controller: {controller if controller >= 0 else 'none'}")
    print("Brokers:")
    for node_id, host, port, rack in brokers:
        # Kafka's Node.toString
        print(f"  {host}:{port} (id: {node_id} rack: {rack if rack is not None else 'null'})")
    return 0


def run_log_dirs(args: argparse.Namespace) -> int:
    topics = [t for t in (args.topic_list or "").split(",") if t]
    with client_from(args) as client:
        live = sorted(client.brokers())
        wanted = live
        if args.broker_list:
            try:
                wanted = sorted({int(b) for b in args.broker_list.split(",") if b.strip()})
            except ValueError:
                raise CliError(f"Invalid --broker-list {args.broker_list}") from None
            missing = [b for b in wanted if b not in live]
            if missing:
                raise CliError(
                    "ERROR: The given brokers do not exist from --broker-list: "
                    f"{','.join(map(str, missing))}. Current existent brokers: {','.join(map(str, live))}"
                )
        print("Querying brokers for log directories information")
        brokers = []
        for node_id in wanted:
            progress(f"Describing log dirs of broker {node_id}")
            response = client.node(node_id).call(DescribeLogDirsRequest(topics=None))
            check_error(response.error_code, None, f"DescribeLogDirs on broker {node_id}")
            brokers.append({"broker": node_id, "logDirs": [_log_dir(r, topics) for r in response.results]})
    print(f"Received log directory information from brokers {','.join(map(str, wanted))}")
    print(json.dumps({"version": 1, "brokers": brokers}, separators=(",", ":")))
    return 0


def _log_dir(result: Any, topics: list[str]) -> dict[str, Any]:
    partitions = [
        {
            "partition": f"{t.name}-{p.partition_index}",
            "size": p.partition_size,
            "offsetLag": p.offset_lag,
            "isFuture": p.is_future_key,
        }
        for t in result.topics
        if not topics or t.name in topics
        for p in t.partitions
    ]
    error = None
    if result.error_code:
        error = ERROR_CLASSES.get(result.error_code, error_name(result.error_code))
    return {"logDir": result.log_dir, "error": error, "partitions": partitions}
