from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.records.batch import iter_batches, read_header
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import (
    CorruptBatchError,
    InvalidMagicError,
    InvalidOffsetError,
    InvalidRecordBatchError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from storage.fs import FileSystem
from storage.handles import HandleCache
from tests.storage.batches import batch_of_size, make_batch
from tests.storage.conftest import OpenLog


def headers(data: bytes) -> list[tuple[int, int]]:
    return [(h.base_offset, h.last_offset) for _, h in iter_batches(data)]


def test_append_assigns_offsets_and_epoch_in_place(open_log: OpenLog) -> None:
    log = open_log()
    buf = make_batch(3) + make_batch(2)
    info = log.append(buf, leader_epoch=4)
    assert (info.first_offset, info.last_offset, info.batches, info.bytes) == (0, 4, 2, len(buf))
    assert [read_header(buf, 0).base_offset, read_header(buf, len(make_batch(3))).base_offset] == [0, 3]
    assert read_header(buf, 0).partition_leader_epoch == 4
    assert log.log_end_offset == 5
    info = log.append(make_batch(1), leader_epoch=4)
    assert (info.first_offset, info.last_offset) == (5, 5)
    assert log.read_bytes(0, 1 << 20) == bytes(buf) + log.read_bytes(5, 1 << 20)
    assert log.leader_epochs.entries() == [(4, 0)]


def test_append_rejects_bad_batches_without_appending(open_log: OpenLog) -> None:
    log = open_log(LogConfig(max_message_bytes=500))
    good = make_batch(1)
    corrupt = make_batch(1)
    corrupt[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError):
        log.append(good + corrupt, 0)
    with pytest.raises(RecordTooLargeError):
        log.append(batch_of_size(501), 0)
    legacy = bytearray(make_batch(1))
    legacy[16] = 1
    with pytest.raises(InvalidMagicError):
        log.append(legacy, 0)
    with pytest.raises(CorruptBatchError):
        log.append(make_batch(1)[:-3], 0)  # declared length beyond the buffer
    with pytest.raises(InvalidRecordBatchError):
        log.append(make_batch(2, last_offset_delta=5), 0)
    with pytest.raises(TypeError):
        log.append(memoryview(bytes(good)), 0)
    assert log.log_end_offset == 0 and log.size_in_bytes() == 0
    log.append(batch_of_size(500), 0)
    assert log.log_end_offset == 1


def test_log_append_time_rewrites_timestamp_and_crc(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    buf = make_batch(2, base_timestamp=5)
    info = log.append(buf, 0)
    header = read_header(buf)
    assert info.log_append_time == clock.now_ms == header.max_timestamp == info.max_timestamp
    assert header.is_log_append_time
    from protocol.records.batch import crc_is_valid

    assert crc_is_valid(buf, 0, header)


def test_read_returns_whole_batches_within_limits(open_log: OpenLog) -> None:
    log = open_log(LogConfig(index_interval_bytes=300))
    for _ in range(20):
        log.append(batch_of_size(100, records=2), 0)  # offsets 2i, 2i+1 ; 100 bytes each
    with log.read(7, 350) as r:  # batch holding 7 starts at 6; 3 whole batches fit in 350
        assert r.slice is not None
        data = r.slice.read()
        assert headers(data) == [(6, 7), (8, 9), (10, 11)]
        assert (r.first_offset, r.next_offset) == (6, 12)
    with log.read(0, 10) as r:  # min one message: a batch larger than max_bytes comes whole
        assert r.slice is not None and r.slice.length == 100
    r = log.read(0, 10, min_one_message=False)
    assert r.slice is None and r.first_batch_too_large
    with log.read(0, 10_000, max_offset=9) as r:  # never past max_offset (exclusive)
        assert r.slice is not None
        assert headers(r.slice.read())[-1] == (6, 7)
    r = log.read(8, 10_000, max_offset=9)  # batch 8-9 reaches max_offset 9: nothing
    assert r.slice is None
    assert log.read(40, 100).slice is None  # at the log end: empty
    with pytest.raises(OffsetOutOfRangeError):
        log.read(41, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)


def test_a_read_shorter_than_copy_below_comes_as_bytes(open_log: OpenLog) -> None:
    log = open_log(LogConfig(index_interval_bytes=300))
    for _ in range(20):
        log.append(batch_of_size(100, records=2), 0)
    with log.read(7, 350) as sliced:
        assert sliced.slice is not None
        expected = sliced.slice.read()
    copied = log.read(7, 350, copy_below=301)  # 300 bytes read: copied
    assert copied.slice is None and copied.data == expected and copied.records == expected
    assert (copied.first_offset, copied.next_offset, copied.length) == (6, 12, 300)
    with log.read(7, 350, copy_below=300) as at_bound:  # not shorter: a slice, as without it
        assert at_bound.slice is not None and at_bound.data is None and at_bound.records is at_bound.slice
    empty = log.read(40, 100, copy_below=1 << 20)  # nothing to read: neither
    assert empty.records is None and empty.length == 0


def test_read_never_spans_segments(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=1000))
    for _ in range(25):
        log.append(batch_of_size(100), 0)
    assert log.segment_count == 3
    with log.read(5, 1 << 20) as r:
        assert r.slice is not None
        assert headers(r.slice.read()) == [(i, i) for i in range(5, 10)]
        assert r.next_offset == 10 and r.segment_base_offset == 0
    with log.read(10, 1 << 20) as r:
        assert r.segment_base_offset == 10 and r.first_offset == 10


def test_roll_on_time_and_index_full(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(segment_ms=1000, index_interval_bytes=0, segment_index_bytes=48))
    log.append(make_batch(1, base_timestamp=clock.now_ms), 0)
    log.append(make_batch(1, base_timestamp=clock.now_ms + 999), 0)
    assert log.segment_count == 1
    log.append(make_batch(1, base_timestamp=clock.now_ms + 1001), 0)  # > segment.ms after the first
    assert log.segment_count == 2
    # index_interval_bytes=0: every batch after the first is indexed; 6 offset-index slots, so a
    # segment takes 7 batches and the 8th rolls (same timestamps: one time-index entry only).
    for _ in range(6):
        log.append(make_batch(1, base_timestamp=clock.now_ms + 1001), 0)
    assert log.segment_count == 2
    assert log.active_segment.offset_index.is_full()
    log.append(make_batch(1, base_timestamp=clock.now_ms + 1001), 0)
    assert log.segment_count == 3


def test_offset_for_timestamp_and_max_timestamp(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=400, index_interval_bytes=0))
    ts = [100, 300, 200, 500, 400, 600]
    for t in ts:
        log.append(make_batch([(None, b"a"), (None, b"b")], base_timestamp=t, timestamps=[t, t + 1]), 2)
    assert log.segment_count > 1
    found = log.offset_for_timestamp(250)
    assert found is not None and (found.offset, found.timestamp, found.leader_epoch) == (2, 300, 2)
    found = log.offset_for_timestamp(301)  # second record of the same batch
    assert found is not None and (found.offset, found.timestamp) == (3, 301)
    found = log.offset_for_timestamp(0)
    assert found is not None and found.offset == 0
    assert log.offset_for_timestamp(602) is None
    best = log.max_timestamp_offset()
    assert best is not None and (best.offset, best.timestamp) == (11, 601)


