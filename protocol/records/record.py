"""Records of magic v2 batches: decoding and encoding whole batches, control records.

Record layout (implementation.html, "Record")::

    length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
    keyLength varint | key | valueLength varint | value | headerCount varint
    [headerKeyLength varint | headerKey (UTF-8) | headerValueLength varint | headerValue]

A record's absolute offset is ``baseOffset + offsetDelta``; its timestamp is
``baseTimestamp + timestampDelta`` for CreateTime batches and the batch's ``maxTimestamp`` for
LogAppendTime batches (see :func:`record_timestamp`). When a batch carries a delete horizon
(compaction), ``baseTimestamp`` *is* the delete horizon and the deltas are relative to it, as in Kafka.

Header keys are decoded from UTF-8 with ``surrogateescape``: Kafka itself accepts any bytes there, so
a key that is not valid UTF-8 still decodes, and re-encodes to the very same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records import compression as _codec
from protocol.records.batch import (
    COMPRESSION_MASK,
    CONTROL_MASK,
    CRC_OFFSET,
    DELETE_HORIZON_MASK,
    LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    compute_crc,
    read_header,
)
from protocol.records.varint import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    encode_varint,
    encode_varlong,
    read_varint,
    read_varlong,
)

Buffer = bytes | bytearray | memoryview

NO_TIMESTAMP: Final = -1

# Control record types (ControlRecordType.java). Only ABORT and COMMIT are transaction markers.
ABORT: Final = 0
COMMIT: Final = 1
LEADER_CHANGE: Final = 2
SNAPSHOT_HEADER: Final = 3
SNAPSHOT_FOOTER: Final = 4
KRAFT_VERSION: Final = 5
KRAFT_VOTERS: Final = 6
CONTROL_KEY_VERSION: Final = 0
END_TXN_MARKER_VERSION: Final = 0

_CONTROL_KEY = struct.Struct(">hh")
_END_TXN_VALUE = struct.Struct(">hi")
_HEADER = struct.Struct(">qiibIhiqqqhii")
_U32 = struct.Struct(">I")
_NULL = encode_varint(-1)


class Record:
    """One record of a v2 batch, with offset and timestamp relative to the batch.

    Written out rather than a dataclass (the same methods; ``headers`` defaults to a new list):
    this module is imported by every broker start, and a dataclass costs most of a millisecond."""

    __slots__ = ("attributes", "headers", "key", "offset_delta", "timestamp_delta", "value")

    def __init__(
        self,
        offset_delta: int,
        timestamp_delta: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None,
        attributes: int = 0,
    ) -> None:
        self.offset_delta = offset_delta
        self.timestamp_delta = timestamp_delta
        self.key = key
        self.value = value
        self.headers: list[tuple[str, bytes | None]] = [] if headers is None else headers
        self.attributes = attributes

    def _fields(self) -> tuple[Any, ...]:
        return (self.offset_delta, self.timestamp_delta, self.key, self.value, self.headers, self.attributes)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Record)
            return self._fields() == other._fields()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def __repr__(self) -> str:
        return (
            f"Record(offset_delta={self.offset_delta!r}, timestamp_delta={self.timestamp_delta!r}, "
            f"key={self.key!r}, value={self.value!r}, headers={self.headers!r}, "
            f"attributes={self.attributes!r})"
        )


def record_offset(header: BatchHeader, record: Record) -> int:
    return header.base_offset + record.offset_delta


def record_timestamp(header: BatchHeader, record: Record) -> int:
    """The record's timestamp as Kafka reports it (LogAppendTime batches: the batch max timestamp)."""
    if header.attributes & TIMESTAMP_TYPE_MASK:
        return header.max_timestamp
    return header.base_timestamp + record.timestamp_delta


# --------------------------------------------------------------------------------------- decode


