"""Test helper: build magic-v2 record batches by hand (struct + crc32c), independently of the
code under test, following implementation.html's "Record Batch" and "Record" layouts."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import crc32c


def varint(value: int) -> bytes:
    zz = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        b = zz & 0x7F
        zz >>= 7
        if zz:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray()
    body.append(0)  # attributes
    body += varint(timestamp_delta)
    body += varint(offset_delta)
    if key is None:
        body += varint(-1)
    else:
        body += varint(len(key)) + key
    if value is None:
        body += varint(-1)
    else:
        body += varint(len(value)) + value
    body += varint(0)  # headers
    return varint(len(body)) + bytes(body)


def make_batch(
    records: Sequence[tuple[bytes | None, bytes | None]] | int = 1,
    *,
    base_offset: int = 0,
    base_timestamp: int = 1_700_000_000_000,
    timestamps: Sequence[int] | None = None,
    value_size: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
    partition_leader_epoch: int = -1,
    last_offset_delta: int | None = None,
) -> bytearray:
    """A v2 batch. ``records`` is a list of (key, value) or a count of records with values of
    ``value_size`` bytes. ``timestamps`` are absolute per record (default: all base_timestamp)."""
    if isinstance(records, int):
        records = [(None, bytes(value_size) if value_size else b"v%d" % i) for i in range(records)]
    ts = list(timestamps) if timestamps is not None else [base_timestamp] * len(records)
    body = b"".join(encode_record(i, ts[i] - base_timestamp, k, v) for i, (k, v) in enumerate(records))
    lod = len(records) - 1 if last_offset_delta is None else last_offset_delta
    max_ts = max(ts) if ts else -1
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            attributes,
            lod,
            base_timestamp,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
        + body
    )
    crc = crc32c.crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch + magic + crc + rest
    return bytearray(
        struct.pack(">qiibI", base_offset, batch_length, partition_leader_epoch, 2, crc) + after_crc
    )


def batch_of_size(size: int, *, base_timestamp: int = 1_700_000_000_000, records: int = 1) -> bytearray:
    """A batch of exactly ``size`` bytes (needs about 61 + 10 bytes per record at least).

    A record's length varint grows at 64 bytes, so some sizes cannot be hit with one record's
    value alone; a second knob (the key, or the second record's value) covers them."""
    for second in (b"x", b"xx", b"xxx"):
        rest: list[tuple[bytes | None, bytes | None]] = [(None, second) for _ in range(records - 1)]
        base = len(make_batch([(None, b""), *rest], base_timestamp=base_timestamp))
        if base > size:
            raise ValueError(f"{records} records need at least {base} bytes")
        guess = size - base
        for key in (None, b"k", b"kk"):
            for value_len in range(max(0, guess - 10), guess + 10):
                b = make_batch([(key, bytes(value_len)), *rest], base_timestamp=base_timestamp)
                if len(b) == size:
                    return b
    raise ValueError(f"cannot build a batch of exactly {size} bytes")
