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
``.admin`` for the rest.
"""

from broker.group.coordinator import Api, GroupCoordinator, JoinRequest, LeaveResult, LeavingMember
from broker.group.hashing import java_string_hash, kafka_abs, partition_for
from broker.group.store import OFFSETS_TOPIC

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
