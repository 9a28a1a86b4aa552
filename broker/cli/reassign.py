"""``brook reassign-partitions``: kafka-reassign-partitions.sh (ReassignPartitionsCommand).

- ``--generate --topics-to-move-json-file F --broker-list 1,2,3``: the current assignment of the
  topics and a proposed one over the brokers (Kafka's replica placement, rack-aware unless
  ``--disable-rack-aware``);
- ``--execute --reassignment-json-file F [--throttle B/s] [--replica-alter-log-dirs-throttle
  B/s] [--additional] [--timeout ms]``: prints the current assignment (to roll back with), sets
  the throttles as Kafka's tool does (the leader and follower rates on every broker a partition
  moves from or to; the topic's ``leader.replication.throttled.replicas`` = the replicas moved
  from, ``follower.replication.throttled.replicas`` = those moved to), starts the reassignments
  (AlterPartitionReassignments, to the controller), then the log dir moves the file names
  (AlterReplicaLogDirs, retried until the replica exists on its new broker or ``--timeout``);
- ``--verify --reassignment-json-file F [--preserve-throttles]``: the state of each partition
  and log dir move; once nothing is in progress, the throttles are removed;
- ``--cancel --reassignment-json-file F [--preserve-throttles]``: cancels the reassignments and
  log dir moves still running, then removes the throttles;
- ``--list``: the reassignments in progress (ListPartitionReassignments).

The messages are Kafka's, so scripts written against the Java tool read the same text.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from broker.cli.client import CliError, KafkaClient, KafkaError, UnsupportedApi, check_error
from broker.cli.common import add_connection_options, client_from
from broker.cli.configs import DELETE, SET, incremental_alter
from broker.replica.replication_quota import (
    ALTER_LOG_DIRS_RATE,
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
)
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_reassignments_request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from protocol.messages.alter_replica_log_dirs_request import (
    AlterReplicaLogDir,
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirTopic,
)
from protocol.messages.describe_log_dirs_request import DescribableLogDirTopic, DescribeLogDirsRequest
from protocol.messages.incremental_alter_configs_request import AlterableConfig
from protocol.messages.list_partition_reassignments_request import ListPartitionReassignmentsRequest

Partition = tuple[str, int]
#: (topic, partition, broker) -> log dir, for the replicas the file places in a given dir.
Replica = tuple[str, int, int]

ANY_LOG_DIR = "any"
BROKER_LEVEL_THROTTLES = (LEADER_RATE, FOLLOWER_RATE, ALTER_LOG_DIRS_RATE)
TOPIC_LEVEL_THROTTLES = (LEADER_REPLICAS, FOLLOWER_REPLICAS)
ACTIONS = ("generate", "execute", "verify", "cancel", "list")
CANNOT_EXECUTE_BECAUSE_OF_EXISTING = (
    "Cannot execute because there is an existing partition assignment.  Use --additional to "
    "override this and create a new partition assignment in addition to the existing one. The "
    "--additional flag can also be used to change the throttle by resubmitting the current "
    "reassignment."
)
RUN_VERIFY_PERIODICALLY = (
    "Warning: You must run --verify periodically, until the reassignment completes, to ensure the "
    "throttle is removed."
)
#: Options each action takes besides the connection options (ReassignPartitionsCommand's).
PERMITTED = {
    "generate": {"topics_to_move_json_file", "broker_list", "disable_rack_aware"},
    "execute": {
        "reassignment_json_file",
        "additional",
        "throttle",
        "replica_alter_log_dirs_throttle",
        "timeout",
    },
    "verify": {"reassignment_json_file", "preserve_throttles"},
    "cancel": {"reassignment_json_file", "preserve_throttles", "timeout"},
    "list": set(),
}
REQUIRED = {
    "generate": ("topics_to_move_json_file", "broker_list"),
    "execute": ("reassignment_json_file",),
    "verify": ("reassignment_json_file",),
    "cancel": ("reassignment_json_file",),
    "list": (),
}
DEFAULTS: dict[str, Any] = {"throttle": -1, "replica_alter_log_dirs_throttle": -1, "timeout": 10_000}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reassign-partitions", help="Move partitions between brokers and log dirs (with throttles)."
    )
    add_connection_options(parser)
    for action in ACTIONS:
        parser.add_argument(f"--{action}", action="store_true")
    parser.add_argument("--reassignment-json-file")
    parser.add_argument("--topics-to-move-json-file")
    parser.add_argument("--broker-list")
    parser.add_argument("--disable-rack-aware", action="store_true")
    parser.add_argument("--additional", action="store_true")
    parser.add_argument("--preserve-throttles", action="store_true")
    parser.add_argument("--throttle", type=int, help="Inter-broker replication throttle, in B/s.")
    parser.add_argument("--replica-alter-log-dirs-throttle", type=int, help="Log dir move throttle, in B/s.")
    parser.add_argument("--timeout", type=int, help="How long (ms) to try starting log dir moves.")
    parser.set_defaults(run=run, error_prefix="", error_stream="stdout")


def run(args: argparse.Namespace) -> int:
    action = _validate(args)
    try:
        with client_from(args) as client:
            _ACTION_RUNNERS[action](client, args)
    except (KafkaError, UnsupportedApi) as exc:
        raise CliError(f"Error: {exc}") from exc
    return 0


def _validate(args: argparse.Namespace) -> str:
    chosen = [a for a in ACTIONS if getattr(args, a)]
    if len(chosen) != 1:
        raise CliError("Command must include exactly one action: " + ", ".join(f"--{a}" for a in ACTIONS))
    action = chosen[0]
    for name in REQUIRED[action]:
        if getattr(args, name) in (None, False):
            raise CliError(f'Missing required argument "[{name.replace("_", "-")}]"')
    for name in {n for names in PERMITTED.values() for n in names}:
        given = getattr(args, name)
        if given not in (None, False) and name not in PERMITTED[action]:
            raise CliError(f'Option "[{name.replace("_", "-")}]" can\'t be used with action "[{action}]"')
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return action


# -- the JSON files --------------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Error: could not read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"Error: The input string is not a valid JSON: {exc}") from exc


def parse_reassignment(data: Any) -> tuple[list[tuple[Partition, list[int]]], dict[Replica, str]]:
    """The partitions' target replicas (in file order, duplicates kept for the checks) and the
    replicas given a log dir other than ``any``."""
    if not isinstance(data, dict):
        raise CliError("Error: The input string is not a valid JSON object")
    version = data.get("version", 1)
    if version != 1:
        raise CliError(f"Error: Not supported version field value {version}")
    targets: list[tuple[Partition, list[int]]] = []
    dirs: dict[Replica, str] = {}
    for entry in data.get("partitions") or []:
        try:
            topic, partition, replicas = str(entry["topic"]), int(entry["partition"]), entry["replicas"]
            replicas = [int(r) for r in replicas]
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"Error: a partition entry needs topic, partition and replicas: {entry}") from exc
        log_dirs = entry.get("log_dirs") or [ANY_LOG_DIR] * len(replicas)
        if len(log_dirs) != len(replicas):
            raise CliError(
                f"Error: Size of replicas list {_java_list(replicas)} is different from size of log dirs "
                f"list {_java_list(log_dirs)} for partition {topic}-{partition}"
            )
        targets.append(((topic, partition), replicas))
        for broker, log_dir in zip(replicas, log_dirs, strict=True):
            if log_dir != ANY_LOG_DIR:
                dirs[(topic, partition, broker)] = str(log_dir)
    return targets, dirs


def format_reassignment(
    assignment: dict[Partition, list[int]], dirs: dict[Replica, str] | None = None
) -> str:
    """Kafka's formatAsReassignmentJson: compact JSON, partitions sorted."""
    dirs = dirs or {}
    partitions = [
        {
            "topic": topic,
            "partition": partition,
            "replicas": replicas,
            "log_dirs": [dirs.get((topic, partition, r), ANY_LOG_DIR) for r in replicas],
        }
        for (topic, partition), replicas in sorted(assignment.items())
    ]
    return json.dumps({"version": 1, "partitions": partitions}, separators=(",", ":"))


