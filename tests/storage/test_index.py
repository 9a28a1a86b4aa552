from __future__ import annotations

import struct
from pathlib import Path

import pytest

from storage.fs import FileSystem
from storage.index import IndexOrderError, OffsetIndex
from storage.time_index import TimeIndex


def test_offset_index_lookup_truncate_and_persist(tmp_path: Path) -> None:
    fs = FileSystem()
    idx = OffsetIndex(fs, tmp_path / "00000000000000000100.index", 100, 80)
    assert idx.lookup(150) == (100, 0)  # empty index: (base, 0)
    for i in range(1, 6):
        idx.append(100 + i * 10, i * 1000)
    assert idx.lookup(99) == (100, 0)
    assert idx.lookup(110) == (110, 1000)
    assert idx.lookup(125) == (120, 2000)
    assert idx.lookup(10_000) == (150, 5000)
    with pytest.raises(IndexOrderError):
        idx.append(150, 6000)
    idx.persist(preallocate=True)
    assert (tmp_path / "00000000000000000100.index").stat().st_size == 80
    idx.truncate_to(130)  # removes entries with offset >= 130
    assert idx.all_entries() == [(110, 1000), (120, 2000)]
    idx.persist(preallocate=False)
    raw = (tmp_path / "00000000000000000100.index").read_bytes()
    assert raw == struct.pack(">iiii", 10, 1000, 20, 2000)
    fresh = OffsetIndex(fs, tmp_path / "00000000000000000100.index", 100, 80)
    assert fresh.all_entries() == [(110, 1000), (120, 2000)]


def test_offset_index_full_and_preallocated_zero_tail_ignored(tmp_path: Path) -> None:
    fs = FileSystem()
    path = tmp_path / "00000000000000000000.index"
    idx = OffsetIndex(fs, path, 0, 24)
    for i in range(3):
        idx.append(i + 1, (i + 1) * 100)
    assert idx.is_full()
    idx.persist(preallocate=True)
    # An untrimmed file from an unclean stop: valid entries then zeros.
    path.write_bytes(struct.pack(">ii", 5, 100) + bytes(8 * 100))
    assert OffsetIndex(fs, path, 0, 24).all_entries() == [(5, 100)]


def test_time_index_semantics(tmp_path: Path) -> None:
    fs = FileSystem()
    ti = TimeIndex(fs, tmp_path / "00000000000000000010.timeindex", 10, 48)  # 4 slots, full at 3
    assert ti.last_entry() == (-1, 10)
    ti.maybe_append(1000, 12)
    ti.maybe_append(1000, 13)  # same timestamp: ignored
    ti.maybe_append(2000, 15)
    assert ti.all_entries() == [(1000, 12), (2000, 15)]
    assert ti.lookup(999) == (-1, 10)
    assert ti.lookup(1500) == (1000, 12)
    with pytest.raises(IndexOrderError):
        ti.maybe_append(3000, 14)  # offset going back
    ti.maybe_append(3000, 20)
    assert ti.is_full()
    ti.maybe_append(4000, 21, skip_full_check=True)  # the slot reserved for the roll entry
    ti.truncate_to(15)
    assert ti.all_entries() == [(1000, 12)]
    ti.persist(preallocate=False)
    assert (tmp_path / "00000000000000000010.timeindex").read_bytes() == struct.pack(">qi", 1000, 2)
