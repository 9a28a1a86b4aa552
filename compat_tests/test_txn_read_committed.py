"""Stock consumers with ``isolation.level=read_committed`` against transactions written by hand.

The transaction coordinator only hands out the producer ids (InitProducerId) and holds the
partition in each transaction (AddPartitionsToTxn), which the broker's KIP-890 verification
requires before a transactional batch; the batches go in with Produce and their ends with
WriteTxnMarkers, as a coordinator sends them, so the log's order is fixed. It then holds, in this
order: A's records, B's, A's again, a plain record, A's ABORT, B's again, B's COMMIT, and C's
record in a transaction still open. A read_committed consumer must skip A's records (the fetch
lists A as aborted), deliver B's and the plain one, and stop before C's (the last stable
offset); once C commits, C's record follows. read_uncommitted sees everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from broker.network.client import BrokerConnection, ClientConfig
from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.harness import BrokerProcess
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.messages.write_txn_markers_request import (
    WritableTxnMarker,
    WritableTxnMarkerTopic,
    WriteTxnMarkersRequest,
)
from protocol.records import Record, build_batch

READ_TIMEOUT = 30.0
#: The plain (idempotent, non-transactional) producer's id, far from those the coordinator hands out.
PLAIN = 1_000_000_000
CLIENT = ClientConfig(client_id="txn-writer", request_timeout_ms=10_000)
COMMITTED_BEFORE_C = [b"b0", b"p0", b"b1"]
EVERYTHING = [b"a0", b"a1", b"b0", b"a2", b"p0", b"b1", b"c0"]


Step = tuple[object, int]


async def _send(port: int, requests: list[Step]) -> None:
    conn = await BrokerConnection.open(0, "127.0.0.1", port, CLIENT)
    try:
        for request, version in requests:
            response = (await conn.request(request, version=version)).body  # type: ignore[arg-type]
            if isinstance(request, ProduceRequest):
                codes = [p.error_code for t in response.responses for p in t.partition_responses]
            elif isinstance(request, AddPartitionsToTxnRequest):
                codes = [
                    p.partition_error_code
                    for t in response.results_by_topic_v3_and_below
                    for p in t.results_by_partition
                ]
            else:
                codes = [p.error_code for m in response.markers for t in m.topics for p in t.partitions]
            assert codes == [0], (request, response)
    finally:
        conn.close()
        await conn.wait_closed()


@dataclass(frozen=True)
class Producer:
    transactional_id: str
    producer_id: int
    epoch: int


async def _init_producers(port: int, topic: str, names: list[str]) -> list[Producer]:
    """A producer id per transactional id from the coordinator (retried while it loads), and
    partition 0 of ``topic`` added to each one's transaction."""
    conn = await BrokerConnection.open(0, "127.0.0.1", port, CLIENT)
    producers = []
    try:
        for name in names:
            tid = f"tx-{topic}-{name}"
            await conn.request(FindCoordinatorRequest(key=tid, key_type=1), version=3)
            deadline = time.monotonic() + READ_TIMEOUT
            while True:
                init = (await conn.request(InitProducerIdRequest(tid, 600_000), version=4)).body
                if init.error_code == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)  # the coordinator loads its partition: retry as clients do
            assert init.error_code == 0, init
            producers.append(Producer(tid, init.producer_id, init.producer_epoch))
    finally:
        conn.close()
        await conn.wait_closed()
    return producers


def _add(topic: str, producer: Producer) -> Step:
    request = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=producer.transactional_id,
        v3_and_below_producer_id=producer.producer_id,
        v3_and_below_producer_epoch=producer.epoch,
        v3_and_below_topics=[AddPartitionsToTxnTopic(topic, [0])],
    )
    return request, 3


def _data(topic: str, producer: Producer | None, seq: int, values: list[bytes]) -> Step:
    """A transactional batch of ``producer``, or a plain idempotent one when it is None."""
    batch = build_batch(
        [Record(i, 0, b"k", v) for i, v in enumerate(values)],
        base_timestamp=int(time.time() * 1000),
        producer_id=PLAIN if producer is None else producer.producer_id,
        producer_epoch=0 if producer is None else producer.epoch,
        base_sequence=seq,
        transactional=producer is not None,
    )
    request = ProduceRequest(
        transactional_id=None if producer is None else producer.transactional_id,
        acks=-1,
        timeout_ms=10_000,
        topic_data=[TopicProduceData(topic, [PartitionProduceData(0, batch)])],
    )
    return request, 9


