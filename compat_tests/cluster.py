"""A real Brook cluster for tests: N ``python -m broker`` processes coordinated by a real ZooKeeper.

``BrokerCluster`` starts brokers 1..N (each a :class:`~compat_tests.harness.BrokerProcess` with
``zookeeper.connect``, its ``broker.id`` and a short session timeout) in a chroot of its own, waits
until all are registered in ``/brokers/ids`` and a controller is elected, and applies the faults
the cluster tests need: SIGKILL, SIGTERM, SIGSTOP/SIGCONT, session expiry, restarts.

The harness reads ZooKeeper with a kazoo client of its own (not the broker's code): what it checks
is Kafka's layout as any Kafka tool would read it. Waits on ZooKeeper state are driven by kazoo
watches (no polling), and every wait has a deadline whose failure names what was awaited, the
ZooKeeper state seen last and the brokers' log tails.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import ZnodeStat
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from compat_tests.harness import BrokerProcess
from compat_tests.zookeeper import ZooKeeperServer

#: Short sessions: a dead broker's znode goes (and its leaderships move) within seconds.
SESSION_TIMEOUT_MS = 6000
#: Registration of every broker and the first controller election, after the processes answer.
FORM_TIMEOUT = 30.0
#: What a failover may take beyond the session timeout (the issue's "plus a few seconds").
FAILOVER_SLACK = 6.0


@dataclass(frozen=True)
class ClusterView:
    """What a client's Metadata answer says about the cluster, in a comparable form."""

    brokers: dict[int, tuple[str, int]]
    controller: int
    #: topic -> partition -> (leader, replicas, isr)
    topics: dict[str, dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]]]

    def assignments(self) -> dict[str, dict[int, tuple[int, ...]]]:
        return {t: {p: s[1] for p, s in parts.items()} for t, parts in self.topics.items()}


