"""Wire primitives used by the generated message codecs.

Decoders take ``(buf, pos)`` and return ``(value, new_pos)``; ``buf`` is a memoryview so that
slices (records, zero-copy bytes) cost nothing. Bounds are checked explicitly wherever a length
comes from the wire, so a hostile length can never make us allocate more than the frame holds.
Fixed-width reads rely on ``struct`` raising ``struct.error`` (or ``IndexError``) on short input;
:func:`protocol.message.decode_message` turns those into :class:`TruncatedError`.

Encoders return ``bytes``; the generated code appends them to a list that is joined once.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeAlias

from protocol.exceptions import (
    BadLengthError,
    BadVarintError,
    LengthExceedsRemainingError,
)

Buf: TypeAlias = memoryview
#: Appends one encoded piece; pieces are bytes-like, or opaque record regions (see message.py).
Append: TypeAlias = Callable[[Any], None]

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")

ZERO_UUID = uuid.UUID(int=0)

#: One-byte unsigned varints 0..127, so short lengths encode without any arithmetic.
UV: tuple[bytes, ...] = tuple(bytes((i,)) for i in range(128))

NULL_I16 = I16.pack(-1)
NULL_I32 = I32.pack(-1)
ZERO_BYTE = b"\x00"
NULL_STRUCT = I8.pack(-1)
PRESENT_STRUCT = I8.pack(1)

_i16_from = I16.unpack_from
_i32_from = I32.unpack_from
_pack_i16 = I16.pack
_pack_i32 = I32.pack


# ---------------------------------------------------------------------------------------------
# varints


def read_uvarint(buf: Buf, pos: int) -> tuple[int, int]:
    """Unsigned varint of at most 5 bytes holding at most 32 bits, as Kafka's readUnsignedVarint.

    Unrolled: lengths of records and strings up to 2 MiB take at most three bytes."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    b = buf[pos + 1]
    if b < 0x80:
        return value | b << 7, pos + 2
    value |= (b & 0x7F) << 7
    b = buf[pos + 2]
    if b < 0x80:
        return value | b << 14, pos + 3
    value |= (b & 0x7F) << 14
    b = buf[pos + 3]
    if b < 0x80:
        return value | b << 21, pos + 4
    value |= (b & 0x7F) << 21
    b = buf[pos + 4]
    if b >= 0x80:
        raise BadVarintError("unsigned varint longer than 5 bytes")
    value |= b << 28
    if value > 0xFFFFFFFF:
        raise BadVarintError("unsigned varint does not fit 32 bits")
    return value, pos + 5


