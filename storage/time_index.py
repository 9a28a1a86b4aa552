"""Sparse time index (``.timeindex``).

File format (Kafka's ``TimeIndex``): 12-byte big-endian entries ``timestamp: int64,
relative_offset: int32``. An entry says "the largest timestamp seen in this segment up to here
is ``timestamp``, first reached in the batch whose last offset is ``base + relative_offset``".
Entries are added together with offset-index entries (only when the timestamp grew) plus one
final entry when the segment stops being active, so the last entry holds the segment's largest
timestamp (retention reads it from there). Timestamps strictly increase, offsets never decrease.
``is_full`` keeps one slot free for that final entry, as Kafka does.
"""

from __future__ import annotations

import bisect

from storage.index import INT32_MAX, IndexOrderError, SparseIndex

NO_TIMESTAMP = -1


class TimeIndex(SparseIndex):
    ENTRY_SIZE = 12
    _FORMAT = ">qi"
    _KEY_TYPE = "q"
    _VALUE_TYPE = "i"
    __slots__ = ()

    def is_full(self) -> bool:
        keys = self._keys
        if keys is None:
            keys = self._ensure_loaded()[0]
        return len(keys) >= self._max_entries - 1

    def last_entry(self) -> tuple[int, int]:
        """``(timestamp, offset)`` of the last entry, or ``(-1, base_offset)`` if empty."""
        keys, values = self._ensure_loaded()
        if not keys:
            return NO_TIMESTAMP, self.base_offset
        return keys[-1], self.base_offset + values[-1]

    def maybe_append(self, timestamp: int, offset: int, *, skip_full_check: bool = False) -> None:
        """Append ``(timestamp, offset)`` if ``timestamp`` is larger than the last entry's."""
        keys, values = self._keys, self._values
        if keys is None or values is None:
            keys, values = self._ensure_loaded()
        if not skip_full_check and len(keys) >= self._max_entries - 1:
            raise IndexOrderError(f"time index {self.path} is full")
        rel = offset - self.base_offset
        if keys and rel < values[-1]:
            raise IndexOrderError(f"offset {offset} is below the last time-indexed offset in {self.path}")
        if rel < 0 or rel > INT32_MAX:
            raise IndexOrderError(f"offset {offset} overflows the time index of segment {self.base_offset}")
        if timestamp > (keys[-1] if keys else NO_TIMESTAMP):
            keys.append(timestamp)
            values.append(rel)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """``(timestamp, offset)`` of the largest entry with timestamp <= ``timestamp``, or
        ``(-1, base_offset)`` when there is none."""
        keys, values = self._ensure_loaded()
        slot = bisect.bisect_right(keys, timestamp) - 1
        if slot < 0:
            return NO_TIMESTAMP, self.base_offset
        return keys[slot], self.base_offset + values[slot]

    def all_entries(self) -> list[tuple[int, int]]:
        keys, values = self._ensure_loaded()
        return [(k, self.base_offset + v) for k, v in zip(keys, values, strict=True)]

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= ``offset``."""
        _, values = self._ensure_loaded()
        self._truncate_to_entries(bisect.bisect_left(values, offset - self.base_offset))

    def check(self) -> str | None:
        keys, values = self._ensure_loaded()
        if self._file_len % self.ENTRY_SIZE:
            return f"length {self._file_len} is not a multiple of {self.ENTRY_SIZE}"
        if keys and (keys[-1] < keys[0] or values[-1] < 0 or values[-1] < values[0]):
            return "entries are not increasing"
        return None
