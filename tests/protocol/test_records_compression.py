"""Codecs: what we write, what we accept, and decompression bombs."""

from __future__ import annotations

import gzip
import os
import struct
import time
import zlib

import cramjam
import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.exceptions import CorruptRecordError
from protocol.records import Record, build_batch, decode_batch
from protocol.records import compression as codec
from protocol.records.xxh32 import xxh32

SAMPLE = b"".join(b"record %d says hello; " % i for i in range(5000)) + os.urandom(3000)


# --------------------------------------------------------------------------------------- xxh32


def test_xxh32_reference_vectors() -> None:
    # Published XXH32 values (seed 0), e.g. from the xxHash sanity tests and python-xxhash docs.
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


@pytest.mark.parametrize("store_size", [False, True])
@pytest.mark.parametrize("checksums", [False, True])
def test_xxh32_matches_lz4_frame_header_checksum(store_size: bool, checksums: bool) -> None:
    frame = lz4.frame.compress(
        b"x" * 100, store_size=store_size, content_checksum=checksums, block_checksum=checksums
    )
    end = 6 + (8 if frame[4] & 0x08 else 0)
    assert frame[end] == (xxh32(frame[4:end]) >> 8) & 0xFF


# ------------------------------------------------------------------------------------ roundtrip


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=100_000) | st.just(SAMPLE),
    c=st.sampled_from([1, 2, 3, 4]),
    magic=st.sampled_from([0, 1, 2]),
)
def test_roundtrip(data: bytes, c: int, magic: int) -> None:
    out = codec.compress(c, data, magic=magic)
    assert codec.decompress(c, out, magic=magic) == data


def test_gzip_output_is_deterministic_and_standard() -> None:
    out = codec.compress(codec.GZIP, SAMPLE)
    assert out == codec.compress(codec.GZIP, SAMPLE)
    assert out[:2] == b"\x1f\x8b"
    assert gzip.decompress(out) == SAMPLE


def test_gzip_accepts_concatenated_members_and_rejects_trailing_garbage() -> None:
    two = gzip.compress(b"abc", mtime=0) + gzip.compress(b"def", mtime=0)
    assert codec.decompress(codec.GZIP, two) == b"abcdef"
    for bad in (gzip.compress(b"abc") + b"junk", gzip.compress(b"abc")[:-3], b"", zlib.compress(b"abc")):
        with pytest.raises(CorruptRecordError):
            codec.decompress(codec.GZIP, bad)


