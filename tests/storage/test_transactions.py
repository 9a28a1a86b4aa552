"""Transactions on the partition side: open transactions in the producer state, the first unstable
offset and LSO, markers, the ``.txnindex`` (Kafka's format), reload, recovery and truncation."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records.batch import iter_batches
from storage.cleaner import Cleaner
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log
from storage.producer_state import CoordinatorFenced, InvalidProducerEpoch, InvalidTxnState
from storage.txn_index import (
    ENTRY_SIZE,
    AbortedTxn,
    collect_overlapping,
    decode_entries,
    encode_entry,
)
from tests.storage.batches import make_batch
from tests.storage.conftest import OpenLog

TXN = 0x10
SMALL_SEGMENTS = LogConfig(segment_bytes=400, file_delete_delay_ms=0)


def append_txn(
    log: Log, pid: int, seq: int, count: int = 2, epoch: int = 0, transactional: bool = True
) -> int:
    """A client batch as the partition appends it (append, then the producer state); its offset."""
    data = make_batch(
        [(b"k%d" % i, b"v%d" % i) for i in range(count)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        attributes=TXN if transactional else 0,
    )
    ((_, header),) = list(iter_batches(data))
    log.producer_state.check(header)
    info = log.append(data, 0)
    ((_, header),) = list(iter_batches(data))
    log.producer_state.update(header, info.first_offset)
    return info.first_offset


def marker(log: Log, pid: int, committed: bool, epoch: int = 0, coordinator_epoch: int = 0) -> int:
    return log.append_txn_marker(pid, epoch, coordinator_epoch, committed, 0).first_offset


def advance_hw(log: Log) -> None:
    log.high_watermark = log.log_end_offset


# -- the index file -----------------------------------------------------------------------------


def test_entry_layout_is_kafkas() -> None:
    raw = encode_entry(AbortedTxn(7, 10, 20, 21))
    assert len(raw) == ENTRY_SIZE == 34
    assert raw == struct.pack(">hqqqq", 0, 7, 10, 20, 21)


entries = st.builds(
    AbortedTxn,
    st.integers(0, 2**40),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)


@given(st.lists(entries, max_size=20), st.integers(0, 40))
def test_entries_round_trip_and_torn_tail_is_dropped(txns: list[AbortedTxn], cut: int) -> None:
    raw = b"".join(encode_entry(t) for t in txns)
    assert decode_entries(raw) == txns
    if txns:
        assert decode_entries(raw[: len(raw) - 1 - cut % ENTRY_SIZE]) == txns[:-1]


@given(st.lists(entries, max_size=20), st.integers(0, 10_000), st.integers(0, 10_000))
def test_collect_is_the_overlap_up_to_the_first_complete_entry(
    txns: list[AbortedTxn], start: int, upper: int
) -> None:
    found, complete = collect_overlapping(txns, start, upper)
    stop = next((i for i, t in enumerate(txns) if t.last_stable_offset >= upper), None)
    scanned = txns if stop is None else txns[: stop + 1]
    assert found == [t for t in scanned if t.last_offset >= start and t.first_offset < upper]
    assert complete == (stop is not None)


# -- the log ------------------------------------------------------------------------------------


def test_open_transaction_holds_the_lso_until_its_marker_is_replicated(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0, transactional=False)  # offsets 0-1, idempotent only
    advance_hw(log)
    assert log.last_stable_offset == 2 and log.first_unstable_offset is None
    first = append_txn(log, 2, 0)  # 2-3
    append_txn(log, 2, 2)  # 4-5, same transaction
    advance_hw(log)
    assert log.first_unstable_offset == first == 2
    assert log.last_stable_offset == 2
    at = marker(log, 2, committed=True)
    assert at == 6
    # The marker is written but not replicated: still unstable (Kafka's unreplicatedTxns).
    assert log.last_stable_offset == 2
    advance_hw(log)
    assert log.first_unstable_offset is None and log.last_stable_offset == 7
    assert log.collect_aborted_transactions(0, 7) == []


def test_abort_is_indexed_with_the_lso_after_it(open_log: OpenLog, tmp_path: Path) -> None:
    log = open_log()
    a = append_txn(log, 1, 0)  # 0-1
    b = append_txn(log, 2, 0)  # 2-3
    abort_a = marker(log, 1, committed=False)  # 4: B still open -> LSO 2
    abort_b = marker(log, 2, committed=False)  # 5: nothing open -> LSO 6
    assert log.collect_aborted_transactions(0, 6) == [
        AbortedTxn(1, a, abort_a, b),
        AbortedTxn(2, b, abort_b, abort_b + 1),
    ]
    raw = (tmp_path / "t-0" / "00000000000000000000.txnindex").read_bytes()
    assert raw == struct.pack(">hqqqq", 0, 1, 0, 4, 2) + struct.pack(">hqqqq", 0, 2, 2, 5, 6)
    # Only what overlaps the range; the search stops at an entry whose LSO reaches the bound.
    assert log.collect_aborted_transactions(4, 6) == [AbortedTxn(1, 0, 4, 2), AbortedTxn(2, 2, 5, 6)]
    assert log.collect_aborted_transactions(0, 2) == [AbortedTxn(1, 0, 4, 2)]


def test_markers_are_fenced(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0, epoch=3)
    marker(log, 1, committed=True, epoch=3, coordinator_epoch=5)
    end = log.log_end_offset
    with pytest.raises(InvalidProducerEpoch):
        marker(log, 1, committed=False, epoch=2, coordinator_epoch=5)
    with pytest.raises(CoordinatorFenced):
        marker(log, 1, committed=False, epoch=3, coordinator_epoch=4)
    assert log.log_end_offset == end
    # A marker for a producer the partition never saw is written (Kafka accepts it).
    marker(log, 99, committed=False)
    assert log.log_end_offset == end + 1
    assert log.collect_aborted_transactions(0, end + 1) == []  # nothing was open


def test_non_transactional_write_inside_a_transaction_is_refused(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0)
    with pytest.raises(InvalidTxnState):
        append_txn(log, 1, 2, transactional=False)


def test_reopen_restores_open_transactions_from_the_snapshot(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0)
    first = append_txn(log, 2, 0)
    marker(log, 1, committed=False, coordinator_epoch=7)
    log.close()
    again = open_log(had_clean_shutdown=True, high_watermark=log.log_end_offset)
    assert again.producer_state.batches_replayed == 0
    assert again.first_unstable_offset == first
    assert again.producer_state.producers[1].coordinator_epoch == 7
    assert again.collect_aborted_transactions(0, 100) == [AbortedTxn(1, 0, 4, 2)]


def test_truncation_below_a_marker_reopens_its_transaction(open_log: OpenLog) -> None:
    log = open_log()
    first = append_txn(log, 1, 0)
    at = marker(log, 1, committed=False)
    advance_hw(log)
    assert log.collect_aborted_transactions(0, 100) != []
    log.truncate_to(at)
    assert log.collect_aborted_transactions(0, 100) == []
    assert log.first_unstable_offset == first
    assert log.last_stable_offset == first


def test_follower_appends_track_the_same_state(open_log: OpenLog) -> None:
    leader = open_log(SMALL_SEGMENTS)
    for i in range(4):
        append_txn(leader, 1, i * 2)
        append_txn(leader, 2, i * 2)
        marker(leader, 1, committed=i % 2 == 0)
        if i % 3 == 0:
            marker(leader, 2, committed=False)
    data = b"".join(leader.read_bytes(seg.base_offset, 1 << 20) for seg in leader.segments())
    follower = open_log(SMALL_SEGMENTS, name="f-0")
    follower.append_as_follower(data)
    assert follower.log_end_offset == leader.log_end_offset
    assert follower.first_unstable_offset == leader.first_unstable_offset
    end = leader.log_end_offset
    assert follower.collect_aborted_transactions(0, end) == leader.collect_aborted_transactions(0, end)
    assert leader.collect_aborted_transactions(0, end)


# -- a model of the state, against random histories ---------------------------------------------


@dataclass
class Model:
    open: dict[int, int] = field(default_factory=dict)  # pid -> first offset
    unreplicated: dict[int, int] = field(default_factory=dict)  # first offset -> marker offset
    aborted: list[AbortedTxn] = field(default_factory=list)

    def first_unstable(self) -> int | None:
        firsts = list(self.open.values()) + list(self.unreplicated)
        return min(firsts) if firsts else None


ops = st.lists(
    st.tuples(st.sampled_from(["data", "commit", "abort", "hw", "plain"]), st.integers(1, 3)),
    min_size=1,
    max_size=40,
)


def run_history(log: Log, history: list[tuple[str, int]]) -> Model:
    model = Model()
    seqs = dict.fromkeys(range(1, 8), 0)
    for op, pid in history:
        if op == "data":
            offset = append_txn(log, pid, seqs[pid])
            seqs[pid] += 2
            model.open.setdefault(pid, offset)
        elif op == "plain":
            pid += 4  # producers that never use transactions
            append_txn(log, pid, seqs[pid], transactional=False)
            seqs[pid] += 2
        elif op in ("commit", "abort"):
            at = marker(log, pid, committed=op == "commit")
            first = model.open.pop(pid, None)
            if first is not None:
                model.unreplicated[first] = at
                if op == "abort":
                    lso = min(model.open.values(), default=at + 1)
                    model.aborted.append(AbortedTxn(pid, first, at, lso))
        else:
            advance_hw(log)
            model.unreplicated = {f: m for f, m in model.unreplicated.items() if m >= log.high_watermark}
        assert log.first_unstable_offset == model.first_unstable()
        fuo = model.first_unstable()
        assert log.last_stable_offset == (
            fuo if fuo is not None and fuo < log.high_watermark else log.high_watermark
        )
    return model


@settings(max_examples=40, deadline=None)
@given(ops)
def test_random_histories_match_the_model_and_survive_a_crash(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int]]
) -> None:
    directory = tmp_path_factory.mktemp("txn") / "t-0"
    clock = ManualClock(1_700_000_000_000)
    log = Log.open(directory, SMALL_SEGMENTS, clock=clock)
    model = run_history(log, history)
    end = log.log_end_offset
    assert log.collect_aborted_transactions(0, end) == model.aborted
    # A crash: nothing flushed or snapshotted at the end; recovery from offset 0 rebuilds the
    # .txnindex of every segment and the open transactions.
    log.abandon()
    again = Log.open(directory, SMALL_SEGMENTS, clock=clock, recovery_point=0)
    try:
        assert again.log_end_offset == end
        assert again.collect_aborted_transactions(0, end) == model.aborted
        assert again.producer_state.ongoing_transactions() == {f: p for p, f in model.open.items()}
    finally:
        again.close()


def test_cleaning_keeps_the_aborted_transactions_of_the_cleaned_segments(
    open_log: OpenLog, clock: ManualClock
) -> None:
    compact = LogConfig(
        segment_bytes=400, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0, file_delete_delay_ms=0
    )
    log = open_log(compact)
    expected: list[AbortedTxn] = []
    for i in range(6):
        first = append_txn(log, 1, i * 2)
        at = marker(log, 1, committed=i % 2 == 1)
        if i % 2 == 0:
            expected.append(AbortedTxn(1, first, at, at + 1))
    for i in range(6):  # plain records, so that the segments holding the transactions roll
        append_txn(log, 2, i * 2, transactional=False)
    advance_hw(log)
    assert log.segment_count > 2
    before = log.collect_aborted_transactions(0, log.log_end_offset)
    assert before == expected
    stats = Cleaner().clean(log, clock.milliseconds())
    assert stats is not None
    assert log.collect_aborted_transactions(0, log.log_end_offset) == expected
    # And from the files, after a reopen.
    log.close()
    again = open_log(compact, had_clean_shutdown=True, high_watermark=log.log_end_offset)
    assert again.collect_aborted_transactions(0, again.log_end_offset) == expected


def test_first_unstable_offset_is_never_below_the_log_start(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0)  # 0-1, left open
    append_txn(log, 2, 0, transactional=False)  # 2-3
    advance_hw(log)
    assert log.last_stable_offset == 0
    log.delete_records_before(3)
    assert log.first_unstable_offset == log.last_stable_offset == 3