def _end(topic: str, producer: Producer, committed: bool) -> Step:
    marker = WritableTxnMarker(
        producer_id=producer.producer_id,
        producer_epoch=producer.epoch,
        transaction_result=committed,
        topics=[WritableTxnMarkerTopic(topic, [0])],
        coordinator_epoch=0,
    )
    return WriteTxnMarkersRequest(markers=[marker]), 1


@dataclass
class Written:
    broker: BrokerProcess
    topic: str
    c: Producer

    def commit_c(self) -> None:
        asyncio.run(_send(self.broker.port, [_end(self.topic, self.c, committed=True)]))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("txn") / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


def write(broker: BrokerProcess) -> Written:
    topic = create_topic(broker.bootstrap, unique_topic("txn"), partitions=1)
    a, b, c = asyncio.run(_init_producers(broker.port, topic, ["a", "b", "c"]))
    steps = [
        _add(topic, a),
        _add(topic, b),
        _add(topic, c),
        _data(topic, a, 0, [b"a0", b"a1"]),
        _data(topic, b, 0, [b"b0"]),
        _data(topic, a, 2, [b"a2"]),
        _data(topic, None, 0, [b"p0"]),
        _end(topic, a, committed=False),
        _data(topic, b, 1, [b"b1"]),
        _end(topic, b, committed=True),
        _data(topic, c, 0, [b"c0"]),
    ]
    asyncio.run(_send(broker.port, steps))
    return Written(broker, topic, c)


Poll = Callable[[], list[bytes]]


def read_until(poll: Poll, expected: list[bytes], what: str) -> list[bytes]:
    """Poll until ``len(expected)`` values arrived (or the deadline): the values, in order."""
    got: list[bytes] = []
    deadline = time.monotonic() + READ_TIMEOUT
    while len(got) < len(expected):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: got only {got} of {expected}")
        got.extend(poll())
    return got


def confluent(bootstrap: str, topic: str, isolation: str) -> tuple[Poll, Callable[[], None]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"txn-{topic}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    def poll() -> list[bytes]:
        out = []
        for m in consumer.consume(100, 0.2):
            assert not m.error(), m.error()
            out.append(m.value())
        return out

    return poll, consumer.close


def kafka_python(bootstrap: str, topic: str, isolation: str) -> tuple[Poll, Callable[[], None]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, isolation_level=isolation
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)

    def poll() -> list[bytes]:
        return [r.value for rs in consumer.poll(timeout_ms=200).values() for r in rs]

    return poll, consumer.close


def aiokafka(bootstrap: str, topic: str, isolation: str) -> tuple[Poll, Callable[[], None]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    loop = asyncio.new_event_loop()
    tp = TopicPartition(topic, 0)

    async def start() -> AIOKafkaConsumer:
        # Built on its loop: aiokafka binds the running loop at construction.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            isolation_level=isolation,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        return consumer

    consumer = loop.run_until_complete(start())

    def poll() -> list[bytes]:
        batches = loop.run_until_complete(consumer.getmany(tp, timeout_ms=200))
        return [r.value for rs in batches.values() for r in rs]

    def close() -> None:
        loop.run_until_complete(consumer.stop())
        loop.close()

    return poll, close


CONSUMERS = {"confluent-kafka": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka}


@pytest.mark.parametrize("client", list(CONSUMERS))
def test_read_committed_skips_aborted_records_and_stops_at_the_open_transaction(
    broker: BrokerProcess, client: str
) -> None:
    written = write(broker)
    poll, close = CONSUMERS[client](broker.bootstrap, written.topic, "read_committed")
    try:
        assert read_until(poll, COMMITTED_BEFORE_C, client) == COMMITTED_BEFORE_C
        # C's record is held back by the LSO until its commit: it comes next, nothing else first.
        written.commit_c()
        assert read_until(poll, [b"c0"], client) == [b"c0"]
    finally:
        close()


@pytest.mark.parametrize("client", list(CONSUMERS))
def test_read_uncommitted_sees_every_record(broker: BrokerProcess, client: str) -> None:
    written = write(broker)
    poll, close = CONSUMERS[client](broker.bootstrap, written.topic, "read_uncommitted")
    try:
        assert read_until(poll, EVERYTHING, client) == EVERYTHING
    finally:
        close()
