"""Legacy message sets (magic 0/1) and conversion to and from v2."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.exceptions import CorruptRecordError, EncodeError
from protocol.records import (
    ABORT,
    InvalidRecordError,
    LegacyMessage,
    Record,
    UnsupportedCompressionError,
    build_batch,
    build_control_batch,
    build_message_set,
    decode_batch,
    downconvert,
    iter_legacy_messages,
    read_header,
    record_timestamp,
    upconvert_to_v2,
)
from protocol.records import compression as codec
from protocol.records.legacy import encode_message
from tests.protocol.test_records_strategies import LEGACY_CODECS, blobs

FAST = settings(max_examples=120, deadline=None)


def message(
    offset: int, magic: int, attributes: int, timestamp: int | None, key: bytes | None, value: bytes | None
) -> bytes:
    out = bytearray()
    encode_message(out, offset, magic, attributes, timestamp, key, value)
    return bytes(out)


def wrapper(
    offset: int, magic: int, c: int, inner: bytes, timestamp: int | None = 0, lat: bool = False
) -> bytes:
    attrs = c | (0x08 if lat else 0)
    return message(offset, magic, attrs, timestamp, None, codec.compress(c, inner, magic=magic))


# ----------------------------------------------------------------------------------- exact bytes


def test_magic0_and_magic1_exact_layout() -> None:
    m0 = message(7, 0, 0, None, b"key", b"value")
    body0 = struct.pack(">bbi", 0, 0, 3) + b"key" + struct.pack(">i", 5) + b"value"
    assert m0 == struct.pack(">qiI", 7, 4 + len(body0), zlib.crc32(body0)) + body0
    m1 = message(8, 1, 0, 1234, None, b"v")
    body1 = struct.pack(">bbqi", 1, 0, 1234, -1) + struct.pack(">i", 1) + b"v"
    assert m1 == struct.pack(">qiI", 8, 4 + len(body1), zlib.crc32(body1)) + body1


# ------------------------------------------------------------------------------------ roundtrip

msg_inputs = st.lists(st.tuples(st.integers(0, 1 << 40), blobs, blobs), min_size=1, max_size=8)


@FAST
@given(
    items=msg_inputs,
    magic=st.sampled_from([0, 1]),
    c=st.sampled_from(LEGACY_CODECS),
    first=st.integers(0, 1 << 50),
)
def test_roundtrip(
    items: list[tuple[int, bytes | None, bytes | None]], magic: int, c: int, first: int
) -> None:
    msgs = [(first + 2 * i, ts, k, v) for i, (ts, k, v) in enumerate(items)]  # gapped offsets
    buf = build_message_set(msgs, magic=magic, compression=c)
    got = list(iter_legacy_messages(buf))
    assert [(m.offset, m.key, m.value) for m in got] == [(o, k, v) for o, _, k, v in msgs]
    assert all(m.magic == magic and m.compression == 0 and not m.is_log_append_time for m in got)
    assert [m.timestamp for m in got] == [ts if magic == 1 else None for _, ts, _, _ in msgs]
    if c:
        (outer,) = _shallow(buf)
        assert outer[0] == msgs[-1][0]  # wrapper offset is the last inner offset
        assert outer[2] & 0x07 == c


def _shallow(buf: bytes) -> list[tuple[int, int, int]]:
    """(offset, magic, attributes) of each top-level entry."""
    out, pos = [], 0
    while pos < len(buf):
        offset, length = struct.unpack_from(">qi", buf, pos)
        out.append((offset, buf[pos + 16], buf[pos + 17]))
        pos += 12 + length
    return out


def test_compressed_magic1_uses_relative_inner_offsets_and_max_timestamp() -> None:
    buf = build_message_set(
        [(100, 5, b"a", b"1"), (101, 9, b"b", b"2"), (105, 7, b"c", b"3")], magic=1, compression=1
    )
    (offset, _, attrs) = _shallow(buf)[0]
    assert offset == 105 and attrs == 1
    (wrapper_ts,) = struct.unpack_from(">q", buf, 18)
    assert wrapper_ts == 9
    inner = codec.decompress(1, buf[12 + 22 :])
    assert [o for o, _, _ in _shallow(inner)] == [0, 1, 5]


def test_compressed_magic0_uses_absolute_inner_offsets() -> None:
    buf = build_message_set([(100, None, b"a", b"1"), (103, None, b"b", b"2")], magic=0, compression=2)
    inner = codec.decompress(2, buf[12 + 14 :])
    assert [o for o, _, _ in _shallow(inner)] == [100, 103]
    assert [m.offset for m in iter_legacy_messages(buf)] == [100, 103]


def test_wrapper_offset_zero_means_base_zero_like_kafka() -> None:
    """librdkafka sends magic-1 wrappers with offset 0 in produce requests."""
    inner = message(0, 1, 0, 10, None, b"a") + message(1, 1, 0, 11, None, b"b")
    got = list(iter_legacy_messages(wrapper(0, 1, 1, inner)))
    assert [m.offset for m in got] == [0, 1]
    got = list(iter_legacy_messages(wrapper(50, 1, 1, inner)))
    assert [m.offset for m in got] == [49, 50]
    with pytest.raises(InvalidRecordError):  # wrapper below the last inner offset, and not 0
        list(
            iter_legacy_messages(
                wrapper(1, 1, 1, message(0, 1, 0, 1, None, b"a") + message(5, 1, 0, 1, None, b"b"))
            )
        )


def test_log_append_time_wrapper_overrides_inner_timestamps() -> None:
    inner = message(0, 1, 0, 10, None, b"a") + message(1, 1, 0, 11, None, b"b")
    got = list(iter_legacy_messages(wrapper(1, 1, 1, inner, timestamp=999, lat=True)))
    assert [m.timestamp for m in got] == [999, 999]
    assert all(m.is_log_append_time for m in got)
    got = list(iter_legacy_messages(wrapper(1, 1, 1, inner, timestamp=999)))
    assert [m.timestamp for m in got] == [10, 11]
    built = build_message_set([(5, 1, None, b"x"), (6, 2, None, b"y")], magic=1, log_append_time=77)
    assert [(m.timestamp, m.is_log_append_time) for m in iter_legacy_messages(built)] == [(77, True)] * 2
    built = build_message_set(
        [(5, 1, None, b"x"), (6, 2, None, b"y")], magic=1, compression=3, log_append_time=77
    )
    assert [(m.timestamp, m.is_log_append_time) for m in iter_legacy_messages(built)] == [(77, True)] * 2


def test_partial_trailing_entry_ends_iteration() -> None:
    buf = build_message_set([(0, 1, b"k", b"v"), (1, 2, b"k", b"w")], magic=1)
    first = len(buf) // 2
    for cut in range(len(buf)):
        got = list(iter_legacy_messages(buf[:cut]))
        assert len(got) == (0 if cut < first else 1)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (wrapper(0, 1, 4, message(0, 1, 0, 1, None, b"a")), InvalidRecordError),  # zstd
        (message(0, 1, 1, 1, None, None), InvalidRecordError),  # compressed, null value
        (wrapper(0, 1, 1, b""), InvalidRecordError),  # no inner messages
        (wrapper(0, 1, 1, wrapper(0, 1, 1, message(0, 1, 0, 1, None, b"a"))), InvalidRecordError),  # nested
        (wrapper(0, 1, 1, message(0, 1, 0, 1, None, b"a")[:-1]), CorruptRecordError),  # partial inner
        (message(0, 1, 5, 1, None, b"x"), CorruptRecordError),  # codec 5
        (struct.pack(">qiIbb", 0, 20, 0, 2, 0) + bytes(14), CorruptRecordError),  # magic 2
        (struct.pack(">qi", 0, 13) + bytes(13), CorruptRecordError),  # below RECORD_OVERHEAD_V0
        (
            struct.pack(">qi", 0, 16) + struct.pack(">Ibb", 0, 1, 0) + bytes(10),
            CorruptRecordError,
        ),  # v1 too short
    ],
)
def test_iter_rejects(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        list(iter_legacy_messages(data))


def test_iter_checks_crc_of_outer_and_inner_messages() -> None:
    buf = bytearray(message(0, 1, 0, 1, b"k", b"v"))
    buf[-1] ^= 1
    with pytest.raises(CorruptRecordError, match="crc"):
        list(iter_legacy_messages(buf))
    inner = bytearray(message(0, 1, 0, 1, b"k", b"v"))
    inner[-1] ^= 1
    with pytest.raises(CorruptRecordError, match="crc"):
        list(iter_legacy_messages(wrapper(0, 1, 1, bytes(inner))))


def test_iter_rejects_bad_lengths_inside_a_message() -> None:
    base = message(0, 0, 0, None, b"key", b"value")
    for key_len in (-2, 4, 100, 1 << 30):
        buf = bytearray(base)
        struct.pack_into(">i", buf, 18, key_len)
        struct.pack_into(">I", buf, 12, zlib.crc32(buf[16:]))
        with pytest.raises(CorruptRecordError):
            list(iter_legacy_messages(buf))
    trailing = bytearray(base + b"\x00")
    struct.pack_into(">i", trailing, 8, len(trailing) - 12)
    struct.pack_into(">I", trailing, 12, zlib.crc32(trailing[16:]))
    with pytest.raises(CorruptRecordError, match="after its value"):
        list(iter_legacy_messages(trailing))


def test_build_message_set_rejects() -> None:
    with pytest.raises(EncodeError):
        build_message_set([(0, 0, None, b"x")], magic=2)
    with pytest.raises(EncodeError):
        build_message_set([(0, 0, None, b"x")], magic=1, compression=4)
    with pytest.raises(EncodeError):
        build_message_set([(1 << 63, 0, None, b"x")], magic=1)
    assert build_message_set([], magic=1, compression=1) == b""


# ------------------------------------------------------------------------------------- upconvert


@FAST
@given(items=msg_inputs, magic=st.sampled_from([0, 1]), c=st.sampled_from(LEGACY_CODECS))
def test_upconvert_keeps_records(
    items: list[tuple[int, bytes | None, bytes | None]], magic: int, c: int
) -> None:
    msgs = [(1000 + i, ts, k, v) for i, (ts, k, v) in enumerate(items)]
    buf = build_message_set(msgs, magic=magic, compression=c)
    out = upconvert_to_v2(buf, now_ms=123)
    header, records = decode_batch(out)
    assert len(out) == header.size  # exactly one batch
    assert header.compression == c and not header.is_log_append_time
    assert header.base_offset == 0 and header.last_offset_delta == len(msgs) - 1
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (-1, -1, -1)
    assert [(r.offset_delta, r.key, r.value, r.headers) for r in records] == [
        (i, k, v, []) for i, (_, _, k, v) in enumerate(msgs)
    ]
    expected_ts = [ts if magic == 1 else -1 for _, ts, _, _ in msgs]
    assert [record_timestamp(header, r) for r in records] == expected_ts
    assert header.base_timestamp == expected_ts[0]
    assert header.max_timestamp == max(expected_ts)


def test_upconvert_magic0_has_no_timestamps() -> None:
    buf = build_message_set([(0, None, b"a", b"1"), (1, None, None, b"2")], magic=0)
    header, records = decode_batch(upconvert_to_v2(buf, now_ms=5000))
    assert header.base_timestamp == -1 and header.max_timestamp == -1
    assert [r.timestamp_delta for r in records] == [0, 0]


def test_upconvert_log_append_time_and_codec_override() -> None:
    buf = build_message_set([(0, 10, b"a", b"1"), (1, 30, b"b", b"2")], magic=1, compression=2)
    out = bytearray(
        upconvert_to_v2(buf, now_ms=5000, log_append_time=True, compression=4, partition_leader_epoch=9)
    )
    header, records = decode_batch(out)
    assert header.is_log_append_time and header.max_timestamp == 5000
    assert header.compression == 4 and header.partition_leader_epoch == 9
    assert [r.timestamp_delta for r in records] == [0, 20]  # producer timestamps kept in the deltas
    assert [record_timestamp(header, r) for r in records] == [5000, 5000]


def test_upconvert_with_lat_wrapper_uses_wrapper_timestamp() -> None:
    inner = message(0, 1, 0, 10, None, b"a") + message(1, 1, 0, 11, None, b"b")
    header, records = decode_batch(upconvert_to_v2(wrapper(1, 1, 1, inner, timestamp=77, lat=True), now_ms=1))
    assert [record_timestamp(header, r) for r in records] == [77, 77]


def test_upconvert_drops_partial_trailing_entry_like_kafka() -> None:
    buf = build_message_set([(0, 1, b"k", b"v"), (1, 2, b"k", b"w")], magic=1)
    _header, records = decode_batch(upconvert_to_v2(buf[:-3], now_ms=0))
    assert len(records) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 11,
        build_message_set([(0, 1, None, b"a")], magic=1, compression=1) * 2,  # two wrappers
        build_message_set([(0, 1, None, b"a")], magic=1) + build_message_set([(1, 1, None, b"a")], magic=0),
        build_message_set([(0, 1, None, b"a")], magic=1)
        + build_message_set([(1, 1, None, b"a")], magic=1, compression=1),
        wrapper(0, 1, 1, message(0, 0, 0, None, None, b"a")),  # inner magic differs from wrapper
        build_message_set([(0, -5, None, b"a")], magic=1),  # invalid negative timestamp
        build_batch([Record(0, 0, None, b"a")], base_timestamp=0),  # v2 is not a legacy message set
    ],
)
def test_upconvert_rejects(data: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        upconvert_to_v2(data, now_ms=0)


def test_upconvert_error_classes() -> None:
    with pytest.raises(InvalidRecordError):
        upconvert_to_v2(build_message_set([(0, 1, None, b"a")], magic=1, compression=1) * 2, now_ms=0)
    with pytest.raises(InvalidRecordError):
        upconvert_to_v2(b"", now_ms=0)


# ----------------------------------------------------------------------------------- downconvert


def _stored(*batches: bytes) -> bytes:
    return b"".join(batches)


def test_downconvert_uncompressed_preserves_offsets_and_timestamps() -> None:
    batch = build_batch(
        [Record(0, 0, b"a", b"1", [("h", b"x")]), Record(2, 5, None, b"2"), Record(3, -1, b"c", None)],
        base_offset=1000,
        base_timestamp=50_000,
        last_offset_delta=4,
    )
    for magic in (0, 1):
        out = downconvert(batch, magic)
        got = list(iter_legacy_messages(out))
        assert [(m.offset, m.key, m.value, m.magic) for m in got] == [
            (1000, b"a", b"1", magic),
            (1002, None, b"2", magic),
            (1003, b"c", None, magic),
        ]
        assert [m.timestamp for m in got] == ([50_000, 50_005, 49_999] if magic else [None] * 3)
        assert len(_shallow(out)) == 3  # one message per record
    # A fetch starting inside an uncompressed batch drops the earlier records.
    assert [m.offset for m in iter_legacy_messages(downconvert(batch, 1, first_offset=1002))] == [1002, 1003]


@pytest.mark.parametrize("c", [1, 2, 3])
@pytest.mark.parametrize("magic", [0, 1])
def test_downconvert_compressed_batch_becomes_one_wrapper(c: int, magic: int) -> None:
    batch = build_batch(
        [Record(0, 0, b"a", b"1"), Record(1, 9, b"b", b"2"), Record(4, 3, None, b"3")],
        base_offset=70,
        base_timestamp=1_000,
        compression=c,
    )
    out = downconvert(batch, magic, first_offset=72)  # ignored for compressed batches
    ((offset, m, attrs),) = _shallow(out)
    assert (offset, m, attrs & 0x07) == (74, magic, c)
    if magic == 1:
        (wrapper_ts,) = struct.unpack_from(">q", out, 18)
        assert wrapper_ts == 1_009
    got = list(iter_legacy_messages(out))
    assert [(x.offset, x.key, x.value) for x in got] == [(70, b"a", b"1"), (71, b"b", b"2"), (74, None, b"3")]
    if magic == 1:
        assert [x.timestamp for x in got] == [1_000, 1_009, 1_003]


def test_downconvert_log_append_time() -> None:
    batch = build_batch(
        [Record(0, 0, b"a", b"1"), Record(1, 9, b"b", b"2")],
        base_timestamp=1_000,
        max_timestamp=8_888,
        log_append_time=True,
    )
    for c_batch in (
        batch,
        build_batch(
            [Record(0, 0, b"a", b"1")],
            base_timestamp=1,
            max_timestamp=8_888,
            log_append_time=True,
            compression=1,
        ),
    ):
        got = list(iter_legacy_messages(downconvert(c_batch, 1)))
        assert all(m.timestamp == 8_888 and m.is_log_append_time for m in got)


def test_downconvert_drops_control_batches_and_partial_tail() -> None:
    data = build_batch(
        [Record(0, 0, None, b"a")],
        base_offset=0,
        base_timestamp=1,
        producer_id=5,
        producer_epoch=0,
        base_sequence=0,
        transactional=True,
    )
    marker = build_control_batch(
        ABORT, coordinator_epoch=1, producer_id=5, producer_epoch=0, timestamp=2, base_offset=1
    )
    later = build_batch([Record(0, 0, None, b"b")], base_offset=2, base_timestamp=3)
    stored = _stored(data, marker, later)
    got = list(iter_legacy_messages(downconvert(stored, 1)))
    assert [(m.offset, m.value) for m in got] == [(0, b"a"), (2, b"b")]
    got = list(iter_legacy_messages(downconvert(stored[:-1], 1)))
    assert [(m.offset, m.value) for m in got] == [(0, b"a")]
    assert downconvert(b"", 0) == b""


def test_downconvert_zstd_is_unsupported() -> None:
    batch = build_batch([Record(0, 0, None, b"a")], base_timestamp=1, compression=4)
    with pytest.raises(UnsupportedCompressionError):
        downconvert(batch, 1)


def test_downconvert_passes_legacy_entries_and_converts_magic1_to_magic0() -> None:
    m0 = build_message_set([(5, None, b"k", b"v")], magic=0)
    assert downconvert(m0, 0) == m0 and downconvert(m0, 1) == m0
    m1 = build_message_set([(5, 3, b"k", b"v"), (6, 4, None, b"w")], magic=1, compression=1)
    assert downconvert(m1, 1) == m1
    got = list(iter_legacy_messages(downconvert(m1, 0)))
    assert got == [LegacyMessage(5, 0, 0, None, b"k", b"v"), LegacyMessage(6, 0, 0, None, None, b"w")]


def test_downconvert_rejects_corrupt_batches_and_bad_magic() -> None:
    batch = bytearray(build_batch([Record(0, 0, None, b"a")], base_timestamp=1))
    batch[-2] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        downconvert(batch, 1)
    with pytest.raises(EncodeError):
        downconvert(b"", 2)


def test_up_then_down_is_identity_for_uncompressed_magic1() -> None:
    original = build_message_set([(0, 10, b"a", b"1"), (1, 20, None, b"2"), (2, 15, b"c", None)], magic=1)
    v2 = upconvert_to_v2(original, now_ms=0)
    assert read_header(v2).max_timestamp == 20
    assert downconvert(v2, 1) == original
