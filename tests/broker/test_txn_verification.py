"""KIP-890 part 1 over the wire against an embedded broker (the coordinator is this broker):
a transactional batch, or a TxnOffsetCommit, for a partition the transaction does not hold is
refused (INVALID_TXN_STATE, TRANSACTION_ABORTABLE for clients that know it) and accepted once
AddPartitionsToTxn / AddOffsetsToTxn put it in; ``transaction.partition.verification.enable``
false turns the check off. The remote coordinator's path is in test_txn_verification_remote.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from broker.admin_client import KafkaAdmin
from broker.embedding import EmbeddedBroker, embedded
from protocol.error_codes import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from protocol.records import Record, build_batch

TIMEOUT = 20.0
SMALL = {"offsets.topic.num.partitions": 3, "transaction.state.log.num.partitions": 3}


def open_admin(node: EmbeddedBroker) -> KafkaAdmin:
    client = KafkaAdmin(node.bootstrap_servers, timeout=TIMEOUT)
    client.create_topic("t", partitions=2)
    found: Any = client._call(FindCoordinatorRequest(key="g"), 3)  # creates __consumer_offsets
    assert found.error_code == ErrorCode.NONE
    return client


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedBroker]:
    with embedded(SMALL) as b:
        yield b


@pytest.fixture(scope="module")
def admin(node: EmbeddedBroker) -> Iterator[KafkaAdmin]:
    with open_admin(node) as client:
        yield client


def init(admin: KafkaAdmin, tid: str) -> tuple[int, int]:
    """InitProducerId as a client does it: FindCoordinator (which creates __transaction_state),
    then retried while the coordinator loads."""
    found: Any = admin._call(FindCoordinatorRequest(key=tid, key_type=1), 3)
    deadline = time.monotonic() + TIMEOUT
    while True:
        response: Any = admin._call(
            InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=60_000), 4
        )
        if response.error_code == ErrorCode.NONE or time.monotonic() > deadline:
            break
        assert ErrorCode(response.error_code).retriable, (found, response)
    assert response.error_code == ErrorCode.NONE
    return response.producer_id, response.producer_epoch


def batch(pid: int, epoch: int, seq: int, *, transactional: bool = True) -> bytes:
    return build_batch(
        [Record(0, 0, b"k", b"v%d" % seq)],
        base_timestamp=int(time.time() * 1000),
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=transactional,
    )


def produce(
    admin: KafkaAdmin, tid: str, parts: dict[int, bytes], version: int = 9
) -> list[tuple[int, int, str | None]]:
    """(partition, error, message) of a Produce of ``parts`` (partition -> batch) to topic t."""
    request = ProduceRequest(
        transactional_id=tid,
        acks=-1,
        timeout_ms=5_000,
        topic_data=[TopicProduceData("t", [PartitionProduceData(p, data) for p, data in parts.items()])],
    )
    response: Any = admin._call(request, version)
    return [
        (p.index, p.error_code, p.error_message) for t in response.responses for p in t.partition_responses
    ]


def state_of(admin: KafkaAdmin, tid: str) -> str:
    response: Any = admin._call(DescribeTransactionsRequest([tid]), 0)
    (state,) = response.transaction_states
    assert state.error_code == ErrorCode.NONE
    return str(state.transaction_state)


def add_partitions(admin: KafkaAdmin, tid: str, pid: int, epoch: int, partitions: list[int]) -> None:
    request = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=tid,
        v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[AddPartitionsToTxnTopic("t", partitions)],
    )
    response: Any = admin._call(request, 3)
    errors = [
        p.partition_error_code for t in response.results_by_topic_v3_and_below for p in t.results_by_partition
    ]
    assert errors == [0] * len(partitions)


def txn_offset_commit(
    admin: KafkaAdmin, tid: str, group: str, pid: int, epoch: int, version: int
) -> list[int]:
    request = TxnOffsetCommitRequest(
        transactional_id=tid,
        group_id=group,
        producer_id=pid,
        producer_epoch=epoch,
        topics=[
            TxnOffsetCommitRequestTopic("t", [TxnOffsetCommitRequestPartition(0, 5, committed_metadata="")])
        ],
    )
    response: Any = admin._call(request, version)
    return [p.error_code for t in response.topics for p in t.partitions]


def test_a_transactional_batch_needs_its_partition_in_the_transaction(admin: KafkaAdmin) -> None:
    pid, epoch = init(admin, "tx-produce")
    refused = produce(admin, "tx-produce", {0: batch(pid, epoch, 0)})
    assert refused == [(0, ErrorCode.INVALID_TXN_STATE, "Partition was not added to the transaction")]
    # Produce v11 clients know TRANSACTION_ABORTABLE (KIP-890) and get it as such.
    assert produce(admin, "tx-produce", {0: batch(pid, epoch, 0)}, version=11)[0][1] == (
        ErrorCode.TRANSACTION_ABORTABLE
    )

    add_partitions(admin, "tx-produce", pid, epoch, [0])
    assert produce(admin, "tx-produce", {0: batch(pid, epoch, 0)})[0][1] == ErrorCode.NONE
    # Its transaction is open on the partition now: the next batch needs no question.
    assert produce(admin, "tx-produce", {0: batch(pid, epoch, 1)})[0][1] == ErrorCode.NONE
    # In one request, the partition in the transaction is appended and the other refused.
    answers = produce(admin, "tx-produce", {0: batch(pid, epoch, 2), 1: batch(pid, epoch, 0)})
    assert [(p, e) for p, e, _ in answers] == [(0, ErrorCode.NONE), (1, ErrorCode.INVALID_TXN_STATE)]

    end: Any = admin._call(EndTxnRequest("tx-produce", pid, epoch, True), 3)
    assert end.error_code == ErrorCode.NONE
    # Once the markers are written (the coordinator completed the commit) the transaction is
    # over on the partition: a batch there needs a new AddPartitionsToTxn.
    deadline = time.monotonic() + TIMEOUT
    while state_of(admin, "tx-produce") != "CompleteCommit":
        assert time.monotonic() < deadline, "the commit did not complete"
    error = produce(admin, "tx-produce", {0: batch(pid, epoch, 3)})[0][1]
    assert error == ErrorCode.INVALID_TXN_STATE


def test_a_fenced_producer_gets_invalid_producer_epoch(admin: KafkaAdmin) -> None:
    pid, old_epoch = init(admin, "tx-fenced")
    pid2, new_epoch = init(admin, "tx-fenced")
    assert (pid2, new_epoch) == (pid, old_epoch + 1)
    assert (
        produce(admin, "tx-fenced", {0: batch(pid, old_epoch, 0)})[0][1] == ErrorCode.INVALID_PRODUCER_EPOCH
    )


def test_batches_of_two_producers_in_one_request_are_refused(admin: KafkaAdmin) -> None:
    pid, epoch = init(admin, "tx-two")
    other, other_epoch = init(admin, "tx-two-other")
    answers = produce(admin, "tx-two", {0: batch(pid, epoch, 0), 1: batch(other, other_epoch, 0)})
    assert {e for _, e, _ in answers} == {ErrorCode.INVALID_PRODUCER_ID_MAPPING}


def test_an_idempotent_batch_in_a_transactional_request_is_not_verified(admin: KafkaAdmin) -> None:
    pid, epoch = init(admin, "tx-idem")
    assert produce(admin, "tx-idem", {0: batch(pid, epoch, 0, transactional=False)})[0][1] == ErrorCode.NONE


def test_txn_offset_commit_needs_add_offsets_to_txn(admin: KafkaAdmin) -> None:
    pid, epoch = init(admin, "tx-offsets")
    assert txn_offset_commit(admin, "tx-offsets", "g", pid, epoch, 3) == [ErrorCode.INVALID_TXN_STATE]
    assert txn_offset_commit(admin, "tx-offsets", "g", pid, epoch, 4) == [ErrorCode.TRANSACTION_ABORTABLE]
    added: Any = admin._call(AddOffsetsToTxnRequest("tx-offsets", pid, epoch, "g"), 3)
    assert added.error_code == ErrorCode.NONE
    assert txn_offset_commit(admin, "tx-offsets", "g", pid, epoch, 3) == [ErrorCode.NONE]


def test_verification_off_appends_unverified() -> None:
    with (
        embedded({**SMALL, "transaction.partition.verification.enable": False}) as node,
        open_admin(node) as admin,
    ):
        pid, epoch = init(admin, "tx-off")
        assert produce(admin, "tx-off", {0: batch(pid, epoch, 0)})[0][1] == ErrorCode.NONE
        assert txn_offset_commit(admin, "tx-off", "g", pid, epoch, 3) == [ErrorCode.NONE]
