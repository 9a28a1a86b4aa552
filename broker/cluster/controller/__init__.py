"""Brook's cluster controller, sans I/O: Kafka 3.9's ZooKeeper-mode controller decisions.

Events go in (fail-over, broker changes, topic creation and deletion, elections, controlled
shutdown, AlterPartition, reassignments), :class:`ControllerDecisions` come out (conditional
partition-state and assignment writes for ZooKeeper, LeaderAndIsr / UpdateMetadata / StopReplica
requests for brokers). The
ZooKeeper client and the inter-broker network client carry them out; nothing here does I/O.

Driving it (the integrator's loop, one event at a time on the event loop)::

    ctl = Controller(ControllerConfig(broker_id, inter_broker_listener, ibp, unclean, 10))
    d = ctl.on_controller_failover(epoch, epoch_zk_version, brokers, topics, states, deletions)
    # then, per ZooKeeper watch or broker answer:
    d = ctl.on_broker_change(registered)          # /brokers/ids children + their data
    d = ctl.on_topics_created({...}); d = ctl.on_partitions_added(topic, assignment)
    d = ctl.on_topic_deletion_requested(topics); d = ctl.on_stop_replica_response(broker, errors)
    answers, d = ctl.elect_leaders(partitions, ElectionType.PREFERRED); d = ctl.auto_rebalance()
    result, d = ctl.controlled_shutdown(broker, broker_epoch)
    response, d = ctl.alter_partition(request, version)
    outcomes, d = ctl.alter_partition_reassignments({tp: [3, 4]})   # None cancels
    d = ctl.on_zk_reassignment(requested); ongoing = ctl.list_partition_reassignments()
    # carry out d: d.partition_writes in order (multi-op with the /controller_epoch version
    # check), d.assignment_writes, d.zk_reassignment_removals, d.deleted_topics, then
    # d.requests in order; log d.failures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from broker.cluster.controller.decisions import (
        AssignmentWrite,
        ControllerDecisions,
        PartitionStateWrite,
        ZkReassignmentRemoval,
    )
    from broker.cluster.controller.reassignment import ReassignmentOutcome
    from broker.cluster.controller.requests import (
        BrokerRequest,
        ControllerBrokerRequestBatch,
        RequestVersions,
    )

# The names below are imported from their modules at first use (PEP 562): importing one module
# of the package (as broker.cluster.topics does the assignment) must not load the whole
# controller, which a broker outside cluster mode never runs (~14 ms of an embedded start).
_MODULE_OF = {
    "AssignmentError": "assignment",
    "BrokerPlacement": "assignment",
    "assign_replicas_to_brokers": "assignment",
    "new_partitions_assignment": "assignment",
    "BrokerInfo": "context",
    "ControllerContext": "context",
    "Endpoint": "context",
    "LeaderAndIsr": "context",
    "LeaderIsrAndControllerEpoch": "context",
    "LeaderRecoveryState": "context",
    "PartitionReplica": "context",
    "PartitionState": "context",
    "ReplicaAssignment": "context",
    "ReplicaState": "context",
    "ControlledShutdownResult": "controller",
    "Controller": "controller",
    "ControllerConfig": "controller",
    "ElectionOutcomeFor": "controller",
    "ElectionType": "controller",
    "TopicSnapshot": "controller",
    "ControllerDecisions": "decisions",
    "PartitionStateWrite": "decisions",
    "AssignmentWrite": "decisions",
    "ZkReassignmentRemoval": "decisions",
    "ReassignmentOutcome": "reassignment",
    "BrokerRequest": "requests",
    "ControllerBrokerRequestBatch": "requests",
    "RequestVersions": "requests",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AssignmentError",
    "AssignmentWrite",
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
    "ReassignmentOutcome",
    "ReplicaAssignment",
    "ReplicaState",
    "RequestVersions",
    "TopicSnapshot",
    "ZkReassignmentRemoval",
    "assign_replicas_to_brokers",
    "new_partitions_assignment",
]
