"""Delayed file deletion, as Kafka's ``file.delete.delay.ms``.

A segment leaving the log (retention, DeleteRecords, truncation, compaction swap) is renamed to
``<name>.deleted`` at once, so a restart never loads it again, and unlinked once its delay has
passed, when the manager next calls :meth:`FileDeleter.purge` (from ``run_retention_once`` or
``close``). Slices already handed out hold their own descriptors and stay readable either way.
Leftover ``.deleted`` files are removed when a log is loaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from storage.clock import Clock
from storage.fs import FileSystem


class FileDeleter:
    def __init__(self, fs: FileSystem, clock: Clock) -> None:
        self.fs = fs
        self.clock = clock
        self._pending: list[tuple[int, Path]] = []

    def schedule(self, paths: list[Path], delay_ms: int) -> None:
        due = self.clock.milliseconds() + max(0, delay_ms)
        if delay_ms <= 0:
            for path in paths:
                self._remove(path)
            return
        self._pending.extend((due, p) for p in paths)

    def purge(self, *, everything: bool = False) -> int:
        """Delete files whose delay has passed (all of them with ``everything``); returns count."""
        now = self.clock.milliseconds()
        keep: list[tuple[int, Path]] = []
        removed = 0
        for due, path in self._pending:
            if everything or due <= now:
                self._remove(path)
                removed += 1
            else:
                keep.append((due, path))
        self._pending = keep
        return removed

    def pending(self) -> int:
        return len(self._pending)

    def _remove(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            self.fs.unlink(path)
