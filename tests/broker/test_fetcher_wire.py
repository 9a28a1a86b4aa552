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

from broker.app import Broker
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
