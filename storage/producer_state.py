"""Producer state of one partition and its snapshot files (Kafka's ProducerStateManager).

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

Transactions: a transactional batch opens its producer's transaction at its first offset (if
none is open); a COMMIT/ABORT marker ends it and records the coordinator epoch. Open
transactions, and ended ones whose marker is not yet below the high watermark, make up the
first unstable offset (Kafka's ongoingTxns and unreplicatedTxns), from which the log derives the
last stable offset. The open transaction's first offset is the snapshot's
``current_txn_first_offset``, so a reload reopens it.

KIP-890 verification (Kafka's VerificationStateEntry): before a transactional batch of a
producer with no open transaction here is appended, the leader asks the transaction coordinator
whether the partition is in the ongoing transaction. It first records a
:class:`VerificationStateEntry` holding a fresh :class:`VerificationGuard`; the append must
present that same guard (:meth:`ProducerStateManager.check`), so a marker that ended the
transaction meanwhile (it clears the entry) or a newer verification makes the stale one fail
with INVALID_TXN_STATE. The entry also keeps the lowest sequence seen while verifying, so that a
later batch cannot overtake one that must be retried. Entries are never in snapshots; one left
unverified expires with ``producer.id.expiration.ms``.

The :class:`~storage.log.Log` owns one manager and decides when snapshots are taken (segment
roll, clean shutdown, after loading) and dropped (segments deleted, truncation).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import struct
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from protocol.exceptions import CorruptRecordError
from protocol.records.batch import NO_PRODUCER_EPOCH, NO_SEQUENCE, BatchHeader
from protocol.records.crc import crc32c
from protocol.records.record import ABORT, COMMIT, decode_batch, parse_control_key, parse_end_txn_marker
from storage.fast_dataclass import dataclass, field
from storage.fs import FileSystem

#: Kafka keeps this many batches per producer for duplicate detection (and so do clients:
#: max.in.flight.requests.per.connection <= 5 with idempotence).
BATCHES_PER_PRODUCER = 5
INT32_MAX = (1 << 31) - 1
#: ``producer.id.expiration.ms`` default (one day).
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000

_NO_OFFSET = 1 << 63
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


class InvalidTxnState(Exception):
    """A non-transactional batch from a producer whose transaction is open (Kafka's
    InvalidTxnStateException)."""


class CoordinatorFenced(Exception):
    """A marker whose coordinator epoch is older than the one the producer's last marker carried
    (Kafka's TransactionCoordinatorFencedException)."""


class VerificationGuard:
    """A unique token for one verification of a producer's transaction on a partition (Kafka's
    VerificationGuard). :data:`SENTINEL_GUARD` verifies nothing."""

    __slots__ = ("value",)
    _ids = itertools.count(1)

    def __init__(self, value: int | None = None) -> None:
        self.value = next(VerificationGuard._ids) if value is None else value

    def verify(self, presented: VerificationGuard) -> bool:
        """Whether ``presented`` is this guard (the sentinel never is)."""
        return presented.value != 0 and presented.value == self.value

    def __repr__(self) -> str:
        return f"VerificationGuard({self.value})"


#: The guard of an append that started no verification: it passes only when the producer's
#: transaction is already open on the partition.
SENTINEL_GUARD = VerificationGuard(0)


@dataclass(slots=True)
class VerificationStateEntry:
    """A producer's verification in progress on one partition (Kafka's VerificationStateEntry)."""

    timestamp: int
    guard: VerificationGuard
    lowest_sequence: int
    epoch: int

    def update_lowest_sequence(self, sequence: int, epoch: int) -> None:
        """Keep the lowest sequence seen in the current epoch; a newer epoch starts over."""
        if epoch == self.epoch and sequence < self.lowest_sequence:
            self.lowest_sequence = sequence
        if epoch > self.epoch:
            self.epoch = epoch
            self.lowest_sequence = sequence


class CorruptSnapshotError(Exception):
    """A producer snapshot file fails its CRC, has an unknown version or is cut short."""


@dataclass(slots=True, frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True, frozen=True)
class TxnMarker:
    """The end-transaction marker of a control batch: COMMIT or ABORT, and the coordinator epoch."""

    committed: bool
    coordinator_epoch: int


@dataclass(slots=True, frozen=True)
class CompletedTxn:
    """A transaction ended by a marker at ``last_offset`` (Kafka's CompletedTxn)."""

    producer_id: int
    first_offset: int
    last_offset: int
    aborted: bool


@dataclass(slots=True)
class ProducerEntry:
    epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_PER_PRODUCER))
    last_timestamp: int = -1
    coordinator_epoch: int = -1
    #: First offset of the producer's ongoing transaction, -1 when none.
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


