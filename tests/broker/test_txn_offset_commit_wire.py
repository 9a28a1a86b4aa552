"""TxnOffsetCommit over the wire against a real embedded broker: the producer id comes from
InitProducerId, the offsets stay invisible (and ``require_stable`` answers
UNSTABLE_OFFSET_COMMIT) until the transaction's marker, then show (COMMIT) or not (ABORT).

The marker itself is written by the partition side (WriteTxnMarkers, on another branch); here
it is emulated by calling ``replica_manager.notify_txn_marker`` on the broker's loop, which is
what that side does once a marker is durably appended on the group's partition."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from broker.admin_client import KafkaAdmin
from broker.embedding import EmbeddedBroker, embedded
from broker.group import OFFSETS_TOPIC, partition_for
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

TIMEOUT = 20.0
OFFSETS_PARTITIONS = 3


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedBroker]:
    # The markers are emulated, with no AddOffsetsToTxn: KIP-890 verification is off here
    # (test_txn_verification.py covers it on).
    with embedded(
        {
            "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
            "transaction.partition.verification.enable": False,
        }
    ) as b:
        yield b


@pytest.fixture(scope="module")
def admin(node: EmbeddedBroker) -> Iterator[KafkaAdmin]:
    with KafkaAdmin(node.bootstrap_servers, timeout=TIMEOUT) as client:
        client.create_topic("input", partitions=2)
        found = client._call(FindCoordinatorRequest(key="any"), 3)  # creates __consumer_offsets
        assert found.error_code == ErrorCode.NONE
        yield client


def producer(admin: KafkaAdmin) -> tuple[int, int]:
    response = admin._call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000), 4)
    assert response.error_code == ErrorCode.NONE
    return response.producer_id, response.producer_epoch


def txn_commit(admin: KafkaAdmin, group: str, pid: int, epoch: int, offsets: dict[int, int]) -> list[int]:
    request = TxnOffsetCommitRequest(
        transactional_id="tx-" + group,
        group_id=group,
        producer_id=pid,
        producer_epoch=epoch,
        topics=[
            TxnOffsetCommitRequestTopic(
                "input",
                [TxnOffsetCommitRequestPartition(p, o, committed_metadata="m") for p, o in offsets.items()],
            )
        ],
    )
    response = admin._call(request, 4)
    return [p.error_code for t in response.topics for p in t.partitions]


def fetched(admin: KafkaAdmin, group: str, *, stable: bool) -> list[tuple[int, int]]:
    """(offset, error) of partitions 0 and 1 of "input"."""
    request = OffsetFetchRequest(
        group_id=group, topics=[OffsetFetchRequestTopic("input", [0, 1])], require_stable=stable
    )
    response: Any = admin._call(request, 7)
    assert response.error_code == ErrorCode.NONE
    return [(p.committed_offset, p.error_code) for p in response.topics[0].partitions]


def end_transaction(node: EmbeddedBroker, group: str, pid: int, epoch: int, committed: bool) -> None:
    tp = TopicPartition(OFFSETS_TOPIC, partition_for(group, OFFSETS_PARTITIONS))

    def notify(broker: Any) -> None:
        replica = broker.replica_manager.get(tp)
        broker.replica_manager.notify_txn_marker(tp, pid, epoch, committed, replica.log.log_end_offset)

    node.call(notify, TIMEOUT)


UNSTABLE = ErrorCode.UNSTABLE_OFFSET_COMMIT


@pytest.mark.parametrize("committed", [True, False])
def test_offsets_show_after_commit_and_vanish_after_abort(
    node: EmbeddedBroker, admin: KafkaAdmin, committed: bool
) -> None:
    group = f"wire-{committed}"
    pid, epoch = producer(admin)
    assert txn_commit(admin, group, pid, epoch, {0: 11, 1: 12}) == [0, 0]
    assert fetched(admin, group, stable=False) == [(-1, 0), (-1, 0)]
    assert fetched(admin, group, stable=True) == [(-1, UNSTABLE), (-1, UNSTABLE)]
    end_transaction(node, group, pid, epoch, committed)
    expected = [(11, 0), (12, 0)] if committed else [(-1, 0), (-1, 0)]
    assert fetched(admin, group, stable=True) == expected
    assert fetched(admin, group, stable=False) == expected


def test_a_later_transaction_of_the_same_group_commits_over_the_first(
    node: EmbeddedBroker, admin: KafkaAdmin
) -> None:
    group = "wire-twice"
    pid, epoch = producer(admin)
    assert txn_commit(admin, group, pid, epoch, {0: 5}) == [0]
    end_transaction(node, group, pid, epoch, True)
    assert txn_commit(admin, group, pid, epoch, {0: 9}) == [0]
    assert fetched(admin, group, stable=False)[0] == (5, 0)
    end_transaction(node, group, pid, epoch, True)
    assert fetched(admin, group, stable=True)[0] == (9, 0)


def test_a_read_committed_consumer_waits_for_the_marker(node: EmbeddedBroker, admin: KafkaAdmin) -> None:
    """librdkafka asks for stable offsets under read_committed and retries on
    UNSTABLE_OFFSET_COMMIT: ``committed()`` returns the transaction's offset once it commits."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as ClientTopicPartition

    group = "wire-librdkafka"
    pid, epoch = producer(admin)
    assert txn_commit(admin, group, pid, epoch, {0: 21}) == [0]
    answered_unstable = threading.Event()

    def watch_fetches(broker: Any) -> None:
        offsets = broker.group_coordinator.offsets
        plain = offsets.fetch

        def fetch(group_id: str, partitions: Any, require_stable: bool) -> Any:
            error, entries = plain(group_id, partitions, require_stable)
            if group_id == group and any(f.error == UNSTABLE for _, f in entries):
                answered_unstable.set()
            return error, entries

        offsets.fetch = fetch

    node.call(watch_fetches, TIMEOUT)
    consumer = Consumer(
        {"bootstrap.servers": node.bootstrap_servers, "group.id": group, "isolation.level": "read_committed"}
    )
    result: list[Any] = []
    asking = threading.Thread(
        target=lambda: result.append(consumer.committed([ClientTopicPartition("input", 0)], timeout=TIMEOUT))
    )
    try:
        asking.start()
        assert answered_unstable.wait(TIMEOUT), "the consumer never asked for stable offsets"
        end_transaction(node, group, pid, epoch, True)
        asking.join(TIMEOUT)
        assert not asking.is_alive()
        ((tp,),) = result
        assert (tp.topic, tp.partition, tp.offset) == ("input", 0, 21)
    finally:
        node.call(lambda broker: vars(broker.group_coordinator.offsets).pop("fetch", None), TIMEOUT)
        consumer.close()
