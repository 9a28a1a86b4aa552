"""Produce answers for batches Kafka's LogValidator refuses (in-process broker)."""

from __future__ import annotations

import struct

import crc32c

from protocol.error_codes import ErrorCode
from protocol.messages.create_topics_request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch, control_record
from protocol.records.record import COMMIT
from tests.broker.conftest import Caller
from tests.broker.test_data_plane import create, produce

TS = 1_700_000_000_000


def create_with(call: Caller, topic: str, **configs: str) -> None:
    entries = [CreatableTopicConfig(k.replace("_", "."), v) for k, v in configs.items()]
    response = call(CreateTopicsRequest(topics=[CreatableTopic(topic, 1, 1, configs=entries)]), 7)
    assert response.topics[0].error_code == 0, response


def batch(keys: list[bytes | None], **fields: int | bool) -> bytes:
    records = [Record(i, i, k, b"v%d" % i) for i, k in enumerate(keys)]
    return build_batch(records, base_timestamp=TS, **fields)  # type: ignore[arg-type]


def refix_crc(data: bytearray) -> bytes:
    data[17:21] = crc32c.crc32c(data[21:]).to_bytes(4, "big")
    return bytes(data)


def test_compacted_topic_names_every_keyless_record(call: Caller) -> None:
    create_with(call, "compacted", cleanup_policy="compact")
    result = produce(call, "compacted", 0, batch([b"a", None, b"c", None]), version=9)
    assert result.error_code == ErrorCode.INVALID_RECORD
    assert [e.batch_index for e in result.record_errors] == [1, 3]
    assert all("without key" in (e.batch_index_error_message or "") for e in result.record_errors)
    old = produce(call, "compacted", 0, batch([None]), version=7)
    assert old.error_code == ErrorCode.INVALID_RECORD and old.record_errors == []
    assert produce(call, "compacted", 0, batch([b"a", b"b"])).error_code == 0


def test_client_batches_kafka_refuses(call: Caller) -> None:
    create(call, "t")
    control = build_batch([control_record(COMMIT, 0)], base_timestamp=TS, control=True)
    assert produce(call, "t", 0, control).error_code == ErrorCode.INVALID_RECORD
    no_sequence = batch([b"a"], producer_id=5, producer_epoch=0, base_sequence=-1)
    assert produce(call, "t", 0, no_sequence).error_code == ErrorCode.INVALID_RECORD
    moved = bytearray(batch([b"a"]))
    struct.pack_into(">q", moved, 0, 10)
    assert produce(call, "t", 0, bytes(moved)).error_code == ErrorCode.INVALID_RECORD
    two = bytearray(batch([b"a", b"b"]))
    struct.pack_into(">i", two, 57, 3)  # count 3 with last offset delta 1 ...
    struct.pack_into(">i", two, 23, 2)  # ... and 2: consistent, but only two records follow
    assert produce(call, "t", 0, refix_crc(two)).error_code == ErrorCode.INVALID_RECORD
    transactional = batch([b"a"], producer_id=5, producer_epoch=0, base_sequence=0, transactional=True)
    request = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[TopicProduceData("t", [PartitionProduceData(0, transactional)])],
    )
    answer = call(request, 9).responses[0].partition_responses[0]
    assert answer.error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert call.broker.replica_manager.get(("t", 0)).log.log_end_offset == 0


def test_record_timestamps_out_of_range_are_listed(call: Caller) -> None:
    create_with(call, "limited", message_timestamp_before_max_ms="3600000")
    now = call.broker.replica_manager.get(("limited", 0)).log.clock.milliseconds()
    records = [Record(0, 0, b"a", b"v"), Record(1, -7_200_000, b"b", b"v")]
    result = produce(call, "limited", 0, build_batch(records, base_timestamp=now))
    assert result.error_code == ErrorCode.INVALID_TIMESTAMP
    assert [e.batch_index for e in result.record_errors] == [1]


def test_list_offsets_finds_records_above_a_low_header_max_timestamp(call: Caller) -> None:
    # sarama 1.22: the header's max timestamp is the first record's, lower than the others'.
    create(call, "sarama")
    records = [Record(i, 10 * i, b"k", b"v") for i in range(3)]
    low = bytearray(build_batch(records, base_timestamp=TS, max_timestamp=TS))
    assert produce(call, "sarama", 0, bytes(low)).error_code == 0
    request = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic("sarama", [ListOffsetsPartition(partition_index=0, timestamp=TS + 15)])],
    )
    answer = call(request, 7).topics[0].partitions[0]
    assert (answer.error_code, answer.offset, answer.timestamp) == (0, 2, TS + 20)


def test_client_batch_rules_apply_before_a_topic_codec_rebuilds_the_batch(call: Caller) -> None:
    create_with(call, "gz", compression_type="gzip")
    moved = bytearray(batch([b"a"]))
    struct.pack_into(">q", moved, 0, 10)
    assert produce(call, "gz", 0, bytes(moved)).error_code == ErrorCode.INVALID_RECORD
    assert produce(call, "gz", 0, batch([b"a"])).error_code == 0


def test_v2_batches_go_one_per_partition_in_old_request_versions_too(call: Caller) -> None:
    create(call, "old")
    two = batch([b"a"]) + batch([b"b"])
    assert produce(call, "old", 0, two, version=2).error_code == ErrorCode.INVALID_RECORD
    assert call.broker.replica_manager.get(("old", 0)).log.log_end_offset == 0
