"""The pure parts of ``brook reassign-partitions``: the reassignment JSON (Kafka's format, both
ways), the argument checks, and which replicas a throttle names (Kafka's move map)."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.cli.client import CliError
from broker.cli.main import build_parser
from broker.cli.reassign import _check_targets, _moves, _validate, format_reassignment, parse_reassignment

assignments = st.dictionaries(
    st.tuples(st.sampled_from(["a", "b", "t.x"]), st.integers(0, 20)),
    st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True),
    min_size=1,
    max_size=10,
)


@given(assignments, st.data())
def test_the_json_round_trips(assignment: dict[tuple[str, int], list[int]], data: st.DataObject) -> None:
    dirs = {
        (t, p, r): data.draw(st.sampled_from(["/d1", "/d2"]))
        for (t, p), replicas in assignment.items()
        for r in replicas
        if data.draw(st.booleans())
    }
    text = format_reassignment(assignment, dirs)
    assert " " not in text  # compact, as Kafka's Json.encodeAsString
    targets, parsed_dirs = parse_reassignment(json.loads(text))
    assert dict(targets) == assignment and parsed_dirs == dirs
    assert [p for p, _ in targets] == sorted(assignment)


def test_log_dirs_must_match_the_replicas() -> None:
    with pytest.raises(
        CliError, match=r"Size of replicas list \[1, 2\] is different from size of log dirs list"
    ):
        parse_reassignment(
            {"partitions": [{"topic": "t", "partition": 0, "replicas": [1, 2], "log_dirs": ["any"]}]}
        )
    with pytest.raises(CliError, match="Not supported version field value 2"):
        parse_reassignment({"version": 2, "partitions": []})


def test_target_checks_word_errors_as_kafka() -> None:
    with pytest.raises(CliError, match=r"^Error: Partition reassignment list cannot be empty$"):
        _check_targets([])
    with pytest.raises(CliError, match=r"^Error: Partition replica list cannot be empty$"):
        _check_targets([(("t", 0), [])])
    with pytest.raises(CliError, match=r"duplicate topic partitions: t-0$"):
        _check_targets([(("t", 0), [1]), (("t", 0), [2])])
    with pytest.raises(
        CliError, match=r"t-0 contains multiple entries for 1. u-1 contains multiple entries for 2,3$"
    ):
        _check_targets([(("t", 0), [1, 1]), (("u", 1), [2, 3, 3, 2])])


def test_a_throttle_names_the_sources_and_the_new_replicas() -> None:
    current = {("t", 0): [1, 2], ("t", 1): [2, 3]}
    proposed = {("t", 0): [3, 4], ("t", 1): [2, 4]}
    # t-2 is being reassigned already: its sources are its replicas less those being added.
    ongoing = {("t", 2): ([5, 6, 1], [5, 6], [1])}
    moves = _moves(ongoing, proposed, current)
    assert moves == {
        ("t", 0): ({1, 2}, {3, 4}),
        ("t", 1): ({2, 3}, {4}),
        ("t", 2): ({1}, {5, 6}),
    }
    with pytest.raises(CliError, match="with 0 replicas"):
        _moves({}, {("gone", 0): [1]}, {})


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["reassign-partitions", "--bootstrap-server", "h:1", *argv])


def test_actions_and_their_options() -> None:
    with pytest.raises(
        CliError, match="exactly one action: --generate, --execute, --verify, --cancel, --list"
    ):
        _validate(parse("--list", "--verify"))
    with pytest.raises(CliError, match=r'Missing required argument "\[reassignment-json-file\]"'):
        _validate(parse("--execute"))
    with pytest.raises(CliError, match=r'Option "\[throttle\]" can\'t be used with action "\[verify\]"'):
        _validate(parse("--verify", "--reassignment-json-file", "f", "--throttle", "5"))
    args = parse("--execute", "--reassignment-json-file", "f")
    assert _validate(args) == "execute"
    assert (args.throttle, args.replica_alter_log_dirs_throttle, args.timeout) == (-1, -1, 10_000)
