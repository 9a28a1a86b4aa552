"""Idempotent-producer state of one partition (Kafka's ProducerStateManager, in short).

For each producer id the partition remembers its epoch and its last five batches (sequence range
and offsets). An incoming batch from a known epoch must continue the sequence; a batch that
repeats one of the five is a retry whose first attempt was appended, so the broker acknowledges
it with the original offsets and appends nothing. Everything needed lives in batch headers, so
the state is rebuilt at start by scanning headers — no record is decoded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.records.batch import NO_PRODUCER_EPOCH, NO_SEQUENCE, BatchHeader

#: Kafka keeps this many batches per producer for duplicate detection (and so do clients:
#: max.in.flight.requests.per.connection <= 5 with idempotence).
BATCHES_PER_PRODUCER = 5
INT32_MAX = (1 << 31) - 1


class InvalidProducerEpoch(Exception):
    """The batch's epoch is older than the producer's current one (a fenced zombie)."""


class OutOfOrderSequence(Exception):
    """The batch's first sequence does not follow the producer's last one."""


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


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """Producer ids seen on one partition and the sequence state of each."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

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
        """Replay the headers of a log (start-up, truncation)."""
        self.producers.clear()
        for header in headers:
            self.update(header, header.base_offset)

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle for longer than ``producer.id.expiration.ms``."""
        stale = [
            pid
            for pid, e in self.producers.items()
            if e.last_timestamp >= 0 and now_ms - e.last_timestamp > expiration_ms
        ]
        for pid in stale:
            del self.producers[pid]
        return len(stale)