def test_truncate_to_and_reappend(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=500))
    for _ in range(12):
        log.append(make_batch(2, value_size=40), leader_epoch=1)
    log.leader_epochs.assign(2, 24)
    for _ in range(3):
        log.append(make_batch(2, value_size=40), leader_epoch=2)
    segments = log.segment_count
    assert log.truncate_to(10)
    assert log.log_end_offset == 10 and log.segment_count < segments
    assert log.leader_epochs.entries() == [(1, 0)]
    assert headers(log.read_bytes(log.active_segment.base_offset, 1 << 20))[-1] == (8, 9)
    assert log.read_bytes(8, 1 << 20)[:1]
    info = log.append(make_batch(1), leader_epoch=3)
    assert info.first_offset == 10
    assert not log.truncate_to(100)
    log.truncate_fully_and_start_at(1000)
    assert (log.log_start_offset, log.log_end_offset, log.segment_count) == (1000, 1000, 1)
    assert log.append(make_batch(1), 3).first_offset == 1000


def test_follower_append_keeps_offsets_and_learns_epochs(open_log: OpenLog) -> None:
    log = open_log()
    b = make_batch(2, base_offset=0, partition_leader_epoch=1) + make_batch(
        1, base_offset=5, partition_leader_epoch=3
    )
    info = log.append_as_follower(b)
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (0, 5, 6)
    assert log.leader_epochs.entries() == [(1, 0), (3, 5)]
    with pytest.raises(InvalidOffsetError):
        log.append_as_follower(make_batch(1, base_offset=4))
    assert log.leader_epochs.end_offset_for_epoch(1) == (1, 5)
    assert log.leader_epochs.end_offset_for_epoch(2) == (1, 5)
    assert log.leader_epochs.end_offset_for_epoch(3) == (3, 6)
    assert log.leader_epochs.end_offset_for_epoch(0) == (0, 0)
    assert log.leader_epochs.end_offset_for_epoch(9) == (-1, -1)
    assert log.leader_epochs.end_offset_for_epoch(-1) == (-1, -1)