def test_snappy_writes_xerial_framing_like_java() -> None:
    data = SAMPLE * 3  # > 32 KiB: several blocks
    out = codec.compress(codec.SNAPPY, data)
    assert out[:16] == b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    pos, blocks, raw = 16, 0, b""
    while pos < len(out):
        (n,) = struct.unpack_from(">i", out, pos)
        block = bytes(cramjam.snappy.decompress_raw(out[pos + 4 : pos + 4 + n]))
        assert len(block) <= 32 * 1024
        raw += block
        pos += 4 + n
        blocks += 1
    assert raw == data and blocks == -(-len(data) // (32 * 1024))


def test_snappy_reads_raw_xerial_and_concatenated_xerial() -> None:
    raw = bytes(cramjam.snappy.compress_raw(SAMPLE))
    assert codec.decompress(codec.SNAPPY, raw) == SAMPLE
    xerial = codec.compress(codec.SNAPPY, b"first ") + codec.compress(codec.SNAPPY, b"second")
    assert codec.decompress(codec.SNAPPY, xerial) == b"first second"
    # Little-endian version/compat words (seen from some producers) are accepted too.
    le = b"\x82SNAPPY\x00\x01\x00\x00\x00\x01\x00\x00\x00" + codec.compress(codec.SNAPPY, b"x")[16:]
    assert codec.decompress(codec.SNAPPY, le) == b"x"
    empty = codec.compress(codec.SNAPPY, b"")
    assert empty == codec.XERIAL_HEADER and codec.decompress(codec.SNAPPY, empty) == b""


@pytest.mark.parametrize(
    "bad",
    [
        b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x09abc",  # block overruns
        b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff",  # negative length
        b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00",  # truncated length
        b"\x05ab",  # raw, shorter than declared
        b"\xff\xff\xff\xff\x0fabc",  # raw, 4 GiB declared
    ],
)
def test_snappy_rejects(bad: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        codec.decompress(codec.SNAPPY, bad)


def test_lz4_frame_matches_kafkas_output_stream() -> None:
    out = codec.compress(codec.LZ4, SAMPLE)
    assert out[:4] == b"\x04\x22\x4d\x18"
    # FLG: version 01, independent blocks, no checksums, no content size; BD: 64 KiB blocks.
    assert out[4] == 0x60 and out[5] == 0x40
    assert out[6] == (xxh32(out[4:6]) >> 8) & 0xFF
    assert out[-4:] == b"\x00\x00\x00\x00"  # end mark, no content checksum
    assert lz4.frame.decompress(out) == SAMPLE


def test_lz4_magic0_uses_kafkas_broken_header_checksum() -> None:
    out = codec.compress(codec.LZ4, SAMPLE, magic=0)
    assert out[6] == (xxh32(out[0:6]) >> 8) & 0xFF
    assert out[6] != (xxh32(out[4:6]) >> 8) & 0xFF  # true for this frame header
    assert codec.decompress(codec.LZ4, out, magic=0) == SAMPLE
    with pytest.raises(CorruptRecordError):  # v1/v2 readers check the descriptor checksum
        codec.decompress(codec.LZ4, out, magic=1)
    # Magic-0 readers also accept a correct checksum and frames with a content size.
    assert codec.decompress(codec.LZ4, lz4.frame.compress(SAMPLE, block_linked=False), magic=0) == SAMPLE


def test_lz4_accepts_other_independent_frames_and_rejects_linked_blocks() -> None:
    for kwargs in (
        {"store_size": True},
        {"content_checksum": True, "block_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX4MB},
    ):
        frame = lz4.frame.compress(SAMPLE, block_linked=False, **kwargs)
        assert codec.decompress(codec.LZ4, frame) == SAMPLE
    with pytest.raises(CorruptRecordError, match="dependent"):
        codec.decompress(codec.LZ4, lz4.frame.compress(SAMPLE, block_linked=True))
    good = codec.compress(codec.LZ4, SAMPLE)
    for bad in (good[:-1], good + b"x", b"", good[:6], b"\x00" + good[1:]):
        with pytest.raises(CorruptRecordError):
            codec.decompress(codec.LZ4, bad)


def test_zstd_frames() -> None:
    out = codec.compress(codec.ZSTD, SAMPLE)
    assert out == zstandard.ZstdCompressor(level=3).compress(SAMPLE)
    assert zstandard.get_frame_parameters(out).content_size == len(SAMPLE)
    two = out + zstandard.ZstdCompressor(level=1, write_content_size=False).compress(b"tail")
    assert codec.decompress(codec.ZSTD, two) == SAMPLE + b"tail"
    for bad in (out[:-1], out + b"junk", b"", b"\x28\xb5\x2f\xfd"):
        with pytest.raises(CorruptRecordError):
            codec.decompress(codec.ZSTD, bad)


def test_unknown_codec_is_corrupt() -> None:
    for c in (0, 5, 7, -1):
        with pytest.raises(CorruptRecordError):
            codec.decompress(c, b"abc")
    with pytest.raises(ValueError):
        codec.compress(5, b"abc")


# --------------------------------------------------------------------------- decompression bombs


def _zstd_rle_bomb(blocks: int) -> bytes:
    """A hand-made zstd frame of RLE blocks: 4 bytes in, 128 KiB out per block (8192 -> 1 GiB)."""
    out = [struct.pack("<I", 0xFD2FB528), bytes([0x00, 0x38])]  # no content size, 128 KiB window
    for i in range(blocks):
        header = (131072 << 3) | (1 << 1) | (1 if i == blocks - 1 else 0)
        out.append(header.to_bytes(3, "little") + b"\x00")
    return b"".join(out)


def test_zstd_bomb_is_stopped_early() -> None:
    bomb = _zstd_rle_bomb(8192)  # 32 KiB claiming 1 GiB, no content size to check up front
    assert codec.decompress(codec.ZSTD, _zstd_rle_bomb(8), max_size=1 << 20) == bytes(8 * 131072)
    start = time.perf_counter()
    with pytest.raises(CorruptRecordError, match="limit"):
        codec.decompress(codec.ZSTD, bomb, max_size=4 << 20)
    assert time.perf_counter() - start < 5  # generous: it must not inflate the whole GiB


def _bombs(size: int) -> dict[int, bytes]:
    zeros = bytes(size)
    return {
        codec.GZIP: codec.compress(codec.GZIP, zeros),
        codec.SNAPPY: codec.compress(codec.SNAPPY, zeros),
        codec.LZ4: codec.compress(codec.LZ4, zeros),
        codec.ZSTD: zstandard.ZstdCompressor(write_content_size=False).compress(zeros),
    }


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_every_codec_honours_the_size_limit(c: int) -> None:
    bomb = _bombs(8 << 20)[c]
    assert len(bomb) < 1 << 20
    with pytest.raises(CorruptRecordError, match="limit"):
        codec.decompress(c, bomb, max_size=1 << 20)
    assert codec.decompress(c, bomb, max_size=8 << 20) == bytes(8 << 20)  # exactly at the limit


def test_decode_batch_limit_applies_to_compressed_records() -> None:
    rec = Record(0, 0, None, bytes(2 << 20))
    for c in (1, 2, 3, 4):
        buf = build_batch([rec], base_timestamp=0, compression=c)
        assert len(buf) < 1 << 20
        with pytest.raises(CorruptRecordError):
            decode_batch(buf, max_uncompressed_size=1 << 20)
        assert decode_batch(buf)[1] == [rec]


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_garbage_payloads_are_corrupt(c: int) -> None:
    payloads = [b"", os.urandom(64), b"\xff" * 100]
    if c != codec.SNAPPY:
        payloads.append(b"\x00")  # for raw snappy that is a valid empty stream
    for payload in payloads:
        with pytest.raises(CorruptRecordError):
            codec.decompress(c, payload)
