"""Compression codecs of record batches (attribute bits 0-2): none, gzip, snappy, lz4, zstd.

What we write, and why (Kafka's broker only recompresses when converting formats, and then uses the
Java streams named below, so we mirror them; readers of every client accept these forms):

* gzip (1): one gzip member, deflate level 6 (Java's ``GZIPOutputStream`` default), mtime 0, so the
  output is deterministic. Reading accepts concatenated members, as ``GZIPInputStream`` does.
* snappy (2): the xerial framing that Java's ``SnappyOutputStream`` writes: ``\\x82SNAPPY\\x00`` +
  int32 version 1 + int32 compatible-version 1, then blocks of int32 big-endian length + raw snappy,
  one per 32 KiB of input. Reading accepts that (including several concatenated xerial streams, as
  snappy-java does, and any version/compat values, since some producers write them little-endian)
  and also plain raw snappy (librdkafka < 1.x, some Go clients), as snappy-java does.
* lz4 (3): an LZ4 frame like Kafka's ``Lz4BlockOutputStream``: 64 KiB independent blocks, no
  content size, no block or content checksum. For magic 0 the frame descriptor checksum (HC) is
  computed over the magic number too (Kafka's historical bug, kept for 0.8/0.9 clients) and
  ignored when reading. Reading rejects linked (dependent) blocks as Kafka does.
* zstd (4): one zstd frame at level 3 (Kafka's default level) with the content size in the frame
  header. Reading accepts several concatenated frames.

Decompression is bounded: output beyond ``max_size`` raises :class:`CorruptRecordError` without
materialising the rest (zlib and lz4 bound natively, snappy by its length preamble, zstd by feeding
the input in steps small enough that one step cannot overshoot much). Every failure of a codec
library is reported as :class:`CorruptRecordError`.

The codec libraries are imported at their first use, not with this module: a broker whose
clients do not compress never loads them (~8 ms of start-up, zstandard's import alone ~4 ms).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Final

from protocol.exceptions import CorruptRecordError

Buffer = bytes | bytearray | memoryview

NONE: Final = 0
GZIP: Final = 1
SNAPPY: Final = 2
LZ4: Final = 3
ZSTD: Final = 4
CODEC_NAMES: Final = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

#: Default bound on the decompressed size of one batch (or legacy wrapper): 64 MiB.
DEFAULT_MAX_UNCOMPRESSED_SIZE: Final = 64 * 1024 * 1024

GZIP_LEVEL: Final = 6
ZSTD_LEVEL: Final = 3
XERIAL_MAGIC: Final = b"\x82SNAPPY\x00"
XERIAL_HEADER: Final = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
XERIAL_BLOCK_SIZE: Final = 32 * 1024
LZ4_FRAME_MAGIC: Final = b"\x04\x22\x4d\x18"

_I32 = struct.Struct(">i")
# zstd can expand one input byte into at most ~32 KiB (a 4-byte RLE block yields 128 KiB).
_ZSTD_MAX_EXPANSION_SHIFT = 15
_ZSTD_MIN_STEP = 64


def codec_name(codec: int) -> str:
    return CODEC_NAMES.get(codec, f"unknown({codec})")


# --------------------------------------------------------------------------------------- encode


def compress(codec: int, data: Buffer, *, magic: int = 2) -> bytes:
    """Compress ``data`` with ``codec`` (1-4). ``magic`` only matters for lz4 (see module doc)."""
    if codec == GZIP:
        c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:
        return _xerial_compress(data)
    if codec == LZ4:
        return _lz4_compress(data, magic)
    if codec == ZSTD:
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    raise ValueError(f"cannot compress with codec {codec_name(codec)}")


def _xerial_compress(data: Buffer) -> bytes:
    import cramjam

    view = memoryview(data)
    parts = [XERIAL_HEADER]
    for start in range(0, len(view), XERIAL_BLOCK_SIZE):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + XERIAL_BLOCK_SIZE]))
        parts.append(_I32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _lz4_compress(data: Buffer, magic: int) -> bytes:
    import lz4.frame  # type: ignore[import-untyped]

    frame: bytes = lz4.frame.compress(
        bytes(data),
        block_size=lz4.frame.BLOCKSIZE_MAX64KB,
        block_linked=False,
        content_checksum=False,
        block_checksum=False,
        store_size=False,
    )
    if magic == 0:
        from protocol.records.xxh32 import xxh32

        # Without a content size the descriptor is FLG, BD and HC at bytes 4, 5 and 6.
        broken = (xxh32(frame[0:6]) >> 8) & 0xFF
        frame = frame[:6] + bytes((broken,)) + frame[7:]
    return frame


# --------------------------------------------------------------------------------------- decode


def decompress(
    codec: int, data: Buffer, *, magic: int = 2, max_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE
) -> bytes:
    """Decompress ``data``; anything malformed or larger than ``max_size`` raises CorruptRecordError."""
    try:
        if codec == GZIP:
            return _gzip_decompress(data, max_size)
        if codec == SNAPPY:
            return _snappy_decompress(data, max_size)
        if codec == LZ4:
            return _lz4_decompress(data, magic, max_size)
        if codec == ZSTD:
            return _zstd_decompress(data, max_size)
    except CorruptRecordError:
        raise
    except Exception as exc:  # codec libraries raise their own types (cramjam.DecompressionError, ...)
        raise CorruptRecordError(f"cannot decompress {codec_name(codec)} data: {exc}") from exc
    raise CorruptRecordError(f"unknown compression codec {codec}")


def _too_large(max_size: int) -> CorruptRecordError:
    return CorruptRecordError(f"decompressed data exceeds the limit of {max_size} bytes")


def _gzip_decompress(data: Buffer, max_size: int) -> bytes:
    out = bytearray()
    rest = bytes(data)
    if not rest:
        raise CorruptRecordError("empty gzip payload")
    while rest:
        d = zlib.decompressobj(31)
        chunk = rest
        while True:
            out += d.decompress(chunk, max_size + 1 - len(out))
            if len(out) > max_size:
                raise _too_large(max_size)
            if d.eof:
                break
            chunk = d.unconsumed_tail
            if not chunk:
                raise CorruptRecordError("gzip stream truncated")
        rest = d.unused_data
    return bytes(out)


def _snappy_decompress(data: Buffer, max_size: int) -> bytes:
    view = memoryview(data)
    if len(view) >= 16 and view[:8].tobytes() == XERIAL_MAGIC:
        return _xerial_decompress(view, max_size)
    return _snappy_raw(view, max_size, 0)


def _snappy_raw(block: memoryview, max_size: int, used: int) -> bytes:
    import cramjam

    size = cramjam.snappy.decompress_raw_len(block)
    if size + used > max_size:
        raise _too_large(max_size)
    out = bytearray(size)
    written = cramjam.snappy.decompress_raw_into(block, out)
    if written != size:
        raise CorruptRecordError("snappy block shorter than its declared length")
    return bytes(out)


def _xerial_decompress(view: memoryview, max_size: int) -> bytes:
    parts: list[bytes] = []
    used = 0
    pos = 16
    end = len(view)
    while pos < end:
        # snappy-java accepts another stream header where a block length is expected.
        if end - pos >= 16 and view[pos : pos + 8].tobytes() == XERIAL_MAGIC:
            pos += 16
            continue
        if end - pos < 4:
            raise CorruptRecordError("xerial snappy block length truncated")
        (length,) = _I32.unpack_from(view, pos)
        pos += 4
        if length < 0 or length > end - pos:
            raise CorruptRecordError(f"xerial snappy block of {length} bytes overruns the data")
        block = _snappy_raw(view[pos : pos + length], max_size, used)
        used += len(block)
        parts.append(block)
        pos += length
    return b"".join(parts)


def _lz4_decompress(data: Buffer, magic: int, max_size: int) -> bytes:
    import lz4.frame

    frame = bytearray(data)
    if len(frame) < 7 or frame[:4] != LZ4_FRAME_MAGIC:
        raise CorruptRecordError("not an LZ4 frame")
    flg = frame[4]
    if flg >> 6 != 1 or flg & 0x03:
        raise CorruptRecordError(f"unsupported LZ4 frame flags {flg:#04x}")
    if not flg & 0x20:
        raise CorruptRecordError("LZ4 frames with dependent blocks are not supported (as in Kafka)")
    descriptor_end = 6 + (8 if flg & 0x08 else 0)
    if len(frame) <= descriptor_end:
        raise CorruptRecordError("LZ4 frame descriptor truncated")
    if magic == 0:
        from protocol.records.xxh32 import xxh32

        # Kafka ignores the (historically wrong) header checksum of magic-0 frames: repair it.
        frame[descriptor_end] = (xxh32(frame[4:descriptor_end]) >> 8) & 0xFF
    d: Any = lz4.frame.LZ4FrameDecompressor()
    out: bytes = d.decompress(bytes(frame), max_length=max_size + 1)
    if len(out) > max_size:
        raise _too_large(max_size)
    if not d.eof:
        raise CorruptRecordError("LZ4 frame truncated")
    if d.unused_data:
        raise CorruptRecordError(f"{len(d.unused_data)} bytes after the LZ4 frame")
    return out


def _zstd_decompress(data: Buffer, max_size: int) -> bytes:
    import zstandard

    view = memoryview(data)
    end = len(view)
    if not end:
        raise CorruptRecordError("empty zstd payload")
    out = bytearray()
    pos = 0
    dctx = zstandard.ZstdDecompressor()
    while pos < end:
        dobj = dctx.decompressobj()
        while True:
            step = max(_ZSTD_MIN_STEP, (max_size - len(out)) >> _ZSTD_MAX_EXPANSION_SHIFT)
            chunk = view[pos : pos + step]
            if not chunk:
                raise CorruptRecordError("zstd frame truncated")
            out += dobj.decompress(chunk)
            if len(out) > max_size:
                raise _too_large(max_size)
            if dobj.eof:
                pos += len(chunk) - len(dobj.unused_data)
                break
            pos += len(chunk)
    return bytes(out)
