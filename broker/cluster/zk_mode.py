"""ZooKeeper mode: a broker with ``zookeeper.connect`` runs as a Kafka 3.9 ZooKeeper-mode broker.

:class:`ZkCluster` is what the rest of the broker sees of it (``broker.zk_cluster``, None in the
embedded mode):

- ``zk``: the connected :class:`~broker.cluster.zk.client.KafkaZkClient` (one session);
- ``is_active_controller``: whether this broker is the controller now;
- ``controller``: the controller driver while active, else None;
- ``await_metadata(predicate, timeout_s)``: wait until the broker's metadata cache satisfies
  ``predicate`` (the controller's UpdateMetadata feeds it).

Start-up follows Kafka's ``KafkaServer.startup``: :meth:`ZkCluster.connect` (the chroot created,
the top-level paths), :meth:`ZkCluster.resolve_identity` (``/cluster/id``, checked against every
log dir's meta.properties; the broker id configured, recorded or generated), then, once the
listeners are bound, :meth:`ZkCluster.start`: the broker's registration (its epoch becomes
``broker.broker_epoch``, again after every session expiry) and the controller election.

Election (Kafka's ``KafkaController.elect``): ``/controller`` is watched; when it is absent this
broker tries to create it and bump ``/controller_epoch`` in one multi-op. The winner runs a
:class:`~broker.cluster.controller_driver.ControllerDriver`. Every election step and every
controller event runs one at a time from one queue on the loop (Kafka's ControllerEventManager),
so the sans-I/O controller is never entered twice.

Log dir failures (Kafka's ReplicaManager.handleLogDirFailure in ZooKeeper mode): from
:meth:`ZkCluster.start` on, every log dir the :class:`~storage.manager.LogManager` takes offline
(on whatever thread found the disk error) is handed to the loop, its partitions leave the replica
fetchers, and ``/log_dir_event_notification/log_dir_event_<seq>`` is written with this broker's id
(retried until written or closed); dirs already offline at start are reported too. The controller
then asks this broker, by LeaderAndIsr, which replicas are offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kazoo.protocol.states import EventType, WatchedEvent

from broker.cluster.meta_properties import ensure_meta_properties, new_cluster_id, recorded_identity
from broker.cluster.metadata_cache import MetadataCache
from broker.cluster.zk import data
from broker.cluster.zk.broker_id import resolve_broker_id
from broker.cluster.zk.client import BrokerRegistrar, KafkaZkClient, SessionState, ZkSettings
from broker.cluster.zk.cluster_id import check_cluster_id
from broker.cluster.zk.errors import ControllerMovedError, ZkUnavailableError
from broker.config import BrokerConfig
from broker.network.client import ClientConfig, NetworkClient
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.controlled_shutdown_request import ControlledShutdownRequest
from protocol.messages.controlled_shutdown_response import ControlledShutdownResponse

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.cluster.controller_driver import ControllerDriver

log = logging.getLogger(__name__)

#: The whole controlled shutdown is bounded so that stopping a broker never hangs on a controller
#: that does not answer (Kafka retries ``controlled.shutdown.max.retries`` times with no bound).
CONTROLLED_SHUTDOWN_MAX_S = 10.0

Event = Callable[[], Awaitable[None]]


def zk_settings(config: BrokerConfig) -> ZkSettings:
    """The connection settings from the broker keys."""
    connect = config.zookeeper_connect
    assert connect is not None
    session = config.get("zookeeper.session.timeout.ms")
    connection = config.get("zookeeper.connection.timeout.ms")
    assert isinstance(session, int)
    return ZkSettings(
        connect,
        session_timeout_ms=session,
        connection_timeout_ms=connection if isinstance(connection, int) else None,
        set_acl=bool(config.get("zookeeper.set.acl")),
    )


def broker_registration(
    config: BrokerConfig, broker_id: int, bound_ports: dict[str, int]
) -> data.BrokerRegistration:
    """``/brokers/ids/<id>``: every advertised listener (port 0 replaced by the bound port), its
    security protocol and the rack."""
    endpoints = tuple(
        data.Endpoint(
            lst.name,
            lst.host or None,
            lst.port or bound_ports.get(lst.name, 0),
            lst.security_protocol,
        )
        for lst in config.advertised_listeners
    )
    rack = config.get("broker.rack")
    return data.BrokerRegistration(
        broker_id,
        endpoints,
        rack=rack if isinstance(rack, str) else None,
        timestamp_ms=int(time.time() * 1000),
    )


class ZkCluster:
    """This broker's membership of a ZooKeeper-mode cluster."""

    def __init__(self, zk: KafkaZkClient, metadata_cache: MetadataCache | None = None) -> None:
        self.zk = zk
        self.metadata_cache = metadata_cache
        #: The controller driver while this broker is the active controller.
        self.controller: ControllerDriver | None = None
        self.broker: Broker | None = None
        self.registrar: BrokerRegistrar | None = None
        self._metadata_changed = asyncio.Event()
        self._events: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()
        self._event_task: asyncio.Task[None] | None = None
        self._closed = False
        #: The controller id /controller names (-1: none), as this broker last read it.
        self.active_controller_id = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Notifications of failed log dirs being written (kept referenced until done).
        self._log_dir_events: set[asyncio.Task[None]] = set()

    # -- the interface for the rest of the broker ------------------------------------------------

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
        while self.metadata_cache is None or not predicate(self.metadata_cache):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._metadata_changed.clear()
            # woken by each metadata change; re-checked at least every 100 ms regardless
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._metadata_changed.wait(), min(remaining, 0.1))
        return True

    # -- start-up ---------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, config: BrokerConfig) -> ZkCluster:
        """Connect (ZkConnectionTimeoutError after ``zookeeper.connection.timeout.ms``) and make
        sure of the top-level paths."""
        zk = await KafkaZkClient.connect(zk_settings(config))
        try:
            await zk.create_top_level_paths()
        except BaseException:
            await zk.close()
            raise
        return cls(zk)

    async def resolve_identity(self, config: BrokerConfig, log_dirs: list[Path]) -> tuple[str, BrokerId]:
        """The cluster id (``/cluster/id``, created from meta.properties' id or a new one) and the
        broker id; meta.properties is checked (InconsistentClusterIdError, MetaPropertiesError)
        and written where missing."""
        recorded_cluster, recorded_broker = await asyncio.to_thread(recorded_identity, log_dirs)
        cluster_id = await self.zk.create_or_get_cluster_id(recorded_cluster or new_cluster_id())
        await asyncio.to_thread(check_cluster_id, cluster_id, log_dirs)
        generation = config.get("broker.id.generation.enable")
        reserved = config.get("reserved.broker.max.id")
        assert isinstance(reserved, int)
        broker_id = await resolve_broker_id(
            self.zk,
            config.node_id,
            recorded_broker,
            generation_enabled=bool(generation),
            reserved_broker_max_id=reserved,
        )
        await asyncio.to_thread(ensure_meta_properties, log_dirs, BrokerId(broker_id), cluster_id)
        return cluster_id, BrokerId(broker_id)

    async def start(self, broker: Broker) -> None:
        """Register the broker (listeners bound) and join the controller election."""
        self.broker = broker
        self.metadata_cache = broker.metadata_cache
        self._event_task = asyncio.get_running_loop().create_task(
            self._run_events(), name="brook-controller-events"
        )
        registration = broker_registration(broker.config, broker.node_id, broker.bound_ports)

        def on_registered(epoch: int) -> None:
            log.info("broker %d registered in ZooKeeper with broker epoch %d", broker.node_id, epoch)
            broker.broker_epoch = epoch

        self.registrar = BrokerRegistrar(self.zk, registration, on_registered)
        self.zk.add_state_listener(self._on_session_state)
        self.zk.add_new_session_callback(self._on_new_session)
        await self.registrar.register()
        self.put("Startup", self._elect)
        self._loop = asyncio.get_running_loop()
        broker.log_manager.on_dir_offline = self._log_dir_failed
        for log_dir in list(broker.log_manager.offline_dirs):
            self._propagate_log_dir_failure(log_dir)

    # -- failed log dirs ----------------------------------------------------------------------------

    def _log_dir_failed(self, log_dir: Path) -> None:
        """LogManager's listener, on whatever thread found the disk error."""
        loop = self._loop
        if loop is not None and not self._closed:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._propagate_log_dir_failure, log_dir)

    def _propagate_log_dir_failure(self, log_dir: Path) -> None:
        """Kafka's ReplicaManager.handleLogDirFailure in ZooKeeper mode: stop fetching into the
        failed dir, then write ``/log_dir_event_notification/log_dir_event_<seq>`` so that the
        controller asks this broker which replicas are offline and moves their leadership."""
        broker = self.broker
        if broker is None or self._closed:
            return
        offline = {
            tp
            for tp in broker.replica_manager.partitions
            if broker.log_manager.log_dir_of(tp.topic, tp.partition) == log_dir
        }
        fetchers = broker.replica_manager.control.fetchers
        if offline and fetchers is not None:
            fetchers.remove_partitions(offline)
        task = asyncio.get_running_loop().create_task(
            self._write_log_dir_event(broker.node_id, log_dir), name="brook-log-dir-event"
        )
        self._log_dir_events.add(task)
        task.add_done_callback(self._log_dir_events.discard)

    async def _write_log_dir_event(self, broker_id: int, log_dir: Path) -> None:
        delay_s = 0.1
        while not self._closed:
            try:
                path = await self.zk.create_log_dir_event_notification(broker_id)
            except Exception as exc:  # connection loss: retried, as Kafka's ZooKeeperClient does
                log.warning("could not write the log dir event of %s yet: %s", log_dir, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 2.0)
                continue
            log.info("log dir %s failed: the controller is told through %s", log_dir, path)
            return

    # -- the event queue --------------------------------------------------------------------------

    def put(self, name: str, event: Event) -> bool:
        """Queue ``event`` to run after every event queued before it; False once closed."""
        if self._closed:
            return False
        self._events.put_nowait((name, event))
        return True

    async def _run_events(self) -> None:
        while True:
            name, event = await self._events.get()
            await self._run_event(name, event)

    async def _run_event(self, name: str, event: Event) -> None:
        """Run one event; while ZooKeeper is unreachable, run it again once the connection is back.

        kazoo drops every watch when the connection is lost and fires each with a state event, so
        the events queued then must run again after the reconnection: they re-read ZooKeeper and
        re-arm their watch, which a failure would lose for good. The queue waits meanwhile, as
        Kafka's controller event thread waits in ``retryRequestsUntilConnected``; after a session
        expiry the event runs once the new session is connected (a resigned controller's events
        then do nothing)."""
        while True:
            try:
                await event()
                return
            except ControllerMovedError as exc:
                log.info("controller moved while processing %s (%s): resigning", name, exc)
                await self._move_controller()
                return
            except ZkUnavailableError as exc:
                if self._closed:
                    return
                log.warning("controller event %s waits for ZooKeeper: %s", name, exc)
                await self.zk.wait_connected()
                if self._closed:
                    return
                log.info("ZooKeeper is back: running controller event %s again", name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller event %s failed", name)
                return

    # -- election ---------------------------------------------------------------------------------

    def _on_controller_znode(self, event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            self.put("ControllerChange(deleted)", self._reelect)
        else:
            self.put("ControllerChange", self._controller_changed)

    async def _controller_changed(self) -> None:
        controller = await self.zk.get_controller_id(self._on_controller_znode)
        self.active_controller_id = -1 if controller is None else controller
        assert self.broker is not None
        if self.is_active_controller and controller != self.broker.node_id:
            await self._resign()
        if controller is None:
            await self._elect()

    async def _reelect(self) -> None:
        await self._resign()
        await self._elect()

    async def _elect(self) -> None:
        """KafkaController.elect: if nobody is controller, try to become it."""
        assert self.broker is not None
        if self._closed:
            return
        broker_id = self.broker.node_id
        controller = await self.zk.get_controller_id(self._on_controller_znode)
        if controller is not None:
            self.active_controller_id = controller
            if controller != broker_id or self.is_active_controller:
                return
        try:
            epoch, epoch_zk_version = await self.zk.register_controller_and_increment_epoch(broker_id)
        except ControllerMovedError:
            controller = await self.zk.get_controller_id(self._on_controller_znode)
            self.active_controller_id = -1 if controller is None else controller
            log.info("broker %d lost the controller election to %s", broker_id, controller)
            return
        self.active_controller_id = broker_id
        log.info("broker %d is the controller (epoch %d)", broker_id, epoch)
        from broker.cluster.controller_driver import ControllerDriver

        self.controller = ControllerDriver(self, self.broker, epoch, epoch_zk_version)
        try:
            await self.controller.failover()
        except ControllerMovedError:
            raise
        except Exception:
            # A fail-over that did not complete leaves no trustworthy controller state: Kafka's
            # triggerControllerMove, after a pause so that a sick ZooKeeper is not hammered.
            log.exception("controller fail-over of broker %d failed: resigning", broker_id)
            await self._move_controller(delay_s=1.0)

    async def _move_controller(self, delay_s: float = 0.0) -> None:
        """Kafka's triggerControllerMove: resign, give up /controller if it still names this
        broker, then stand for election again."""
        driver = self.controller
        await self._resign()
        if driver is not None:
            with contextlib.suppress(Exception):  # fenced: a no-op when it is no longer ours
                if await self.zk.get_controller_id() == driver.broker.node_id:
                    await self.zk.delete_controller(driver.epoch_zk_version)
        if delay_s > 0:
            asyncio.get_running_loop().call_later(delay_s, self.put, "Reelect", self._elect)
        else:
            self.put("Reelect", self._elect)

    async def _resign(self) -> None:
        driver, self.controller = self.controller, None
        if driver is not None:
            log.info("broker %d resigns as controller", driver.broker.node_id)
            await driver.shutdown()

    # -- session --------------------------------------------------------------------------------

    def _on_session_state(self, state: SessionState) -> None:
        if state is SessionState.EXPIRED:
            # Kafka's session-expiry handler: the controller resigns (its /controller is gone).
            # Inactive at once: no queued event may act as controller any more.
            expired = self.controller
            if expired is not None:
                expired.active = False

            async def resign_expired() -> None:
                # Only the controller of the expired session: an event queued before this one
                # (a watch kazoo fired at the disconnect) may already have run again in the new
                # session and won the election there; resigning that one would leave
                # /controller naming this broker with no controller behind it.
                if self.controller is expired:
                    await self._resign()

            self.put("Expire", resign_expired)

    async def _on_new_session(self) -> None:
        # BrokerRegistrar re-registers on its own callback; watches went with the old session.
        self.put("Reelect(new session)", self._elect)

    # -- shutdown -------------------------------------------------------------------------------

    async def controlled_shutdown(self, config: BrokerConfig) -> bool:
        """Kafka's ``KafkaServer.controlledShutdown``: ask the controller to move leadership off
        this broker, retrying, until it answers with no partition left; True on success."""
        broker = self.broker
        if broker is None or not config.get("controlled.shutdown.enable"):
            return False
        if set(broker.metadata_cache.alive_broker_ids()) <= {broker.node_id}:
            # The last broker: no other can take leadership (Kafka would retry in vain).
            log.info("controlled shutdown of broker %d skipped: no other live broker", broker.node_id)
            return False
        retries = config.get("controlled.shutdown.max.retries")
        backoff_ms = config.get("controlled.shutdown.retry.backoff.ms")
        assert isinstance(retries, int) and isinstance(backoff_ms, int)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONTROLLED_SHUTDOWN_MAX_S
        listener = config.inter_broker_listener_name
        client = NetworkClient(ClientConfig.for_controller(config))
        try:
            for attempt in range(retries + 1):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                answer = await self._controlled_shutdown_once(broker, client, listener, remaining)
                if answer is True:
                    log.info("controlled shutdown of broker %d succeeded", broker.node_id)
                    return True
                if answer is None:
                    log.info(
                        "controlled shutdown of broker %d moved every replicated partition; the ones "
                        "with a single replica stay led by it until it stops",
                        broker.node_id,
                    )
                    return True
                log.info(
                    "controlled shutdown attempt %d of broker %d: %s", attempt + 1, broker.node_id, answer
                )
                if attempt < retries:
                    await asyncio.sleep(min(backoff_ms / 1000, max(0.0, deadline - loop.time())))
        finally:
            await client.close()
        log.warning("proceeding to do an unclean shutdown as all the controlled shutdown attempts failed")
        return False

    async def _controlled_shutdown_once(
        self, broker: Broker, client: NetworkClient, listener: str, budget_s: float
    ) -> bool | str | None:
        """True: done; None: only single-replica partitions remain; else why it must retry."""
        controller = broker.metadata_cache.controller_id
        if controller is None:
            return "no controller known"
        endpoint = broker.metadata_cache.alive_endpoint(controller, listener)
        if endpoint is None:
            return f"controller {controller} has no endpoint on {listener}"
        request = ControlledShutdownRequest(broker_id=broker.node_id, broker_epoch=broker.broker_epoch)
        try:
            response = await asyncio.wait_for(
                client.send(controller, endpoint.host, endpoint.port, request),
                min(budget_s, 10.0),
            )
        except Exception as exc:  # refused, lost, timed out: the next attempt
            client.disconnect(controller)
            return f"request to controller {controller} failed: {exc!r}"
        body = response.body
        assert isinstance(body, ControlledShutdownResponse)
        if body.error_code != ErrorCode.NONE:
            return f"error {ErrorCode(body.error_code).name} from controller {controller}"
        if body.remaining_partitions:
            names = ", ".join(f"{p.topic_name}-{p.partition_index}" for p in body.remaining_partitions)
            movable = [
                p
                for p in body.remaining_partitions
                if (
                    cached := broker.metadata_cache.partition(TopicPartition(p.topic_name, p.partition_index))
                )
                is None
                or len(cached.replicas) > 1
            ]
            if not movable:
                # Only single-replica partitions are left: no retry can move them.
                return None
            return f"partitions still led: {names}"
        return True

    async def close(self) -> None:
        """Resign, stop the event queue and close the session (the broker znode goes at once)."""
        if self._closed:
            return
        self._closed = True
        task = self._event_task
        # Cancelled until done: on Python 3.11 a cancellation racing with an inner wait_for's
        # completion can be lost, leaving the task waiting on the queue.
        for _ in range(20):
            if task is None or task.done():
                break
            task.cancel()
            await asyncio.wait({task}, timeout=0.25)
        for pending in list(self._log_dir_events):
            pending.cancel()
        await self._resign()
        await self.zk.close()

    # -- producer ids ---------------------------------------------------------------------------

    async def producer_id_block(self, broker_id: int) -> tuple[int, int]:
        """A cluster-wide unique block [start, end) from ``/latest_producer_id_block``."""
        block = await self.zk.allocate_producer_id_block(broker_id)
        return block.first_id, block.last_id + 1