def _java_list(items: list[Any]) -> str:
    return "[" + ", ".join(str(i) for i in items) + "]"


def _by_broker(replica: Replica) -> tuple[int, str, int]:
    """Kafka's order of replicas: by broker, then topic and partition."""
    topic, partition, broker = replica
    return broker, topic, partition


def _tp(partition: Partition) -> str:
    return f"{partition[0]}-{partition[1]}"


# -- cluster state ---------------------------------------------------------------------------------


def _ongoing(client: KafkaClient) -> dict[Partition, tuple[list[int], list[int], list[int]]]:
    """Reassignments in progress: partition -> (replicas, adding, removing)."""
    response = client.controller().call(
        ListPartitionReassignmentsRequest(timeout_ms=int(client.timeout * 1000))
    )
    check_error(response.error_code, response.error_message)
    return {
        (t.name, p.partition_index): (list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
        for t in response.topics
        for p in t.partitions
    }


def _assignment(client: KafkaClient, topics: set[str]) -> dict[Partition, list[int]]:
    response = client.metadata(sorted(topics))
    current: dict[Partition, list[int]] = {}
    for topic in response.topics:
        if topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            continue
        check_error(topic.error_code, None, f"Topic {topic.name}")
        for p in topic.partitions:
            current[(topic.name, p.partition_index)] = list(p.replica_nodes)
    return current


def _set_configs(client: KafkaClient, entity_type: str, name: str, values: Mapping[str, str | None]) -> None:
    """Set (or, for None, delete) dynamic configs of one topic or broker."""
    ops = [AlterableConfig(key, DELETE if value is None else SET, value) for key, value in values.items()]
    incremental_alter(client, entity_type, name, ops, subject=name)


# -- --list ----------------------------------------------------------------------------------------


def _list(client: KafkaClient, args: argparse.Namespace) -> None:
    ongoing = _ongoing(client)
    if not ongoing:
        print("No partition reassignments found.")
        return
    lines = ["Current partition reassignments:"]
    for partition, (replicas, adding, removing) in sorted(ongoing.items()):
        line = f"{_tp(partition)}: replicas: {_csv(replicas)}."
        if adding:
            line += f" adding: {_csv(adding)}."
        if removing:
            line += f" removing: {_csv(removing)}."
        lines.append(line)
    print("\n".join(lines))


def _csv(items: list[int]) -> str:
    return ",".join(str(i) for i in items)


# -- --generate ------------------------------------------------------------------------------------


def _generate(client: KafkaClient, args: argparse.Namespace) -> None:
    from broker.cluster.controller.assignment import (
        AssignmentError,
        BrokerPlacement,
        assign_replicas_to_brokers,
    )
    from broker.types import BrokerId

    try:
        brokers = [int(b) for b in args.broker_list.split(",")]
    except ValueError as exc:
        raise CliError(f"Error: not a broker list: {args.broker_list}") from exc
    if len(set(brokers)) != len(brokers):
        raise CliError(f"Error: Broker list contains duplicate entries: {_duplicates(brokers)}")
    data = _read_json(args.topics_to_move_json_file)
    version = data.get("version", 1) if isinstance(data, dict) else None
    if version != 1:
        raise CliError(f"Error: Not supported version field value {version}")
    topics = [str(t["topic"]) for t in data.get("topics") or []]
    if len(set(topics)) != len(topics):
        raise CliError(f"Error: List of topics to reassign contains duplicate entries: {_duplicates(topics)}")
    current = _assignment(client, set(topics))
    metadata = client.metadata([])
    racks = {b.node_id: b.rack for b in metadata.brokers}
    unknown = [b for b in brokers if b not in racks]
    if unknown:
        raise CliError(f"Error: Unknown broker id {unknown[0]}")
    placements = [
        BrokerPlacement(BrokerId(b), racks[b] if not args.disable_rack_aware else None) for b in brokers
    ]
    proposed: dict[Partition, list[int]] = {}
    for topic in sorted(set(topics)):
        partitions = sorted(p for t, p in current if t == topic)
        if not partitions:
            continue
        factor = len(current[(topic, partitions[0])])
        try:
            placed = assign_replicas_to_brokers(placements, len(partitions), factor)
        except AssignmentError as exc:
            raise CliError(f"Error: {exc}") from exc
        proposed.update({(topic, p): [int(r) for r in replicas] for p, replicas in placed.items()})
    print(f"Current partition replica assignment\n{format_reassignment(current)}\n")
    print(f"Proposed partition reassignment configuration\n{format_reassignment(proposed)}")


def _duplicates(items: list[Any]) -> str:
    return _java_list(sorted(_repeated(items)))


def _repeated(items: list[Any]) -> set[Any]:
    return {item for item, count in Counter(items).items() if count > 1}


# -- --execute -------------------------------------------------------------------------------------


def _execute(client: KafkaClient, args: argparse.Namespace) -> None:
    targets, dirs = parse_reassignment(_read_json(args.reassignment_json_file))
    _check_targets(targets)
    proposed = dict(targets)
    ongoing = _ongoing(client)
    if ongoing and not args.additional:
        raise CliError(CANNOT_EXECUTE_BECAUSE_OF_EXISTING)
    known = set(client.brokers())
    for replicas in proposed.values():
        for broker in replicas:
            if broker not in known:
                raise CliError(f"Error: Unknown broker id {broker}")
    current = _assignment(client, {t for t, _ in proposed})
    rollback = {p: r for p, r in current.items() if p in proposed}
    print("Current partition replica assignment\n")
    print(format_reassignment(rollback))
    print("\nSave this to use as the --reassignment-json-file option during rollback")
    if args.throttle >= 0 or args.replica_alter_log_dirs_throttle >= 0:
        print(RUN_VERIFY_PERIODICALLY)
        if args.throttle >= 0:
            _set_reassignment_throttle(client, _moves(ongoing, proposed, current), args.throttle)
        if args.replica_alter_log_dirs_throttle >= 0:
            rate = str(args.replica_alter_log_dirs_throttle)
            for broker in sorted({broker for _, _, broker in dirs}):
                _set_configs(client, "brokers", str(broker), {ALTER_LOG_DIRS_RATE: rate})
            print(
                f"The replica-alter-dir throttle limit was set to {args.replica_alter_log_dirs_throttle} B/s"
            )
    errors = _reassign(client, {p: r for p, r in proposed.items()})
    if errors:
        lines = "\n".join(f"{_tp(p)}: {message}" for p, message in sorted(errors.items()))
        raise CliError(f"Error reassigning partition(s):\n{lines}")
    plural = "" if len(proposed) == 1 else "s"
    names = ",".join(_tp(p) for p in sorted(proposed))
    print(f"Successfully started partition reassignment{plural} for {names}")
    if dirs:
        _execute_moves(client, dirs, args.timeout)


def _check_targets(targets: list[tuple[Partition, list[int]]]) -> None:
    if not targets:
        raise CliError("Error: Partition reassignment list cannot be empty")
    if any(not replicas for _, replicas in targets):
        raise CliError("Error: Partition replica list cannot be empty")
    partitions = [p for p, _ in targets]
    if duplicated := _repeated(partitions):
        raise CliError(
            "Error: Partition reassignment contains duplicate topic partitions: "
            + ",".join(_tp(p) for p in sorted(duplicated))
        )
    repeated = [
        f"{_tp(p)} contains multiple entries for {_csv(sorted(_repeated(rs)))}"
        for p, rs in targets
        if _repeated(rs)
    ]
    if repeated:
        raise CliError(
            "Error: Partition replica lists may not contain duplicate entries: " + ". ".join(repeated)
        )


def _moves(
    ongoing: dict[Partition, tuple[list[int], list[int], list[int]]],
    proposed: dict[Partition, list[int]],
    current: dict[Partition, list[int]],
) -> dict[Partition, tuple[set[int], set[int]]]:
    """Kafka's calculateProposedMoveMap: partition -> (sources, destinations). A reassignment in
    progress keeps its sources (its replicas minus those being added)."""
    moves = {
        p: (set(replicas) - set(adding), set(adding)) for p, (replicas, adding, _removing) in ongoing.items()
    }
    for partition, replicas in proposed.items():
        if partition in moves:
            sources = moves[partition][0]
        elif partition in current:
            sources = set(current[partition])
        else:
            raise CliError(f"Error: Trying to reassign a topic partition {_tp(partition)} with 0 replicas")
        moves[partition] = (sources, set(replicas) - sources)
    return moves


def _set_reassignment_throttle(
    client: KafkaClient, moves: dict[Partition, tuple[set[int], set[int]]], rate: int
) -> None:
    leaders: dict[str, set[str]] = {}
    followers: dict[str, set[str]] = {}
    brokers: set[int] = set()
    for (topic, partition), (sources, destinations) in moves.items():
        leaders.setdefault(topic, set()).update(f"{partition}:{b}" for b in sources)
        followers.setdefault(topic, set()).update(f"{partition}:{b}" for b in destinations - sources)
        brokers |= sources | destinations
    for topic in sorted(leaders):
        throttled = {
            LEADER_REPLICAS: ",".join(sorted(leaders[topic])),
            FOLLOWER_REPLICAS: ",".join(sorted(followers[topic])),
        }
        _set_configs(client, "topics", topic, throttled)
    for broker in sorted(brokers):
        _set_configs(client, "brokers", str(broker), {LEADER_RATE: str(rate), FOLLOWER_RATE: str(rate)})
    print(f"The inter-broker throttle limit was set to {rate} B/s")


def _reassign(client: KafkaClient, targets: dict[Partition, list[int] | None]) -> dict[Partition, str]:
    """AlterPartitionReassignments (None cancels); partition -> error message of the refused."""
    by_topic: dict[str, list[ReassignablePartition]] = {}
    for (topic, partition), replicas in sorted(targets.items()):
        by_topic.setdefault(topic, []).append(ReassignablePartition(partition, replicas))
    request = AlterPartitionReassignmentsRequest(
        timeout_ms=int(client.timeout * 1000),
        topics=[ReassignableTopic(topic, partitions) for topic, partitions in by_topic.items()],
    )
    response = client.controller().call(request)
    check_error(response.error_code, response.error_message)
    errors: dict[Partition, str] = {}
    for topic in response.responses:
        for p in topic.partitions:
            if p.error_code:
                errors[(topic.name, p.partition_index)] = KafkaError(p.error_code, p.error_message).text
    return errors


def _execute_moves(client: KafkaClient, dirs: dict[Replica, str], timeout_ms: int) -> None:
    """AlterReplicaLogDirs to each broker, again every 100 ms for the replicas not there yet
    (REPLICA_NOT_AVAILABLE: a replica still being added), until ``timeout_ms``."""
    pending = dict(dirs)
    deadline = time.monotonic() + timeout_ms / 1000
    while pending:
        for replica in sorted(_alter_log_dirs(client, pending), key=_by_broker):
            topic, partition, broker = replica
            print(
                f"Successfully started moving log directory to {pending.pop(replica)} for replica "
                f"{topic}-{partition} with broker {broker} "
            )
        if pending and time.monotonic() >= deadline:
            plural = "" if len(pending) == 1 else "s"
            names = ",".join(f"{t}-{p}-{b}" for t, p, b in sorted(pending, key=_by_broker))
            raise CliError(f"Timed out before log directory move{plural} could be started for: {names}")
        if pending:
            time.sleep(0.1)


def _alter_log_dirs(client: KafkaClient, replicas: dict[Replica, str]) -> set[Replica]:
    started: set[Replica] = set()
    for broker in sorted({b for _, _, b in replicas}):
        by_dir: dict[str, dict[str, list[int]]] = {}
        for (topic, partition, b), log_dir in replicas.items():
            if b == broker:
                by_dir.setdefault(log_dir, {}).setdefault(topic, []).append(partition)
        request = AlterReplicaLogDirsRequest(
            dirs=[
                AlterReplicaLogDir(path, [AlterReplicaLogDirTopic(t, ps) for t, ps in topics.items()])
                for path, topics in by_dir.items()
            ]
        )
        response = client.node(broker).call(request)
        for result in response.results:
            for p in result.partitions:
                replica = (result.topic_name, p.partition_index, broker)
                if p.error_code == ErrorCode.NONE:
                    started.add(replica)
                elif p.error_code != ErrorCode.REPLICA_NOT_AVAILABLE:
                    raise CliError(
                        f"Error: Failed to alter dir for {replica[0]}-{replica[1]}-{broker}: "
                        f"{KafkaError(p.error_code).text}"
                    )
    return started


# -- --verify and --cancel -------------------------------------------------------------------------


def _verify(client: KafkaClient, args: argparse.Namespace) -> None:
    targets, dirs = parse_reassignment(_read_json(args.reassignment_json_file))
    ongoing = _ongoing(client)
    current = _assignment(client, {t for (t, _), _ in targets})
    lines = ["Status of partition reassignment:"]
    for partition, target in sorted(dict(targets).items()):
        if partition in ongoing:
            lines.append(f"Reassignment of partition {_tp(partition)} is still in progress.")
        elif current.get(partition, []) == target:
            lines.append(f"Reassignment of partition {_tp(partition)} is completed.")
        else:
            lines.append(
                f"There is no active reassignment of partition {_tp(partition)}, but replica set is "
                f"{_csv(current.get(partition, []))} rather than {_csv(target)}."
            )
    print("\n".join(lines))
    moves_ongoing = False
    if dirs:
        states = _move_states(client, dirs)
        moves_ongoing = any(move.state == "active" for move in states.values())
        print("\n".join(states[r].line for r in sorted(states, key=_by_broker)))
    if not ongoing and not moves_ongoing and not args.preserve_throttles:
        _clear_throttles(client, targets)


class MoveState(NamedTuple):
    """A log dir move as --verify reports it."""

    state: str  # missing, done, cancelled or active
    line: str  # Kafka's line for it
    current_dir: str | None  # where the replica lives now (None: missing)


def _move_states(client: KafkaClient, dirs: dict[Replica, str]) -> dict[Replica, MoveState]:
    """Each log dir move's state, from DescribeLogDirs of its broker."""
    states: dict[Replica, MoveState] = {}
    for broker in sorted({b for _, _, b in dirs}):
        mine = {r: d for r, d in dirs.items() if r[2] == broker}
        topics: dict[str, list[int]] = {}
        for topic, partition, _ in mine:
            topics.setdefault(topic, []).append(partition)
        response = client.node(broker).call(
            DescribeLogDirsRequest(topics=[DescribableLogDirTopic(t, ps) for t, ps in topics.items()])
        )
        current: dict[Partition, str] = {}
        future: dict[Partition, str] = {}
        for result in response.results:
            if result.error_code:
                continue
            for topic in result.topics:
                for p in topic.partitions:
                    (future if p.is_future_key else current)[(topic.name, p.partition_index)] = result.log_dir
        for replica, target in mine.items():
            states[replica] = _move_state(replica, target, current.get(replica[:2]), future.get(replica[:2]))
    return states


def _move_state(replica: Replica, target: str, here: str | None, moving_to: str | None) -> MoveState:
    topic, partition, broker = replica
    name = f"{topic}-{partition}"
    if here is None:
        return MoveState(
            "missing", f"Partition {name} cannot be found in any live log directory on broker {broker}.", None
        )
    if moving_to is None and here == target:
        return MoveState("done", f"Reassignment of replica {name}-{broker} completed successfully.", here)
    if moving_to is None:
        line = f"Partition {name} on broker {broker} is not being moved from log dir {here} to {target}."
        return MoveState("cancelled", line, here)
    if moving_to == target:
        return MoveState("active", f"Reassignment of replica {name}-{broker} is still in progress.", here)
    line = f"Partition {name} on broker {broker} is being moved to log dir {moving_to} instead of {target}."
    return MoveState("active", line, here)


def _clear_throttles(client: KafkaClient, targets: list[tuple[Partition, list[int]]]) -> None:
    """Kafka's clearAllThrottles: every broker of the cluster and of the file, every topic."""
    brokers = set(client.brokers()) | {b for _, replicas in targets for b in replicas}
    print(
        f"Clearing broker-level throttles on broker{'' if len(brokers) == 1 else 's'} {_csv(sorted(brokers))}"
    )
    for broker in sorted(brokers):
        _set_configs(client, "brokers", str(broker), dict.fromkeys(BROKER_LEVEL_THROTTLES))
    topics = sorted({t for (t, _), _ in targets})
    print(f"Clearing topic-level throttles on topic{'' if len(topics) == 1 else 's'} {','.join(topics)}")
    for topic in topics:
        _set_configs(client, "topics", topic, dict.fromkeys(TOPIC_LEVEL_THROTTLES))


def _cancel(client: KafkaClient, args: argparse.Namespace) -> None:
    targets, dirs = parse_reassignment(_read_json(args.reassignment_json_file))
    wanted = {p for p, _ in targets}
    # As Kafka's tool: a reassignment only adding replicas that none remove is left alone.
    running = sorted(
        p for p, (_, adding, removing) in _ongoing(client).items() if p in wanted and (not adding or removing)
    )
    if running:
        errors = _reassign(client, dict.fromkeys(running))
        if errors:
            plural = "" if len(errors) == 1 else "s"
            lines = "\n".join(f"{_tp(p)}: {message}" for p, message in sorted(errors.items()))
            raise CliError(f"Error cancelling partition reassignment{plural} for:\n{lines}")
        plural = "" if len(running) == 1 else "s"
        print(
            f"Successfully cancelled partition reassignment{plural} for: {','.join(_tp(p) for p in running)}"
        )
    else:
        print("None of the specified partition reassignments are active.")
    moving: dict[Replica, str] = {}
    if dirs:
        for replica, move in _move_states(client, dirs).items():
            if move.state == "active" and move.current_dir is not None:
                moving[replica] = move.current_dir
    if moving:
        _execute_moves(client, moving, args.timeout)
    else:
        print("None of the specified partition moves are active.")
    if not args.preserve_throttles:
        _clear_throttles(client, targets)


_ACTION_RUNNERS = {
    "generate": _generate,
    "execute": _execute,
    "verify": _verify,
    "cancel": _cancel,
    "list": _list,
}
