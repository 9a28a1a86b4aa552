"""Transactions with every stock client that has a transactional API (issue 14), on one broker.

For confluent-kafka, kafka-python, aiokafka and kafkajs, each with its own producer and consumer:

- committed and aborted transactions: read_committed shows the committed records only, in order;
  read_uncommitted shows the aborted ones too;
- a zombie: a second producer with the same transactional id fences the first, whose open
  transaction is aborted and whose next send or commit fails with a fencing error;
- a transaction left open past its ``transaction.timeout.ms`` is aborted by the broker (its
  cleanup interval is shortened here), after which read_committed moves past it.

And OffsetFetch with ``require_stable`` while offsets sent by ``send_offsets_to_transaction`` are
pending: UNSTABLE_OFFSET_COMMIT (raw request), confluent-kafka's ``committed()`` waits, and the
offsets appear on COMMIT and vanish on ABORT.

Every read ends at a non-transactional "end" record written after the scenario, so a read that
stops there has seen everything before it: nothing can hide behind a timeout.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.tools import require_kafkajs
from compat_tests.harness import BrokerProcess
from compat_tests.txn_drivers import DRIVERS, Txn, TxnDriver, release_abandoned
from compat_tests.txn_raw import (
    TRANSACTION_KEY,
    UNSTABLE_OFFSET_COMMIT,
    broker_address,
    find_coordinator,
    offset_fetch_stable,
)

#: The producers' timeout in the timeout test, and how often the broker looks for expired ones.
SHORT_TXN_TIMEOUT_MS = 2000
CLEANUP_INTERVAL_MS = 200


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data: Path = tmp_path_factory.mktemp("transactions") / "data"
    proc = BrokerProcess(
        data, {"transaction.abort.timed.out.transaction.cleanup.interval.ms": str(CLEANUP_INTERVAL_MS)}
    ).start()
    try:
        yield proc
    finally:
        alive = proc.alive()
        proc.kill() if not alive else proc.stop()
        assert alive, f"the broker died during the transaction tests:\n{proc.log_tail()}"


@pytest.fixture(autouse=True)
def _release_abandoned_producers() -> Iterator[None]:
    """The producers a test left with an open transaction stop when it ends, broker still up."""
    yield
    left = release_abandoned()
    assert not left, f"producer threads outlive the test: {left}"


@pytest.fixture(params=DRIVERS, ids=[d.name for d in DRIVERS])
def driver(request: pytest.FixtureRequest) -> TxnDriver:
    chosen: TxnDriver = request.param
    if chosen.name == "kafkajs":
        require_kafkajs()
    return chosen


def _values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


def _write_end(bootstrap: str, topic: str) -> bytes:
    """A plain (non-transactional) record after the scenario: the reads stop at it."""
    from confluent_kafka import Producer

    end = f"end-{uuid.uuid4().hex[:6]}".encode()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "acks": "all"})
    producer.produce(topic, value=end, partition=0)
    assert producer.flush(30) == 0, "the end record was not delivered"
    return end


def _txn_id(driver: TxnDriver) -> str:
    return f"txn-{driver.name}-{uuid.uuid4().hex[:8]}"


def test_the_broker_coordinates_transactional_ids(txn_broker: BrokerProcess) -> None:
    error, node = find_coordinator(txn_broker.bootstrap, "any-transactional-id", TRANSACTION_KEY)
    assert error == 0, error
    assert broker_address(txn_broker.bootstrap, node) == txn_broker.bootstrap


def test_committed_and_aborted_transactions(txn_broker: BrokerProcess, driver: TxnDriver) -> None:
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("txn"), partitions=1)
    first, aborted, second = _values("c1", 5), _values("ab", 5), _values("c2", 5)
    driver.run(
        bootstrap,
        topic,
        _txn_id(driver),
        [Txn(first, "commit"), Txn(aborted, "abort"), Txn(second, "commit")],
    )
    end = _write_end(bootstrap, topic)

    assert driver.read(bootstrap, topic, "read_committed", end) == [*first, *second, end]
    assert driver.read(bootstrap, topic, "read_uncommitted", end) == [*first, *aborted, *second, end]


def test_a_zombie_producer_is_fenced(txn_broker: BrokerProcess, driver: TxnDriver) -> None:
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("txn-zombie"), partitions=1)
    zombie, successor = _values("zombie", 3), _values("successor", 3)

    error = driver.fence(bootstrap, topic, _txn_id(driver), zombie, successor)
    assert error, "the zombie producer's send and commit succeeded after its successor's InitProducerId"
    assert re.search(r"fenc|epoch", error, re.IGNORECASE), f"not a fencing error: {error}"

    end = _write_end(bootstrap, topic)
    # The successor's InitProducerId aborted the zombie's open transaction.
    assert driver.read(bootstrap, topic, "read_committed", end) == [*successor, end]
    everything = driver.read(bootstrap, topic, "read_uncommitted", end)
    assert everything[: len(zombie)] == zombie and everything[-1] == end
    assert [v for v in everything if v.startswith(b"zombie")] == zombie, (
        "a fenced producer's send was written"
    )
    assert [v for v in everything if v.startswith(b"successor")] == successor


def test_a_transaction_left_open_times_out_and_is_aborted(
    txn_broker: BrokerProcess, driver: TxnDriver
) -> None:
    bootstrap = txn_broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("txn-timeout"), partitions=1)
    committed, left_open = _values("done", 3), _values("open", 4)
    driver.run(
        bootstrap,
        topic,
        _txn_id(driver),
        [Txn(committed, "commit"), Txn(left_open, "open")],
        timeout_ms=SHORT_TXN_TIMEOUT_MS,
    )
    end = _write_end(bootstrap, topic)

    # read_committed cannot pass the open transaction (the LSO stays at its first record) until the
    # broker aborts it; then it reads on to the end record, without the aborted ones.
    assert driver.read(bootstrap, topic, "read_committed", end) == [*committed, end]
    assert driver.read(bootstrap, topic, "read_uncommitted", end) == [*committed, *left_open, end]


def test_offset_fetch_require_stable_while_transactional_offsets_are_pending(
    txn_broker: BrokerProcess,
) -> None:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    bootstrap = txn_broker.bootstrap
    source = create_topic(bootstrap, unique_topic("txn-src"), partitions=1)
    sink = create_topic(bootstrap, unique_topic("txn-sink"), partitions=1)
    group = f"txn-group-{uuid.uuid4().hex[:8]}"
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    # librdkafka's default isolation.level is read_committed, so its OffsetFetch requires stable offsets.
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"txn-offsets-{group}"})
    try:
        producer.init_transactions(30)

        def send_offsets(offset: int) -> None:
            producer.begin_transaction()
            producer.produce(sink, value=f"for-{offset}".encode(), partition=0)
            producer.send_offsets_to_transaction(
                [TopicPartition(source, 0, offset)], member.consumer_group_metadata(), 30
            )

        send_offsets(3)
        assert offset_fetch_stable(bootstrap, group, source, [0])[0][0] == UNSTABLE_OFFSET_COMMIT
        with pytest.raises(KafkaException):
            checker.committed([TopicPartition(source, 0)], timeout=2)
        producer.commit_transaction(30)
        assert offset_fetch_stable(bootstrap, group, source, [0]) == {0: (0, 3)}
        assert checker.committed([TopicPartition(source, 0)], timeout=15)[0].offset == 3

        send_offsets(7)
        assert offset_fetch_stable(bootstrap, group, source, [0])[0][0] == UNSTABLE_OFFSET_COMMIT
        producer.abort_transaction(30)
        assert offset_fetch_stable(bootstrap, group, source, [0]) == {0: (0, 3)}
        assert checker.committed([TopicPartition(source, 0)], timeout=15)[0].offset == 3
    finally:
        member.close()
        checker.close()
