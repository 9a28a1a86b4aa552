"""Kafka's error responses where they differ by version or api (AbstractRequest.getErrorResponse)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codegen.model import MessageDef
from protocol.error_codes import ErrorCode
from protocol.error_responses import error_of, error_response, has_builder
from protocol.exceptions import ApiError
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
)
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.protocol.schema_strategies import cases, message_strategy

UNKNOWN = ErrorCode.UNKNOWN_SERVER_ERROR


def test_an_api_error_keeps_its_code_and_message_anything_else_is_unknown_without_one() -> None:
    assert error_of(ApiError(ErrorCode.INVALID_REQUEST, "why")) == (ErrorCode.INVALID_REQUEST, "why")
    assert error_of(KeyError("internal detail")) == (UNKNOWN, None)


def test_fetch_names_partitions_before_v13_only() -> None:
    topic_id = uuid.UUID(int=3)
    request = FetchRequest(session_id=9, topics=[FetchTopic("t", topic_id, [FetchPartition(partition=2)])])
    old = error_response(1, 12, request, UNKNOWN, None)
    assert old is not None and old.error_code == UNKNOWN and old.session_id == 9  # type: ignore[attr-defined]
    [topic] = old.responses  # type: ignore[attr-defined]
    [partition] = topic.partitions
    assert (topic.topic, topic.topic_id) == ("t", topic_id)
    assert (partition.partition_index, partition.error_code, partition.high_watermark) == (2, UNKNOWN, -1)
    new = error_response(1, 13, request, UNKNOWN, None)
    assert new is not None and new.error_code == UNKNOWN and new.responses == []  # type: ignore[attr-defined]


def test_offset_fetch_error_moves_from_partitions_to_the_top_to_the_groups() -> None:
    request = OffsetFetchRequest(
        group_id="g",
        topics=[OffsetFetchRequestTopic("t", [0, 1])],
        groups=[OffsetFetchRequestGroup(group_id="g8")],
    )
    v1 = error_response(9, 1, request, UNKNOWN, None)
    assert [(p.partition_index, p.committed_offset, p.error_code) for p in v1.topics[0].partitions] == [  # type: ignore[union-attr]
        (0, -1, UNKNOWN),
        (1, -1, UNKNOWN),
    ]
    v2 = error_response(9, 2, request, UNKNOWN, None)
    assert v2.error_code == UNKNOWN and v2.topics == []  # type: ignore[union-attr]
    v8 = error_response(9, 8, request, UNKNOWN, None)
    assert [(g.group_id, g.error_code, g.topics) for g in v8.groups] == [("g8", UNKNOWN, [])]  # type: ignore[union-attr]


def test_join_group_protocol_name_is_null_from_v7() -> None:
    v6 = error_response(11, 6, JoinGroupRequest(), UNKNOWN, None)
    v7 = error_response(11, 7, JoinGroupRequest(), UNKNOWN, None)
    assert v6.protocol_name == "" and v7.protocol_name is None  # type: ignore[union-attr]
    assert (v7.generation_id, v7.member_id, v7.leader) == (-1, "", "")  # type: ignore[union-attr]


def test_produce_acks_0_has_no_error_response_and_partitions_are_keyed_by_topic_partition() -> None:
    topics = [
        TopicProduceData("t", [PartitionProduceData(0)]),
        TopicProduceData("t", [PartitionProduceData(0)]),
    ]
    assert error_response(0, 9, ProduceRequest(acks=0, topic_data=topics), UNKNOWN, None) is None
    response = error_response(0, 9, ProduceRequest(acks=-1, topic_data=topics), UNKNOWN, None)
    [topic] = response.responses  # type: ignore[union-attr]
    [partition] = topic.partition_responses
    assert (partition.index, partition.error_code, partition.base_offset, partition.log_start_offset) == (
        0,
        UNKNOWN,
        -1,
        -1,
    )


def test_find_coordinator_batched_from_v4_with_kafkas_error_text() -> None:
    request = FindCoordinatorRequest(key="a", coordinator_keys=["a", "b"])
    v3 = error_response(10, 3, request, UNKNOWN, None)
    assert (v3.node_id, v3.host, v3.port, v3.error_code) == (-1, "", -1, UNKNOWN)  # type: ignore[union-attr]
    assert v3.error_message == "The server experienced an unexpected error when processing the request."  # type: ignore[union-attr]
    v4 = error_response(10, 4, request, UNKNOWN, None)
    assert [(c.key, c.node_id, c.error_code) for c in v4.coordinators] == [
        ("a", -1, UNKNOWN),
        ("b", -1, UNKNOWN),
    ]  # type: ignore[union-attr]


def test_api_versions_unsupported_version_lists_its_own_versions() -> None:
    response = error_response(18, 3, ApiVersionsRequest(), ErrorCode.UNSUPPORTED_VERSION, None)
    assert response.api_keys == [ApiVersion(18, 0, 4)]  # type: ignore[union-attr]
    assert error_response(18, 3, ApiVersionsRequest(), UNKNOWN, None).api_keys == []  # type: ignore[union-attr]


def test_delete_topics_by_name_before_v6_by_state_from_v6() -> None:
    topic_id = uuid.UUID(int=5)
    request = DeleteTopicsRequest(topic_names=["a"], topics=[DeleteTopicState(None, topic_id)])
    v5 = error_response(20, 5, request, UNKNOWN, None)
    v6 = error_response(20, 6, request, UNKNOWN, None)
    assert [(r.name, r.error_code) for r in v5.responses] == [("a", UNKNOWN)]  # type: ignore[union-attr]
    assert [(r.name, r.topic_id) for r in v6.responses] == [(None, topic_id)]  # type: ignore[union-attr]


REQUESTS = [
    (m, v) for m, v in cases() if m.kind == "request" and m.api_key is not None and has_builder(m.api_key)
]


@pytest.mark.parametrize(("message", "version"), REQUESTS, ids=[f"{m.name}-v{v}" for m, v in REQUESTS])
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_any_well_formed_request_has_an_error_response_that_encodes(
    message: MessageDef, version: int, data: Any
) -> None:
    """Whatever a well-formed request holds (null names, ids, empty or long lists), its error
    response encodes in the request's version, so a failure is always answered."""
    request = data.draw(message_strategy(message, version))
    code = data.draw(st.sampled_from([ErrorCode.UNKNOWN_SERVER_ERROR, ErrorCode.INVALID_REQUEST]))
    text = data.draw(st.sampled_from([None, "refused"]))
    assert message.api_key is not None
    response = error_response(message.api_key, version, request, code, text)
    if response is None:
        assert message.api_key == 0 and request.acks == 0
        return
    encoded = response.encode(version)
    assert type(response).decode(encoded, version).encode(version) == encoded


