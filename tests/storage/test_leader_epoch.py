from __future__ import annotations

from pathlib import Path

from storage.fs import FileSystem
from storage.leader_epoch import LeaderEpochCache


def test_assign_truncate_and_reload(tmp_path: Path) -> None:
    leo = {"v": 100}
    cache = LeaderEpochCache(FileSystem(), tmp_path, lambda: leo["v"])
    assert cache.end_offset_for_epoch(0) == (-1, -1)
    assert cache.assign(1, 0)
    assert not cache.assign(1, 5)  # same epoch, later offset: no change
    assert cache.assign(3, 40)
    assert cache.assign(5, 70)
    assert cache.entries() == [(1, 0), (3, 40), (5, 70)]
    assert cache.end_offset_for_epoch(2) == (1, 40)
    assert cache.end_offset_for_epoch(4) == (3, 70)
    assert cache.end_offset_for_epoch(5) == (5, 100)
    assert cache.epoch_for_offset(45) == 3 and cache.epoch_for_offset(70) == 5
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n3\n1 0\n3 40\n5 70\n"
    cache.assign(4, 60)  # a lower epoch: entries at or above it are dropped first
    assert cache.entries() == [(1, 0), (3, 40), (4, 60)]
    cache.truncate_from_end(50)
    assert cache.entries() == [(1, 0), (3, 40)]
    cache.truncate_from_start(45)
    assert cache.entries() == [(3, 45)]
    again = LeaderEpochCache(FileSystem(), tmp_path, lambda: 7)
    assert again.entries() == [(3, 45)] and again.latest_epoch == 3
    assert again.end_offset_for_epoch(1) == (1, 45)
