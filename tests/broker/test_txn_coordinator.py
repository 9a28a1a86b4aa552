"""The transaction coordinator through its handlers, on an in-process embedded broker whose
``__transaction_state`` is real; only the WriteTxnMarkers seam (the partition side's
``ReplicaManager.write_txn_markers``) is a test double. Timers run on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from broker.group.hashing import partition_for
from broker.group.timers import ManualScheduler
from broker.txn import TRANSACTION_STATE_TOPIC
from broker.txn.coordinator import TransactionCoordinator
from broker.txn.state import TransactionMetadata, TxnState
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.list_transactions_request import ListTransactionsRequest
from storage.clock import ManualClock
from tests.broker.conftest import Caller, make_broker
from tests.broker.txn_kit import FakeMarkerWriter, acall

E = ErrorCode
S = TxnState
PARTITIONS = 3
T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)


class Harness:
    def __init__(self, path: Path, **overrides: str) -> None:
        settings = {"transaction.state.log.num.partitions": str(PARTITIONS), **overrides}
        self.path = path
        self.broker = make_broker(path, None, **settings)
        self.writer = FakeMarkerWriter()
        self.scheduler = ManualScheduler(ManualClock(1_000_000))
        self.coordinator = self._coordinator()
        self.c = Caller(self.broker)

    def _coordinator(self) -> TransactionCoordinator:
        coordinator = TransactionCoordinator(self.broker, scheduler=self.scheduler, marker_writer=self.writer)
        self.broker.txn_coordinator = coordinator
        return coordinator

    async def start(self, topics: tuple[str, ...] = ("t",)) -> None:
        self.coordinator.start()
        found = await acall(self.c, FindCoordinatorRequest(key="x", key_type=1), 3)
        assert found.error_code == E.NONE and found.node_id == self.broker.node_id
        await self.idle()
        assert len(self.coordinator.store.owned) == PARTITIONS
        for topic in topics:
            created = await acall(self.c, CreateTopicsRequest(topics=[CreatableTopic(topic, 2, 1)]), 5)
            assert created.topics[0].error_code == E.NONE

    async def restart_coordinator(self) -> None:
        """Unload every partition and load them again (a new coordinator on the same log)."""
        await self.coordinator.stop()
        self.coordinator = self._coordinator()
        self.coordinator.start()
        await self.idle()
        assert len(self.coordinator.store.owned) == PARTITIONS

    async def init(
        self, tid: str, timeout: int = 60000, version: int = 4, pid: int = -1, epoch: int = -1
    ) -> Any:
        request = InitProducerIdRequest(tid, timeout, pid, epoch)
        return await acall(self.c, request, version)

    async def add(
        self, tid: str, pid: int, epoch: int, tps: list[TopicPartition], version: int = 3
    ) -> list[int]:
        by_topic: dict[str, list[int]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        request = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=tid,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(t, p) for t, p in by_topic.items()],
        )
        response = await acall(self.c, request, version)
        return [
            p.partition_error_code
            for t in response.results_by_topic_v3_and_below
            for p in t.results_by_partition
        ]

    async def end(self, tid: str, pid: int, epoch: int, commit: bool, version: int = 3) -> int:
        response = await acall(self.c, EndTxnRequest(tid, pid, epoch, commit), version)
        return int(response.error_code)

    def meta(self, tid: str) -> TransactionMetadata:
        metadata = self.coordinator.store.get(tid).metadata
        assert metadata is not None
        return metadata

    async def idle(self) -> None:
        await asyncio.wait_for(self.coordinator.wait_idle(), 10)

    async def completed(self, tid: str, state: TxnState) -> None:
        await self.idle()
        assert (self.meta(tid).state, self.meta(tid).pending) == (state, False)

    def close(self) -> None:
        self.broker.log_manager.close()


def run(tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], **overrides: str) -> None:
    h = Harness(tmp_path / "data", **overrides)

    async def main() -> None:
        try:
            await scenario(h)
        finally:
            await h.coordinator.stop()

    try:
        asyncio.run(main())
    finally:
        h.close()


def test_commit_writes_markers_then_completes(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        init = await h.init("tx")
        assert (init.error_code, init.producer_epoch) == (E.NONE, 0)
        pid = init.producer_id
        assert await h.add("tx", pid, 0, [T0, T1]) == [E.NONE, E.NONE]
        assert h.meta("tx").state is S.ONGOING
        assert await h.end("tx", pid, 0, True) == E.NONE
        await h.completed("tx", S.COMPLETE_COMMIT)
        epoch = h.coordinator.store.owned[partition_for("tx", PARTITIONS)]
        assert sorted(h.writer.written) == [(T0, pid, 0, True, epoch), (T1, pid, 0, True, epoch)]
        # a retry of the completed commit is answered NONE; an abort now is the wrong state
        assert await h.end("tx", pid, 0, True) == E.NONE
        assert await h.end("tx", pid, 0, False) == E.INVALID_TXN_STATE
        # the next transaction reuses the producer
        assert await h.add("tx", pid, 0, [T1]) == [E.NONE]
        assert await h.end("tx", pid, 0, False) == E.NONE
        await h.completed("tx", S.COMPLETE_ABORT)
        assert h.writer.written[-1][:4] == (T1, pid, 0, False)

    run(tmp_path, scenario)


def test_end_txn_errors(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        assert await h.end("unknown", 1, 0, True) == E.INVALID_PRODUCER_ID_MAPPING
        pid = (await h.init("tx")).producer_id
        assert await h.end("tx", pid, 0, True) == E.INVALID_TXN_STATE  # nothing ongoing (Empty)
        assert await h.end("tx", pid + 1, 0, True) == E.INVALID_PRODUCER_ID_MAPPING
        await h.init("tx")  # epoch 1
        assert await h.end("tx", pid, 0, True, version=2) == E.PRODUCER_FENCED
        assert await h.end("tx", pid, 0, True, version=1) == E.INVALID_PRODUCER_EPOCH
        assert await h.end("", pid, 1, True) == E.INVALID_REQUEST

    run(tmp_path, scenario)


def test_concurrent_end_while_markers_are_pending(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        release = asyncio.Event()
        real = h.writer.__call__

        async def slow(markers: Any) -> Any:
            await release.wait()
            return await real(markers)

        h.coordinator.markers.writer = slow
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0])
        assert await h.end("tx", pid, 0, True) == E.NONE
        assert h.meta("tx").state is S.PREPARE_COMMIT
        assert await h.end("tx", pid, 0, True) == E.CONCURRENT_TRANSACTIONS
        assert await h.end("tx", pid, 0, False) == E.CONCURRENT_TRANSACTIONS  # pending completion
        assert (await h.init("tx")).error_code == E.CONCURRENT_TRANSACTIONS
        assert await h.add("tx", pid, 0, [T1]) == [E.CONCURRENT_TRANSACTIONS]
        release.set()
        await h.completed("tx", S.COMPLETE_COMMIT)

    run(tmp_path, scenario)


def test_init_aborts_an_ongoing_transaction_and_fences_the_old_producer(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0])
        retry = await h.init("tx")
        assert retry.error_code == E.CONCURRENT_TRANSACTIONS
        await h.completed("tx", S.COMPLETE_ABORT)
        # the abort marker carries the fenced epoch
        assert h.writer.written == [(T0, pid, 1, False, h.writer.written[0][4])]
        again = await h.init("tx")
        assert (again.error_code, again.producer_id, again.producer_epoch) == (E.NONE, pid, 2)
        # the zombie with epoch 0 is fenced everywhere
        assert await h.add("tx", pid, 0, [T1]) == [E.PRODUCER_FENCED]
        assert await h.add("tx", pid, 0, [T1], version=1) == [E.INVALID_PRODUCER_EPOCH]
        assert await h.end("tx", pid, 0, True) == E.PRODUCER_FENCED

    run(tmp_path, scenario)


def test_kip_360_init_with_the_producer_id_and_epoch(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        first = await h.init("tx")
        pid = first.producer_id
        bumped = await h.init("tx", pid=pid, epoch=0)
        assert (bumped.error_code, bumped.producer_id, bumped.producer_epoch) == (E.NONE, pid, 1)
        # the same request again (its answer was lost): the same epoch
        retry = await h.init("tx", pid=pid, epoch=0)
        assert (retry.error_code, retry.producer_epoch) == (E.NONE, 1)
        # another producer id: fenced (v4+), INVALID_PRODUCER_EPOCH before
        assert (await h.init("tx", pid=pid + 7, epoch=1)).error_code == E.PRODUCER_FENCED
        assert (await h.init("tx", version=3, pid=pid + 7, epoch=1)).error_code == E.INVALID_PRODUCER_EPOCH
        # only one of id and epoch: invalid
        assert (await h.init("tx", pid=pid, epoch=-1)).error_code == E.INVALID_REQUEST

    run(tmp_path, scenario)


def test_init_request_checks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        assert (await h.init("tx", timeout=900_001)).error_code == E.INVALID_TRANSACTION_TIMEOUT
        assert (await h.init("tx", timeout=0)).error_code == E.INVALID_TRANSACTION_TIMEOUT
        assert (await h.init("")).error_code == E.INVALID_REQUEST
        idempotent = await acall(h.c, InitProducerIdRequest(None, 60000), 4)
        assert (idempotent.error_code, idempotent.producer_epoch) == (E.NONE, 0)

    run(tmp_path, scenario, **{"transaction.max.timeout.ms": "900000"})


def test_an_exhausted_epoch_rotates_the_producer_id(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        h.meta("tx").producer_epoch = 32766  # as after that many bumps
        rotated = await h.init("tx", pid=pid, epoch=32766)
        assert rotated.error_code == E.NONE and rotated.producer_id != pid and rotated.producer_epoch == 0
        assert (h.meta("tx").previous_producer_id, h.meta("tx").last_producer_epoch) == (pid, 32766)

    run(tmp_path, scenario)


def test_add_partitions_checks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        # an unknown topic fails the whole transaction
        errors = await h.add("tx", pid, 0, [T0, TopicPartition("nope", 0)])
        assert errors == [E.OPERATION_NOT_ATTEMPTED, E.UNKNOWN_TOPIC_OR_PARTITION]
        assert h.meta("tx").state is S.EMPTY
        assert await h.add("tx", pid + 1, 0, [T0]) == [E.INVALID_PRODUCER_ID_MAPPING]
        assert await h.add("other", pid, 0, [T0]) == [E.INVALID_PRODUCER_ID_MAPPING]
        assert await h.add("tx", pid, 0, [T0]) == [E.NONE]
        assert await h.add("tx", pid, 0, [T0]) == [E.NONE]  # already in: nothing written

    run(tmp_path, scenario)


def test_v4_batches_and_verify_only(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0])
        request = AddPartitionsToTxnRequest(
            transactions=[
                AddPartitionsToTxnTransaction("tx", pid, 0, True, [AddPartitionsToTxnTopic("t", [0, 1])]),
                AddPartitionsToTxnTransaction("nobody", 5, 0, True, [AddPartitionsToTxnTopic("t", [0])]),
                AddPartitionsToTxnTransaction("tx", pid, 3, True, [AddPartitionsToTxnTopic("t", [0])]),
            ]
        )
        for version in (4, 5):
            response = await acall(h.c, request, version)
            results = [
                (
                    r.transactional_id,
                    [
                        (p.partition_index, p.partition_error_code)
                        for t in r.topic_results
                        for p in t.results_by_partition
                    ],
                )
                for r in response.results_by_transaction
            ]
            assert results == [
                ("tx", [(0, E.NONE), (1, E.TRANSACTION_ABORTABLE)]),
                ("nobody", [(0, E.INVALID_PRODUCER_ID_MAPPING)]),
                ("tx", [(0, E.PRODUCER_FENCED)]),
            ]
        assert h.meta("tx").partitions == {T0}  # verification added nothing

    run(tmp_path, scenario)


def test_add_offsets_adds_the_groups_offsets_partition(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        for version, epoch, expected in (
            (0, 1, E.INVALID_PRODUCER_EPOCH),
            (3, 1, E.PRODUCER_FENCED),
            (3, 0, E.NONE),
        ):
            response = await acall(h.c, AddOffsetsToTxnRequest("tx", pid, epoch, "group"), version)
            assert response.error_code == expected
        offsets = TopicPartition(
            "__consumer_offsets", h.broker.group_coordinator.store.partition_for("group")
        )
        assert h.meta("tx").partitions == {offsets}

    run(tmp_path, scenario)


def test_describe_and_list(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("a")).producer_id
        await h.add("a", pid, 0, [T1, T0])
        pid_b = (await h.init("b")).producer_id
        described = await acall(h.c, DescribeTransactionsRequest(["a", "missing", ""]), 0)
        a, missing, empty = described.transaction_states
        assert (a.error_code, a.transaction_state, a.producer_id, a.producer_epoch) == (0, "Ongoing", pid, 0)
        assert [(t.topic, t.partitions) for t in a.topics] == [("t", [0, 1])]
        assert a.transaction_start_time_ms == h.scheduler.clock.now_ms
        assert missing.error_code == E.TRANSACTIONAL_ID_NOT_FOUND
        assert empty.error_code == E.INVALID_REQUEST

        async def listed(version: int = 1, **filters: Any) -> tuple[list[tuple[str, int, str]], list[str]]:
            response = await acall(h.c, ListTransactionsRequest(**filters), version)
            assert response.error_code == E.NONE
            states = sorted(
                (s.transactional_id, s.producer_id, s.transaction_state) for s in response.transaction_states
            )
            return states, response.unknown_state_filters

        assert await listed() == ([("a", pid, "Ongoing"), ("b", pid_b, "Empty")], [])
        assert await listed(state_filters=["Ongoing", "Bogus"]) == ([("a", pid, "Ongoing")], ["Bogus"])
        assert await listed(producer_id_filters=[pid_b]) == ([("b", pid_b, "Empty")], [])
        h.scheduler.clock.advance(5000)
        # Kafka compares with the start time, which is -1 for a transaction not started: listed
        assert (await listed(duration_filter=4000))[0] == [("a", pid, "Ongoing"), ("b", pid_b, "Empty")]
        assert (await listed(duration_filter=6000))[0] == [("b", pid_b, "Empty")]
        assert len((await listed(version=0))[0]) == 2

    run(tmp_path, scenario)


def test_ids_of_partitions_this_broker_does_not_lead(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        index = partition_for("tx", PARTITIONS)
        h.coordinator.store.on_resigned(index)
        assert (await h.init("tx")).error_code == E.NOT_COORDINATOR
        h.coordinator.store.loading[index] = 99
        assert (await h.init("tx")).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        listed = await acall(h.c, ListTransactionsRequest(), 1)
        assert listed.error_code == E.COORDINATOR_LOAD_IN_PROGRESS

    run(tmp_path, scenario)


def test_markers_are_retried_until_written(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        failures = {T0: 3}

        def error_for(tp: TopicPartition) -> ErrorCode:
            if failures.get(tp, 0) > 0:
                failures[tp] -= 1
                return E.NOT_LEADER_OR_FOLLOWER
            return E.NONE

        h.writer.error_for = error_for
        h.coordinator.markers.retry_backoff_ms = 1
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0, T1])
        assert await h.end("tx", pid, 0, True) == E.NONE
        await h.completed("tx", S.COMPLETE_COMMIT)
        assert sorted(w[0] for w in h.writer.written) == [T0, T1]
        assert h.writer.attempts == 5  # T0 three failures and a success, T1 once

    run(tmp_path, scenario)


def test_a_deleted_topics_marker_is_dropped(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start(topics=("t", "gone"))
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0, TopicPartition("gone", 0)])
        h.broker.metadata.topics.pop("gone")  # as a deletion leaves the metadata
        assert await h.end("tx", pid, 0, False) == E.NONE
        await h.completed("tx", S.COMPLETE_ABORT)
        assert [w[0] for w in h.writer.written] == [T0]

    run(tmp_path, scenario)


def test_a_newer_coordinator_stops_the_markers(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        h.writer.error_for = lambda tp: E.TRANSACTION_COORDINATOR_FENCED
        pid = (await h.init("tx")).producer_id
        await h.add("tx", pid, 0, [T0])
        assert await h.end("tx", pid, 0, True) == E.NONE
        await h.idle()
        assert h.meta("tx").state is S.PREPARE_COMMIT  # left for the new coordinator

    run(tmp_path, scenario)


def test_reload_gives_the_same_state_and_resends_prepared_markers(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        release = asyncio.Event()

        async def never(markers: Any) -> Any:
            await release.wait()
            raise AssertionError("unreachable")

        pid_a = (await h.init("a")).producer_id
        await h.add("a", pid_a, 0, [T0])
        pid_b = (await h.init("b")).producer_id
        await h.add("b", pid_b, 0, [T0, T1])
        pid_c = (await h.init("c")).producer_id
        await h.add("c", pid_c, 0, [T1])
        assert await h.end("c", pid_c, 0, False) == E.NONE
        await h.completed("c", S.COMPLETE_ABORT)
        h.coordinator.markers.writer = never
        assert await h.end("b", pid_b, 0, True) == E.NONE  # PrepareCommit written, markers stuck
        before = {tid: h.meta(tid) for tid in ("a", "b", "c")}
        snapshot = {
            tid: (
                m.producer_id,
                m.producer_epoch,
                m.state,
                set(m.partitions),
                m.txn_timeout_ms,
                m.txn_start_timestamp,
            )
            for tid, m in before.items()
        }
        await h.restart_coordinator()
        assert snapshot["a"] == (pid_a, 0, S.ONGOING, {T0}, 60000, h.meta("a").txn_start_timestamp)
        for tid in ("a", "c"):
            m = h.meta(tid)
            assert (
                m.producer_id,
                m.producer_epoch,
                m.state,
                m.partitions,
                m.txn_timeout_ms,
                m.txn_start_timestamp,
            ) == snapshot[tid]
        # b was PrepareCommit: its markers are sent again on load, then it completes
        await h.completed("b", S.COMPLETE_COMMIT)
        assert sorted(w[0] for w in h.writer.written if w[1] == pid_b) == [T0, T1]
        assert all(w[3] for w in h.writer.written if w[1] == pid_b)

    run(tmp_path, scenario)


def test_timed_out_transactions_are_aborted_with_a_fenced_epoch(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("slow", timeout=20_000)).producer_id
        await h.add("slow", pid, 0, [T0])
        quick = (await h.init("quick", timeout=60_000)).producer_id
        await h.add("quick", quick, 0, [T1])
        h.scheduler.advance(10_000)  # first check: nothing is late
        assert h.meta("slow").state is S.ONGOING
        h.scheduler.advance(20_000)  # 30 s: slow is past its 20 s timeout
        await h.completed("slow", S.COMPLETE_ABORT)
        assert h.meta("slow").producer_epoch == 1
        assert h.meta("quick").state is S.ONGOING
        assert h.writer.written == [(T0, pid, 1, False, h.writer.written[0][4])]
        # the producer's next call with its old epoch is fenced
        assert await h.end("slow", pid, 0, True) == E.PRODUCER_FENCED

    run(tmp_path, scenario, **{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "10000"})


def test_idle_transactional_ids_expire(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        await h.init("idle")
        pid = (await h.init("busy", timeout=900_000)).producer_id
        h.scheduler.advance(50_000)
        await h.add("busy", pid, 0, [T0])  # ongoing: never expires
        h.scheduler.advance(70_000)  # checks at 60 s (idle for 60 s: kept) and 120 s (expired after 100 s)
        await h.idle()
        assert h.coordinator.store.get("idle").metadata is None
        assert h.coordinator.store.get("busy").metadata is not None
        # the tombstone is durable: a reload does not bring it back
        await h.restart_coordinator()
        assert h.coordinator.store.get("idle").metadata is None
        assert h.meta("busy").state is S.ONGOING
        assert (await h.init("idle")).producer_epoch == 0  # a new id starts over

    run(
        tmp_path,
        scenario,
        **{
            "transactional.id.expiration.ms": "100000",
            "transaction.remove.expired.transaction.cleanup.interval.ms": "60000",
        },
    )


def test_the_topic_is_created_with_kafkas_settings(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        info = h.broker.metadata.topic(TRANSACTION_STATE_TOPIC)
        assert info is not None and len(info.partitions) == PARTITIONS
        assert info.configs == {
            "cleanup.policy": "compact",
            "compression.type": "uncompressed",
            "min.insync.replicas": "2",
            "segment.bytes": "104857600",
            "unclean.leader.election.enable": "false",
        }
        batched = await acall(h.c, FindCoordinatorRequest(key_type=1, coordinator_keys=["a", "b"]), 4)
        assert [(x.key, x.error_code, x.node_id) for x in batched.coordinators] == [
            ("a", 0, h.broker.node_id),
            ("b", 0, h.broker.node_id),
        ]

    run(tmp_path, scenario)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 5])
def test_init_producer_id_all_versions(tmp_path: Path, version: int) -> None:
    async def scenario(h: Harness) -> None:
        await h.start()
        first = await h.init("tx", version=version)
        second = await h.init("tx", version=version)
        assert (first.error_code, second.error_code) == (E.NONE, E.NONE)
        assert (second.producer_id, second.producer_epoch) == (first.producer_id, first.producer_epoch + 1)

    run(tmp_path, scenario)


def test_unreadable_records_are_skipped_on_load(tmp_path: Path) -> None:
    from broker.txn.records import build_records, key_bytes

    async def scenario(h: Harness) -> None:
        await h.start()
        pid = (await h.init("tx")).producer_id
        index = partition_for("tx", PARTITIONS)
        replica = h.coordinator.store.replica(index)
        assert replica is not None
        garbage = [
            (key_bytes("tx"), b"\x00\x00\x01"),
            (b"\x00", b"x"),
            (key_bytes("tx"), b"\x00\x07" + b"\x00" * 30),
        ]
        assert replica.append_internal(build_records(garbage, 0)).error == E.NONE
        await h.restart_coordinator()
        assert (h.meta("tx").producer_id, h.meta("tx").producer_epoch) == (pid, 0)

    run(tmp_path, scenario)
