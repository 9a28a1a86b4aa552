"""Each client's transactional initialisation against an embedded broker (confluent-kafka's
``init_transactions()``, kafka-python's, aiokafka's ``start()`` with a transactional id):
FindCoordinator with the transaction key type creates ``__transaction_state`` and names this
broker, InitProducerId hands out the producer id and epoch, and a second producer with the same
transactional id bumps the epoch (the first is fenced). What the broker recorded is read with
DescribeTransactions."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from broker.embedding import EmbeddedBroker, embedded
from compat_tests.clients.raw import read_frame
from protocol import api as papi
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest

COORDINATOR_LOAD_IN_PROGRESS = 14


@pytest.fixture(scope="module")
def running() -> Iterator[EmbeddedBroker]:
    with embedded({"transaction.state.log.num.partitions": 3}) as b:
        yield b


def describe(b: EmbeddedBroker, transactional_id: str) -> tuple[int, str, int, int]:
    """DescribeTransactions, retried as a client does while the partition loads after a start."""
    deadline = time.monotonic() + 10
    with socket.create_connection((b.host, b.port), timeout=10) as sock:
        for correlation_id in itertools.count(1):
            request = DescribeTransactionsRequest([transactional_id])
            sock.sendall(papi.encode_request(request, 0, correlation_id))
            _, body = papi.decode_response(read_frame(sock), 65, 0)
            (state,) = body.transaction_states
            if state.error_code != COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    return state.error_code, state.transaction_state, state.producer_id, state.producer_epoch


def init_confluent(bootstrap: str, transactional_id: str) -> None:
    from confluent_kafka import Producer

    Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id}).init_transactions(30)


def init_kafka_python(bootstrap: str, transactional_id: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    try:
        producer.init_transactions()
    finally:
        producer.close(timeout=5)


def init_aiokafka(bootstrap: str, transactional_id: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
        await asyncio.wait_for(producer.start(), 30)  # initialises the transactional producer
        await producer.stop()

    asyncio.run(main())


CLIENTS: dict[str, Callable[[str, str], None]] = {
    "confluent-kafka": init_confluent,
    "kafka-python": init_kafka_python,
    "aiokafka": init_aiokafka,
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_init_transactions_succeeds_and_a_second_producer_bumps_the_epoch(
    running: EmbeddedBroker, client: str
) -> None:
    transactional_id = f"compat-tx-{client}"
    init = CLIENTS[client]
    init(running.bootstrap_servers, transactional_id)
    error, state, producer_id, epoch = describe(running, transactional_id)
    assert (error, state, epoch) == (0, "Empty", 0) and producer_id >= 0
    init(running.bootstrap_servers, transactional_id)
    assert describe(running, transactional_id) == (0, "Empty", producer_id, 1)


def test_the_state_survives_a_restart_and_a_kill() -> None:
    """The embedded broker reloads ``__transaction_state`` at start: the id keeps its producer
    id and the next initialisation bumps the epoch again."""
    with embedded({"transaction.state.log.num.partitions": 2}) as b:
        init_confluent(b.bootstrap_servers, "restarted")
        _, _, producer_id, _ = describe(b, "restarted")
        b.restart()
        assert describe(b, "restarted") == (0, "Empty", producer_id, 0)
        init_confluent(b.bootstrap_servers, "restarted")
        b.kill()
        b.start()
        assert describe(b, "restarted") == (0, "Empty", producer_id, 1)
