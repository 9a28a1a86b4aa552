"""A bounded, least-recently-used pool of open segment file descriptors.

Thousands of partitions times dozens of segments would exhaust the process's descriptor limit
if every ``.log`` file stayed open (Kafka keeps them all open and asks operators to raise
``ulimit -n``). Here a segment opens its file on first use and the pool closes the least recently
used ones beyond ``capacity``. Index files hold no descriptor at all: they are read whole on first
use and written on flush/roll/close (see :mod:`storage.index`).

A busy log's active segment keeps a "writer pin" between appends (at most half the pool), so
the append path skips two lock round trips; ``LogManager.flush_due`` drops the pins of logs
that saw no append since its previous call.

A descriptor is *pinned* while a caller uses it (an append's ``pwrite``, a flush's ``dup``), so a
flush running in a worker thread never sees its descriptor closed by eviction on the event-loop
thread. The pool has its own lock; callers never hold it while doing I/O.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from storage.fs import FileSystem


class ManagedFile:
    """One segment's ``.log`` file: its path and, while open, its descriptor."""

    __slots__ = ("fd", "path", "pins")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.pins = 0

    def __repr__(self) -> str:
        return f"ManagedFile({self.path.name}, fd={self.fd}, pins={self.pins})"


class HandleCache:
    def __init__(self, fs: FileSystem, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.fs = fs
        self.capacity = capacity
        self._open: OrderedDict[ManagedFile, None] = OrderedDict()
        self._lock = threading.Lock()
        #: Number of open() calls made; lets tests and the bench see the cache working.
        self.opens = 0
        #: Active segments may keep their pin between appends (a "writer pin") so the append
        #: path skips the pool; at most half the capacity, so idle files can still be closed.
        self.writer_pin_budget = max(1, capacity // 2)
        self.writer_pins = 0

    def acquire(self, f: ManagedFile, *, create: bool = False) -> int:
        """Return an open descriptor for ``f`` and pin it until :meth:`release`."""
        with self._lock:
            f.pins += 1  # before any eviction, so f itself is never the victim
            if f.fd < 0:
                try:
                    f.fd = self.fs.open(f.path, create=create)
                except BaseException:
                    f.pins -= 1
                    raise
                self.opens += 1
                self._open[f] = None
                self._evict_locked()
            else:
                self._open.move_to_end(f)
            return f.fd

    def release(self, f: ManagedFile) -> None:
        with self._lock:
            f.pins -= 1

    def grant_writer_pin(self) -> bool:
        """Whether a writer may keep the pin it holds (see ``writer_pin_budget``)."""
        with self._lock:
            if self.writer_pins < self.writer_pin_budget:
                self.writer_pins += 1
                return True
            return False

    def release_writer_pin(self, f: ManagedFile) -> None:
        with self._lock:
            f.pins -= 1
            self.writer_pins -= 1

    def close(self, f: ManagedFile) -> None:
        """Close ``f`` now (segment deleted, renamed away or log closed)."""
        with self._lock:
            if f.fd >= 0:
                self._open.pop(f, None)
                fd, f.fd = f.fd, -1
                self.fs.close(fd)

    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def _evict_locked(self) -> None:
        if len(self._open) <= self.capacity:
            return
        for victim in list(self._open):
            if len(self._open) <= self.capacity:
                break
            if victim.pins == 0:
                del self._open[victim]
                fd, victim.fd = victim.fd, -1
                self.fs.close(fd)
