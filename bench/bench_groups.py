"""Group coordinator benchmarks: prints figures, asserts nothing.

    .venv/bin/python bench/bench_groups.py [--seconds 5] [--partitions 100] [--members 10]

Against a real broker process (started here on a free port, data in a temporary directory):

1. Offset commit throughput: one member of a Stable group commits ``--partitions`` partitions per
   OffsetCommit (v8), each answered only once the commit is durable. Measured with one commit in
   flight (a synchronous committer) and with 16 pipelined on the connection. Raw protocol
   client, so the figure is the broker's, not a client library's.
2. Time for a ``--members`` group to become Stable: members join concurrently (raw clients doing
   JoinGroup v5 with MEMBER_ID_REQUIRED, then SyncGroup; the leader assigns round-robin) with
   ``group.initial.rebalance.delay.ms`` 0 and Kafka's default 3000; and the same with
   confluent-kafka consumers (librdkafka's own join/assign logic), from subscribe until every
   consumer has its partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compat_tests.harness import BrokerProcess
from protocol import api as papi
from protocol.message import Message
from protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from protocol.messages.consumer_protocol_assignment import TopicPartition as AssignedPartitions
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment

MEMBER_ID_REQUIRED = 79
REBALANCE_IN_PROGRESS = 27


class Client:
    """A minimal pipelining Kafka client over one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self.reader = reader
        self.writer = writer
        self.name = name
        self.correlation = 0
        self.pending: asyncio.Queue[tuple[asyncio.Future[Any], int, int]] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int, name: str = "bench") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, name)

    def send(self, body: Message, version: int) -> asyncio.Future[Any]:
        self.correlation += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.put_nowait((future, body.API_KEY, version))
        self.writer.write(papi.encode_request(body, version, self.correlation, self.name))
        return future

    async def call(self, body: Message, version: int) -> Any:
        return await self.send(body, version)

    async def _read(self) -> None:
        while True:
            size = struct.unpack(">i", await self.reader.readexactly(4))[0]
            frame = await self.reader.readexactly(size)
            future, api_key, version = await self.pending.get()
            future.set_result(papi.decode_response(frame, api_key, version)[1])

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()


def subscription(topic: str) -> bytes:
    return b"\x00\x00" + ConsumerProtocolSubscription(topics=[topic]).encode(0)


def assignment(topic: str, partitions: list[int]) -> bytes:
    return b"\x00\x00" + ConsumerProtocolAssignment([AssignedPartitions(topic, partitions)]).encode(0)


async def join_and_sync(
    client: Client, group: str, topic: str, leader_assigns: int, session_ms: int = 30000
) -> tuple[str, int, bytes]:
    """Join (MEMBER_ID_REQUIRED first), sync; a leader assigns ``leader_assigns`` partitions
    round-robin. Returns the member id, generation and the member's assignment."""
    protocols = [JoinGroupRequestProtocol("roundrobin", subscription(topic))]
    request = JoinGroupRequest(group, session_ms, 60000, "", None, "consumer", protocols)
    while True:  # as a consumer does: rejoin while the group rebalances
        response = await client.call(request, 5)
        if response.error_code == MEMBER_ID_REQUIRED:
            request.member_id = response.member_id
            continue
        assert response.error_code == 0, response
        member_id, generation = response.member_id, response.generation_id
        assignments: list[SyncGroupRequestAssignment] = []
        if response.leader == member_id:
            ids = [m.member_id for m in response.members]
            shares: dict[str, list[int]] = {m: [] for m in ids}
            for p in range(leader_assigns):
                shares[ids[p % len(ids)]].append(p)
            assignments = [SyncGroupRequestAssignment(m, assignment(topic, ps)) for m, ps in shares.items()]
        synced = await client.call(
            SyncGroupRequest(group, generation, member_id, None, "consumer", "roundrobin", assignments), 5
        )
        if synced.error_code == REBALANCE_IN_PROGRESS:
            continue
        assert synced.error_code == 0, synced
        return member_id, generation, bytes(synced.assignment)


async def create_topic(port: int, name: str, partitions: int) -> None:
    client = await Client.connect(port)
    response = await client.call(CreateTopicsRequest(topics=[CreatableTopic(name, partitions, 1)]), 5)
    assert response.topics[0].error_code in (0, 36), response
    await client.close()


