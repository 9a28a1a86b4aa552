"""Per-partition log configuration with Kafka's topic-level names and defaults.

The broker maps ``server.properties`` (``log.segment.bytes`` ...) and per-topic overrides
(``segment.bytes`` ...) into one :class:`LogConfig` per log and may swap it at run time with
``Log.update_config``. Field names are the topic-level keys in snake_case; :data:`TOPIC_KEYS` maps
the dotted keys to fields so DescribeConfigs / CreateTopics can be driven from one table.

A few fields (``compression_type``, ``min_insync_replicas``, ``unclean_leader_election_enable``,
``preallocate``, ``message_downconversion_enable``) are carried for the broker's convenience and are
ignored by storage: storage never recompresses, never decides acks, and does not preallocate
``.log`` files (Kafka's default is ``preallocate=false`` too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from storage.fast_dataclass import dataclass

#: Java's Long.MAX_VALUE, Kafka's "never" for flush.messages, flush.ms, max.compaction.lag.ms ...
LONG_MAX = (1 << 63) - 1

CLEANUP_POLICIES = ("delete", "compact", "compact,delete")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
#: The cleaner's offset map holds at most this many keys per pass (a log with more distinct keys
#: is compacted over several passes).
DEFAULT_CLEANER_MAX_MAP_ENTRIES = 1_000_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Configuration of one partition log. Defaults are Kafka 3.9's topic-level defaults."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 604_800_000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 604_800_000
    retention_bytes: int = -1
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 86_400_000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    max_message_bytes: int = 1_048_588
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    file_delete_delay_ms: int = 60_000
    message_timestamp_type: str = "CreateTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = LONG_MAX
    # Carried for the broker; storage ignores them (see module docstring).
    compression_type: str = "producer"
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    preallocate: bool = False
    message_downconversion_enable: bool = True

    def __post_init__(self) -> None:
        policy = ",".join(sorted(p.strip() for p in self.cleanup_policy.lower().split(",") if p.strip()))
        if policy not in CLEANUP_POLICIES:
            raise ValueError(f"invalid cleanup.policy {self.cleanup_policy!r}")
        object.__setattr__(self, "cleanup_policy", policy)
        if self.message_timestamp_type not in TIMESTAMP_TYPES:
            raise ValueError(f"invalid message.timestamp.type {self.message_timestamp_type!r}")
        if self.segment_bytes < 14:
            raise ValueError("segment.bytes must be at least 14")
        if self.segment_ms < 1:
            raise ValueError("segment.ms must be at least 1")
        if self.segment_jitter_ms < 0:
            raise ValueError("segment.jitter.ms must be non-negative")
        if self.segment_index_bytes < 12:
            raise ValueError("segment.index.bytes must be at least 12 (one time index entry)")
        if self.index_interval_bytes < 0:
            raise ValueError("index.interval.bytes must be non-negative")
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise ValueError("min.cleanable.dirty.ratio must be within [0, 1]")
        if self.max_message_bytes < 0:
            raise ValueError("max.message.bytes must be non-negative")
        if self.flush_messages < 1 or self.flush_ms < 0:
            raise ValueError("flush.messages must be >= 1 and flush.ms >= 0")
        if self.min_compaction_lag_ms < 0 or self.max_compaction_lag_ms < 1:
            raise ValueError("min.compaction.lag.ms must be >= 0 and max.compaction.lag.ms >= 1")

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    def replace(self, **changes: Any) -> LogConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_topic_properties(
        cls, props: Mapping[str, str | int | float | bool], defaults: LogConfig | None = None
    ) -> LogConfig:
        """Apply Kafka topic-level properties (dotted keys, values as strings or numbers) on top
        of ``defaults``. Unknown keys raise ``KeyError`` so typos are not silently ignored."""
        base = defaults if defaults is not None else cls()
        changes: dict[str, Any] = {}
        for key, raw in props.items():
            field = TOPIC_KEYS[key]
            current = getattr(base, field)
            changes[field] = _coerce(raw, type(current), key)
        return dataclasses.replace(base, **changes)

    def to_topic_properties(self) -> dict[str, str]:
        """The configuration as Kafka topic-level properties, values rendered as Kafka does."""
        out: dict[str, str] = {}
        for key, field in TOPIC_KEYS.items():
            value = getattr(self, field)
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _coerce(raw: str | int | float | bool, kind: type, key: str) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("true", "false"):
            raise ValueError(f"{key} must be true or false, got {raw!r}")
        return text == "true"
    if kind is int:
        return int(str(raw).strip()) if not isinstance(raw, int) else raw
    if kind is float:
        return float(raw)
    return str(raw)


#: Kafka topic-level config key -> LogConfig field.
TOPIC_KEYS: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "segment.jitter.ms": "segment_jitter_ms",
    "segment.index.bytes": "segment_index_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "cleanup.policy": "cleanup_policy",
    "delete.retention.ms": "delete_retention_ms",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
    "min.compaction.lag.ms": "min_compaction_lag_ms",
    "max.compaction.lag.ms": "max_compaction_lag_ms",
    "max.message.bytes": "max_message_bytes",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "file.delete.delay.ms": "file_delete_delay_ms",
    "message.timestamp.type": "message_timestamp_type",
    "message.timestamp.before.max.ms": "message_timestamp_before_max_ms",
    "message.timestamp.after.max.ms": "message_timestamp_after_max_ms",
    "compression.type": "compression_type",
    "min.insync.replicas": "min_insync_replicas",
    "unclean.leader.election.enable": "unclean_leader_election_enable",
    "preallocate": "preallocate",
    "message.downconversion.enable": "message_downconversion_enable",
}