def test_reassignment_apis_answer_every_named_partition_and_the_top_level() -> None:
    from protocol.messages.alter_partition_reassignments_request import (
        AlterPartitionReassignmentsRequest,
        ReassignablePartition,
        ReassignableTopic,
    )
    from protocol.messages.list_partition_reassignments_request import (
        ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsTopics,
    )

    alter = AlterPartitionReassignmentsRequest(
        topics=[ReassignableTopic("a", [ReassignablePartition(0, [1]), ReassignablePartition(3, None)])]
    )
    answer: Any = error_response(45, 0, alter, UNKNOWN, "why")
    assert (answer.error_code, answer.error_message) == (UNKNOWN, "why")
    assert [
        (t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in answer.responses
    ] == [("a", [(0, UNKNOWN), (3, UNKNOWN)])]
    listed: Any = error_response(
        46,
        0,
        ListPartitionReassignmentsRequest(topics=[ListPartitionReassignmentsTopics("b", [2])]),
        UNKNOWN,
        None,
    )
    assert listed.error_code == UNKNOWN
    assert [(t.name, [(p.partition_index, p.replicas) for p in t.partitions]) for t in listed.topics] == [
        ("b", [(2, [])])
    ]
    assert error_response(46, 0, ListPartitionReassignmentsRequest(topics=None), UNKNOWN, None).topics == []  # type: ignore[union-attr]
