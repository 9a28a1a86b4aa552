"""KIP-890 verification state in the producer state (Kafka's VerificationStateEntry and
VerificationGuard): the guard is created when a verification starts, presented at the append,
cleared by the first transactional append or a marker; a stale or sentinel guard is
INVALID_TXN_STATE unless the transaction is already open."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records import Record, build_batch
from protocol.records.batch import BatchHeader, read_header
from protocol.records.record import ABORT, COMMIT, build_control_batch
from storage.producer_state import (
    SENTINEL_GUARD,
    InvalidTxnState,
    OutOfOrderSequence,
    ProducerStateManager,
    TxnMarker,
    VerificationGuard,
)

PID = 7
TS = 1_700_000_000_000


def txn_header(seq: int, *, epoch: int = 0, count: int = 1, transactional: bool = True) -> BatchHeader:
    data = build_batch(
        [Record(i, 0, None, b"v") for i in range(count)],
        base_timestamp=TS,
        producer_id=PID,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=transactional,
    )
    return read_header(data, 0)


def marker_header(committed: bool, epoch: int = 0) -> BatchHeader:
    data = build_control_batch(
        COMMIT if committed else ABORT,
        coordinator_epoch=0,
        producer_id=PID,
        producer_epoch=epoch,
        timestamp=TS,
    )
    return read_header(data, 0)


def end_txn(state: ProducerStateManager, offset: int, committed: bool = False) -> None:
    state.update(marker_header(committed), offset, TxnMarker(committed, 0))


def test_guards_are_unique_and_the_sentinel_verifies_nothing() -> None:
    a, b = VerificationGuard(), VerificationGuard()
    assert a.verify(a) and not a.verify(b)
    assert not a.verify(SENTINEL_GUARD)
    assert not SENTINEL_GUARD.verify(SENTINEL_GUARD)


def test_an_append_with_the_verification_guard_opens_the_transaction_and_clears_it() -> None:
    state = ProducerStateManager()
    guard = state.maybe_start_verification(PID, 0, 0, now_ms=TS)
    assert guard is not SENTINEL_GUARD
    header = txn_header(0)
    assert state.check(header, guard) is None
    state.update(header, 0)
    assert state.has_ongoing_transaction(PID)
    assert state.verification_state(PID) is None
    # Later batches of the open transaction need no verification: the sentinel is fine.
    assert state.maybe_start_verification(PID, 1, 0, now_ms=TS) is SENTINEL_GUARD
    assert state.check(txn_header(1), SENTINEL_GUARD) is None


def test_without_verification_or_with_another_guard_the_append_is_invalid_txn_state() -> None:
    state = ProducerStateManager()
    with pytest.raises(InvalidTxnState):
        state.check(txn_header(0), SENTINEL_GUARD)
    state.maybe_start_verification(PID, 0, 0, now_ms=TS)
    with pytest.raises(InvalidTxnState):
        state.check(txn_header(0), VerificationGuard())
    # Verification off (no guard at all): the batch is accepted as before KIP-890.
    assert state.check(txn_header(0), None) is None
    # A non-transactional batch is not concerned.
    assert state.check(txn_header(0, transactional=False), SENTINEL_GUARD) is None


def test_a_marker_written_during_the_verification_fails_the_append() -> None:
    """The ABA case of KIP-890: verified, then the coordinator aborts (marker), then the stale
    verification's append must not open a transaction the coordinator knows nothing of."""
    state = ProducerStateManager()
    header = txn_header(0)
    state.update(header, 0)  # the transaction is open (its first batch was verified earlier)
    guard = state.maybe_start_verification(PID, 1, 0, now_ms=TS)
    assert guard is SENTINEL_GUARD  # open: nothing to ask
    end_txn(state, 1)
    with pytest.raises(InvalidTxnState):
        state.check(txn_header(1), guard)

    fresh = state.maybe_start_verification(PID, 1, 0, now_ms=TS)
    assert fresh is not SENTINEL_GUARD
    end_txn(state, 2)  # a marker (say a timed-out abort) lands while the verification is out
    assert state.verification_state(PID) is None
    with pytest.raises(InvalidTxnState):
        state.check(txn_header(1), fresh)
    # A new verification (the client's retry) works.
    retry = state.maybe_start_verification(PID, 1, 0, now_ms=TS)
    assert retry is not fresh
    assert state.check(txn_header(1), retry) is None


def test_the_lowest_sequence_seen_while_verifying_blocks_higher_ones() -> None:
    state = ProducerStateManager()
    guard = state.maybe_start_verification(PID, 5, 0, now_ms=TS)
    assert state.maybe_start_verification(PID, 8, 0, now_ms=TS) is guard  # same entry
    assert state.verification_state(PID).lowest_sequence == 5  # type: ignore[union-attr]
    with pytest.raises(OutOfOrderSequence):
        state.check(txn_header(8), guard)
    assert state.check(txn_header(5), guard) is None
    # A bumped epoch starts over at its own sequence.
    state.maybe_start_verification(PID, 0, 1, now_ms=TS)
    entry = state.verification_state(PID)
    assert entry is not None and (entry.epoch, entry.lowest_sequence) == (1, 0)


def test_unfinished_verifications_expire_with_the_producer_ids() -> None:
    state = ProducerStateManager(expiration_ms=1000)
    state.maybe_start_verification(PID, 0, 0, now_ms=TS)
    state.expire(TS + 999)
    assert state.verification_state(PID) is not None
    state.expire(TS + 1000)
    assert state.verification_state(PID) is None


OPS = st.lists(
    st.sampled_from(["verify", "append_latest", "append_stale", "append_sentinel", "marker"]), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_an_append_opens_a_transaction_only_with_the_current_guard(ops: list[str]) -> None:
    """Model: an append that would open the transaction succeeds iff it presents the guard of
    the verification started since the last transactional append or marker."""
    state = ProducerStateManager()
    open_txn = False
    current: VerificationGuard | None = None  # the model's live guard
    issued: list[VerificationGuard] = []
    seq = 0
    offset = 0
    for op in ops:
        if op == "verify":
            guard = state.maybe_start_verification(PID, seq, 0, now_ms=TS)
            if open_txn:
                assert guard is SENTINEL_GUARD
            else:
                assert guard is not SENTINEL_GUARD
                if current is None:
                    current = guard
                assert guard is current
                issued.append(guard)
            continue
        if op == "marker":
            end_txn(state, offset)
            offset += 1
            open_txn, current = False, None
            continue
        if op == "append_latest":
            presented = current if current is not None else SENTINEL_GUARD
        elif op == "append_stale":
            stale = [g for g in issued if g is not current]
            presented = stale[-1] if stale else VerificationGuard()
        else:
            presented = SENTINEL_GUARD
        header = txn_header(seq)
        expected_ok = open_txn or (current is not None and presented is current)
        try:
            state.check(header, presented)
        except InvalidTxnState:
            assert not expected_ok
            continue
        assert expected_ok
        state.update(header, offset)
        offset += 1
        seq += 1
        open_txn, current = True, None
