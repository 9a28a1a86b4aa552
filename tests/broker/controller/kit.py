"""Helpers for the controller tests: brokers, a topic, and reading the decisions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from broker.cluster.controller import (
    BrokerInfo,
    Controller,
    ControllerConfig,
    ControllerDecisions,
    Endpoint,
    LeaderAndIsr,
    ReplicaAssignment,
    TopicSnapshot,
)
from broker.types import BrokerId, TopicPartition
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.update_metadata_request import UpdateMetadataRequest

TOPIC_ID = uuid.UUID("8b2c3f9e-7d0a-4b51-9a57-2f3c4d5e6f70")


def broker(broker_id: int, epoch: int | None = None, rack: str | None = None) -> BrokerInfo:
    return BrokerInfo(
        BrokerId(broker_id),
        (
            Endpoint("PLAINTEXT", "127.0.0.1", 19090 + broker_id, 0),
            Endpoint("INTERNAL", "127.0.0.2", 29090 + broker_id, 0),
        ),
        rack,
        epoch if epoch is not None else 1000 + broker_id,
    )


def controller(brokers: Iterable[int] = (1, 2, 3), *, controller_id: int = 1, ibp: str = "3.9") -> Controller:
    ctl = Controller(
        ControllerConfig(
            BrokerId(controller_id),
            inter_broker_listener="INTERNAL",
            inter_broker_protocol_version=ibp,
        )
    )
    ctl.on_controller_failover(5, 4, [broker(b) for b in brokers], {}, {})
    return ctl


def topic(assignment: Mapping[int, Sequence[int]], topic_id: uuid.UUID = TOPIC_ID) -> TopicSnapshot:
    return TopicSnapshot(topic_id, {p: ReplicaAssignment.of(r) for p, r in assignment.items()})


def state(ctl: Controller, topic_name: str, partition: int) -> LeaderAndIsr:
    found = ctl.context.leader_and_isr(TopicPartition(topic_name, partition))
    assert found is not None
    return found


R = TypeVar("R", LeaderAndIsrRequest, UpdateMetadataRequest, StopReplicaRequest)


@dataclass(frozen=True)
class Sent(Generic[R]):
    broker: BrokerId
    version: int
    request: R


def of_kind(decisions: ControllerDecisions, kind: type[R]) -> list[Sent[R]]:
    """The requests of one api, in sending order."""
    return [Sent(r.broker, r.version, r.request) for r in decisions.requests if isinstance(r.request, kind)]


def lai_partitions(request: LeaderAndIsrRequest) -> dict[tuple[str, int], tuple[int, int, list[int], bool]]:
    """(topic, partition) -> (leader, leader epoch, isr, is_new) of a LeaderAndIsr."""
    return {
        (t.topic_name, p.partition_index): (p.leader, p.leader_epoch, p.isr, p.is_new)
        for t in request.topic_states
        for p in t.partition_states
    }


def um_partitions(request: UpdateMetadataRequest) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """(topic, partition) -> (leader, isr, offline replicas) of an UpdateMetadata."""
    return {
        (t.topic_name, p.partition_index): (p.leader, p.isr, p.offline_replicas)
        for t in request.topic_states
        for p in t.partition_states
    }


def stop_partitions(request: StopReplicaRequest) -> dict[tuple[str, int], tuple[int, bool]]:
    return {
        (t.topic_name, p.partition_index): (p.leader_epoch, p.delete_partition)
        for t in request.topic_states
        for p in t.partition_states
    }


def recipients(decisions: ControllerDecisions, kind: type[R]) -> set[int]:
    return {r.broker for r in of_kind(decisions, kind)}
