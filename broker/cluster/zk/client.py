"""``KafkaZkClient``: Kafka's ZooKeeper operations as coroutines, over kazoo.

What Kafka's ``kafka.zk.KafkaZkClient`` (3.9) does, for Brook's controller and brokers: the cluster
id, broker registration (the broker epoch is the czxid of its ephemeral znode), broker id
generation from ``/brokers/seqid``, controller election with the ``/controller_epoch`` increment,
writes fenced by the controller epoch's zkVersion (a multi-op whose first op checks it), topic
assignments, partition states, configs and their change notifications, ISR change and log dir
event notifications, and producer id blocks.

Threads: kazoo runs its connection and callback threads. Nothing here blocks the event loop: every
request uses kazoo's ``*_async`` form and its ``IAsyncResult`` completes an asyncio future through
``loop.call_soon_threadsafe``; watches and session-state changes are handed to the loop the same
way, so every callback the owner registers runs on the loop. Only kazoo's blocking start, stop
and the chroot creation at connect run in a worker thread.

Connection loss: a request that fails with a lost connection is retried once the connection is
back, as Kafka's ``retryRequestUntilConnected`` does, but only until the request deadline
(``zookeeper.session.timeout.ms`` by default), after which ``ZkUnavailableError`` says so.

Session expiry: kazoo opens a new session by itself; the client then runs the owner's
``on_new_session`` callbacks on the loop (``BrokerRegistration`` uses it to re-create the broker
znode, as Kafka's session-expiry handler re-registers the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
    ZookeeperError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent, ZnodeStat
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
)

from broker.cluster.zk import data, paths
from broker.cluster.zk.errors import (
    BrokerIdInUseError,
    ControllerMovedError,
    ProducerIdsExhaustedError,
    SecureAclsUnavailableError,
    ZkConnectionTimeoutError,
    ZkUnavailableError,
)
from storage.fast_dataclass import dataclass

log = logging.getLogger(__name__)

T = TypeVar("T")
Watcher = Callable[[WatchedEvent], None]
MATCH_ANY_VERSION = -1  # ZkVersion.MatchAnyVersion
_RETRYABLE = (ConnectionLoss, OperationTimeoutError)
_LONG_MAX = (1 << 63) - 1


class SessionState(Enum):
    CONNECTED = "connected"
    SUSPENDED = "suspended"  # connection lost, session may still be alive
    EXPIRED = "expired"  # the session is gone: ephemerals and watches with it


@dataclass(frozen=True)
class ZkSettings:
    """The broker keys that shape the connection (Kafka's defaults)."""

    connect: str  # host:port[,host:port...][/chroot]
    session_timeout_ms: int = 18000
    connection_timeout_ms: int | None = None  # None: the session timeout
    set_acl: bool = False
    # Digest credentials ("user:password") for ZooKeeper authentication, needed by set_acl.
    auth_digest: str | None = None
    request_timeout_ms: int | None = None  # None: the session timeout

    @property
    def hosts(self) -> str:
        return split_chroot(self.connect)[0]

    @property
    def chroot(self) -> str | None:
        return split_chroot(self.connect)[1]


def split_chroot(connect: str) -> tuple[str, str | None]:
    """``"h1:2181,h2:2181/kafka"`` -> ``("h1:2181,h2:2181", "/kafka")``."""
    index = connect.find("/")
    if index < 0:
        return connect, None
    chroot = connect[index:].rstrip("/")
    return connect[:index], chroot or None


def _hex(session_id: int) -> str:
    return f"0x{session_id:x}"


class KafkaZkClient:
    """One ZooKeeper session for a broker; create with ``await KafkaZkClient.connect(settings)``."""

    def __init__(self, settings: ZkSettings, loop: asyncio.AbstractEventLoop) -> None:
        if settings.set_acl and not settings.auth_digest:
            # KafkaZkClient.createZkClient refuses secure ACLs without ZooKeeper authentication.
            raise SecureAclsUnavailableError(
                "zookeeper.set.acl is true, but ZooKeeper client TLS configuration identifying at "
                "least zookeeper.ssl.client.enable, zookeeper.clientCnxnSocket, and "
                "zookeeper.ssl.keystore.location was not present and the verification of the JAAS "
                "login file failed"
            )
        self.settings = settings
        self._loop = loop
        self._zk = self._kazoo(settings.connect)
        self._state_listeners: list[Callable[[SessionState], None]] = []
        self._new_session_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._connected = asyncio.Event()
        self._session_id: int | None = None
        # the session that last registered the broker znode (KAFKA-7165's re-create check)
        self._registered_session: int | None = None
        self._closed = False
        self._zk.add_listener(self._on_kazoo_state)

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: ZkSettings) -> KafkaZkClient:
        """Connect (creating the chroot when missing, as Kafka does) within the connection timeout."""
        loop = asyncio.get_running_loop()
        client = cls(settings, loop)
        if settings.chroot:
            await client._ensure_chroot()
        await client._start(client._zk)
        return client

    def _kazoo(self, hosts: str) -> KazooClient:
        auth = [("digest", self.settings.auth_digest)] if self.settings.auth_digest else None
        return KazooClient(
            hosts=hosts,
            timeout=self.settings.session_timeout_ms / 1000,
            auth_data=auth,
            # reconnect forever: a broker keeps trying, as Kafka's ZooKeeperClient does
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0},
        )

    @property
    def _connection_timeout_s(self) -> float:
        ms = self.settings.connection_timeout_ms or self.settings.session_timeout_ms
        return ms / 1000

    @property
    def _request_timeout_s(self) -> float:
        return (self.settings.request_timeout_ms or self.settings.session_timeout_ms) / 1000

    async def _start(self, zk: KazooClient) -> None:
        try:
            await asyncio.to_thread(zk.start, self._connection_timeout_s)
        except KazooTimeoutError as exc:
            # ZooKeeperClient.waitUntilConnected's message
            raise ZkConnectionTimeoutError(
                "Timed out waiting for connection while in state: CONNECTING "
                f"({self.settings.connect}, zookeeper.connection.timeout.ms="
                f"{int(self._connection_timeout_s * 1000)})"
            ) from exc
        if zk is self._zk:
            self._session_id = zk.client_id[0] if zk.client_id else None
            self._connected.set()

    async def _ensure_chroot(self) -> None:
        chroot = self.settings.chroot
        assert chroot is not None
        plain = self._kazoo(self.settings.hosts)
        await self._start(plain)
        try:
            # kazoo's blocking ensure_path, in a worker thread
            await asyncio.wait_for(
                asyncio.to_thread(plain.ensure_path, chroot, self._acl(chroot)),
                self._request_timeout_s,
            )
        finally:
            await asyncio.to_thread(_stop_and_close, plain)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(_stop_and_close, self._zk)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Until the connection is back (the same session or a new one); at once when it is."""
        await self._connected.wait()

    @property
    def session_id(self) -> int | None:
        return self._session_id

    @property
    def session_password(self) -> bytes | None:
        return self._zk.client_id[1] if self._zk.client_id else None

    # -- session events -------------------------------------------------------------------------

    def add_state_listener(self, listener: Callable[[SessionState], None]) -> None:
        """Call ``listener`` on the loop at every connection state change."""
        self._state_listeners.append(listener)

    def add_new_session_callback(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` on the loop each time a new session replaces an expired one."""
        self._new_session_callbacks.append(callback)

    def _on_kazoo_state(self, state: str) -> None:
        # kazoo's connection thread: read the session id here, hand everything else to the loop.
        session_id = self._zk.client_id[0] if state == KazooState.CONNECTED and self._zk.client_id else None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._on_state, state, session_id)

    def _on_state(self, state: str, session_id: int | None) -> None:
        if self._closed:
            return
        if state == KazooState.CONNECTED:
            mapped = SessionState.CONNECTED
            previous, self._session_id = self._session_id, session_id
            self._connected.set()
            if previous is not None and session_id != previous:
                log.info(
                    "ZooKeeper session %s replaced expired session %s",
                    _hex(session_id or 0),
                    _hex(previous),
                )
                for callback in self._new_session_callbacks:
                    self._loop.create_task(self._run_new_session_callback(callback))
        elif state == KazooState.SUSPENDED:
            mapped = SessionState.SUSPENDED
            self._connected.clear()
        else:
            mapped = SessionState.EXPIRED
            self._connected.clear()
            log.warning("ZooKeeper session %s expired", _hex(self._session_id or 0))
        for listener in self._state_listeners:
            try:
                listener(mapped)
            except Exception:
                log.exception("ZooKeeper state listener failed")

    async def _run_new_session_callback(self, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            log.exception("re-initialisation after a new ZooKeeper session failed")

    # -- the bridge from kazoo to asyncio -------------------------------------------------------

    def _watch(self, watcher: Watcher | None) -> Callable[[WatchedEvent], None] | None:
        if watcher is None:
            return None
        loop = self._loop

        def on_kazoo_thread(event: WatchedEvent) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(watcher, event)

        return on_kazoo_thread

    def _bridge(self, result: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        loop = self._loop

        def done(res: Any) -> None:
            # on a kazoo thread: the result is ready, get() does not block
            try:
                value = res.get(block=False)
            except Exception as exc:
                outcome: tuple[Any, BaseException | None] = (None, exc)
            else:
                outcome = (value, None)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, *outcome)

        result.rawlink(done)
        return future

    async def _call(self, what: str, start: Callable[[], Any]) -> Any:
        """Run one kazoo request, retried across connection losses until the request deadline."""
        deadline = self._loop.time() + self._request_timeout_s
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise ZkUnavailableError(
                    f"ZooKeeper unavailable: {what} not done within {int(self._request_timeout_s * 1000)} ms"
                )
            try:
                if not self._connected.is_set():
                    await asyncio.wait_for(self._connected.wait(), remaining)
                    continue
                return await asyncio.wait_for(self._bridge(start()), remaining)
            except TimeoutError:
                continue
            except _RETRYABLE:
                if not self._zk.connected:
                    self._connected.clear()
                await asyncio.sleep(0.05)
            except SessionExpiredError:
                await asyncio.sleep(0.05)

    # -- generic operations ---------------------------------------------------------------------

    def _acl(self, path: str) -> list[ACL]:
        # ZkData.defaultAcls: creator-all, plus world-read unless the path is sensitive.
        if not self.settings.set_acl or path == paths.CONSUMERS:
            return list(OPEN_ACL_UNSAFE)
        acl = list(CREATOR_ALL_ACL)
        if not paths.is_sensitive(path):
            acl += list(READ_ACL_UNSAFE)
        return acl

    async def get_data(self, path: str, watch: Watcher | None = None) -> tuple[bytes, ZnodeStat] | None:
        """The znode's data and stat, or None when it does not exist."""
        try:
            value, stat = await self._call(
                f"get {path}", lambda: self._zk.get_async(path, watch=self._watch(watch))
            )
        except NoNodeError:
            return None
        return bytes(value or b""), stat

    async def exists(self, path: str, watch: Watcher | None = None) -> ZnodeStat | None:
        stat: ZnodeStat | None = await self._call(
            f"exists {path}", lambda: self._zk.exists_async(path, watch=self._watch(watch))
        )
        return stat

    async def get_children(self, path: str, watch: Watcher | None = None) -> list[str] | None:
        """Sorted child names, or None when the znode does not exist."""
        try:
            children: list[str] = await self._call(
                f"children {path}",
                lambda: self._zk.get_children_async(path, watch=self._watch(watch)),
            )
        except NoNodeError:
            return None
        return sorted(children)

    async def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequential: bool = False,
        make_parents: bool = True,
    ) -> str:
        """Create a znode (and its missing parents, Kafka's ``createRecursive``); its real path."""
        try:
            created: str = await self._call(
                f"create {path}",
                lambda: self._zk.create_async(
                    path, value, self._acl(path), ephemeral=ephemeral, sequence=sequential
                ),
            )
        except NoNodeError:
            if not make_parents:
                raise
            await self.ensure_path(path.rsplit("/", 1)[0])
            created = await self._call(
                f"create {path}",
                lambda: self._zk.create_async(
                    path, value, self._acl(path), ephemeral=ephemeral, sequence=sequential
                ),
            )
        return created

    async def ensure_path(self, path: str) -> None:
        """Kafka's ``makeSurePersistentPathExists``: create each missing ancestor, empty."""
        if not path or path == "/":
            return
        current = ""
        for part in path.strip("/").split("/"):
            current += "/" + part
            with contextlib.suppress(NodeExistsError):
                await self._call(
                    f"create {current}",
                    lambda p=current: self._zk.create_async(p, b"", self._acl(p)),  # type: ignore[misc]
                )

    async def set_data(self, path: str, value: bytes, version: int = MATCH_ANY_VERSION) -> ZnodeStat:
        stat: ZnodeStat = await self._call(f"set {path}", lambda: self._zk.set_async(path, value, version))
        return stat

    async def delete(self, path: str, version: int = MATCH_ANY_VERSION) -> bool:
        """Delete a znode; False when it was not there."""
        try:
            await self._call(f"delete {path}", lambda: self._zk.delete_async(path, version))
        except NoNodeError:
            return False
        return True

    async def delete_recursive(self, path: str, controller_epoch_zk_version: int | None = None) -> None:
        """Delete a subtree, leaves first (each delete fenced when an epoch version is given)."""
        children = await self.get_children(path)
        if children is None:
            return
        for child in children:
            await self.delete_recursive(f"{path}/{child}", controller_epoch_zk_version)
        try:
            if controller_epoch_zk_version is None:
                await self.delete(path)
            else:
                await self.fenced_delete(path, MATCH_ANY_VERSION, controller_epoch_zk_version)
        except NotEmptyError:
            # something was created underneath meanwhile: go again
            await self.delete_recursive(path, controller_epoch_zk_version)
        except NoNodeError:
            pass

    async def create_top_level_paths(self) -> None:
        """``createTopLevelPaths``: the persistent paths every broker makes sure of at start."""
        for path in paths.PERSISTENT_PATHS:
            await self.ensure_path(path)

    # -- controller-fenced writes (KafkaZkClient.wrapRequestWithControllerEpochCheck) ------------

    async def _fenced(self, what: str, add_op: Callable[[Any], None], epoch_zk_version: int) -> Any:
        def commit() -> Any:
            tx = self._zk.transaction()
            tx.check(paths.CONTROLLER_EPOCH, epoch_zk_version)
            add_op(tx)
            return tx.commit_async()

        results = await self._call(what, commit)
        check, outcome = results[0], results[1]
        if isinstance(check, BadVersionError):
            raise ControllerMovedError(
                f"Controller epoch zkVersion check fails. Expected zkVersion = {epoch_zk_version}"
            )
        if isinstance(check, Exception) and not isinstance(check, RolledBackError):
            raise check
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def fenced_create(
        self,
        path: str,
        value: bytes,
        epoch_zk_version: int,
        *,
        ephemeral: bool = False,
        sequential: bool = False,
    ) -> str:
        created: str = await self._fenced(
            f"create {path}",
            lambda tx: tx.create(path, value, self._acl(path), ephemeral=ephemeral, sequence=sequential),
            epoch_zk_version,
        )
        return created

    async def fenced_set(self, path: str, value: bytes, version: int, epoch_zk_version: int) -> ZnodeStat:
        stat: ZnodeStat = await self._fenced(
            f"set {path}", lambda tx: tx.set_data(path, value, version), epoch_zk_version
        )
        return stat

    async def fenced_delete(self, path: str, version: int, epoch_zk_version: int) -> None:
        await self._fenced(f"delete {path}", lambda tx: tx.delete(path, version), epoch_zk_version)

    # -- cluster id -----------------------------------------------------------------------------

    async def get_cluster_id(self) -> str | None:
        got = await self.get_data(paths.CLUSTER_ID)
        return data.decode_cluster_id(got[0]) if got else None

    async def create_or_get_cluster_id(self, proposed: str) -> str:
        try:
            await self.create(paths.CLUSTER_ID, data.encode_cluster_id(proposed))
            return proposed
        except NodeExistsError:
            existing = await self.get_cluster_id()
            if existing is None:
                raise ZkUnavailableError(
                    "Failed to get cluster id from Zookeeper. This can happen if /cluster/id is "
                    "deleted from Zookeeper."
                ) from None
            return existing

    # -- brokers --------------------------------------------------------------------------------

    async def register_broker(self, registration: data.BrokerRegistration) -> int:
        """Create the ephemeral ``/brokers/ids/<id>``; the broker epoch (the znode's czxid).

        As Kafka's CheckedEphemeral: create empty and set the data in one multi-op; when the node
        exists and belongs to this session it is ours, when it belongs to this client's previous
        (expired) session it is deleted and created again, otherwise the id is taken.
        """
        path = paths.broker_id(registration.broker_id)
        value = data.encode_broker(registration)
        previous_session = self._registered_session
        for _ in range(5):

            def commit() -> Any:
                tx = self._zk.transaction()
                tx.create(path, b"", self._acl(path), ephemeral=True)
                tx.set_data(path, value, 0)
                return tx.commit_async()

            results = await self._call(f"register {path}", commit)
            created, stat = results[0], results[1]
            if not isinstance(created, Exception) and not isinstance(stat, Exception):
                self._registered_session = self._session_id
                czxid: int = stat.czxid
                return czxid
            if isinstance(created, NoNodeError):
                await self.ensure_path(paths.BROKER_IDS)
                continue
            if not isinstance(created, NodeExistsError):
                raise created if isinstance(created, Exception) else stat
            existing = await self.get_data(path)
            if existing is None:
                continue  # went away meanwhile: create again
            owner = existing[1].ephemeralOwner
            current = self._session_id or 0
            if owner == current:
                self._registered_session = current
                czxid = existing[1].czxid
                return czxid
            if previous_session is not None and owner == previous_session:
                log.info(
                    "Was not possible to create the ephemeral at %s, node already exists and owner "
                    "'%s' does not match current session '%s', trying to delete and re-create it "
                    "with the newest Zookeeper session",
                    path,
                    _hex(owner),
                    _hex(current),
                )
                await self.delete(path)
                continue
            raise BrokerIdInUseError(
                f"Error while creating ephemeral at {path}, node already exists and owner "
                f"'{_hex(owner)}' does not match current session '{_hex(current)}'"
            )
        raise ZkUnavailableError(f"could not register {path}: it keeps changing")

    async def generate_broker_sequence_id(self) -> int:
        """``generateBrokerSequenceId``: the version of ``/brokers/seqid`` after an empty set."""
        try:
            stat = await self.set_data(paths.BROKER_SEQID, b"")
        except NoNodeError:
            with contextlib.suppress(NodeExistsError):
                await self.create(paths.BROKER_SEQID)
            stat = await self.set_data(paths.BROKER_SEQID, b"")
        version: int = stat.version
        return version

    async def generate_broker_id(self, reserved_broker_max_id: int = 1000) -> int:
        """KafkaServer.generateBrokerId: sequence id + ``reserved.broker.max.id`` (1001 first)."""
        return await self.generate_broker_sequence_id() + reserved_broker_max_id

    async def get_broker(self, broker_id: int) -> tuple[data.BrokerRegistration, int] | None:
        """A live broker's registration and epoch."""
        got = await self.get_data(paths.broker_id(broker_id))
        if got is None:
            return None
        return data.decode_broker(broker_id, got[0]), got[1].czxid

    async def get_live_brokers(
        self, watch: Watcher | None = None
    ) -> dict[int, tuple[data.BrokerRegistration, int]]:
        """Every registered broker with its epoch (``getAllBrokerAndEpochsInCluster``)."""
        children = await self.get_children(paths.BROKER_IDS, watch) or []
        ids = sorted(int(c) for c in children if c.lstrip("-").isdigit())
        found = await asyncio.gather(*(self.get_broker(i) for i in ids))
        return {i: got for i, got in zip(ids, found, strict=True) if got is not None}

    # -- controller -----------------------------------------------------------------------------

    async def get_controller_id(self, watch: Watcher | None = None) -> int | None:
        got = await self.get_data(paths.CONTROLLER, watch)
        return data.decode_controller(got[0]).broker_id if got else None

    async def get_controller_epoch(self) -> tuple[int, int] | None:
        """(epoch, zkVersion of /controller_epoch), or None before the first election."""
        got = await self.get_data(paths.CONTROLLER_EPOCH)
        return (data.decode_controller_epoch(got[0]), got[1].version) if got else None

    async def register_controller_and_increment_epoch(self, broker_id: int) -> tuple[int, int]:
        """Become controller: create ``/controller`` and bump ``/controller_epoch`` in one multi-op.

        Returns (new epoch, epoch zkVersion), the fence for every later controller write. Raises
        ControllerMovedError when another broker won (``registerControllerAndIncrementControllerEpoch``).
        """
        current = await self.get_controller_epoch()
        if current is None:
            try:
                # maybeCreateControllerEpochZNode: KafkaController.InitialControllerEpoch, 0
                await self.create(paths.CONTROLLER_EPOCH, data.encode_controller_epoch(0))
                current = (0, 0)
            except NodeExistsError:
                current = await self.get_controller_epoch()
                if current is None:
                    raise ControllerMovedError("/controller_epoch went away") from None
        epoch, epoch_version = current
        new_epoch = epoch + 1
        registration = data.ControllerRegistration(broker_id, int(time.time() * 1000))

        def commit() -> Any:
            tx = self._zk.transaction()
            tx.create(
                paths.CONTROLLER,
                data.encode_controller(registration),
                self._acl(paths.CONTROLLER),
                ephemeral=True,
            )
            tx.set_data(paths.CONTROLLER_EPOCH, data.encode_controller_epoch(new_epoch), epoch_version)
            return tx.commit_async()

        results = await self._call("controller election", commit)
        if not any(isinstance(r, Exception) for r in results):
            version: int = results[1].version
            return new_epoch, version
        if not any(isinstance(r, (NodeExistsError, BadVersionError)) for r in results):
            raise next(r for r in results if isinstance(r, Exception) and not isinstance(r, RolledBackError))
        # checkControllerAndEpoch: our multi may have succeeded before a lost connection's retry.
        controller = await self.get_controller_id()
        if controller is None:
            raise ControllerMovedError(
                "The ephemeral node at /controller went away while checking whether the controller "
                "election succeeds. Aborting controller startup procedure"
            )
        if controller == broker_id:
            now = await self.get_controller_epoch()
            if now is not None and now[0] == new_epoch:
                return now
        raise ControllerMovedError(
            "Controller moved to another broker. Aborting controller startup procedure"
        )

    async def delete_controller(self, epoch_zk_version: int) -> None:
        """Resign (``deleteController``), fenced: only the current controller can do it."""
        with contextlib.suppress(NoNodeError):
            await self.fenced_delete(paths.CONTROLLER, MATCH_ANY_VERSION, epoch_zk_version)

    # -- topics ---------------------------------------------------------------------------------

    async def get_all_topics(self, watch: Watcher | None = None) -> list[str]:
        return await self.get_children(paths.TOPICS, watch) or []

    async def get_topic_assignment(
        self, topic: str, watch: Watcher | None = None
    ) -> tuple[data.TopicAssignment, int] | None:
        """The topic's assignment and its znode version."""
        got = await self.get_data(paths.topic(topic), watch)
        if got is None:
            return None
        return data.decode_topic(topic, got[0]), got[1].version

    async def create_topic(
        self, topic: str, assignment: data.TopicAssignment, config: Mapping[str, str]
    ) -> None:
        """AdminZkClient.createTopicWithAssignment: the config znode first, then the assignment.

        Raises NodeExistsError when the topic exists (checked first, as validateTopicCreate does,
        so that an existing topic's config is left alone).
        """
        if await self.exists(paths.topic(topic)) is not None:
            raise NodeExistsError(f"topic {topic} already exists")
        await self.set_or_create_entity_config("topics", topic, config)
        await self.create(paths.topic(topic), data.encode_topic(assignment))

    async def set_topic_assignment(
        self,
        topic: str,
        assignment: data.TopicAssignment,
        expected_version: int,
        epoch_zk_version: int | None = None,
    ) -> int:
        """Update the assignment (conditional on its version; fenced when an epoch version is
        given); the new znode version."""
        value = data.encode_topic(assignment)
        if epoch_zk_version is None:
            stat = await self.set_data(paths.topic(topic), value, expected_version)
        else:
            stat = await self.fenced_set(paths.topic(topic), value, expected_version, epoch_zk_version)
        version: int = stat.version
        return version

    async def create_partition_states(
        self, topic: str, states: Mapping[int, data.PartitionState], epoch_zk_version: int
    ) -> dict[int, Exception | int]:
        """Create each partition's state znode, fenced; per partition its zkVersion (0) or error.

        As Kafka's createTopicPartitionStatesRaw: the partition znodes are created (unfenced, empty)
        first, then each state is a fenced create. ControllerMovedError is raised, not returned.
        """
        await asyncio.gather(*(self.ensure_path(paths.topic_partition(topic, p)) for p in states))

        async def one(partition: int, state: data.PartitionState) -> Exception | int:
            try:
                await self.fenced_create(
                    paths.partition_state(topic, partition),
                    data.encode_partition_state(state),
                    epoch_zk_version,
                )
            except ControllerMovedError:
                raise
            except ZookeeperError as exc:
                error: Exception = exc
                return error
            return 0

        results = await asyncio.gather(*(one(p, s) for p, s in states.items()))
        return dict(zip(states, results, strict=True))

    async def get_partition_state(
        self, topic: str, partition: int, watch: Watcher | None = None
    ) -> data.PartitionState | None:
        got = await self.get_data(paths.partition_state(topic, partition), watch)
        if got is None:
            return None
        return data.decode_partition_state(got[0], got[1].version)

    async def get_partition_states(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], data.PartitionState]:
        found = await asyncio.gather(*(self.get_partition_state(t, p) for t, p in partitions))
        return {tp: s for tp, s in zip(partitions, found, strict=True) if s is not None}

    async def update_partition_state(
        self, topic: str, partition: int, state: data.PartitionState, epoch_zk_version: int
    ) -> int:
        """Write ``state`` if the znode is still at ``state.zk_version``; the new zkVersion.

        BadVersionError means someone else (the leader, through AlterPartition) wrote it first.
        """
        stat = await self.fenced_set(
            paths.partition_state(topic, partition),
            data.encode_partition_state(state),
            state.zk_version,
            epoch_zk_version,
        )
        version: int = stat.version
        return version

    # -- topic deletion -------------------------------------------------------------------------

    async def mark_topic_for_deletion(self, topic: str) -> None:
        """``createDeleteTopicPath``: an empty ``/admin/delete_topics/<topic>``."""
        with contextlib.suppress(NodeExistsError):
            await self.create(paths.delete_topic(topic))

    async def get_topics_marked_for_deletion(self, watch: Watcher | None = None) -> list[str]:
        return await self.get_children(paths.DELETE_TOPICS, watch) or []

    async def delete_topic_znodes(self, topic: str, epoch_zk_version: int) -> None:
        """What the controller removes when a deletion completes: the topic's subtree, its config
        and its deletion marker, each write fenced."""
        await self.delete_recursive(paths.topic(topic), epoch_zk_version)
        await self.delete_recursive(paths.config_entity("topics", topic), epoch_zk_version)
        await self.delete_recursive(paths.delete_topic(topic), epoch_zk_version)

    # -- configs --------------------------------------------------------------------------------

    async def get_entity_config(self, entity_type: str, name: str) -> dict[str, str]:
        got = await self.get_data(paths.config_entity(entity_type, name))
        return data.decode_config(got[0]) if got else {}

    async def set_or_create_entity_config(
        self, entity_type: str, name: str, config: Mapping[str, str]
    ) -> None:
        path = paths.config_entity(entity_type, name)
        value = data.encode_config(config)
        try:
            await self.set_data(path, value)
        except NoNodeError:
            try:
                await self.create(path, value)
            except NodeExistsError:
                await self.set_data(path, value)

    async def change_entity_config(self, entity_type: str, name: str, config: Mapping[str, str]) -> str:
        """AdminZkClient.changeConfigs: write the config, then the change notification; its path."""
        await self.set_or_create_entity_config(entity_type, name, config)
        return await self.create(
            f"{paths.CONFIG_CHANGES}/{paths.CONFIG_CHANGE_PREFIX}",
            data.encode_config_change(f"{entity_type}/{name}"),
            sequential=True,
        )

    async def get_config_changes(self, watch: Watcher | None = None) -> list[tuple[str, str]]:
        """(notification name, entity path) in sequence order; vanished ones are skipped."""
        children = await self.get_children(paths.CONFIG_CHANGES, watch) or []
        names = [c for c in children if c.startswith(paths.CONFIG_CHANGE_PREFIX)]
        found = await asyncio.gather(*(self.get_data(f"{paths.CONFIG_CHANGES}/{n}") for n in names))
        return [
            (n, data.decode_config_change(got[0]))
            for n, got in zip(names, found, strict=True)
            if got is not None
        ]

    async def delete_config_changes(self, names: Sequence[str]) -> None:
        await asyncio.gather(*(self.delete(f"{paths.CONFIG_CHANGES}/{n}") for n in names))

    # -- ISR change and log dir event notifications ---------------------------------------------

    async def create_isr_change_notification(self, partitions: Sequence[tuple[str, int]]) -> str:
        return await self.create(
            f"{paths.ISR_CHANGE_NOTIFICATION}/{paths.ISR_CHANGE_PREFIX}",
            data.encode_isr_change(partitions),
            sequential=True,
        )

    async def get_isr_change_notifications(self, watch: Watcher | None = None) -> list[str]:
        """Sequence numbers of the pending notifications (``getAllIsrChangeNotifications``)."""
        children = await self.get_children(paths.ISR_CHANGE_NOTIFICATION, watch) or []
        return [paths.sequence_number(c, paths.ISR_CHANGE_PREFIX) for c in children]

    async def get_partitions_from_isr_changes(self, sequences: Sequence[str]) -> set[tuple[str, int]]:
        found = await asyncio.gather(
            *(
                self.get_data(f"{paths.ISR_CHANGE_NOTIFICATION}/{paths.ISR_CHANGE_PREFIX}{s}")
                for s in sequences
            )
        )
        out: set[tuple[str, int]] = set()
        for got in found:
            if got is not None:
                out |= data.decode_isr_change(got[0])
        return out

    async def delete_isr_change_notifications(self, sequences: Sequence[str], epoch_zk_version: int) -> None:
        for s in sequences:
            with contextlib.suppress(NoNodeError):
                await self.fenced_delete(
                    f"{paths.ISR_CHANGE_NOTIFICATION}/{paths.ISR_CHANGE_PREFIX}{s}",
                    MATCH_ANY_VERSION,
                    epoch_zk_version,
                )

    async def create_log_dir_event_notification(self, broker_id: int) -> str:
        return await self.create(
            f"{paths.LOG_DIR_EVENT_NOTIFICATION}/{paths.LOG_DIR_EVENT_PREFIX}",
            data.encode_log_dir_event(broker_id),
            sequential=True,
        )

    async def get_log_dir_event_notifications(self, watch: Watcher | None = None) -> list[str]:
        children = await self.get_children(paths.LOG_DIR_EVENT_NOTIFICATION, watch) or []
        return [paths.sequence_number(c, paths.LOG_DIR_EVENT_PREFIX) for c in children]

    async def get_brokers_from_log_dir_events(self, sequences: Sequence[str]) -> list[int]:
        found = await asyncio.gather(
            *(
                self.get_data(f"{paths.LOG_DIR_EVENT_NOTIFICATION}/{paths.LOG_DIR_EVENT_PREFIX}{s}")
                for s in sequences
            )
        )
        return [data.decode_log_dir_event(got[0]) for got in found if got is not None]

    async def delete_log_dir_event_notifications(
        self, sequences: Sequence[str], epoch_zk_version: int
    ) -> None:
        for s in sequences:
            with contextlib.suppress(NoNodeError):
                await self.fenced_delete(
                    f"{paths.LOG_DIR_EVENT_NOTIFICATION}/{paths.LOG_DIR_EVENT_PREFIX}{s}",
                    MATCH_ANY_VERSION,
                    epoch_zk_version,
                )

    # -- admin requests the controller reads ----------------------------------------------------

    async def get_partition_reassignment(
        self, watch: Watcher | None = None
    ) -> dict[tuple[str, int], list[int]]:
        got = await self.get_data(paths.REASSIGN_PARTITIONS, watch)
        return data.decode_reassignment(got[0]) if got else {}

    async def set_partition_reassignment(
        self, reassignment: Mapping[tuple[str, int], Sequence[int]], epoch_zk_version: int
    ) -> None:
        """Kafka's ``setOrCreatePartitionReassignment``: fenced, any version."""
        value = data.encode_reassignment(reassignment)
        try:
            await self.fenced_set(paths.REASSIGN_PARTITIONS, value, MATCH_ANY_VERSION, epoch_zk_version)
        except NoNodeError:
            await self.fenced_create(paths.REASSIGN_PARTITIONS, value, epoch_zk_version)

    async def delete_partition_reassignment(self, epoch_zk_version: int) -> None:
        with contextlib.suppress(NoNodeError):
            await self.fenced_delete(paths.REASSIGN_PARTITIONS, MATCH_ANY_VERSION, epoch_zk_version)

    async def get_preferred_replica_election(self, watch: Watcher | None = None) -> set[tuple[str, int]]:
        got = await self.get_data(paths.PREFERRED_REPLICA_ELECTION, watch)
        return data.decode_preferred_replica_election(got[0]) if got else set()

    async def delete_preferred_replica_election(self, epoch_zk_version: int) -> None:
        with contextlib.suppress(NoNodeError):
            await self.fenced_delete(paths.PREFERRED_REPLICA_ELECTION, MATCH_ANY_VERSION, epoch_zk_version)

    # -- producer ids ---------------------------------------------------------------------------

    async def allocate_producer_id_block(self, broker_id: int) -> data.ProducerIdBlock:
        """ZkProducerIdManager.getNewProducerIdBlock: the next block of 1000 ids for this broker,
        claimed with a conditional update of ``/latest_producer_id_block`` (retried on conflict)."""
        while True:
            got = await self.get_data(paths.LATEST_PRODUCER_ID_BLOCK)
            if got is None:
                with contextlib.suppress(NodeExistsError):
                    await self.create(paths.LATEST_PRODUCER_ID_BLOCK)
                continue
            raw, stat = got
            if raw:
                current = data.decode_producer_id_block(raw)
                if current.last_id > _LONG_MAX - data.PRODUCER_ID_BLOCK_SIZE:
                    raise ProducerIdsExhaustedError("Have exhausted all producerIds.")
                block = data.ProducerIdBlock(broker_id, current.last_id + 1)
            else:
                block = data.ProducerIdBlock(broker_id, 0)
            try:
                await self.set_data(
                    paths.LATEST_PRODUCER_ID_BLOCK, data.encode_producer_id_block(block), stat.version
                )
            except BadVersionError:
                continue  # another broker took the block we read: read again
            return block


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


def _stop_and_close(zk: KazooClient) -> None:
    try:
        zk.stop()
    finally:
        zk.close()


class BrokerRegistrar:
    """Keeps ``/brokers/ids/<id>`` registered across session expiries.

    ``register()`` creates the znode and returns the broker epoch; after a new session replaces an
    expired one the znode is created again (the old ephemeral went with the old session) and
    ``on_registered(epoch)`` is called with the new epoch, as Kafka's KafkaServer re-registers the
    broker from its session-expiry handler.
    """

    def __init__(
        self,
        client: KafkaZkClient,
        registration: data.BrokerRegistration,
        on_registered: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.registration = registration
        self.on_registered = on_registered
        self.broker_epoch: int | None = None
        client.add_new_session_callback(self._reregister)

    async def register(self) -> int:
        epoch = await self.client.register_broker(self.registration)
        self.broker_epoch = epoch
        if self.on_registered is not None:
            self.on_registered(epoch)
        return epoch

    async def _reregister(self) -> None:
        log.info("re-registering broker %d after a new ZooKeeper session", self.registration.broker_id)
        await self.register()
