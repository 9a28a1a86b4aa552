"""Producer-state snapshots (Kafka's ``<offset>.snapshot`` files) and producer id expiration."""

from __future__ import annotations

import struct
from pathlib import Path

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records.batch import iter_batches
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log
from storage.producer_state import (
    CorruptSnapshotError,
    ProducerStateManager,
    SnapshotEntry,
    decode_snapshot,
    encode_snapshot,
    list_snapshot_offsets,
)
from tests.storage.batches import make_batch
from tests.storage.conftest import OpenLog

DAY_MS = 86_400_000
#: Three batches of 3 records (about 150 bytes each) per segment.
SMALL_SEGMENTS = LogConfig(segment_bytes=350, file_delete_delay_ms=60_000)


def append_idempotent(
    log: Log, pid: int, seq: int, count: int = 3, epoch: int = 0, ts: int | None = None
) -> None:
    """Append one idempotent batch and record it in the producer state, as the partition does."""
    ts = 1_700_000_000_000 if ts is None else ts
    data = make_batch(count, producer_id=pid, producer_epoch=epoch, base_sequence=seq, base_timestamp=ts)
    info = log.append(data, 0)
    ((_, header),) = list(iter_batches(data))
    log.producer_state.update(header, info.first_offset)


def fill(log: Log, batches: int, producers: int = 3) -> None:
    """``batches`` batches round-robin over ``producers`` producer ids (1, 2, ...)."""
    seqs = dict.fromkeys(range(1, producers + 1), 0)
    for i in range(batches):
        pid = i % producers + 1
        append_idempotent(log, pid, seqs[pid])
        seqs[pid] += 3


def state_of(log: Log) -> dict[int, tuple[int, int, int, int]]:
    """pid -> (epoch, last sequence, last offset, last timestamp): what a snapshot keeps."""
    return {
        pid: (e.epoch, e.last_seq, e.batches[-1].last_offset, e.last_timestamp)
        for pid, e in log.producer_state.producers.items()
    }


def reopen_after_crash(log: Log, clock: ManualClock) -> Log:
    """Reopen the directory as after kill -9: nothing closed, no clean-shutdown flag."""
    log.mark_deleted()  # closes descriptors only
    return Log.open(log.directory, log.config, clock=clock, had_clean_shutdown=False)


# -- the file format ---------------------------------------------------------------------------------


def test_snapshot_bytes_match_kafkas_layout() -> None:
    entry = SnapshotEntry(
        producer_id=0x0102030405060708,
        epoch=7,
        last_sequence=41,
        last_offset=1000,
        offset_delta=2,
        timestamp=1_700_000_000_123,
        coordinator_epoch=-1,
        current_txn_first_offset=-1,
    )
    body = (
        bytes.fromhex("00000001")  # entries (int32 array length)
        + bytes.fromhex("0102030405060708")  # producer_id int64
        + bytes.fromhex("0007")  # epoch int16
        + bytes.fromhex("00000029")  # last_sequence int32 = 41
        + bytes.fromhex("00000000000003e8")  # last_offset int64 = 1000
        + bytes.fromhex("00000002")  # offset_delta int32
        + bytes.fromhex("0000018bcfe5687b")  # timestamp int64 = 1_700_000_000_123
        + bytes.fromhex("ffffffff")  # coordinator_epoch int32 = -1
        + bytes.fromhex("ffffffffffffffff")  # current_txn_first_offset int64 = -1
    )
    # Kafka: version int16 = 1, then the unsigned CRC-32C of everything after the CRC field.
    assert crc32c.crc32c(b"123456789") == 0xE3069283  # the Castagnoli polynomial, not CRC-32
    expected = bytes.fromhex("0001") + struct.pack(">I", crc32c.crc32c(body)) + body
    assert len(expected) == 2 + 4 + 4 + 46
    data = encode_snapshot([entry])
    assert data == expected
    assert data[2:6] == bytes.fromhex("e520d685")  # pinned: the CRC of this body
    assert decode_snapshot(data) == [entry]


def test_empty_snapshot_is_ten_bytes() -> None:
    data = encode_snapshot([])
    assert data == bytes.fromhex("0001") + struct.pack(">I", crc32c.crc32c(b"\0\0\0\0")) + b"\0\0\0\0"
    assert decode_snapshot(data) == []


