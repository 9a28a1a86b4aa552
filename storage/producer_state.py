"""Idempotent-producer state of one partition and its snapshot files (Kafka's ProducerStateManager).

For each producer id the partition remembers its epoch and its last five batches (sequence range
and offsets). An incoming batch from a known epoch must continue the sequence; a batch that
repeats one of the five is a retry whose first attempt was appended, so the broker acknowledges
it with the original offsets and appends nothing. Everything needed lives in batch headers, so
the state can always be rebuilt by scanning headers — no record is decoded.

To avoid scanning the whole log at start-up the state is saved in Kafka's producer snapshot
files, ``<20-digit offset>.snapshot`` in the partition directory, byte for byte as Kafka 3.9
writes them (so either broker reads the other's)::

    version: int16 (1) | crc: uint32 (CRC-32C of everything after it) | count: int32
    count x (producer_id int64 | epoch int16 | last_sequence int32 | last_offset int64 |
             offset_delta int32 | timestamp int64 | coordinator_epoch int32 |
             current_txn_first_offset int64)

A snapshot at offset ``o`` holds the state after every batch below ``o``. Like Kafka's, it keeps
only each producer's last batch, so right after a reload a retry of an older one of the five
is not recognised as a duplicate (Kafka answers the same way).

The :class:`~storage.log.Log` owns one manager and decides when snapshots are taken (segment
roll, clean shutdown, after loading) and dropped (segments deleted, truncation).
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from protocol.records.batch import NO_PRODUCER_EPOCH, NO_SEQUENCE, BatchHeader
from protocol.records.crc import crc32c
from storage.fast_dataclass import dataclass, field
from storage.fs import FileSystem

#: Kafka keeps this many batches per producer for duplicate detection (and so do clients:
#: max.in.flight.requests.per.connection <= 5 with idempotence).
BATCHES_PER_PRODUCER = 5
INT32_MAX = (1 << 31) - 1
#: ``producer.id.expiration.ms`` default (one day).
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
#: version, crc; then the entry count, where the CRC-covered part starts (Kafka: offset 6).
_SNAPSHOT_HEADER = struct.Struct(">hIi")
_CRC_START = 6
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
_SNAPSHOT_FILE = re.compile(r"^(\d{20})\.snapshot$")
_SNAPSHOT_LEFTOVER = re.compile(r"^\d{20}\.snapshot\.(tmp|deleted)$")


class InvalidProducerEpoch(Exception):
    """The batch's epoch is older than the producer's current one (a fenced zombie)."""


class OutOfOrderSequence(Exception):
    """The batch's first sequence does not follow the producer's last one."""


class CorruptSnapshotError(Exception):
    """A producer snapshot file fails its CRC, has an unknown version or is cut short."""


@dataclass(slots=True, frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_PER_PRODUCER))
    last_timestamp: int = -1
    coordinator_epoch: int = -1
    #: First offset of the producer's ongoing transaction, -1 when none (no transactions yet).
    current_txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.epoch:
            return None
        for meta in self.batches:
            if meta.first_seq == first_seq and meta.last_seq == last_seq:
                return meta
        return None


@dataclass(slots=True, frozen=True)
class SnapshotEntry:
    """One producer as a snapshot file stores it (Kafka's field names and meaning)."""

    producer_id: int
    epoch: int
    last_sequence: int
    last_offset: int
    offset_delta: int
    timestamp: int
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


def _decrement_sequence(seq: int, delta: int) -> int:
    """Kafka's DefaultRecordBatch.decrementSequence: sequences wrap at Int.MAX."""
    return seq + (INT32_MAX - delta) + 1 if seq < delta else seq - delta


def snapshot_file_name(offset: int) -> str:
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


def encode_snapshot(entries: Iterable[SnapshotEntry]) -> bytes:
    """A snapshot file's bytes, as Kafka's ``ProducerStateManager.writeSnapshot``."""
    items = list(entries)
    buf = bytearray(_SNAPSHOT_HEADER.size + _SNAPSHOT_ENTRY.size * len(items))
    _SNAPSHOT_HEADER.pack_into(buf, 0, SNAPSHOT_VERSION, 0, len(items))
    pos = _SNAPSHOT_HEADER.size
    for e in items:
        _SNAPSHOT_ENTRY.pack_into(
            buf,
            pos,
            e.producer_id,
            e.epoch,
            e.last_sequence,
            e.last_offset,
            e.offset_delta,
            e.timestamp,
            e.coordinator_epoch,
            e.current_txn_first_offset,
        )
        pos += _SNAPSHOT_ENTRY.size
    struct.pack_into(">I", buf, 2, crc32c(memoryview(buf)[_CRC_START:]))
    return bytes(buf)


def decode_snapshot(data: bytes) -> list[SnapshotEntry]:
    """Parse a snapshot file; :class:`CorruptSnapshotError` for anything Kafka would reject."""
    if len(data) < _SNAPSHOT_HEADER.size:
        raise CorruptSnapshotError(f"snapshot of {len(data)} bytes is shorter than its header")
    version, crc, count = _SNAPSHOT_HEADER.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshotError(f"snapshot has unknown version {version}")
    computed = crc32c(memoryview(data)[_CRC_START:])
    if crc != computed:
        raise CorruptSnapshotError(f"snapshot CRC {crc} does not match the computed {computed}")
    if count < 0 or _SNAPSHOT_HEADER.size + count * _SNAPSHOT_ENTRY.size > len(data):
        raise CorruptSnapshotError(f"snapshot declares {count} entries in {len(data)} bytes")
    return [
        SnapshotEntry(*_SNAPSHOT_ENTRY.unpack_from(data, _SNAPSHOT_HEADER.size + i * _SNAPSHOT_ENTRY.size))
        for i in range(count)
    ]


def list_snapshot_offsets(directory: Path) -> list[int]:
    """Offsets of the ``.snapshot`` files in ``directory``, ascending."""
    if not directory.is_dir():
        return []
    found = (_SNAPSHOT_FILE.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in found if m is not None)


class ProducerStateManager:
    """Producer ids seen on one partition, the sequence state of each, and its snapshots.

    Mutated only by the thread that appends (the broker's event loop) and by the log under its
    lock; snapshot fsyncs are left to :meth:`storage.log.Log.flush`.
    """

    def __init__(
        self,
        directory: Path | None = None,
        fs: FileSystem | None = None,
        expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.directory = directory
        self.fs = fs if fs is not None else FileSystem()
        self.expiration_ms = expiration_ms
        #: Offsets of the snapshot files on disk.
        self.snapshots: set[int] = set()
        #: Offset of the latest snapshot taken or loaded (Kafka's lastSnapOffset).
        self.last_snapshot_offset = 0
        #: Offset up to which the state was restored by the last reload (the scan starts there).
        self.map_end_offset = 0
        #: Batches replayed from the log by the last rebuild (load statistics, tests).
        self.batches_replayed = 0
        if directory is not None:
            self._remove_leftovers(directory)
            self.snapshots = set(list_snapshot_offsets(directory))

    # -- validation and updates --------------------------------------------------------------------

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validate a client batch before it is appended.

        Returns the metadata of the earlier append when the batch is a duplicate; raises
        :class:`InvalidProducerEpoch` or :class:`OutOfOrderSequence` when it must be rejected;
        returns None when it may be appended.
        """
        pid = header.producer_id
        if pid < 0:
            return None
        entry = self.producers.get(pid)
        epoch = header.producer_epoch
        first_seq = header.base_sequence
        if entry is None:
            # Unknown producer (new, or its batches were removed by retention): accept any
            # sequence, as Kafka does when it has no epoch for the producer.
            return None
        duplicate = entry.find_duplicate(epoch, first_seq, header.last_sequence)
        if duplicate is not None:
            return duplicate
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"epoch {epoch} of producer {pid} is older than its current epoch {entry.epoch}"
            )
        if epoch != entry.epoch:
            if first_seq != 0 and entry.epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequence(
                    f"producer {pid} starts epoch {epoch} at sequence {first_seq}, expected 0"
                )
        elif entry.epoch != NO_PRODUCER_EPOCH and not _in_sequence(entry.last_seq, first_seq):
            raise OutOfOrderSequence(f"producer {pid} sent sequence {first_seq} after {entry.last_seq}")
        return None

    def update(self, header: BatchHeader, first_offset: int) -> None:
        """Record a batch that was appended at ``first_offset`` (leader or follower, or replay)."""
        pid = header.producer_id
        if pid < 0:
            return
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry()
        if header.producer_epoch != entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        if header.is_control:
            entry.last_timestamp = header.max_timestamp
            return
        entry.batches.append(
            BatchMetadata(
                header.base_sequence,
                header.last_sequence,
                first_offset,
                first_offset + header.last_offset_delta,
                header.max_timestamp,
            )
        )
        entry.last_timestamp = header.max_timestamp

    def rebuild(self, headers: Iterable[BatchHeader]) -> None:
        """Forget everything and replay the headers of a log from its start."""
        self.producers.clear()
        self.replay(headers)

    def replay(self, headers: Iterable[BatchHeader]) -> None:
        """Apply the headers of batches read back from the log, in order."""
        count = 0
        for header in headers:
            self.update(header, header.base_offset)
            count += 1
        self.batches_replayed += count

    # -- expiration --------------------------------------------------------------------------------

    def _expired(self, entry: ProducerEntry | SnapshotEntry, now_ms: int, expiration_ms: int) -> bool:
        # Kafka's isProducerExpired: never while a transaction is open; otherwise by the
        # timestamp of the producer's last batch (its max timestamp, client-chosen).
        last = entry.last_timestamp if isinstance(entry, ProducerEntry) else entry.timestamp
        return entry.current_txn_first_offset < 0 and now_ms - last >= expiration_ms

    def expire(self, now_ms: int, expiration_ms: int | None = None) -> int:
        """Forget producers idle for ``producer.id.expiration.ms`` or longer; returns how many."""
        limit = self.expiration_ms if expiration_ms is None else expiration_ms
        stale = [pid for pid, e in self.producers.items() if self._expired(e, now_ms, limit)]
        for pid in stale:
            del self.producers[pid]
        return len(stale)

    # -- snapshots ---------------------------------------------------------------------------------

    def latest_snapshot_offset(self) -> int | None:
        return max(self.snapshots) if self.snapshots else None

    def snapshot_path(self, offset: int) -> Path:
        assert self.directory is not None
        return self.directory / snapshot_file_name(offset)

    def snapshot_entries(self) -> list[SnapshotEntry]:
        entries = []
        for pid, e in self.producers.items():
            last = e.batches[-1] if e.batches else None
            entries.append(
                SnapshotEntry(
                    pid,
                    e.epoch,
                    e.last_seq,
                    last.last_offset if last is not None else -1,
                    last.last_offset - last.first_offset if last is not None else 0,
                    e.last_timestamp,
                    e.coordinator_epoch,
                    e.current_txn_first_offset,
                )
            )
        return entries

    def take_snapshot(self, offset: int, *, sync: bool) -> Path | None:
        """Write the state as the snapshot at ``offset`` unless a snapshot at or above it was
        already taken (Kafka: only when the map end offset moved past the last snapshot).

        The file is written to ``.tmp`` and renamed, so a reader never sees half a file. With
        ``sync`` it is fsync'd before the rename and the directory after; without, the caller
        must fsync the returned path and the directory later (the log's flush does).
        """
        if self.directory is None or offset <= self.last_snapshot_offset:
            return None
        path = self.snapshot_path(offset)
        tmp = path.with_name(path.name + ".tmp")
        data = encode_snapshot(self.snapshot_entries())
        fd = self.fs.open(tmp, create=True)
        try:
            self.fs.ftruncate(fd, 0)
            self.fs.write_all(fd, data, 0)
            if sync:
                self.fs.fsync(fd)
        finally:
            self.fs.close(fd)
        self.fs.replace(tmp, path)
        if sync:
            self.fs.fsync_dir(path.parent)
        self.snapshots.add(offset)
        self.last_snapshot_offset = offset
        return path

    def remove_snapshot(self, offset: int) -> None:
        """Delete the snapshot at ``offset`` now (if there is one)."""
        if offset in self.snapshots:
            self.snapshots.discard(offset)
            with contextlib.suppress(FileNotFoundError):
                self.fs.unlink(self.snapshot_path(offset))

    def mark_snapshot_for_deletion(self, offset: int) -> Path | None:
        """Rename the snapshot at ``offset`` to ``.deleted`` and return the new path (Kafka's
        removeAndMarkSnapshotForDeletion: its segment is going away)."""
        if offset not in self.snapshots:
            return None
        self.snapshots.discard(offset)
        path = self.snapshot_path(offset)
        deleted = path.with_name(path.name + ".deleted")
        try:
            self.fs.replace(path, deleted)
        except FileNotFoundError:
            return None
        return deleted

    def remove_stray_snapshots(self, segment_base_offsets: Iterable[int]) -> None:
        """Kafka's removeStraySnapshots: keep the snapshots at segment base offsets, and of the
        others only the latest, if it lies above every base offset (the clean-shutdown one)."""
        bases = set(segment_base_offsets)
        stray = sorted(o for o in self.snapshots if o not in bases)
        keep_last = bool(stray) and (not bases or stray[-1] >= max(bases))
        for offset in stray[:-1] if keep_last else stray:
            self.remove_snapshot(offset)

    def truncate_and_reload(self, log_start_offset: int, log_end_offset: int, now_ms: int) -> int:
        """Drop snapshots above ``log_end_offset`` or at or below ``log_start_offset``, then
        load the latest remaining one (a corrupt one is deleted and the next tried). Returns the
        offset from which the log must be replayed (the snapshot's, or the log start offset)."""
        for offset in sorted(self.snapshots):
            if offset > log_end_offset or offset <= log_start_offset:
                self.remove_snapshot(offset)
        self.producers.clear()
        self.batches_replayed = 0
        while self.snapshots:
            offset = max(self.snapshots)
            try:
                entries = decode_snapshot(self.fs.read_file(self.snapshot_path(offset)))
            except (CorruptSnapshotError, FileNotFoundError):
                self.remove_snapshot(offset)
                continue
            for e in entries:
                if not self._expired(e, now_ms, self.expiration_ms):
                    self._load_entry(e)
            self.last_snapshot_offset = self.map_end_offset = offset
            return offset
        self.last_snapshot_offset = self.map_end_offset = log_start_offset
        return log_start_offset

    def truncate_fully(self, offset: int) -> None:
        """Forget every producer and delete every snapshot (the log restarts at ``offset``)."""
        self.producers.clear()
        for snapshot in sorted(self.snapshots):
            self.remove_snapshot(snapshot)
        self.last_snapshot_offset = 0
        self.map_end_offset = offset

    def _load_entry(self, e: SnapshotEntry) -> None:
        entry = ProducerEntry(
            e.epoch,
            last_timestamp=e.timestamp,
            coordinator_epoch=e.coordinator_epoch,
            current_txn_first_offset=e.current_txn_first_offset,
        )
        if e.last_offset >= 0:
            entry.batches.append(
                BatchMetadata(
                    _decrement_sequence(e.last_sequence, e.offset_delta),
                    e.last_sequence,
                    e.last_offset - e.offset_delta,
                    e.last_offset,
                    e.timestamp,
                )
            )
        self.producers[e.producer_id] = entry

    def _remove_leftovers(self, directory: Path) -> None:
        """A crash can leave a ``.tmp`` snapshot (never renamed) or a ``.deleted`` one."""
        if not directory.is_dir():
            return
        for path in directory.iterdir():
            if _SNAPSHOT_LEFTOVER.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.unlink(path)
