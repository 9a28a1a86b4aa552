"""``brook topics``: kafka-topics.sh (TopicCommand) — create, list, describe, alter, delete."""

from __future__ import annotations

import argparse
import base64
import re
import uuid
from typing import Any

from broker.cli.client import CliError, KafkaClient, KafkaError, NodeConnection
from broker.cli.common import add_connection_options, client_from, parse_key_values
from protocol.error_codes import ErrorCode
from protocol.message import Message
from protocol.messages.create_partitions_request import CreatePartitionsRequest, CreatePartitionsTopic
from protocol.messages.create_topics_request import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource

TOPIC_RESOURCE = 2
DEFAULT_CONFIG_SOURCE = 5
CONTROLLER_ATTEMPTS = 5
ACTIONS = ("create", "list", "describe", "alter", "delete")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("topics", help="Create, delete, describe, or change a topic.")
    add_connection_options(parser)
    for action in ACTIONS:
        parser.add_argument(f"--{action}", action="store_true")
    parser.add_argument("--topic", help="The topic (a regular expression, except with --create).")
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--replication-factor", type=int)
    parser.add_argument("--config", action="append", default=[], help="A topic config override name=value.")
    parser.add_argument(
        "--replica-assignment", help="broker_id_for_part1_replica1:broker_id_for_part1_replica2,..."
    )
    parser.add_argument("--if-exists", action="store_true")
    parser.add_argument("--if-not-exists", action="store_true")
    parser.add_argument("--exclude-internal", action="store_true")
    parser.add_argument("--under-replicated-partitions", action="store_true")
    parser.add_argument("--unavailable-partitions", action="store_true")
    parser.add_argument("--topics-with-overrides", action="store_true")
    parser.set_defaults(run=run, error_prefix="Error while executing topic command : ", error_stream="stdout")


def run(args: argparse.Namespace) -> int:
    actions = [a for a in ACTIONS if getattr(args, a)]
    if len(actions) != 1:
        raise CliError(
            "Command must include exactly one action: --list, --describe, --create, --alter or --delete"
        )
    if actions[0] in ("create", "alter", "delete") and not args.topic:
        raise CliError(f'Missing required argument "[topic]" for --{actions[0]}')
    with client_from(args) as client:
        if args.create:
            create(client, args)
        elif args.list:
            print("\n".join(matching_topics(client, args.topic, args.exclude_internal)))
        elif args.describe:
            describe(client, args)
        elif args.alter:
            alter(client, args)
        else:
            delete(client, args)
    return 0


def matching_topics(client: KafkaClient, pattern: str | None, exclude_internal: bool) -> list[str]:
    response = client.metadata(None)
    names = sorted(t.name for t in response.topics if not (exclude_internal and t.is_internal))
    if pattern is None:
        return names
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise CliError(f"Invalid topic regular expression {pattern!r}: {exc}") from exc
    return [n for n in names if regex.fullmatch(n)]


def _ensure_exists(topics: list[str], args: argparse.Namespace) -> None:
    if args.topic and not topics and not args.if_exists:
        raise CliError(f"Topic '{args.topic}' does not exist as expected")


def _on_controller(client: KafkaClient, request: Message, results: Any, subject: str) -> None:
    """Send ``request`` to the controller; follow NOT_CONTROLLER while the controller moves."""
    for _ in range(CONTROLLER_ATTEMPTS):
        response = client.controller().call(request)
        errors = [(r.error_code, r.error_message) for r in results(response)]
        if any(code == ErrorCode.NOT_CONTROLLER for code, _ in errors):
            continue
        for code, message in errors:
            if code:
                raise KafkaError(code, message)
        return
    raise KafkaError(ErrorCode.NOT_CONTROLLER, None, subject)


def create(client: KafkaClient, args: argparse.Namespace) -> None:
    if args.replication_factor is not None and not 1 <= args.replication_factor <= 32767:
        raise CliError("The replication factor must be between 1 and 32767 inclusive")
    if args.partitions is not None and args.partitions < 1:
        raise CliError("The partitions must be greater than 0")
    configs = [CreatableTopicConfig(k, v) for k, v in parse_key_values(args.config).items()]
    if args.replica_assignment:
        if args.partitions is not None or args.replication_factor is not None:
            raise CliError(
                'Option "[replica-assignment]" can\'t be used with option "[partitions]" '
                'or "[replication-factor]"'
            )
        assignment = parse_replica_assignment(args.replica_assignment)
        topic = CreatableTopic(
            name=args.topic,
            num_partitions=-1,
            replication_factor=-1,
            assignments=[CreatableReplicaAssignment(p, brokers) for p, brokers in enumerate(assignment)],
            configs=configs,
        )
    else:
        topic = CreatableTopic(
            name=args.topic,
            num_partitions=-1 if args.partitions is None else args.partitions,
            replication_factor=-1 if args.replication_factor is None else args.replication_factor,
            configs=configs,
        )
    request = CreateTopicsRequest(topics=[topic], timeout_ms=int(client.timeout * 1000))
    try:
        _on_controller(client, request, lambda r: r.topics, args.topic)
    except KafkaError as exc:
        if exc.code == ErrorCode.TOPIC_ALREADY_EXISTS and args.if_not_exists:
            return
        raise
    print(f"Created topic {args.topic}.")