entries_strategy = st.lists(
    st.builds(
        SnapshotEntry,
        producer_id=st.integers(0, 2**63 - 1),
        epoch=st.integers(-1, 2**15 - 1),
        last_sequence=st.integers(-1, 2**31 - 1),
        last_offset=st.integers(-1, 2**63 - 1),
        offset_delta=st.integers(0, 2**31 - 1),
        timestamp=st.integers(-1, 2**62),
        coordinator_epoch=st.integers(-1, 2**31 - 1),
        current_txn_first_offset=st.integers(-1, 2**63 - 1),
    ),
    max_size=20,
    unique_by=lambda e: e.producer_id,
)


@given(entries=entries_strategy)
def test_snapshot_round_trip(entries: list[SnapshotEntry]) -> None:
    assert decode_snapshot(encode_snapshot(entries)) == entries


@given(entries=entries_strategy.filter(bool), data=st.data())
def test_any_flipped_bit_is_detected(entries: list[SnapshotEntry], data: st.DataObject) -> None:
    raw = bytearray(encode_snapshot(entries))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(bytes(raw))


@pytest.mark.parametrize("size", [0, 5, 9, 20])
def test_cut_short_snapshot_is_corrupt(size: int) -> None:
    raw = encode_snapshot([SnapshotEntry(1, 0, 5, 10, 2, 0)])
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(raw[:size])


@settings(max_examples=50, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 2), st.integers(1, 4), st.integers(0, 10**6)),
        max_size=40,
    )
)
def test_state_survives_a_snapshot(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, int, int, int]]
) -> None:
    """Whatever batches were applied, loading the snapshot gives each producer's epoch, last
    batch and timestamp back (Kafka keeps one batch per producer in the file)."""
    directory = tmp_path_factory.mktemp("p") / "t-0"
    directory.mkdir()
    state = ProducerStateManager(directory, expiration_ms=2**62)
    offset = 0
    seqs: dict[tuple[int, int], int] = {}
    for pid, epoch, count, ts in ops:
        seq = seqs.get((pid, epoch), 0)
        data = make_batch(count, producer_id=pid, producer_epoch=epoch, base_sequence=seq, base_timestamp=ts)
        ((_, header),) = list(iter_batches(data))
        state.update(header, offset)
        seqs[(pid, epoch)] = seq + count
        offset += count
    state.take_snapshot(offset + 1, sync=False)
    loaded = ProducerStateManager(directory, expiration_ms=2**62)
    assert loaded.truncate_and_reload(0, offset + 1, 0) == offset + 1
    assert loaded.snapshot_entries() == state.snapshot_entries()
    for pid, entry in state.producers.items():
        if entry.batches:
            assert loaded.producers[pid].batches[-1] == entry.batches[-1]


# -- when snapshots are written and used -------------------------------------------------------------


def test_snapshot_at_every_roll_and_at_clean_close(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 10)
    bases = [s.base_offset for s in log.segments()]
    assert len(bases) >= 3
    assert list_snapshot_offsets(log.directory) == bases[1:]
    # The snapshot at a segment's base holds the state before that segment's first batch.
    entries = decode_snapshot((log.directory / f"{bases[1]:020d}.snapshot").read_bytes())
    assert {e.producer_id: e.last_offset for e in entries} == {1: 2, 2: 5, 3: 8}
    leo = log.log_end_offset
    log.close()
    assert list_snapshot_offsets(log.directory) == [*bases[1:], leo]

    reopened = Log.open(log.directory, SMALL_SEGMENTS, clock=clock, had_clean_shutdown=True)
    try:
        assert reopened.producer_state.batches_replayed == 0
        assert reopened.producer_state.map_end_offset == leo
        assert len(reopened.producer_state.producers) == 3
    finally:
        reopened.close()


def test_load_after_a_crash_replays_only_the_batches_after_the_latest_snapshot(
    open_log: OpenLog, clock: ManualClock
) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.flush()
    expected = state_of(log)
    active = log.active_segment.base_offset
    batches_in_active = sum(1 for _ in log.scan_batch_headers(active))
    assert 0 < batches_in_active < 11

    reopened = reopen_after_crash(log, clock)
    try:
        assert reopened.producer_state.batches_replayed == batches_in_active
        assert state_of(reopened) == expected
        # A snapshot at the log end offset was taken after loading: the next load replays nothing.
        assert reopened.log_end_offset in list_snapshot_offsets(reopened.directory)
    finally:
        reopened.mark_deleted()


