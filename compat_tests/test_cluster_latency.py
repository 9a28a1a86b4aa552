"""The replication pipeline is driven by events, end to end, on three real brokers (issue 13's
latency): a consumer's long poll on the leader and an acks=all produce both wait for the high
watermark, which moves when the followers' next fetches show the record; neither may wait for a
timer. The long poll asks for 30 s and the produce allows 30 s, and the test gives each 15 s: an
answer only at the timer fails it. The long poll is sent before the record is written, so it is
parked when the record arrives (the path where the HW move, not a read, must wake it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from compat_tests.cluster import BrokerCluster
from compat_tests.cluster_clients import create_topic

#: Far beyond what the test waits: an answer by the long poll's or the produce's timer fails it.
LONG_WAIT_MS = 30_000
ANSWER_WITHIN = 15.0


def _partition_data(response: Any) -> Any:
    return response.responses[0].partitions[0]


async def _parked_poll_then_produce(cluster: BrokerCluster, topic: str, leader: int) -> tuple[Any, Any, Any]:
    from broker.network.client import BrokerConnection, ClientConfig
    from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
    from protocol.records import Record, build_batch

    port = cluster.brokers[leader].port
    consumer = await BrokerConnection.open(
        leader, "127.0.0.1", port, ClientConfig(client_id="latency-consumer")
    )
    producer = await BrokerConnection.open(
        leader, "127.0.0.1", port, ClientConfig(client_id="latency-producer")
    )
    polling: asyncio.Future[Any] | None = None
    try:
        poll = FetchRequest(
            replica_id=-1,
            max_wait_ms=LONG_WAIT_MS,
            min_bytes=1,
            max_bytes=1 << 20,
            topics=[FetchTopic(topic, partitions=[FetchPartition(0, -1, 0, -1, -1, 1 << 20)])],
        )
        # Metadata from any broker can name the leader before the leader has applied its
        # LeaderAndIsr (UNKNOWN_TOPIC_OR_PARTITION then, as Kafka answers): wait until it serves.
        probe = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, topics=poll.topics)
        deadline = time.monotonic() + ANSWER_WITHIN
        while (code := _partition_data((await consumer.request(probe, version=11)).body).error_code) != 0:
            assert time.monotonic() < deadline, f"the leader still answers error {code} to a fetch"
            await asyncio.sleep(0.05)
        polling = asyncio.ensure_future(consumer.request(poll, version=11))
        # Give the poll time to park on the leader before the record exists (the path under test);
        # the assertions below hold either way, so this pause decides no outcome.
        await asyncio.sleep(0.2)
        if polling.done():  # what it answered, to tell a wake-up from an error (a rare flake)
            early = polling.result().body if polling.exception() is None else polling.exception()
            raise AssertionError(f"the long poll answered with nothing to read: {early!r}")

        def produce(value: bytes, acks: int) -> ProduceRequest:
            record = Record(offset_delta=0, timestamp_delta=0, key=None, value=value)
            batch = build_batch([record], base_timestamp=int(time.time() * 1000))
            return ProduceRequest(
                acks=acks,
                timeout_ms=LONG_WAIT_MS,
                topic_data=[TopicProduceData(topic, [PartitionProduceData(0, bytes(batch))])],
            )

        written = await asyncio.wait_for(producer.request(produce(b"one", 1), version=9), ANSWER_WITHIN)
        polled = await asyncio.wait_for(polling, ANSWER_WITHIN)
        replicated = await asyncio.wait_for(producer.request(produce(b"two", -1), version=9), ANSWER_WITHIN)
        return written.body, polled.body, replicated.body
    finally:
        if polling is not None and not polling.done():
            polling.cancel()
        for conn in (consumer, producer):
            conn.close()
            await conn.wait_closed()


def test_a_long_poll_and_acks_all_are_answered_by_the_followers_fetches(cluster: BrokerCluster) -> None:
    topic = create_topic(cluster.bootstrap, "latency", 1)
    view = cluster.wait_view(
        lambda v: (p := v.topics.get(topic, {}).get(0)) is not None and p[0] >= 0 and len(p[2]) == 3,
        30.0,
        f"{topic}: a leader and three replicas in the ISR",
    )
    leader = view.topics[topic][0][0]
    written, polled, replicated = asyncio.run(_parked_poll_then_produce(cluster, topic, leader))

    first = written.responses[0].partition_responses[0]
    assert first.error_code == 0 and first.base_offset == 0
    data = _partition_data(polled)
    assert data.error_code == 0
    assert data.high_watermark >= 1  # the followers' fetches moved it past the record
    assert data.records is not None and len(data.records) > 0  # woken with the record, not by the timer
    answer = replicated.responses[0].partition_responses[0]
    assert answer.error_code == 0 and answer.base_offset == 1  # acks=all: the HW passed it
