"""Hypothesis strategies and helpers shared by the test_records_* modules (no tests here)."""

from __future__ import annotations

import struct
import zlib

from hypothesis import strategies as st

from protocol.records import Record
from protocol.records.batch import CRC_OFFSET, compute_crc

INT64_MAX = (1 << 63) - 1
CODECS = (0, 1, 2, 3, 4)
LEGACY_CODECS = (0, 1, 2, 3)

blobs = st.none() | st.binary(max_size=48)
header_keys = st.text(max_size=12)  # unicode, no surrogates
headers = st.lists(st.tuples(header_keys, st.none() | st.binary(max_size=16)), max_size=4)
timestamp_deltas = st.integers(-(1 << 40), 1 << 40) | st.sampled_from([0, -1, 1, (1 << 31), -(1 << 31) - 1])


@st.composite
def record_lists(draw: st.DrawFn, max_size: int = 12) -> list[Record]:
    """Records with strictly increasing, possibly gapped offset deltas."""
    n = draw(st.integers(0, max_size))
    delta = draw(st.integers(0, 5))
    records = []
    for _ in range(n):
        records.append(
            Record(
                offset_delta=delta,
                timestamp_delta=draw(timestamp_deltas),
                key=draw(blobs),
                value=draw(blobs),
                headers=draw(headers),
            )
        )
        delta += draw(st.integers(1, 1 << 12)) if draw(st.booleans()) else 1
    return records


base_timestamps = st.integers(-1, 1 << 41) | st.sampled_from([0, (1 << 62)])


def fix_v2_crc(buf: bytearray, pos: int = 0) -> None:
    """Recompute the CRC of the v2 batch at ``pos`` (so that corruption reaches the parser)."""
    (length,) = struct.unpack_from(">i", buf, pos + 8)
    struct.pack_into(">I", buf, pos + CRC_OFFSET, compute_crc(buf, pos, length + 12))


def fix_legacy_crc(buf: bytearray, pos: int = 0) -> None:
    """Recompute the CRC-32 of the legacy entry at ``pos`` if its size is plausible."""
    (length,) = struct.unpack_from(">i", buf, pos + 8)
    end = pos + 12 + length
    if length >= 4 and end <= len(buf):
        struct.pack_into(">I", buf, pos + 12, zlib.crc32(bytes(buf[pos + 16 : end])))
