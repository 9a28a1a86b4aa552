"""Admin handlers driven in-process: topics, partitions, configs, records, log dirs, cluster."""

from __future__ import annotations

from protocol.error_codes import ErrorCode
from protocol.messages.alter_configs_request import AlterableConfig, AlterConfigsRequest, AlterConfigsResource
from protocol.messages.create_partitions_request import CreatePartitionsRequest, CreatePartitionsTopic
from protocol.messages.create_topics_request import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.incremental_alter_configs_request import AlterableConfig as IncConfig
from protocol.messages.incremental_alter_configs_request import AlterConfigsResource as IncResource
from protocol.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from tests.broker.conftest import Caller
from tests.broker.test_data_plane import batch, create, produce

TOPIC = 2
BROKER = 4


def create_one(call: Caller, topic: CreatableTopic, version: int = 7, validate_only: bool = False):
    return call(CreateTopicsRequest(topics=[topic], validate_only=validate_only), version).topics[0]


def describe(call: Caller, name: str, version: int = 4, keys: list[str] | None = None):
    request = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(TOPIC, name, keys)],
        include_synonyms=version >= 1,
        include_documentation=version >= 3,
    )
    return call(request, version).results[0]


def test_create_topics_validation(call: Caller) -> None:
    ok = create_one(
        call, CreatableTopic("a", 3, 1, configs=[CreatableTopicConfig("cleanup.policy", "compact")])
    )
    assert ok.error_code == 0 and ok.num_partitions == 3 and ok.replication_factor == 1
    assert ok.topic_id.int != 0
    policy = next(c for c in ok.configs if c.name == "cleanup.policy")
    assert policy.value == "compact" and policy.config_source == 1  # DYNAMIC_TOPIC_CONFIG
    assert create_one(call, CreatableTopic("a", 1, 1)).error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert create_one(call, CreatableTopic("b", 1, 2)).error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create_one(call, CreatableTopic("b", 0, 1)).error_code == ErrorCode.INVALID_PARTITIONS
    bad = create_one(call, CreatableTopic("b", 1, 1, configs=[CreatableTopicConfig("retention.ms", "soon")]))
    assert bad.error_code == ErrorCode.INVALID_CONFIG and "retention.ms" in (bad.error_message or "")
    unknown = create_one(call, CreatableTopic("b", 1, 1, configs=[CreatableTopicConfig("no.such", "1")]))
    assert unknown.error_code == ErrorCode.INVALID_CONFIG
    assert create_one(call, CreatableTopic("a.b", 1, 1)).error_code == 0
    assert (
        create_one(call, CreatableTopic("a_b", 1, 1)).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    )  # collides
    assert create_one(call, CreatableTopic("x" * 250, 1, 1)).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    dry = create_one(call, CreatableTopic("dry", 4, 1), validate_only=True)
    assert dry.error_code == 0 and dry.num_partitions == 4
    assert call.broker.metadata.topic("dry") is None
    twice = call(CreateTopicsRequest(topics=[CreatableTopic("d", 1, 1), CreatableTopic("d", 1, 1)]), 7)
    assert [t.error_code for t in twice.topics] == [ErrorCode.INVALID_REQUEST]
    defaults = create_one(call, CreatableTopic("defaults", -1, -1))
    assert defaults.error_code == 0 and defaults.num_partitions == 1


def test_create_topic_with_explicit_assignment(call: Caller) -> None:
    assigned = CreatableTopic(
        "asg", -1, -1, assignments=[CreatableReplicaAssignment(0, [0]), CreatableReplicaAssignment(1, [0])]
    )
    assert create_one(call, assigned).error_code == 0
    assert len(call.broker.metadata.topic("asg").partitions) == 2
    bad = CreatableTopic("asg2", -1, -1, assignments=[CreatableReplicaAssignment(0, [7])])
    assert create_one(call, bad).error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT


