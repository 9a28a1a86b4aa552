"""Handlers of the data plane driven in-process: produce, fetch, list offsets, metadata, versions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from broker.handlers import CLUSTER_MODE_APIS, HANDLERS, handlers_for
from protocol.api import all_apis, api
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch, decode_batch
from storage import FileSlice
from tests.broker.conftest import Caller, make_broker


def batch(
    values: list[bytes], *, pid: int = -1, epoch: int = -1, seq: int = -1, ts: int = 1_700_000_000_000
) -> bytes:
    records = [Record(i, i, b"k%d" % i, v, []) for i, v in enumerate(values)]
    return build_batch(records, base_timestamp=ts, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def produce(call: Caller, topic: str, partition: int, data: bytes, version: int = 9, acks: int = -1):
    request = ProduceRequest(
        acks=acks,
        timeout_ms=1000,
        topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, data)])],
    )
    return call(request, version).responses[0].partition_responses[0]


def create(call: Caller, topic: str, partitions: int = 1) -> None:
    from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

    response = call(CreateTopicsRequest(topics=[CreatableTopic(topic, partitions, 1)]), 7)
    assert response.topics[0].error_code == 0, response


def fetch_request(
    topic: str, partition: int, offset: int, max_wait_ms: int = 0, max_bytes: int = 1 << 20
) -> FetchRequest:
    """One partition's fetch (``max_bytes`` for the partition, 1 MiB for the response)."""
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=topic,
                partitions=[
                    FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=max_bytes)
                ],
            )
        ],
    )


def fetch_records(call: Caller, topic: str, partition: int, offset: int, version: int = 12) -> list[bytes]:
    request = fetch_request(topic, partition, offset)
    data = call(request, version).responses[0].partitions[0]
    assert data.error_code == 0, data
    raw = data.records.read() if isinstance(data.records, FileSlice) else bytes(data.records)
    if isinstance(data.records, FileSlice):
        data.records.close()
    values: list[bytes] = []
    pos = 0
    while pos < len(raw):
        header, records = decode_batch(raw, pos)
        values.extend(r.value or b"" for r in records)
        pos += header.size
    return values


