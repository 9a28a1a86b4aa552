"""Log.append_as_follower (Kafka's appendAsFollower): a follower given its leader's batches, in
any grouping, holds the same bytes, the same leader-epoch checkpoint and the same producer
state; offsets that go back are refused with nothing written."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.records.batch import iter_batches
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import CorruptBatchError, InvalidOffsetError
from storage.log import Log
from tests.storage.batches import make_batch
from tests.storage.conftest import OpenLog

# One leader append: epoch bump (0 or 1), record count, value size, producer (or none).
append_spec = st.tuples(
    st.integers(0, 1), st.integers(1, 5), st.integers(0, 300), st.sampled_from([-1, 7, 9])
)


def _leader_log(
    directory: Path, clock: ManualClock, config: LogConfig, appends: list[tuple[int, int, int, int]]
) -> Log:
    log = Log.open(directory / "t-0", config, clock=clock)
    epoch = 0
    sequences: dict[int, int] = {}
    for bump, count, size, pid in appends:
        epoch += bump
        seq = sequences.get(pid, 0) if pid >= 0 else -1
        data = make_batch(
            count, value_size=size, producer_id=pid, producer_epoch=0 if pid >= 0 else -1, base_sequence=seq
        )
        info = log.append(data, epoch)
        if pid >= 0:
            log.producer_state.update(next(iter_batches(data))[1], info.first_offset)
            sequences[pid] = seq + count
    return log


def _all_batches(log: Log) -> bytes:
    """The log's batches from its start (a read stops at a segment's end: read on)."""
    out = bytearray()
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        chunk = log.read_bytes(offset, 1 << 30)
        assert chunk
        out += chunk
        last = list(iter_batches(chunk))[-1][1]
        offset = last.base_offset + last.last_offset_delta + 1
    return bytes(out)


def _first_batch(log: Log, offset: int) -> bytes:
    data = log.read_bytes(offset, 1)  # the first batch is always whole
    pos, header = next(iter_batches(data))
    return data[pos : pos + header.batch_length + 12]


def _segment_files(log: Log) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(log.directory.glob("*.log")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    appends=st.lists(append_spec, min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 40), max_size=10),
    small_segments=st.booleans(),
)
def test_follower_holds_the_leaders_bytes_epochs_and_producers(
    appends: list[tuple[int, int, int, int]], cuts: list[int], small_segments: bool
) -> None:
    clock = ManualClock(1_700_000_000_000)
    config = LogConfig(segment_bytes=2048) if small_segments else LogConfig()
    with tempfile.TemporaryDirectory() as leader_dir, tempfile.TemporaryDirectory() as follower_dir:
        leader = _leader_log(Path(leader_dir), clock, config, appends)
        follower = Log.open(Path(follower_dir) / "t-0", config, clock=clock)
        try:
            data = _all_batches(leader)
            boundaries = [pos for pos, _ in iter_batches(data)] + [len(data)]
            chosen = sorted({boundaries[c % len(boundaries)] for c in cuts} | {0, len(data)})
            for start, end in itertools.pairwise(chosen):
                if end > start:
                    follower.append_as_follower(memoryview(data)[start:end])
            assert follower.log_end_offset == leader.log_end_offset
            assert _segment_files(follower) == _segment_files(leader)
            if not small_segments:
                # One segment each: the files themselves are identical.
                assert [p.name for p in follower.directory.glob("*.log")] == ["00000000000000000000.log"]
            assert follower.leader_epochs.entries() == leader.leader_epochs.entries()
            checkpoint = "leader-epoch-checkpoint"
            assert (follower.directory / checkpoint).read_bytes() == (
                leader.directory / checkpoint
            ).read_bytes()
            assert follower.producer_state.snapshot_entries() == leader.producer_state.snapshot_entries()
            # Every offset reads back the same batch from both (segment ends may differ: the
            # follower rolls before an append of several batches that does not fit, the leader
            # between them).
            for offset in range(0, leader.log_end_offset, 3):
                assert _first_batch(follower, offset) == _first_batch(leader, offset)
        finally:
            leader.mark_deleted()
            follower.mark_deleted()


def test_offsets_that_go_back_or_overlap_are_refused_whole(open_log: OpenLog) -> None:
    log = open_log()
    log.append_as_follower(make_batch(3, base_offset=0, partition_leader_epoch=1))
    before = _segment_files(log)
    # Below the log end, and a second batch that overlaps the first within one append.
    with pytest.raises(InvalidOffsetError):
        log.append_as_follower(make_batch(1, base_offset=2, partition_leader_epoch=1))
    with pytest.raises(InvalidOffsetError):
        log.append_as_follower(
            make_batch(2, base_offset=3, partition_leader_epoch=1) + make_batch(1, base_offset=4)
        )
    assert _segment_files(log) == before and log.log_end_offset == 3
    # A gap (compaction on the leader) is fine.
    assert log.append_as_follower(make_batch(1, base_offset=10, partition_leader_epoch=2)).first_offset == 10
    assert log.log_end_offset == 11
    assert log.leader_epochs.entries() == [(1, 0), (2, 10)]


def test_corrupt_batch_is_refused_and_record_size_limit_does_not_apply(open_log: OpenLog) -> None:
    log = open_log(LogConfig(max_message_bytes=200))
    big = make_batch(1, value_size=1000, base_offset=0, partition_leader_epoch=0)
    assert log.append_as_follower(big).last_offset == 0  # the leader accepted it: so does a follower
    bad = make_batch(1, base_offset=1)
    bad[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError):
        log.append_as_follower(bad)
    assert log.log_end_offset == 1


def test_producer_state_is_replicated_for_duplicate_detection(open_log: OpenLog) -> None:
    log = open_log()
    log.append_as_follower(make_batch(2, base_offset=0, producer_id=5, producer_epoch=0, base_sequence=0))
    log.append_as_follower(make_batch(3, base_offset=2, producer_id=5, producer_epoch=0, base_sequence=2))
    retry = next(iter_batches(make_batch(3, producer_id=5, producer_epoch=0, base_sequence=2)))[1]
    duplicate = log.producer_state.check(retry)
    assert duplicate is not None and (duplicate.first_offset, duplicate.last_offset) == (2, 4)
