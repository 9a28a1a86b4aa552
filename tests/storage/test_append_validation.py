"""Kafka's LogValidator record checks on ``Log.append`` (the leader's append of client batches):
the records themselves are read, not only the batch header."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.records import LZ4, Record, build_batch, decode_batch, read_header
from protocol.records.batch import TIMESTAMP_TYPE_MASK
from protocol.records.compression import compress
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import CorruptBatchError, InvalidRecordBatchError, InvalidTimestampError
from storage.log import Log
from tests.storage.batches import encode_record, make_batch
from tests.storage.conftest import OpenLog

NOW = 1_700_000_000_000


def patched(batch: bytearray, *, offset: int, fmt: str, value: int) -> bytearray:
    """``batch`` with one header field overwritten and the CRC made valid again."""
    out = bytearray(batch)
    struct.pack_into(fmt, out, offset, value)
    out[17:21] = crc32c.crc32c(out[21:]).to_bytes(4, "big")
    return out


def with_records(batch: bytearray, body: bytes) -> bytearray:
    """``batch``'s header over other record bytes (length and CRC fixed, count unchanged)."""
    out = bytearray(batch[:61]) + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    out[17:21] = crc32c.crc32c(out[21:]).to_bytes(4, "big")
    return out


def test_header_max_timestamp_below_the_records_is_rewritten(open_log: OpenLog) -> None:
    # sarama 1.22 writes the batch's max timestamp lower than its records' (Kafka rewrites it).
    log = open_log()
    log.append(make_batch(1, base_timestamp=NOW - 100), 0)
    sarama = patched(make_batch(3, timestamps=[NOW, NOW + 5, NOW + 10]), offset=35, fmt=">q", value=NOW)
    info = log.append(sarama, 0)
    assert info.max_timestamp == NOW + 10
    stored = bytearray(log.read_bytes(1, 1 << 20))
    header = read_header(stored)
    assert header.max_timestamp == NOW + 10
    assert crc32c.crc32c(stored[21 : header.size]) == header.crc
    found = log.offset_for_timestamp(NOW + 7)
    assert found is not None and (found.offset, found.timestamp) == (3, NOW + 10)


def test_max_timestamp_is_rewritten_on_the_general_path_too(open_log: OpenLog) -> None:
    log = open_log()
    sarama = patched(make_batch(2, timestamps=[NOW, NOW + 9]), offset=35, fmt=">q", value=NOW - 1)
    info = log.append(make_batch(1) + sarama, 0)  # two batches: the general path
    assert info.max_timestamp == NOW + 9
    assert read_header(log.read_bytes(1, 1 << 20)).max_timestamp == NOW + 9


def test_compacted_topic_names_every_record_without_a_key(open_log: OpenLog) -> None:
    log = open_log(LogConfig(cleanup_policy="compact"))
    records: list[tuple[bytes | None, bytes | None]] = [
        (b"k", b"v"),
        (None, b"v"),
        (b"k", b"v"),
        (None, b"v"),
    ]
    with pytest.raises(InvalidRecordBatchError) as caught:
        log.append(make_batch(records), 0)
    assert [index for index, _ in caught.value.record_errors] == [1, 3]
    assert (
        "Compacted topic cannot accept message without key in topic partition t-0"
        in (caught.value.record_errors[0][1])
    )
    assert log.log_end_offset == 0


def test_compacted_topic_checks_keys_of_compressed_batches(open_log: OpenLog) -> None:
    log = open_log(LogConfig(cleanup_policy="compact"))
    batch = build_batch(
        [Record(0, 0, b"k", b"v"), Record(1, 0, None, b"v")], base_timestamp=NOW, compression=LZ4
    )
    with pytest.raises(InvalidRecordBatchError) as caught:
        log.append(bytearray(batch), 0)
    assert [index for index, _ in caught.value.record_errors] == [1]