def decode_batch(
    buf: Buffer,
    pos: int = 0,
    *,
    verify_crc: bool = True,
    max_uncompressed_size: int = _codec.DEFAULT_MAX_UNCOMPRESSED_SIZE,
) -> tuple[BatchHeader, list[Record]]:
    """Decode the complete v2 batch at ``pos`` (decompressing it) into its header and records.

    Raises :class:`CorruptRecordError` for anything malformed: short buffer, batch length below the
    61-byte header, wrong magic, CRC mismatch, unknown codec, undecompressable or oversized payload
    (``max_uncompressed_size``), a record count that disagrees with the data, bad varints, lengths
    that overrun their record, or bytes left over after the last record.
    """
    if pos < 0:
        raise CorruptRecordError(f"negative batch position {pos}")
    header = read_header(buf, pos)
    if header.magic != 2:
        raise CorruptRecordError(f"entry at position {pos} has magic {header.magic}, not 2")
    size = header.size
    if size < RECORD_BATCH_OVERHEAD:
        raise CorruptRecordError(f"record batch at position {pos} declares only {header.batch_length} bytes")
    if len(buf) - pos < size:
        raise CorruptRecordError(
            f"record batch at position {pos} declares {size} bytes but only {len(buf) - pos} are present"
        )
    if verify_crc and compute_crc(buf, pos, size) != header.crc:
        raise CorruptRecordError(
            f"record batch at position {pos} is corrupt (stored crc {header.crc:#010x}, "
            f"computed {compute_crc(buf, pos, size):#010x})"
        )
    count = header.records_count
    if count < 0:
        raise CorruptRecordError(f"record batch at position {pos} declares {count} records")
    payload = memoryview(buf)[pos + RECORD_BATCH_OVERHEAD : pos + size]
    codec = header.attributes & COMPRESSION_MASK
    if codec == _codec.NONE:
        data = bytes(payload)
    elif codec <= _codec.ZSTD:
        data = _codec.decompress(codec, payload, magic=2, max_size=max_uncompressed_size)
    else:
        raise CorruptRecordError(f"record batch at position {pos} uses unknown compression codec {codec}")
    return header, decode_records(data, count)


def decode_records(data: bytes, count: int) -> list[Record]:
    """Decode exactly ``count`` records that must fill ``data`` (an uncompressed records section)."""
    end = len(data)
    # Every record takes at least 7 bytes; refuse absurd counts before looping.
    if count * 7 > end:
        raise CorruptRecordError(f"{count} records cannot fit in {end} bytes")
    records: list[Record] = []
    append = records.append
    pos = 0
    for index in range(count):
        length, pos = read_varint(data, pos, end)
        if length < 0 or length > end - pos:
            raise CorruptRecordError(f"record {index} declares {length} bytes, {end - pos} remain")
        rec_end = pos + length
        if length < 6:
            raise CorruptRecordError(f"record {index} declares only {length} bytes")
        attributes = data[pos]
        pos += 1
        timestamp_delta, pos = read_varlong(data, pos, rec_end)
        offset_delta, pos = read_varint(data, pos, rec_end)
        key_len, pos = read_varint(data, pos, rec_end)
        if key_len < 0:
            if key_len != -1:
                raise CorruptRecordError(f"record {index} has key length {key_len}")
            key = None
        else:
            if key_len > rec_end - pos:
                raise CorruptRecordError(f"record {index} key of {key_len} bytes overruns the record")
            key = data[pos : pos + key_len]
            pos += key_len
        value_len, pos = read_varint(data, pos, rec_end)
        if value_len < 0:
            if value_len != -1:
                raise CorruptRecordError(f"record {index} has value length {value_len}")
            value = None
        else:
            if value_len > rec_end - pos:
                raise CorruptRecordError(f"record {index} value of {value_len} bytes overruns the record")
            value = data[pos : pos + value_len]
            pos += value_len
        header_count, pos = read_varint(data, pos, rec_end)
        headers: list[tuple[str, bytes | None]] = []
        if header_count:
            if header_count < 0 or header_count * 2 > rec_end - pos:
                raise CorruptRecordError(f"record {index} declares {header_count} headers")
            for _ in range(header_count):
                hk_len, pos = read_varint(data, pos, rec_end)
                if hk_len < 0 or hk_len > rec_end - pos:
                    raise CorruptRecordError(f"record {index} has a header key of length {hk_len}")
                h_key = data[pos : pos + hk_len].decode("utf-8", "surrogateescape")
                pos += hk_len
                hv_len, pos = read_varint(data, pos, rec_end)
                if hv_len < 0:
                    if hv_len != -1:
                        raise CorruptRecordError(f"record {index} has a header value of length {hv_len}")
                    h_value = None
                else:
                    if hv_len > rec_end - pos:
                        raise CorruptRecordError(f"record {index} header value overruns the record")
                    h_value = data[pos : pos + hv_len]
                    pos += hv_len
                headers.append((h_key, h_value))
        if pos != rec_end:
            raise CorruptRecordError(
                f"record {index} declares {length} bytes but its fields take {length - (rec_end - pos)}"
            )
        append(Record(offset_delta, timestamp_delta, key, value, headers, attributes))
    if pos != end:
        raise CorruptRecordError(f"{end - pos} bytes left after the {count} declared records")
    return records