def uvarint(value: int) -> bytes:
    if value < 0x80:
        return UV[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# lengths


def exceeds(buf: Buf, pos: int, n: int) -> NoReturn:
    """Raise the error for a length ``n`` at ``pos`` that runs past the end of ``buf``."""
    raise LengthExceedsRemainingError(f"length {n} at position {pos} exceeds the {len(buf) - pos} bytes left")


def _check_remaining(buf: Buf, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return end


def read_array_len(buf: Buf, pos: int) -> tuple[int, int]:
    """int32 array length; -1 is null. Every element takes at least one byte, so a length
    larger than the bytes left is rejected before anything is allocated."""
    (n,) = _i32_from(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise BadLengthError(f"negative array length {n}")
        return -1, pos
    if n > len(buf) - pos:
        raise LengthExceedsRemainingError(f"array of {n} elements but {len(buf) - pos} bytes left")
    return n, pos


def read_compact_array_len(buf: Buf, pos: int) -> tuple[int, int]:
    """Compact array length: uvarint(n + 1), 0 is null (-1 returned)."""
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        b = buf[pos + 1]
        if b < 0x80:
            n = n & 0x7F | b << 7
            pos += 2
        else:
            n, pos = read_uvarint(buf, pos)
    n -= 1
    if n > len(buf) - pos:
        raise LengthExceedsRemainingError(f"array of {n} elements but {len(buf) - pos} bytes left")
    return n, pos


# ---------------------------------------------------------------------------------------------
# strings


def read_string(buf: Buf, pos: int) -> tuple[str, int]:
    (n,) = _i16_from(buf, pos)
    pos += 2
    if n < 0:
        raise BadLengthError(f"null or negative length {n} for a non-nullable string")
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return str(buf[pos:end], "utf-8"), end


def read_nullable_string(buf: Buf, pos: int) -> tuple[str | None, int]:
    (n,) = _i16_from(buf, pos)
    pos += 2
    if n < 0:
        if n != -1:
            raise BadLengthError(f"negative string length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return str(buf[pos:end], "utf-8"), end


def read_compact_string(buf: Buf, pos: int) -> tuple[str, int]:
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        b = buf[pos + 1]
        if b < 0x80:
            n = n & 0x7F | b << 7
            pos += 2
        else:
            n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise BadLengthError("null compact string where the field is not nullable")
    end = pos + n - 1
    if end > len(buf):
        exceeds(buf, pos, n - 1)
    return str(buf[pos:end], "utf-8"), end


def read_compact_nullable_string(buf: Buf, pos: int) -> tuple[str | None, int]:
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        b = buf[pos + 1]
        if b < 0x80:
            n = n & 0x7F | b << 7
            pos += 2
        else:
            n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        exceeds(buf, pos, n - 1)
    return str(buf[pos:end], "utf-8"), end


def enc_string(value: str) -> bytes:
    b = value.encode()
    return _pack_i16(len(b)) + b


def enc_nullable_string(value: str | None) -> bytes:
    if value is None:
        return NULL_I16
    b = value.encode()
    return _pack_i16(len(b)) + b


def enc_compact_string(value: str) -> bytes:
    b = value.encode()
    n = len(b) + 1
    return (UV[n] if n < 0x80 else uvarint(n)) + b


def enc_compact_nullable_string(value: str | None) -> bytes:
    if value is None:
        return ZERO_BYTE
    b = value.encode()
    n = len(b) + 1
    return (UV[n] if n < 0x80 else uvarint(n)) + b


# ---------------------------------------------------------------------------------------------
# bytes (copied) and byte views (records, zero-copy fields)


def read_bytes(buf: Buf, pos: int) -> tuple[bytes, int]:
    (n,) = _i32_from(buf, pos)
    pos += 4
    if n < 0:
        raise BadLengthError(f"null or negative length {n} for non-nullable bytes")
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return bytes(buf[pos:end]), end


def read_nullable_bytes(buf: Buf, pos: int) -> tuple[bytes | None, int]:
    (n,) = _i32_from(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise BadLengthError(f"negative bytes length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return bytes(buf[pos:end]), end


def read_compact_bytes(buf: Buf, pos: int) -> tuple[bytes, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise BadLengthError("null compact bytes where the field is not nullable")
    end = _check_remaining(buf, pos, n - 1)
    return bytes(buf[pos:end]), end


def read_compact_nullable_bytes(buf: Buf, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = _check_remaining(buf, pos, n - 1)
    return bytes(buf[pos:end]), end


def read_view(buf: Buf, pos: int) -> tuple[memoryview, int]:
    (n,) = _i32_from(buf, pos)
    pos += 4
    if n < 0:
        raise BadLengthError(f"null or negative length {n} for non-nullable bytes")
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return buf[pos:end], end


def read_nullable_view(buf: Buf, pos: int) -> tuple[memoryview | None, int]:
    (n,) = _i32_from(buf, pos)
    pos += 4
    if n < 0:
        if n != -1:
            raise BadLengthError(f"negative bytes length {n}")
        return None, pos
    end = pos + n
    if end > len(buf):
        exceeds(buf, pos, n)
    return buf[pos:end], end


def bytes_len(value: Any) -> int:
    """Length in bytes of a bytes-like value or of an opaque record region."""
    if isinstance(value, memoryview):
        return value.nbytes
    return len(value)


def enc_bytes_len(value: Any) -> bytes:
    return _pack_i32(bytes_len(value))


def enc_compact_bytes_len(value: Any) -> bytes:
    n = bytes_len(value) + 1
    return UV[n] if n < 0x80 else uvarint(n)


# ---------------------------------------------------------------------------------------------
# arrays of primitives

_i32_array_structs: dict[int, struct.Struct] = {}
_i64_array_structs: dict[int, struct.Struct] = {}


def _array_struct(cache: dict[int, struct.Struct], code: str, n: int) -> struct.Struct:
    s = cache.get(n)
    if s is None:
        s = struct.Struct(f">{n}{code}")
        if n < 1024:
            cache[n] = s
    return s


def read_i32_items(buf: Buf, pos: int, n: int) -> tuple[list[int], int]:
    s = _array_struct(_i32_array_structs, "i", n)
    return list(s.unpack_from(buf, pos)), pos + s.size


def read_i64_items(buf: Buf, pos: int, n: int) -> tuple[list[int], int]:
    s = _array_struct(_i64_array_structs, "q", n)
    return list(s.unpack_from(buf, pos)), pos + s.size


def enc_i64_items(values: Sequence[int]) -> bytes:
    return _array_struct(_i64_array_structs, "q", len(values)).pack(*values)


def enc_array_len(values: Sequence[Any] | None) -> bytes:
    return NULL_I32 if values is None else _pack_i32(len(values))


def enc_compact_array_len(values: Sequence[Any] | None) -> bytes:
    if values is None:
        return ZERO_BYTE
    n = len(values) + 1
    return UV[n] if n < 0x80 else uvarint(n)


#: Short int32 arrays, length prefix included, packed by one precompiled struct each.
_SHORT = 64
_I32_ARRAYS = tuple(struct.Struct(f">i{n}i") for n in range(_SHORT))
_COMPACT_I32_ARRAYS = tuple(struct.Struct(f">B{n}i") for n in range(_SHORT))


def enc_i32_array(values: Sequence[int]) -> bytes:
    n = len(values)
    if n < _SHORT:
        return _I32_ARRAYS[n].pack(n, *values)
    return _pack_i32(n) + _array_struct(_i32_array_structs, "i", n).pack(*values)


def enc_compact_i32_array(values: Sequence[int]) -> bytes:
    n = len(values)
    if n < _SHORT:
        return _COMPACT_I32_ARRAYS[n].pack(n + 1, *values)
    return uvarint(n + 1) + _array_struct(_i32_array_structs, "i", n).pack(*values)


# ---------------------------------------------------------------------------------------------
# tagged fields


def skip_tagged_fields(buf: Buf, pos: int) -> int:
    """Skip a tagged-field section whose fields are all unknown."""
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos = _check_remaining(buf, pos, size)
    return pos


def read_tag_header(buf: Buf, pos: int) -> tuple[int, int, int]:
    """(tag, end position of its value, start position of its value)."""
    tag, pos = read_uvarint(buf, pos)
    size, pos = read_uvarint(buf, pos)
    return tag, _check_remaining(buf, pos, size), pos


def read_uuid(buf: Buf, pos: int) -> tuple[uuid.UUID, int]:
    end = pos + 16
    if end > len(buf):
        raise LengthExceedsRemainingError("uuid truncated")
    return uuid_from_bytes(bytes(buf[pos:end])), end


#: Decoded UUIDs by their bytes: a broker sees the same few topic ids in every fetch, and one
#: shared (immutable) object per id is built once and compares by identity in dict lookups
#: (``uuid.UUID`` builds, hashes and compares in Python).
_UUIDS: dict[bytes, uuid.UUID] = {}
_UUIDS_KEPT = 256


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    found = _UUIDS.get(raw)
    if found is None:
        if len(_UUIDS) >= _UUIDS_KEPT:
            _UUIDS.clear()
        found = _UUIDS[raw] = uuid.UUID(bytes=raw)
    return found
