"""Legacy message sets: magic 0 and 1 (Kafka < 0.11), read and write.

Entry layout (implementation.html, "Old Message Format"); CRC-32 (zlib) covers magic..end::

    offset int64 | size int32 | crc uint32 | magic int8 | attributes int8
    [timestamp int64, magic 1 only] | key bytes (int32 length, -1 = null) | value bytes

Attributes: bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4; zstd is not allowed), bit 3 timestamp
type (magic 1: 1 = LogAppendTime). A compressed message is a *wrapper*: null key, value = a compressed
message set of *inner* messages. Its offset is that of the last inner message. Inner offsets are
absolute for magic 0 and relative (0, 1, ...) for magic 1, where the absolute offset is
``wrapper offset - last inner offset + inner offset`` (a wrapper offset of 0, which some librdkafka
versions send in produce requests, means "base 0"). With a LogAppendTime wrapper (magic 1), every
inner message reports the wrapper's timestamp.

Reading is stricter than Kafka in two places: bytes after the value inside a message, and a partial
trailing message inside a compressed wrapper, are errors (Kafka ignores both; no client writes them).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records import compression as _codec
from protocol.records.batch import COMPRESSION_MASK, LOG_OVERHEAD, TIMESTAMP_TYPE_MASK
from protocol.records.errors import InvalidRecordError

Buffer = bytes | bytearray | memoryview

#: Bytes of a message after the 12-byte log overhead, without key and value data.
RECORD_OVERHEAD_V0: Final = 14
RECORD_OVERHEAD_V1: Final = 22

_PREFIX = struct.Struct(">qi")
_HEAD_V0 = struct.Struct(">Ibb")
_HEAD_V1 = struct.Struct(">Ibbq")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")


class LegacyMessage(NamedTuple):
    """One (inner, for compressed wrappers) message with its absolute offset.

    ``attributes`` are the message's own (codec bits 0 for inner messages) except that, inside a
    magic-1 wrapper, the timestamp-type bit is the wrapper's, which is what governs the timestamp.
    ``timestamp`` is None for magic 0.
    """

    offset: int
    magic: int
    attributes: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return self.magic > 0 and bool(self.attributes & TIMESTAMP_TYPE_MASK)


def _parse_message(buf: Buffer, pos: int, size: int) -> LegacyMessage:
    """Parse the complete entry ``buf[pos : pos + size]`` (log overhead included), checking its CRC:
    a shallow message, what is stored in one entry."""
    offset, length = _PREFIX.unpack_from(buf, pos)
    if length < RECORD_OVERHEAD_V0:
        raise CorruptRecordError(f"message at position {pos} declares only {length} bytes")
    body = pos + LOG_OVERHEAD
    end = pos + size
    crc, magic, attributes = _HEAD_V0.unpack_from(buf, body)
    if magic == 0:
        timestamp: int | None = None
        cursor = body + 6
    elif magic == 1:
        if length < RECORD_OVERHEAD_V1:
            raise CorruptRecordError(f"magic 1 message at position {pos} declares only {length} bytes")
        timestamp = _HEAD_V1.unpack_from(buf, body)[3]
        cursor = body + 14
    else:
        raise CorruptRecordError(f"message at position {pos} has magic {magic}")
    computed = zlib.crc32(memoryview(buf)[body + 4 : end])
    if computed != crc:
        raise CorruptRecordError(
            f"message at position {pos} is corrupt (stored crc {crc:#010x}, computed {computed:#010x})"
        )
    key, cursor = _read_bytes(buf, cursor, end, pos, "key")
    value, cursor = _read_bytes(buf, cursor, end, pos, "value")
    if cursor != end:
        raise CorruptRecordError(f"message at position {pos} has {end - cursor} bytes after its value")
    return LegacyMessage(offset, magic, attributes & 0xFF, timestamp, key, value)


def _read_bytes(buf: Buffer, cursor: int, end: int, pos: int, what: str) -> tuple[bytes | None, int]:
    if end - cursor < 4:
        raise CorruptRecordError(f"message at position {pos}: {what} length truncated")
    (n,) = _I32.unpack_from(buf, cursor)
    cursor += 4
    if n < 0:
        if n != -1:
            raise CorruptRecordError(f"message at position {pos} has {what} length {n}")
        return None, cursor
    if n > end - cursor:
        raise CorruptRecordError(f"message at position {pos}: {what} of {n} bytes overruns the message")
    return bytes(buf[cursor : cursor + n]), cursor + n


def _iter_shallow(buf: Buffer, *, allow_partial: bool) -> Iterator[LegacyMessage]:
    """Messages of a (shallow) message set; a partial trailing entry ends it or raises."""
    end = len(buf)
    pos = 0
    while pos < end:
        if end - pos < LOG_OVERHEAD:
            if allow_partial:
                return
            raise CorruptRecordError(f"message set truncated at position {pos}")
        _, length = _PREFIX.unpack_from(buf, pos)
        size = length + LOG_OVERHEAD
        if length < RECORD_OVERHEAD_V0:
            raise CorruptRecordError(f"message at position {pos} declares only {length} bytes")
        if end - pos < size:
            if allow_partial:
                return
            raise CorruptRecordError(f"message at position {pos} truncated")
        yield _parse_message(buf, pos, size)
        pos += size


def _expand(raw: LegacyMessage, max_uncompressed_size: int, *, strict_magic: bool) -> list[LegacyMessage]:
    """The messages one shallow entry stands for (itself, or the inner messages of a wrapper)."""
    codec = raw.attributes & COMPRESSION_MASK
    if codec == _codec.NONE:
        return [raw]
    if codec == _codec.ZSTD:
        raise InvalidRecordError(f"zstd compression is not allowed with magic {raw.magic}")
    if codec > _codec.ZSTD:
        raise CorruptRecordError(f"unknown compression codec {codec} at offset {raw.offset}")
    if raw.value is None:
        raise InvalidRecordError(f"compressed message at offset {raw.offset} has a null value")
    data = _codec.decompress(codec, raw.value, magic=raw.magic, max_size=max_uncompressed_size)
    inner = list(_iter_shallow(data, allow_partial=False))
    if not inner:
        raise InvalidRecordError(f"compressed message at offset {raw.offset} has no inner messages")
    for msg in inner:
        if msg.attributes & COMPRESSION_MASK:
            raise InvalidRecordError(f"compressed message at offset {raw.offset} nests compressed messages")
        if strict_magic and msg.magic != raw.magic:
            raise InvalidRecordError(
                f"inner message magic {msg.magic} does not match wrapper magic {raw.magic}"
            )
    if raw.magic == 1:
        last_inner = inner[-1].offset
        if raw.offset == 0:
            base = 0
        elif raw.offset < last_inner:
            raise InvalidRecordError(
                f"wrapper offset {raw.offset} is below its last inner offset {last_inner}"
            )
        else:
            base = raw.offset - last_inner
        log_append = raw.attributes & TIMESTAMP_TYPE_MASK
        out = []
        for msg in inner:
            timestamp = msg.timestamp
            attributes = msg.attributes
            if msg.magic == 1:
                attributes = (attributes & ~TIMESTAMP_TYPE_MASK) | log_append
                if log_append:
                    timestamp = raw.timestamp
            out.append(LegacyMessage(base + msg.offset, msg.magic, attributes, timestamp, msg.key, msg.value))
        return out
    return inner


def iter_legacy_messages(
    buf: Buffer, *, max_uncompressed_size: int = _codec.DEFAULT_MAX_UNCOMPRESSED_SIZE
) -> Iterator[LegacyMessage]:
    """Yield every message of a magic 0/1 message set, flattening compressed wrappers.

    CRCs are checked (inner ones too). A partial trailing entry ends the iteration, as a fetch
    response may end with one; anything else malformed, including a v2 batch, raises
    :class:`CorruptRecordError`.
    """
    for raw in _iter_shallow(buf, allow_partial=True):
        yield from _expand(raw, max_uncompressed_size, strict_magic=False)


# --------------------------------------------------------------------------------------- encode

#: A message to write: (offset, timestamp or None, key, value).
MessageInput = tuple[int, int | None, bytes | None, bytes | None]


def encode_message(
    out: bytearray,
    offset: int,
    magic: int,
    attributes: int,
    timestamp: int | None,
    key: Buffer | None,
    value: Buffer | None,
) -> None:
    """Append one entry (log overhead, CRC, ...) to ``out``."""
    body = bytearray(_HEAD_V1.size if magic == 1 else _HEAD_V0.size)
    try:
        if magic == 1:
            _HEAD_V1.pack_into(body, 0, 0, 1, attributes, -1 if timestamp is None else timestamp)
        elif magic == 0:
            _HEAD_V0.pack_into(body, 0, 0, 0, attributes)
        else:
            raise EncodeError(f"legacy messages have magic 0 or 1, not {magic}")
        for blob in (key, value):
            if blob is None:
                body += b"\xff\xff\xff\xff"
            else:
                body += _I32.pack(len(blob))
                body += blob
        _U32.pack_into(body, 0, zlib.crc32(memoryview(body)[4:]))
        out += _PREFIX.pack(offset, len(body))
    except struct.error as exc:
        raise EncodeError(f"legacy message field out of range: {exc}") from exc
    out += body


def build_message_set(
    messages: Sequence[MessageInput],
    *,
    magic: int,
    compression: int = 0,
    log_append_time: int | None = None,
) -> bytes:
    """Write a magic 0/1 message set as Kafka's ``MemoryRecordsBuilder`` does.

    Uncompressed: one entry per message at its own offset. Compressed (codec 1-3): one wrapper whose
    offset is the last message's, with inner offsets relative to the first message for magic 1
    (absolute for magic 0) and, for magic 1, the maximum timestamp. ``log_append_time`` (magic 1)
    sets the LogAppendTime attribute and replaces every timestamp. Timestamps are ignored for magic 0.
    """
    if magic not in (0, 1):
        raise EncodeError(f"legacy messages have magic 0 or 1, not {magic}")
    if compression not in (_codec.NONE, _codec.GZIP, _codec.SNAPPY, _codec.LZ4):
        raise EncodeError(f"codec {_codec.codec_name(compression)} is not allowed with magic {magic}")
    lat = magic == 1 and log_append_time is not None
    ts_attr = TIMESTAMP_TYPE_MASK if lat else 0
    out = bytearray()
    if not messages:
        return b""
    if compression == _codec.NONE:
        for offset, timestamp, key, value in messages:
            encode_message(out, offset, magic, ts_attr, log_append_time if lat else timestamp, key, value)
        return bytes(out)
    first = messages[0][0]
    max_ts = -1
    for offset, timestamp, key, value in messages:
        ts = log_append_time if lat else timestamp
        if ts is not None and ts > max_ts:
            max_ts = ts
        inner_offset = offset - first if magic == 1 else offset
        encode_message(out, inner_offset, magic, ts_attr, ts, key, value)
    wrapped = _codec.compress(compression, out, magic=magic)
    wrapper = bytearray()
    wrapper_ts = log_append_time if lat else max_ts
    encode_message(wrapper, messages[-1][0], magic, compression | ts_attr, wrapper_ts, None, wrapped)
    return bytes(wrapper)


__all__ = [
    "RECORD_OVERHEAD_V0",
    "RECORD_OVERHEAD_V1",
    "LegacyMessage",
    "MessageInput",
    "build_message_set",
    "encode_message",
    "iter_legacy_messages",
]
