"""Fuzzing: garbage, truncations and bit flips only ever raise DecodeError subclasses.

Mutated inputs get their CRCs recomputed half of the time, so that corruption reaches the record
parser and the codecs instead of always stopping at the checksum.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.exceptions import DecodeError
from protocol.records import (
    Record,
    UnsupportedCompressionError,
    build_batch,
    build_control_batch,
    build_message_set,
    decode_batch,
    downconvert,
    iter_batches,
    iter_entries,
    iter_legacy_messages,
    upconvert_to_v2,
)
from protocol.records.batch import compute_crc
from tests.protocol.test_records_strategies import fix_legacy_crc, fix_v2_crc

LIMIT = 1 << 20  # keep decompression of mutated data cheap


def _decode_all(buf: bytes) -> None:
    for pos, _ in iter_batches(buf):
        decode_batch(buf, pos, max_uncompressed_size=LIMIT)


def _decode_unchecked(buf: bytes) -> None:
    decode_batch(buf, verify_crc=False, max_uncompressed_size=LIMIT)


def _legacy(buf: bytes) -> None:
    list(iter_legacy_messages(buf, max_uncompressed_size=LIMIT))


def _up(buf: bytes) -> None:
    upconvert_to_v2(buf, now_ms=1, max_uncompressed_size=LIMIT)


def _down(buf: bytes) -> None:
    try:
        downconvert(buf, 1, max_uncompressed_size=LIMIT)
        downconvert(buf, 0, max_uncompressed_size=LIMIT)
    except UnsupportedCompressionError:
        pass  # a valid zstd batch: not a decode failure


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "decode_batch": lambda b: decode_batch(b, max_uncompressed_size=LIMIT),
    "decode_batch_unchecked": _decode_unchecked,
    "iter_batches": lambda b: list(iter_batches(b)),
    "iter_entries": lambda b: list(iter_entries(b)),
    "decode_all": _decode_all,
    "iter_legacy_messages": _legacy,
    "upconvert_to_v2": _up,
    "downconvert": _down,
}


def only_decode_errors(buf: bytes) -> None:
    for name, fn in DECODERS.items():
        try:
            fn(buf)
        except DecodeError:
            pass
        except Exception as exc:  # pragma: no cover - this is the failure being looked for
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc!r} for {buf!r}") from exc


def _v2_samples() -> list[bytes]:
    recs = [
        Record(0, 0, b"key", b"value" * 20, [("h\u00e9", b"v"), ("n", None)]),
        Record(1, -5, None, None),
        Record(7, 1 << 33, b"", b"x" * 100),
    ]
    out = [
        build_batch(recs, base_offset=10, base_timestamp=1_700_000_000_000, compression=c) for c in range(5)
    ]
    out.append(build_control_batch(1, coordinator_epoch=2, producer_id=3, producer_epoch=4, timestamp=5))
    out.append(build_batch([], base_timestamp=-1, last_offset_delta=3))
    return out


def _legacy_samples() -> list[bytes]:
    msgs = [(0, 10, b"k", b"v" * 30), (1, 11, None, b"w" * 30), (2, 12, b"k2", None)]
    return [build_message_set(msgs, magic=m, compression=c) for m in (0, 1) for c in range(4)]


V2 = _v2_samples()
LEGACY = _legacy_samples()


def test_samples_are_valid() -> None:
    for buf in V2:
        decode_batch(buf)
    for buf in LEGACY:
        assert len(list(iter_legacy_messages(buf))) == 3
        decode_batch(upconvert_to_v2(buf, now_ms=0))
    assert len(list(iter_legacy_messages(downconvert(b"".join(V2[:4]), 1)))) == 12


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(buf: bytes) -> None:
    only_decode_errors(buf)


@st.composite
def plausible_v2(draw: st.DrawFn) -> bytes:
    """A random records section under a well-formed header with a valid CRC."""
    payload = draw(st.binary(max_size=200))
    attributes = draw(st.integers(0, 0x7F))
    count = draw(st.integers(-2, 20))
    head = struct.pack(">hiqqqhii", attributes, draw(st.integers(0, 30)), 0, 0, -1, -1, -1, count)
    body = bytearray(struct.pack(">qiib", 0, 49 + len(payload), 0, 2) + b"\x00\x00\x00\x00" + head + payload)
    struct.pack_into(">I", body, 17, compute_crc(body, 0, len(body)))
    return bytes(body)


@st.composite
def plausible_legacy(draw: st.DrawFn) -> bytes:
    """A message with a valid CRC and random key/value lengths and bytes."""
    magic = draw(st.sampled_from([0, 1]))
    attributes = draw(st.integers(0, 0xFF))
    rest = draw(st.binary(max_size=120))
    body = struct.pack(">bb", magic, attributes - 256 if attributes > 127 else attributes)
    if magic:
        body += struct.pack(">q", draw(st.integers(-(1 << 63), (1 << 63) - 1)))
    body += rest
    return struct.pack(">qiI", draw(st.integers(0, 1 << 40)), 4 + len(body), zlib.crc32(body)) + body


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible_v2() | plausible_legacy())
def test_plausible_headers_with_random_contents(buf: bytes) -> None:
    only_decode_errors(buf)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(V2) + len(LEGACY))),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 7)), min_size=1, max_size=4),
    st.booleans(),
)
def test_bit_flips(sample: int, flips: list[tuple[int, int]], fix_crc: bool) -> None:
    legacy = sample >= len(V2)
    buf = bytearray(LEGACY[sample - len(V2)] if legacy else V2[sample])
    for where, bit in flips:
        buf[where % len(buf)] ^= 1 << bit
    if fix_crc:
        (fix_legacy_crc if legacy else fix_v2_crc)(buf)
    only_decode_errors(bytes(buf))


@pytest.mark.parametrize("sample", range(len(V2) + len(LEGACY)))
def test_every_truncation(sample: int) -> None:
    buf = (V2 + LEGACY)[sample]
    for cut in range(len(buf)):
        only_decode_errors(buf[:cut])
        only_decode_errors(buf[cut:])


def test_seeded_mutation_sweep() -> None:
    """A larger, deterministic sweep: byte overwrites, insertions and deletions, CRC fixed."""
    rng = random.Random(20240917)
    samples = [(b, False) for b in V2] + [(b, True) for b in LEGACY]
    for _ in range(6000):
        original, legacy = rng.choice(samples)
        buf = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            where = rng.randrange(len(buf))
            if op < 0.6:
                buf[where] = rng.randrange(256)
            elif op < 0.8:
                buf[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                del buf[where : where + rng.randint(1, 4)]
        if rng.random() < 0.7:
            if legacy and len(buf) >= 16:
                fix_legacy_crc(buf)
            elif not legacy and len(buf) >= 61:
                fix_v2_crc(buf)
        only_decode_errors(bytes(buf))
