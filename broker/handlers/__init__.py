"""Request handlers, one module per api. ``handlers_for(cluster_mode)`` is what a broker serves
and exactly what ApiVersions advertises: ``HANDLERS`` less the controller-to-broker apis
(LeaderAndIsr, StopReplica, UpdateMetadata) and the apis the controller answers
(ControlledShutdown, ElectLeaders, AlterPartition, AlterPartitionReassignments,
ListPartitionReassignments), which only a broker in cluster mode serves (the first five only
Kafka's ZooKeeper-mode brokers serve; the reassignment apis need a controller, which the embedded
node does not run).

A handler module (and the message modules it uses) is imported at the first request of its api,
not at start: a broker's first start pays only for the apis its clients use. Until then the
registry holds a stand-in with the api's versions from the generated index (every handler serves
its schema's stable range; ``tests/broker/test_lazy_handlers.py`` checks each module against it),
which imports the module at its first call and puts the module's handler in its place.
"""

from __future__ import annotations

import importlib
from typing import Any

from broker.handlers.base import Handler, RequestContext, Result
from protocol.apispec import ApiSpec
from protocol.messages._index import APIS

#: The handler modules, by api; each defines ``HANDLER``.
_EMBEDDED_MODULES = (
    "produce",
    "fetch",
    "list_offsets",
    "metadata",
    "api_versions",
    "create_topics",
    "delete_topics",
    "delete_records",
    "init_producer_id",
    "offset_for_leader_epoch",
    "describe_configs",
    "alter_configs",
    "describe_log_dirs",
    "alter_replica_log_dirs",
    "create_partitions",
    "incremental_alter_configs",
    "describe_cluster",
    # group coordinator
    "find_coordinator",
    "join_group",
    "sync_group",
    "heartbeat",
    "leave_group",
    "offset_commit",
    "offset_fetch",
    "describe_groups",
    "list_groups",
    "delete_groups",
    "offset_delete",
    # transactions: coordinator, then the group coordinator's side
    "add_partitions_to_txn",
    "add_offsets_to_txn",
    "end_txn",
    "describe_transactions",
    "list_transactions",
    "txn_offset_commit",
    # transactions, partition side
    "write_txn_markers",
    "describe_producers",
    # SASL (the authentication exchange itself is the connection's) and SCRAM credentials
    "sasl_handshake",
    "sasl_authenticate",
    "describe_user_scram_credentials",
    "alter_user_scram_credentials",
    # authorization
    "describe_acls",
    "create_acls",
    "delete_acls",
    # client quotas
    "describe_client_quotas",
    "alter_client_quotas",
)
#: Served only in cluster mode.
_CLUSTER_MODULES = (
    # from the controller
    "leader_and_isr",
    "stop_replica",
    "update_metadata",
    # to the controller
    "controlled_shutdown",
    "elect_leaders",
    "alter_partition",
    # admin apis the ZooKeeper-mode controller answers
    "alter_partition_reassignments",
    "list_partition_reassignments",
)
_MODULES = _EMBEDDED_MODULES + _CLUSTER_MODULES

_SPECS: dict[str, ApiSpec] = {spec.request_module.removesuffix("_request"): spec for spec in APIS.values()}
#: api key -> handler module.
MODULE_OF: dict[int, str] = {_SPECS[module].api_key: module for module in _MODULES}


def load(api_key: int) -> Handler:
    """Import the api's handler module (once) and put its handler in the registry."""
    handler: Handler = importlib.import_module(f"{__name__}.{MODULE_OF[api_key]}").HANDLER
    HANDLERS[api_key] = handler
    if api_key in _EMBEDDED:
        _EMBEDDED[api_key] = handler
    return handler


def _stand_in(spec: ApiSpec) -> Handler:
    api_key = spec.api_key

    def first_request(ctx: RequestContext, body: Any) -> Result:
        return load(api_key).handle(ctx, body)

    return Handler(api_key, spec.min_version, spec.max_stable_version, first_request)


HANDLERS: dict[int, Handler] = {key: _stand_in(_SPECS[module]) for key, module in MODULE_OF.items()}
CLUSTER_MODE_APIS = frozenset(_SPECS[module].api_key for module in _CLUSTER_MODULES)
_EMBEDDED = {key: h for key, h in HANDLERS.items() if key not in CLUSTER_MODE_APIS}


def handlers_for(cluster_mode: bool) -> dict[int, Handler]:
    """The apis a broker serves (and advertises) in cluster mode or as the embedded node."""
    return HANDLERS if cluster_mode else _EMBEDDED


__all__ = ["CLUSTER_MODE_APIS", "HANDLERS", "MODULE_OF", "Handler", "handlers_for", "load"]
