"""confluent-kafka's ``init_transactions()`` against an embedded broker: FindCoordinator with
the transaction key type creates ``__transaction_state`` and names this broker, InitProducerId
hands out the producer id and epoch, and a second producer with the same transactional id bumps
the epoch (the first is fenced). What the broker recorded is read with DescribeTransactions."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from broker.embedding import EmbeddedBroker, embedded
from compat_tests.clients.raw import read_frame
from protocol import api as papi
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest

confluent_kafka = pytest.importorskip("confluent_kafka")


@pytest.fixture(scope="module")
def running() -> Iterator[EmbeddedBroker]:
    with embedded({"transaction.state.log.num.partitions": 3}) as b:
        yield b


def describe(b: EmbeddedBroker, transactional_id: str) -> tuple[int, str, int, int]:
    with socket.create_connection((b.host, b.port), timeout=10) as sock:
        sock.sendall(papi.encode_request(DescribeTransactionsRequest([transactional_id]), 0, 1))
        _, body = papi.decode_response(read_frame(sock), 65, 0)
    (state,) = body.transaction_states
    return state.error_code, state.transaction_state, state.producer_id, state.producer_epoch


def producer(b: EmbeddedBroker, transactional_id: str) -> object:
    return confluent_kafka.Producer(
        {
            "bootstrap.servers": b.bootstrap_servers,
            "transactional.id": transactional_id,
            "socket.timeout.ms": 10000,
        }
    )


def test_init_transactions_succeeds_and_a_second_producer_bumps_the_epoch(running: EmbeddedBroker) -> None:
    first = producer(running, "compat-tx")
    first.init_transactions(30)  # type: ignore[attr-defined]
    error, state, producer_id, epoch = describe(running, "compat-tx")
    assert (error, state, epoch) == (0, "Empty", 0) and producer_id >= 0
    second = producer(running, "compat-tx")
    second.init_transactions(30)  # type: ignore[attr-defined]
    assert describe(running, "compat-tx") == (0, "Empty", producer_id, 1)
