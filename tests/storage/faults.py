"""A FileSystem that dies on command: after a budget of written bytes every further call raises
``SimulatedCrash``, leaving on disk exactly what a process killed at that instant would leave
(a partial last write included). Deterministic stand-in for SIGKILL in unit tests."""

from __future__ import annotations

from pathlib import Path

from storage.fs import FileSystem


class SimulatedCrash(BaseException):
    """Not an Exception: storage must not be able to catch and 'handle' its own death."""


class CrashingFileSystem(FileSystem):
    def __init__(self, crash_after_bytes: int | None = None) -> None:
        self.budget = crash_after_bytes
        self.crashed = False
        self.fsyncs = 0

    def _check(self) -> None:
        if self.crashed:
            raise SimulatedCrash()

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> int:
        self._check()
        view = memoryview(data)
        if self.budget is not None and len(view) > self.budget:
            if self.budget > 0:
                super().pwrite(fd, view[: self.budget], position)
            self.crashed = True
            raise SimulatedCrash()
        if self.budget is not None:
            self.budget -= len(view)
        return super().pwrite(fd, view, position)

    def ftruncate(self, fd: int, size: int) -> None:
        self._check()
        super().ftruncate(fd, size)

    def fsync(self, fd: int) -> None:
        self._check()
        self.fsyncs += 1
        super().fsync(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._check()
        super().replace(src, dst)

    def unlink(self, path: Path) -> None:
        self._check()
        super().unlink(path)
