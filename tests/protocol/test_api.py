"""The request registry: api table, header versions, request decoding and response framing."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from protocol import api
from protocol.exceptions import (
    DecodeError,
    EncodeError,
    TrailingBytesError,
    TruncatedError,
    UnknownApiError,
    UnsupportedVersionError,
)
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.controlled_shutdown_request import ControlledShutdownRequest
from protocol.messages.fetch_response import FetchableTopicResponse, FetchResponse, PartitionData
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.metadata_response import MetadataResponse, MetadataResponseBroker
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "kafka-protocol" / "message"


def _load(path: Path) -> dict[str, Any]:
    text = re.sub(r"^\s*//.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
    data: dict[str, Any] = json.loads(text)
    return data


def _range(text: str) -> tuple[int, int]:
    if "-" in text:
        lo, hi = text.split("-")
        return int(lo), int(hi)
    return int(text), int(text)


def _flexible_min(text: str) -> int | None:
    return None if text == "none" else int(text.rstrip("+"))


#: Every request schema of Kafka 3.9, read straight from the JSON (not through the generator).
REQUESTS = {
    (d := _load(p))["apiKey"]: d for p in sorted(SCHEMAS.glob("*Request.json")) if "apiKey" in _load(p)
}


# ---------------------------------------------------------------------------------------------
# the api table


@pytest.mark.parametrize(
    ("key", "name", "lo", "hi", "flexible_min"),
    [
        (0, "Produce", 0, 11, 9),
        (1, "Fetch", 0, 17, 12),
        (2, "ListOffsets", 0, 9, 6),
        (3, "Metadata", 0, 12, 9),
        (7, "ControlledShutdown", 0, 3, 3),
        (8, "OffsetCommit", 0, 9, 8),
        (9, "OffsetFetch", 0, 9, 6),
        (10, "FindCoordinator", 0, 6, 3),
        (11, "JoinGroup", 0, 9, 6),
        (17, "SaslHandshake", 0, 1, None),
        (18, "ApiVersions", 0, 4, 3),
        (19, "CreateTopics", 0, 7, 5),
        (22, "InitProducerId", 0, 5, 2),
        (32, "DescribeConfigs", 0, 4, 4),
        (36, "SaslAuthenticate", 0, 2, 2),
        (60, "DescribeCluster", 0, 1, 0),
        (68, "ConsumerGroupHeartbeat", 0, 0, 0),
    ],
)
def test_well_known_apis(key: int, name: str, lo: int, hi: int, flexible_min: int | None) -> None:
    spec = api.api(key)
    assert (spec.api_key, spec.name, spec.min_version, spec.max_version, spec.flexible_min) == (
        key, name, lo, hi, flexible_min,
    )


def test_table_matches_every_request_schema() -> None:
    assert len(REQUESTS) >= 80
    assert sorted(s.api_key for s in api.all_apis()) == sorted(REQUESTS)
    for key, schema in REQUESTS.items():
        spec = api.api(key)
        assert spec.name == schema["name"].removesuffix("Request")
        assert (spec.min_version, spec.max_version) == _range(schema["validVersions"]), spec.name
        assert spec.flexible_min == _flexible_min(schema["flexibleVersions"]), spec.name
        assert spec.listeners == tuple(schema.get("listeners", [])), spec.name
        assert spec.latest_unstable == schema.get("latestVersionUnstable", False), spec.name
        request_name, response_name = schema["name"], schema["name"].replace("Request", "Response")
        assert (request_name, response_name) == (spec.request_type().NAME, spec.response_type().NAME)
        assert spec.request_type().API_KEY == key == spec.response_type().API_KEY


def test_unknown_api() -> None:
    for key in (-1, 1000, 32767):
        with pytest.raises(UnknownApiError) as info:
            api.api(key)
        assert info.value.api_key == key


# ---------------------------------------------------------------------------------------------
# header versions (Kafka's ApiMessageType.requestHeaderVersion / responseHeaderVersion)


def test_request_header_versions() -> None:
    for key, schema in REQUESTS.items():
        lo, hi = _range(schema["validVersions"])
        flexible = _flexible_min(schema["flexibleVersions"])
        for version in range(lo, hi + 1):
            expected = 2 if flexible is not None and version >= flexible else 1
            if key == 7 and version == 0:
                expected = 0
            assert api.request_header_version(key, version) == expected, (schema["name"], version)


def test_response_header_versions() -> None:
    for key, schema in REQUESTS.items():
        lo, hi = _range(schema["validVersions"])
        flexible = _flexible_min(schema["flexibleVersions"])
        for version in range(lo, hi + 1):
            expected = 1 if flexible is not None and version >= flexible else 0
            if key == 18:
                expected = 0
            assert api.response_header_version(key, version) == expected, (schema["name"], version)


def test_header_versions_of_unknown_higher_versions_follow_the_flexible_range() -> None:
    # As in Kafka: "3+" covers every later version, so ApiVersions v5 comes with header v2.
    assert api.request_header_version(18, 5) == 2
    assert api.request_header_version(18, 100) == 2
    assert api.request_header_version(17, 2) == 1  # SaslHandshake is never flexible
    assert api.response_header_version(18, 5) == 0


# ---------------------------------------------------------------------------------------------
# decode_request


def test_decode_a_hand_built_api_versions_request() -> None:
    """Bytes laid out by hand after Kafka's docs, not by our encoder: ApiVersions v3 as the Java
    client sends it (header v2 with a legacy int16 client id, then compact strings)."""
    body = (
        struct.pack(">hhi", 18, 3, 0x01020304)
        + struct.pack(">h", 13) + b"adminclient-1"
        + b"\x00"  # header tagged fields
        + bytes([len("apache-kafka-java") + 1]) + b"apache-kafka-java"
        + bytes([len("3.9.0") + 1]) + b"3.9.0"
        + b"\x00"  # body tagged fields
    )
    request = api.decode_request(body)
    assert request.api.name == "ApiVersions"
    assert request.version == 3
    assert request.header.correlation_id == 0x01020304
    assert request.header.client_id == "adminclient-1"
    assert request.body == ApiVersionsRequest("apache-kafka-java", "3.9.0")


def test_decode_a_hand_built_metadata_v0_request() -> None:
    body = (
        struct.pack(">hhi", 3, 0, 7) + struct.pack(">h", -1)  # header v1, null client id
        + struct.pack(">i", 2) + struct.pack(">h", 1) + b"a" + struct.pack(">h", 2) + b"bc"
    )
    request = api.decode_request(bytearray(body))
    assert request.header.client_id is None
    assert [t.name for t in request.body.topics] == ["a", "bc"]


def produce(records: bytes | None, transactional_id: str | None = None) -> ProduceRequest:
    topics = [TopicProduceData("t", [PartitionProduceData(0, records)])]
    return ProduceRequest(transactional_id, -1, 1000, topics)


def frame_of(body: Any, version: int, correlation_id: int = 42, client_id: str | None = "tester") -> bytes:
    data = api.encode_request(body, version, correlation_id, client_id)
    (size,) = struct.unpack_from(">i", data)
    assert size == len(data) - 4
    return data[4:]


@pytest.mark.parametrize(
    ("body", "version"),
    [
        (produce(b"batch" * 10), 9),
        (produce(None, "txn"), 3),
        (MetadataRequest([MetadataRequestTopic(name="x")], allow_auto_topic_creation=False), 4),
        (MetadataRequest(None), 12),
        (ApiVersionsRequest("c", "1"), 4),
        (ApiVersionsRequest(), 0),
        (ControlledShutdownRequest(broker_id=3), 0),
        (ControlledShutdownRequest(broker_id=3, broker_epoch=9), 3),
    ],
)
def test_decode_request_of_encoded_frames(body: Any, version: int) -> None:
    request = api.decode_request(frame_of(body, version))
    assert request.api.api_key == body.API_KEY
    assert request.version == version
    assert request.header.request_api_key == body.API_KEY
    assert request.header.correlation_id == 42
    # ControlledShutdown v0 uses header v0, which has no client id (it decodes as the default "")
    assert request.header.client_id == ("" if (body.API_KEY, version) == (7, 0) else "tester")
    assert request.body == body


def test_controlled_shutdown_v0_header_has_no_client_id_on_the_wire() -> None:
    data = frame_of(ControlledShutdownRequest(broker_id=5), 0, correlation_id=1)
    assert data == struct.pack(">hhii", 7, 0, 1, 5)


def test_every_api_and_version_through_the_registry() -> None:
    """A default body of every api and version goes through encode_request/decode_request,
    so every header version and route is exercised at least once."""
    for spec in api.all_apis():
        for version in range(spec.min_version, spec.max_version + 1):
            body = spec.request_type()()
            request = api.decode_request(frame_of(body, version, correlation_id=version))
            assert request.body == body, (spec.name, version)
            assert request.header.correlation_id == version


def test_records_are_views_into_the_frame() -> None:
    frame = bytearray(frame_of(produce(b"abc"), 9))
    request = api.decode_request(frame)
    records = request.body.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and bytes(records) == b"abc"
    frame[frame.index(b"abc")] = ord("x")
    assert bytes(records) == b"xbc"  # zero-copy: the broker may patch batches in place


@pytest.mark.parametrize("key", [-1, 99, 1000, 32767])
def test_unknown_api_key(key: int) -> None:
    with pytest.raises(UnknownApiError) as info:
        api.decode_request(struct.pack(">hhi", key, 0, 1) + b"\x00\x00")
    assert info.value.api_key == key


@pytest.mark.parametrize(("key", "version"), [(0, 12), (0, -1), (3, 13), (1, 18), (17, 2), (7, 4)])
def test_unsupported_version(key: int, version: int) -> None:
    header = struct.pack(">hhi", key, version, 77) + struct.pack(">h", 3) + b"cli"
    if api.request_header_version(key, version) == 2:
        header += b"\x00"
    with pytest.raises(UnsupportedVersionError) as info:
        api.decode_request(header + b"\xff" * 8)  # the body is never looked at
    assert info.value.version == version
    assert info.value.name == api.api(key).name
    assert info.value.header.correlation_id == 77
    assert info.value.header.client_id == "cli"


def test_api_versions_of_an_unknown_version_still_yields_its_header() -> None:
    """A newer client sends ApiVersions v5 with header v2 (v5 >= 3 is flexible) and a body we
    cannot know; Kafka answers v0 with UNSUPPORTED_VERSION, so the header must decode."""
    frame = (
        struct.pack(">hhi", 18, 5, 123456) + struct.pack(">h", 8) + b"future-1"
        + b"\x01\x05\x02ab"  # header tagged fields: one unknown tag (5) of 2 bytes
        + b"\x0bsome-client\x02x\x07\x00\x01\x02"  # whatever v5 holds
    )
    with pytest.raises(UnsupportedVersionError) as info:
        api.decode_request(frame)
    header = info.value.header
    assert (header.request_api_key, header.request_api_version, header.correlation_id) == (18, 5, 123456)
    assert header.client_id == "future-1"


def test_unsupported_version_with_a_broken_header_is_still_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        api.decode_request(struct.pack(">hhi", 18, 5, 1) + struct.pack(">h", 50) + b"short")


def test_trailing_bytes() -> None:
    frame = frame_of(MetadataRequest(None), 12)
    with pytest.raises(TrailingBytesError):
        api.decode_request(frame + b"\x00")


@pytest.mark.parametrize("length", range(8))
def test_shorter_than_a_header(length: int) -> None:
    frame = frame_of(MetadataRequest(None), 1)
    with pytest.raises(TruncatedError):
        api.decode_request(frame[:length])


def test_truncated_body() -> None:
    frame = frame_of(produce(b"x" * 50), 9)
    for cut in range(8, len(frame)):
        with pytest.raises(DecodeError):
            api.decode_request(frame[:cut])


def test_peek() -> None:
    first = api.peek(frame_of(MetadataRequest(None), 12, correlation_id=-5))
    assert (first.api_key, first.api_version, first.correlation_id) == (3, 12, -5)
    with pytest.raises(TruncatedError):
        api.peek(b"\x00\x03\x00")


# ---------------------------------------------------------------------------------------------
# responses


class Region:
    """Stands for a file slice the network layer would sendfile: a length and nothing else."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def fetch_response(records: Any) -> FetchResponse:
    partitions = [PartitionData(partition_index=0, high_watermark=10, records=records)]
    return FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=partitions)])


