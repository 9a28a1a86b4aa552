"""``__transaction_state`` records in Kafka 3.9's format: the bytes Kafka writes (laid out here
from TransactionLogKey/Value v0), round trips, and the generated classes reading ours."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.txn.records import build_records, key_bytes, read_key, read_value, value_bytes
from broker.txn.state import TxnState, TxnTransit
from broker.types import TopicPartition
from protocol.messages.transaction_log_value import PartitionsSchema, TransactionLogValue
from protocol.records import decode_batch, iter_batches


def transit(state: TxnState, partitions: frozenset[TopicPartition] = frozenset()) -> TxnTransit:
    return TxnTransit(7, -1, 3, -1, 60000, state, partitions, 1000 if partitions else -1, 2000)


def test_the_key_is_kafkas() -> None:
    # version 0, then TransactionLogKey v0: an int16-length string
    assert key_bytes("tx") == b"\x00\x00" + b"\x00\x02tx"
    assert read_key(key_bytes("tx")) == "tx"
    assert read_key(b"\x00\x01\x00\x02tx") is None  # unknown key version: skipped


def test_the_value_is_kafkas() -> None:
    value = value_bytes(
        transit(TxnState.ONGOING, frozenset({TopicPartition("a", 1), TopicPartition("a", 0)}))
    )
    expected = (
        struct.pack(">h", 0)  # version
        + struct.pack(">qhib", 7, 3, 60000, 1)  # producer id, epoch, timeout, status Ongoing
        + struct.pack(">i", 1)  # one topic
        + struct.pack(">h", 1)
        + b"a"
        + struct.pack(">iii", 2, 0, 1)
        + struct.pack(">qq", 2000, 1000)  # last update, start
    )
    assert value == expected


def test_an_empty_transaction_has_null_partitions() -> None:
    value = value_bytes(transit(TxnState.EMPTY))
    decoded = TransactionLogValue.decode(value[2:], 0)
    assert decoded.transaction_partitions is None
    assert read_value(value).partitions == frozenset()


def test_the_generated_classes_read_what_kafka_wrote() -> None:
    # built the other way round: as Kafka's TransactionLog.valueToBytes builds it
    kafka = struct.pack(">h", 0) + TransactionLogValue(
        producer_id=9,
        producer_epoch=1,
        transaction_timeout_ms=1000,
        transaction_status=TxnState.PREPARE_COMMIT.id,
        transaction_partitions=[PartitionsSchema("x", [2, 0]), PartitionsSchema("y", [1])],
        transaction_last_update_timestamp_ms=5,
        transaction_start_timestamp_ms=4,
    ).encode(0)
    read = read_value(kafka)
    assert read.state is TxnState.PREPARE_COMMIT
    assert read.partitions == {TopicPartition("x", 2), TopicPartition("x", 0), TopicPartition("y", 1)}
    assert (read.producer_id, read.producer_epoch, read.txn_timeout_ms) == (9, 1, 1000)
    assert (read.txn_last_update_timestamp, read.txn_start_timestamp) == (5, 4)


def test_a_batch_of_records_is_uncompressed_v2_without_a_producer() -> None:
    batch = build_records(
        [(key_bytes("a"), value_bytes(transit(TxnState.EMPTY))), (key_bytes("b"), None)], 42
    )
    ((pos, header),) = list(iter_batches(bytes(batch)))
    assert header.producer_id == -1 and not header.is_transactional and header.compression == 0
    _, records = decode_batch(bytes(batch), pos)
    assert [read_key(r.key) for r in records if r.key is not None] == ["a", "b"]
    assert records[1].value is None


TOPICS = st.text(alphabet="abc._-", min_size=1, max_size=5)
PARTITIONS = st.frozensets(st.builds(TopicPartition, TOPICS, st.integers(0, 100)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([s for s in TxnState if s is not TxnState.DEAD]),
    PARTITIONS,
    st.integers(0, 2**63 - 1),
    st.integers(0, 32767),
    st.integers(1, 2**31 - 1),
    st.integers(-1, 2**62),
    st.integers(0, 2**62),
    st.text(max_size=20),
)
def test_records_round_trip(
    state: TxnState,
    partitions: frozenset[TopicPartition],
    producer_id: int,
    epoch: int,
    timeout: int,
    start: int,
    update: int,
    transactional_id: str,
) -> None:
    if state is TxnState.EMPTY:
        partitions = frozenset()
    original = TxnTransit(producer_id, -1, epoch, -1, timeout, state, partitions, start, update)
    assert read_value(value_bytes(original)) == original
    assert read_key(key_bytes(transactional_id)) == transactional_id