def test_header_count_must_match_the_records(open_log: OpenLog) -> None:
    log = open_log()
    three = make_batch(3)
    two_records = b"".join(encode_record(i, 0, None, b"v") for i in range(2))
    with pytest.raises(InvalidRecordBatchError, match="premature EOF"):
        log.append(with_records(three, two_records), 0)
    one = make_batch(1)
    with pytest.raises(InvalidRecordBatchError, match="records still remaining"):
        log.append(with_records(one, two_records), 0)
    assert log.log_end_offset == 0


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x00\x00\x00\x01\x01\x01",  # length 5, but the record body is 6 bytes
        b"\x02\x00",  # length 1: no room for the timestamp
        b"\x0c\x00\x00\x00\x01\x00\x01",  # header count -1
        b"\x0e\x00\x00\x00\x01\x00\x02\x01",  # one header whose key size is -1
        b"\x12\x00\xff\xff\xff\xff\xff\x00\x01\x00",  # a 6-byte offset-delta varint
    ],
)
def test_malformed_records_are_invalid(open_log: OpenLog, body: bytes) -> None:
    log = open_log()
    with pytest.raises(InvalidRecordBatchError):
        log.append(with_records(make_batch(1), body), 0)
    assert log.log_end_offset == 0


def test_every_record_timestamp_is_checked(open_log: OpenLog, clock: ManualClock) -> None:
    log = open_log(LogConfig(message_timestamp_before_max_ms=1_000, message_timestamp_after_max_ms=1_000))
    now = clock.milliseconds()
    # Base and max timestamps are fine; records 1 and 3 are not.
    batch = make_batch(4, base_timestamp=now, timestamps=[now, now - 5_000, now + 500, now - 2_000])
    with pytest.raises(InvalidTimestampError) as caught:
        log.append(batch, 0)
    assert [index for index, _ in caught.value.record_errors] == [1, 3]
    assert (
        f"Timestamp {now - 5_000} of message with offset 1 is out of range"
        in caught.value.record_errors[0][1]
    )
    log.append(make_batch(2, base_timestamp=now, timestamps=[now, now - 900]), 0)
    assert log.log_end_offset == 2


def test_client_log_append_time_batch(open_log: OpenLog) -> None:
    log = open_log()
    no_time = make_batch(2, timestamps=[-1, -1], base_timestamp=-1, attributes=TIMESTAMP_TYPE_MASK)
    with pytest.raises(InvalidTimestampError) as caught:
        log.append(no_time, 0)
    assert [index for index, _ in caught.value.record_errors] == [0, 1]
    # With a time, a CreateTime topic takes it as the records' time and clears the type bit.
    timed = make_batch(2, timestamps=[NOW, NOW], attributes=TIMESTAMP_TYPE_MASK)
    info = log.append(timed, 0)
    assert info.max_timestamp == NOW
    assert not read_header(log.read_bytes(0, 1 << 20)).is_log_append_time


def test_undecompressable_batch_is_corrupt(open_log: OpenLog) -> None:
    log = open_log()
    batch = bytearray(build_batch([Record(0, 0, b"k", bytes(200))], base_timestamp=NOW, compression=LZ4))
    batch[70:80] = bytes(10)
    batch[17:21] = crc32c.crc32c(batch[21:]).to_bytes(4, "big")
    with pytest.raises(CorruptBatchError):
        log.append(batch, 0)


