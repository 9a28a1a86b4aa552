"""Inter-broker client figures against a real Brook broker process on loopback.

Prints (no assertions):

- ApiVersions requests per second over one connection, pipelined (a window of requests in
  flight) and one at a time (as the controller's channel sends);
- MB/s of Fetch responses of 1 MiB (``partition_max_bytes`` = 1 MiB) read back from a topic of
  64 MiB, as a replica fetcher would, records decoded as views into the response frame.

The broker runs as its own process (compat_tests/harness.py), so client and broker do not share
one event loop. The client runs on uvloop when installed, as the broker does (``--asyncio`` for
asyncio's own loop). On a loaded machine the figures move with the load. Each figure is the median of
``--rounds`` rounds.

Run: PYTHONPATH=. .venv/bin/python bench/bench_client.py [--rounds N] [--requests N] [--window N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from broker.network.client import BrokerConnection, ClientConfig, Response
from compat_tests.harness import BrokerProcess
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records.batch import read_header
from protocol.records.record import Record, build_batch

TOPIC = "bench-client"
MIB = 1024 * 1024


async def api_versions_rate(conn: BrokerConnection, count: int, window: int) -> float:
    request = ApiVersionsRequest("brook-bench", "1")
    in_flight: deque[asyncio.Future[Response]] = deque()
    started = time.perf_counter()
    for _ in range(count):
        if len(in_flight) >= window:
            await in_flight.popleft()
        future = conn.send(request)
        assert future is not None
        in_flight.append(future)
    while in_flight:
        await in_flight.popleft()
    return count / (time.perf_counter() - started)


async def fill_topic(conn: BrokerConnection, total: int) -> int:
    """Produce ``total`` bytes of 1 KiB records; returns the log end offset."""
    response = await conn.request(
        CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 1, 1)], timeout_ms=10_000)
    )
    assert response.body.topics[0].error_code in (0, 36), response.body  # 36: already exists
    value = os.urandom(1024)
    records = [Record(i, 0, None, value) for i in range(512)]
    batch = build_batch(records, base_timestamp=int(time.time() * 1000))
    produced = 0
    offsets = 0
    while produced < total:
        partition = PartitionProduceData(index=0, records=batch)
        request = ProduceRequest(acks=1, timeout_ms=10_000, topic_data=[TopicProduceData(TOPIC, [partition])])
        reply = await conn.request(request, max_version=9)
        error = reply.body.responses[0].partition_responses[0].error_code
        assert error == 0, reply.body
        produced += len(batch)
        offsets += len(records)
    return offsets


async def fetch_rate(conn: BrokerConnection, end_offset: int) -> tuple[float, int]:
    """Read the whole topic with 1 MiB fetches; returns (MB/s, responses)."""
    offset = 0
    received = 0
    responses = 0
    started = time.perf_counter()
    while offset < end_offset:
        partition = FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=MIB)
        topics = [FetchTopic(TOPIC, partitions=[partition])]
        request = FetchRequest(max_wait_ms=0, min_bytes=1, max_bytes=MIB, topics=topics)
        reply = await conn.request(request, max_version=12)  # topic names (v13+ uses ids)
        data = reply.body.responses[0].partitions[0]
        assert data.error_code == 0, data
        records = data.records
        received += len(records)
        responses += 1
        pos = 0
        while pos + 61 <= len(records):  # whole batches only; a partial one ends the response
            header = read_header(records, pos)
            if pos + header.size > len(records):
                break
            offset = header.next_offset
            pos += header.size
    elapsed = time.perf_counter() - started
    return received / MIB / elapsed, responses


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            config = ClientConfig(client_id="bench", max_response_bytes=200 * MIB)
            conn = await BrokerConnection.open(0, "127.0.0.1", broker.port, config)
            rounds = range(args.rounds)
            pipelined = [await api_versions_rate(conn, args.requests, args.window) for _ in rounds]
            serial = [await api_versions_rate(conn, args.requests // 10, 1) for _ in rounds]
            end = await fill_topic(conn, args.fetch_mib * MIB)
            rates = []
            count = 0
            for _ in range(args.rounds):
                rate, count = await fetch_rate(conn, end)
                rates.append(rate)
            conn.close()
            await conn.wait_closed()
        finally:
            broker.stop()
    print(f"client loop: {type(asyncio.get_running_loop()).__module__}")
    print(f"ApiVersions v{conn.choose_version(18)} pipelined (window {args.window}): "
          f"{statistics.median(pipelined):,.0f} requests/s")
    print(f"ApiVersions one at a time: {statistics.median(serial):,.0f} requests/s")
    print(f"Fetch, 1 MiB responses ({count} per pass over {args.fetch_mib} MiB): "
          f"{statistics.median(rates):,.0f} MB/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--fetch-mib", type=int, default=64)
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    options = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        options.asyncio = True
    if options.asyncio:
        asyncio.run(main(options))
    else:  # the broker's loop when installed
        uvloop.run(main(options))
