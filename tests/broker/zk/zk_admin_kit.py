"""In-process brokers in ZooKeeper mode against a real ZooKeeper, and a stand-in controller.

:class:`StandInController` plays the part of the controller driver (branch wip/zkwire) for the
admin tests: on every change under ``/brokers/topics`` and ``/admin/delete_topics`` (ZooKeeper
watches, no polling) it pushes UpdateMetadata to the brokers' caches, each partition led by its
first replica, and finishes deletions (partitions with leader -2, then the topic's znodes
removed). ``paused`` stops it, for the purgatory timeouts.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from kazoo.protocol.states import WatchedEvent

from broker.app import Broker
from broker.cluster.zk import paths
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from broker.cluster.zk_mode import ZkCluster
from broker.handlers import HANDLERS
from broker.handlers.base import RequestContext
from protocol.messages.request_header import RequestHeader
from tests.broker.conftest import FakeConnection
from tests.broker.control_kit import Node, PState, cluster_broker, update_metadata

if TYPE_CHECKING:
    from broker.cluster.controller_driver import ControllerDriver

UPDATE_METADATA_VERSION = 8


async def connect_zk(connect: str) -> KafkaZkClient:
    zk = await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=6000))
    await zk.create_top_level_paths()
    return zk


def zk_broker(path: Path, zk: KafkaZkClient, node_id: int, *, controller: bool, **overrides: str) -> Broker:
    """A broker in cluster mode with ``zk_cluster`` set as wip/zkwire sets it."""
    broker = cluster_broker(path, node_id, **overrides)
    broker.zk_cluster = ZkCluster(zk, broker.metadata_cache)
    # Only ``active`` is read by the admin side; the driver itself is the stand-in below.
    broker.zk_cluster.controller = cast("ControllerDriver", SimpleNamespace(active=controller))
    return broker


async def stop_broker(broker: Broker) -> None:
    if broker.zk_cluster is not None:
        broker.zk_cluster.controller = None  # nothing to resign: the stand-in is no driver
    await broker.stop()


async def call(broker: Broker, request: Any, version: int) -> Any:
    """A request through its handler as the network layer calls it (encoded and decoded first)."""
    api_key = request.API_KEY
    header = RequestHeader(api_key, version, 1, "test-client")
    ctx = RequestContext(broker, FakeConnection(), header, api_key, version)  # type: ignore[arg-type]
    decoded = type(request).decode(request.encode(version), version)
    result = HANDLERS[api_key].handle(ctx, decoded)
    if inspect.isawaitable(result):
        result = await result
    return result


class StandInController:
    def __init__(self, zk: KafkaZkClient, brokers: Sequence[Broker], nodes: Sequence[Node]) -> None:
        self.zk = zk
        self.brokers = list(brokers)
        self.nodes = list(nodes)
        self.paused = False
        self._epochs: dict[tuple[str, int], int] = {}
        self._running: asyncio.Task[None] | None = None
        self._again = False

    async def start(self) -> None:
        await self._sync()

    def resume(self) -> None:
        self.paused = False
        self._trigger(None)

    def _trigger(self, _event: WatchedEvent | None) -> None:
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self._again = False
            await self._sync()
            if not self._again:
                return

    async def _sync(self) -> None:
        zk = self.zk
        topics = await zk.get_all_topics(self._trigger)
        deleting = set(await zk.get_topics_marked_for_deletion(self._trigger))
        if self.paused:
            self._push([], {})
            return
        states: list[PState] = []
        ids = {}
        for topic in topics:
            got = await zk.get_topic_assignment(topic, self._trigger)
            if got is None:
                continue
            assignment, _ = got
            if assignment.topic_id is not None:
                ids[topic] = assignment.topic_id
            for partition, replicas in sorted(assignment.partitions.items()):
                if topic in deleting:
                    states.append(PState(topic, partition, -2, 0, list(replicas)))
                    continue
                epoch = self._epochs.setdefault((topic, partition), 0)
                states.append(PState(topic, partition, replicas[0], epoch, list(replicas)))
        self._push(states, ids)
        for topic in deleting:
            await zk.delete_recursive(paths.topic(topic))
            await zk.delete_recursive(paths.config_entity("topics", topic))
            await zk.delete_recursive(paths.delete_topic(topic))

    def _push(self, states: list[PState], ids: dict[str, Any]) -> None:
        request = update_metadata(
            UPDATE_METADATA_VERSION, self.nodes, states, controller_id=self.nodes[0].broker_id, topic_ids=ids
        )
        for broker in self.brokers:
            broker.metadata_cache.update(request, UPDATE_METADATA_VERSION)