class BrokerCluster:
    """``size`` brokers (ids 1..size) on one ZooKeeper connect string, each in ``base_dir/broker-<id>``.

    ``zk_connect`` is ``host:port[,host:port...]``; the cluster adds a chroot of its own
    (``/brook-<random>``) unless the string already has one, so clusters on one ZooKeeper never
    see each other. ``overrides`` apply to every broker (after the harness's settings).
    """

    def __init__(
        self,
        zk_connect: str,
        base_dir: Path,
        size: int = 3,
        overrides: Mapping[str, str] | None = None,
        *,
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        offsets_replication_factor: int | None = None,
    ) -> None:
        hosts, _, chroot = zk_connect.partition("/")
        self.zk_hosts = hosts
        self.chroot = f"/{chroot}" if chroot else f"/brook-{uuid.uuid4().hex[:10]}"
        self.base_dir = base_dir
        self.session_timeout_ms = session_timeout_ms
        settings = {
            "zookeeper.connect": self.zk_connect,
            "zookeeper.session.timeout.ms": str(session_timeout_ms),
            "zookeeper.connection.timeout.ms": "10000",
            "offsets.topic.replication.factor": str(offsets_replication_factor or min(size, 3)),
            "group.initial.rebalance.delay.ms": "0",
            **dict(overrides or {}),
        }
        self.brokers: dict[int, BrokerProcess] = {
            broker_id: BrokerProcess(
                base_dir / f"broker-{broker_id}" / "data", {**settings, "broker.id": str(broker_id)}
            )
            for broker_id in range(1, size + 1)
        }
        self.zk = KazooClient(hosts=f"{hosts}{self.chroot}", timeout=10.0)
        self._zk_started = False

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def zk_connect(self) -> str:
        return f"{self.zk_hosts}{self.chroot}"

    @property
    def bootstrap(self) -> str:
        """Every broker's address (clients pick any live one)."""
        return ",".join(b.bootstrap for b in self.brokers.values())

    def bootstrap_of(self, broker_id: int) -> str:
        return self.brokers[broker_id].bootstrap

    def live_bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values() if b.alive())

    @property
    def ids(self) -> list[int]:
        return sorted(self.brokers)

    def start(self) -> BrokerCluster:
        self._connect_zk()
        self._start_processes(self.ids)
        self.wait_formed()
        return self

    def _connect_zk(self) -> None:
        if self._zk_started:
            return
        plain = KazooClient(hosts=self.zk_hosts, timeout=10.0)
        plain.start(timeout=15)
        try:
            plain.ensure_path(self.chroot)
        finally:
            plain.stop()
            plain.close()
        self.zk.start(timeout=15)
        self._zk_started = True

    def _start_processes(self, ids: Iterable[int]) -> None:
        """Start several brokers at once (each start waits for its ApiVersions answer)."""
        chosen = list(ids)
        with ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
            for future in [pool.submit(self.brokers[i].start) for i in chosen]:
                future.result()

    def wait_formed(self, timeout: float = FORM_TIMEOUT) -> None:
        """Every live broker registered, a controller elected, and every live broker's Metadata
        naming all of them and that controller. ZooKeeper alone is not enough: a broker's
        registration is in ZooKeeper before the controller has acted on it (and an ensemble
        member may serve it later than the one the harness reads), and until then a topic
        with replication factor N is refused."""
        live = {i for i, b in self.brokers.items() if b.alive()}
        self.wait_registered(live, timeout)
        controller = self.wait_controller(timeout=timeout)
        self.wait_metadata_converged(live, controller, timeout)

    def wait_metadata_converged(self, live: set[int], controller: int, timeout: float = FORM_TIMEOUT) -> None:
        for broker_id in sorted(live):
            self.wait_view(
                lambda v: set(v.brokers) == live and v.controller == controller,
                timeout,
                f"broker {broker_id}'s Metadata to list brokers {sorted(live)} and controller {controller}",
                bootstrap=self.bootstrap_of(broker_id),
            )

    def close(self) -> None:
        """Kill whatever runs (tests that care stop brokers themselves) and close the ZooKeeper client."""
        for proc in self.brokers.values():
            if proc.proc is not None and proc.proc.poll() is None:
                proc.kill()  # SIGKILL ends a paused (SIGSTOPped) broker too
        if self._zk_started:
            self.zk.stop()
            self.zk.close()
            self._zk_started = False

    def __enter__(self) -> BrokerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logs(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- broker {i} ({'alive' if b.alive() else 'down'}) ---\n{b.log_tail(lines)}"
            for i, b in self.brokers.items()
        )

    # -- ZooKeeper state ------------------------------------------------------------------------

    def registered_ids(self) -> set[int]:
        return (
            {int(c) for c in self.zk.get_children("/brokers/ids")}
            if self.zk.exists("/brokers/ids")
            else set()
        )

    def broker_znode(self, broker_id: int) -> tuple[dict[str, Any], ZnodeStat] | None:
        """``/brokers/ids/<id>`` as JSON and its stat (``czxid`` is the broker epoch)."""
        found = self.zk.exists(f"/brokers/ids/{broker_id}")
        if found is None:
            return None
        try:
            raw, stat = self.zk.get(f"/brokers/ids/{broker_id}")
        except Exception:  # gone between exists and get
            return None
        return json.loads(raw), stat

    def broker_epoch(self, broker_id: int) -> int | None:
        node = self.broker_znode(broker_id)
        return None if node is None else int(node[1].czxid)

    def controller_id(self) -> int | None:
        node = self._json("/controller")
        return None if node is None else int(node["brokerid"])

    def controller_epoch(self) -> int | None:
        if self.zk.exists("/controller_epoch") is None:
            return None
        raw, _ = self.zk.get("/controller_epoch")
        return int(raw.decode())

    def topic_znode(self, topic: str) -> dict[str, Any] | None:
        """``/brokers/topics/<t>`` as Kafka writes it (version, partitions, topic_id, ...)."""
        return self._json(f"/brokers/topics/{topic}")

    def partition_state(self, topic: str, partition: int) -> dict[str, Any] | None:
        return self._json(f"/brokers/topics/{topic}/partitions/{partition}/state")

    def leader_of(self, topic: str, partition: int) -> int | None:
        """The leader in ZooKeeper's partition state (-1 when offline, None before there is one)."""
        state = self.partition_state(topic, partition)
        return None if state is None else int(state["leader"])

    def _json(self, path: str) -> dict[str, Any] | None:
        if self.zk.exists(path) is None:
            return None
        try:
            raw, _ = self.zk.get(path)
        except Exception:
            return None
        if not raw:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    # -- waits on ZooKeeper (watch-driven) ------------------------------------------------------

    def wait_data(
        self,
        path: str,
        predicate: Callable[[bytes | None, ZnodeStat | None], bool],
        timeout: float,
        what: str,
    ) -> tuple[bytes | None, ZnodeStat | None]:
        """Wait until the znode's (data, stat) satisfies ``predicate`` (None, None when absent)."""
        done = threading.Event()
        seen: list[tuple[bytes | None, ZnodeStat | None]] = []

        def on_change(data: bytes | None, stat: ZnodeStat | None, event: Any = None) -> bool | None:
            if done.is_set():
                return False
            seen[:] = [(data, stat)]
            if predicate(data, stat):
                done.set()
                return False
            return None

        DataWatch(self.zk, path, on_change)
        if not done.wait(timeout):
            done.set()  # the watch stops at its next event
            last = seen[0][0] if seen else None
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} (last {path}: {last!r})\n{self.logs()}"
            )
        return seen[0]

    def wait_children(
        self, path: str, predicate: Callable[[set[str]], bool], timeout: float, what: str
    ) -> set[str]:
        done = threading.Event()
        seen: list[set[str]] = [set()]

        def on_change(children: list[str]) -> bool | None:
            if done.is_set():
                return False
            seen[0] = set(children)
            if predicate(seen[0]):
                done.set()
                return False
            return None

        self.zk.ensure_path(path)
        ChildrenWatch(self.zk, path, on_change)
        if not done.wait(timeout):
            done.set()
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} (last children of {path}: "
                f"{sorted(seen[0])})\n{self.logs()}"
            )
        return seen[0]

    def wait_registered(self, ids: Iterable[int], timeout: float = FORM_TIMEOUT) -> None:
        wanted = {str(i) for i in ids}
        self.wait_children(
            "/brokers/ids", lambda c: wanted <= c, timeout, f"brokers {sorted(wanted)} in /brokers/ids"
        )

    def wait_unregistered(self, broker_id: int, timeout: float) -> None:
        self.wait_data(
            f"/brokers/ids/{broker_id}",
            lambda _d, stat: stat is None,
            timeout,
            f"/brokers/ids/{broker_id} gone",
        )

    def wait_reregistered(self, broker_id: int, old_epoch: int, timeout: float) -> int:
        """Wait for ``/brokers/ids/<id>`` with a czxid above ``old_epoch``; the new broker epoch."""
        _, stat = self.wait_data(
            f"/brokers/ids/{broker_id}",
            lambda _d, s: s is not None and s.czxid > old_epoch,
            timeout,
            f"broker {broker_id} registered again (epoch > {old_epoch})",
        )
        assert stat is not None
        return int(stat.czxid)

    def wait_controller(
        self, *, not_in: Iterable[int] = (), min_epoch: int = 0, timeout: float = FORM_TIMEOUT
    ) -> int:
        """Wait for a controller not in ``not_in`` whose ``/controller_epoch`` is at least ``min_epoch``."""
        excluded = set(not_in)

        def elected(data: bytes | None, _stat: ZnodeStat | None) -> bool:
            if not data:
                return False
            broker = int(json.loads(data)["brokerid"])
            epoch = self.controller_epoch()
            return broker not in excluded and epoch is not None and epoch >= min_epoch

        data, _ = self.wait_data(
            "/controller", elected, timeout, f"a controller not in {sorted(excluded)} at epoch >= {min_epoch}"
        )
        assert data is not None
        controller = int(json.loads(data)["brokerid"])
        # /controller_epoch is written before /controller in the election's multi-op, so a new
        # controller at a lower epoch cannot be seen here; check again now the node is read.
        epoch = self.controller_epoch()
        assert epoch is not None and epoch >= min_epoch, (controller, epoch, min_epoch)
        return controller

    def wait_for_leader(
        self,
        topic: str,
        partition: int,
        predicate: Callable[[int], bool],
        timeout: float,
        what: str = "a leader",
    ) -> dict[str, Any]:
        """Wait until the partition's state znode has a leader satisfying ``predicate``; the state."""

        def ok(data: bytes | None, _stat: ZnodeStat | None) -> bool:
            return bool(data) and predicate(int(json.loads(data)["leader"]))  # type: ignore[arg-type]

        data, _ = self.wait_data(
            f"/brokers/topics/{topic}/partitions/{partition}/state",
            ok,
            timeout,
            f"{what} of {topic}-{partition}",
        )
        assert data is not None
        state: dict[str, Any] = json.loads(data)
        return state

    def wait_for_leader_change(
        self, topic: str, partition: int, old_leader: int, timeout: float
    ) -> dict[str, Any]:
        """Wait for a live leader other than ``old_leader``; the new partition state."""
        return self.wait_for_leader(
            topic,
            partition,
            lambda leader: leader not in (-1, old_leader),
            timeout,
            f"a leader other than {old_leader}",
        )

    # -- faults ---------------------------------------------------------------------------------

    def kill(self, broker_id: int) -> None:
        """SIGKILL: no controlled shutdown; its session lives on until the session timeout."""
        self.brokers[broker_id].kill()

    def stop(self, broker_id: int) -> int:
        """SIGTERM and wait for the exit; the exit code."""
        return self.brokers[broker_id].stop()

    def pause(self, broker_id: int) -> None:
        proc = self.brokers[broker_id].proc
        assert proc is not None and proc.poll() is None
        proc.send_signal(signal.SIGSTOP)

    def resume(self, broker_id: int) -> None:
        proc = self.brokers[broker_id].proc
        assert proc is not None and proc.poll() is None
        proc.send_signal(signal.SIGCONT)

    def expire_session(self, broker_id: int, timeout: float | None = None) -> tuple[int, int]:
        """Expire the broker's ZooKeeper session for real; (old epoch, new epoch).

        The broker does not publish its session id and password, so kazoo's trick (a second
        connection with the same credentials, then closed) is out of reach. Instead the broker
        is frozen (SIGSTOP) until ZooKeeper expires the session and deletes its ephemeral znode,
        then thawed: it finds its session expired, opens a new one and must register again.
        """
        old_epoch = self.broker_epoch(broker_id)
        assert old_epoch is not None, f"broker {broker_id} is not registered"
        bound = timeout if timeout is not None else self.session_timeout_ms / 1000 + FAILOVER_SLACK + 10
        self.pause(broker_id)
        try:
            self.wait_unregistered(broker_id, self.session_timeout_ms / 1000 * 2 + 10)
        finally:
            self.resume(broker_id)
        return old_epoch, self.wait_reregistered(broker_id, old_epoch, bound)

    def restart(self, broker_id: int, *, hard: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``hard``) and start again on the same data and port.

        After a SIGKILL the old ephemeral znode lives until its session expires; a broker started
        before then would find its id taken (as Kafka's would), so the restart waits for it."""
        proc = self.brokers[broker_id]
        old_epoch = self.broker_epoch(broker_id) or 0
        if hard:
            proc.kill()
        else:
            proc.stop()
        self.wait_unregistered(broker_id, self.session_timeout_ms / 1000 * 2 + 10)
        proc.start()
        self.wait_reregistered(broker_id, old_epoch, FORM_TIMEOUT)
        self.wait_formed()

    def restart_all(self) -> None:
        """SIGTERM every broker (one by one, as a rolling stop would), then start them all together."""
        for broker_id in self.ids:
            code = self.brokers[broker_id].stop()
            assert code == 0, f"broker {broker_id} exited with {code}:\n{self.brokers[broker_id].log_tail()}"
        self.wait_children("/brokers/ids", lambda c: not c, 20.0, "no broker registered")
        self._start_processes(self.ids)
        self.wait_formed()

    # -- the clients' view ----------------------------------------------------------------------

    def view(self, bootstrap: str | None = None, timeout: float = 15.0) -> ClusterView:
        """The cluster as confluent-kafka's Metadata request sees it (internal topics left out)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap or self.live_bootstrap()})
        md = admin.list_topics(timeout=timeout)
        return ClusterView(
            brokers={b.id: (str(b.host), b.port) for b in md.brokers.values()},
            controller=md.controller_id,
            topics={
                name: {
                    p.id: (p.leader, tuple(p.replicas), tuple(sorted(p.isrs))) for p in t.partitions.values()
                }
                for name, t in md.topics.items()
                if not name.startswith("__")
            },
        )

    def wait_view(
        self,
        predicate: Callable[[ClusterView], bool],
        timeout: float,
        what: str,
        bootstrap: str | None = None,
    ) -> ClusterView:
        """Poll Metadata until ``predicate`` holds (no event tells a client's view has changed)."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + timeout
        view: ClusterView | str = "none yet"
        while True:
            try:
                view = self.view(bootstrap, timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            except KafkaException as exc:  # a partial answer while brokers are still starting
                view = f"Metadata failed: {exc}"
            else:
                if predicate(view):
                    return view
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; last Metadata: {view}")
            time.sleep(0.1)


def measure(action: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``action``; its result and how long it took (monotonic seconds; printed, never asserted
    on wall-clock terms beyond the issue's bound)."""
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def cluster_of(zk_connect: str, base_dir: Path, size: int = 3, **kwargs: Any) -> Iterator[BrokerCluster]:
    """Generator body for fixtures: a started cluster, closed afterwards."""
    cluster = BrokerCluster(zk_connect, base_dir, size, **kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


#: Settings of the shared clusters: auto-created topics (kcat's only way) get RF 3 as well.
SHARED_OVERRIDES = {"default.replication.factor": "3", "num.partitions": "3"}


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerCluster]:
    """Three brokers shared by the tests of one module (tests that do not break brokers)."""
    yield from _checked(
        cluster_of(zookeeper.connect_string, tmp_path_factory.mktemp("cluster"), overrides=SHARED_OVERRIDES)
    )


@pytest.fixture
def fresh_cluster(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    """Three brokers of their own, for a test that kills, stops, pauses or restarts them."""
    yield from cluster_of(zookeeper.connect_string, tmp_path / "cluster", overrides=SHARED_OVERRIDES)


def _checked(clusters: Iterator[BrokerCluster]) -> Iterator[BrokerCluster]:
    """A shared cluster must still be whole after its module: no test may have broken a broker."""
    for c in clusters:
        yield c
        dead = [i for i, b in c.brokers.items() if not b.alive()]
        assert not dead, f"brokers {dead} died during the module:\n{c.logs()}"
