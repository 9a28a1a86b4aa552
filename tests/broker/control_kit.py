"""Build the controller's requests (UpdateMetadata, LeaderAndIsr, StopReplica) in any version,
the way a Kafka 3.9 ZooKeeper controller lays them out, and a broker in cluster mode to send them to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from broker.app import Broker
from broker.config import load_config
from protocol.messages.leader_and_isr_request import (
    LeaderAndIsrLiveLeader,
    LeaderAndIsrPartitionState,
    LeaderAndIsrRequest,
    LeaderAndIsrTopicState,
)
from protocol.messages.stop_replica_request import (
    StopReplicaPartitionState,
    StopReplicaPartitionV0,
    StopReplicaRequest,
    StopReplicaTopicState,
    StopReplicaTopicV1,
)
from protocol.messages.update_metadata_request import (
    UpdateMetadataBroker,
    UpdateMetadataEndpoint,
    UpdateMetadataPartitionState,
    UpdateMetadataRequest,
    UpdateMetadataTopicState,
)
from protocol.primitives import ZERO_UUID
from storage import FileSystem

LOCAL = 1
OTHER = 2


def cluster_broker(
    path: Path, node_id: int = LOCAL, fs: FileSystem | None = None, **overrides: str
) -> Broker:
    settings = {
        "log.dirs": str(path),
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "broker.id": str(node_id),
        **overrides,
    }
    return Broker(load_config(None, [f"{k}={v}" for k, v in settings.items()]), fs=fs, cluster_mode=True)


@dataclass
class Node:
    broker_id: int
    host: str
    port: int
    rack: str | None = None
    #: extra listeners: name -> port (same host)
    more: dict[str, int] = field(default_factory=dict)


@dataclass
class PState:
    topic: str
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int] | None = None
    offline: list[int] = field(default_factory=list)
    partition_epoch: int = 0

    @property
    def in_sync(self) -> list[int]:
        return list(self.replicas if self.isr is None else self.isr)


def update_metadata(
    version: int,
    nodes: list[Node],
    states: list[PState],
    *,
    controller_id: int = OTHER,
    controller_epoch: int = 1,
    broker_epoch: int = -1,
    topic_ids: dict[str, uuid.UUID] | None = None,
) -> UpdateMetadataRequest:
    ids = topic_ids or {}
    live = []
    for n in nodes:
        b = UpdateMetadataBroker(id=n.broker_id, rack=n.rack if version >= 2 else "")
        if version == 0:
            b.v0_host, b.v0_port = n.host, n.port
        else:
            b.endpoints = [UpdateMetadataEndpoint(n.port, n.host, "PLAINTEXT" if version >= 3 else "", 0)]
            if version >= 3:
                b.endpoints += [UpdateMetadataEndpoint(p, n.host, name, 0) for name, p in n.more.items()]
        live.append(b)
    request = UpdateMetadataRequest(
        controller_id=controller_id,
        controller_epoch=controller_epoch,
        broker_epoch=broker_epoch,
        live_brokers=live,
    )
    partition_states = [
        UpdateMetadataPartitionState(
            topic_name=s.topic if version < 5 else "",
            partition_index=s.partition,
            controller_epoch=controller_epoch,
            leader=s.leader,
            leader_epoch=s.leader_epoch,
            isr=s.in_sync,
            zk_version=s.partition_epoch,
            replicas=list(s.replicas),
            offline_replicas=list(s.offline) if version >= 4 else [],
        )
        for s in states
    ]
    if version < 5:
        request.ungrouped_partition_states = partition_states
    else:
        by_topic: dict[str, UpdateMetadataTopicState] = {}
        for s, ps in zip(states, partition_states, strict=True):
            topic_id = ids.get(s.topic, ZERO_UUID) if version >= 7 else ZERO_UUID
            by_topic.setdefault(s.topic, UpdateMetadataTopicState(s.topic, topic_id)).partition_states.append(
                ps
            )
        request.topic_states = list(by_topic.values())
    return request


def leader_and_isr(
    version: int,
    states: list[PState],
    *,
    controller_id: int = OTHER,
    controller_epoch: int = 1,
    broker_epoch: int = -1,
    topic_ids: dict[str, uuid.UUID] | None = None,
    leaders: list[Node] | None = None,
) -> LeaderAndIsrRequest:
    ids = topic_ids or {}
    partition_states = [
        LeaderAndIsrPartitionState(
            topic_name=s.topic if version < 2 else "",
            partition_index=s.partition,
            controller_epoch=controller_epoch,
            leader=s.leader,
            leader_epoch=s.leader_epoch,
            isr=s.in_sync,
            partition_epoch=s.partition_epoch,
            replicas=list(s.replicas),
            is_new=version >= 1,
        )
        for s in states
    ]
    request = LeaderAndIsrRequest(
        controller_id=controller_id,
        controller_epoch=controller_epoch,
        broker_epoch=broker_epoch,
        type=0,
        live_leaders=[LeaderAndIsrLiveLeader(n.broker_id, n.host, n.port) for n in leaders or []],
    )
    if version < 2:
        request.ungrouped_partition_states = partition_states
    else:
        by_topic: dict[str, LeaderAndIsrTopicState] = {}
        for s, ps in zip(states, partition_states, strict=True):
            topic_id = ids.get(s.topic, ZERO_UUID) if version >= 5 else ZERO_UUID
            by_topic.setdefault(s.topic, LeaderAndIsrTopicState(s.topic, topic_id)).partition_states.append(
                ps
            )
        request.topic_states = list(by_topic.values())
    return request


def stop_replica(
    version: int,
    partitions: list[tuple[str, int]],
    *,
    delete: bool,
    leader_epoch: int = -1,
    controller_id: int = OTHER,
    controller_epoch: int = 1,
    broker_epoch: int = -1,
) -> StopReplicaRequest:
    request = StopReplicaRequest(
        controller_id=controller_id, controller_epoch=controller_epoch, broker_epoch=broker_epoch
    )
    if version < 3:
        request.delete_partitions = delete
    if version == 0:
        request.ungrouped_partitions = [StopReplicaPartitionV0(t, p) for t, p in partitions]
    elif version < 3:
        by_topic: dict[str, StopReplicaTopicV1] = {}
        for t, p in partitions:
            by_topic.setdefault(t, StopReplicaTopicV1(t)).partition_indexes.append(p)
        request.topics = list(by_topic.values())
    else:
        states: dict[str, StopReplicaTopicState] = {}
        for t, p in partitions:
            states.setdefault(t, StopReplicaTopicState(t)).partition_states.append(
                StopReplicaPartitionState(p, leader_epoch, delete)
            )
        request.topic_states = list(states.values())
    return request
