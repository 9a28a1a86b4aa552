"""ZooKeeper mode: a broker with ``zookeeper.connect`` runs as a Kafka 3.9 ZooKeeper-mode broker.

:class:`ZkCluster` is what the rest of the broker sees of it (``broker.zk_cluster``, None in the
embedded mode):

- ``zk``: the connected :class:`~broker.cluster.zk.client.KafkaZkClient` (one session);
- ``is_active_controller``: whether this broker is the controller now;
- ``controller``: the controller driver while active, else None;
- ``await_metadata(predicate, timeout_s)``: wait until the broker's metadata cache satisfies
  ``predicate`` (the controller's UpdateMetadata feeds it).

Start-up follows Kafka's ``KafkaServer.startup``: connect (chroot created), top-level paths, the
cluster id (``/cluster/id``, checked against every log dir's meta.properties), the broker id
(configured, recorded or generated), then, once the listeners are bound, the broker's
registration (its epoch is ``broker.broker_epoch``) and the controller election.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker.cluster.metadata_cache import MetadataCache
from broker.cluster.zk.client import KafkaZkClient

if TYPE_CHECKING:
    from broker.cluster.controller_driver import ControllerDriver


class ZkCluster:
    """This broker's membership of a ZooKeeper-mode cluster."""

    def __init__(self, zk: KafkaZkClient, metadata_cache: MetadataCache) -> None:
        self.zk = zk
        self.metadata_cache = metadata_cache
        #: The controller driver while this broker is the active controller.
        self.controller: ControllerDriver | None = None
        self._metadata_changed = asyncio.Event()

    @property
    def is_active_controller(self) -> bool:
        return self.controller is not None and self.controller.active

    def notify_metadata_changed(self) -> None:
        """Wake :meth:`await_metadata` waiters (called after each UpdateMetadata is applied)."""
        self._metadata_changed.set()

    async def await_metadata(self, predicate: Callable[[MetadataCache], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(metadata_cache)`` holds; False after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate(self.metadata_cache):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._metadata_changed.clear()
            # woken by each metadata change; re-checked at least every 100 ms regardless
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._metadata_changed.wait(), min(remaining, 0.1))
        return True
