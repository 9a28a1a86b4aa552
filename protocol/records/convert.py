"""Format conversion between legacy message sets (magic 0/1) and v2 batches, as Kafka's broker does.

* :func:`upconvert_to_v2`: Produce v0-v2 carries magic 0/1 message sets; Kafka's ``LogValidator``
  rebuilds them as one v2 batch before appending. Every message becomes a record with consecutive
  offset deltas (the broker assigns offsets), its key, value and timestamp (magic 0 has none: -1,
  ``RecordBatch.NO_TIMESTAMP``, exactly as Kafka stores it), no headers, no producer id. The codec
  is the source's unless the caller overrides it (topic ``compression.type``).
* :func:`downconvert`: Fetch v0-v3 clients only read magic 0/1. Kafka's ``RecordsUtil.downConvert``
  turns each v2 batch into messages at the same offsets: an uncompressed batch into one message per
  record, a compressed batch into one wrapper of the same codec. Control batches (transaction
  markers) are dropped; headers, producer ids and sequences are lost; zstd batches cannot be
  expressed and raise :class:`UnsupportedCompressionError`. Aborted transactional data is *not*
  filtered (old fetch versions are always read-uncommitted).
"""

from __future__ import annotations

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records import compression as _codec
from protocol.records.batch import COMPRESSION_MASK, CONTROL_MASK, TIMESTAMP_TYPE_MASK, iter_entries, magic_at
from protocol.records.errors import InvalidRecordError, UnsupportedCompressionError
from protocol.records.legacy import (
    LegacyMessage,
    MessageInput,
    _expand,
    _iter_shallow,
    _parse_message,
    build_message_set,
)
from protocol.records.record import NO_TIMESTAMP, Record, build_batch, decode_batch

Buffer = bytes | bytearray | memoryview


def upconvert_to_v2(
    buf: Buffer,
    *,
    now_ms: int,
    log_append_time: bool = False,
    compression: int | None = None,
    partition_leader_epoch: int = -1,
    max_uncompressed_size: int = _codec.DEFAULT_MAX_UNCOMPRESSED_SIZE,
) -> bytes:
    """Convert a produce request's magic 0/1 message set into a single v2 batch (base offset 0).

    With ``log_append_time`` the batch is LogAppendTime with ``now_ms`` as its max timestamp (record
    deltas keep the producer's timestamps, as Kafka's builder does); otherwise ``now_ms`` is unused
    and the max timestamp is the largest record timestamp (-1 when there are none, e.g. magic 0).

    Checks as Kafka does: CRCs (inner ones too), one magic for all entries and inner messages, at
    most one entry when compressed, no nested compression, no zstd, at least one message. A partial
    trailing entry is ignored, as Kafka trims it. Raises :class:`CorruptRecordError` (or its
    subclass :class:`InvalidRecordError`) and nothing else for bad input.
    """
    entries = list(_iter_shallow(buf, allow_partial=True))
    if not entries:
        raise InvalidRecordError("produce data has no complete message")
    magic = entries[0].magic
    source_codec = _codec.NONE
    for raw in entries:
        if raw.magic != magic:
            raise InvalidRecordError(f"message magic {raw.magic} differs from the first message's {magic}")
        codec = raw.attributes & COMPRESSION_MASK
        if codec:
            source_codec = codec
    if source_codec and len(entries) > 1:
        raise InvalidRecordError("compressed produce data must consist of a single wrapper message")
    messages: list[LegacyMessage] = []
    for raw in entries:
        messages.extend(_expand(raw, max_uncompressed_size, strict_magic=True))
    target = source_codec if compression is None else compression
    if target > _codec.ZSTD or target < 0:
        raise EncodeError(f"unknown compression codec {target}")

    timestamps = [NO_TIMESTAMP if m.timestamp is None else m.timestamp for m in messages]
    base_timestamp = timestamps[0]
    records = [
        Record(index, ts - base_timestamp, m.key, m.value)
        for index, (m, ts) in enumerate(zip(messages, timestamps, strict=True))
    ]
    max_timestamp = now_ms if log_append_time else max(NO_TIMESTAMP, *timestamps)
    for ts in timestamps:
        if ts < NO_TIMESTAMP:
            raise InvalidRecordError(f"invalid negative timestamp {ts}")
    try:
        return build_batch(
            records,
            base_timestamp=base_timestamp,
            max_timestamp=max_timestamp,
            compression=target,
            log_append_time=log_append_time,
            partition_leader_epoch=partition_leader_epoch,
        )
    except EncodeError as exc:  # e.g. timestamps too far apart for an int64 delta
        raise InvalidRecordError(f"cannot represent the messages as a v2 batch: {exc}") from exc


def _wrap64(value: int) -> int:
    """Two's complement int64 wrap-around, as Java's long arithmetic does."""
    return ((value + (1 << 63)) % (1 << 64)) - (1 << 63)


def downconvert(
    buf: Buffer,
    magic: int,
    *,
    first_offset: int | None = None,
    max_uncompressed_size: int = _codec.DEFAULT_MAX_UNCOMPRESSED_SIZE,
) -> bytes:
    """Convert stored entries (v2 batches, offsets assigned) into a magic ``magic`` message set.

    Offsets are preserved. ``first_offset`` drops records below it from *uncompressed* batches (a
    fetch that starts inside a batch; some librdkafka versions rely on this, as Kafka notes); a
    compressed batch is always converted whole. Entries already at or below ``magic`` are copied as
    they are. A partial trailing entry (a fetch slice cut at ``max_bytes``) is dropped.
    """
    if magic not in (0, 1):
        raise EncodeError(f"can only down-convert to magic 0 or 1, not {magic}")
    out = bytearray()
    for pos, size in iter_entries(buf):
        entry_magic = magic_at(buf, pos)
        if entry_magic <= magic and entry_magic >= 0:
            out += memoryview(buf)[pos : pos + size]
            continue
        if entry_magic == 2:
            header, records = decode_batch(buf, pos, max_uncompressed_size=max_uncompressed_size)
            if header.attributes & CONTROL_MASK:
                continue
            codec = header.attributes & COMPRESSION_MASK
            if codec == _codec.ZSTD:
                raise UnsupportedCompressionError("down-converting zstd-compressed batches is not supported")
            log_append = bool(header.attributes & TIMESTAMP_TYPE_MASK)
            messages: list[MessageInput] = []
            for r in records:
                offset = _wrap64(header.base_offset + r.offset_delta)
                if codec == _codec.NONE and first_offset is not None and offset < first_offset:
                    continue
                timestamp = (
                    header.max_timestamp if log_append else _wrap64(header.base_timestamp + r.timestamp_delta)
                )
                messages.append((offset, timestamp, r.key, r.value))
            lat_ts = header.max_timestamp if log_append else None
        elif entry_magic == 1:  # magic 1 entry, target magic 0
            raw = _parse_message(buf, pos, size)
            codec = raw.attributes & COMPRESSION_MASK
            inner = _expand(raw, max_uncompressed_size, strict_magic=False)
            messages = [(m.offset, m.timestamp, m.key, m.value) for m in inner]
            lat_ts = None
        else:
            raise CorruptRecordError(f"entry at position {pos} has magic {entry_magic}")
        if messages:
            out += build_message_set(messages, magic=magic, compression=codec, log_append_time=lat_ts)
    return bytes(out)


__all__ = ["downconvert", "upconvert_to_v2"]
