"""The records of ``__consumer_offsets``, byte for byte as Kafka 3.9 writes them.

Keys and values are the internal-record schemas (OffsetCommitKey/Value, GroupMetadataKey/Value)
behind a big-endian int16 version prefix (Kafka's ``MessageUtil.toVersionPrefixedBytes``):

* offset commit key: version 1 (OffsetCommitKey; versions 0 and 1 mean "offset commit");
* group metadata key: version 2 (GroupMetadataKey);
* offset commit value: version 1 when the commit carries an expire timestamp (OffsetCommit
  v2-v4 with a retention time), otherwise version 3 (with the leader epoch);
* group metadata value: version 3 (static members' group.instance.id included);
* a tombstone (null value) deletes an offset or a group.

Batches are magic v2, CreateTime, compressed with ``offsets.topic.compression.codec``, with no
producer id; a TxnOffsetCommit's batch is transactional, in the producer's id and epoch, with
base sequence -1 (Kafka's GroupMetadataManager writes 0; the partition's producer state does not
check the sequence of a coordinator's batch either way).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from protocol.messages.group_metadata_key import GroupMetadataKey
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.messages.offset_commit_key import OffsetCommitKey
from protocol.messages.offset_commit_value import OffsetCommitValue
from protocol.records import Record, build_batch
from storage.fast_dataclass import dataclass

_VERSION = struct.Struct(">h")
OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
GROUP_VALUE_VERSION = 3
NO_LEADER_EPOCH = -1
NO_SEQUENCE = -1
#: Kafka's GroupMetadataManager.generateOffsetRecords builds an offset-commit batch, plain or
#: transactional, with base sequence 0; group metadata and tombstones have none (-1).
OFFSET_COMMIT_BASE_SEQUENCE = 0


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """A committed offset as the coordinator keeps it."""

    offset: int
    leader_epoch: int = NO_LEADER_EPOCH
    metadata: str = ""
    commit_timestamp: int = 0
    #: Only from OffsetCommit v2-v4 with an explicit retention time (written as value v1).
    expire_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class UnknownKey:
    version: int


def _prefixed(version: int, body: bytes) -> bytes:
    return _VERSION.pack(version) + body


@functools.lru_cache(maxsize=65536)
def offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    """Cached: members commit the same partitions over and over."""
    return _prefixed(OFFSET_KEY_VERSION, OffsetCommitKey(group, topic, partition).encode(OFFSET_KEY_VERSION))


def group_metadata_key(group: str) -> bytes:
    return _prefixed(GROUP_KEY_VERSION, GroupMetadataKey(group).encode(GROUP_KEY_VERSION))


def offset_commit_value(value: OffsetAndMetadata) -> bytes:
    version = 1 if value.expire_timestamp is not None else 3
    message = OffsetCommitValue(
        offset=value.offset,
        leader_epoch=value.leader_epoch,
        metadata=value.metadata,
        commit_timestamp=value.commit_timestamp,
        expire_timestamp=-1 if value.expire_timestamp is None else value.expire_timestamp,
    )
    return _prefixed(version, message.encode(version))


def group_metadata_value(value: GroupMetadataValue) -> bytes:
    return _prefixed(GROUP_VALUE_VERSION, value.encode(GROUP_VALUE_VERSION))


def read_key(data: bytes | memoryview) -> OffsetKey | GroupKey | UnknownKey:
    """Kafka's ``readMessageKey``: versions 0-1 are offset keys, 2 a group key."""
    view = memoryview(data)
    (version,) = _VERSION.unpack_from(view, 0)
    if 0 <= version <= 1:
        key, _ = OffsetCommitKey.decode_from(view, version, 2)
        return OffsetKey(key.group, key.topic, key.partition)
    if version == 2:
        gkey, _ = GroupMetadataKey.decode_from(view, version, 2)
        return GroupKey(gkey.group)
    return UnknownKey(version)


def read_offset_value(data: bytes | memoryview) -> OffsetAndMetadata:
    view = memoryview(data)
    (version,) = _VERSION.unpack_from(view, 0)
    if not 0 <= version <= OffsetCommitValue.MAX_VERSION:
        raise ValueError(f"unknown offset commit value version {version}")
    value, _ = OffsetCommitValue.decode_from(view, version, 2)
    return OffsetAndMetadata(
        offset=value.offset,
        leader_epoch=value.leader_epoch,
        metadata=value.metadata,
        commit_timestamp=value.commit_timestamp,
        expire_timestamp=None if value.expire_timestamp == -1 else value.expire_timestamp,
    )


def read_group_value(data: bytes | memoryview) -> tuple[int, GroupMetadataValue]:
    """The value's version (v0 has no rebalance timeout) and its content."""
    view = memoryview(data)
    (version,) = _VERSION.unpack_from(view, 0)
    if not 0 <= version <= GroupMetadataValue.MAX_VERSION:
        raise ValueError(f"unknown group metadata value version {version}")
    value, _ = GroupMetadataValue.decode_from(view, version, 2)
    return version, value


@dataclass(frozen=True, slots=True)
class TxnProducer:
    """The transactional producer a TxnOffsetCommit batch is written for."""

    producer_id: int
    producer_epoch: int


def build_records(
    entries: Sequence[tuple[bytes, bytes | None]],
    timestamp: int,
    compression: int = 0,
    txn: TxnProducer | None = None,
    *,
    base_sequence: int = NO_SEQUENCE,
) -> bytearray:
    """One v2 batch of (key, value) records; a None value is a tombstone. With ``txn`` the batch
    is transactional, in that producer's name (a coordinator-origin batch: its sequence is not
    checked). Offset commits pass :data:`OFFSET_COMMIT_BASE_SEQUENCE`."""
    records = [Record(i, 0, key, value) for i, (key, value) in enumerate(entries)]
    if txn is None:
        return bytearray(
            build_batch(
                records, base_timestamp=timestamp, compression=compression, base_sequence=base_sequence
            )
        )
    return bytearray(
        build_batch(
            records,
            base_timestamp=timestamp,
            compression=compression,
            producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch,
            base_sequence=base_sequence,
            transactional=True,
        )
    )
