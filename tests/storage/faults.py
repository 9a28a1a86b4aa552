"""File systems that fail on command.

``CrashingFileSystem`` dies: after a budget of written bytes every further call raises
``SimulatedCrash``, leaving on disk exactly what a process killed at that instant would leave
(a partial last write included). Deterministic stand-in for SIGKILL in unit tests.
``FaultyDiskFileSystem`` is a disk that fails: writes, fsyncs or reads under a directory raise
``OSError`` (ENOSPC, EIO) while the process goes on."""

from __future__ import annotations

import os
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


class FaultyDiskFileSystem(FileSystem):
    """A FileSystem whose writes, fsyncs or reads fail with an ``OSError`` (ENOSPC, EIO, ...) for files
    under chosen directories, as a full or broken disk does; every other call works. Arm it with
    :meth:`fail_writes`, :meth:`fail_fsyncs` or :meth:`fail_reads` once the logs exist."""

    def __init__(self) -> None:
        self._paths: dict[int, Path] = {}
        self._write_faults: dict[Path, int] = {}
        self._fsync_faults: dict[Path, int] = {}
        self._read_faults: dict[Path, int] = {}
        self.failures = 0

    def fail_writes(self, directory: Path, errno_: int) -> None:
        self._write_faults[directory] = errno_

    def fail_fsyncs(self, directory: Path, errno_: int) -> None:
        self._fsync_faults[directory] = errno_

    def fail_reads(self, directory: Path, errno_: int) -> None:
        self._read_faults[directory] = errno_

    def _maybe_fail(self, faults: dict[Path, int], path: Path | None) -> None:
        if path is None:
            return
        for directory, errno_ in faults.items():
            if path.is_relative_to(directory):
                self.failures += 1
                raise OSError(errno_, os.strerror(errno_), str(path))

    def open(self, path: Path, *, create: bool = False, writable: bool = True) -> int:
        fd = super().open(path, create=create, writable=writable)
        self._paths[fd] = Path(path)
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> int:
        self._maybe_fail(self._write_faults, self._paths.get(fd))
        return super().pwrite(fd, data, position)

    def fsync(self, fd: int) -> None:
        self._maybe_fail(self._fsync_faults, self._paths.get(fd))
        super().fsync(fd)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        self._maybe_fail(self._read_faults, self._paths.get(fd))
        return super().pread(fd, size, position)
