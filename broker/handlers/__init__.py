"""Request handlers, one module per api. ``handlers_for(cluster_mode)`` is what a broker serves
and exactly what ApiVersions advertises: ``HANDLERS`` less the controller-to-broker apis
(LeaderAndIsr, StopReplica, UpdateMetadata) and the apis the controller answers
(ControlledShutdown, ElectLeaders, AlterPartition), which only a broker in cluster mode serves, as
only Kafka's ZooKeeper-mode brokers do (their schemas' ``zkBroker`` listener)."""

from __future__ import annotations

from broker.handlers import (
    alter_configs,
    alter_partition,
    api_versions,
    controlled_shutdown,
    create_partitions,
    create_topics,
    delete_groups,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_groups,
    describe_log_dirs,
    elect_leaders,
    fetch,
    find_coordinator,
    heartbeat,
    incremental_alter_configs,
    init_producer_id,
    join_group,
    leader_and_isr,
    leave_group,
    list_groups,
    list_offsets,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    offset_for_leader_epoch,
    produce,
    stop_replica,
    sync_group,
    update_metadata,
)
from broker.handlers.base import Handler

_MODULES = (
    produce,
    fetch,
    list_offsets,
    metadata,
    api_versions,
    create_topics,
    delete_topics,
    delete_records,
    init_producer_id,
    offset_for_leader_epoch,
    describe_configs,
    alter_configs,
    describe_log_dirs,
    create_partitions,
    incremental_alter_configs,
    describe_cluster,
    # group coordinator
    find_coordinator,
    join_group,
    sync_group,
    heartbeat,
    leave_group,
    offset_commit,
    offset_fetch,
    describe_groups,
    list_groups,
    delete_groups,
    offset_delete,
    # from the controller (cluster mode)
    leader_and_isr,
    stop_replica,
    update_metadata,
    # to the controller (cluster mode)
    controlled_shutdown,
    elect_leaders,
    alter_partition,
)

HANDLERS: dict[int, Handler] = {m.HANDLER.api_key: m.HANDLER for m in _MODULES}
#: LeaderAndIsr, StopReplica, UpdateMetadata; ControlledShutdown, ElectLeaders, AlterPartition.
CLUSTER_MODE_APIS = frozenset(
    {
        leader_and_isr.API_KEY,
        stop_replica.API_KEY,
        update_metadata.API_KEY,
        controlled_shutdown.API_KEY,
        elect_leaders.API_KEY,
        alter_partition.API_KEY,
    }
)
_EMBEDDED = {key: h for key, h in HANDLERS.items() if key not in CLUSTER_MODE_APIS}


def handlers_for(cluster_mode: bool) -> dict[int, Handler]:
    """The apis a broker serves (and advertises) in cluster mode or as the embedded node."""
    return HANDLERS if cluster_mode else _EMBEDDED


__all__ = ["CLUSTER_MODE_APIS", "HANDLERS", "Handler", "api_versions", "handlers_for"]
