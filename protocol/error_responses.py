"""The answer to a request that failed as a whole: Kafka's ``AbstractRequest.getErrorResponse``.

When a handler raises, or its response cannot be encoded, Kafka still answers: each request type
builds an error response from the request itself. Where the response has a top-level error code,
that carries the error; otherwise every topic, partition, group or resource the request names
comes back with the error code, and the other fields of those entries take the "unknown" values
Kafka uses (offsets -1, empty names, no records). Each builder below follows its Kafka
counterpart, version by version; an api without one gets the generic answer: the response's
defaults with its top-level ``error_code`` set (every api Brook serves has a builder).

A builder returns None only for a produce with acks=0, whose failure Kafka answers by closing
the connection (the client expects no response).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.exceptions import ApiError
from protocol.message import Message
from protocol.messages import add_partitions_to_txn_response as add_partitions_to_txn
from protocol.messages import alter_client_quotas_response as alter_client_quotas
from protocol.messages import alter_partition_reassignments_response as alter_reassignments
from protocol.messages import alter_replica_log_dirs_response as alter_dirs
from protocol.messages import alter_user_scram_credentials_response as alter_scram
from protocol.messages import api_versions_response as api_versions
from protocol.messages import create_acls_response as create_acls
from protocol.messages import create_partitions_response as create_partitions
from protocol.messages import create_topics_response as create_topics
from protocol.messages import delete_acls_response as delete_acls
from protocol.messages import delete_groups_response as delete_groups
from protocol.messages import delete_records_response as delete_records
from protocol.messages import delete_topics_response as delete_topics
from protocol.messages import describe_acls_response as describe_acls
from protocol.messages import describe_configs_response as describe_configs
from protocol.messages import describe_groups_response as describe_groups
from protocol.messages import describe_producers_response as describe_producers
from protocol.messages import describe_transactions_response as describe_transactions
from protocol.messages import describe_user_scram_credentials_response as describe_scram
from protocol.messages import elect_leaders_response as elect_leaders
from protocol.messages import fetch_response as fetch
from protocol.messages import find_coordinator_response as find_coordinator
from protocol.messages import incremental_alter_configs_response as incremental_alter_configs
from protocol.messages import leader_and_isr_response as leader_and_isr
from protocol.messages import list_offsets_response as list_offsets
from protocol.messages import list_partition_reassignments_response as list_reassignments
from protocol.messages import metadata_response as metadata
from protocol.messages import offset_commit_response as offset_commit
from protocol.messages import offset_fetch_response as offset_fetch
from protocol.messages import offset_for_leader_epoch_response as offset_for_leader_epoch
from protocol.messages import produce_response as produce
from protocol.messages import sasl_authenticate_response as sasl_authenticate
from protocol.messages import stop_replica_response as stop_replica
from protocol.messages import txn_offset_commit_response as txn_offset_commit
from protocol.messages import write_txn_markers_response as write_txn_markers
from protocol.messages.alter_configs_response import AlterConfigsResourceResponse, AlterConfigsResponse
from protocol.messages.describe_client_quotas_response import DescribeClientQuotasResponse
from protocol.messages.describe_cluster_response import DescribeClusterResponse
from protocol.messages.init_producer_id_response import InitProducerIdResponse
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.sync_group_response import SyncGroupResponse

#: (request body, version, error code, error message) -> response body, or None for no response.
Builder = Callable[[Any, int, int, "str | None"], "Message | None"]

#: Kafka's ``Errors.message()`` for the errors a broker answers whole requests with; the
#: responses that carry it (DescribeConfigs, FindCoordinator) send null for the others.
_DEFAULT_MESSAGES: dict[int, str] = {
    ErrorCode.UNKNOWN_SERVER_ERROR: "The server experienced an unexpected error when processing the request.",
    ErrorCode.INVALID_REQUEST: (
        "This most likely occurs because of a request being malformed by the client library or the "
        "message was sent to an incompatible broker. See the broker logs for more details."
    ),
}


def error_of(exc: BaseException) -> tuple[int, str | None]:
    """The error code and message a failure is answered with (Kafka's ``ApiError.fromThrowable``):
    an :class:`ApiError` carries its own; anything else is UNKNOWN_SERVER_ERROR without a message,
    so that nothing of the broker's internals leaks to the client."""
    if isinstance(exc, ApiError):
        return exc.error_code, exc.message
    return ErrorCode.UNKNOWN_SERVER_ERROR, None


def error_response(
    api_key: int, version: int, request: Any, error_code: int, message: str | None
) -> Message | None:
    """The response that answers ``request`` (api ``api_key`` at ``version``) with an error."""
    builder = _BUILDERS.get(api_key)
    if builder is not None:
        return builder(request, version, error_code, message)
    return generic_error_response(api_key, error_code)


def generic_error_response(api_key: int, error_code: int) -> Message:
    """The response's defaults with its top-level ``error_code`` set, when it has one."""
    response = papi.api(api_key).response_type()()
    if any(f.name == "error_code" for f in dataclasses.fields(response)):
        response.error_code = error_code  # type: ignore[attr-defined]
    return response


def has_builder(api_key: int) -> bool:
    return api_key in _BUILDERS


# -- one builder per api, after the request classes of Kafka 3.9 --------------------------------


def _produce(request: Any, version: int, code: int, message: str | None) -> Message | None:
    if request.acks == 0:
        return None
    topics: dict[str, produce.TopicProduceResponse] = {}
    seen: set[tuple[str, int]] = set()
    for topic in request.topic_data:
        entry = topics.setdefault(topic.name, produce.TopicProduceResponse(name=topic.name))
        for partition in topic.partition_data:
            if (topic.name, partition.index) in seen:
                continue  # Kafka keys the partitions of a produce by topic-partition
            seen.add((topic.name, partition.index))
            entry.partition_responses.append(
                produce.PartitionProduceResponse(
                    index=partition.index,
                    error_code=code,
                    base_offset=-1,
                    log_append_time_ms=-1,
                    log_start_offset=-1,
                    error_message=message,
                )
            )
    return produce.ProduceResponse(responses=list(topics.values()))


def _fetch(request: Any, version: int, code: int, message: str | None) -> Message:
    # v13+ clients read the top-level error; older ones need it on every partition too.
    responses = []
    if version < 13:
        responses = [
            fetch.FetchableTopicResponse(
                topic=topic.topic,
                topic_id=topic.topic_id,
                partitions=[
                    fetch.PartitionData(partition_index=p.partition, error_code=code, high_watermark=-1)
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    return fetch.FetchResponse(error_code=code, session_id=request.session_id, responses=responses)


def _list_offsets(request: Any, version: int, code: int, message: str | None) -> Message:
    return list_offsets.ListOffsetsResponse(
        topics=[
            list_offsets.ListOffsetsTopicResponse(
                name=topic.name,
                partitions=[
                    list_offsets.ListOffsetsPartitionResponse(
                        partition_index=p.partition_index, error_code=code, offset=-1, timestamp=-1
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


def _metadata(request: Any, version: int, code: int, message: str | None) -> Message:
    # The response allows no null name before v12: a null one comes back as "".
    return metadata.MetadataResponse(
        topics=[
            metadata.MetadataResponseTopic(
                error_code=code, name=topic.name or "", topic_id=topic.topic_id, is_internal=False
            )
            for topic in request.topics or []
        ]
    )


def _offset_commit(request: Any, version: int, code: int, message: str | None) -> Message:
    return offset_commit.OffsetCommitResponse(
        topics=[
            offset_commit.OffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    offset_commit.OffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


def _txn_offset_commit(request: Any, version: int, code: int, message: str | None) -> Message:
    return txn_offset_commit.TxnOffsetCommitResponse(
        topics=[
            txn_offset_commit.TxnOffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    txn_offset_commit.TxnOffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


def _offset_fetch(request: Any, version: int, code: int, message: str | None) -> Message:
    if version >= 8:
        groups = [
            offset_fetch.OffsetFetchResponseGroup(group_id=g.group_id, error_code=code)
            for g in request.groups
        ]
        return offset_fetch.OffsetFetchResponse(groups=groups)
    topics = []
    if version < 2:  # no top-level error code before v2: every partition carries it
        topics = [
            offset_fetch.OffsetFetchResponseTopic(
                name=topic.name,
                partitions=[
                    offset_fetch.OffsetFetchResponsePartition(
                        partition_index=index, committed_offset=-1, metadata="", error_code=code
                    )
                    for index in topic.partition_indexes
                ],
            )
            for topic in request.topics or []
        ]
    return offset_fetch.OffsetFetchResponse(topics=topics, error_code=code)


def _find_coordinator(request: Any, version: int, code: int, message: str | None) -> Message:
    text = _DEFAULT_MESSAGES.get(code)  # Kafka sends the error's own text here
    if version < 4:
        return find_coordinator.FindCoordinatorResponse(
            error_code=code, error_message=text, node_id=-1, host="", port=-1
        )
    return find_coordinator.FindCoordinatorResponse(
        coordinators=[
            find_coordinator.Coordinator(
                key=key, node_id=-1, host="", port=-1, error_code=code, error_message=text
            )
            for key in request.coordinator_keys
        ]
    )


def _join_group(request: Any, version: int, code: int, message: str | None) -> Message:
    return JoinGroupResponse(
        error_code=code,
        generation_id=-1,
        protocol_name=None if version >= 7 else "",
        leader="",
        member_id="",
    )


def _sync_group(request: Any, version: int, code: int, message: str | None) -> Message:
    return SyncGroupResponse(error_code=code, assignment=b"")


def _describe_groups(request: Any, version: int, code: int, message: str | None) -> Message:
    return describe_groups.DescribeGroupsResponse(
        groups=[
            describe_groups.DescribedGroup(error_code=code, group_id=group_id) for group_id in request.groups
        ]
    )


def _api_versions(request: Any, version: int, code: int, message: str | None) -> Message:
    response = api_versions.ApiVersionsResponse(error_code=code)
    if code == ErrorCode.UNSUPPORTED_VERSION:  # KIP-511: tell the client which versions to retry with
        spec = papi.api(papi.API_VERSIONS_KEY)
        response.api_keys = [api_versions.ApiVersion(spec.api_key, spec.min_version, spec.max_version)]
    return response


def _create_topics(request: Any, version: int, code: int, message: str | None) -> Message:
    return create_topics.CreateTopicsResponse(
        topics=[
            create_topics.CreatableTopicResult(name=topic.name, error_code=code, error_message=message)
            for topic in request.topics
        ]
    )


def _delete_topics(request: Any, version: int, code: int, message: str | None) -> Message:
    if version < 6:  # topics by name only
        results = [
            delete_topics.DeletableTopicResult(name=name, error_code=code) for name in request.topic_names
        ]
    else:
        results = [
            delete_topics.DeletableTopicResult(name=topic.name, topic_id=topic.topic_id, error_code=code)
            for topic in request.topics
        ]
    return delete_topics.DeleteTopicsResponse(responses=results)


def _delete_records(request: Any, version: int, code: int, message: str | None) -> Message:
    return delete_records.DeleteRecordsResponse(
        topics=[
            delete_records.DeleteRecordsTopicResult(
                name=topic.name,
                partitions=[
                    delete_records.DeleteRecordsPartitionResult(
                        partition_index=p.partition_index, low_watermark=-1, error_code=code
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


def _init_producer_id(request: Any, version: int, code: int, message: str | None) -> Message:
    return InitProducerIdResponse(error_code=code, producer_id=-1, producer_epoch=-1)


def _offset_for_leader_epoch(request: Any, version: int, code: int, message: str | None) -> Message:
    return offset_for_leader_epoch.OffsetForLeaderEpochResponse(
        topics=[
            offset_for_leader_epoch.OffsetForLeaderTopicResult(
                topic=topic.topic,
                partitions=[
                    offset_for_leader_epoch.EpochEndOffset(
                        error_code=code, partition=p.partition, leader_epoch=-1, end_offset=-1
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


def _describe_configs(request: Any, version: int, code: int, message: str | None) -> Message:
    return describe_configs.DescribeConfigsResponse(
        results=[
            describe_configs.DescribeConfigsResult(
                error_code=code,
                error_message=_DEFAULT_MESSAGES.get(code),  # Kafka sends the error's own text here
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource in request.resources
        ]
    )


def _alter_configs(request: Any, version: int, code: int, message: str | None) -> Message:
    return AlterConfigsResponse(
        responses=[
            AlterConfigsResourceResponse(
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource in request.resources
        ]
    )


def _describe_client_quotas(request: Any, version: int, code: int, message: str | None) -> Message:
    """DescribeClientQuotasResponse.getErrorResponse: the error, no entries (null)."""
    return DescribeClientQuotasResponse(error_code=code, error_message=message, entries=None)


def _alter_client_quotas(request: Any, version: int, code: int, message: str | None) -> Message:
    """AlterClientQuotasRequest.getErrorResponse: every entry with the error and its entity."""
    return alter_client_quotas.AlterClientQuotasResponse(
        entries=[
            alter_client_quotas.EntryData(
                error_code=code,
                error_message=message,
                entity=[alter_client_quotas.EntityData(e.entity_type, e.entity_name) for e in entry.entity],
            )
            for entry in request.entries
        ]
    )


def _incremental_alter_configs(request: Any, version: int, code: int, message: str | None) -> Message:
    return incremental_alter_configs.IncrementalAlterConfigsResponse(
        responses=[
            incremental_alter_configs.AlterConfigsResourceResponse(
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource in request.resources
        ]
    )


def _create_partitions(request: Any, version: int, code: int, message: str | None) -> Message:
    return create_partitions.CreatePartitionsResponse(
        results=[
            create_partitions.CreatePartitionsTopicResult(
                name=topic.name, error_code=code, error_message=message
            )
            for topic in request.topics
        ]
    )


def _delete_groups(request: Any, version: int, code: int, message: str | None) -> Message:
    return delete_groups.DeleteGroupsResponse(
        results=[
            delete_groups.DeletableGroupResult(group_id=group_id, error_code=code)
            for group_id in request.groups_names
        ]
    )


def _create_acls(request: Any, version: int, code: int, message: str | None) -> Message:
    return create_acls.CreateAclsResponse(
        results=[
            create_acls.AclCreationResult(error_code=code, error_message=message) for _ in request.creations
        ]
    )


def _delete_acls(request: Any, version: int, code: int, message: str | None) -> Message:
    return delete_acls.DeleteAclsResponse(
        filter_results=[
            delete_acls.DeleteAclsFilterResult(error_code=code, error_message=message)
            for _ in request.filters
        ]
    )


def _describe_acls(request: Any, version: int, code: int, message: str | None) -> Message:
    return describe_acls.DescribeAclsResponse(error_code=code, error_message=message)


def _describe_cluster(request: Any, version: int, code: int, message: str | None) -> Message:
    return DescribeClusterResponse(error_code=code, error_message=message)


def _leader_and_isr(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every partition with the error: by topic name before v5, grouped by topic id from v5."""
    response = leader_and_isr.LeaderAndIsrResponse(error_code=code)
    if version < 2:
        states = [(s.topic_name, s) for s in request.ungrouped_partition_states]
    else:
        states = [(t.topic_name, s) for t in request.topic_states for s in t.partition_states]
    if version < 5:
        response.partition_errors = [
            leader_and_isr.LeaderAndIsrPartitionError(name, s.partition_index, code) for name, s in states
        ]
        return response
    response.topics = [
        leader_and_isr.LeaderAndIsrTopicError(
            topic_id=t.topic_id,
            partition_errors=[
                leader_and_isr.LeaderAndIsrPartitionError(partition_index=s.partition_index, error_code=code)
                for s in t.partition_states
            ],
        )
        for t in request.topic_states
    ]
    return response


def _stop_replica(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every partition with the error (Kafka's StopReplicaRequest.getErrorResponse)."""
    if version == 0:
        pairs = [(p.topic_name, p.partition_index) for p in request.ungrouped_partitions]
    elif version < 3:
        pairs = [(t.name, index) for t in request.topics for index in t.partition_indexes]
    else:
        pairs = [(t.topic_name, p.partition_index) for t in request.topic_states for p in t.partition_states]
    return stop_replica.StopReplicaResponse(
        error_code=code,
        partition_errors=[stop_replica.StopReplicaPartitionError(name, index, code) for name, index in pairs],
    )


def _elect_leaders(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every requested partition with the error, and the top-level code (v1+), as Kafka's
    ElectLeadersRequest.getErrorResponse."""
    results = [
        elect_leaders.ReplicaElectionResult(
            topic=t.topic,
            partition_result=[
                elect_leaders.PartitionResult(partition_id=p, error_code=code, error_message=message)
                for p in t.partitions
            ],
        )
        for t in request.topic_partitions or []
    ]
    return elect_leaders.ElectLeadersResponse(
        error_code=code if version >= 1 else 0, replica_election_results=results
    )


def _alter_partition_reassignments(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every requested partition and the top level with the error, as Kafka's
    AlterPartitionReassignmentsRequest.getErrorResponse."""
    del version
    return alter_reassignments.AlterPartitionReassignmentsResponse(
        error_code=code,
        error_message=message,
        responses=[
            alter_reassignments.ReassignableTopicResponse(
                name=t.name,
                partitions=[
                    alter_reassignments.ReassignablePartitionResponse(
                        partition_index=p.partition_index, error_code=code, error_message=message
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ],
    )


def _list_partition_reassignments(request: Any, version: int, code: int, message: str | None) -> Message:
    """The top-level error and each requested partition with empty replica lists, as Kafka's
    ListPartitionReassignmentsRequest.getErrorResponse."""
    del version
    return list_reassignments.ListPartitionReassignmentsResponse(
        error_code=code,
        error_message=message,
        topics=[
            list_reassignments.OngoingTopicReassignment(
                name=t.name,
                partitions=[
                    list_reassignments.OngoingPartitionReassignment(partition_index=i)
                    for i in t.partition_indexes
                ],
            )
            for t in request.topics or []
        ],
    )


def _add_partitions_to_txn(request: Any, version: int, code: int, message: str | None) -> Message:
    """v0-3: the error for every partition of the one transaction; v4+: the top-level error."""
    if version >= 4:
        return add_partitions_to_txn.AddPartitionsToTxnResponse(error_code=code)
    return add_partitions_to_txn.AddPartitionsToTxnResponse(
        results_by_topic_v3_and_below=[
            add_partitions_to_txn.AddPartitionsToTxnTopicResult(
                topic.name,
                [add_partitions_to_txn.AddPartitionsToTxnPartitionResult(p, code) for p in topic.partitions],
            )
            for topic in request.v3_and_below_topics
        ]
    )


def _describe_transactions(request: Any, version: int, code: int, message: str | None) -> Message:
    return describe_transactions.DescribeTransactionsResponse(
        transaction_states=[
            describe_transactions.TransactionState(error_code=code, transactional_id=transactional_id)
            for transactional_id in request.transactional_ids
        ]
    )


def _alter_replica_log_dirs(request: Any, version: int, code: int, message: str | None) -> Message:
    """Kafka's AlterReplicaLogDirsRequest.getErrorResponse: every named partition, per dir."""
    return alter_dirs.AlterReplicaLogDirsResponse(
        results=[
            alter_dirs.AlterReplicaLogDirTopicResult(
                topic_name=t.name,
                partitions=[
                    alter_dirs.AlterReplicaLogDirPartitionResult(partition_index=i, error_code=code)
                    for i in t.partitions
                ],
            )
            for d in request.dirs
            for t in d.topics
        ],
    )


def _write_txn_markers(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every partition of every marker with the error, as Kafka's
    WriteTxnMarkersRequest.getErrorResponse."""
    del version, message
    return write_txn_markers.WriteTxnMarkersResponse(
        markers=[
            write_txn_markers.WritableTxnMarkerResult(
                producer_id=m.producer_id,
                topics=[
                    write_txn_markers.WritableTxnMarkerTopicResult(
                        name=t.name,
                        partitions=[
                            write_txn_markers.WritableTxnMarkerPartitionResult(
                                partition_index=i, error_code=code
                            )
                            for i in t.partition_indexes
                        ],
                    )
                    for t in m.topics
                ],
            )
            for m in request.markers
        ]
    )


def _describe_producers(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every requested partition with the error, as Kafka's DescribeProducersRequest.getErrorResponse."""
    del version, message
    return describe_producers.DescribeProducersResponse(
        topics=[
            describe_producers.TopicResponse(
                name=t.name,
                partitions=[
                    describe_producers.PartitionResponse(partition_index=i, error_code=code)
                    for i in t.partition_indexes
                ],
            )
            for t in request.topics
        ]
    )


def _sasl_authenticate(request: Any, version: int, code: int, message: str | None) -> Message:
    del request, version
    return sasl_authenticate.SaslAuthenticateResponse(error_code=code, error_message=message)


def _describe_user_scram_credentials(request: Any, version: int, code: int, message: str | None) -> Message:
    """Kafka's DescribeUserScramCredentialsRequest.getErrorResponse: the top-level error, and one
    result with the error per user asked (its name left empty, as Kafka leaves it)."""
    del version
    users = request.users or []
    return describe_scram.DescribeUserScramCredentialsResponse(
        error_code=code,
        error_message=message,
        results=[
            describe_scram.DescribeUserScramCredentialsResult(error_code=code, error_message=message)
            for _ in users
        ],
    )


def _alter_user_scram_credentials(request: Any, version: int, code: int, message: str | None) -> Message:
    """Every user named in the request (deletions, then upsertions, once each) with the error."""
    del version
    users = dict.fromkeys([d.name for d in request.deletions] + [u.name for u in request.upsertions])
    return alter_scram.AlterUserScramCredentialsResponse(
        results=[alter_scram.AlterUserScramCredentialsResult(user, code, message) for user in users]
    )


def _top_level(api_key: int) -> Builder:
    """Kafka answers these with the top-level error code and nothing else (Heartbeat,
    LeaveGroup, ListGroups, DescribeLogDirs, OffsetDelete, ControlledShutdown, AlterPartition)."""

    def build(request: Any, version: int, code: int, message: str | None) -> Message:
        return generic_error_response(api_key, code)

    return build


_BUILDERS: dict[int, Builder] = {
    0: _produce,
    1: _fetch,
    2: _list_offsets,
    3: _metadata,
    4: _leader_and_isr,
    5: _stop_replica,
    6: _top_level(6),
    7: _top_level(7),
    8: _offset_commit,
    9: _offset_fetch,
    10: _find_coordinator,
    11: _join_group,
    12: _top_level(12),
    13: _top_level(13),
    14: _sync_group,
    15: _describe_groups,
    16: _top_level(16),
    17: _top_level(17),
    18: _api_versions,
    19: _create_topics,
    20: _delete_topics,
    21: _delete_records,
    22: _init_producer_id,
    23: _offset_for_leader_epoch,
    24: _add_partitions_to_txn,
    25: _top_level(25),
    26: _top_level(26),
    27: _write_txn_markers,
    28: _txn_offset_commit,
    29: _describe_acls,
    30: _create_acls,
    31: _delete_acls,
    32: _describe_configs,
    33: _alter_configs,
    34: _alter_replica_log_dirs,
    35: _top_level(35),
    36: _sasl_authenticate,
    37: _create_partitions,
    42: _delete_groups,
    43: _elect_leaders,
    44: _incremental_alter_configs,
    45: _alter_partition_reassignments,
    46: _list_partition_reassignments,
    47: _top_level(47),
    50: _describe_user_scram_credentials,
    51: _alter_user_scram_credentials,
    48: _describe_client_quotas,
    49: _alter_client_quotas,
    56: _top_level(56),
    60: _describe_cluster,
    65: _describe_transactions,
    66: _top_level(66),
    61: _describe_producers,
}