def test_delete_topics_by_name_and_id(call: Caller) -> None:
    create(call, "gone")
    create(call, "gone2")
    topic_id = call.broker.metadata.topic("gone2").topic_id
    response = call(DeleteTopicsRequest(topic_names=["gone", "never"]), 5)
    assert [(r.name, r.error_code) for r in response.responses] == [
        ("gone", 0),
        ("never", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    response = call(DeleteTopicsRequest(topics=[DeleteTopicState(name=None, topic_id=topic_id)]), 6)
    assert response.responses[0].error_code == 0 and response.responses[0].name == "gone2"
    assert call.broker.metadata.topics == {}
    assert call.broker.replica_manager.partitions == {}


def test_create_partitions(call: Caller) -> None:
    create(call, "grow", 2)
    response = call(CreatePartitionsRequest(topics=[CreatePartitionsTopic("grow", 5, None)]), 3)
    assert response.results[0].error_code == 0
    assert len(call.broker.metadata.topic("grow").partitions) == 5
    assert produce(call, "grow", 4, batch([b"x"])).error_code == 0
    shrink = call(CreatePartitionsRequest(topics=[CreatePartitionsTopic("grow", 3, None)]), 3)
    assert shrink.results[0].error_code == ErrorCode.INVALID_PARTITIONS


def test_describe_configs_every_version(call: Caller) -> None:
    create_one(call, CreatableTopic("cfg", 1, 1, configs=[CreatableTopicConfig("retention.ms", "1000")]))
    for version in range(5):
        result = describe(call, "cfg", version)
        assert result.error_code == 0
        names = {c.name for c in result.configs}
        assert {"retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes"} <= names
        retention = next(c for c in result.configs if c.name == "retention.ms")
        assert retention.value == "1000"
        if version == 0:
            assert retention.is_default is False
        else:
            assert retention.config_source == 1
            assert retention.synonyms[0].name == "retention.ms"
        if version >= 3:
            assert retention.config_type == 5  # LONG
            assert retention.documentation
    only = describe(call, "cfg", 4, ["segment.bytes"])
    assert [c.name for c in only.configs] == ["segment.bytes"]
    assert describe(call, "missing").error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    request = DescribeConfigsRequest(resources=[DescribeConfigsResource(BROKER, "0", None)])
    broker_configs = call(request, 4).results[0]
    assert broker_configs.error_code == 0
    assert any(c.name == "log.retention.hours" for c in broker_configs.configs)


def test_alter_configs_replaces_overrides(call: Caller) -> None:
    create_one(call, CreatableTopic("alt", 1, 1, configs=[CreatableTopicConfig("retention.ms", "1000")]))
    request = AlterConfigsRequest(
        resources=[AlterConfigsResource(TOPIC, "alt", [AlterableConfig("segment.ms", "60000")])]
    )
    assert call(request, 2).responses[0].error_code == 0
    assert call.broker.metadata.topic("alt").configs == {"segment.ms": "60000"}
    assert call.broker.replica_manager.get(("alt", 0)).log.config.segment_ms == 60000
    bad = AlterConfigsRequest(
        resources=[AlterConfigsResource(TOPIC, "alt", [AlterableConfig("segment.ms", "-5")])]
    )
    assert call(bad, 2).responses[0].error_code == ErrorCode.INVALID_CONFIG


def test_incremental_alter_configs(call: Caller) -> None:
    create(call, "inc")

    def alter(*changes: IncConfig) -> int:
        request = IncrementalAlterConfigsRequest(resources=[IncResource(TOPIC, "inc", list(changes))])
        return call(request, 1).responses[0].error_code

    assert alter(IncConfig("retention.ms", 0, "5000")) == 0
    assert alter(IncConfig("cleanup.policy", 2, "compact")) == 0
    configs = call.broker.metadata.topic("inc").configs
    assert configs["retention.ms"] == "5000"
    assert set(configs["cleanup.policy"].split(",")) == {"delete", "compact"}
    assert alter(IncConfig("cleanup.policy", 3, "delete")) == 0
    assert call.broker.metadata.topic("inc").configs["cleanup.policy"] == "compact"
    assert alter(IncConfig("retention.ms", 1, None)) == 0
    assert "retention.ms" not in call.broker.metadata.topic("inc").configs
    assert alter(IncConfig("retention.ms", 2, "5")) == ErrorCode.INVALID_CONFIG
    assert (
        alter(IncConfig("retention.ms", 0, "1"), IncConfig("retention.ms", 0, "2"))
        == ErrorCode.INVALID_REQUEST
    )


def test_delete_records_moves_the_log_start(call: Caller) -> None:
    create(call, "dr")
    produce(call, "dr", 0, batch([b"a", b"b", b"c"]))
    request = DeleteRecordsRequest(
        topics=[DeleteRecordsTopic("dr", [DeleteRecordsPartition(0, 2)])], timeout_ms=1000
    )
    result = call(request, 2).topics[0].partitions[0]
    assert result.error_code == 0 and result.low_watermark == 2
    too_far = DeleteRecordsRequest(topics=[DeleteRecordsTopic("dr", [DeleteRecordsPartition(0, 99)])])
    assert call(too_far, 2).topics[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_describe_log_dirs_and_cluster(call: Caller) -> None:
    create(call, "ld", 2)
    produce(call, "ld", 1, batch([b"abc"]))
    dirs = call(DescribeLogDirsRequest(topics=None), 4)
    assert len(dirs.results) == 1
    result = dirs.results[0]
    sizes = {p.partition_index: p.partition_size for t in result.topics for p in t.partitions}
    assert sizes[1] > 0 and sizes[0] == 0
    assert result.total_bytes > 0
    cluster = call(DescribeClusterRequest(), 1)
    assert cluster.error_code == 0 and cluster.cluster_id == call.broker.cluster_id
    assert [b.broker_id for b in cluster.brokers] == [call.broker.node_id]


def test_offset_for_leader_epoch(call: Caller) -> None:
    create(call, "ep")
    produce(call, "ep", 0, batch([b"a", b"b"]))
    request = OffsetForLeaderEpochRequest(
        replica_id=-1, topics=[OffsetForLeaderTopic("ep", [OffsetForLeaderPartition(0, -1, 0)])]
    )
    result = call(request, 4).topics[0].partitions[0]
    assert (result.error_code, result.leader_epoch, result.end_offset) == (0, 0, 2)
