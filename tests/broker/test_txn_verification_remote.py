"""KIP-890 verification when the transaction coordinator is another broker (cluster mode): the
leader asks it with AddPartitionsToTxn v4 ``verify_only`` over the inter-broker client, batched
per node, and maps its answers as Kafka 3.9's AddPartitionsToTxnManager and ReplicaManager do.
Broker 2 is a scripted coordinator on 127.0.0.1 (tests/broker/fake_server.py); broker 1 is a
real Brook broker in cluster mode that leads the data partitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.app import Broker
from broker.group.hashing import partition_for
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest
from protocol.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch
from tests.broker.conftest import Caller
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)
from tests.broker.fake_server import FakeConn, FakeServer, run
from tests.broker.txn_kit import acall

TXN = "__transaction_state"
COUNT = 3
PID = 4000
E = ErrorCode
#: The coordinator's answer per (transactional id, partition); None drops the connection.
Answer = Callable[[str, TopicPartition], ErrorCode]


class FakeCoordinator:
    """Broker 2: answers AddPartitionsToTxn as ``answer`` says, after ``release`` is set."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[int, AddPartitionsToTxnRequest]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.received = asyncio.Event()
        self.drop = False
        self.server = FakeServer(self._script)

    async def _script(self, conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            assert request.api.api_key == 24, request
            body: AddPartitionsToTxnRequest = request.body
            self.requests.append((request.version, body))
            self.received.set()
            await self.release.wait()
            if self.drop:
                conn.close()
                return
            results = [
                AddPartitionsToTxnResult(
                    txn.transactional_id,
                    [
                        AddPartitionsToTxnTopicResult(
                            topic.name,
                            [
                                AddPartitionsToTxnPartitionResult(
                                    p, self.answer(txn.transactional_id, TopicPartition(topic.name, p))
                                )
                                for p in topic.partitions
                            ],
                        )
                        for topic in txn.topics
                    ],
                )
                for txn in body.transactions
            ]
            conn.answer(request, AddPartitionsToTxnResponse(results_by_transaction=results))


def batch(seq: int, *, pid: int = PID, epoch: int = 0) -> bytes:
    return build_batch(
        [Record(0, 0, b"k", b"v")],
        base_timestamp=int(time.time() * 1000),
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=True,
    )


def produce(tid: str, parts: dict[int, bytes]) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=tid,
        acks=1,
        timeout_ms=5_000,
        topic_data=[TopicProduceData("t", [PartitionProduceData(p, data) for p, data in parts.items()])],
    )


def errors_of(response: Any) -> dict[int, int]:
    return {p.index: p.error_code for t in response.responses for p in t.partition_responses}


async def setup(broker: Broker, coordinator_port: int) -> Caller:
    """Broker 1 leads t-0 and t-1; broker 2 (the fake) leads every __transaction_state partition."""
    c = Caller(broker)
    nodes = [Node(LOCAL, "127.0.0.1", 1), Node(OTHER, "127.0.0.1", coordinator_port)]
    states = [PState(TXN, i, OTHER, 1, [OTHER]) for i in range(COUNT)]
    data = [PState("t", i, LOCAL, 0, [LOCAL]) for i in range(2)]
    assert (await acall(c, update_metadata(8, nodes, [*states, *data]), 8)).error_code == 0
    assert (await acall(c, leader_and_isr(7, data), 7)).error_code == 0
    return c


def scenario_run(
    tmp_path: Path, answer: Answer, body: Callable[[Caller, FakeCoordinator, Broker], Any]
) -> None:
    broker = cluster_broker(tmp_path / "b1", **{"transaction.state.log.num.partitions": str(COUNT)})

    async def main() -> None:
        coordinator = FakeCoordinator(answer)
        async with coordinator.server:
            c = await setup(broker, coordinator.server.port)
            try:
                await body(c, coordinator, broker)
            finally:
                if broker._txn_verifier is not None:
                    await broker._txn_verifier.close()

    try:
        run(main())
    finally:
        broker.log_manager.close()


def test_the_remote_coordinator_is_asked_verify_only_and_its_answers_apply(tmp_path: Path) -> None:
    def answer(tid: str, tp: TopicPartition) -> ErrorCode:
        return E.NONE if tp.partition == 0 else E.TRANSACTION_ABORTABLE

    async def body(c: Caller, coordinator: FakeCoordinator, broker: Broker) -> None:
        response = await acall(c, produce("tx", {0: batch(0), 1: batch(0)}), 9)
        # t-0 is in the transaction: appended; t-1 is not: INVALID_TXN_STATE for a v9 client.
        assert errors_of(response) == {0: E.NONE, 1: E.INVALID_TXN_STATE}
        ((version, request),) = coordinator.requests
        assert version >= 4
        ((txn,),) = [request.transactions]
        assert (txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.verify_only) == (
            "tx",
            PID,
            0,
            True,
        )
        assert sorted((t.name, p) for t in txn.topics for p in t.partitions) == [("t", 0), ("t", 1)]
        assert broker.replica_manager.get(TopicPartition("t", 0)).log.log_end_offset == 1
        assert broker.replica_manager.get(TopicPartition("t", 1)).log.log_end_offset == 0
        # The transaction is open on t-0 now: no more questions for it.
        assert errors_of(await acall(c, produce("tx", {0: batch(1)}), 9)) == {0: E.NONE}
        assert len(coordinator.requests) == 1
        # Produce v11 clients get TRANSACTION_ABORTABLE itself.
        assert errors_of(await acall(c, produce("tx", {1: batch(0)}), 11)) == {1: E.TRANSACTION_ABORTABLE}

    scenario_run(tmp_path, answer, body)


