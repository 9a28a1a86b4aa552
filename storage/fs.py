"""Filesystem hooks: every system call storage makes that matters for durability.

All writes, truncations, fsyncs, renames and deletions of log data go through one
:class:`FileSystem` object that the :class:`~storage.manager.LogManager` hands to every log. Tests
substitute a subclass that fails the n-th write half-way, drops a rename, or records what was
fsync'd, which makes crash behaviour deterministic without killing processes. The default
implementation is a thin layer over :mod:`os`; the hot paths call it once per append (one
``pwrite``) and once per header-scan chunk (one ``pread``).
"""

from __future__ import annotations

import os
from pathlib import Path


class FileSystem:
    """Thin wrappers over :mod:`os`. Override any method to inject faults."""

    def open(self, path: Path, *, create: bool = False, writable: bool = True) -> int:
        flags = os.O_RDWR if writable else os.O_RDONLY
        if create:
            flags |= os.O_CREAT
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)

    def close(self, fd: int) -> None:
        os.close(fd)

    #: ``os.pwrite`` itself, not a wrapper: it is called on every append (a Python frame less).
    #: Subclasses override it with an ordinary method.
    pwrite = staticmethod(os.pwrite)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        return os.pread(fd, size, position)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def file_size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def mkdir(self, path: Path) -> None:
        """Create ``path`` and its missing parents; nothing if it exists."""
        path.mkdir(parents=True, exist_ok=True)

    def fsync_dir(self, path: Path) -> None:
        """Make renames and creations inside ``path`` durable."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- helpers built on the primitives above ---------------------------------------------------

    def write_all(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
        """``pwrite`` until every byte is written (a short write is legal for regular files)."""
        view = memoryview(data)
        total = len(view)
        done = self.pwrite(fd, view, position)
        while done < total:
            written = self.pwrite(fd, view[done:], position + done)
            if written <= 0:
                raise OSError(f"pwrite wrote {written} bytes")
            done += written

    def read_exact(self, fd: int, size: int, position: int) -> bytes:
        """``pread`` up to ``size`` bytes, looping over short reads; shorter only at end of file."""
        data = self.pread(fd, size, position)
        if len(data) == size or not data:
            return data
        parts = [data]
        got = len(data)
        while got < size:
            more = self.pread(fd, size - got, position + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def write_file_atomically(self, path: Path, data: bytes) -> None:
        """Write ``path.tmp``, fsync it, rename over ``path`` and fsync the directory, as
        Kafka's checkpoint files do, so a crash leaves either the old or the new content."""
        tmp = path.with_name(path.name + ".tmp")
        fd = self.open(tmp, create=True)
        try:
            self.ftruncate(fd, 0)
            self.write_all(fd, data, 0)
            self.fsync(fd)
        finally:
            self.close(fd)
        self.replace(tmp, path)
        self.fsync_dir(path.parent)

    def read_file(self, path: Path) -> bytes:
        fd = self.open(path, writable=False)
        try:
            return self.read_exact(fd, self.file_size(fd), 0)
        finally:
            self.close(fd)


class UnsyncedFileSystem(FileSystem):
    """:class:`FileSystem` without fsync, for data that does not outlive its process: an
    embedded broker's temporary directory, removed at stop (:mod:`broker.embedding`). A crash
    there loses nothing that was meant to last, and each fsync skipped is a few milliseconds (a
    topic's creation syncs several files and directories). Every other call is the same."""

    def fsync(self, fd: int) -> None:
        return None

    def fsync_dir(self, path: Path) -> None:
        return None
