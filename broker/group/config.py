"""The group coordinator's settings, read once from the broker configuration (Kafka's names)."""

from __future__ import annotations

from broker.config import BrokerConfig
from storage.fast_dataclass import dataclass

#: Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: how long a new member may sit in a join.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class GroupConfig:
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = 2**31 - 1
    num_partitions: int = 50
    replication_factor: int = 3
    segment_bytes: int = 104_857_600
    compression_codec: int = 0
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_check_interval_ms: int = 600_000
    commit_timeout_ms: int = 5000
    load_buffer_size: int = 5 * 1024 * 1024
    metadata_max_bytes: int = 4096

    @classmethod
    def from_broker(cls, config: BrokerConfig) -> GroupConfig:
        return cls(
            min_session_timeout_ms=config.group_min_session_timeout_ms,
            max_session_timeout_ms=config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
            max_size=config.group_max_size,
            num_partitions=config.offsets_topic_num_partitions,
            replication_factor=config.offsets_topic_replication_factor,
            segment_bytes=config.offsets_topic_segment_bytes,
            compression_codec=config.offsets_topic_compression_codec,
            retention_ms=config.offsets_retention_ms,
            retention_check_interval_ms=config.offsets_retention_check_interval_ms,
            commit_timeout_ms=config.offsets_commit_timeout_ms,
            load_buffer_size=config.offsets_load_buffer_size,
            metadata_max_bytes=config.offset_metadata_max_bytes,
        )
