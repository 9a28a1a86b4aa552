"""The transaction coordinator's settings, read once from the broker configuration (Kafka's
TransactionConfig, same keys)."""

from __future__ import annotations

from broker.config import BrokerConfig
from storage.fast_dataclass import dataclass


@dataclass(frozen=True, slots=True)
class TxnConfig:
    num_partitions: int = 50
    replication_factor: int = 3
    min_isr: int = 2
    segment_bytes: int = 104_857_600
    load_buffer_size: int = 5 * 1024 * 1024
    max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 604_800_000
    abort_timed_out_interval_ms: int = 10_000
    remove_expired_interval_ms: int = 3_600_000
    #: How long a write to ``__transaction_state`` waits for the high watermark (request.timeout.ms).
    request_timeout_ms: int = 30_000
    #: Pause between two rounds of marker retries (Kafka's sender thread polls at this pace).
    marker_retry_backoff_ms: int = 100

    @classmethod
    def from_broker(cls, config: BrokerConfig) -> TxnConfig:
        def get(name: str) -> int:
            value = config.get(name)
            assert isinstance(value, int), (name, value)
            return value

        return cls(
            num_partitions=get("transaction.state.log.num.partitions"),
            replication_factor=get("transaction.state.log.replication.factor"),
            min_isr=get("transaction.state.log.min.isr"),
            segment_bytes=get("transaction.state.log.segment.bytes"),
            load_buffer_size=get("transaction.state.log.load.buffer.size"),
            max_timeout_ms=get("transaction.max.timeout.ms"),
            transactional_id_expiration_ms=get("transactional.id.expiration.ms"),
            abort_timed_out_interval_ms=get("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
            remove_expired_interval_ms=get("transaction.remove.expired.transaction.cleanup.interval.ms"),
            request_timeout_ms=get("request.timeout.ms"),
        )


def transaction_topic_configs(config: TxnConfig) -> dict[str, str]:
    """The overrides ``__transaction_state`` is created with (Kafka's transactionTopicConfigs)."""
    return {
        "cleanup.policy": "compact",
        "compression.type": "uncompressed",
        "min.insync.replicas": str(config.min_isr),
        "segment.bytes": str(config.segment_bytes),
        "unclean.leader.election.enable": "false",
    }
