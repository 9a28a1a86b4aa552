"""The group coordinator: classic consumer groups and committed offsets on ``__consumer_offsets``.

Modules: :mod:`.hashing` (group id to partition), :mod:`.records` (the topic's key/value
formats), :mod:`.group` and :mod:`.member` (group data), :mod:`.state` (states),
:mod:`.coordinator` (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, timers, transaction markers),
:mod:`.offsets` (OffsetCommit/TxnOffsetCommit/OffsetFetch/OffsetDelete, expiration),
:mod:`.admin` (Describe/List/DeleteGroups), :mod:`.store` (ownership, loading, durable
appends), :mod:`.loader` (replay), :mod:`.timers` (injectable scheduler), :mod:`.config`.

The broker builds one :class:`GroupCoordinator` (``broker.group_coordinator``), calls
``start()`` once it listens and ``await stop()`` on shutdown; handlers call
``join_group``/``sync_group``/``heartbeat``/``leave_group`` on it and use ``.offsets`` and
``.admin`` for the rest. The embedded node builds it at its first use (see
``Broker.group_coordinator``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.group.coordinator import Api, GroupCoordinator, JoinRequest, LeaveResult, LeavingMember
    from broker.group.hashing import java_string_hash, kafka_abs, partition_for

#: The topic of committed offsets and group metadata. Defined here, not in :mod:`.store`: the
#: broker names it at start without loading the coordinator.
OFFSETS_TOPIC = "__consumer_offsets"

# The names below are imported from their modules at first use (PEP 562): a broker whose clients
# use no consumer group never loads the coordinator (~10 ms of an embedded broker's first start).
_MODULE_OF = {
    "Api": "coordinator",
    "GroupCoordinator": "coordinator",
    "JoinRequest": "coordinator",
    "LeaveResult": "coordinator",
    "LeavingMember": "coordinator",
    "java_string_hash": "hashing",
    "kafka_abs": "hashing",
    "partition_for": "hashing",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "OFFSETS_TOPIC",
    "Api",
    "GroupCoordinator",
    "JoinRequest",
    "LeaveResult",
    "LeavingMember",
    "java_string_hash",
    "kafka_abs",
    "partition_for",
]