@pytest.mark.parametrize("version", [4, 12, 16])
def test_record_region_stays_a_separate_piece(version: int) -> None:
    region = Region(3000)
    parts = api.encode_response_parts(1, version, 9, fetch_response(region))
    assert sum(1 for p in parts if p is region) == 1
    (size,) = struct.unpack(">i", parts[0])
    assert size == sum(len(p) for p in parts[1:])
    # the same response with the region's bytes in place is byte-identical, piece for piece
    content = b"r" * 3000
    whole = api.encode_response(1, version, 9, fetch_response(content))
    assert b"".join(content if p is region else bytes(p) for p in parts) == whole
    assert all(isinstance(p, bytes) for p in parts if p is not region)
    correlation_id, body = api.decode_response(whole[4:], 1, version)
    assert correlation_id == 9
    assert bytes(body.responses[0].partitions[0].records) == content
    with pytest.raises(EncodeError):
        api.encode_response(1, version, 9, fetch_response(region))


def test_two_regions_and_memoryviews() -> None:
    a, b = Region(10), Region(20)
    response = FetchResponse(
        responses=[
            FetchableTopicResponse(
                topic="t",
                partitions=[
                    PartitionData(partition_index=0, records=a),
                    PartitionData(partition_index=1, records=memoryview(b"0123456789")),
                    PartitionData(partition_index=2, records=b),
                ],
            )
        ]
    )
    parts = api.encode_response_parts(1, 13, 1, response)
    assert [p for p in parts if isinstance(p, Region)] == [a, b]
    (size,) = struct.unpack(">i", parts[0])
    assert size == sum(len(p) for p in parts[1:])


def test_response_without_regions_is_prefix_and_payload() -> None:
    body = MetadataResponse(brokers=[MetadataResponseBroker(1, "h", 9092)], cluster_id="c")
    parts = api.encode_response_parts(3, 12, 5, body)
    assert len(parts) == 2
    assert struct.unpack(">i", parts[0])[0] == len(parts[1])
    # response header v1 (flexible): correlation id then an empty tagged-field section
    assert parts[1][:5] == struct.pack(">i", 5) + b"\x00"
    assert api.decode_response(parts[1], 3, 12) == (5, body)


def test_api_versions_response_header_is_v0_even_when_flexible() -> None:
    from protocol.messages.api_versions_response import ApiVersionsResponse

    data = api.encode_response(18, 3, 5, ApiVersionsResponse(error_code=35))
    # size, correlation id, then the body straight away (no tagged-field byte): error code 35
    assert data[4:8] == struct.pack(">i", 5)
    assert data[8:10] == struct.pack(">h", 35)
