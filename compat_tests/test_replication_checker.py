"""The fault tests' checker can fail: a lost, duplicated, reordered or moved record in synthetic
data is caught and counted, and a faithful read-back of any acknowledged history passes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compat_tests.replication_checker import Acked, check, make_value, parse_value

RUN = "r1"


def _history(counts: list[int]) -> tuple[list[Acked], dict[int, list[tuple[int, bytes | None]]]]:
    """Every write acknowledged and read back exactly where it was acknowledged."""
    acked = [Acked(p, o, make_value(RUN, p, o)) for p, n in enumerate(counts) for o in range(n)]
    read: dict[int, list[tuple[int, bytes | None]]] = {p: [] for p in range(len(counts))}
    for a in acked:
        read[a.partition].append((a.offset, a.value))
    return acked, read


def test_values_round_trip() -> None:
    assert parse_value(RUN, make_value(RUN, 4, 17)) == (4, 17)
    assert parse_value(RUN, make_value("other", 4, 17)) is None
    assert parse_value(RUN, None) is None
    assert parse_value(RUN, b"\xff\xfe") is None


@given(st.lists(st.integers(0, 30), min_size=1, max_size=4))
def test_a_faithful_read_back_passes(counts: list[int]) -> None:
    acked, read = _history(counts)
    report = check(RUN, acked, read)
    assert report.ok, report
    assert report.acknowledged == report.read == sum(counts)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=4), st.data())
def test_a_lost_record_is_caught(counts: list[int], data: st.DataObject) -> None:
    acked, read = _history(counts)
    partition = data.draw(st.integers(0, len(counts) - 1))
    index = data.draw(st.integers(0, counts[partition] - 1))
    del read[partition][index]
    report = check(RUN, acked, read)
    assert (report.lost, report.duplicated, report.reordered) == (1, 0, 0), report
    assert not report.ok


@given(st.lists(st.integers(1, 30), min_size=1, max_size=4), st.data())
def test_a_duplicated_record_is_caught(counts: list[int], data: st.DataObject) -> None:
    acked, read = _history(counts)
    partition = data.draw(st.integers(0, len(counts) - 1))
    records = read[partition]
    index = data.draw(st.integers(0, len(records) - 1))
    # the copy appended at the log end, as a producer retry that was not deduplicated would be
    records.append((len(records), records[index][1]))
    report = check(RUN, acked, read)
    assert report.duplicated == 1 and report.lost == 0, report
    assert not report.ok


@given(st.lists(st.integers(2, 30), min_size=1, max_size=4), st.data())
def test_a_reordered_record_is_caught(counts: list[int], data: st.DataObject) -> None:
    acked, read = _history(counts)
    partition = data.draw(st.integers(0, len(counts) - 1))
    records = read[partition]
    index = data.draw(st.integers(0, len(records) - 2))
    (o1, v1), (o2, v2) = records[index], records[index + 1]
    records[index], records[index + 1] = (o1, v2), (o2, v1)  # values swapped, offsets kept
    report = check(RUN, acked, read)
    assert report.reordered >= 1 and report.lost == 0 and report.duplicated == 0, report
    assert report.moved == 2, report  # each was acknowledged at the other's offset


def test_unacknowledged_and_foreign_records_are_allowed_once() -> None:
    acked, read = _history([3])
    read[0].append((3, make_value(RUN, 0, 3)))  # written, its answer lost: fine
    read[0].append((4, make_value("someone-else", 0, 0)))
    read[0].append((5, None))
    report = check(RUN, acked, read)
    assert report.ok and report.read == 4, report
    read[0].append((6, make_value(RUN, 0, 3)))  # but never twice
    assert check(RUN, acked, read).duplicated == 1


def test_a_record_acknowledged_in_another_partition_is_lost() -> None:
    acked, read = _history([2, 2])
    read[1].append((2, read[0].pop()[1]))
    report = check(RUN, acked, read)
    assert report.lost == 1, report
