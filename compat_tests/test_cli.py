"""The ``brook`` command line against a real broker process (and a three-broker cluster): every
subcommand, its output checked against the format of Kafka 3.9's tools (TopicCommand,
ConsumerGroupCommand, ConfigCommand, the console tools' LineMessageReader and
DefaultMessageFormatter, kafka-log-dirs.sh, TransactionsCommand), its errors and exit codes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from compat_tests.cluster import BrokerCluster
from compat_tests.harness import REPO, BrokerProcess, wait_until

TIMEOUT = 60.0
_COLUMNS = [
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


def brook(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``brook`` in this process (its ``main``), stdin, stdout and stderr swapped for buffers:
    a process per command costs a second on a loaded machine. ``brook_process`` runs the real
    entry point."""
    from broker.cli.main import main

    streams = {name: io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="") for name in ("out", "err")}
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    sys.stdout, sys.stderr = streams["out"], streams["err"]
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    texts = []
    for stream in streams.values():
        stream.flush()
        texts.append(stream.buffer.getvalue().decode(errors="replace"))  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["brook", *args], code, texts[0], texts[1])


def brook_process(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m broker.cli`` (what the ``brook`` console script runs) as a process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        cwd=REPO,
        env=env,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def succeeded(result: subprocess.CompletedProcess[str], args: tuple[str, ...]) -> str:
    """The output of a ``brook`` command that must have exited 0."""
    assert result.returncode == 0, (
        f"brook {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def ok(*args: str, stdin: bytes | None = None) -> str:
    return succeeded(brook(*args, stdin=stdin), args)


def ok_process(*args: str, stdin: bytes | None = None) -> str:
    return succeeded(brook_process(*args, stdin=stdin), args)


def create_topic(bootstrap: str, topic: str, *options: str) -> str:
    return ok("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, *options)


def produce(bootstrap: str, topic: str, *options: str, stdin: bytes) -> str:
    return ok("console-producer", "--bootstrap-server", bootstrap, "--topic", topic, *options, stdin=stdin)


def consume(bootstrap: str, topic: str, *options: str) -> str:
    return ok("console-consumer", "--bootstrap-server", bootstrap, "--topic", topic, *options)


def reset_offsets(bootstrap: str, group: str, *options: str) -> str:
    return ok(
        "consumer-groups", "--bootstrap-server", bootstrap, "--reset-offsets", "--group", group, *options
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def offset_table(stdout: str) -> list[list[str]]:
    """The rows of ConsumerGroupCommand's offsets table, header checked."""
    lines = [line for line in stdout.split("\n") if line.strip()]
    assert lines[0].split() == _COLUMNS
    return [line.split() for line in lines[1:]]


def group_offsets(bootstrap: str, group: str) -> list[list[str]]:
    """The rows of ``consumer-groups --describe --group``."""
    return offset_table(
        ok("consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group)
    )


# -- a single broker ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> str:
    return broker.bootstrap


def test_topics_create_list_describe_alter_delete(bootstrap: str) -> None:
    topic = unique("cli-topics")
    assert (
        create_topic(
            bootstrap,
            topic,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=123456",
        )
        == f"Created topic {topic}.\n"
    )
    assert topic in ok("topics", "--bootstrap-server", bootstrap, "--list").split("\n")

    lines = (
        ok("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic).rstrip("\n").split("\n")
    )
    assert re.fullmatch(
        rf"Topic: {topic}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 2\tReplicationFactor: 1"
        r"\tConfigs: retention.ms=123456",
        lines[0],
    ), lines[0]
    assert lines[1:] == [
        f"\tTopic: {topic}\tPartition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: N/A\tLastKnownElr: N/A"
        for p in range(2)
    ]

    assert (
        ok("topics", "--bootstrap-server", bootstrap, "--alter", "--topic", topic, "--partitions", "3") == ""
    )
    described = ok("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    assert "\tPartitionCount: 3\t" in described and f"\tTopic: {topic}\tPartition: 2\tLeader: 0" in described

    assert ok("topics", "--bootstrap-server", bootstrap, "--delete", "--topic", topic) == ""
    assert topic not in ok("topics", "--bootstrap-server", bootstrap, "--list").split("\n")


def test_topics_errors_are_kafkas_with_exit_code_1(bootstrap: str) -> None:
    topic = unique("cli-dup")
    create_topic(bootstrap, topic)
    again = brook("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic)
    assert again.returncode == 1
    assert again.stdout.startswith("Error while executing topic command : ")
    assert "already exists" in again.stdout
    assert (
        brook(
            "topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic, "--if-not-exists"
        ).returncode
        == 0
    )

    missing = brook("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", "no-such-topic")
    assert (missing.returncode, missing.stdout) == (
        1,
        "Error while executing topic command : Topic 'no-such-topic' does not exist as expected\n",
    )
    unreachable = brook_process("topics", "--bootstrap-server", "127.0.0.1:1", "--list")
    assert unreachable.returncode == 1 and "127.0.0.1:1" in unreachable.stdout


def test_console_round_trip_with_keys_and_headers(bootstrap: str) -> None:
    topic = unique("cli-console")
    create_topic(bootstrap, topic, "--partitions", "1")
    lines = b"h1:a,h2:b\tk1\tv1\nNO\tk2\tv2\nx:1\tk3\tv with\ttab\n"
    # The real entry point reading a pipe.
    ok_process(
        "console-producer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "parse.headers=true",
        "--property",
        "null.marker=NO",
        "--producer-property",
        "acks=all",
        stdin=lines,
    )
    out = consume(
        bootstrap,
        topic,
        "--from-beginning",
        "--max-messages",
        "3",
        "--property",
        "print.key=true",
        "--property",
        "print.headers=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.partition=true",
    )
    assert out == (
        "Partition:0\tOffset:0\th1:a,h2:b\tk1\tv1\n"
        "Partition:0\tOffset:1\tNO_HEADERS\tk2\tv2\n"
        "Partition:0\tOffset:2\tx:1\tk3\tv with\ttab\n"
    )
    stamped = consume(
        bootstrap,
        topic,
        "--from-beginning",
        "--max-messages",
        "1",
        "--property",
        "print.timestamp=true",
        "--property",
        "key.separator=|",
    )
    assert re.fullmatch(r"CreateTime:\d{13}\|v1\n", stamped), stamped


def test_console_producer_acks_0_compression_and_replica_assignment(bootstrap: str) -> None:
    topic = unique("cli-acks0")
    assert create_topic(bootstrap, topic, "--replica-assignment", "0,0") == f"Created topic {topic}.\n"
    assert "\tPartitionCount: 2\tReplicationFactor: 1\t" in ok(
        "topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic
    )
    produce(bootstrap, topic, "--request-required-acks", "0", stdin=b"fire\nforget\n")
    produce(bootstrap, topic, "--compression-codec", "gzip", stdin=b"packed\nsmall\n")
    out = consume(bootstrap, topic, "--from-beginning", "--max-messages", "4", "--timeout-ms", "20000")
    assert sorted(out.split()) == ["fire", "forget", "packed", "small"]


def test_console_producer_partitions_keys_as_kafka(bootstrap: str) -> None:
    """Keyed records land where Kafka's default partitioner (murmur2) puts them."""
    from broker.cli.lines import partition_for_key

    topic = unique("cli-keys")
    create_topic(bootstrap, topic, "--partitions", "4")
    keys = [f"key{i}" for i in range(12)]
    produce(
        bootstrap,
        topic,
        "--property",
        "parse.key=true",
        stdin="".join(f"{k}\tvalue-{k}\n" for k in keys).encode(),
    )
    for partition in range(4):
        expected = sorted(k for k in keys if partition_for_key(k.encode(), 4) == partition)
        if not expected:
            continue
        out = consume(
            bootstrap,
            topic,
            "--partition",
            str(partition),
            "--offset",
            "earliest",
            "--max-messages",
            str(len(expected)),
            "--property",
            "print.key=true",
        )
        assert sorted(line.split("\t")[0] for line in out.splitlines()) == expected


def test_console_consumer_group_commits_and_resumes(bootstrap: str) -> None:
    topic, group = unique("cli-cgroup"), unique("cli-group")
    create_topic(bootstrap, topic, "--partitions", "2")
    produce(bootstrap, topic, stdin=b"".join(b"m%d\n" % i for i in range(6)))
    first = consume(bootstrap, topic, "--group", group, "--from-beginning", "--max-messages", "6")
    assert sorted(first.split()) == [f"m{i}" for i in range(6)]
    rows = group_offsets(bootstrap, group)
    assert {(r[1], r[2], r[5]) for r in rows} == {(topic, "0", "0"), (topic, "1", "0")}
    produce(bootstrap, topic, stdin=b"late\n")
    again = consume(bootstrap, topic, "--group", group, "--max-messages", "1")
    assert again == "late\n"


def test_console_consumer_is_a_group_member(bootstrap: str) -> None:
    """``--group`` joins the group: an active member while it runs, its offsets committed at the end.

    ``--from-beginning``: the member is listed once SyncGroup has answered, before it has looked up
    its start offsets; with ``latest`` a record written in between would lie before its start."""
    topic, group = unique("cli-member"), unique("cli-member-group")
    create_topic(bootstrap, topic, "--partitions", "2")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "broker.cli",
        "console-consumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--from-beginning",
        "--max-messages",
        "2",
        "--timeout-ms",
        "30000",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    try:

        def member_listed() -> bool:
            result = brook(
                "consumer-groups",
                "--bootstrap-server",
                bootstrap,
                "--describe",
                "--group",
                group,
                "--members",
            )
            rows = [line.split() for line in result.stdout.split("\n")[2:] if line.strip()]
            return result.returncode == 0 and len(rows) == 1 and rows[0][3:5] == ["brook-cli", "2"]

        wait_until(member_listed, TIMEOUT, interval=0.2, message="the console consumer as a group member")
        produce(bootstrap, topic, stdin=b"one\ntwo\n")
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert sorted(out.decode().split()) == ["one", "two"]
    rows = group_offsets(bootstrap, group)
    assert sorted((r[2], r[5], r[6]) for r in rows) == [("0", "0", "-"), ("1", "0", "-")]
    assert sum(int(r[3]) for r in rows) == 2


def _confluent_group_commit(bootstrap: str, topic: str, group: str, count: int) -> None:
    """A confluent-kafka group member reads ``count`` records, commits synchronously and leaves."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "client.id": "cli-test-consumer",
        }
    )
    try:
        consumer.subscribe([topic])
        seen = 0
        for _ in range(200):
            if seen >= count:
                break
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen += 1
        assert seen == count, f"read {seen} of {count}"
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def test_consumer_groups_lag_reset_and_delete(bootstrap: str) -> None:
    topic, group = unique("cli-lag"), unique("cli-lag-group")
    create_topic(bootstrap, topic, "--partitions", "1")
    produce(bootstrap, topic, stdin=b"".join(b"r%d\n" % i for i in range(10)))
    _confluent_group_commit(bootstrap, topic, group, 4)
    produce(bootstrap, topic, stdin=b"r10\nr11\n")

    assert group in ok("consumer-groups", "--bootstrap-server", bootstrap, "--list").split("\n")
    listed = ok("consumer-groups", "--bootstrap-server", bootstrap, "--list", "--state")
    assert listed.split("\n")[0].split() == ["GROUP", "STATE"]
    assert any(line.split() == [group, "Empty"] for line in listed.split("\n"))

    described = brook("consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group)
    assert (
        described.returncode == 0 and f"Consumer group '{group}' has no active members." in described.stderr
    )
    assert described.stdout.startswith("\nGROUP ")
    assert offset_table(described.stdout) == [[group, topic, "0", "4", "12", "8", "-", "-", "-"]]

    state = ok("consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group, "--state")
    header, row = [line for line in state.split("\n") if line.strip()]
    assert header.split() == ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
    assert row.split()[0] == group and row.split()[-2:] == ["Empty", "0"]

    plan = reset_offsets(bootstrap, group, "--topic", topic, "--to-earliest")
    assert (
        plan == f"\n{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}"
        f"\n{group:<30} {topic:<30} {0:<10} {0:<15}\n"
    )
    assert group_offsets(bootstrap, group)[0][3] == "4", "a dry run changed the committed offset"

    reset_offsets(bootstrap, group, "--all-topics", "--to-offset", "7", "--execute")
    assert group_offsets(bootstrap, group)[0][3:6] == ["7", "12", "5"]
    shifted = reset_offsets(bootstrap, group, "--all-topics", "--shift-by", "-2", "--execute")
    assert shifted.split("\n")[-2].split() == [group, topic, "0", "5"]
    for scenario in (
        ["--to-latest"],
        ["--to-datetime", "2000-01-01T00:00:00.000Z"],
        ["--by-duration", "PT0S"],
    ):
        expected = "0" if scenario[0] == "--to-datetime" else "12"
        out = reset_offsets(bootstrap, group, "--all-topics", *scenario)
        assert out.split("\n")[-2].split() == [group, topic, "0", expected], scenario

    assert (
        ok("consumer-groups", "--bootstrap-server", bootstrap, "--delete", "--group", group)
        == f"Deletion of requested consumer groups ('{group}') was successful.\n"
    )
    gone = brook("consumer-groups", "--bootstrap-server", bootstrap, "--delete", "--group", group)
    assert gone.returncode == 1 and "GroupIdNotFoundException" in gone.stdout
    dead = brook("consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group)
    assert (dead.returncode, dead.stdout) == (1, f"\nError: Consumer group '{group}' does not exist.\n")


def test_consumer_groups_with_an_active_member(bootstrap: str) -> None:
    from confluent_kafka import Consumer

    topic, group = unique("cli-active"), unique("cli-active-group")
    create_topic(bootstrap, topic, "--partitions", "2")
    produce(bootstrap, topic, stdin=b"a\nb\n")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "client.id": "cli-active-client",
        }
    )
    try:
        consumer.subscribe([topic])
        for _ in range(100):
            consumer.poll(0.2)
            if len(consumer.assignment()) == 2:
                break
        assert len(consumer.assignment()) == 2
        members = ok(
            "consumer-groups",
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
            "--members",
            "--verbose",
        )
        header, row = [line for line in members.split("\n") if line.strip()]
        assert header.split() == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"]
        cells = row.split()
        assert cells[0] == group and cells[3] == "cli-active-client" and cells[4] == "2"
        assert cells[5] == f"{topic}(0,1)"
        rows = group_offsets(bootstrap, group)
        assert [(r[1], r[2], r[8]) for r in rows] == [
            (topic, "0", "cli-active-client"),
            (topic, "1", "cli-active-client"),
        ]

        busy = brook(
            "consumer-groups",
            "--bootstrap-server",
            bootstrap,
            "--reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        )
        assert busy.returncode == 1
        assert (
            f"Error: Assignments can only be reset if the group '{group}' is inactive, "
            "but the current state is Stable." in busy.stdout
        )
    finally:
        consumer.close()


def test_configs_describe_and_alter(bootstrap: str) -> None:
    topic = unique("cli-configs")
    create_topic(bootstrap, topic, "--config", "retention.ms=60000")
    # Kafka lists the broker-level synonyms after the topic's (log.retention.hours=168 from
    # DEFAULT_CONFIG); which ones a broker reports is the broker's business, the format is ours.
    assert re.fullmatch(
        rf"Dynamic configs for topic {topic} are:\n"
        r"  retention.ms=60000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention.ms=60000"
        r"(, (DEFAULT_CONFIG|STATIC_BROKER_CONFIG):log\.retention\.\w+=\d+)*\}\n",
        ok("configs", "--bootstrap-server", bootstrap, "--describe", "--topic", topic),
    )
    assert (
        ok(
            "configs",
            "--bootstrap-server",
            bootstrap,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--add-config",
            "max.message.bytes=2000,cleanup.policy=compact",
            "--delete-config",
            "retention.ms",
        )
        == f"Completed updating config for topic {topic}.\n"
    )
    described = ok("configs", "--bootstrap-server", bootstrap, "--describe", "--topic", topic).split("\n")
    assert described[0] == f"Dynamic configs for topic {topic} are:"
    assert sorted(line.split(" ")[2] for line in described[1:] if line) == [
        "cleanup.policy=compact",
        "max.message.bytes=2000",
    ]
    everything = ok("configs", "--bootstrap-server", bootstrap, "--describe", "--topic", topic, "--all")
    assert everything.startswith(f"All configs for topic {topic} are:\n") and "  segment.bytes=" in everything

    invalid = brook(
        "configs", "--bootstrap-server", bootstrap, "--alter", "--topic", topic, "--delete-config", "nope"
    )
    assert (invalid.returncode, invalid.stderr) == (1, "Invalid config(s): nope\n")

    assert ok("configs", "--bootstrap-server", bootstrap, "--describe", "--broker", "0").startswith(
        "Dynamic configs for broker 0 are:\n"
    )


def test_configs_errors_from_the_broker_are_printed_with_kafkas_header(bootstrap: str) -> None:
    # A user without SCRAM credentials is no error (Kafka's DescribeUserScramCredentialsResult.users
    # leaves out RESOURCE_NOT_FOUND): nothing is printed.
    users = ok(
        "configs",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--entity-type",
        "users",
        "--entity-name",
        "x",
    )
    assert users == ""
    users = brook(
        "configs", "--bootstrap-server", bootstrap, "--alter", "--user", "u", "--add-config", "bogus=1"
    )
    assert users.returncode == 1
    assert users.stderr.startswith(
        "Error while executing config command with args 'configs --bootstrap-server"
    )
    assert "Invalid configuration key bogus" in users.stderr
    brokers = brook(
        "configs",
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--broker",
        "0",
        "--add-config",
        "log.cleaner.threads=2",
    )
    if brokers.returncode != 0:  # until dynamic broker configs land, the broker's error is shown
        assert brokers.stderr.startswith("Error while executing config command with args")
        assert len(brokers.stderr.strip().split("\n")) == 2


def test_cluster_id_describe_and_log_dirs(broker: BrokerProcess) -> None:
    cluster_id = ok("cluster", "--bootstrap-server", broker.bootstrap, "cluster-id")
    assert re.fullmatch(r"Cluster ID: [A-Za-z0-9_-]{22}\n", cluster_id)
    described = ok("cluster", "--bootstrap-server", broker.bootstrap, "describe").split("\n")
    assert described[:4] == [
        cluster_id.strip(),
        "Controller: 0",
        "Brokers:",
        f"  127.0.0.1:{broker.port} (id: 0 rack: null)",
    ]

    topic = unique("cli-logdirs")
    create_topic(broker.bootstrap, topic, "--partitions", "2")
    produce(broker.bootstrap, topic, stdin=b"x\n")
    out = ok(
        "cluster", "--bootstrap-server", broker.bootstrap, "log-dirs", "--describe", "--topic-list", topic
    )
    head, received, document = out.rstrip("\n").split("\n")
    assert (head, received) == (
        "Querying brokers for log directories information",
        "Received log directory information from brokers 0",
    )
    parsed: dict[str, Any] = json.loads(document)
    assert parsed["version"] == 1
    (entry,) = parsed["brokers"]
    (log_dir,) = entry["logDirs"]
    assert entry["broker"] == 0 and log_dir["error"] is None and Path(log_dir["logDir"]) == broker.data_dir
    sizes = {p["partition"]: p for p in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-0", f"{topic}-1"}
    assert sum(p["size"] for p in sizes.values()) > 0
    assert all(p["offsetLag"] == 0 and p["isFuture"] is False for p in sizes.values())


def test_transactions_list_and_describe(bootstrap: str) -> None:
    from confluent_kafka import Producer

    topic, tid = unique("cli-txn"), unique("cli-tid")
    create_topic(bootstrap, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    producer.init_transactions(30)  # Produce does not take transactional batches yet

    listed = ok("transactions", "--bootstrap-server", bootstrap, "list").split("\n")
    assert listed[0].split("\t")[:4] == [
        "TransactionalId".ljust(len(listed[0].split("\t")[0])),
        "Coordinator",
        "ProducerId",
        "TransactionState",
    ]
    assert any(line.split()[:2] == [tid, "0"] for line in listed[1:] if line)

    described = ok("transactions", "--bootstrap-server", bootstrap, "describe", "--transactional-id", tid)
    header, row = described.rstrip("\n").split("\n")
    assert header.split() == [
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
    cells = row.split("\t")
    assert [c.strip() for c in cells[:2]] == ["0", tid] and cells[4].strip() == "Empty"

    missing = brook("transactions", "--bootstrap-server", bootstrap, "describe", "--transactional-id", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Failed to describe transaction state of transactional-id `nope`: ")


def test_describe_producers_and_acls_say_clearly_what_the_broker_lacks(bootstrap: str) -> None:
    topic = unique("cli-producers")
    create_topic(bootstrap, topic)
    producers = brook(
        "transactions",
        "--bootstrap-server",
        bootstrap,
        "describe-producers",
        "--topic",
        topic,
        "--partition",
        "0",
    )
    if producers.returncode == 0:  # DescribeProducers landed
        assert producers.stdout.split("\n")[0].split() == [
            "ProducerId",
            "ProducerEpoch",
            "LatestCoordinatorEpoch",
            "LastSequence",
            "LastTimestamp",
            "CurrentTransactionStartOffset",
        ]
    else:
        assert producers.returncode == 1
        assert f"Failed to describe producers for partition {topic}-0 on leader" in producers.stderr
        assert "does not support DescribeProducers (api 61)" in producers.stderr
    acls = brook("acls", "--bootstrap-server", bootstrap, "--list")
    # ACL apis are served; without authorizer.class.name they answer SECURITY_DISABLED, as Kafka.
    assert acls.returncode == 1 and "No Authorizer is configured" in acls.stderr, acls.stderr


def test_command_config_security_settings(bootstrap: str, tmp_path: Path) -> None:
    """TLS and SASL settings are honoured (compat_tests/test_sasl_clients.py runs them against
    SASL listeners); here, what cannot work fails with a clear message and no traceback, and
    ssl.*/sasl.* keys are ignored with PLAINTEXT, as Kafka's clients ignore them."""
    config = tmp_path / "client.properties"
    for settings, message in (
        ("security.protocol=SSL\n", "TLS handshake with"),  # a PLAINTEXT port
        ("security.protocol=SASL_PLAINTEXT\n", "sasl.mechanism=GSSAPI is not supported"),
        ("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n", "sasl.jaas.config must be set"),
    ):
        config.write_text(settings)
        result = brook("topics", "--bootstrap-server", bootstrap, "--list", "--command-config", str(config))
        assert result.returncode == 1 and message in result.stdout + result.stderr, result
        assert "Traceback" not in result.stdout + result.stderr
    for settings in (
        "sasl.mechanism=PLAIN\n",
        "ssl.truststore.location=/x\n",
        "security.protocol=PLAINTEXT\n",
    ):
        config.write_text("# plain\nclient.id=cli-test\n" + settings)
        result = brook("topics", "--bootstrap-server", bootstrap, "--list", "--command-config", str(config))
        assert result.returncode == 0, result


# -- a three-broker cluster ---------------------------------------------------------------------


def test_cluster_topics_and_groups(cluster: BrokerCluster) -> None:
    # A bootstrap list whose first address is dead: the tools go on to the next one.
    bootstrap = "127.0.0.1:1," + cluster.bootstrap
    topic, group = unique("cli-cluster"), unique("cli-cluster-group")
    assert (
        create_topic(bootstrap, topic, "--partitions", "3", "--replication-factor", "3")
        == f"Created topic {topic}.\n"
    )
    for partition in range(3):
        cluster.wait_for_leader(topic, partition, lambda leader: leader >= 0, 30.0)
    # Brokers other than the controller learn of the topic from UpdateMetadata, a moment later.
    for broker_id in cluster.ids:
        cluster.wait_view(
            lambda view: (
                len(view.topics.get(topic, {})) == 3 and all(p[0] >= 0 for p in view.topics[topic].values())
            ),
            30.0,
            f"{topic} in broker {broker_id}'s metadata",
            bootstrap=cluster.bootstrap_of(broker_id),
        )
    lines = (
        ok("topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic).rstrip("\n").split("\n")
    )
    assert re.fullmatch(
        rf"Topic: {topic}\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: ", lines[0]
    )
    for partition, line in enumerate(lines[1:]):
        match = re.fullmatch(
            rf"\tTopic: {topic}\tPartition: {partition}\tLeader: (\d+)\tReplicas: ([\d,]+)\tIsr: ([\d,]+)"
            r"\tElr: N/A\tLastKnownElr: N/A",
            line,
        )
        assert match, line
        replicas = match[2].split(",")
        assert sorted(replicas) == sorted(str(i) for i in cluster.ids) and match[1] in replicas

    produce(
        bootstrap,
        topic,
        "--property",
        "parse.key=true",
        stdin=b"".join(b"k%d\tv%d\n" % (i, i) for i in range(9)),
    )
    read = consume(bootstrap, topic, "--group", group, "--from-beginning", "--max-messages", "9")
    assert sorted(read.split()) == sorted(f"v{i}" for i in range(9))
    rows = group_offsets(bootstrap, group)
    assert sorted(r[2] for r in rows) == ["0", "1", "2"]
    assert all(r[3] == r[4] and r[5] == "0" for r in rows)
    assert sum(int(r[4]) for r in rows) == 9

    described = ok("cluster", "--bootstrap-server", bootstrap, "describe").split("\n")
    assert described[1] == f"Controller: {cluster.controller_id()}"
    assert len([line for line in described[3:] if line.startswith("  ")]) == len(cluster.ids)
    assert ok("topics", "--bootstrap-server", bootstrap, "--delete", "--topic", topic) == ""
