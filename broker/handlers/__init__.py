"""Request handlers, one module per api. ``HANDLERS`` is what the broker serves and exactly
what ApiVersions advertises."""

from __future__ import annotations

from broker.handlers import (
    alter_configs,
    api_versions,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    fetch,
    incremental_alter_configs,
    init_producer_id,
    list_offsets,
    metadata,
    offset_for_leader_epoch,
    produce,
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
)

HANDLERS: dict[int, Handler] = {m.HANDLER.api_key: m.HANDLER for m in _MODULES}

__all__ = ["HANDLERS", "Handler", "api_versions"]
