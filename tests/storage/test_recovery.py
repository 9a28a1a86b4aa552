from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from protocol.records.batch import iter_batches
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import StorageCorruptionError
from storage.fs import FileSystem
from storage.log import Log
from tests.storage.batches import batch_of_size, make_batch
from tests.storage.faults import CrashingFileSystem, SimulatedCrash

CONFIG = LogConfig(segment_bytes=2000, index_interval_bytes=150)


def fill(log: Log, n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = batch_of_size(rng.randrange(120, 400), records=rng.randrange(1, 4))
        log.append(b, 1)
        out.append(bytes(b))
    return out


def everything(log: Log) -> bytes:
    data = b""
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        with log.read(offset, 1 << 20) as r:
            if r.slice is None:
                break
            data += r.slice.read()
            offset = r.next_offset
    return data


def crash(log: Log) -> None:
    """Drop the log like a killed process: descriptors closed, nothing written or trimmed."""
    log.mark_deleted()


def reopen(path: Path, clock: ManualClock, recovery_point: int = 0, fs: FileSystem | None = None) -> Log:
    return Log.open(path, CONFIG, clock=clock, recovery_point=recovery_point, fs=fs)


@pytest.mark.parametrize("damage", ["cut_mid_batch", "cut_mid_header", "garbage", "zeros", "bad_crc_tail"])
def test_torn_or_corrupt_tail_is_truncated(tmp_path: Path, clock: ManualClock, damage: str) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    batches = fill(log, 30)
    log.flush(up_to=log.active_segment.base_offset)
    recovery_point = log.recovery_point
    good_end = log.log_end_offset
    intact = everything(log)
    crash(log)
    active = sorted(path.glob("*.log"))[-1]
    size = active.stat().st_size
    with open(active, "r+b") as f:
        if damage == "cut_mid_batch":
            f.truncate(size - 7)
        elif damage == "cut_mid_header":
            last = list(iter_batches(active.read_bytes()))[-1][0]
            f.truncate(last + 30)
        elif damage == "garbage":
            f.seek(size)
            f.write(random.Random(3).randbytes(500))
        elif damage == "zeros":
            f.seek(size)
            f.write(bytes(4096))
        else:
            last = list(iter_batches(active.read_bytes()))[-1][0]
            f.seek(last + 70)
            f.write(b"\xde\xad")
    again = reopen(path, clock, recovery_point)
    expected_end = (
        good_end
        if damage in ("garbage", "zeros")
        else good_end - (list(iter_batches(intact))[-1][1].last_offset_delta + 1)
    )
    assert again.log_end_offset == expected_end
    data = everything(again)
    assert intact.startswith(data)
    assert len(intact) - len(data) == (0 if damage in ("garbage", "zeros") else len(batches[-1]))
    for pos, header in iter_batches(data):  # nothing partial, everything valid
        from protocol.records.batch import crc_is_valid

        assert crc_is_valid(data, pos, header)
    assert again.append(make_batch(2), 1).first_offset == expected_end
    assert again.load_result.truncated_bytes > 0


def test_segments_after_a_hole_are_dropped(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    assert log.segment_count >= 4
    crash(log)
    segs = sorted(path.glob("*.log"))
    with open(segs[1], "r+b") as f:  # corrupt the second segment's first batch body
        f.seek(70)
        f.write(b"\x00\xff\x00")
    again = reopen(path, clock, recovery_point=0)
    base1 = int(segs[1].name[:20])
    assert again.log_end_offset == base1
    assert again.segment_count == 2  # the first, and the emptied second
    assert not any(int(p.name[:20]) > base1 for p in path.glob("*.log"))


def test_corruption_below_recovery_point_is_reported_not_truncated(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    log.flush()
    rp = log.recovery_point
    crash(log)
    active = sorted(path.glob("*.log"))[-1]
    before = active.read_bytes()
    with open(active, "r+b") as f:
        f.seek(70)
        f.write(b"\x00\xff\x00")
    with pytest.raises(StorageCorruptionError):
        reopen(path, clock, recovery_point=rp)
    assert len(active.read_bytes()) == len(before)  # evidence kept


def test_missing_and_inconsistent_indexes_are_rebuilt(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    entries = [(s.offset_index.all_entries(), s.time_index.all_entries()) for s in log.segments()]
    log.close()
    segs = sorted(path.glob("*.index"))
    os.unlink(segs[0])
    os.unlink(sorted(path.glob("*.timeindex"))[1])
    segs[-1].write_bytes(b"\x00\x00\x00\x05\x7f\x00\x00\x00")  # active index pointing past the end
    again = Log.open(path, CONFIG, clock=clock, had_clean_shutdown=True)
    assert again.load_result.rebuilt_indexes == 3
    got = [(s.offset_index.all_entries(), s.time_index.all_entries()) for s in again.segments()]
    assert [g[0] for g in got] == [e[0] for e in entries]
    assert everything(again)


def test_crash_during_append_write(tmp_path: Path, clock: ManualClock) -> None:
    """A process dying half-way through the append's pwrite leaves a torn batch on disk."""
    path = tmp_path / "t-0"
    fs = CrashingFileSystem()
    log = Log.open(path, CONFIG, clock=clock, fs=fs)
    fill(log, 10)
    end = log.log_end_offset
    data = everything(log)
    fs.budget = 100
    with pytest.raises(SimulatedCrash):
        log.append(batch_of_size(300), 1)
    again = reopen(path, clock)
    assert again.log_end_offset == end and everything(again) == data
    assert again.load_result.truncated_bytes == 100


def test_failed_write_is_rolled_back_without_crash(tmp_path: Path, clock: ManualClock) -> None:
    class FullDisk(FileSystem):
        fail = False

        def pwrite(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> int:
            if self.fail:
                super().pwrite(fd, memoryview(data)[:10], position)
                raise OSError(28, "No space left on device")
            return super().pwrite(fd, data, position)

    fs = FullDisk()
    log = Log.open(tmp_path / "t-0", CONFIG, clock=clock, fs=fs)
    fill(log, 5)
    end, size = log.log_end_offset, log.active_segment.file_size_on_disk()
    fs.fail = True
    with pytest.raises(OSError):
        log.append(batch_of_size(200), 1)
    fs.fail = False
    assert log.log_end_offset == end and log.active_segment.file_size_on_disk() == size
    assert log.append(make_batch(1), 1).first_offset == end


def test_clean_shutdown_skips_recovery(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    log.close()
    assert Log.open(path, CONFIG, clock=clock, had_clean_shutdown=True).load_result.recovered_segments == 0
    assert Log.open(path, CONFIG, clock=clock, recovery_point=0).load_result.recovered_segments > 1


def test_interrupted_compaction_swap_is_completed_or_discarded(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    log.close()
    segs = sorted(path.glob("*.log"))
    # A .cleaned leftover is discarded.
    (path / (segs[0].name + ".cleaned")).write_bytes(b"junk")
    # A .swap of the first two segments' data replaces them.
    merged = segs[0].read_bytes() + segs[1].read_bytes()
    (path / (segs[0].name + ".swap")).write_bytes(merged)
    again = Log.open(path, CONFIG, clock=clock, had_clean_shutdown=True)
    names = sorted(p.name for p in path.iterdir())
    assert not any(n.endswith((".swap", ".cleaned")) for n in names)
    assert segs[1].name not in names
    assert again.segment_count == len(segs) - 1
    assert again.read_bytes(0, 1 << 20) == merged


def test_unclean_stop_with_a_missing_index_before_a_corrupt_segment(
    tmp_path: Path, clock: ManualClock
) -> None:
    # A segment after the recovery point lost its index and has a corrupt tail: recovery cuts it
    # there and drops every later segment, exactly as with the index present (it once rebuilt
    # the index first, cutting the segment, and the recovery pass then saw nothing to cut).
    path = tmp_path / "t-0"
    log = Log.open(path, CONFIG, clock=clock)
    fill(log, 40)
    crash(log)
    logs = sorted(path.glob("*.log"))
    assert len(logs) >= 4
    middle = logs[1]
    data = middle.read_bytes()
    middle.write_bytes(data[:-50] + b"\xff" * 50)  # the last batch's tail is garbage
    os.unlink(middle.with_suffix(".index"))
    intact = logs[0].read_bytes()
    again = reopen(path, clock)
    assert again.segment_count == 2
    assert again.active_segment.base_offset == int(middle.stem)
    assert again.leader_epochs.entries()[0].start_offset == 0
    kept = everything(again)
    assert kept.startswith(intact) and len(kept) < len(intact) + len(data) - 50
    assert again.append(batch_of_size(200), 1).first_offset == again.log_end_offset - 1
