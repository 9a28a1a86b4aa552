"""What a follower sends, seen by a scripted leader: Fetch v17 with ``replica_state`` (this
broker, its epoch), ``last_fetched_epoch``, 1 MiB per partition and the fetch settings; a fetch
session when the leader offers one (incremental requests, forgotten partitions), and a full
request again after a session error. The leader's records are appended as they are."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from broker.app import Broker
from broker.replica import fetcher as fetcher_module
from broker.replica.fetch_session import fetch_fields
from broker.replica.fetcher import ReplicaFetcherManager
from broker.types import TopicPartition
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchRequest
from protocol.messages.fetch_response import FetchableTopicResponse, FetchResponse, PartitionData
from tests.broker.conftest import Caller
from tests.broker.control_kit import Node, PState, cluster_broker, leader_and_isr, update_metadata
from tests.broker.fake_server import FakeConn, FakeServer, run
from tests.storage.batches import make_batch

T_ID = uuid.UUID("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
FOLLOWER, LEADER = 2, 1


async def control(broker: Broker, request: Any, version: int) -> Any:
    result = Caller(broker).start(request, version)
    return await result if inspect.isawaitable(result) else result


def test_follower_fetch_requests_and_sessions_on_the_wire(tmp_path: Path) -> None:
    requests: asyncio.Queue[FetchRequest] = asyncio.Queue()
    records = bytes(make_batch(3, base_offset=0, partition_leader_epoch=4))

    def answer(
        conn: FakeConn,
        request: papi.Request,
        session: int,
        error: int = 0,
        data: dict[int, bytes] | None = None,
    ) -> None:
        body: FetchRequest = request.body
        partitions = [
            PartitionData(
                p.partition,
                0,
                high_watermark=3,
                last_stable_offset=3,
                log_start_offset=0,
                records=(data or {}).get(p.partition, b""),
            )
            for t in body.topics
            for p in t.partitions
        ]
        conn.answer(
            request,
            FetchResponse(
                error_code=error, session_id=session, responses=[FetchableTopicResponse("", T_ID, partitions)]
            ),
        )

    async def leader(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        step = 0
        while True:
            request = await conn.read_request()
            assert request.api.api_key == 1 and request.version == 17, request
            await requests.put(request.body)
            step += 1
            if step == 1:
                answer(conn, request, 77, data={0: records})  # a session, and partition 0's records
            elif step == 3:
                answer(conn, request, 0, error=ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
            else:
                await asyncio.sleep(0.05)  # a long poll with nothing new (max_wait_ms is 500)
                answer(conn, request, 77 if step < 3 else 0)

    async def scenario() -> None:
        async with FakeServer(leader) as fake:
            broker = cluster_broker(tmp_path / "follower", FOLLOWER, **{"replica.fetch.backoff.ms": "20"})
            broker.broker_epoch = 42
            await broker.start(freeze_gc=False)
            try:
                nodes = [
                    Node(LEADER, "127.0.0.1", fake.port),
                    Node(FOLLOWER, "127.0.0.1", broker.bound_ports["PLAINTEXT"]),
                ]
                states = [PState("t", p, LEADER, 5, [LEADER, FOLLOWER]) for p in (0, 1)]
                ids = {"t": T_ID}
                assert (
                    await control(broker, update_metadata(8, nodes, states, topic_ids=ids), 8)
                ).error_code == 0
                assert (await control(broker, leader_and_isr(7, states, topic_ids=ids), 7)).error_code == 0

                first = await asyncio.wait_for(requests.get(), 10)
                assert (
                    first.replica_id,
                    first.replica_state.replica_id,
                    first.replica_state.replica_epoch,
                ) == (-1, 2, 42)
                assert (first.session_id, first.session_epoch) == (0, 0)
                assert (first.max_wait_ms, first.min_bytes, first.max_bytes) == (500, 1, 10 * 1024 * 1024)
                [topic] = first.topics
                assert topic.topic_id == T_ID
                assert [
                    (
                        p.partition,
                        p.current_leader_epoch,
                        p.fetch_offset,
                        p.last_fetched_epoch,
                        p.partition_max_bytes,
                    )
                    for p in topic.partitions
                ] == [(0, 5, 0, -1, 1 << 20), (1, 5, 0, -1, 1 << 20)]

                second = await asyncio.wait_for(requests.get(), 10)
                assert (second.session_id, second.session_epoch) == (77, 1)
                # Incremental (Kafka's FetchSessionHandler): only partition 0 changed (it got
                # records); the session holds partition 1 as the full request named it.
                assert [
                    (p.partition, p.fetch_offset, p.last_fetched_epoch) for p in second.topics[0].partitions
                ] == [(0, 3, 4)]
                follower_log = broker.replica_manager.get(TopicPartition("t", 0))
                assert follower_log is not None
                assert follower_log.log.read_bytes(0, 1 << 20) == records
                assert follower_log.high_watermark == 3
                assert follower_log.log.leader_epochs.entries() == [(4, 0)]

                # Partition 1 moves to this broker: the session forgets it.
                await control(
                    broker,
                    leader_and_isr(7, [PState("t", 1, FOLLOWER, 6, [LEADER, FOLLOWER])], topic_ids=ids),
                    7,
                )
                third = await asyncio.wait_for(requests.get(), 10)
                assert (third.session_id, third.session_epoch) == (77, 2)
                assert third.topics == []  # partition 0 unchanged since the session took it
                assert [(f.topic_id, f.partitions) for f in third.forgotten_topics_data] == [(T_ID, [1])]
                # FETCH_SESSION_ID_NOT_FOUND: a full request again.
                fourth = await asyncio.wait_for(requests.get(), 10)
                assert (fourth.session_id, fourth.session_epoch, fourth.forgotten_topics_data) == (0, 0, [])
                fetchers = broker.replica_manager.control.fetchers
                assert isinstance(fetchers, ReplicaFetcherManager)
            finally:
                await broker.stop()

    run(scenario(), 30)


def test_an_incremental_request_looks_only_at_touched_partitions(tmp_path: Path) -> None:
    """Once the leader's session holds them, the follower's next requests look only at the
    partitions something touched (an append here): the others are neither looked up nor named.
    What no event marks (a log start moved by this broker's own retention) is named by the next
    request that looks at every partition (one per ``FULL_LOOK_S``)."""
    requests: asyncio.Queue[FetchRequest] = asyncio.Queue()
    records = bytes(make_batch(3, base_offset=0, partition_leader_epoch=5))
    more = bytes(make_batch(2, base_offset=3, partition_leader_epoch=5))

    async def leader(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        step = 0
        while True:
            request = await conn.read_request()
            body: FetchRequest = request.body
            await requests.put(body)
            step += 1
            data = {0: records} if step == 1 else {0: more} if step == 4 else {}
            if not data:
                await asyncio.sleep(0.02)  # a long poll with nothing new
            # The session's partitions with news: those named, and those with records.
            answered = sorted({p.partition for t in body.topics for p in t.partitions} | set(data))
            partitions = [
                PartitionData(p, 0, 5, 5, log_start_offset=0, records=data.get(p, b"")) for p in answered
            ]
            conn.answer(
                request,
                FetchResponse(
                    error_code=0, session_id=77, responses=[FetchableTopicResponse("", T_ID, partitions)]
                ),
            )

    async def scenario() -> None:
        async with FakeServer(leader) as fake:
            broker = cluster_broker(tmp_path / "follower", FOLLOWER)
            await broker.start(freeze_gc=False)
            try:
                nodes = [
                    Node(LEADER, "127.0.0.1", fake.port),
                    Node(FOLLOWER, "127.0.0.1", broker.bound_ports["PLAINTEXT"]),
                ]
                states = [PState("t", p, LEADER, 5, [LEADER, FOLLOWER]) for p in range(4)]
                ids = {"t": T_ID}
                await control(broker, update_metadata(8, nodes, states, topic_ids=ids), 8)
                await control(broker, leader_and_isr(7, states, topic_ids=ids), 7)
                first = await asyncio.wait_for(requests.get(), 10)
                assert len(first.topics[0].partitions) == 4  # full: every partition
                manager = broker.replica_manager.control.fetchers
                assert isinstance(manager, ReplicaFetcherManager)
                [fetcher] = manager.fetchers.values()
                fetcher._next_full_look = float("inf")  # no look at every partition meanwhile
                # A partition looked at has its fetch fields computed.
                with mock.patch.object(fetcher_module, "fetch_fields", wraps=fetch_fields) as looked_at:
                    second = await asyncio.wait_for(requests.get(), 10)  # partition 0 appended
                    third = await asyncio.wait_for(requests.get(), 10)  # nothing touched
                    fourth = await asyncio.wait_for(requests.get(), 10)
                    fifth = await asyncio.wait_for(requests.get(), 10)  # partition 0 appended again
                named = [
                    [p.partition for t in r.topics for p in t.partitions]
                    for r in (second, third, fourth, fifth)
                ]
                assert named == [[0], [], [], [0]]
                assert [call.kwargs["fetch_offset"] for call in looked_at.call_args_list] == [3, 5]
                # The follower's own retention moves partition 0's log start: no event tells.
                partition = broker.replica_manager.get(TopicPartition("t", 0))
                assert partition is not None and partition.high_watermark == 5
                partition.log.delete_records_before(4)
                for _ in range(3):
                    unchanged = await asyncio.wait_for(requests.get(), 10)
                    assert unchanged.topics == []
                fetcher._next_full_look = 0.0  # FULL_LOOK_S has passed
                for _ in range(3):
                    request = await asyncio.wait_for(requests.get(), 10)
                    if request.topics:
                        break
                [sent] = [(p.partition, p.log_start_offset) for t in request.topics for p in t.partitions]
                assert sent == (0, 4)
            finally:
                await broker.stop()

    run(scenario(), 30)
