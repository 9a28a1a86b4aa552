"""A Brook cluster embedded in a Python process: N ZooKeeper-mode brokers for fail-over tests.

    import broker

    with broker.embedded_cluster(brokers=3) as cluster:
        cluster.create_topic("orders", partitions=3, replication_factor=3)
        ...  # produce with acks=all to cluster.bootstrap_servers
        cluster.brokers[cluster.leader_of("orders", 0)].kill()
        cluster.wait_for_leaders("orders")
        ...  # consume everything

Each broker is an :class:`~broker.embedding.EmbeddedBroker` (ids 1..N, its own thread and event
loop, a free loopback port kept across restarts, data in ``<cluster dir>/broker-<id>``, not
fsync'd: the cluster's temporary directory is removed at stop), so each
has ``stop()``, ``start()``, ``restart()`` and ``kill()``. ``kill()`` drops the broker's ZooKeeper
session with its connections: its registration goes at once, as when a killed process's session is
closed, rather than after ``zookeeper.session.timeout.ms``.

ZooKeeper: ``zookeeper_connect`` names a running one; otherwise a real ZooKeeper server is started
from an installed distribution (:mod:`broker.testing_zookeeper`: Debian's ``zookeeper`` package or
``$ZOOKEEPER_HOME``) on a free loopback port, and stopped with the cluster. Either way the cluster
lives in a chroot of its own (``/brook-<random>`` unless the connect string has one), so clusters
sharing a ZooKeeper never see each other. Without an installed ZooKeeper, :meth:`start` raises
:class:`~broker.testing_zookeeper.ZooKeeperMissing` saying how to install one.

After :meth:`EmbeddedCluster.stop` no thread of it is left (kazoo's included), no ZooKeeper
process it started, and no temporary directory.

The waits (:meth:`~EmbeddedCluster.wait_for_brokers`, :meth:`~EmbeddedCluster.wait_for_leaders`)
ask the brokers' Metadata, as a client would see the cluster, every ``POLL_INTERVAL`` seconds until
a deadline.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from broker.admin_client import ClusterDescription, KafkaAdmin, PartitionState
from broker.embedding import (
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    EmbeddedBroker,
    OverrideValue,
    normalise_overrides,
)

if TYPE_CHECKING:
    from broker.testing_zookeeper import ZooKeeperServer

T = TypeVar("T")

#: Settings of every broker of an embedded cluster, below the caller's overrides.
CLUSTER_DEFAULTS: dict[str, str] = {
    # A hung broker (not a killed one: its session closes at once) leaves within seconds.
    "zookeeper.session.timeout.ms": "6000",
    "zookeeper.connection.timeout.ms": "15000",
    # Kafka's 5 s between controlled-shutdown attempts would make a refused attempt slow a test.
    "controlled.shutdown.retry.backoff.ms": "200",
}
DEFAULT_WAIT_TIMEOUT = 30.0
POLL_INTERVAL = 0.02


class ClusterNotReady(TimeoutError):
    """A wait's condition did not hold by its deadline; the message names what was seen last."""


