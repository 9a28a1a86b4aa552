"""The metadata document: changes touch memory, snapshots are written (off the loop) in any
order and the file always ends up with the newest."""

from __future__ import annotations

import json
from pathlib import Path

from broker.cluster.metadata import ClusterMetadata
from broker.types import BrokerId
from storage import FileSystem


class CountingFileSystem(FileSystem):
    def __init__(self) -> None:
        self.writes = 0

    def write_file_atomically(self, path: Path, data: bytes) -> None:
        self.writes += 1
        super().write_file_atomically(path, data)


def test_changes_touch_memory_and_an_older_snapshot_never_overwrites_a_newer(tmp_path: Path) -> None:
    fs = CountingFileSystem()
    metadata = ClusterMetadata(tmp_path / "meta.json", "cluster", fs)
    metadata.create_topic("a", [[BrokerId(0)]], {})
    assert fs.writes == 0  # the caller persists, off the event loop
    older = metadata.snapshot()
    metadata.create_topic("b", [[BrokerId(0)]], {})
    metadata.allocate_producer_ids(1000)
    newer = metadata.snapshot()
    metadata.write(newer)
    metadata.write(older)  # a worker that was slower: skipped
    metadata.write(newer)  # nothing changed since: skipped
    assert fs.writes == 1
    on_disk = json.loads((tmp_path / "meta.json").read_text())
    assert sorted(on_disk["topics"]) == ["a", "b"] and on_disk["next_producer_id"] == 1000
    reloaded = ClusterMetadata(tmp_path / "meta.json", "cluster", fs)
    assert sorted(reloaded.topics) == ["a", "b"] and reloaded.next_producer_id == 1000