def test_compressed_batch_with_gapped_offset_deltas_is_renumbered(open_log: OpenLog) -> None:
    # Kafka rebuilds a compressed batch whose record offset deltas are not 0..n-1 (LogValidator:
    # no in-place assignment) rather than refuse it; an uncompressed one is stored as it came.
    log = open_log()
    body = b"".join(encode_record(delta, 0, b"k", b"v%d" % i) for i, delta in enumerate([0, 0, 1]))
    gapped = with_records(make_batch(3, attributes=LZ4), compress(LZ4, body))
    info = log.append(gapped, 0)
    assert (info.first_offset, info.last_offset) == (0, 2)
    header, records = decode_batch(log.read_bytes(0, 1 << 20))
    assert [r.offset_delta for r in records] == [0, 1, 2]
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert (header.compression, header.records_count, header.last_offset_delta) == (LZ4, 3, 2)
    plain = with_records(make_batch(3), body)
    log.append(plain, 0)
    _, stored = decode_batch(log.read_bytes(3, 1 << 20))
    assert [r.offset_delta for r in stored] == [0, 0, 1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(st.booleans(), min_size=1, max_size=6),
    deltas=st.lists(st.integers(-3_000, 3_000), min_size=6, max_size=6),
    base_shift=st.one_of(st.just(None), st.integers(-3_000, 3_000)),
    client_append_time=st.one_of(st.none(), st.just(-1), st.integers(-3_000, 3_000)),
    compact=st.booleans(),
    append_time_topic=st.booleans(),
    limits=st.one_of(st.none(), st.tuples(st.integers(0, 2_500), st.integers(0, 2_500))),
)
def test_record_checks_match_kafkas_rules(
    tmp_path_factory: pytest.TempPathFactory,
    keys: list[bool],
    deltas: list[int],
    base_shift: int | None,
    client_append_time: int | None,
    compact: bool,
    append_time_topic: bool,
    limits: tuple[int, int] | None,
) -> None:
    """Kafka's validateKey/validateTimestamp (LogValidator), written out record by record, against
    what Log.append accepts, refuses (error type, record indexes) and stores."""
    now = NOW
    config = LogConfig(
        cleanup_policy="compact" if compact else "delete",
        message_timestamp_type="LogAppendTime" if append_time_topic else "CreateTime",
        message_timestamp_before_max_ms=limits[0] if limits else LogConfig().message_timestamp_before_max_ms,
        message_timestamp_after_max_ms=limits[1] if limits else LogConfig().message_timestamp_after_max_ms,
    )
    base = -1 if base_shift is None else now + base_shift
    timestamps = [-1 if base_shift is None else base + d for d in deltas[: len(keys)]]
    rows = [(b"k" if keyed else None, b"v") for keyed in keys]
    attributes = 0 if client_append_time is None else TIMESTAMP_TYPE_MASK
    data = make_batch(rows, base_timestamp=base, timestamps=timestamps, attributes=attributes)
    if client_append_time is not None:
        batch_time = -1 if client_append_time == -1 else now + client_append_time
        data = patched(data, offset=35, fmt=">q", value=batch_time)
        timestamps = [batch_time] * len(keys)

    expected: list[tuple[int, str]] = []
    for index, (keyed, ts) in enumerate(zip(keys, timestamps, strict=True)):
        if compact and not keyed:
            expected.append((index, "key"))
        elif not append_time_topic and ts != -1:
            if limits and (now - ts > limits[0] or ts - now > limits[1]):
                expected.append((index, "time"))
        elif client_append_time is not None:
            expected.append((index, "time"))

    directory = tmp_path_factory.mktemp("log") / "t-0"
    log = Log.open(directory, config, clock=ManualClock(now))
    try:
        if expected:
            error = (
                InvalidTimestampError if any(k == "time" for _, k in expected) else InvalidRecordBatchError
            )
            with pytest.raises(error) as caught:
                log.append(data, 0)
            assert [i for i, _ in caught.value.record_errors] == [i for i, _ in expected]
            assert log.log_end_offset == 0
            return
        info = log.append(data, 0)
        stored = read_header(log.read_bytes(0, 1 << 20))
        max_ts = now if append_time_topic else max([-1, *timestamps])
        assert info.max_timestamp == stored.max_timestamp == max_ts
        assert stored.is_log_append_time == append_time_topic
        assert crc32c.crc32c(log.read_bytes(0, 1 << 20)[21:]) == stored.crc
    finally:
        log.close()
