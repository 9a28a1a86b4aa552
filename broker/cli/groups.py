"""``brook consumer-groups``: kafka-consumer-groups.sh (ConsumerGroupCommand) — list, describe
(offsets, members, state), reset offsets (dry run by default) and delete, for classic groups."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime
from functools import partial
from typing import Any

from broker.cli.client import CliError, KafkaClient, KafkaError, check_error
from broker.cli.common import add_connection_options, client_from
from broker.cli.offsets import (
    EARLIEST,
    LATEST,
    TopicPartition,
    commit_offsets,
    committed_offsets,
    decode_assignment,
    list_offsets,
)
from protocol.error_codes import ErrorCode
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.list_groups_request import ListGroupsRequest

MISSING = "-"
INACTIVE_STATES = ("Empty", "Dead")
RESET_SCENARIOS = (
    "to_earliest",
    "to_latest",
    "to_offset",
    "shift_by",
    "to_datetime",
    "by_duration",
    "to_current",
)
_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "consumer-groups", help="List, describe, delete consumer groups; reset offsets."
    )
    add_connection_options(parser)
    for action in ("list", "describe", "delete", "reset-offsets"):
        parser.add_argument(f"--{action}", action="store_true")
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--all-groups", action="store_true")
    parser.add_argument("--topic", action="append", default=[], help="topic or topic:partition,partition")
    parser.add_argument("--all-topics", action="store_true")
    parser.add_argument("--members", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--offsets", action="store_true")
    parser.add_argument("--state", nargs="?", const="", default=None)
    parser.add_argument("--to-earliest", action="store_true")
    parser.add_argument("--to-latest", action="store_true")
    parser.add_argument("--to-current", action="store_true")
    parser.add_argument("--to-offset", type=int)
    parser.add_argument("--shift-by", type=int)
    parser.add_argument("--to-datetime")
    parser.add_argument("--by-duration")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--execute", action="store_true")
    parser.set_defaults(run=run, error_prefix="\nError: ", error_stream="stdout")


def run(args: argparse.Namespace) -> int:
    actions = [a for a in ("list", "describe", "delete", "reset_offsets") if getattr(args, a)]
    if len(actions) != 1:
        raise CliError(
            "Command must include exactly one action: --list, --describe, --delete, --reset-offsets"
        )
    with client_from(args) as client:
        if args.list:
            return list_groups(client, args)
        if not args.all_groups and not args.group:
            raise CliError("Option [group] or [all-groups] is required with this action")
        groups = list_group_ids(client) if args.all_groups else args.group
        if args.describe:
            return describe(client, groups, args)
        if args.delete:
            return delete(client, groups)
        return reset_offsets(client, groups, args)


# -- list ---------------------------------------------------------------------------------------


def _listed_groups(client: KafkaClient) -> list[Any]:
    """Every consumer group of every broker (ListGroups goes to each broker, as Kafka's admin)."""
    listed = []
    for node_id in sorted(client.brokers()):
        response = client.node(node_id).call(ListGroupsRequest())
        check_error(response.error_code, None, f"ListGroups on broker {node_id}")
        listed += [g for g in response.groups if g.protocol_type in ("consumer", "")]
    return sorted(listed, key=lambda g: g.group_id)


def list_group_ids(client: KafkaClient) -> list[str]:
    return [g.group_id for g in _listed_groups(client)]


def list_groups(client: KafkaClient, args: argparse.Namespace) -> int:
    listed = _listed_groups(client)
    if args.state is None:
        for g in listed:
            print(g.group_id)
        return 0
    wanted = {s.strip().lower() for s in args.state.split(",") if s.strip()}
    if wanted:
        listed = [g for g in listed if g.group_state.lower() in wanted]
    width = max([15, *(len(g.group_id) for g in listed)]) + 10
    print(f"{'GROUP':<{width}} {'STATE':<20}")
    for g in listed:
        print(f"{g.group_id:<{width}} {g.group_state or 'Unknown':<20}")
    return 0


# -- describe -----------------------------------------------------------------------------------


def _describe_group(client: KafkaClient, group: str) -> tuple[int, Any, Any]:
    def describe() -> tuple[int, Any, Any]:
        node_id, conn = client.coordinator(group)
        described = conn.call(DescribeGroupsRequest(groups=[group])).groups[0]
        check_error(described.error_code, None, f"Group {group}")
        return node_id, conn, described

    return client.retrying(describe)


def _member_state(group: str, state: str, rows: int) -> bool:
    """ConsumerGroupCommand.shouldPrintMemberState: the notes it prints and whether rows follow."""
    if state == "Dead":
        print(f"\nError: Consumer group '{group}' does not exist.")
        return False
    if state == "Empty":
        print(f"\nConsumer group '{group}' has no active members.", file=sys.stderr)
    elif state in ("PreparingRebalance", "CompletingRebalance"):
        print(f"\nWarning: Consumer group '{group}' is rebalancing.", file=sys.stderr)
    return rows > 0


def describe(client: KafkaClient, groups: list[str], args: argparse.Namespace) -> int:
    """Prints each group as ConsumerGroupCommand does; exit 1 if one does not exist (Kafka exits 0
    after its error line, which a script cannot tell from success)."""
    missing = 0
    for group in groups:
        node_id, conn, described = _describe_group(client, group)
        if described.group_state == "Dead":
            missing += 1
        if args.members:
            _print_members(group, described, args.verbose)
        elif args.state is not None:
            if _member_state(group, described.group_state, 1):
                host, port = client.brokers().get(node_id, conn.address)
                coordinator = f"{host}:{port}  ({node_id})"
                width = max(25, len(coordinator))
                fmt = f"\n{{:<{width}}} {{:<25}} {{:<20}} {{:<15}} {{}}"
                print(
                    fmt.format("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"),
                    end="",
                )
                print(
                    fmt.format(
                        group,
                        coordinator,
                        described.protocol_data,
                        described.group_state,
                        len(described.members),
                    )
                )
        else:
            rows = offset_rows(client, conn, group, described)
            if _member_state(group, described.group_state, len(rows)):
                print(format_offsets(rows), end="")
    return 1 if missing else 0


def offset_rows(client: KafkaClient, conn: Any, group: str, described: Any) -> list[list[str]]:
    """GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID rows."""
    committed = client.retrying(partial(committed_offsets, conn, group))
    owners: dict[TopicPartition, Any] = {}
    idle_members = []
    for member in described.members:
        assigned = decode_assignment(bytes(member.member_assignment))
        for tp in assigned:
            owners[tp] = member
        if not assigned:
            idle_members.append(member)
    partitions = sorted(set(committed) | set(owners))
    ends = list_offsets(client, partitions, LATEST) if partitions else {}
    rows: list[list[str]] = []
    for tp in partitions:
        current = committed.get(tp)
        end = ends.get(tp)
        lag = MISSING if current is None or end is None or end < 0 else str(max(0, end - current))
        member = owners.get(tp)
        rows.append(
            [
                group,
                tp[0],
                str(tp[1]),
                MISSING if current is None else str(current),
                MISSING if end is None or end < 0 else str(end),
                lag,
                member.member_id if member else MISSING,
                member.client_host if member else MISSING,
                member.client_id if member else MISSING,
            ]
        )
    for member in idle_members:
        rows.append(
            [
                group,
                MISSING,
                MISSING,
                MISSING,
                MISSING,
                MISSING,
                member.member_id,
                member.client_host,
                member.client_id,
            ]
        )
    return rows


def format_offsets(rows: list[list[str]]) -> str:
    """ConsumerGroupCommand.printOffsets: a leading newline before every line, widths from the rows."""
    group_w = max([15, *(len(r[0]) for r in rows)])
    topic_w = max([15, *(len(r[1]) for r in rows)])
    consumer_w = max([15, *(len(r[6]) for r in rows)])
    host_w = max([15, *(len(r[7]) for r in rows)])
    fmt = (
        f"\n{{:<{group_w}}} {{:<{topic_w}}} {{:<10}} {{:<15}} {{:<15}} {{:<15}} "
        f"{{:<{consumer_w}}} {{:<{host_w}}} {{}}"
    )
    header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    return "".join(fmt.format(*row) for row in [header, *rows]) + "\n"


def _print_members(group: str, described: Any, verbose: bool) -> None:
    members = [(m, decode_assignment(bytes(m.member_assignment))) for m in described.members]
    if not _member_state(group, described.group_state, len(members)):
        return
    with_instance = any(m.group_instance_id for m, _ in members)
    widths = {
        "group": max([15, len(group)]),
        "consumer": max([15, *(len(m.member_id) for m, _ in members)]),
        "instance": max([17, *(len(m.group_instance_id or "") for m, _ in members)]),
        "host": max([15, *(len(m.client_host) for m, _ in members)]),
        "client": max([15, *(len(m.client_id) for m, _ in members)]),
    }
    keys = ["group", "consumer", *(["instance"] if with_instance else []), "host", "client"]
    fmt = " ".join(f"{{:<{widths[k]}}}" for k in keys) + " {:<15} "
    header = [
        "GROUP",
        "CONSUMER-ID",
        *(["GROUP-INSTANCE-ID"] if with_instance else []),
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    ]
    print("\n" + fmt.format(*header) + ("ASSIGNMENT" if verbose else ""))
    for member, assigned in members:
        cells = [
            group,
            member.member_id,
            *([member.group_instance_id or ""] if with_instance else []),
            member.client_host,
            member.client_id,
            str(len(assigned)),
        ]
        line = fmt.format(*cells)
        if verbose:
            line += _assignment_text(assigned)
        print(line)


def _assignment_text(assigned: list[TopicPartition]) -> str:
    if not assigned:
        return MISSING
    by_topic: dict[str, list[int]] = {}
    for topic, partition in assigned:
        by_topic.setdefault(topic, []).append(partition)
    parts = [f"{topic}(" + ",".join(sorted(map(str, ps))) + ")" for topic, ps in by_topic.items()]
    return ", ".join(sorted(parts))


# -- delete -------------------------------------------------------------------------------------


def delete(client: KafkaClient, groups: list[str]) -> int:
    failed: dict[str, str] = {}
    done: list[str] = []
    for group in groups:
        try:
            _, conn = client.coordinator(group)
            result = conn.call(DeleteGroupsRequest(groups_names=[group])).results[0]
            check_error(result.error_code, None)
            done.append(group)
        except KafkaError as exc:
            failed[group] = f"{_exception_name(exc.code)}: {exc.text}"
    if not failed:
        print(f"Deletion of requested consumer groups ('{', '.join(done)}') was successful.")
        return 0
    print("\nError: Deletion of some consumer groups failed:")
    for group, error in failed.items():
        print(f"* Group '{group}' could not be deleted due to: {error}")
    if done:
        print(f"\nThese consumer groups were deleted successfully: '{', '.join(done)}'")
    return 1


def _exception_name(code: int) -> str:
    names: dict[int, str] = {
        ErrorCode.GROUP_ID_NOT_FOUND: "org.apache.kafka.common.errors.GroupIdNotFoundException",
        ErrorCode.NON_EMPTY_GROUP: "org.apache.kafka.common.errors.GroupNotEmptyException",
    }
    return names.get(code, ErrorCode(code).name if code in ErrorCode._value2member_map_ else str(code))


# -- reset offsets ------------------------------------------------------------------------------


def reset_offsets(client: KafkaClient, groups: list[str], args: argparse.Namespace) -> int:
    scenarios = [s for s in RESET_SCENARIOS if getattr(args, s) not in (None, False)]
    if len(scenarios) != 1:
        raise CliError(
            "Option '[reset-offsets]' requires one of the following scenarios: "
            "[to-offset], [to-datetime], [by-duration], [to-earliest], [to-latest], [shift-by], [to-current]"
        )
    if not args.all_topics and not args.topic:
        raise CliError("Option [reset-offsets] takes one of these options: [all-topics], [topic]")
    if args.dry_run and args.execute:
        raise CliError("Option [reset-offsets] only accepts one of [execute] and [dry-run]")
    plans: dict[str, dict[TopicPartition, int]] = {}
    failed = False
    for group in groups:
        _, conn, described = _describe_group(client, group)
        if described.group_state not in INACTIVE_STATES:
            print(
                f"\nError: Assignments can only be reset if the group '{group}' is inactive, "
                f"but the current state is {described.group_state}."
            )
            plans[group] = {}
            failed = True
            continue
        committed = client.retrying(partial(committed_offsets, conn, group))
        partitions = _partitions_to_reset(client, args, committed)
        plan = _new_offsets(client, args, partitions, committed)
        if args.execute:
            commit_offsets(conn, group, plan)
        plans[group] = plan
    print(format_reset_plan(plans), end="")
    return 1 if failed else 0


def _partitions_to_reset(
    client: KafkaClient, args: argparse.Namespace, committed: dict[TopicPartition, int]
) -> list[TopicPartition]:
    if args.all_topics:
        return sorted(committed)
    result: list[TopicPartition] = []
    for spec in args.topic:
        topic, sep, partitions = spec.partition(":")
        if sep:
            try:
                result += [(topic, int(p)) for p in partitions.split(",") if p.strip()]
            except ValueError as exc:
                raise CliError(f"Invalid partition list in --topic {spec}") from exc
        else:
            result += sorted(tp for tp in client.leaders([topic]))
    return sorted(set(result))


def _new_offsets(
    client: KafkaClient,
    args: argparse.Namespace,
    partitions: list[TopicPartition],
    committed: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    if args.to_earliest:
        return list_offsets(client, partitions, EARLIEST)
    if args.to_latest:
        return list_offsets(client, partitions, LATEST)
    if args.to_current:
        ends = list_offsets(client, [tp for tp in partitions if tp not in committed], LATEST)
        return {tp: committed.get(tp, ends.get(tp, 0)) for tp in partitions}
    if args.to_offset is not None:
        return _clamped(client, {tp: args.to_offset for tp in partitions})
    if args.shift_by is not None:
        missing = [tp for tp in partitions if tp not in committed]
        if missing:
            t, p = missing[0]
            raise CliError(
                f"Cannot shift offset for partition {t}-{p} since there is no current committed offset"
            )
        return _clamped(client, {tp: committed[tp] + args.shift_by for tp in partitions})
    timestamp = (
        parse_datetime(args.to_datetime)
        if args.to_datetime
        else int(time.time() * 1000) - parse_duration(args.by_duration)
    )
    found = list_offsets(client, partitions, timestamp)
    # No record at or after the time: the log end, as Kafka's getLogTimestampOffsets.
    missing = [tp for tp, offset in found.items() if offset < 0]
    ends = list_offsets(client, missing, LATEST) if missing else {}
    return {tp: ends.get(tp, offset) if offset < 0 else offset for tp, offset in found.items()}


def _clamped(client: KafkaClient, requested: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Requested offsets moved into [log start, log end], with Kafka's warning for each moved one."""
    starts = list_offsets(client, requested, EARLIEST)
    ends = list_offsets(client, requested, LATEST)
    result = {}
    for tp, offset in requested.items():
        name = f"{tp[0]}-{tp[1]}"
        if offset > ends[tp]:
            print(
                f"WARN New offset ({offset}) is higher than latest offset for topic partition {name}. "
                f"Value will be set to {ends[tp]}",
                file=sys.stderr,
            )
            offset = ends[tp]
        elif offset < starts[tp]:
            print(
                f"WARN New offset ({offset}) is lower than earliest offset for topic partition {name}. "
                f"Value will be set to {starts[tp]}",
                file=sys.stderr,
            )
            offset = starts[tp]
        result[tp] = offset
    return result


def format_reset_plan(plans: dict[str, dict[TopicPartition, int]]) -> str:
    """ConsumerGroupCommand.printOffsetsToReset."""
    fmt = "\n{:<30} {:<30} {:<10} {:<15}"
    out = fmt.format("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET") if plans else ""
    for group, plan in plans.items():
        for (topic, partition), offset in sorted(plan.items()):
            out += fmt.format(group, topic, partition, offset)
    return out + "\n"


def parse_datetime(text: str) -> int:
    """Kafka's Utils.getDateTime: 'YYYY-MM-DDTHH:mm:SS.sss' with an optional zone (Z, +hh:mm);
    without one, the local time zone."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"Error parsing timestamp '{text}': expected format YYYY-MM-DDTHH:mm:SS.sss") from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return int(parsed.timestamp() * 1000)


def parse_duration(text: str) -> int:
    """An ISO-8601 duration 'PnDTnHnMnS' (java.time.Duration.parse) in milliseconds."""
    match = _DURATION.match(text.strip())
    if match is None or text.strip().upper() in ("P", "PT"):
        raise CliError(f"Text cannot be parsed to a Duration: {text}")
    seconds = (
        int(match["days"] or 0) * 86400
        + int(match["hours"] or 0) * 3600
        + int(match["minutes"] or 0) * 60
        + float(match["seconds"] or 0)
    )
    millis = round(seconds * 1000)
    return -millis if match["sign"] == "-" else millis