async def bench_commits(port: int, partitions: int, seconds: float) -> None:
    topic = "bench-commits"
    await create_topic(port, topic, partitions)
    client = await Client.connect(port)
    coordinator = await client.call(FindCoordinatorRequest(key="bench-committer"), 3)
    assert coordinator.error_code == 0, coordinator
    member_id, generation, _ = await join_and_sync(client, "bench-committer", topic, partitions)

    def request(i: int) -> OffsetCommitRequest:
        parts = [OffsetCommitRequestPartition(p, i * 10 + p, -1, -1, "") for p in range(partitions)]
        return OffsetCommitRequest(
            "bench-committer", generation, member_id, None, -1, [OffsetCommitRequestTopic(topic, parts)]
        )

    for in_flight in (1, 16):
        done = 0
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        window: list[tuple[float, asyncio.Future[Any]]] = []
        while time.perf_counter() < deadline or window:
            while len(window) < in_flight and time.perf_counter() < deadline:
                window.append((time.perf_counter(), client.send(request(done + len(window)), 8)))
            sent_at, future = window.pop(0)
            response = await future
            latencies.append(time.perf_counter() - sent_at)
            assert all(p.error_code == 0 for t in response.topics for p in t.partitions), response
            done += 1
        elapsed = time.perf_counter() - started
        latencies.sort()
        print(
            f"offset commits, {partitions} partitions each, {in_flight:>2} in flight: "
            f"{done / elapsed:8.0f} commits/s = {done * partitions / elapsed:9.0f} offsets/s; "
            f"latency p50 {latencies[len(latencies) // 2] * 1000:.2f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms ({done} commits)"
        )
    await client.close()


async def bench_join(port: int, members: int, label: str, rounds: int) -> None:
    topic = "bench-join"
    await create_topic(port, topic, members * 2)
    times: list[float] = []
    for r in range(rounds):
        group = f"bench-join-{label}-{r}"
        clients = [await Client.connect(port, f"member-{i}") for i in range(members)]
        await clients[0].call(FindCoordinatorRequest(key=group), 3)
        started = time.perf_counter()
        results = await asyncio.gather(*(join_and_sync(c, group, topic, members * 2) for c in clients))
        elapsed = time.perf_counter() - started
        generations = {g for _, g, _ in results}
        # The last answers are all of one generation in which every member got partitions.
        assert len(generations) == 1 and all(a for _, _, a in results), results
        times.append(elapsed)
        for c in clients:
            await c.close()
    print(
        f"{members} raw members to Stable ({label}): median {statistics.median(times) * 1000:.0f} ms, "
        f"best {min(times) * 1000:.0f} ms over {rounds} groups"
    )


def bench_join_confluent(bootstrap: str, members: int) -> None:
    from confluent_kafka import Consumer

    topic = "bench-join"
    owned = [0] * members
    stop = threading.Event()

    def member(index: int) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-join-librdkafka",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 300,
            }
        )

        def on_assign(c: Any, partitions: list[Any]) -> None:
            owned[index] = len(partitions)

        def on_revoke(c: Any, partitions: list[Any]) -> None:
            owned[index] = 0

        # A consumer is used from its own thread only (its methods serialize on a lock).
        consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        while not stop.is_set():
            consumer.poll(0.05)
        consumer.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(members)]
    for t in threads:
        t.start()
    deadline = started + 60
    while time.perf_counter() < deadline and not (all(owned) and sum(owned) == members * 2):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(15)
    print(f"{members} confluent-kafka consumers, start until all assigned: {elapsed * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data", {"group.initial.rebalance.delay.ms": "0"}).start()
        try:
            asyncio.run(bench_commits(broker.port, args.partitions, args.seconds))
            asyncio.run(bench_join(broker.port, args.members, "initial delay 0 ms", args.rounds))
            bench_join_confluent(broker.bootstrap, args.members)
        finally:
            broker.stop()
        broker = BrokerProcess(Path(tmp) / "data2", {"group.initial.rebalance.delay.ms": "3000"}).start()
        try:
            asyncio.run(bench_join(broker.port, args.members, "initial delay 3000 ms, Kafka's default", 2))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
