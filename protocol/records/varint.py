"""Zig-zag varints (int32) and varlongs (int64), as in Protocol Buffers and Kafka's ``ByteUtils``.

Decoders are strict: a varint longer than 5 bytes (varlong: 10), or one whose last byte carries bits
beyond 32 (64) bits, raises :class:`CorruptRecordError`, as does running past ``limit``.
"""

from __future__ import annotations

from protocol.exceptions import CorruptRecordError
from protocol.primitives import uvarint

Buffer = bytes | bytearray | memoryview

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# Encoded forms of small values, the common case (deltas, lengths of short keys).
_SMALL = 1 << 13
_TABLE: dict[int, bytes] = {}


def _small(value: int) -> bytes:
    """Encoding of a value in [-_SMALL, _SMALL), remembered (the table fills as values occur
    rather than costing every process 16k encodings at import)."""
    encoded = _TABLE[value] = uvarint((value << 1) ^ (value >> 63))
    return encoded


def encode_varint(value: int) -> bytes:
    """Zig-zag encode a signed int32 (zig-zag is width independent: 2v, or -2v-1 when negative)."""
    cached = _TABLE.get(value)
    if cached is not None:
        return cached
    if -_SMALL <= value < _SMALL:
        return _small(value)
    if not INT32_MIN <= value <= INT32_MAX:
        raise OverflowError(f"varint {value} outside int32")
    return uvarint((value << 1) ^ (value >> 63))


def encode_varlong(value: int) -> bytes:
    """Zig-zag encode a signed int64."""
    cached = _TABLE.get(value)
    if cached is not None:
        return cached
    if -_SMALL <= value < _SMALL:
        return _small(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"varlong {value} outside int64")
    return uvarint((value << 1) ^ (value >> 63))


def _read_unsigned(buf: Buffer, pos: int, limit: int, max_bytes: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= limit:
            raise CorruptRecordError(f"{what} truncated at position {start}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if pos - start >= max_bytes:
            raise CorruptRecordError(f"{what} at position {start} is longer than {max_bytes} bytes")
    if result >> (32 if max_bytes == 5 else 64):
        raise CorruptRecordError(f"{what} at position {start} overflows")
    return result, pos


def read_varint(buf: Buffer, pos: int, limit: int) -> tuple[int, int]:
    """Decode a zig-zag int32 at ``pos`` (reading no further than ``limit``): ``(value, new_pos)``."""
    if pos < limit:
        b = buf[pos]
        if b < 0x80:  # one-byte fast path
            return (b >> 1) ^ -(b & 1), pos + 1
    raw, pos = _read_unsigned(buf, pos, limit, 5, "varint")
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(buf: Buffer, pos: int, limit: int) -> tuple[int, int]:
    """Decode a zig-zag int64 at ``pos`` (reading no further than ``limit``): ``(value, new_pos)``."""
    if pos < limit:
        b = buf[pos]
        if b < 0x80:
            return (b >> 1) ^ -(b & 1), pos + 1
    raw, pos = _read_unsigned(buf, pos, limit, 10, "varlong")
    return (raw >> 1) ^ -(raw & 1), pos