def test_delete_records_and_high_watermark(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=300))
    for _ in range(10):
        log.append(batch_of_size(100), 0)
    log.high_watermark = 100
    assert log.high_watermark == 10  # clamped to the log end
    with pytest.raises(OffsetOutOfRangeError):
        log.high_watermark = 4
        log.delete_records_before(5)
    log.high_watermark = 10
    before = log.segment_count
    assert log.delete_records_before(7) == 7
    assert log.log_start_offset == 7 and log.segment_count == before - 2
    with pytest.raises(OffsetOutOfRangeError):
        log.read(6, 100)
    assert headers(log.read_bytes(7, 100)) == [(7, 7)]


def test_slice_survives_segment_deletion_and_descriptor_eviction(open_log: OpenLog) -> None:
    fs_handles = HandleCache(__import__("storage.fs", fromlist=["FileSystem"]).FileSystem(), capacity=1)
    log = open_log(LogConfig(segment_bytes=300, file_delete_delay_ms=0), handles=fs_handles)
    for _ in range(9):
        log.append(batch_of_size(100), 0)
    result = log.read(0, 1000)
    assert fs_handles.open_count() <= 1 + 1  # pinned descriptors may exceed briefly, idle ones are closed
    expected = bytes(batch_of_size(100))[16:]
    log.high_watermark = 9
    log.delete_records_before(6)  # deletes the segment the slice points into
    assert not any(p.name.startswith("00000000000000000000") for p in log.directory.iterdir())
    assert result.slice is not None
    data = result.slice.read()
    assert len(data) == 300 and data[16:100] == expected
    out_r, out_w = os.pipe()
    try:
        sent = os.sendfile(out_w, result.slice.fd, result.slice.position, 100)
        assert sent == 100 and os.read(out_r, 200)[16:] == expected
    finally:
        os.close(out_r)
        os.close(out_w)
    result.close()
    assert result.slice.closed


def test_flush_moves_recovery_point(open_log: OpenLog) -> None:
    log = open_log(LogConfig(flush_messages=5, segment_bytes=1000))
    for _ in range(4):
        log.append(make_batch(1), 0)
    assert log.recovery_point == 0 and not log.flush_needed()
    log.append(make_batch(1), 0)  # fifth message reaches flush.messages: the caller flushes
    assert log.flush_needed() and log.recovery_point == 0
    log.flush()
    assert log.recovery_point == 5 and not log.flush_needed()


class _FsyncRecorder(FileSystem):
    def __init__(self) -> None:
        self.fsyncs = 0

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        self.fsyncs += 1
        super().fsync_dir(path)


def test_append_never_fsyncs_even_when_flush_messages_is_reached(open_log: OpenLog) -> None:
    # The appender may be an event loop: flush.messages is the caller's flush (in a thread).
    fs = _FsyncRecorder()
    log = open_log(LogConfig(flush_messages=1, segment_bytes=1000), fs=fs)
    log.append(make_batch(1), 0)  # the first append also records leader epoch 0 (fsync'd)
    before = fs.fsyncs
    for _ in range(3):
        log.append(make_batch(1), 0)
        log.append_as_follower(bytes(make_batch(1, base_offset=log.log_end_offset)))
    assert fs.fsyncs == before and log.flush_needed()


