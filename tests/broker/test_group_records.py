"""``__consumer_offsets`` record formats, checked byte by byte against the internal-record
schemas (version prefix, then the fields in schema order)."""

from __future__ import annotations

import struct

from broker.group.records import (
    GroupKey,
    OffsetAndMetadata,
    OffsetKey,
    UnknownKey,
    build_records,
    group_metadata_key,
    group_metadata_value,
    offset_commit_key,
    offset_commit_value,
    read_group_value,
    read_key,
    read_offset_value,
)
from protocol.messages.group_metadata_value import GroupMetadataValue, MemberMetadata
from protocol.records import decode_batch


def s(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def b(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def test_offset_commit_key_is_version_1() -> None:
    key = offset_commit_key("grp", "orders", 7)
    assert key == struct.pack(">h", 1) + s("grp") + s("orders") + struct.pack(">i", 7)
    assert read_key(key) == OffsetKey("grp", "orders", 7)
    # version 0 keys (older brokers) read the same way
    assert read_key(struct.pack(">h", 0) + key[2:]) == OffsetKey("grp", "orders", 7)


def test_group_metadata_key_is_version_2() -> None:
    key = group_metadata_key("grp")
    assert key == struct.pack(">h", 2) + s("grp")
    assert read_key(key) == GroupKey("grp")
    assert read_key(struct.pack(">h", 9) + b"x") == UnknownKey(9)


def test_offset_commit_value_v3_without_expiry() -> None:
    value = OffsetAndMetadata(offset=42, leader_epoch=5, metadata="meta", commit_timestamp=1000)
    raw = offset_commit_value(value)
    assert raw == struct.pack(">hqi", 3, 42, 5) + s("meta") + struct.pack(">q", 1000)
    assert read_offset_value(raw) == value


def test_offset_commit_value_v1_with_expiry() -> None:
    value = OffsetAndMetadata(offset=42, metadata="", commit_timestamp=1000, expire_timestamp=5000)
    raw = offset_commit_value(value)
    assert raw == struct.pack(">hq", 1, 42) + s("") + struct.pack(">qq", 1000, 5000)
    assert read_offset_value(raw) == value


def test_group_metadata_value_v3() -> None:
    member = MemberMetadata("m-1", "inst", "client", "/127.0.0.1", 30000, 10000, b"sub", b"asg")
    value = GroupMetadataValue("consumer", 4, "range", "m-1", 1234, [member])
    raw = group_metadata_value(value)
    expected = (
        struct.pack(">h", 3)
        + s("consumer")
        + struct.pack(">i", 4)
        + s("range")
        + s("m-1")
        + struct.pack(">q", 1234)
        + struct.pack(">i", 1)
        + s("m-1")
        + s("inst")
        + s("client")
        + s("/127.0.0.1")
        + struct.pack(">ii", 30000, 10000)
        + b(b"sub")
        + b(b"asg")
    )
    assert raw == expected
    version, decoded = read_group_value(raw)
    assert version == 3 and decoded == value


def test_empty_group_value_has_null_protocol_and_leader() -> None:
    raw = group_metadata_value(GroupMetadataValue("consumer", 2, None, None, 99, []))
    assert raw == struct.pack(">h", 3) + s("consumer") + struct.pack(">ihhqi", 2, -1, -1, 99, 0)


def test_batch_of_records_and_tombstones() -> None:
    data = build_records([(b"k1", b"v1"), (b"k2", None)], timestamp=77)
    header, records = decode_batch(data)
    assert header.producer_id == -1 and header.base_timestamp == 77 and not header.is_transactional
    assert [(r.key, r.value) for r in records] == [(b"k1", b"v1"), (b"k2", None)]
