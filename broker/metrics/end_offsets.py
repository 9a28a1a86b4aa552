"""Log end offsets of partitions led elsewhere, for the lag of the groups this broker coordinates.

In cluster mode a group's coordinator often does not lead the partitions its members consume.
At each scrape it asks their leaders with ListOffsets (latest, as a consumer: the high watermark,
which is what kafka-consumer-groups.sh shows as LOG-END-OFFSET and what kafka_exporter uses), one
request per leader, all at once, bounded by a timeout; a partition whose leader does not answer in
time has no lag series in that scrape rather than a stale one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from broker.types import TopicPartition
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.network.client import NetworkClient

log = logging.getLogger(__name__)

LATEST_TIMESTAMP = -1
#: v1+ answers one offset per partition; v4+ carries the leader epoch (not needed here).
MAX_VERSION = 7


class RemoteEndOffsets:
    """Asks partition leaders for their high watermarks (cluster mode only)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._client: NetworkClient | None = None

    def _network(self) -> NetworkClient:
        if self._client is None:
            from broker.network.client import ClientConfig, NetworkClient

            self._client = NetworkClient(ClientConfig.for_controller(self.broker.config))
        return self._client

    async def fetch(self, partitions: Iterable[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
        """High watermarks of ``partitions`` from their leaders (those that answered in time)."""
        broker = self.broker
        cache = broker.metadata_cache
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in partitions:
            state = cache.partition(tp)
            if state is not None and state.leader >= 0:
                by_leader[state.leader].append(tp)
        if not by_leader:
            return {}
        tasks = [asyncio.ensure_future(self._ask(leader, tps)) for leader, tps in by_leader.items()]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        found: dict[TopicPartition, int] = {}
        for task in done:
            if not task.cancelled() and task.exception() is None:
                found.update(task.result())
        return found

    async def _ask(self, leader: int, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        broker = self.broker
        endpoint = broker.metadata_cache.alive_endpoint(leader, broker.config.inter_broker_listener_name)
        if endpoint is None:
            return {}
        topics: dict[str, list[ListOffsetsPartition]] = defaultdict(list)
        for tp in tps:
            topics[tp.topic].append(
                ListOffsetsPartition(partition_index=tp.partition, timestamp=LATEST_TIMESTAMP)
            )
        request = ListOffsetsRequest(
            replica_id=-1,
            isolation_level=0,
            topics=[ListOffsetsTopic(name=name, partitions=parts) for name, parts in topics.items()],
        )
        try:
            response = await self._network().send(
                leader, endpoint.host, endpoint.port, request, max_version=MAX_VERSION
            )
        except Exception as exc:  # an unreachable leader only costs its partitions' series
            log.debug("ListOffsets to broker %d for lag failed: %s", leader, exc)
            return {}
        found: dict[TopicPartition, int] = {}
        for topic in response.body.topics:
            for p in topic.partitions:
                if p.error_code == 0 and p.offset >= 0:
                    found[TopicPartition(topic.name, p.partition_index)] = p.offset
        return found

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
