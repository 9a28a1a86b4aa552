"""Sparse offset index (``.index``) and the machinery it shares with the time index.

File format (Kafka's ``OffsetIndex``): 8-byte big-endian entries ``relative_offset: int32,
position: int32`` where ``relative_offset = offset - segment_base_offset``. An entry maps the
last offset of a batch to the file position where that batch starts; entries are added once
more than ``index.interval.bytes`` have been appended since the previous one, so no entry ever
points at position 0. Offsets and positions both strictly increase. The active segment's file is
pre-allocated to ``segment.index.bytes`` (zeros after the valid entries, a sparse file) and
trimmed to exactly ``entries * 8`` bytes on roll and on close.

Why no ``mmap``: CPython's ``mmap`` keeps a duplicated descriptor per mapping, which is what
the descriptor pool (:mod:`storage.handles`) is there to avoid. Instead each index lives in two
``array`` objects, loaded lazily on first use with one read of the file, searched with
:func:`bisect.bisect_right` (a C loop, O(log n)), and written back on flush, roll and close.
Entries appended since the last flush exist only in memory until then; that is safe because
recovery rebuilds the indexes of every segment after the recovery point, and the recovery point
only advances through a flush, which writes the indexes first.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from pathlib import Path

from storage.fs import FileSystem

INT32_MAX = (1 << 31) - 1


class IndexOrderError(Exception):
    """Internal: an index append that violates monotonicity (a bug in the caller)."""


class SparseIndex:
    """Common part of the offset and time indexes: lazy loading, persistence, truncation.

    Entries are ``(key, value)`` pairs kept in two arrays; subclasses give the struct format,
    the array type codes and which column is an offset.
    """

    ENTRY_SIZE = 0
    _FORMAT = ""
    _KEY_TYPE = "i"
    _VALUE_TYPE = "i"

    __slots__ = (
        "_file_len",
        "_keys",
        "_max_entries",
        "_persisted",
        "_stale",
        "_values",
        "base_offset",
        "fs",
        "max_index_bytes",
        "path",
    )

    def __init__(self, fs: FileSystem, path: Path, base_offset: int, max_index_bytes: int) -> None:
        self.fs = fs
        self.path = path
        self.base_offset = base_offset
        self.max_index_bytes = max_index_bytes
        self._max_entries = max_index_bytes // self.ENTRY_SIZE
        self._keys: array[int] | None = None
        self._values: array[int] | None = None
        self._persisted = 0
        self._stale = False
        self._file_len = -1

    # -- loading ----------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._keys is not None

    def _ensure_loaded(self) -> tuple[array[int], array[int]]:
        keys, values = self._keys, self._values
        if keys is not None and values is not None:
            return keys, values
        exists = self.path.exists()
        data = self.fs.read_file(self.path) if exists else b""
        self._file_len = len(data) if exists else -1
        usable = len(data) - len(data) % self.ENTRY_SIZE
        # A pre-allocated file that was never trimmed (unclean stop) ends in zero entries. A real
        # entry is never all zeros (offset index: position 0 is never indexed; time index: an
        # entry for timestamp 0 at the base offset is indistinguishable and harmless to drop).
        # (Found with one C-level scan: a 10 MB pre-allocated file must not take a Python loop.)
        nonzero = len(bytes(data[:usable]).rstrip(b"\x00"))
        usable = -(-nonzero // self.ENTRY_SIZE) * self.ENTRY_SIZE
        keys = array(self._KEY_TYPE)
        values = array(self._VALUE_TYPE)
        for k, v in struct.iter_unpack(self._FORMAT, memoryview(data)[:usable]):
            keys.append(k)
            values.append(v)
        self._keys, self._values = keys, values
        self._persisted = len(keys)
        return keys, values

    def arrays(self) -> tuple[array[int], array[int]]:
        """The loaded ``(keys, values)`` arrays, for the append hot path."""
        keys, values = self._keys, self._values
        if keys is None or values is None:
            return self._ensure_loaded()
        return keys, values

    @property
    def entries(self) -> int:
        return len(self._ensure_loaded()[0])

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def is_full(self) -> bool:
        keys = self._keys
        if keys is None:
            keys = self._ensure_loaded()[0]
        return len(keys) >= self._max_entries

    def size_in_bytes(self) -> int:
        return self.entries * self.ENTRY_SIZE

    # -- mutation ---------------------------------------------------------------------------------

    def _truncate_to_entries(self, n: int) -> None:
        keys, values = self._ensure_loaded()
        if n < len(keys):
            del keys[n:]
            del values[n:]
            if self._persisted > n:
                self._persisted = n
                self._stale = True

    def reset(self) -> None:
        """Remove every entry (recovery rebuilds from scratch); the file is not read first."""
        self._keys, self._values = array(self._KEY_TYPE), array(self._VALUE_TYPE)
        self._persisted = 0
        self._file_len = 0
        self._stale = True

    def persist(self, *, preallocate: bool) -> None:
        """Write entries appended since the last call and size the file: pre-allocated to
        ``segment.index.bytes`` for the active segment, exactly ``entries * size`` otherwise."""
        if self._keys is None or self._values is None:
            if preallocate or not self.path.exists():
                self._ensure_loaded()
            else:
                return
        keys, values = self._ensure_loaded()
        size = self.ENTRY_SIZE
        n = len(keys)
        target = (self.max_index_bytes // size) * size if preallocate else n * size
        target = max(target, n * size)
        if self._persisted == n and not self._stale and self._file_len == target:
            return
        fd = self.fs.open(self.path, create=True)
        try:
            if self._stale:
                self.fs.ftruncate(fd, self._persisted * size)
                self._file_len = self._persisted * size
                self._stale = False
            if self._persisted < n:
                pack = struct.Struct(self._FORMAT).pack
                data = b"".join(pack(keys[i], values[i]) for i in range(self._persisted, n))
                self.fs.write_all(fd, data, self._persisted * size)
                self._persisted = n
                self._file_len = max(self._file_len, n * size)
            if self._file_len != target:
                self.fs.ftruncate(fd, target)
                self._file_len = target
        finally:
            self.fs.close(fd)

    def rename(self, new_path: Path) -> None:
        if self.path.exists():
            self.fs.replace(self.path, new_path)
        self.path = new_path


class OffsetIndex(SparseIndex):
    """``.index``: last offset of a batch -> file position of that batch."""

    ENTRY_SIZE = 8
    _FORMAT = ">ii"
    _KEY_TYPE = "i"
    _VALUE_TYPE = "i"
    __slots__ = ()

    def append(self, offset: int, position: int) -> None:
        keys, values = self._keys, self._values
        if keys is None or values is None:
            keys, values = self._ensure_loaded()
        rel = offset - self.base_offset
        if keys and rel <= keys[-1]:
            raise IndexOrderError(f"offset {offset} is not above the last indexed offset in {self.path}")
        if rel > INT32_MAX or rel < 0:
            raise IndexOrderError(f"offset {offset} overflows the index of segment {self.base_offset}")
        keys.append(rel)
        values.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """``(offset, position)`` of the largest entry with offset <= ``offset``, or
        ``(base_offset, 0)`` when there is none."""
        keys, values = self._ensure_loaded()
        slot = bisect.bisect_right(keys, offset - self.base_offset) - 1
        if slot < 0:
            return self.base_offset, 0
        return self.base_offset + keys[slot], values[slot]

    def slot_below_offset(self, offset: int) -> int:
        """Number of entries whose offset is < ``offset``."""
        keys, _ = self._ensure_loaded()
        return bisect.bisect_left(keys, offset - self.base_offset)

    def slot_at_or_below_position(self, position: int) -> int:
        """Number of entries whose position is <= ``position``."""
        _, values = self._ensure_loaded()
        return bisect.bisect_right(values, position)

    def entry(self, n: int) -> tuple[int, int]:
        keys, values = self._ensure_loaded()
        return self.base_offset + keys[n], values[n]

    def all_entries(self) -> list[tuple[int, int]]:
        keys, values = self._ensure_loaded()
        return [(self.base_offset + k, v) for k, v in zip(keys, values, strict=True)]

    def last_entry(self) -> tuple[int, int]:
        keys, values = self._ensure_loaded()
        if not keys:
            return self.base_offset, 0
        return self.base_offset + keys[-1], values[-1]

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= ``offset``."""
        self._truncate_to_entries(self.slot_below_offset(offset))

    def check(self, log_size: int) -> str | None:
        """Cheap consistency check (Kafka's ``sanityCheck`` plus bounds); a reason or None."""
        keys, values = self._ensure_loaded()
        if self._file_len % self.ENTRY_SIZE:
            return f"length {self._file_len} is not a multiple of {self.ENTRY_SIZE}"
        if not keys:
            return None
        if keys[0] < 0 or values[0] <= 0:
            return "first entry is before the segment start"
        if values[-1] >= log_size:
            return f"last entry points at {values[-1]} beyond the log size {log_size}"
        if len(keys) > 1 and (keys[-1] <= keys[-2] or values[-1] <= values[-2]):
            return "entries are not increasing"
        return None