def test_api_versions_advertises_exactly_what_is_served(call: Caller) -> None:
    response = call(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
    assert response.error_code == 0
    advertised = {(k.api_key, k.min_version, k.max_version) for k in response.api_keys}
    served = handlers_for(cluster_mode=False)
    assert advertised == {(h.api_key, h.min_version, h.max_version) for h in served.values()}
    # The controller-to-broker apis are for cluster mode only (test_metadata_cache.py).
    assert not CLUSTER_MODE_APIS & {k.api_key for k in response.api_keys}
    for handler in HANDLERS.values():
        spec = api(handler.api_key)
        assert spec.min_version <= handler.min_version <= handler.max_version <= spec.max_stable_version
    assert {0, 1, 2, 3, 18} <= {k.api_key for k in response.api_keys}
    assert (
        next(k for k in response.api_keys if k.api_key == 0).min_version == 0
    )  # librdkafka needs Produce v0


def test_api_versions_rejects_bad_software_names(call: Caller) -> None:
    response = call(ApiVersionsRequest(client_software_name="bad name!", client_software_version="1"), 3)
    assert response.error_code == ErrorCode.INVALID_REQUEST


def test_metadata_auto_creates_only_when_allowed(call: Caller, tmp_path: Path) -> None:
    response = call(
        MetadataRequest(topics=[MetadataRequestTopic(name="auto")], allow_auto_topic_creation=True), 12
    )
    topic = response.topics[0]
    assert topic.error_code == 0 and len(topic.partitions) == 1 and topic.topic_id.int != 0
    response = call(
        MetadataRequest(topics=[MetadataRequestTopic(name="nope")], allow_auto_topic_creation=False), 12
    )
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    response = call(
        MetadataRequest(topics=[MetadataRequestTopic(name="bad/name")], allow_auto_topic_creation=True), 12
    )
    assert response.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    everything = call(MetadataRequest(topics=None), 12)
    assert [t.name for t in everything.topics] == ["auto"]
    assert everything.controller_id == everything.brokers[0].node_id
    assert everything.cluster_id


def test_metadata_respects_auto_create_disabled(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d", **{"auto.create.topics.enable": "false"})
    try:
        response = Caller(broker)(MetadataRequest(topics=[MetadataRequestTopic(name="x")]), 12)
        assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    finally:
        broker.log_manager.close()


def test_every_metadata_version_encodes(call: Caller) -> None:
    create(call, "m", 3)
    for version in range(0, 13):
        request = MetadataRequest(topics=[MetadataRequestTopic(name="m")])
        response = call(request, version)
        assert response.topics[0].name == "m"
        response.encode(version)


def test_produce_then_fetch_round_trips_bytes(call: Caller) -> None:
    create(call, "t", 2)
    result = produce(call, "t", 1, batch([b"a", b"b", b"c"]))
    assert result.error_code == 0 and result.base_offset == 0
    result = produce(call, "t", 1, batch([b"d"]))
    assert result.base_offset == 3
    assert fetch_records(call, "t", 1, 0) == [b"a", b"b", b"c", b"d"]
    assert fetch_records(call, "t", 1, 3) == [b"d"]


def test_produce_errors(call: Caller) -> None:
    create(call, "t")
    assert produce(call, "missing", 0, batch([b"x"])).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert produce(call, "t", 5, batch([b"x"])).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert produce(call, "t", 0, batch([b"x"]), acks=2).error_code == ErrorCode.INVALID_REQUIRED_ACKS
    corrupt = bytearray(batch([b"x"]))
    corrupt[-1] ^= 0xFF
    assert produce(call, "t", 0, bytes(corrupt)).error_code == ErrorCode.CORRUPT_MESSAGE
    big = batch([b"x" * 2_000_000])
    result = produce(call, "t", 0, big)
    assert result.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert result.error_message  # v8+ carries a message
    two = batch([b"a"]) + batch([b"b"])
    assert produce(call, "t", 0, two).error_code == ErrorCode.INVALID_RECORD


def test_idempotent_retries_are_appended_once(call: Caller) -> None:
    create(call, "idem")
    pid = call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4).producer_id
    assert pid >= 0
    first = produce(call, "idem", 0, batch([b"a", b"b"], pid=pid, epoch=0, seq=0))
    again = produce(call, "idem", 0, batch([b"a", b"b"], pid=pid, epoch=0, seq=0))
    assert first.error_code == again.error_code == 0
    assert again.base_offset == first.base_offset == 0
    nxt = produce(call, "idem", 0, batch([b"c"], pid=pid, epoch=0, seq=2))
    assert nxt.base_offset == 2
    gap = produce(call, "idem", 0, batch([b"e"], pid=pid, epoch=0, seq=5))
    assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    bumped = produce(call, "idem", 0, batch([b"f"], pid=pid, epoch=1, seq=0))
    assert bumped.error_code == 0
    stale = produce(call, "idem", 0, batch([b"g"], pid=pid, epoch=0, seq=3))
    assert stale.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert fetch_records(call, "idem", 0, 0) == [b"a", b"b", b"c", b"f"]


def test_producer_state_and_ids_survive_a_restart(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d")
    call = Caller(broker)
    create(call, "p")
    pid = call(InitProducerIdRequest(transactional_id=None), 1).producer_id
    # A recent timestamp: producers idle past producer.id.expiration.ms (by their batches'
    # timestamps) are not restored, as in Kafka.
    now = int(time.time() * 1000)
    produce(call, "p", 0, batch([b"a"], pid=pid, epoch=0, seq=0, ts=now))
    broker.log_manager.close()

    broker = make_broker(tmp_path / "d")
    call = Caller(broker)
    try:
        retry = produce(call, "p", 0, batch([b"a"], pid=pid, epoch=0, seq=0, ts=now))
        assert retry.error_code == 0 and retry.base_offset == 0
        assert fetch_records(call, "p", 0, 0) == [b"a"]
        assert call(InitProducerIdRequest(transactional_id=None), 1).producer_id > pid
    finally:
        broker.log_manager.close()


def test_legacy_produce_is_upconverted_and_old_fetch_downconverted(call: Caller) -> None:
    from protocol.records import build_message_set, iter_legacy_messages

    create(call, "legacy")
    message_set = build_message_set([(0, 1_700_000_000_000, b"k", b"old")], magic=1)
    result = produce(call, "legacy", 0, message_set, version=2, acks=1)
    assert result.error_code == 0
    assert fetch_records(call, "legacy", 0, 0) == [b"old"]
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        topics=[
            FetchTopic(
                topic="legacy",
                partitions=[FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)],
            )
        ],
    )
    data = call(request, 0).responses[0].partitions[0]
    messages = list(iter_legacy_messages(bytes(data.records)))
    assert [(m.magic, m.value) for m in messages] == [(0, b"old")]


