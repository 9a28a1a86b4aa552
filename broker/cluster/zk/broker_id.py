"""Which broker id a ZooKeeper-mode broker starts with (KafkaServer.getOrGenerateBrokerId, 3.9).

Order: ``broker.id`` when set (>= 0), else the id recorded in the log dirs' meta.properties, else
one generated from ``/brokers/seqid`` when ``broker.id.generation.enable``. KafkaConfig's checks
and messages come first.
"""

from __future__ import annotations

from broker.cluster.zk.client import KafkaZkClient


class BrokerIdConfigError(ValueError):
    pass


def validate_broker_id(broker_id: int, generation_enabled: bool, reserved_broker_max_id: int) -> None:
    """KafkaConfig.validateValues' broker.id rules, with Kafka's messages."""
    if generation_enabled:
        if not -1 <= broker_id <= reserved_broker_max_id:
            raise BrokerIdConfigError(
                "broker.id must be greater than or equal to -1 and not greater than reserved.broker.max.id"
            )
    elif broker_id < 0:
        raise BrokerIdConfigError("broker.id must be greater than or equal to 0")


async def resolve_broker_id(
    zk: KafkaZkClient,
    configured: int,
    recorded: int | None,
    *,
    generation_enabled: bool = True,
    reserved_broker_max_id: int = 1000,
) -> int:
    """The broker id to run as: configured, recorded in meta.properties, or generated."""
    validate_broker_id(configured, generation_enabled, reserved_broker_max_id)
    if configured >= 0:
        return configured
    if recorded is not None:
        return recorded
    if generation_enabled:
        return await zk.generate_broker_id(reserved_broker_max_id)
    # Kafka interpolates the flag's value here, not its name.
    raise BrokerIdConfigError(f"No broker ID found, and {str(generation_enabled).lower()} is disabled.")
