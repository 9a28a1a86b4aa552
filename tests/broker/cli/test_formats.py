"""The ``brook`` tools' pure parts: Kafka's line reader and message formatter, the default
partitioner's murmur2, prettyPrintTable, durations, client properties, the offsets table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.cli.client import CliError
from broker.cli.common import parse_key_values, pretty_table, read_properties
from broker.cli.groups import format_offsets, format_reset_plan, parse_datetime, parse_duration
from broker.cli.lines import (
    FormatterConfig,
    LineReaderConfig,
    format_record,
    murmur2,
    parse_line,
    partition_for_key,
)
from broker.cli.security import security_from
from broker.cli.topics import describe_lines

# Text without the separators in play (and no newline: a line is one record).
_plain = st.text(st.characters(blacklist_characters="\t,:\n\r", blacklist_categories=("Cs",)), max_size=20)


@given(
    key=_plain,
    value=st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40),
    headers=st.lists(st.tuples(_plain, _plain), max_size=4),
)
def test_formatter_output_is_what_the_line_reader_parses(
    key: str, value: str, headers: list[tuple[str, str]]
) -> None:
    """print.headers + print.key output, fed back through parse.headers + parse.key, is the record."""
    encoded = [(k, v.encode()) for k, v in headers]
    out = format_record(
        FormatterConfig(print_key=True, print_headers=True),
        timestamp_type=0,
        timestamp=0,
        partition=0,
        offset=0,
        headers=encoded,
        key=key.encode(),
        value=value.encode(),
    )
    assert out.endswith(b"\n")
    line = out[:-1].decode()
    if not headers:
        line = line.replace("NO_HEADERS", "", 1)  # the reader's input for "no headers" is empty
    parsed = parse_line(line, LineReaderConfig(parse_key=True, parse_headers=True), 1)
    assert parsed.key == key.encode() and parsed.value == value.encode()
    assert parsed.headers == encoded


def test_line_reader_as_kafka() -> None:
    config = LineReaderConfig.from_properties(
        {"parse.key": "true", "key.separator": "::", "parse.headers": "true", "null.marker": "NULL"}
    )
    parsed = parse_line("a:1,b:NULL\tNULL::value::more", config, 1)
    assert (parsed.key, parsed.value, parsed.headers) == (None, b"value::more", [("a", b"1"), ("b", None)])
    with pytest.raises(CliError, match=r"No key separator found on line number 7: 'h:1\tnokey'"):
        parse_line("h:1\tnokey", config, 7)
    with pytest.raises(CliError, match="No header key separator found in pair 'x'"):
        parse_line("x\tk::v", config, 1)
    lenient = LineReaderConfig(parse_key=True, ignore_error=True)
    assert parse_line("no separator", lenient, 1).key is None
    with pytest.raises(CliError, match=r"headers\.delimiter and headers\.separator may not be equal"):
        LineReaderConfig.from_properties({"headers.delimiter": ",", "headers.separator": ","})


def test_formatter_as_kafka() -> None:
    everything = FormatterConfig.from_properties(
        {
            k: "true"
            for k in ("print.timestamp", "print.partition", "print.offset", "print.headers", "print.key")
        }
    )
    out = format_record(
        everything,
        timestamp_type=1,
        timestamp=5,
        partition=2,
        offset=9,
        headers=[("h", None)],
        key=None,
        value=b"v",
    )
    assert out == b"LogAppendTime:5\tPartition:2\tOffset:9\th:null\tnull\tv\n"
    no_value = FormatterConfig.from_properties({"print.key": "true", "print.value": "false"})
    assert (
        format_record(
            no_value, timestamp_type=0, timestamp=-1, partition=0, offset=0, headers=[], key=b"k", value=b"v"
        )
        == b"k"
    )
    stamp = FormatterConfig(print_timestamp=True)
    assert (
        format_record(
            stamp, timestamp_type=0, timestamp=-1, partition=0, offset=0, headers=[], key=None, value=None
        )
        == b"NO_TIMESTAMP\tnull\n"
    )


def test_murmur2_matches_kafkas_utils() -> None:
    # org.apache.kafka.common.utils.UtilsTest.testMurmur2
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, expected in cases.items():
        assert murmur2(data) == expected, data
    assert partition_for_key(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_pretty_table_pads_columns_and_ends_cells_with_a_tab() -> None:
    assert (
        pretty_table(["A", "Long header"], [["value", "x"]]) == "A    \tLong header\t\nvalue\tx          \t\n"
    )


def test_durations_and_datetimes() -> None:
    assert parse_duration("PT1H30M") == 5_400_000
    assert parse_duration("P1DT0.5S") == 86_400_500
    assert parse_duration("-PT2S") == -2000
    for bad in ("P", "PT", "1H", "PT1X"):
        with pytest.raises(CliError, match="cannot be parsed to a Duration"):
            parse_duration(bad)
    assert parse_datetime("2024-01-01T00:00:00.000Z") == 1_704_067_200_000
    assert parse_datetime("2024-01-01T01:00:00+01:00") == 1_704_067_200_000
    with pytest.raises(CliError, match="Error parsing timestamp"):
        parse_datetime("yesterday")


def test_client_properties(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("# comment\n! also\nclient.id = me\nrequest.timeout.ms: 5000\nflag\n")
    assert read_properties(str(config)) == {"client.id": "me", "request.timeout.ms": "5000", "flag": ""}
    assert security_from({"security.protocol": "plaintext"}).protocol == "PLAINTEXT"
    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";'
    sasl = security_from(
        {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas}
    )
    assert sasl.sasl is not None and (sasl.sasl.mechanism, sasl.sasl.username) == ("SCRAM-SHA-512", "u")
    assert "p" not in repr(sasl.sasl).replace("password", "")
    for bad, match in (
        ({"security.protocol": "TLS"}, "Invalid value TLS"),
        ({"security.protocol": "SASL_PLAINTEXT"}, "GSSAPI is not supported"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}, "sasl.jaas.config must be set"),
        (
            {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": "x"},
            "Invalid",
        ),
        (
            {"security.protocol": "SSL", "ssl.truststore.location": "/missing.pem"},
            "Invalid TLS client settings",
        ),
    ):
        with pytest.raises(CliError, match=match):
            security_from(bad)
    with pytest.raises(CliError, match="Could not read the command config"):
        read_properties(str(tmp_path / "missing"))
    assert parse_key_values(["a=1,b=2", "c=x=y"]) == {"a": "1", "b": "2", "c": "x=y"}
    with pytest.raises(CliError, match="Invalid property 'novalue'"):
        parse_key_values(["novalue"])


def test_offsets_table_widths_follow_the_longest_cell() -> None:
    rows = [["g", "a-rather-long-topic-name", "0", "1", "3", "2", "-", "-", "-"]]
    out = format_offsets(rows)
    header, row = out.strip("\n").split("\n")
    assert header.index("PARTITION") == row.index("0 ") == len("GROUP".ljust(15)) + 1 + 24 + 1
    assert header.split() == [
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
    plan = format_reset_plan({"g": {("t", 1): 5, ("t", 0): 4}})
    assert plan.split("\n")[1:3] == [
        f"{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}",
        f"{'g':<30} {'t':<30} {0:<10} {4:<15}",
    ]


def test_describe_filters() -> None:
    class Partition:
        def __init__(self, index: int, leader: int, replicas: list[int], isr: list[int]) -> None:
            self.partition_index, self.leader_id, self.replica_nodes, self.isr_nodes = (
                index,
                leader,
                replicas,
                isr,
            )

    import uuid

    parts = [Partition(0, 1, [1, 2], [1, 2]), Partition(1, 2, [2, 1], [2]), Partition(2, -1, [3, 1], [])]
    flags = {
        "under_replicated_partitions": False,
        "unavailable_partitions": False,
        "topics_with_overrides": False,
    }
    plain = describe_lines("t", uuid.UUID(int=0), parts, [], {1, 2}, argparse.Namespace(**flags))
    assert plain[0] == "Topic: t\tPartitionCount: 3\tReplicationFactor: 2\tConfigs: "  # no TopicId when zero
    assert (
        plain[3]
        == "\tTopic: t\tPartition: 2\tLeader: none\tReplicas: 3,1\tIsr: \tElr: N/A\tLastKnownElr: N/A"
    )
    under = describe_lines(
        "t",
        uuid.UUID(int=1),
        parts,
        [],
        {1, 2},
        argparse.Namespace(**{**flags, "under_replicated_partitions": True}),
    )
    assert [line.split("\t")[2] for line in under] == ["Partition: 1", "Partition: 2"]
    unavailable = describe_lines(
        "t", uuid.UUID(int=1), parts, [], {1}, argparse.Namespace(**{**flags, "unavailable_partitions": True})
    )
    assert [line.split("\t")[2] for line in unavailable] == ["Partition: 1", "Partition: 2"]


def test_the_console_script_points_at_main() -> None:
    import tomllib

    from broker.cli import main as main_module

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["brook"].partition(":")
    assert module == main_module.__name__ and callable(getattr(main_module, function))


@given(
    members=st.dictionaries(
        st.text("abcdef", min_size=1, max_size=4),
        st.sets(st.sampled_from(["t1", "t2", "t3"]), min_size=1),
        min_size=1,
        max_size=6,
    ),
    counts=st.fixed_dictionaries({"t1": st.integers(0, 9), "t2": st.integers(0, 9), "t3": st.integers(0, 9)}),
)
def test_range_assignor_assigns_each_partition_once_evenly(
    members: dict[str, set[str]], counts: dict[str, int]
) -> None:
    from broker.cli.group_member import range_assign

    plan = range_assign({m: sorted(t) for m, t in members.items()}, counts)
    assert set(plan) == set(members)
    for topic, count in counts.items():
        subscribers = sorted(m for m, topics in members.items() if topic in topics)
        owned = [[p for t, p in plan[m] if t == topic] for m in subscribers]
        assert sorted(p for ps in owned for p in ps) == (list(range(count)) if subscribers else [])
        if subscribers:
            sizes = [len(ps) for ps in owned]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
            assert all(ps == list(range(ps[0], ps[0] + len(ps))) for ps in owned if ps)  # contiguous ranges


def test_subscription_and_assignment_round_trip() -> None:
    from broker.cli.group_member import decode_subscription, encode_assignment, encode_subscription
    from broker.cli.offsets import decode_assignment

    assert decode_subscription(encode_subscription(["b", "a"])) == ["a", "b"]
    assert decode_assignment(encode_assignment([("t", 2), ("s", 0), ("t", 1)])) == [
        ("s", 0),
        ("t", 1),
        ("t", 2),
    ]
    assert decode_subscription(b"\x00") == [] and decode_assignment(b"\x00\x01\xff") == []


def test_replica_assignment_as_kafka() -> None:
    from broker.cli.topics import parse_replica_assignment

    assert parse_replica_assignment("1:2, 2:3,3:1") == [[1, 2], [2, 3], [3, 1]]
    with pytest.raises(CliError, match="may not contain duplicate entries: 1"):
        parse_replica_assignment("1:1")
    with pytest.raises(CliError, match=r"Partition 1 has different replication factor: \[2\]"):
        parse_replica_assignment("1:2,2")
