"""Cross-checks against kafka-python's independent record implementation (``kafka.record``).

kafka-python needs ``python-snappy`` for snappy and ``xxhash`` for magic-0 LZ4; neither is a
dependency of ours, so for the duration of this module its ``kafka.codec`` gets small shims built on
``cramjam`` (raw snappy blocks) and on our own XXH32. Note the XXH32 shim is still an independent
check: kafka-python computes the *correct* LZ4 header checksum with it and ``lz4.frame`` verifies it.

Byte identity is asserted where both sides are deterministic and make the same choices:
uncompressed v2 and legacy data, v2 zstd (same library, level 3, one frame) and v2 snappy (same xerial
framing, 32 KiB blocks, same raw compressor through the shim), and the *inner* message sets of
legacy wrappers. Not byte-comparable: gzip (kafka-python stamps the current time into the header)
and lz4 (kafka-python stores the content size, Kafka's Java writer and we do not).
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import cramjam
import kafka.codec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatch, LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from protocol.records import (
    Record,
    build_batch,
    build_message_set,
    decode_batch,
    iter_legacy_messages,
    record_offset,
    record_timestamp,
)
from protocol.records import compression as codec
from protocol.records.xxh32 import xxh32
from tests.protocol.test_records_strategies import CODECS, LEGACY_CODECS, blobs, headers

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 30


class _Digest:
    def __init__(self, data: bytes) -> None:
        self._value = xxh32(data)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


@pytest.fixture(autouse=True, scope="module")
def kafka_python_codecs() -> Iterator[None]:
    snappy_shim = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
    )
    xxhash_shim = types.SimpleNamespace(xxh32=_Digest)
    saved = (kafka.codec.snappy, kafka.codec.xxhash)
    kafka.codec.snappy = snappy_shim
    kafka.codec.xxhash = xxhash_shim
    try:
        yield
    finally:
        kafka.codec.snappy, kafka.codec.xxhash = saved


# Compressible but varied values, so kafka-python does not fall back to "uncompressed".
values = blobs | st.binary(min_size=1, max_size=8).map(lambda b: b * 40)


@st.composite
def v2_inputs(
    draw: st.DrawFn,
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """(offset, absolute timestamp, key, value, headers) with increasing offsets from 0."""
    n = draw(st.integers(1, 10))
    base_ts = draw(st.integers(1, 1 << 42))
    offset = 0
    out = []
    for _ in range(n):
        out.append(
            (
                offset,
                base_ts + draw(st.integers(-(1 << 20), 1 << 20)),
                draw(blobs),
                draw(values),
                draw(headers),
            )
        )
        offset += draw(st.sampled_from([1, 1, 1, 3]))
    out[0] = (0, base_ts, *out[0][2:])
    return out


def _kp_v2(items: list[Any], c: int, pid: int, epoch: int, seq: int, txn: bool) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=c,
        is_transactional=txn,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        batch_size=BIG,
    )
    for offset, ts, key, value, hdrs in items:
        assert builder.append(offset, ts, key, value, hdrs) is not None
    return bytes(builder.build())


def _ours_v2(items: list[Any], c: int, pid: int, epoch: int, seq: int, txn: bool) -> bytes:
    base_ts = items[0][1]
    records = [Record(offset, ts - base_ts, key, value, list(hdrs)) for offset, ts, key, value, hdrs in items]
    return build_batch(
        records,
        base_timestamp=base_ts,
        compression=c,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=txn,
        partition_leader_epoch=0,  # kafka-python's builder writes 0 here
    )


producer_states = st.sampled_from([(-1, -1, -1, False), (1234, 5, 0, False), (99, 0, 2_000_000, True)])


@SETTINGS
@given(items=v2_inputs(), c=st.sampled_from(CODECS), state=producer_states)
def test_v2_kafka_python_to_brook(items: list[Any], c: int, state: tuple[int, int, int, bool]) -> None:
    theirs = _kp_v2(items, c, *state)
    header, records = decode_batch(theirs)
    assert [
        (record_offset(header, r), record_timestamp(header, r), r.key, r.value, r.headers) for r in records
    ] == [(o, ts, k, v, list(h)) for o, ts, k, v, h in items]
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.is_transactional) == state
    # kafka-python sends uncompressed when compression does not pay off; Kafka and we always compress.
    used = header.compression
    assert used in (0, c)
    ours = _ours_v2(items, used, *state)
    if used in (codec.NONE, codec.SNAPPY, codec.ZSTD):
        assert ours == theirs
    else:
        assert len(ours) > 61 and decode_batch(ours)[1] == records


@SETTINGS
@given(items=v2_inputs(), c=st.sampled_from(CODECS), state=producer_states)
def test_v2_brook_to_kafka_python(items: list[Any], c: int, state: tuple[int, int, int, bool]) -> None:
    ours = _ours_v2(items, c, *state)
    batch = DefaultRecordBatch(ours)
    assert batch.validate_crc()
    assert batch.compression_type == c
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.is_transactional) == state
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch]
    assert got == [(o, ts, k, v, list(h)) for o, ts, k, v, h in items]
    assert batch.max_timestamp == max(ts for _, ts, _, _, _ in items)
    assert batch.last_offset == items[-1][0]


def test_v2_control_batch_is_read_by_kafka_python() -> None:
    from protocol.records import COMMIT, build_control_batch

    buf = build_control_batch(COMMIT, coordinator_epoch=3, producer_id=7, producer_epoch=1, timestamp=5)
    batch = DefaultRecordBatch(buf)
    assert batch.validate_crc() and batch.is_control_batch and batch.is_transactional
    (rec,) = list(batch)
    assert rec.commit and rec.version == 0


def test_v2_log_append_time_read_by_kafka_python() -> None:
    from protocol.records import set_log_append_time

    buf = bytearray(build_batch([Record(0, 0, b"k", b"v"), Record(1, 3, None, b"w")], base_timestamp=10))
    set_log_append_time(buf, 0, 4242)
    batch = DefaultRecordBatch(bytes(buf))
    assert batch.validate_crc() and batch.timestamp_type == 1
    assert [r.timestamp for r in batch] == [4242, 4242]


# ----------------------------------------------------------------------------------------- legacy

legacy_items = st.lists(st.tuples(st.integers(0, 1 << 42), blobs, values), min_size=1, max_size=8)


def _kp_legacy(items: list[tuple[int, bytes | None, bytes | None]], magic: int, c: int) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=c, batch_size=BIG)
    for offset, (ts, key, value) in enumerate(items):
        assert builder.append(offset, timestamp=ts, key=key, value=value) is not None
    return bytes(builder.build())


def _value_of_wrapper(buf: bytes, magic: int) -> bytes:
    start = 12 + (22 if magic else 14)
    return buf[start:]


@SETTINGS
@given(items=legacy_items, magic=st.sampled_from([0, 1]), c=st.sampled_from(LEGACY_CODECS))
def test_legacy_kafka_python_to_brook(
    items: list[tuple[int, bytes | None, bytes | None]], magic: int, c: int
) -> None:
    msgs = [(i, ts, k, v) for i, (ts, k, v) in enumerate(items)]
    ours = build_message_set(msgs, magic=magic, compression=c)
    theirs = _kp_legacy(items, magic, c)
    if c == codec.NONE:
        assert ours == theirs
    else:
        # Wrappers differ by design (kafka-python: offset 0, timestamp 0; Kafka: last offset, max
        # timestamp), but the compressed inner message sets are the same bytes.
        assert codec.decompress(c, _value_of_wrapper(theirs, magic), magic=magic) == codec.decompress(
            c, _value_of_wrapper(ours, magic), magic=magic
        )
    got = list(iter_legacy_messages(theirs))
    # A magic-1 wrapper at offset 0 means "inner offsets are absolute from 0" (Kafka's rule).
    assert [(m.offset, m.timestamp, m.key, m.value) for m in got] == [
        (i, ts if magic else None, k, v) for i, ts, k, v in msgs
    ]


@SETTINGS
@given(
    items=legacy_items,
    magic=st.sampled_from([0, 1]),
    c=st.sampled_from(LEGACY_CODECS),
    first=st.integers(0, 1 << 40),
)
def test_legacy_brook_to_kafka_python(
    items: list[tuple[int, bytes | None, bytes | None]], magic: int, c: int, first: int
) -> None:
    msgs = [(first + 2 * i, ts, k, v) for i, (ts, k, v) in enumerate(items)]
    ours = build_message_set(msgs, magic=magic, compression=c)
    got = []
    for batch in MemoryRecords(ours):
        assert isinstance(batch, LegacyRecordBatch)
        assert batch.validate_crc()
        for rec in batch:
            assert rec.validate_crc()
            got.append((rec.offset, rec.timestamp, rec.key, rec.value))
    assert got == [(o, ts if magic else None, k, v) for o, ts, k, v in msgs]


def test_magic1_wrapper_at_offset_zero_reads_the_same_in_both() -> None:
    """kafka-python's producer writes magic-1 wrappers at offset 0; Kafka reads that as base 0."""
    theirs = _kp_legacy([(1, None, b"a"), (2, None, b"b")], 1, codec.GZIP)
    assert [m.offset for m in iter_legacy_messages(theirs)] == [0, 1]
    batch = next(iter(MemoryRecords(theirs)))
    assert [r.offset for r in batch] == [0, 1]


@pytest.mark.parametrize("c", [codec.NONE, codec.SNAPPY, codec.ZSTD])
def test_v2_identical_bytes_for_deterministic_codecs(c: int) -> None:
    items = [(i, 1_700_000_000_000 + i, b"key-%d" % i, b"value " * 50, [("h", b"x")]) for i in range(20)]
    theirs = _kp_v2(items, c, -1, -1, -1, False)
    assert theirs[21 + 1] & 0x07 == c  # kafka-python did compress
    assert _ours_v2(items, c, -1, -1, -1, False) == theirs