def test_load_without_snapshots_replays_the_whole_log(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.flush()
    expected = state_of(log)
    for path in log.directory.glob("*.snapshot"):
        path.unlink()
    reopened = reopen_after_crash(log, clock)
    try:
        assert reopened.producer_state.batches_replayed == 11
        assert state_of(reopened) == expected
    finally:
        reopened.mark_deleted()


def test_clean_shutdown_without_snapshots_assumes_no_producers(open_log: OpenLog, clock: ManualClock) -> None:
    """Kafka's upgrade path: no snapshot at all after a clean shutdown means the log predates
    snapshots; empty snapshots are written instead of scanning it."""
    log = open_log(SMALL_SEGMENTS)
    fill(log, 7)
    log.close()
    for path in log.directory.glob("*.snapshot"):
        path.unlink()
    reopened = Log.open(log.directory, SMALL_SEGMENTS, clock=clock, had_clean_shutdown=True)
    try:
        assert reopened.producer_state.producers == {}
        bases = [s.base_offset for s in reopened.segments()]
        # (none at offset 0: a snapshot is taken only past the last one, which starts at 0)
        expected = [o for o in (*bases[-2:], reopened.log_end_offset) if o > 0]
        assert list_snapshot_offsets(reopened.directory) == expected
    finally:
        reopened.close()


def test_corrupt_snapshot_is_deleted_and_an_earlier_one_used(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.flush()
    expected = state_of(log)
    offsets = list_snapshot_offsets(log.directory)
    latest = log.directory / f"{offsets[-1]:020d}.snapshot"
    raw = bytearray(latest.read_bytes())
    raw[-1] ^= 0xFF
    latest.write_bytes(bytes(raw))

    reopened = reopen_after_crash(log, clock)
    try:
        assert state_of(reopened) == expected
        replayed_from = offsets[-2]
        assert reopened.producer_state.batches_replayed == sum(
            1 for _ in reopened.scan_batch_headers(replayed_from)
        )
        # The corrupt file is gone; a good snapshot at its offset was written again on the way.
        assert decode_snapshot(latest.read_bytes()) is not None
    finally:
        reopened.mark_deleted()


def test_empty_snapshot_file_left_by_a_crash_is_ignored(open_log: OpenLog, clock: ManualClock) -> None:
    """A snapshot renamed into place but never fsync'd may come back empty after a power loss."""
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.flush()
    expected = state_of(log)
    latest = max(log.directory.glob("*.snapshot"))
    latest.write_bytes(b"")
    reopened = reopen_after_crash(log, clock)
    try:
        assert state_of(reopened) == expected
    finally:
        reopened.mark_deleted()


def test_truncation_drops_later_snapshots_and_reloads(open_log: OpenLog) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    bases = [s.base_offset for s in log.segments()]
    target = bases[2] + 3  # one batch into the third segment
    reference = open_log(SMALL_SEGMENTS, name="r-0")
    fill(reference, target // 3)
    assert reference.log_end_offset == target

    assert log.truncate_to(target)
    assert log.log_end_offset == target
    assert state_of(log) == state_of(reference)
    assert all(o <= target for o in list_snapshot_offsets(log.directory))
    # Reloaded from the snapshot at the third segment's base: one batch replayed, not all.
    assert log.producer_state.batches_replayed == 1
    assert target in list_snapshot_offsets(log.directory)


def test_truncate_fully_deletes_every_snapshot(open_log: OpenLog) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 8)
    log.truncate_fully_and_start_at(100)
    assert list_snapshot_offsets(log.directory) == []
    assert log.producer_state.producers == {}


def test_snapshots_go_with_deleted_segments(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.high_watermark = log.log_end_offset
    bases = [s.base_offset for s in log.segments()]
    log.delete_records_before(bases[2])
    remaining = list_snapshot_offsets(log.directory)
    assert remaining == [b for b in bases[2:]]
    # Renamed to .deleted at once, unlinked after file.delete.delay.ms (as the segments).
    assert (log.directory / f"{bases[1]:020d}.snapshot.deleted").exists()
    clock.advance(60_000)
    log.deleter.purge()
    assert not (log.directory / f"{bases[1]:020d}.snapshot.deleted").exists()


def test_stray_snapshots_are_removed_at_load(open_log: OpenLog, clock: ManualClock) -> None:
    """Kafka keeps the snapshots at segment bases and the latest stray one above them all."""
    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.close()
    bases = [s.base_offset for s in log.segments()]
    stray = bases[1] + 1
    (log.directory / f"{stray:020d}.snapshot").write_bytes(encode_snapshot([]))
    (log.directory / f"{bases[1]:020d}.snapshot.tmp").write_bytes(b"partial")
    reopened = Log.open(log.directory, SMALL_SEGMENTS, clock=clock, had_clean_shutdown=True)
    try:
        assert list_snapshot_offsets(reopened.directory) == [*bases[1:], reopened.log_end_offset]
        assert not (log.directory / f"{bases[1]:020d}.snapshot.tmp").exists()
    finally:
        reopened.close()


def test_roll_snapshot_is_fsynced_by_the_next_flush(open_log: OpenLog) -> None:
    from storage.fs import FileSystem

    synced: list[str] = []

    class Recording(FileSystem):
        def open(self, path: Path, *, create: bool = False, writable: bool = True) -> int:
            fd = super().open(path, create=create, writable=writable)
            self.names[fd] = path.name
            return fd

        def fsync(self, fd: int) -> None:
            synced.append(self.names.get(fd, "?"))
            super().fsync(fd)

        names: dict[int, str] = {}

    log = open_log(SMALL_SEGMENTS, fs=Recording())
    fill(log, 4)
    roll_offset = log.active_segment.base_offset
    assert not any(n.endswith(".snapshot") for n in synced)  # not on the appending path
    log.flush_if_due()
    assert f"{roll_offset:020d}.snapshot" in synced


# -- expiration ------------------------------------------------------------------------------------


def test_producers_expire_by_their_last_batch_timestamp(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log()
    now = clock.milliseconds()
    append_idempotent(log, 1, 0, ts=now - DAY_MS)  # exactly expired (Kafka: >=)
    append_idempotent(log, 2, 0, ts=now - DAY_MS + 1)
    assert log.producer_state.expire(now, DAY_MS) == 1
    assert set(log.producer_state.producers) == {2}
    clock.advance(1)
    assert log.producer_state.expire(clock.milliseconds(), DAY_MS) == 1
    assert log.producer_state.producers == {}


def test_producer_with_an_open_transaction_never_expires(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log()
    append_idempotent(log, 1, 0, ts=0)
    log.producer_state.producers[1].current_txn_first_offset = 0
    assert log.producer_state.expire(clock.milliseconds(), DAY_MS) == 0


def test_expired_producers_are_not_loaded_from_a_snapshot(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log()
    now = clock.milliseconds()
    append_idempotent(log, 1, 0, ts=now - 2 * DAY_MS)
    append_idempotent(log, 2, 0, ts=now)
    log.close()
    reopened = Log.open(log.directory, LogConfig(), clock=clock, had_clean_shutdown=True)
    try:
        assert set(reopened.producer_state.producers) == {2}
    finally:
        reopened.close()


def test_snapshot_taken_at_load_is_fsynced_by_the_next_flush_due(
    open_log: OpenLog, clock: ManualClock
) -> None:
    from storage.fs import FileSystem

    log = open_log(SMALL_SEGMENTS)
    fill(log, 11)
    log.flush()
    log.mark_deleted()
    synced: list[str] = []
    names: dict[int, str] = {}

    class Recording(FileSystem):
        def open(self, path: Path, *, create: bool = False, writable: bool = True) -> int:
            fd = super().open(path, create=create, writable=writable)
            names[fd] = path.name
            return fd

        def fsync(self, fd: int) -> None:
            synced.append(names.get(fd, "?"))
            super().fsync(fd)

    reopened = open_log(SMALL_SEGMENTS, fs=Recording(), had_clean_shutdown=False)
    leo_snapshot = f"{reopened.log_end_offset:020d}.snapshot"
    assert (reopened.directory / leo_snapshot).exists()
    assert leo_snapshot not in synced  # start-up does not wait for it
    assert reopened.flush_if_due()
    assert leo_snapshot in synced
