"""Transactional offset commits in a group's state and in the replay of ``__consumer_offsets``:
pending per producer until the marker, COMMIT shows them unless a later batch wrote the
partition, ABORT drops them; the replay of any interleaving gives what the live path gave."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.group.group import ClassicGroup, CommittedOffset
from broker.group.loader import build_groups, replay
from broker.group.records import (
    OffsetAndMetadata,
    TxnProducer,
    build_records,
    offset_commit_key,
    offset_commit_value,
)
from broker.group.state import GroupState
from protocol.records import ABORT, COMMIT, build_control_batch, iter_batches, set_base_offset

G = "grp"
TP0 = ("t", 0)
TP1 = ("t", 1)


def om(offset: int) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, commit_timestamp=1)


def group() -> ClassicGroup:
    return ClassicGroup(G, GroupState.EMPTY, 0)


def txn_commit(g: ClassicGroup, producer_id: int, at: int, offsets: dict[tuple[str, int], int]) -> None:
    values = {tp: om(o) for tp, o in offsets.items()}
    g.prepare_txn_offset_commit(producer_id, values)
    for tp, value in values.items():
        g.on_txn_offset_commit_appended(producer_id, tp, CommittedOffset(at, value))


def plain_commit(g: ClassicGroup, at: int, offsets: dict[tuple[str, int], int]) -> None:
    values = {tp: om(o) for tp, o in offsets.items()}
    g.prepare_offset_commit(values)
    for tp, value in values.items():
        g.on_offset_commit_appended(tp, CommittedOffset(at, value))


def visible(g: ClassicGroup) -> dict[tuple[str, int], int]:
    return {tp: entry.value.offset for tp, entry in g.offsets.items()}


# -- the group's state ------------------------------------------------------------------------------


def test_a_transactional_commit_is_pending_until_its_commit_marker() -> None:
    g = group()
    txn_commit(g, 7, 10, {TP0: 5, TP1: 6})
    assert visible(g) == {}
    assert g.has_pending_offset_commits_for(TP0) and g.has_pending_offset_commits_from(7)
    assert g.has_offsets() and g.active_producers == {7}
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert visible(g) == {TP0: 5, TP1: 6}
    assert not g.has_pending_offset_commits_for(TP0) and g.active_producers == set()


def test_an_abort_marker_drops_the_pending_offsets() -> None:
    g = group()
    plain_commit(g, 3, {TP0: 1})
    txn_commit(g, 7, 10, {TP0: 5})
    g.complete_pending_txn_offset_commit(7, committed=False)
    assert visible(g) == {TP0: 1}
    assert not g.has_pending_offset_commits_for(TP0)


def test_a_marker_of_another_producer_leaves_the_pending_offsets() -> None:
    g = group()
    txn_commit(g, 7, 10, {TP0: 5})
    g.complete_pending_txn_offset_commit(8, committed=True)
    assert visible(g) == {} and g.has_pending_offset_commits_from(7)


def test_a_plain_commit_from_a_later_batch_wins_over_a_committed_transaction() -> None:
    g = group()
    txn_commit(g, 7, 10, {TP0: 5})
    plain_commit(g, 20, {TP0: 9})
    assert visible(g) == {TP0: 9}
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert visible(g) == {TP0: 9}  # the transaction's batch (offset 10) is older


def test_a_transaction_written_after_a_plain_commit_wins_on_commit() -> None:
    g = group()
    plain_commit(g, 10, {TP0: 9})
    txn_commit(g, 7, 20, {TP0: 5})
    assert visible(g) == {TP0: 9}
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert visible(g) == {TP0: 5}


def test_a_failed_append_forgets_the_staged_offsets() -> None:
    g = group()
    g.prepare_txn_offset_commit(7, {TP0: om(5)})
    assert g.has_pending_offset_commits_for(TP0)
    g.fail_pending_txn_offset_commit(7, TP0)
    assert not g.has_pending_offset_commits_from(7) and not g.has_offsets()


def test_a_commit_marker_skips_an_offset_whose_append_never_completed() -> None:
    g = group()
    g.prepare_txn_offset_commit(7, {TP0: om(5)})
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert visible(g) == {}


def test_a_later_commit_of_the_same_producer_replaces_its_staged_offset() -> None:
    g = group()
    txn_commit(g, 7, 10, {TP0: 5})
    txn_commit(g, 7, 12, {TP0: 6})
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert g.offsets[TP0] == CommittedOffset(12, om(6))


def test_removing_offsets_removes_pending_transactional_ones() -> None:
    g = group()
    txn_commit(g, 7, 10, {TP0: 5, TP1: 6})
    g.remove_offsets([TP0])
    g.complete_pending_txn_offset_commit(7, committed=True)
    assert visible(g) == {TP1: 6}


# -- replay against the live path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plain:
    offsets: dict[tuple[str, int], int]


@dataclass(frozen=True)
class Txn:
    producer_id: int
    offsets: dict[tuple[str, int], int]


@dataclass(frozen=True)
class Marker:
    producer_id: int
    committed: bool


PARTITIONS = st.sampled_from([TP0, TP1, ("u", 0)])
OFFSETS = st.dictionaries(PARTITIONS, st.integers(0, 1000), min_size=1, max_size=3)
PRODUCERS = st.integers(1, 3)
OPS = st.lists(
    st.one_of(
        st.builds(Plain, OFFSETS),
        st.builds(Txn, PRODUCERS, OFFSETS),
        st.builds(Marker, PRODUCERS, st.booleans()),
    ),
    max_size=25,
)


class MemoryLog:
    """What :func:`replay` reads of a log: batches at consecutive offsets, read in chunks."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, bytes]] = []
        self.log_start_offset = 0
        self.log_end_offset = 0

    def append(self, batch: bytes | bytearray, records: int) -> int:
        data = bytearray(batch)
        set_base_offset(data, 0, self.log_end_offset)
        base = self.log_end_offset
        self.batches.append((base, bytes(data)))
        self.log_end_offset += records
        return base

    def read_bytes(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        max_offset = self.log_end_offset if max_offset is None else max_offset
        out = b""
        for base, data in self.batches:
            if base < offset or base >= max_offset:
                continue
            if out and len(out) + len(data) > max_bytes:
                break
            out += data
        return out


def _marker(kind: int, producer_id: int) -> bytes:
    return build_control_batch(
        kind, coordinator_epoch=0, producer_id=producer_id, producer_epoch=0, timestamp=1
    )


def live_and_log(ops: list[Plain | Txn | Marker]) -> tuple[ClassicGroup, MemoryLog]:
    """Apply ``ops`` to a group as the coordinator does and write them as it writes them."""
    g = group()
    log_ = MemoryLog()
    for op in ops:
        if isinstance(op, Marker):
            # a marker for a producer with nothing on this partition is still written (another
            # partition of its transaction); it must change nothing here either
            log_.append(_marker(COMMIT if op.committed else ABORT, op.producer_id), 1)
            g.complete_pending_txn_offset_commit(op.producer_id, op.committed)
            continue
        entries = [(offset_commit_key(G, *tp), offset_commit_value(om(o))) for tp, o in op.offsets.items()]
        txn = TxnProducer(op.producer_id, 0) if isinstance(op, Txn) else None
        base = log_.append(build_records(entries, 1, txn=txn), len(entries))
        if isinstance(op, Txn):
            txn_commit(g, op.producer_id, base, op.offsets)
        else:
            plain_commit(g, base, op.offsets)
    return g, log_


def pending(g: ClassicGroup) -> dict[int, dict[tuple[str, int], CommittedOffset]]:
    return {pid: staged for pid, staged in g.pending_txn_offset_commits.items() if staged}


@settings(max_examples=150, deadline=None)
@given(ops=OPS, buffer_size=st.sampled_from([1, 200, 1 << 20]))
def test_any_interleaving_replays_to_what_the_live_path_shows(
    ops: list[Plain | Txn | Marker], buffer_size: int
) -> None:
    live, log_ = live_and_log(ops)
    state = asyncio.run(replay(log_, buffer_size))  # type: ignore[arg-type]
    loaded = build_groups(state, 0)
    if not live.has_offsets():
        assert loaded == []
        return
    (replayed,) = loaded
    assert replayed.offsets == live.offsets
    assert pending(replayed) == pending(live)
    # and a marker after the load completes what is still open, as on the live path
    for producer_id in list(live.active_producers):
        live.complete_pending_txn_offset_commit(producer_id, True)
        replayed.complete_pending_txn_offset_commit(producer_id, True)
    assert replayed.offsets == live.offsets


def test_control_batches_are_recognised_by_their_attributes_and_key() -> None:
    log_ = MemoryLog()
    key = offset_commit_key(G, *TP0)
    log_.append(build_records([(key, offset_commit_value(om(5)))], 1, txn=TxnProducer(7, 0)), 1)
    log_.append(build_records([(key, offset_commit_value(om(8)))], 1, txn=TxnProducer(8, 0)), 1)
    log_.append(_marker(ABORT, 7), 1)
    (header,) = [h for _, h in iter_batches(log_.batches[0][1])]
    assert header.is_transactional and header.producer_id == 7 and header.base_sequence == -1
    state = asyncio.run(replay(log_, 1 << 20))  # type: ignore[arg-type]
    assert state.offsets == {}
    assert state.pending_txn == {8: {(G, *TP0): CommittedOffset(1, om(8))}}
    (g,) = build_groups(state, 0)
    assert g.state is GroupState.EMPTY and g.active_producers == {8}
