"""The records of ``__transaction_state``, byte for byte as Kafka 3.9 writes them
(``TransactionLog.keyToBytes`` / ``valueToBytes``).

* key: TransactionLogKey version 0 behind a big-endian int16 version prefix;
* value: TransactionLogValue version 0 (transaction version 0, Kafka 3.9's default), version
  prefixed; the partitions grouped by topic, null in the Empty state;
* a tombstone (null value) removes a transactional id (expiration).

Batches are magic v2, CreateTime, no producer id and uncompressed (Kafka's EnforcedCompression).
Reading accepts value versions 0 and 1 (1 is flexible; its extra tagged fields are skipped).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from broker.txn.state import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TxnState, TxnTransit
from broker.types import TopicPartition
from protocol.messages.transaction_log_key import TransactionLogKey
from protocol.messages.transaction_log_value import PartitionsSchema, TransactionLogValue
from protocol.records import Record, build_batch

_VERSION = struct.Struct(">h")
KEY_VERSION = 0
VALUE_VERSION = 0


def key_bytes(transactional_id: str) -> bytes:
    return _VERSION.pack(KEY_VERSION) + TransactionLogKey(transactional_id).encode(KEY_VERSION)


def value_bytes(transit: TxnTransit) -> bytes:
    if transit.state is TxnState.EMPTY and transit.partitions:
        raise ValueError(f"an Empty transaction has no partitions: {transit}")
    partitions: list[PartitionsSchema] | None = None
    if transit.state is not TxnState.EMPTY:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(transit.partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        partitions = [PartitionsSchema(topic, ids) for topic, ids in by_topic.items()]
    value = TransactionLogValue(
        producer_id=transit.producer_id,
        producer_epoch=transit.producer_epoch,
        transaction_timeout_ms=transit.txn_timeout_ms,
        transaction_status=transit.state.id,
        transaction_partitions=partitions,
        transaction_last_update_timestamp_ms=transit.txn_last_update_timestamp,
        transaction_start_timestamp_ms=transit.txn_start_timestamp,
    )
    return _VERSION.pack(VALUE_VERSION) + value.encode(VALUE_VERSION)


def read_key(data: bytes | memoryview) -> str | None:
    """The transactional id of a key, or None for a key version Brook does not know."""
    view = memoryview(data)
    (version,) = _VERSION.unpack_from(view, 0)
    if version != KEY_VERSION:
        return None
    key, _ = TransactionLogKey.decode_from(view, version, 2)
    return key.transactional_id


def read_value(data: bytes | memoryview) -> TxnTransit:
    """A value as the transit it recorded. Raises ValueError on an unknown version or state."""
    view = memoryview(data)
    (version,) = _VERSION.unpack_from(view, 0)
    if not TransactionLogValue.MIN_VERSION <= version <= TransactionLogValue.MAX_VERSION:
        raise ValueError(f"Unknown version {version} from the transaction log message value")
    value, _ = TransactionLogValue.decode_from(view, version, 2)
    state = TxnState.from_id(value.transaction_status)
    partitions: frozenset[TopicPartition] = frozenset()
    if state is not TxnState.EMPTY and value.transaction_partitions:
        partitions = frozenset(
            TopicPartition(schema.topic, index)
            for schema in value.transaction_partitions
            for index in schema.partition_ids
        )
    return TxnTransit(
        value.producer_id,
        NO_PRODUCER_ID,
        value.producer_epoch,
        NO_PRODUCER_EPOCH,
        value.transaction_timeout_ms,
        state,
        partitions,
        value.transaction_start_timestamp_ms,
        value.transaction_last_update_timestamp_ms,
    )


def build_records(entries: Sequence[tuple[bytes, bytes | None]], timestamp: int) -> bytearray:
    """One uncompressed v2 batch of (key, value) records; a None value is a tombstone."""
    records = [Record(i, 0, key, value) for i, (key, value) in enumerate(entries)]
    return bytearray(build_batch(records, base_timestamp=timestamp))