def test_fetch_long_poll_is_woken_by_an_append(call: Caller) -> None:
    create(call, "lp")

    async def scenario() -> list[bytes]:
        request = fetch_request("lp", 0, 0, max_wait_ms=60_000)
        pending = call.start(request, 12)
        task = asyncio.ensure_future(pending)
        await asyncio.sleep(0.05)
        assert not task.done(), "the fetch should wait for data"
        produce(call, "lp", 0, batch([b"wake"]))
        # Woken by the append, not by the 60 s max wait.
        response = await asyncio.wait_for(task, 10)
        data = response.responses[0].partitions[0]
        assert isinstance(data.records, bytes)  # a small read is copied (COPY_BELOW)
        return [r.value for r in decode_batch(data.records)[1]]

    assert asyncio.run(scenario()) == [b"wake"]


def test_fetch_copies_short_reads_and_slices_long_ones(call: Caller) -> None:
    from broker.handlers.fetch import COPY_BELOW

    create(call, "sizes")
    assert produce(call, "sizes", 0, batch([b"small"])).error_code == 0
    assert produce(call, "sizes", 0, batch([b"L" * COPY_BELOW])).error_code == 0

    def records_at(offset: int, max_bytes: int) -> object:
        return (
            call(fetch_request("sizes", 0, offset, max_bytes=max_bytes), 12)
            .responses[0]
            .partitions[0]
            .records
        )

    small = records_at(0, 100)  # the first batch alone (min one message)
    assert isinstance(small, bytes) and [r.value for r in decode_batch(small)[1]] == [b"small"]
    large = records_at(1, 1 << 20)
    assert isinstance(large, FileSlice), "a read of COPY_BELOW bytes or more is sent with sendfile"
    try:
        assert [r.value for r in decode_batch(large.read())[1]] == [b"L" * COPY_BELOW]
    finally:
        large.close()


def test_fetch_errors(call: Caller) -> None:
    create(call, "fe")
    produce(call, "fe", 0, batch([b"a"]))
    request = FetchRequest(
        max_wait_ms=0,
        topics=[
            FetchTopic(
                topic="fe", partitions=[FetchPartition(partition=0, fetch_offset=99, partition_max_bytes=100)]
            )
        ],
    )
    assert call(request, 12).responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    request = FetchRequest(max_wait_ms=0, session_id=77, session_epoch=3, topics=[])
    assert call(request, 12).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    request = FetchRequest(max_wait_ms=0, session_id=0, session_epoch=0, topics=[])
    response = call(request, 12)
    assert response.error_code == 0 and response.session_id == 0  # sessions declined


def test_list_offsets(call: Caller) -> None:
    create(call, "lo")
    produce(call, "lo", 0, batch([b"a", b"b"], ts=1000))
    produce(call, "lo", 0, batch([b"c"], ts=5000))

    def lookup(ts: int, version: int = 7) -> tuple[int, int]:
        request = ListOffsetsRequest(
            replica_id=-1,
            topics=[ListOffsetsTopic("lo", [ListOffsetsPartition(partition_index=0, timestamp=ts)])],
        )
        p = call(request, version).topics[0].partitions[0]
        assert p.error_code == 0
        return p.offset, p.timestamp

    assert lookup(-2)[0] == 0
    assert lookup(-1)[0] == 3
    assert lookup(4000) == (2, 5000)
    assert lookup(1001) == (1, 1001)  # record timestamps are base + delta
    assert lookup(9999)[0] == -1
    assert lookup(-3) == (2, 5000)
    v0 = call(
        ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsTopic(
                    "lo", [ListOffsetsPartition(partition_index=0, timestamp=-1, max_num_offsets=1)]
                )
            ],
        ),
        0,
    )
    assert v0.topics[0].partitions[0].old_style_offsets == [3]