def marker_of_batch(batch: bytes | bytearray | memoryview, pos: int = 0) -> TxnMarker | None:
    """The end-transaction marker of the control batch at ``pos`` (None for another control
    type, such as KRaft's); :class:`CorruptRecordError` when its record cannot be parsed."""
    _, records = decode_batch(batch, pos, verify_crc=False)
    if not records:
        raise CorruptRecordError(f"control batch at position {pos} has no record")
    kind = parse_control_key(records[0].key)
    if kind not in (ABORT, COMMIT):
        return None
    return TxnMarker(kind == COMMIT, parse_end_txn_marker(records[0].value))


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
        #: Open transactions: first offset -> producer id (Kafka's ongoingTxns).
        self._ongoing: dict[int, int] = {}
        #: Ended transactions whose marker is not yet below the high watermark, by first offset
        #: (Kafka's unreplicatedTxns): they still hold the LSO back.
        self._unreplicated: dict[int, CompletedTxn] = {}
        #: KIP-890 verifications in progress, by producer id (never snapshotted).
        self._verifications: dict[int, VerificationStateEntry] = {}
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

    def check(
        self, header: BatchHeader, verification_guard: VerificationGuard | None = None
    ) -> BatchMetadata | None:
        """Validate a client batch before it is appended.

        Returns the metadata of the earlier append when the batch is a duplicate; raises
        :class:`InvalidProducerEpoch` or :class:`OutOfOrderSequence` when it must be rejected;
        returns None when it may be appended. With a ``verification_guard`` (KIP-890
        verification is on) a transactional batch of a producer without an open transaction
        must present its verification's guard (:class:`InvalidTxnState` otherwise).
        """
        pid = header.producer_id
        if pid < 0:
            return None
        entry = self.producers.get(pid)
        epoch = header.producer_epoch
        first_seq = header.base_sequence
        if entry is None:
            if verification_guard is not None and header.is_transactional:
                self.check_verified(pid, verification_guard)
                self._check_lowest_sequence(pid, first_seq)
            # Unknown producer (new, or its batches were removed by retention): accept any
            # sequence, as Kafka does when it has no epoch for the producer.
            return None
        duplicate = entry.find_duplicate(epoch, first_seq, header.last_sequence)
        if duplicate is not None:
            return duplicate
        if verification_guard is not None and header.is_transactional and entry.current_txn_first_offset < 0:
            self.check_verified(pid, verification_guard)
            self._check_lowest_sequence(pid, first_seq)
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
        if not header.is_transactional and entry.current_txn_first_offset >= 0:
            raise InvalidTxnState(
                f"Expected transactional write from producer {pid} at epoch {epoch}: its "
                f"transaction started at offset {entry.current_txn_first_offset} is still open"
            )
        return None

    def check_verified(self, producer_id: int, verification_guard: VerificationGuard) -> None:
        """KIP-890 (Kafka's batchMissingRequiredVerification): a transactional batch may open the
        producer's transaction here only with the guard of its verification;
        :class:`InvalidTxnState` otherwise. Passes when the transaction is already open."""
        entry = self.producers.get(producer_id)
        if entry is not None and entry.current_txn_first_offset >= 0:
            return
        state = self._verifications.get(producer_id)
        if state is None or not state.guard.verify(verification_guard):
            raise InvalidTxnState(f"Record of producer {producer_id} was not part of an ongoing transaction")

    def _check_lowest_sequence(self, producer_id: int, first_seq: int) -> None:
        state = self._verifications.get(producer_id)
        if state is not None and first_seq > state.lowest_sequence:
            raise OutOfOrderSequence(
                f"Out of order sequence number for producer {producer_id}: {first_seq} (incoming "
                f"seq. number), {state.lowest_sequence} (earliest seen sequence)"
            )

    def has_ongoing_transaction(self, producer_id: int) -> bool:
        entry = self.producers.get(producer_id)
        return entry is not None and entry.current_txn_first_offset >= 0

    def maybe_start_verification(
        self, producer_id: int, sequence: int, epoch: int, now_ms: int
    ) -> VerificationGuard:
        """Kafka's maybeStartTransactionVerification: :data:`SENTINEL_GUARD` when the producer's
        transaction is open here (nothing to verify), else the guard of its verification entry
        (created if needed; the lowest sequence and epoch updated)."""
        if self.has_ongoing_transaction(producer_id):
            return SENTINEL_GUARD
        state = self._verifications.get(producer_id)
        if state is None:
            state = self._verifications[producer_id] = VerificationStateEntry(
                now_ms, VerificationGuard(), sequence, epoch
            )
        else:
            state.update_lowest_sequence(sequence, epoch)
        return state.guard

    def verification_state(self, producer_id: int) -> VerificationStateEntry | None:
        return self._verifications.get(producer_id)

    def clear_verification(self, producer_id: int) -> None:
        self._verifications.pop(producer_id, None)

    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """Validate a COMMIT/ABORT marker before the leader appends it (Kafka's
        ProducerAppendInfo.appendEndTxnMarker checks): :class:`InvalidProducerEpoch` for an epoch
        older than the producer's, :class:`CoordinatorFenced` for a coordinator epoch older than
        the last marker's. A marker for an unknown producer is accepted, as in Kafka."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"marker epoch {producer_epoch} of producer {producer_id} is older than its "
                f"current epoch {entry.epoch}"
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise CoordinatorFenced(
                f"marker of producer {producer_id} from coordinator epoch {coordinator_epoch}, "
                f"older than the last seen {entry.coordinator_epoch}"
            )

    def update(
        self, header: BatchHeader, first_offset: int, marker: TxnMarker | None = None
    ) -> CompletedTxn | None:
        """Record a batch appended at ``first_offset`` (leader, follower or replay).

        A transactional data batch opens its producer's transaction if none is open; a control
        batch with its ``marker`` ends it. Returns the ended transaction (None when the marker
        ended no open transaction, or for any other batch); it is then unreplicated until the
        high watermark passes the marker (:meth:`on_high_watermark_updated`)."""
        pid = header.producer_id
        if pid < 0:
            return None
        if self._verifications and header.is_transactional:
            # A data batch opened the transaction or a marker ended it: the verification is over.
            self._verifications.pop(pid, None)
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry()
        if header.producer_epoch != entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        entry.last_timestamp = header.max_timestamp
        if header.is_control:
            if marker is None:
                return None
            completed = None
            first = entry.current_txn_first_offset
            if first >= 0:
                completed = CompletedTxn(pid, first, first_offset, not marker.committed)
                self._ongoing.pop(first, None)
                self._unreplicated[first] = completed
            entry.current_txn_first_offset = -1
            entry.coordinator_epoch = marker.coordinator_epoch
            return completed
        if header.is_transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = first_offset
            self._ongoing[first_offset] = pid
        entry.batches.append(
            BatchMetadata(
                header.base_sequence,
                header.last_sequence,
                first_offset,
                first_offset + header.last_offset_delta,
                header.max_timestamp,
            )
        )
        return None

    # -- transactions ------------------------------------------------------------------------------

    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest transaction that is open or whose marker is not yet
        below the high watermark (Kafka's firstUnstableOffset); None when there is none."""
        ongoing, unreplicated = self._ongoing, self._unreplicated
        if not ongoing and not unreplicated:
            return None
        return min(min(ongoing, default=_NO_OFFSET), min(unreplicated, default=_NO_OFFSET))

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The LSO once ``completed`` ended, as Kafka stores it in the aborted-transaction index:
        the first offset of the earliest other open transaction, else the marker's offset + 1."""
        others = [first for first, pid in self._ongoing.items() if pid != completed.producer_id]
        return min(others) if others else completed.last_offset + 1

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        """Forget the ended transactions whose marker is now below the high watermark."""
        if self._unreplicated:
            for first in [f for f, t in self._unreplicated.items() if t.last_offset < high_watermark]:
                del self._unreplicated[first]

    def ongoing_transactions(self) -> dict[int, int]:
        """First offset -> producer id of each open transaction (a copy)."""
        return dict(self._ongoing)

    def _forget_transactions(self) -> None:
        self._ongoing.clear()
        self._unreplicated.clear()

    def rebuild(self, headers: Iterable[BatchHeader]) -> None:
        """Forget everything and replay the headers of a log from its start (no markers: for
        logs without transactions)."""
        self.producers.clear()
        self._forget_transactions()
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
        if self._verifications:
            # Kafka's removeExpiredProducers: verifications never completed linger no longer.
            for pid in [p for p, v in self._verifications.items() if now_ms - v.timestamp >= limit]:
                del self._verifications[pid]
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
        self._forget_transactions()
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
        self._forget_transactions()
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
        if e.current_txn_first_offset >= 0:
            self._ongoing[e.current_txn_first_offset] = e.producer_id

    def _remove_leftovers(self, directory: Path) -> None:
        """A crash can leave a ``.tmp`` snapshot (never renamed) or a ``.deleted`` one."""
        if not directory.is_dir():
            return
        for path in directory.iterdir():
            if _SNAPSHOT_LEFTOVER.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.unlink(path)