# --------------------------------------------------------------------------------------- encode


def _encode_error(message: str) -> EncodeError:
    return EncodeError(message)


def encode_record(record: Record, out: bytearray, timestamp_shift: int = 0) -> None:
    """Append one record (length prefix included) to ``out``."""
    if not INT32_MIN <= record.offset_delta <= INT32_MAX:
        raise _encode_error(f"offset delta {record.offset_delta} outside int32")
    ts_delta = record.timestamp_delta + timestamp_shift
    if not INT64_MIN <= ts_delta <= INT64_MAX:
        raise _encode_error(f"timestamp delta {ts_delta} outside int64")
    if not 0 <= record.attributes <= 255:
        raise _encode_error(f"record attributes {record.attributes} outside 0..255")
    body = bytearray((record.attributes,))
    body += encode_varlong(ts_delta)
    body += encode_varint(record.offset_delta)
    for blob in (record.key, record.value):
        if blob is None:
            body += _NULL
        else:
            body += encode_varint(len(blob))
            body += blob
    headers = record.headers
    body += encode_varint(len(headers))
    for h_key, h_value in headers:
        try:
            raw_key = h_key.encode("utf-8", "surrogateescape")
        except (UnicodeEncodeError, AttributeError) as exc:
            raise _encode_error(f"header key {h_key!r} cannot be encoded as UTF-8") from exc
        body += encode_varint(len(raw_key))
        body += raw_key
        if h_value is None:
            body += _NULL
        else:
            body += encode_varint(len(h_value))
            body += h_value
    if len(body) > INT32_MAX:
        raise _encode_error("record larger than 2 GiB")
    out += encode_varint(len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    base_timestamp: int,
    max_timestamp: int | None = None,
    compression: int = 0,
    log_append_time: bool = False,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = -1,
    last_offset_delta: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode one v2 batch (CRC included) from ``records``.

    * Record timestamps are ``base_timestamp + timestamp_delta``. ``max_timestamp`` defaults to the
      largest of them (``-1`` for an empty batch); for LogAppendTime pass the append time.
    * ``last_offset_delta`` defaults to the last record's offset delta (0 when empty); compaction
      passes the original one. Offset deltas must be non-negative and strictly increasing.
    * ``delete_horizon_ms`` sets the hasDeleteHorizonMs attribute and is stored as the batch's base
      timestamp; record deltas are rebased onto it so that absolute timestamps are unchanged.
    * ``compression`` is a codec id 0-4; the records section is compressed even when that does not
      make it smaller (as Kafka's ``MemoryRecordsBuilder`` does).

    Raises :class:`EncodeError` for values the format cannot hold.
    """
    if not 0 <= compression <= _codec.ZSTD:
        raise _encode_error(f"unknown compression codec {compression}")
    attributes = compression
    if log_append_time:
        attributes |= TIMESTAMP_TYPE_MASK
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if control:
        attributes |= CONTROL_MASK
    shift = 0
    stored_base_timestamp = base_timestamp
    if delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_MASK
        stored_base_timestamp = delete_horizon_ms
        shift = base_timestamp - delete_horizon_ms

    previous = -1
    body = bytearray()
    for record in records:
        if record.offset_delta <= previous:
            raise _encode_error(f"offset delta {record.offset_delta} does not increase (previous {previous})")
        previous = record.offset_delta
        encode_record(record, body, shift)

    if last_offset_delta is None:
        last_offset_delta = previous if records else 0
    elif records and last_offset_delta < previous:
        raise _encode_error(f"last offset delta {last_offset_delta} is below a record's delta {previous}")
    if max_timestamp is None:
        max_timestamp = base_timestamp + max(r.timestamp_delta for r in records) if records else NO_TIMESTAMP

    payload = _codec.compress(compression, body) if compression else body
    size = RECORD_BATCH_OVERHEAD + len(payload)
    if size - LOG_OVERHEAD > INT32_MAX:
        raise _encode_error("record batch larger than 2 GiB")
    out = bytearray(size)
    try:
        _HEADER.pack_into(
            out,
            0,
            base_offset,
            size - LOG_OVERHEAD,
            partition_leader_epoch,
            2,
            0,
            attributes,
            last_offset_delta,
            stored_base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    except struct.error as exc:
        raise _encode_error(f"record batch header field out of range: {exc}") from exc
    out[RECORD_BATCH_OVERHEAD:] = payload
    _U32.pack_into(out, CRC_OFFSET, compute_crc(out, 0, size))
    return bytes(out)


# -------------------------------------------------------------------------------------- control


def control_key(kind: int, version: int = CONTROL_KEY_VERSION) -> bytes:
    return _CONTROL_KEY.pack(version, kind)


def control_record(kind: int, coordinator_epoch: int) -> Record:
    """The single record of a transaction marker batch (``kind`` is :data:`ABORT` or :data:`COMMIT`)."""
    if kind not in (ABORT, COMMIT):
        raise _encode_error(f"control type {kind} is not an end-transaction marker")
    try:
        value = _END_TXN_VALUE.pack(END_TXN_MARKER_VERSION, coordinator_epoch)
    except struct.error as exc:
        raise _encode_error(f"coordinator epoch {coordinator_epoch} outside int32") from exc
    return Record(offset_delta=0, timestamp_delta=0, key=control_key(kind), value=value)


def parse_control_key(key: bytes | None) -> int:
    """Control record type from a control record's key (unknown types are returned as they are).

    Like Kafka's ``ControlRecordType.parseTypeId``: at least 4 bytes, version >= 0; versions above 0
    are parsed as version 0.
    """
    if key is None or len(key) < _CONTROL_KEY.size:
        raise CorruptRecordError(f"control record key too short: {key!r}")
    version, kind = _CONTROL_KEY.unpack_from(key)
    if version < 0:
        raise CorruptRecordError(f"invalid control record key version {version}")
    return int(kind)


def parse_end_txn_marker(value: bytes | None) -> int:
    """Coordinator epoch from the value of an ABORT/COMMIT control record (``EndTransactionMarker``)."""
    if value is None or len(value) < _END_TXN_VALUE.size:
        raise CorruptRecordError(f"end transaction marker value too short: {value!r}")
    version, epoch = _END_TXN_VALUE.unpack_from(value)
    if version < 0:
        raise CorruptRecordError(f"invalid end transaction marker version {version}")
    return int(epoch)


def build_control_batch(
    kind: int,
    *,
    coordinator_epoch: int,
    producer_id: int,
    producer_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker batch as Kafka writes it (``MemoryRecords.withEndTransactionMarker``):
    transactional control batch, one record, no sequence, uncompressed."""
    return build_batch(
        [control_record(kind, coordinator_epoch)],
        base_offset=base_offset,
        base_timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=-1,
        transactional=True,
        control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


__all__ = [
    "ABORT",
    "COMMIT",
    "NO_TIMESTAMP",
    "Record",
    "build_batch",
    "build_control_batch",
    "control_key",
    "control_record",
    "decode_batch",
    "decode_records",
    "encode_record",
    "parse_control_key",
    "parse_end_txn_marker",
    "record_offset",
    "record_timestamp",
]