def test_every_served_api_is_known_to_the_protocol() -> None:
    known = {spec.api_key for spec in all_apis()}
    assert set(HANDLERS) <= known


def test_cluster_id_topic_ids_and_configs_persist(tmp_path: Path) -> None:
    from protocol.messages.create_topics_request import (
        CreatableTopic,
        CreatableTopicConfig,
        CreateTopicsRequest,
    )

    broker = make_broker(tmp_path / "d")
    call = Caller(broker)
    call(
        CreateTopicsRequest(
            topics=[CreatableTopic("keep", 2, 1, configs=[CreatableTopicConfig("retention.ms", "12345")])]
        ),
        7,
    )
    before = call(MetadataRequest(topics=None), 12)
    broker.log_manager.close()
    broker = make_broker(tmp_path / "d")
    try:
        after = Caller(broker)(MetadataRequest(topics=None), 12)
        assert after.cluster_id == before.cluster_id
        assert after.topics[0].topic_id == before.topics[0].topic_id
        assert broker.metadata.topic("keep").configs == {"retention.ms": "12345"}
        assert broker.replica_manager.get(("keep", 1)).log.config.retention_ms == 12345
    finally:
        broker.log_manager.close()


def test_topic_compression_type_recompresses_batches(call: Caller) -> None:
    from protocol.messages.create_topics_request import (
        CreatableTopic,
        CreatableTopicConfig,
        CreateTopicsRequest,
    )
    from protocol.records import read_header
    from protocol.records.compression import GZIP, ZSTD

    for name, codec in (("gz", "gzip"), ("zs", "zstd")):
        request = CreateTopicsRequest(
            topics=[CreatableTopic(name, 1, 1, configs=[CreatableTopicConfig("compression.type", codec)])]
        )
        assert call(request, 7).topics[0].error_code == 0
    result = produce(call, "gz", 0, batch([b"a", b"b"], pid=7, epoch=0, seq=0))
    assert result.error_code == 0
    assert fetch_records(call, "gz", 0, 0) == [b"a", b"b"]
    stored = call.broker.replica_manager.get(("gz", 0)).log.read_bytes(0, 1 << 20)
    header = read_header(stored)
    assert header.compression == GZIP
    assert (header.producer_id, header.base_sequence, header.last_offset_delta) == (7, 0, 1)
    retry = produce(call, "gz", 0, batch([b"a", b"b"], pid=7, epoch=0, seq=0))
    assert retry.error_code == 0 and retry.base_offset == 0  # still a duplicate after recompression
    assert (
        produce(call, "zs", 0, batch([b"z"]), version=6).error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    )
    assert produce(call, "zs", 0, batch([b"z"]), version=9).error_code == 0
    assert (
        read_header(call.broker.replica_manager.get(("zs", 0)).log.read_bytes(0, 1 << 20)).compression == ZSTD
    )


def test_fetch_answers_partitions_of_a_topic_under_one_topic_entry(call: Caller) -> None:
    create(call, "g", 3)
    create(call, "h", 1)
    for version in (4, 12, 13):
        topics = call(MetadataRequest(topics=None), 12).topics
        ids = {t.name: t.topic_id for t in topics}
        request = FetchRequest(
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            topics=[
                FetchTopic(
                    topic=name,
                    topic_id=ids[name],
                    partitions=[
                        FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20)
                        for p in range(count)
                    ],
                )
                for name, count in (("g", 3), ("h", 1))
            ],
        )
        responses = call(request, version).responses
        assert [[p.partition_index for p in t.partitions] for t in responses] == [[0, 1, 2], [0]], version


def test_broker_fetch_max_bytes_caps_a_fetch_response(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d", **{"fetch.max.bytes": "1024"})
    try:
        call = Caller(broker)
        create(call, "capped")
        first, second = batch([b"x" * 700]), batch([b"y" * 700])
        produce(call, "capped", 0, first)
        produce(call, "capped", 0, second)
        # The client allows 1 MiB; the broker's 1 KiB cap leaves room for the first batch only.
        assert fetch_records(call, "capped", 0, 0) == [b"x" * 700]
        assert fetch_records(call, "capped", 0, 1) == [b"y" * 700]
    finally:
        broker.log_manager.close()