def test_verifications_waiting_for_one_node_go_in_one_request(tmp_path: Path) -> None:
    async def body(c: Caller, coordinator: FakeCoordinator, broker: Broker) -> None:
        coordinator.release.clear()
        first = asyncio.ensure_future(acall(c, produce("tx-a", {0: batch(0, pid=1)}), 9))
        async with asyncio.timeout(10):
            await coordinator.received.wait()  # tx-a's request is in flight: the next ones wait
        queued = [
            asyncio.ensure_future(acall(c, produce(tid, {1: batch(0, pid=pid)}), 9))
            for tid, pid in (("tx-b", 2), ("tx-c", 3))
        ]
        async with asyncio.timeout(10):
            while len(broker.txn_verifier._queued.get(OTHER, {})) < 2:  # both wait for the node
                await asyncio.sleep(0)
        coordinator.release.set()
        answers = await asyncio.gather(first, *queued)
        assert [errors_of(a) for a in answers] == [{0: E.NONE}, {1: E.NONE}, {1: E.NONE}]
        assert [sorted(t.transactional_id for t in r.transactions) for _, r in coordinator.requests] == [
            ["tx-a"],
            ["tx-b", "tx-c"],
        ]

    scenario_run(tmp_path, lambda tid, tp: E.NONE, body)


def test_coordinator_errors_are_mapped_for_produce(tmp_path: Path) -> None:
    mapped = {
        # retriable coordinator errors: NOT_ENOUGH_REPLICAS, which old clients retry
        "not-coordinator": (E.NOT_COORDINATOR, E.NOT_ENOUGH_REPLICAS),
        "loading": (E.COORDINATOR_LOAD_IN_PROGRESS, E.NOT_ENOUGH_REPLICAS),
        "concurrent": (E.CONCURRENT_TRANSACTIONS, E.NOT_ENOUGH_REPLICAS),
        "fenced": (E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH),
        "mapping": (E.INVALID_PRODUCER_ID_MAPPING, E.INVALID_PRODUCER_ID_MAPPING),
    }

    async def body(c: Caller, coordinator: FakeCoordinator, broker: Broker) -> None:
        for tid, (_, expected) in mapped.items():
            response = await acall(c, produce(tid, {0: batch(0)}), 9)
            assert errors_of(response) == {0: expected}, tid
        assert broker.replica_manager.get(TopicPartition("t", 0)).log.log_end_offset == 0
        # A dropped connection is NETWORK_EXCEPTION: NOT_ENOUGH_REPLICAS too.
        coordinator.drop = True
        assert errors_of(await acall(c, produce("not-coordinator", {0: batch(0)}), 9)) == {
            0: E.NOT_ENOUGH_REPLICAS
        }

    scenario_run(tmp_path, lambda tid, tp: mapped[tid][0], body)


def test_a_marker_written_while_the_coordinator_answers_fails_the_append(tmp_path: Path) -> None:
    """KIP-890's guard over the wire: verified, but an ABORT marker for the producer landed on
    the partition meanwhile: the append is refused rather than opening a transaction the
    coordinator has ended."""

    async def body(c: Caller, coordinator: FakeCoordinator, broker: Broker) -> None:
        coordinator.release.clear()
        pending = asyncio.ensure_future(acall(c, produce("tx", {0: batch(0)}), 9))
        async with asyncio.timeout(10):
            await coordinator.received.wait()
        partition = broker.replica_manager.get(TopicPartition("t", 0))
        assert partition.append_txn_marker(PID, 0, 0, committed=False).error == E.NONE
        coordinator.release.set()
        assert errors_of(await pending) == {0: E.INVALID_TXN_STATE}
        assert partition.log.log_end_offset == 1  # the marker only
        # The client's retry verifies afresh and is appended.
        assert errors_of(await acall(c, produce("tx", {0: batch(0)}), 9)) == {0: E.NONE}

    scenario_run(tmp_path, lambda tid, tp: E.NONE, body)


def test_no_alive_coordinator_is_not_enough_replicas(tmp_path: Path) -> None:
    broker = cluster_broker(tmp_path / "b1", **{"transaction.state.log.num.partitions": str(COUNT)})

    async def main() -> None:
        c = Caller(broker)
        nodes = [Node(LOCAL, "127.0.0.1", 1)]  # broker 2 is not alive
        index = partition_for("tx", COUNT)
        states = [PState(TXN, i, OTHER, 1, [OTHER]) for i in range(COUNT)]
        data = PState("t", 0, LOCAL, 0, [LOCAL])
        assert (await acall(c, update_metadata(8, nodes, [*states, data]), 8)).error_code == 0
        assert (await acall(c, leader_and_isr(7, [data]), 7)).error_code == 0
        assert states[index].leader == OTHER
        assert errors_of(await acall(c, produce("tx", {0: batch(0)}), 9)) == {0: E.NOT_ENOUGH_REPLICAS}

    try:
        run(main())
    finally:
        broker.log_manager.close()
