"""Kafka's LogValidator on a real broker process: what stock clients see when the broker reads the
records of their batches (storage/log.py ``_validate_records``, broker/handlers/produce.py).

- sarama 1.22 writes v2 batches whose header max timestamp is below their records' timestamps;
  Kafka rewrites the header from the records, so ListOffsets by timestamp finds them.
- librdkafka's test 0011 ``test_message_single_partition_record_fail``: one batch to a compacted
  topic, some records without a key. Kafka answers INVALID_RECORD with a record error per keyless
  record (KIP-467); librdkafka fails those messages with INVALID_RECORD and the others of the batch
  with _INVALID_DIFFERENT_RECORD.
"""

from __future__ import annotations

import socket
import struct
import time

import crc32c
import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.raw import frame, read_frame, request_header_v1
from compat_tests.harness import BrokerProcess

PRODUCE = 0
BASE_TS = 1_700_000_000_000


def sarama_122_batch(timestamps: list[int]) -> bytes:
    """A v2 batch (kafka-python's builder) whose header max timestamp is then lowered to the first
    record's, CRC recomputed: the shape sarama 1.22 sends."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for offset, ts in enumerate(timestamps):
        builder.append(offset, timestamp=ts, key=b"k%d" % offset, value=b"v", headers=[])
    batch = bytearray(builder.build())
    struct.pack_into(">q", batch, 35, timestamps[0])
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    return bytes(batch)


def produce_v3(broker: BrokerProcess, topic: str, records: bytes) -> tuple[int, int]:
    """One Produce v3 request (acks=-1) by hand: (error code, base offset) of partition 0."""
    name = topic.encode()
    body = (
        struct.pack(">hhi", -1, -1, 10_000)  # no transactional id, acks, timeout
        + struct.pack(">ih", 1, len(name)) + name
        + struct.pack(">iii", 1, 0, len(records)) + records
    )  # fmt: skip
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        sock.sendall(frame(request_header_v1(PRODUCE, 3, 11) + body))
        response = read_frame(sock)
    correlation_id, topics, name_len = struct.unpack_from(">iih", response, 0)
    assert (correlation_id, topics) == (11, 1)
    pos = 10 + name_len
    partitions, index, error_code, base_offset = struct.unpack_from(">iihq", response, pos)
    assert (partitions, index) == (1, 0)
    return error_code, base_offset


def test_list_offsets_by_timestamp_finds_records_above_a_low_header_max(broker: BrokerProcess) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = create_topic(broker.bootstrap, unique_topic("sarama-ts"), partitions=1)
    timestamps = [BASE_TS, BASE_TS + 10, BASE_TS + 20]
    assert produce_v3(broker, topic, sarama_122_batch(timestamps)) == (0, 0)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g")})
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 15)], timeout=15)
    finally:
        consumer.close()
    assert found[0].error is None
    assert found[0].offset == 2  # Kafka: the first record at or after BASE_TS + 15


def test_librdkafka_0011_record_fail_on_a_compacted_topic(broker: BrokerProcess) -> None:
    from confluent_kafka import KafkaError, Producer

    topic = create_topic(
        broker.bootstrap, unique_topic("record-fail"), partitions=1, configs={"cleanup.policy": "compact"}
    )
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "linger.ms": 5_000,  # all messages in one batch, sent by flush()
            "batch.num.messages": 100,
            "message.timeout.ms": 30_000,
        }
    )
    reports: dict[int, int] = {}

    def delivered(err: KafkaError | None, msg: object) -> None:
        index = int(msg.value())  # type: ignore[attr-defined]
        reports[index] = err.code() if err is not None else 0

    keyless = {1, 3, 6}
    for i in range(8):
        key = None if i in keyless else b"key-%d" % i
        producer.produce(topic, value=b"%d" % i, key=key, partition=0, on_delivery=delivered)
    deadline = time.monotonic() + 30
    while len(reports) < 8 and time.monotonic() < deadline:
        producer.flush(1)
    assert len(reports) == 8, reports
    for i in range(8):
        expected = KafkaError.INVALID_RECORD if i in keyless else KafkaError._INVALID_DIFFERENT_RECORD
        assert reports[i] == expected, (i, reports)


@pytest.mark.parametrize("case", ["control", "no-sequence", "short-count"])
def test_batches_kafka_refuses(broker: BrokerProcess, case: str) -> None:
    topic = create_topic(broker.bootstrap, unique_topic("refused"), partitions=1)
    batch = bytearray(sarama_122_batch([BASE_TS, BASE_TS + 1]))
    if case == "control":
        struct.pack_into(">h", batch, 21, 0x20)
    elif case == "no-sequence":
        struct.pack_into(">qhi", batch, 43, 42, 0, -1)  # a producer id without a base sequence
    else:
        struct.pack_into(">i", batch, 23, 2)  # last offset delta and count say 3 records ...
        struct.pack_into(">i", batch, 57, 3)  # ... where there are 2
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    assert produce_v3(broker, topic, bytes(batch))[0] == 87  # INVALID_RECORD
