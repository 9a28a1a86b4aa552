"""The control requests: versions per inter.broker.protocol.version, content, and a round trip
through the generated encoders and decoders at every version the batch builds."""

from __future__ import annotations

import pytest

from broker.cluster.controller import RequestVersions
from broker.cluster.controller.requests import BrokerRequest
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.update_metadata_request import UpdateMetadataRequest

from .kit import broker, controller, of_kind, topic

IBPS = [
    "3.9",
    "3.9-IV0",
    "3.4-IV0",
    "3.3",
    "3.2",
    "3.1",
    "2.8",
    "2.8-IV0",
    "2.6",
    "2.4-IV1",
    "2.4-IV0",
    "2.2",
]


@pytest.mark.parametrize(
    ("ibp", "expected"),
    [
        ("3.9", (7, 8, 4, True)),
        ("3.4-IV0", (7, 8, 4, True)),
        ("3.3", (6, 7, 3, True)),
        ("3.1", (5, 7, 3, False)),
        ("2.8-IV1", (5, 7, 3, False)),
        ("2.8-IV0", (4, 6, 3, False)),
        ("2.5", (4, 6, 2, False)),
        ("2.4-IV0", (3, 5, 1, False)),
        ("2.2", (2, 5, 1, False)),
    ],
)
def test_versions_follow_kafka_mapping(ibp: str, expected: tuple[int, int, int, bool]) -> None:
    v = RequestVersions.for_ibp(ibp)
    assert (v.leader_and_isr, v.update_metadata, v.stop_replica, v.leader_recovery_supported) == expected


def test_too_old_ibp_is_refused() -> None:
    with pytest.raises(ValueError, match=r"older than 2\.2-IV0"):
        RequestVersions.for_ibp("2.1")


def every_kind_of_request(ibp: str) -> list[BrokerRequest]:
    ctl = controller(ibp=ibp)
    made = []
    made += ctl.on_topics_created({"a": topic({0: [1, 2, 3], 1: [2, 3, 1]})}).requests
    made += ctl.on_broker_failure([BrokerId(3)]).requests
    made += ctl.on_broker_startup([broker(3, epoch=2000, rack="r1")]).requests
    made += ctl.controlled_shutdown(BrokerId(2), 1002)[1].requests
    made += ctl.on_topic_deletion_requested(["a"]).requests
    return made


@pytest.mark.parametrize("ibp", IBPS)
def test_round_trip_through_generated_codec(ibp: str) -> None:
    made = every_kind_of_request(ibp)
    versions = RequestVersions.for_ibp(ibp)
    kinds = {type(r.request) for r in made}
    assert kinds == {LeaderAndIsrRequest, UpdateMetadataRequest, StopReplicaRequest}
    for r in made:
        expected_version = {
            LeaderAndIsrRequest: versions.leader_and_isr,
            UpdateMetadataRequest: versions.update_metadata,
            StopReplicaRequest: versions.stop_replica,
        }[type(r.request)]
        assert r.version == expected_version
        assert r.api_key == type(r.request).API_KEY
        encoded = r.request.encode(r.version)
        decoded = type(r.request).decode(encoded, r.version)
        assert decoded.encode(r.version) == encoded
        assert decoded.controller_id == 1
        assert decoded.controller_epoch == 5
        assert decoded.broker_epoch in {1: {1001}, 2: {1002}, 3: {1003, 2000}}[r.broker]
        assert decoded.is_kraft_controller is False


def test_newest_versions_carry_everything() -> None:
    ctl = controller()
    d = ctl.on_topics_created({"a": topic({0: [1, 2, 3]})})
    lai = next(r for r in d.requests if r.broker == 2 and isinstance(r.request, LeaderAndIsrRequest))
    decoded = LeaderAndIsrRequest.decode(lai.request.encode(7), 7)
    assert decoded.type == 0  # ZooKeeper mode sends UNKNOWN
    (ts,) = decoded.topic_states
    (ps,) = ts.partition_states
    assert (ps.leader, ps.leader_epoch, ps.isr, ps.replicas, ps.partition_epoch, ps.is_new) == (
        1, 0, [1, 2, 3], [1, 2, 3], 0, True,
    )  # fmt: skip
    assert [(ll.broker_id, ll.host_name, ll.port) for ll in decoded.live_leaders] == [(1, "127.0.0.2", 29091)]

    ctl.on_broker_change(
        {b: i for b, i in ctl.context.live_brokers.items() if b != 3} | {BrokerId(3): broker(3)}
    )
    d = ctl.on_broker_failure([BrokerId(3)])
    um = next(r for r in d.requests if isinstance(r.request, UpdateMetadataRequest))
    decoded_um = UpdateMetadataRequest.decode(um.request.encode(8), 8)
    assert [b.id for b in decoded_um.live_brokers] == [1, 2]
    assert [(e.listener, e.port) for e in decoded_um.live_brokers[0].endpoints] == [
        ("PLAINTEXT", 19091), ("INTERNAL", 29091),
    ]  # fmt: skip
    (ps_um,) = decoded_um.topic_states[0].partition_states
    assert ps_um.offline_replicas == [3]
    assert 3 not in ps_um.isr


def test_old_stop_replica_splits_delete_and_keep() -> None:
    ctl = controller(ibp="2.2")
    ctl.on_topics_created({"a": topic({0: [1, 2, 3], 1: [2, 1, 3]})})
    ctl.on_topics_created({"b": topic({0: [2, 3, 1]})})
    ctl.controlled_shutdown(BrokerId(2), 1002)
    ctl.on_broker_failure([BrokerId(2)])
    ctl.on_broker_startup([broker(2, epoch=3000)])
    d = ctl.on_topic_deletion_requested(["a"])
    to_1 = [r for r in of_kind(d, StopReplicaRequest) if r.broker == 1]
    assert to_1 and all(r.version == 1 for r in to_1)
    assert all(r.request.delete_partitions for r in to_1)
    assert {(t.name, tuple(t.partition_indexes)) for r in to_1 for t in r.request.topics} == {("a", (0, 1))}


def test_stop_replica_response_error_keeps_topic() -> None:
    ctl = controller()
    ctl.on_topics_created({"a": topic({0: [1, 2]})})
    ctl.on_topic_deletion_requested(["a"])
    d = ctl.on_stop_replica_response(BrokerId(1), {TopicPartition("a", 0): ErrorCode.KAFKA_STORAGE_ERROR})
    assert d.deleted_topics == []
    d = ctl.on_stop_replica_response(BrokerId(2), {TopicPartition("a", 0): ErrorCode.NONE})
    assert d.deleted_topics == []
    assert "a" in ctl.context.topics_ineligible_for_deletion
