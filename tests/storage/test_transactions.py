"""Transactions on the partition side: open transactions in the producer state, the first unstable
offset and LSO, markers, the ``.txnindex`` (Kafka's format), reload, recovery and truncation."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records.batch import BatchHeader, iter_batches
from protocol.records.record import Record, decode_batch
from storage.cleaner import Cleaner
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.dump import dump_path
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


COMPACT = LogConfig(
    segment_bytes=400,
    cleanup_policy="compact",
    min_cleanable_dirty_ratio=0.0,
    file_delete_delay_ms=0,
    delete_retention_ms=1000,
)


def batches_of(log: Log) -> list[tuple[BatchHeader, list[Record]]]:
    out = []
    for seg in log.segments():
        data = seg.pread(seg.size, 0)
        for pos, _ in iter_batches(data):
            out.append(decode_batch(data, pos))
    return out


def read_committed(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    """What a read_committed consumer gets from offset 0, with the fetch's aborted transactions
    (the consumer's algorithm, written independently of the cleaner's)."""
    lso = log.last_stable_offset
    aborted = sorted(log.collect_aborted_transactions(0, lso), key=lambda t: t.first_offset)
    active: set[int] = set()
    out = []
    for header, records in batches_of(log):
        if header.base_offset >= lso:
            break
        while aborted and aborted[0].first_offset <= header.base_offset + header.last_offset_delta:
            active.add(aborted.pop(0).producer_id)
        if header.is_control:
            if records and records[0].key is not None and records[0].key[2:4] == b"\x00\x00":  # ABORT
                active.discard(header.producer_id)
            continue
        if header.is_transactional and header.producer_id in active:
            continue
        out.extend((header.base_offset + r.offset_delta, r.key, r.value) for r in records)
    return out


def compacted(records: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes | None, bytes]:
    latest: dict[bytes | None, bytes | None] = {}
    for _, key, value in records:
        latest[key] = value
    return {k: v for k, v in latest.items() if v is not None}


def append_keyed(
    log: Log, pid: int, seq: int, pairs: list[tuple[bytes, bytes | None]], transactional: bool
) -> None:
    data = make_batch(
        pairs, producer_id=pid, producer_epoch=0, base_sequence=seq, attributes=TXN if transactional else 0
    )
    info = log.append(data, 0)
    ((_, header),) = list(iter_batches(data))
    log.producer_state.update(header, info.first_offset)


def test_cleaning_drops_aborted_records_then_markers_after_their_horizon(
    open_log: OpenLog, clock: ManualClock
) -> None:
    log = open_log(COMPACT)
    append_keyed(log, 1, 0, [(b"a", b"aborted")], transactional=True)  # 0
    append_keyed(log, 2, 0, [(b"b", b"committed")], transactional=True)  # 1
    marker(log, 1, committed=False)  # 2
    marker(log, 2, committed=True)  # 3
    append_keyed(log, 1, 1, [(b"a", b"later")], transactional=True)  # 4: producer 1 goes on
    marker(log, 1, committed=True)  # 5
    for i in range(12):  # plain records after them, so that their segments can be cleaned
        append_keyed(log, 3, i, [(b"c", b"%d" % i)], transactional=False)
    advance_hw(log)
    view = read_committed(log)
    assert (0, b"a", b"aborted") not in view and (1, b"b", b"committed") in view

    def offsets() -> list[int]:
        return [h.base_offset for h, _ in batches_of(log)]

    assert Cleaner().clean(log, clock.milliseconds()) is not None
    # The aborted record is gone; its marker stays (records of it were read in this pass), indexed.
    assert 0 not in offsets() and {1, 2, 3} <= set(offsets())
    assert log.collect_aborted_transactions(0, 4) == [AbortedTxn(1, 0, 2, 1)]  # B still open then
    assert compacted(read_committed(log)) == compacted(view)
    # Next pass: no record of A's transaction is left, so its marker gets a delete horizon.
    assert Cleaner().clean(log, clock.milliseconds(), force=True) is not None
    headers = {h.base_offset: h for h, _ in batches_of(log)}
    assert headers[2].has_delete_horizon and headers[2].base_timestamp == clock.now_ms + 1000
    assert not headers[3].has_delete_horizon  # B's record is still there
    assert log.collect_aborted_transactions(0, 4) == []
    clock.advance(1001)
    assert Cleaner().clean(log, clock.milliseconds()) is not None
    # A's marker went after its horizon; B's stays with B's record.
    assert [o for o in offsets() if o < 4] == [1, 3]
    assert compacted(read_committed(log)) == compacted(view)


histories = st.lists(
    st.tuples(
        st.sampled_from(["txn", "commit", "abort", "plain"]),
        st.integers(1, 3),
        st.sampled_from([b"k0", b"k1", b"k2", b"k3"]),
        st.one_of(st.none(), st.sampled_from([b"x", b"y", b"z"])),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(histories)
def test_cleaning_keeps_what_read_committed_consumers_see(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int, bytes, bytes | None]]
) -> None:
    directory = tmp_path_factory.mktemp("clean") / "t-0"
    clock = ManualClock(1_700_000_000_000)
    log = Log.open(directory, COMPACT, clock=clock)
    try:
        seqs = dict.fromkeys(range(1, 8), 0)
        open_txns: set[int] = set()
        for op, pid, key, value in history:
            if op == "txn":
                append_keyed(log, pid, seqs[pid], [(key, value)], transactional=True)
                open_txns.add(pid)
                seqs[pid] += 1
            elif op == "plain":
                append_keyed(log, pid + 4, seqs[pid + 4], [(key, value)], transactional=False)
                seqs[pid + 4] += 1
            else:
                marker(log, pid, committed=op == "commit")
                open_txns.discard(pid)
        for i in range(8):  # roll past the history, so that it can be cleaned
            append_keyed(log, 7, i, [(b"filler", b"%d" % i)], transactional=False)
        advance_hw(log)
        lso = log.last_stable_offset
        view = compacted(read_committed(log))

        def past_lso() -> list[tuple[int, int, bool, list[tuple[int, bytes | None, bytes | None]]]]:
            # What the batches hold (a tombstone's batch may get a delete horizon, as in Kafka).
            return [
                (
                    h.base_offset,
                    h.producer_id,
                    h.is_transactional,
                    [(r.offset_delta, r.key, r.value) for r in recs],
                )
                for h, recs in batches_of(log)
                if h.base_offset >= lso
            ]

        unstable = past_lso()
        for _ in range(3):
            Cleaner().clean(log, clock.milliseconds(), force=True)
            assert compacted(read_committed(log)) == view
            assert log.last_stable_offset == lso
            # Nothing at or past the LSO is touched (undecided transactions).
            assert past_lso() == unstable
            clock.advance(1001)
    finally:
        log.close()


def test_first_unstable_offset_is_never_below_the_log_start(open_log: OpenLog) -> None:
    log = open_log()
    append_txn(log, 1, 0)  # 0-1, left open
    append_txn(log, 2, 0, transactional=False)  # 2-3
    advance_hw(log)
    assert log.last_stable_offset == 0
    log.delete_records_before(3)
    assert log.first_unstable_offset == log.last_stable_offset == 3


def test_dump_prints_markers_and_the_txnindex(open_log: OpenLog, tmp_path: Path) -> None:
    log = open_log()
    append_txn(log, 9, 0)
    marker(log, 9, committed=False, coordinator_epoch=4)
    out = io.StringIO()
    assert dump_path(tmp_path / "t-0", out, deep=True) == 0
    text = out.getvalue()
    assert "| endTxnMarker: ABORT coordinatorEpoch: 4" in text
    assert "version: 0 producerId: 9 firstOffset: 0 lastOffset: 2 lastStableOffset: 3" in text
