"""broker.id: configured, recorded, or generated from /brokers/seqid above reserved.broker.max.id."""

from __future__ import annotations

import pytest

from broker.cluster.zk.broker_id import BrokerIdConfigError, resolve_broker_id, validate_broker_id
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from tests.broker.zk.conftest import run


def test_validation_messages() -> None:
    validate_broker_id(-1, True, 1000)
    validate_broker_id(1000, True, 1000)
    with pytest.raises(BrokerIdConfigError, match=r"not greater than reserved\.broker\.max\.id"):
        validate_broker_id(1001, True, 1000)
    with pytest.raises(BrokerIdConfigError, match="greater than or equal to 0"):
        validate_broker_id(-1, False, 1000)


def test_resolution_order(connect: str) -> None:
    async def body() -> None:
        zk = await KafkaZkClient.connect(ZkSettings(connect))
        try:
            assert await resolve_broker_id(zk, 5, 7) == 5
            assert await resolve_broker_id(zk, -1, 7) == 7
            assert await resolve_broker_id(zk, -1, None, reserved_broker_max_id=500) == 501
            assert await resolve_broker_id(zk, -1, None) == 1002  # the seqid moved on
            with pytest.raises(BrokerIdConfigError):
                await resolve_broker_id(zk, -1, None, generation_enabled=False)
        finally:
            await zk.close()

    run(body())
