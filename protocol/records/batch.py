"""Zero-copy view of record-batch headers (magic v2) and batch iteration over a buffer.

Layout of a v2 batch (implementation.html, "Record Batch"); offsets are from the batch start::

    0  baseOffset int64        8  batchLength int32      12 partitionLeaderEpoch int32
    16 magic int8              17 crc uint32 (CRC-32C of bytes 21..end)
    21 attributes int16        23 lastOffsetDelta int32  27 baseTimestamp int64
    35 maxTimestamp int64      43 producerId int64       51 producerEpoch int16
    53 baseSequence int32      57 recordsCount int32     61 records...

Legacy message sets (magic 0/1) share the first 12 bytes (offset int64, size int32) and keep the
magic byte at position 16 too, so one iterator can frame both kinds. Nothing here decodes records
(see :mod:`protocol.records.record`); the in-place setters patch the base offset and leader epoch
(outside the CRC) or the timestamp type and max timestamp (recomputing the CRC), as Kafka's broker does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from protocol.exceptions import CorruptRecordError
from protocol.records.crc import crc32c

BASE_OFFSET_OFFSET = 0
LENGTH_OFFSET = 8
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
LAST_OFFSET_DELTA_OFFSET = 23
BASE_TIMESTAMP_OFFSET = 27
MAX_TIMESTAMP_OFFSET = 35
PRODUCER_ID_OFFSET = 43
PRODUCER_EPOCH_OFFSET = 51
BASE_SEQUENCE_OFFSET = 53
RECORDS_COUNT_OFFSET = 57
RECORD_BATCH_OVERHEAD = 61
#: Bytes before the part that batchLength counts (baseOffset + batchLength).
LOG_OVERHEAD = 12
#: Smallest legacy entry: log overhead + crc, magic, attributes, key and value lengths (magic 0).
MIN_LEGACY_ENTRY = LOG_OVERHEAD + 14

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_PREFIX = struct.Struct(">qi")


class BatchHeader(NamedTuple):
    """The 61-byte header of a v2 record batch, decoded in one ``unpack``."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_MASK)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def delete_horizon_ms(self) -> int | None:
        """The delete horizon (stored as the base timestamp) when the attribute bit says so."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_MASK else None

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        # Sequences wrap at int32 max, as in Kafka's DefaultRecordBatch.incrementSequence.
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the v2 header at ``pos``. The caller checks ``magic`` before trusting the rest."""
    if pos < 0 or len(buf) - pos < RECORD_BATCH_OVERHEAD:
        raise CorruptRecordError(f"record batch header truncated at position {pos}")
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def entry_prefix(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """(base offset, size in bytes including the 12-byte prefix) of the entry at ``pos``."""
    if pos < 0 or len(buf) - pos < LOG_OVERHEAD:
        raise CorruptRecordError(f"record entry prefix truncated at position {pos}")
    offset, length = _PREFIX.unpack_from(buf, pos)
    return offset, length + LOG_OVERHEAD


def magic_at(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """Magic byte of the batch or legacy entry at ``pos`` (same position in all formats)."""
    if pos < 0 or len(buf) - pos <= MAGIC_OFFSET:
        raise CorruptRecordError(f"record entry truncated before its magic byte at position {pos}")
    value: int = buf[pos + MAGIC_OFFSET]
    return value - 256 if value > 127 else value


def compute_crc(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    """CRC-32C over attributes..end of the v2 batch at ``pos`` spanning ``size`` bytes."""
    view = memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + size]
    return int(crc32c(view))


def crc_is_valid(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bool:
    return compute_crc(buf, pos, header.size) == header.crc


def set_base_offset(buf: bytearray | memoryview, pos: int, base_offset: int) -> None:
    """Rewrite the base offset in place; the CRC does not cover it."""
    _I64.pack_into(buf, pos + BASE_OFFSET_OFFSET, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Rewrite the partition leader epoch in place; the CRC does not cover it."""
    _I32.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def set_max_timestamp(
    buf: bytearray | memoryview, pos: int, timestamp: int, *, log_append_time: bool
) -> None:
    """Set the timestamp type bit and maxTimestamp of the v2 batch at ``pos`` and recompute its CRC,
    as Kafka's ``DefaultRecordBatch.setMaxTimestamp`` (a no-op when both are already so)."""
    header = read_header(buf, pos)
    if header.magic != 2:
        raise CorruptRecordError(f"entry at position {pos} is not a v2 record batch")
    size = header.size
    if size < RECORD_BATCH_OVERHEAD or len(buf) - pos < size:
        raise CorruptRecordError(f"record batch at position {pos} is truncated or too small")
    attributes = header.attributes & ~TIMESTAMP_TYPE_MASK
    if log_append_time:
        attributes |= TIMESTAMP_TYPE_MASK
    if attributes == header.attributes and timestamp == header.max_timestamp:
        return
    _I16.pack_into(buf, pos + ATTRIBUTES_OFFSET, attributes)
    _I64.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp)
    _U32.pack_into(buf, pos + CRC_OFFSET, compute_crc(buf, pos, size))


def set_log_append_time(buf: bytearray | memoryview, pos: int, timestamp: int) -> None:
    """Mark the v2 batch at ``pos`` as LogAppendTime with ``timestamp`` as its max timestamp and
    recompute the CRC: what Kafka's LogValidator does for ``message.timestamp.type=LogAppendTime``.
    Records then all report ``timestamp`` (their deltas stay untouched)."""
    set_max_timestamp(buf, pos, timestamp, log_append_time=True)


def iter_entries(buf: bytes | bytearray | memoryview, start: int = 0) -> Iterator[tuple[int, int]]:
    """Yield ``(position, size)`` of each complete entry (v2 batch or legacy message).

    Stops cleanly at a partial trailing entry, as a fetch response may end with one. An entry
    whose declared size is impossibly small raises :class:`CorruptRecordError`.
    """
    end = len(buf)
    pos = start
    unpack = _PREFIX.unpack_from
    while end - pos >= LOG_OVERHEAD:
        _, length = unpack(buf, pos)
        size = length + LOG_OVERHEAD
        if end - pos < size:
            return
        if size < MIN_LEGACY_ENTRY:
            raise CorruptRecordError(f"record entry at position {pos} declares {length} bytes")
        yield pos, size
        pos += size


def iter_batches(buf: bytes | bytearray | memoryview, start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` of each complete v2 batch; legacy entries raise.

    A trailing partial batch ends the iteration without error.
    """
    for pos, size in iter_entries(buf, start):
        if size < RECORD_BATCH_OVERHEAD or magic_at(buf, pos) != 2:
            raise CorruptRecordError(f"entry at position {pos} is not a v2 record batch")
        yield pos, BatchHeader._make(_HEADER.unpack_from(buf, pos))