def test_roll_hands_the_flush_of_the_rolled_segment_to_background(open_log: OpenLog) -> None:
    pending: list[Callable[[], None]] = []
    log = open_log(LogConfig(segment_bytes=500), background=pending.append)
    for _ in range(3):
        log.append(batch_of_size(200), 0)  # rolls before the third
    assert log.segment_count == 2 and log.recovery_point == 0 and len(pending) == 1
    pending.pop()()
    assert log.recovery_point == log.active_segment.base_offset == 2
    log.roll()
    log.roll()  # the second finds an empty active segment: nothing rolls, nothing to flush
    assert len(pending) == 1
    log.close()
    pending.pop()()  # a flush that finds the log closed does nothing


def test_scan_batch_headers(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=400, index_interval_bytes=0))
    for i in range(10):
        log.append(make_batch(2, producer_id=7, producer_epoch=1, base_sequence=2 * i), 0)
    got = [(pos.segment_base_offset, h.base_offset, h.base_sequence) for pos, h in log.scan_batch_headers(5)]
    assert [g[1] for g in got] == list(range(4, 20, 2))
    assert all(h == 2 * (b // 2) for _, b, h in got)
    assert len({g[0] for g in got}) > 1


def test_reopen_after_clean_close_is_identical(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=1000, index_interval_bytes=200))
    for i in range(30):
        log.append(batch_of_size(90 + i), 3)
    before = log.read_bytes(0, 1 << 20)
    entries = [s.offset_index.all_entries() for s in log.segments()]
    log.close()
    again = open_log(LogConfig(segment_bytes=1000, index_interval_bytes=200), had_clean_shutdown=True)
    assert again.load_result.recovered_segments == 0
    assert again.log_end_offset == 30 and again.read_bytes(0, 1 << 20) == before
    assert [s.offset_index.all_entries() for s in again.segments()] == entries
    assert again.append(make_batch(1), 3).first_offset == 30


def test_header_struct_matches_protocol() -> None:
    from protocol.records import batch
    from storage.segment import HEADER

    assert HEADER.format == batch._HEADER.format
    assert struct.calcsize(HEADER.format) == batch.RECORD_BATCH_OVERHEAD


def test_config_update_applies_to_rolling(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=10_000))
    for _ in range(5):
        log.append(batch_of_size(100), 0)
    assert log.segment_count == 1
    log.update_config(LogConfig(segment_bytes=300))
    for _ in range(5):
        log.append(batch_of_size(100), 0)
    assert log.segment_count > 1
    assert log.config.segment_bytes == 300


def test_segment_ms_update_applies_to_the_active_segment(open_log: OpenLog, clock: ManualClock) -> None:
    # The append path skips the full roll check while a batch is inside the active segment's
    # envelope; a smaller segment.ms must shrink that envelope at once.
    log = open_log(LogConfig(segment_ms=1_000_000))
    log.append(make_batch(1, base_timestamp=clock.now_ms), 0)
    log.append(make_batch(1, base_timestamp=clock.now_ms + 5_000), 0)
    assert log.segment_count == 1
    log.update_config(LogConfig(segment_ms=1000))
    log.append(make_batch(1, base_timestamp=clock.now_ms + 5_000), 0)
    assert log.segment_count == 2
    # The new segment's deadline counts from its own first batch.
    log.append(make_batch(1, base_timestamp=clock.now_ms + 5_900), 0)
    assert log.segment_count == 2


def test_roll_when_offsets_outgrow_the_index(open_log: OpenLog) -> None:
    # Index entries hold offsets relative to the segment's base as int32: a follower batch past
    # that range starts a new segment.
    log = open_log()
    log.append_as_follower(make_batch(1, base_offset=0))
    log.append_as_follower(make_batch(1, base_offset=(1 << 31) - 2))
    assert log.segment_count == 1
    log.append_as_follower(make_batch(1, base_offset=(1 << 31) + 5))
    assert log.segment_count == 2
    assert log.active_segment.base_offset == (1 << 31) + 5


def test_roll_exactly_at_segment_bytes(open_log: OpenLog) -> None:
    size = len(batch_of_size(100))
    log = open_log(LogConfig(segment_bytes=3 * size))
    for _ in range(3):
        log.append(batch_of_size(100), 0)
    assert log.segment_count == 1  # exactly full: no roll yet
    log.append(batch_of_size(100), 0)
    assert log.segment_count == 2