def parse_replica_assignment(text: str) -> list[list[int]]:
    """TopicCommand.parseReplicaAssignment: partitions by commas, their replicas by colons."""
    result: list[list[int]] = []
    for i, entry in enumerate(text.split(",")):
        try:
            brokers = [int(b.strip()) for b in entry.split(":")]
        except ValueError:
            raise CliError(f"Invalid replica assignment {text!r}: broker ids are integers") from None
        duplicates = sorted({b for b in brokers if brokers.count(b) > 1})
        if duplicates:
            raise CliError(
                "Partition replica lists may not contain duplicate entries: " + ",".join(map(str, duplicates))
            )
        if result and len(brokers) != len(result[0]):
            raise CliError(
                f"Partition {i} has different replication factor: [{', '.join(map(str, brokers))}]"
            )
        result.append(brokers)
    return result


def alter(client: KafkaClient, args: argparse.Namespace) -> None:
    topics = matching_topics(client, args.topic, args.exclude_internal)
    _ensure_exists(topics, args)
    if args.config:
        raise CliError(
            'Option "[config]" can\'t be used with option "[alter]" '
            "(To alter topic configurations, the brook configs tool can be used.)"
        )
    if args.partitions is None:
        raise CliError("--partitions is required with --alter")
    if not topics:
        return
    request = CreatePartitionsRequest(
        topics=[CreatePartitionsTopic(name=t, count=args.partitions, assignments=None) for t in topics],
        timeout_ms=int(client.timeout * 1000),
    )
    _on_controller(client, request, lambda r: r.results, args.topic)


def delete(client: KafkaClient, args: argparse.Namespace) -> None:
    topics = matching_topics(client, args.topic, args.exclude_internal)
    _ensure_exists(topics, args)
    if topics:
        request = DeleteTopicsRequest(topic_names=topics, timeout_ms=int(client.timeout * 1000))
        _on_controller(client, request, lambda r: r.responses, args.topic)


def _topic_configs(conn: NodeConnection, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each topic's configs that are not defaults, as TopicCommand prints them."""
    if not names:
        return {}
    request = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(TOPIC_RESOURCE, n, None) for n in names]
    )
    response = conn.call(request)
    result: dict[str, list[tuple[str, str]]] = {}
    for res in response.results:
        if res.error_code:
            result[res.resource_name] = []
            continue
        result[res.resource_name] = [
            (c.name, "" if c.value is None else c.value)
            for c in res.configs
            if c.config_source != DEFAULT_CONFIG_SOURCE and not c.is_default
        ]
    return result


def describe(client: KafkaClient, args: argparse.Namespace) -> None:
    names = matching_topics(client, args.topic, args.exclude_internal)
    _ensure_exists(names, args)
    response = client.metadata(names)
    live = {b.node_id for b in response.brokers}
    configs = _topic_configs(client.any, names)
    by_name = {t.name: t for t in response.topics}
    for name in names:
        topic = by_name.get(name)
        if topic is None or topic.error_code:
            continue
        partitions = sorted(topic.partitions, key=lambda p: p.partition_index)
        for line in describe_lines(name, topic.topic_id, partitions, configs.get(name, []), live, args):
            print(line)


def describe_lines(
    name: str,
    topic_id: uuid.UUID,
    partitions: list[Any],
    configs: list[tuple[str, str]],
    live: set[int],
    args: argparse.Namespace,
) -> list[str]:
    """kafka-topics.sh --describe's lines for one topic: a summary, then one line per partition."""
    filtered = args.under_replicated_partitions or args.unavailable_partitions
    if args.topics_with_overrides and not configs:
        return []
    lines: list[str] = []
    if not filtered:
        rf = len(partitions[0].replica_nodes) if partitions else 0
        head = f"Topic: {name}"
        if topic_id.int:
            head += f"\tTopicId: {_kafka_uuid(topic_id)}"
        head += f"\tPartitionCount: {len(partitions)}\tReplicationFactor: {rf}"
        head += "\tConfigs: " + ",".join(f"{k}={v}" for k, v in configs)
        lines.append(head)
        if args.topics_with_overrides:
            return lines
    for p in partitions:
        has_leader = p.leader_id >= 0
        if args.under_replicated_partitions and len(p.isr_nodes) >= len(p.replica_nodes):
            continue
        if args.unavailable_partitions and has_leader and p.leader_id in live:
            continue
        lines.append(
            f"\tTopic: {name}\tPartition: {p.partition_index}"
            f"\tLeader: {p.leader_id if has_leader else 'none'}"
            f"\tReplicas: {','.join(map(str, p.replica_nodes))}"
            f"\tIsr: {','.join(map(str, p.isr_nodes))}"
            # Metadata carries no ELR; Kafka's admin then prints N/A (TopicPartitionInfo without elr).
            "\tElr: N/A\tLastKnownElr: N/A"
        )
    return lines


def _kafka_uuid(value: uuid.UUID) -> str:
    """Kafka prints a Uuid as URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")
