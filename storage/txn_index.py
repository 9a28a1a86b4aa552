"""The aborted-transaction index of one segment, ``<20-digit base>.txnindex`` (Kafka's TransactionIndex).

One 34-byte entry per transaction aborted by a marker in the segment, in marker order, byte for
byte as Kafka writes them (``AbortedTxn``)::

    version int16 (0) | producer_id int64 | first_offset int64 | last_offset int64 |
    last_stable_offset int64

``first_offset`` is where the producer's transaction started, ``last_offset`` the ABORT marker's
offset, and ``last_stable_offset`` the partition's LSO once the abort completed (the first offset
of the next transaction still open, else the marker's offset + 1). A read_committed fetch asks
for the aborted transactions overlapping the range it returns (:meth:`TransactionIndex.collect`).

The file is append-only; the entries are read lazily at the first query and kept in memory
(aborts are rare; a segment holds few). A torn last entry (crash during the append) is ignored on
read, and rewritten by recovery, which rebuilds the index of every segment it recovers.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

from storage.fast_dataclass import dataclass
from storage.fs import FileSystem

TXN_INDEX_VERSION = 0
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34


class CorruptTxnIndexError(Exception):
    """A ``.txnindex`` entry with an unknown version."""


@dataclass(slots=True, frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


def encode_entry(txn: AbortedTxn) -> bytes:
    return _ENTRY.pack(
        TXN_INDEX_VERSION, txn.producer_id, txn.first_offset, txn.last_offset, txn.last_stable_offset
    )


def decode_entries(data: bytes) -> list[AbortedTxn]:
    """Every whole entry of ``data`` (a torn trailing entry is dropped)."""
    out: list[AbortedTxn] = []
    for pos in range(0, len(data) - ENTRY_SIZE + 1, ENTRY_SIZE):
        version, pid, first, last, lso = _ENTRY.unpack_from(data, pos)
        if version != TXN_INDEX_VERSION:
            raise CorruptTxnIndexError(f"aborted transaction entry at {pos} has version {version}")
        out.append(AbortedTxn(pid, first, last, lso))
    return out


def collect_overlapping(
    entries: list[AbortedTxn], fetch_offset: int, upper_bound_offset: int
) -> tuple[list[AbortedTxn], bool]:
    """Kafka's TransactionIndex.collectAbortedTxns: the entries whose range overlaps
    ``[fetch_offset, upper_bound_offset)``, and whether the search is complete (an entry's LSO
    reached the upper bound, so later segments cannot hold a transaction that overlaps)."""
    found: list[AbortedTxn] = []
    for txn in entries:
        if txn.last_offset >= fetch_offset and txn.first_offset < upper_bound_offset:
            found.append(txn)
        if txn.last_stable_offset >= upper_bound_offset:
            return found, True
    return found, False


class TransactionIndex:
    """The ``.txnindex`` of one segment. Not thread-safe: the log's lock guards it."""

    __slots__ = ("_entries", "fs", "path")

    def __init__(self, fs: FileSystem, path: Path) -> None:
        self.fs = fs
        self.path = path
        self._entries: list[AbortedTxn] | None = None

    def entries(self) -> list[AbortedTxn]:
        if self._entries is None:
            try:
                data = self.fs.read_file(self.path)
            except FileNotFoundError:
                data = b""
            self._entries = decode_entries(data)
        return self._entries

    def append(self, txn: AbortedTxn) -> None:
        """Add an entry at the end of the file (created at its first entry, as Kafka's)."""
        entries = self.entries()
        if entries and txn.last_offset < entries[-1].last_offset:
            raise ValueError(
                f"aborted transaction ending at {txn.last_offset} appended after one ending at "
                f"{entries[-1].last_offset} in {self.path.name}"
            )
        fd = self.fs.open(self.path, create=True)
        try:
            self.fs.write_all(fd, encode_entry(txn), len(entries) * ENTRY_SIZE)
        finally:
            self.fs.close(fd)
        entries.append(txn)

    def collect(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        return collect_overlapping(self.entries(), fetch_offset, upper_bound_offset)

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or above ``offset`` (the log is cut there)."""
        entries = self.entries()
        keep = sum(1 for txn in entries if txn.last_offset < offset)
        if keep == len(entries):
            return
        del entries[keep:]
        self._rewrite_size(keep * ENTRY_SIZE)

    def reset(self) -> None:
        """Empty the index (recovery rebuilds it)."""
        self._entries = []
        with contextlib.suppress(FileNotFoundError):
            self.fs.unlink(self.path)

    def _rewrite_size(self, size: int) -> None:
        if size == 0:
            with contextlib.suppress(FileNotFoundError):
                self.fs.unlink(self.path)
            return
        fd = self.fs.open(self.path)
        try:
            self.fs.ftruncate(fd, size)
        finally:
            self.fs.close(fd)

    def rename(self, path: Path) -> None:
        if self.path.exists():
            self.fs.replace(self.path, path)
        self.path = path

    def flush(self) -> None:
        try:
            fd = self.fs.open(self.path)
        except FileNotFoundError:
            return
        try:
            self.fs.fsync(fd)
        finally:
            self.fs.close(fd)
