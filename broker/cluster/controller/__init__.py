"""Brook's cluster controller, sans I/O: Kafka 3.9's ZooKeeper-mode controller decisions.

Events go in (fail-over, broker changes, topic creation and deletion, elections, controlled
shutdown, AlterPartition), :class:`ControllerDecisions` come out (conditional partition-state
writes for ZooKeeper, LeaderAndIsr / UpdateMetadata / StopReplica requests for brokers). The
ZooKeeper client and the inter-broker network client carry them out; nothing here does I/O.
"""

from broker.cluster.controller.assignment import (
    AssignmentError,
    BrokerPlacement,
    assign_replicas_to_brokers,
    new_partitions_assignment,
)
from broker.cluster.controller.context import (
    BrokerInfo,
    ControllerContext,
    Endpoint,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    LeaderRecoveryState,
    PartitionReplica,
    PartitionState,
    ReplicaAssignment,
    ReplicaState,
)
from broker.cluster.controller.controller import (
    ControlledShutdownResult,
    Controller,
    ControllerConfig,
    ElectionOutcomeFor,
    ElectionType,
    TopicSnapshot,
)
from broker.cluster.controller.decisions import ControllerDecisions, PartitionStateWrite
from broker.cluster.controller.requests import BrokerRequest, ControllerBrokerRequestBatch, RequestVersions

__all__ = [
    "AssignmentError",
    "BrokerInfo",
    "BrokerPlacement",
    "BrokerRequest",
    "ControlledShutdownResult",
    "Controller",
    "ControllerBrokerRequestBatch",
    "ControllerConfig",
    "ControllerContext",
    "ControllerDecisions",
    "ElectionOutcomeFor",
    "ElectionType",
    "Endpoint",
    "LeaderAndIsr",
    "LeaderIsrAndControllerEpoch",
    "LeaderRecoveryState",
    "PartitionReplica",
    "PartitionState",
    "PartitionStateWrite",
    "ReplicaAssignment",
    "ReplicaState",
    "RequestVersions",
    "TopicSnapshot",
    "assign_replicas_to_brokers",
    "new_partitions_assignment",
]