class EmbeddedCluster:
    """``brokers`` Brook brokers (ids 1..N) in this process, in ZooKeeper mode.

    ``overrides`` / keywords are ``server.properties`` keys for every broker, as for
    :class:`~broker.embedding.EmbeddedBroker` (``broker.id``, ``zookeeper.connect`` and
    ``log.dirs`` are the cluster's). Construction validates them and starts nothing.
    """

    def __init__(
        self,
        brokers: int = 3,
        zookeeper_connect: str | None = None,
        overrides: Mapping[str, OverrideValue] | None = None,
        **keywords: OverrideValue,
    ) -> None:
        if brokers < 1:
            raise ValueError(f"a cluster needs at least one broker, not {brokers}")
        settings = {**CLUSTER_DEFAULTS, **normalise_overrides(overrides, keywords)}
        for reserved in ("broker.id", "node.id", "zookeeper.connect", "log.dirs", "log.dir"):
            if reserved in settings:
                raise ValueError(f"{reserved!r} is set by the embedded cluster for each broker")
        # Internal topics as replicated as the cluster allows (Kafka's default is 3).
        settings.setdefault("offsets.topic.replication.factor", str(min(brokers, 3)))
        self.size = brokers
        self._given_zookeeper = zookeeper_connect
        self._settings = settings
        self._base_dir: Path | None = None
        self._zookeeper: ZooKeeperServer | None = None
        self._connect: str | None = None
        self.brokers: dict[int, EmbeddedBroker] = {}
        # Validate the overrides now, as EmbeddedBroker does: a misspelt key fails where it is written.
        EmbeddedBroker({**settings, "zookeeper.connect": zookeeper_connect or "127.0.0.1:2181"})

    # -- state ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self.brokers)

    @property
    def zookeeper_connect(self) -> str:
        """The brokers' ``zookeeper.connect``, chroot included."""
        if self._connect is None:
            raise RuntimeError("the embedded cluster has not started")
        return self._connect

    @property
    def zookeeper(self) -> ZooKeeperServer | None:
        """The ZooKeeper server the cluster started (None when ``zookeeper_connect`` was given)."""
        return self._zookeeper

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's ``host:port``, comma-separated (clients find the live ones)."""
        return ",".join(b.bootstrap_servers for b in self._started().values())

    @property
    def live_brokers(self) -> dict[int, EmbeddedBroker]:
        return {i: b for i, b in self._started().items() if b.running}

    @property
    def controller_id(self) -> int:
        """The controller a live broker's Metadata names now (-1: none yet)."""
        return self.describe().controller_id

    def describe(self, topics: list[str] | None = None) -> ClusterDescription:
        """A live broker's Metadata answer: brokers, controller, the partitions of ``topics``."""
        for broker in self.live_brokers.values():
            with KafkaAdmin(broker.bootstrap_servers, timeout=5.0) as admin:
                return admin.describe_cluster(topics)
        raise RuntimeError("no broker of the cluster is running")

    def admin(self) -> KafkaAdmin:
        """An admin client on the cluster (topic creation follows the controller); close it."""
        return KafkaAdmin(self.bootstrap_servers)

    def leader_of(self, topic: str, partition: int = 0) -> int:
        return self.describe([topic]).topics[topic][partition].leader

    # -- waits ----------------------------------------------------------------------------------

    def wait_for_brokers(self, timeout: float = DEFAULT_WAIT_TIMEOUT) -> int:
        """Until every running broker's Metadata lists exactly the running brokers and names the
        same running controller; returns the controller's id."""
        seen: dict[int, tuple[set[int], int]] = {}

        def check() -> int | None:
            live = set(self.live_brokers)
            seen.clear()
            for broker_id in sorted(live):
                view = self._view_of(broker_id, None)
                if view is None:
                    return None
                seen[broker_id] = (set(view.brokers), view.controller_id)
            answers = set((frozenset(b), c) for b, c in seen.values())
            if len(answers) != 1:
                return None
            brokers, controller = answers.pop()
            return controller if brokers == live and controller in live else None

        return self._until(
            check, timeout, lambda: f"brokers {sorted(self.live_brokers)} to agree; seen {seen}"
        )

    def wait_for_leaders(self, topic: str, timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[int, int]:
        """Until every partition of ``topic`` has a running leader, the same in every running
        broker's Metadata, and every running replica of it in the ISR (a restarted broker caught
        up); returns ``{partition: leader}``."""
        seen: dict[int, dict[int, PartitionState] | None] = {}

        def check() -> dict[int, int] | None:
            live = set(self.live_brokers)
            seen.clear()
            for broker_id in sorted(live):
                view = self._view_of(broker_id, [topic])
                seen[broker_id] = None if view is None else view.topics.get(topic)
            states = list(seen.values())
            first = states[0] if states else None
            if not first or any(s != first for s in states):
                return None
            for state in first.values():
                if state.leader not in live or not (live & set(state.replicas)) <= set(state.isr):
                    return None
            return {p: s.leader for p, s in sorted(first.items())}

        return self._until(
            check, timeout, lambda: f"leaders of {topic!r} on {sorted(self.live_brokers)}; seen {seen}"
        )

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = -1,
        config: Mapping[str, str | int | bool] | None = None,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> dict[int, int]:
        """Create ``name`` (replication factor -1: ``default.replication.factor``) and wait until
        every running broker knows its leaders; returns ``{partition: leader}``."""
        with self.admin() as admin:
            admin.create_topic(name, partitions, replication_factor, config)
        return self.wait_for_leaders(name, timeout)

    def _view_of(self, broker_id: int, topics: list[str] | None) -> ClusterDescription | None:
        broker = self.brokers.get(broker_id)
        if broker is None or not broker.running:
            return None
        try:
            with KafkaAdmin(broker.bootstrap_servers, timeout=5.0) as admin:
                admin.addresses = [admin.address]  # this broker's view, never another's
                return admin.describe_cluster(topics)
        except OSError:
            return None

    @staticmethod
    def _until(check: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise ClusterNotReady(f"waited {timeout}s for {what()}")
            # The state lives in other brokers' Metadata: no event reaches the caller, so it polls.
            time.sleep(POLL_INTERVAL)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> EmbeddedCluster:
        """Start ZooKeeper (unless given), then every broker at once; returns when the brokers
        agree on the membership and a controller."""
        if self.brokers:
            raise RuntimeError("the embedded cluster is already running")
        self._base_dir = Path(tempfile.mkdtemp(prefix="brook-cluster-"))
        try:
            hosts = self._given_zookeeper
            if hosts is None:
                from broker.testing_zookeeper import ZooKeeperServer

                self._zookeeper = ZooKeeperServer(self._base_dir / "zookeeper").start(timeout)
                hosts = self._zookeeper.connect_string
            self._connect = hosts if "/" in hosts else f"{hosts}/brook-{uuid.uuid4().hex[:10]}"
            self.brokers = {broker_id: self._member(broker_id) for broker_id in range(1, self.size + 1)}
            self._each(lambda b: b.start(timeout), list(self.brokers.values()))
            self.wait_for_brokers(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _member(self, broker_id: int) -> EmbeddedBroker:
        assert self._base_dir is not None and self._connect is not None
        member = EmbeddedBroker(
            {
                **self._settings,
                "broker.id": str(broker_id),
                "zookeeper.connect": self._connect,
                "log.dirs": str(self._base_dir / f"broker-{broker_id}"),
            }
        )
        member.fsync_data = False  # the cluster's directory goes at stop, as a broker's temporary one
        return member

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop every broker, then the ZooKeeper the cluster started, and remove the cluster's
        directory. The data goes: brokers are stopped without a controlled shutdown or a flush
        (:meth:`EmbeddedBroker.kill`), all at once. Idempotent."""
        brokers, self.brokers = self.brokers, {}
        try:
            self._each(lambda b: b.kill(timeout), [b for b in brokers.values() if b.running])
        finally:
            if self._zookeeper is not None:
                self._zookeeper.kill()
                self._zookeeper = None
            if self._base_dir is not None:
                shutil.rmtree(self._base_dir, ignore_errors=True)
                self._base_dir = None

    @staticmethod
    def _each(action: Callable[[EmbeddedBroker], object], brokers: list[EmbeddedBroker]) -> None:
        """``action`` on every broker at once (threads joined); the first error is raised."""
        if not brokers:
            return
        with ThreadPoolExecutor(max_workers=len(brokers), thread_name_prefix="brook-cluster") as pool:
            futures = [pool.submit(action, b) for b in brokers]
        for future in futures:
            future.result()

    def _started(self) -> dict[int, EmbeddedBroker]:
        if not self.brokers:
            raise RuntimeError("the embedded cluster is not running")
        return self.brokers

    # -- context managers -----------------------------------------------------------------------

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self.brokers else "stopped"
        return f"<EmbeddedCluster of {self.size} brokers {where}>"


def embedded_cluster(
    brokers: int = 3,
    zookeeper_connect: str | None = None,
    overrides: Mapping[str, OverrideValue] | None = None,
    **keywords: OverrideValue,
) -> EmbeddedCluster:
    """An embedded cluster (not started): ``with broker.embedded_cluster(brokers=3) as c:``.
    See :class:`EmbeddedCluster`."""
    return EmbeddedCluster(brokers, zookeeper_connect, overrides, **keywords)
