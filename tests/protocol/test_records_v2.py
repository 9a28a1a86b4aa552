"""Magic v2 batches: record encode/decode, header patching, control records, iteration."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records import (
    ABORT,
    COMMIT,
    Record,
    build_batch,
    build_control_batch,
    control_record,
    crc_is_valid,
    decode_batch,
    iter_batches,
    parse_control_key,
    parse_end_txn_marker,
    read_header,
    record_offset,
    record_timestamp,
    set_base_offset,
    set_log_append_time,
    set_max_timestamp,
    set_partition_leader_epoch,
)
from protocol.records.batch import BatchHeader
from protocol.records.varint import encode_varint, encode_varlong, read_varint, read_varlong
from tests.protocol.test_records_strategies import CODECS, base_timestamps, record_lists

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def crc_ok(buf: bytes | bytearray, pos: int = 0) -> bool:
    return crc_is_valid(buf, pos, read_header(buf, pos))


# ------------------------------------------------------------------------------------- varints


@given(st.integers(-(1 << 31), (1 << 31) - 1))
@settings(max_examples=200)
def test_varint_roundtrip(value: int) -> None:
    enc = encode_varint(value)
    assert read_varint(enc + b"\x00", 0, len(enc)) == (value, len(enc))
    assert len(enc) <= 5


@given(st.integers(-(1 << 63), (1 << 63) - 1))
@settings(max_examples=200)
def test_varlong_roundtrip(value: int) -> None:
    enc = encode_varlong(value)
    assert read_varlong(enc, 0, len(enc)) == (value, len(enc))
    assert len(enc) <= 10


def test_varint_known_encodings() -> None:
    # Protobuf zig-zag: 0->0, -1->1, 1->2, -2->3, 2147483647->4294967294
    assert encode_varint(0) == b"\x00"
    assert encode_varint(-1) == b"\x01"
    assert encode_varint(1) == b"\x02"
    assert encode_varint(-64) == b"\x7f"
    assert encode_varint(64) == b"\x80\x01"
    assert encode_varint((1 << 31) - 1) == b"\xfe\xff\xff\xff\x0f"
    with pytest.raises(OverflowError):
        encode_varint(1 << 31)


@pytest.mark.parametrize(
    "raw",
    [b"\x80\x80\x80\x80\x80\x01", b"\xff\xff\xff\xff\x1f", b"\x80", b""],
    ids=["too-long", "overflow-33-bits", "truncated", "empty"],
)
def test_varint_rejects(raw: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        read_varint(raw, 0, len(raw))


def test_varlong_rejects_eleven_bytes_and_overflow() -> None:
    with pytest.raises(CorruptRecordError):
        read_varlong(b"\x80" * 10 + b"\x01", 0, 11)
    with pytest.raises(CorruptRecordError):
        read_varlong(b"\xff" * 9 + b"\x03", 0, 10)


# ------------------------------------------------------------------------------ batch roundtrip


@FAST
@given(
    records=record_lists(),
    codec=st.sampled_from(CODECS),
    base_offset=st.integers(0, (1 << 62)),
    base_timestamp=base_timestamps,
    producer=st.tuples(
        st.integers(-1, (1 << 63) - 1), st.integers(-1, 32767), st.integers(-1, (1 << 31) - 1)
    ),
    transactional=st.booleans(),
    leader_epoch=st.integers(-1, (1 << 31) - 1),
)
def test_roundtrip_every_codec(
    records: list[Record],
    codec: int,
    base_offset: int,
    base_timestamp: int,
    producer: tuple[int, int, int],
    transactional: bool,
    leader_epoch: int,
) -> None:
    pid, epoch, seq = producer
    buf = build_batch(
        records,
        base_offset=base_offset,
        base_timestamp=base_timestamp,
        compression=codec,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=transactional,
        partition_leader_epoch=leader_epoch,
    )
    header, decoded = decode_batch(buf)
    assert decoded == records
    assert crc_ok(buf)
    assert header.size == len(buf)
    assert header.magic == 2
    assert header.compression == codec
    assert header.base_offset == base_offset
    assert header.partition_leader_epoch == leader_epoch
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == producer
    assert header.is_transactional == transactional
    assert not header.is_control and not header.is_log_append_time and not header.has_delete_horizon
    assert header.records_count == len(records)
    assert header.base_timestamp == base_timestamp
    if records:
        assert header.last_offset_delta == records[-1].offset_delta
        assert header.max_timestamp == max(base_timestamp + r.timestamp_delta for r in records)
        assert [record_offset(header, r) for r in decoded] == [base_offset + r.offset_delta for r in records]
    else:
        assert header.max_timestamp == -1
    # The header view and iteration agree with the full decode.
    assert list(iter_batches(buf)) == [(0, header)]


@FAST
@given(records=record_lists(max_size=6), codec=st.sampled_from(CODECS), data=st.data())
def test_in_place_patches_keep_crc_valid(records: list[Record], codec: int, data: st.DataObject) -> None:
    buf = bytearray(build_batch(records, base_timestamp=1_700_000_000_000, compression=codec))
    original_crc = read_header(buf).crc
    new_offset = data.draw(st.integers(0, (1 << 63) - 1))
    new_epoch = data.draw(st.integers(-1, (1 << 31) - 1))
    set_base_offset(buf, 0, new_offset)
    set_partition_leader_epoch(buf, 0, new_epoch)
    header = read_header(buf)
    assert (header.base_offset, header.partition_leader_epoch) == (new_offset, new_epoch)
    assert header.crc == original_crc and crc_ok(buf)
    assert decode_batch(buf)[1] == records

    append_time = data.draw(st.integers(0, 1 << 45))
    set_log_append_time(buf, 0, append_time)
    header, decoded = decode_batch(buf)  # CRC verified inside
    assert crc_ok(buf)
    assert header.is_log_append_time and header.max_timestamp == append_time
    assert header.compression == codec
    assert decoded == records
    assert all(record_timestamp(header, r) == append_time for r in decoded)


def test_set_log_append_time_matches_fresh_build() -> None:
    records = [Record(0, 0, b"k", b"v"), Record(1, 7, None, b"w")]
    buf = bytearray(build_batch(records, base_timestamp=1000, partition_leader_epoch=3))
    set_log_append_time(buf, 0, 5555)
    expected = build_batch(
        records, base_timestamp=1000, max_timestamp=5555, log_append_time=True, partition_leader_epoch=3
    )
    assert bytes(buf) == expected
    # And back to CreateTime with the true max timestamp: the original bytes.
    set_max_timestamp(buf, 0, 1007, log_append_time=False)
    assert bytes(buf) == build_batch(records, base_timestamp=1000, partition_leader_epoch=3)


def test_set_log_append_time_in_the_middle_of_a_buffer() -> None:
    a = build_batch([Record(0, 0, b"a", b"1")], base_timestamp=10)
    b = build_batch([Record(0, 0, b"b", b"2")], base_timestamp=20, compression=1)
    buf = bytearray(a + b)
    set_log_append_time(buf, len(a), 99)
    assert buf[: len(a)] == a
    header, _ = decode_batch(buf, len(a))
    assert header.max_timestamp == 99 and header.is_log_append_time


def test_set_log_append_time_rejects_legacy_and_truncated() -> None:
    buf = bytearray(build_batch([Record(0, 0, b"a", b"1")], base_timestamp=10))
    with pytest.raises(CorruptRecordError):
        set_log_append_time(buf[:-1], 0, 5)
    buf[16] = 1
    with pytest.raises(CorruptRecordError):
        set_log_append_time(buf, 0, 5)


# ------------------------------------------------------------------------------ exact encodings


def test_exact_bytes_of_a_small_batch() -> None:
    """Layout written out by hand from implementation.html, independent of the encoder."""
    rec = Record(offset_delta=0, timestamp_delta=0, key=b"k", value=b"hello", headers=[("h", b"v")])
    body = bytes([0, 0, 0, 2]) + b"k" + bytes([10]) + b"hello" + bytes([2, 2]) + b"h" + bytes([2]) + b"v"
    record = bytes([2 * len(body)]) + body  # zig-zag varint length
    after_crc = struct.pack(">hiqqqhii", 0, 0, 1000, 1000, 7, 1, 5, 1) + record
    crc = crc32c.crc32c(after_crc)
    expected = struct.pack(">qiib", 42, 49 + len(record), 4, 2) + struct.pack(">I", crc) + after_crc
    got = build_batch(
        [rec],
        base_offset=42,
        base_timestamp=1000,
        producer_id=7,
        producer_epoch=1,
        base_sequence=5,
        partition_leader_epoch=4,
    )
    assert got == expected


def test_null_key_value_and_header_value_are_minus_one_varints() -> None:
    buf = build_batch([Record(0, 0, None, None, [("", None)])], base_timestamp=0)
    # length 8 (zig-zag 16), attributes, ts delta, offset delta, key -1, value -1, 1 header,
    # header key length 0, header value -1
    assert buf[61:] == bytes([16, 0, 0, 0, 1, 1, 2, 0, 1])
    assert decode_batch(buf)[1] == [Record(0, 0, None, None, [("", None)])]


def test_record_attributes_are_kept() -> None:
    buf = build_batch([Record(0, 0, b"k", b"v", attributes=0x5A)], base_timestamp=0)
    assert decode_batch(buf)[1][0].attributes == 0x5A


# ------------------------------------------------------------------- compaction-related fields


def test_last_offset_delta_override_and_empty_batch() -> None:
    """Compaction keeps the original last offset even when the last records are gone."""
    records = [Record(0, 0, b"a", b"1"), Record(3, 5, b"b", b"2")]
    buf = build_batch(records, base_offset=100, base_timestamp=1000, last_offset_delta=9, base_sequence=50)
    header, decoded = decode_batch(buf)
    assert decoded == records
    assert header.last_offset_delta == 9 and header.next_offset == 110
    assert header.last_sequence == 59
    empty = build_batch([], base_offset=100, base_timestamp=-1, max_timestamp=1005, last_offset_delta=9)
    header, decoded = decode_batch(empty)
    assert decoded == [] and header.records_count == 0 and len(empty) == 61
    assert header.last_offset == 109 and header.max_timestamp == 1005
    with pytest.raises(EncodeError):
        build_batch(records, base_timestamp=0, last_offset_delta=2)


def test_delete_horizon_is_the_stored_base_timestamp() -> None:
    records = [Record(0, 0, b"a", None), Record(1, 10, b"b", b"x")]
    buf = build_batch(records, base_timestamp=1000, delete_horizon_ms=5000)
    header, decoded = decode_batch(buf)
    assert header.has_delete_horizon and header.delete_horizon_ms == 5000
    assert header.base_timestamp == 5000
    # Absolute timestamps are kept: deltas are rebased onto the horizon, as in Kafka.
    assert [record_timestamp(header, r) for r in decoded] == [1000, 1010]
    assert header.max_timestamp == 1010
    assert [r.timestamp_delta for r in decoded] == [-4000, -3990]
    # Re-building from the decoded form gives the same bytes.
    again = build_batch(
        decoded, base_timestamp=header.base_timestamp, delete_horizon_ms=header.base_timestamp
    )
    assert again == buf
    assert decode_batch(build_batch(records, base_timestamp=1000))[0].delete_horizon_ms is None


def test_sequence_wraps_like_kafka() -> None:
    buf = build_batch(
        [Record(0, 0, None, b"a"), Record(1, 0, None, b"b")],
        base_timestamp=0,
        producer_id=1,
        producer_epoch=0,
        base_sequence=(1 << 31) - 1,
    )
    assert read_header(buf).last_sequence == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"compression": 5},
        {"producer_epoch": 1 << 15},
        {"base_sequence": 1 << 31},
        {"partition_leader_epoch": -(1 << 31) - 1},
        {"base_offset": 1 << 63},
    ],
)
def test_build_rejects_out_of_range_fields(kwargs: dict[str, int]) -> None:
    with pytest.raises(EncodeError):
        build_batch([Record(0, 0, None, b"x")], base_timestamp=0, **kwargs)  # type: ignore[arg-type]


def test_build_rejects_bad_records() -> None:
    with pytest.raises(EncodeError):
        build_batch([Record(1, 0, None, b"x"), Record(1, 0, None, b"y")], base_timestamp=0)
    with pytest.raises(EncodeError):
        build_batch([Record(-1, 0, None, b"x")], base_timestamp=0)
    with pytest.raises(EncodeError):
        build_batch([Record(1 << 31, 0, None, b"x")], base_timestamp=0)
    with pytest.raises(EncodeError):
        build_batch([Record(0, 0, None, b"x", [("\ud800", None)])], base_timestamp=0)
    with pytest.raises(EncodeError):
        build_batch([Record(0, 1 << 63, None, b"x")], base_timestamp=0)


def test_header_key_invalid_utf8_survives_a_roundtrip() -> None:
    rec = Record(0, 0, None, b"x", [("ok", b"1")])
    buf = bytearray(build_batch([rec], base_timestamp=0))
    idx = buf.index(b"ok")
    buf[idx : idx + 2] = b"\xff\xfe"
    from tests.protocol.test_records_strategies import fix_v2_crc

    fix_v2_crc(buf)
    _header, (decoded,) = decode_batch(buf)
    assert decoded.headers[0][0] == "\udcff\udcfe"
    assert build_batch([decoded], base_timestamp=0) == bytes(buf)


# -------------------------------------------------------------------------------- control batches


@pytest.mark.parametrize("kind", [ABORT, COMMIT])
def test_control_batch(kind: int) -> None:
    buf = build_control_batch(
        kind, coordinator_epoch=17, producer_id=4000, producer_epoch=3, timestamp=1234, base_offset=55
    )
    header, (rec,) = decode_batch(buf)
    assert header.is_control and header.is_transactional
    assert header.base_sequence == -1 and header.producer_id == 4000 and header.producer_epoch == 3
    assert header.base_offset == 55 and header.last_offset_delta == 0 and header.max_timestamp == 1234
    assert rec.key == struct.pack(">hh", 0, kind)
    assert rec.value == struct.pack(">hi", 0, 17)
    assert parse_control_key(rec.key) == kind
    assert parse_end_txn_marker(rec.value) == 17
    assert control_record(kind, 17) == rec


def test_control_key_parsing_rules() -> None:
    assert parse_control_key(struct.pack(">hh", 3, 1) + b"extra") == 1  # newer versions parse as v0
    assert parse_control_key(struct.pack(">hh", 0, 6)) == 6
    for bad in (None, b"", b"\x00\x00\x00", struct.pack(">hh", -1, 0)):
        with pytest.raises(CorruptRecordError):
            parse_control_key(bad)
    for bad in (None, b"\x00\x00\x00\x00\x01", struct.pack(">hi", -2, 5)):
        with pytest.raises(CorruptRecordError):
            parse_end_txn_marker(bad)
    with pytest.raises(EncodeError):
        control_record(2, 0)


# ------------------------------------------------------------------------- iteration, truncation


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(record_lists(max_size=4), st.sampled_from(CODECS)), min_size=1, max_size=4))
def test_iteration_stops_cleanly_at_every_truncation(batches: list[tuple[list[Record], int]]) -> None:
    parts = [build_batch(recs, base_timestamp=1000, compression=codec) for recs, codec in batches]
    buf = b"".join(parts)
    ends = []
    total = 0
    for part in parts:
        total += len(part)
        ends.append(total)
    for cut in range(len(buf) + 1):
        got = [pos for pos, _ in iter_batches(buf[:cut])]
        complete = [end - len(part) for end, part in zip(ends, parts, strict=True) if end <= cut]
        assert got == complete
        for pos in got:
            _header, records = decode_batch(buf[:cut], pos)
            assert records == batches[got.index(pos)][0]


def test_decode_rejects_truncated_batch_at_every_length() -> None:
    buf = build_batch([Record(0, 0, b"key", b"value", [("h", b"v")])], base_timestamp=5, compression=1)
    for cut in range(len(buf)):
        with pytest.raises(CorruptRecordError):
            decode_batch(buf[:cut])


def test_decode_rejects_count_mismatches_and_leftovers() -> None:
    good = bytearray(build_batch([Record(0, 0, b"k", b"v"), Record(1, 0, b"k", b"v")], base_timestamp=0))
    from tests.protocol.test_records_strategies import fix_v2_crc

    for count in (1, 3, -1, 1 << 30):
        buf = bytearray(good)
        struct.pack_into(">i", buf, 57, count)
        fix_v2_crc(buf)
        with pytest.raises(CorruptRecordError):
            decode_batch(buf)
    # A record whose declared length is longer than its fields.
    buf = bytearray(good)
    buf[61] += 2
    buf += b"\x00\x00"
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    fix_v2_crc(buf)
    with pytest.raises(CorruptRecordError):
        decode_batch(buf)


def test_decode_checks_crc_magic_and_codec() -> None:
    buf = bytearray(build_batch([Record(0, 0, b"k", b"v")], base_timestamp=0))
    flipped = bytearray(buf)
    flipped[buf.rindex(b"v")] ^= 1  # "v" -> "w"
    with pytest.raises(CorruptRecordError, match="crc"):
        decode_batch(flipped)
    assert decode_batch(flipped, verify_crc=False)[1][0].value == b"w"
    from tests.protocol.test_records_strategies import fix_v2_crc

    bad_codec = bytearray(buf)
    bad_codec[22] |= 0x05
    fix_v2_crc(bad_codec)
    with pytest.raises(CorruptRecordError, match="codec"):
        decode_batch(bad_codec)
    bad_magic = bytearray(buf)
    bad_magic[16] = 1
    with pytest.raises(CorruptRecordError):
        decode_batch(bad_magic)
    with pytest.raises(CorruptRecordError):
        decode_batch(buf, -1)


def test_iter_batches_rejects_legacy_and_tiny_entries() -> None:
    buf = bytearray(build_batch([Record(0, 0, b"k", b"v")], base_timestamp=0))
    buf[16] = 1
    with pytest.raises(CorruptRecordError):
        list(iter_batches(buf))
    tiny = struct.pack(">qi", 0, 3) + b"\x00" * 3
    with pytest.raises(CorruptRecordError):
        list(iter_batches(tiny))


def test_batch_header_properties() -> None:
    header = BatchHeader(10, 100, 0, 2, 0, 0x7B, 4, 0, 0, 1, 0, 7, 5)
    assert header.compression == 3 and header.is_log_append_time and header.is_transactional
    assert header.is_control and header.has_delete_horizon
    assert (header.last_offset, header.next_offset, header.size, header.last_sequence) == (14, 15, 112, 11)


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (bytes([1]), "negative header count"),
        (bytes([2, 1]), "negative header key length"),
        (bytes([2, 0, 3]), "header value length -2"),
        (bytes([2, 0, 8]), "header value overruns"),
        (bytes([0x80, 0x80, 0x80, 0x80, 0x10]), "header count varint overflows int32"),
    ],
)
def test_decode_rejects_bad_headers(tail: bytes, reason: str) -> None:
    body = bytes([0, 0, 0, 1, 2]) + b"v" + tail  # attrs, ts, offset, null key, value "v", headers...
    record = encode_varint(len(body)) + body
    buf = bytearray(build_batch([Record(0, 0, None, b"v")], base_timestamp=0))
    buf[61:] = record
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    from tests.protocol.test_records_strategies import fix_v2_crc

    fix_v2_crc(buf)
    with pytest.raises(CorruptRecordError):
        decode_batch(buf)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decode_accepts_any_buffer(kind: type) -> None:
    buf = build_batch([Record(0, 0, b"k", b"v")], base_timestamp=0, compression=2)
    header, records = decode_batch(kind(b"xx" + buf), 2)
    assert records == [Record(0, 0, b"k", b"v")] and header.size == len(buf)
    assert [p for p, _ in iter_batches(kind(buf))] == [0]
