"""Brook embedded in a Python process: a real Kafka broker for tests, started in milliseconds.

    import broker

    with broker.embedded(num_partitions=3) as kafka:
        producer = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap_servers})
        ...

    async with broker.embedded({"auto.create.topics.enable": "false"}) as kafka:
        ...

The broker runs on an event loop of its own in a thread of the caller's process (measured against
a child process: ``bench/bench_embedded.py``; a child pays the interpreter start and Brook's
imports on every start). It listens on a free loopback port (port 0 bound, the bound port
advertised) and keeps its data in a temporary directory, removed at :meth:`~EmbeddedBroker.stop`,
unless ``log.dirs`` / ``log.dir`` names one. Temporary data is never fsync'd
(:class:`storage.fs.UnsyncedFileSystem`): it does not outlive the process, and a topic's creation
would otherwise wait for several fsyncs.

Overrides are ``server.properties`` keys: keyword arguments with the dots written as underscores
(``num_partitions=3`` is ``num.partitions=3``), or a mapping with the real keys (needed for keys
with underscores or dashes, such as listener-prefixed ones). Values may be strings, numbers,
booleans or lists. They are validated as ``python -m broker --override`` validates them
(:func:`broker.config.load_config`), and an unknown key raises :class:`~broker.config.ConfigError`
too: a misspelt key in a test should fail, not be ignored.

The host process is left as it was: no signal handler, no logging configuration (Brook logs to
the ``broker`` / ``storage`` loggers, which the host may configure), no ``gc.freeze``, and after
:meth:`~EmbeddedBroker.stop` or :meth:`~EmbeddedBroker.kill` no thread and no open descriptor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from broker.config import BrokerConfig, ConfigError, load_config

if TYPE_CHECKING:
    from broker.app import Broker

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Override values: what a ``server.properties`` line would say, or a Python value for it.
OverrideValue = str | int | float | bool | Path | list[Any] | tuple[Any, ...]

#: Brook's settings for a test broker, below the caller's overrides. Loopback and port 0: no
#: collision between parallel test processes; no initial rebalance delay and internal topics of
#: replication factor 1, as Kafka's own config/server.properties ships for a single node.
EMBEDDED_TEST_DEFAULTS: dict[str, str] = {
    "listeners": "PLAINTEXT://127.0.0.1:0",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.replication.factor": "1",
    # One partition instead of 50: a test's first consumer group creates it (measured with 50:
    # the first group's round trip ~130 ms slower, the temporary directory ~30 ms slower to remove).
    "offsets.topic.num.partitions": "1",
}

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
THREAD_NAME = "brook-embedded"


def _as_property(value: OverrideValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_as_property(v) for v in value)
    return str(value)


def normalise_overrides(
    overrides: Mapping[str, OverrideValue] | None = None, keywords: Mapping[str, OverrideValue] | None = None
) -> dict[str, str]:
    """One dict of ``server.properties`` keys: ``overrides`` as given, then ``keywords`` with
    underscores read as dots (``num_partitions`` -> ``num.partitions``); keywords win."""
    result = {str(k): _as_property(v) for k, v in (overrides or {}).items()}
    for key, value in (keywords or {}).items():
        result[key.replace("_", ".")] = _as_property(value)
    return result


class _LoopThread:
    """An event loop running in a thread of its own, and its teardown: pending tasks cancelled,
    async generators and the default executor shut down, thread joined.

    It is asyncio's own loop, not uvloop (which ``python -m broker`` uses): importing uvloop was
    ~4 ms of a first start's ~130, and a test's traffic runs as fast on either (measured with
    20,000 records through confluent-kafka: the same time and CPU within the noise)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return self.submit(coro).result(timeout)

    async def _teardown(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        await self.loop.shutdown_asyncgens()
        # Periodic work runs in the default executor: its threads must not outlive the broker.
        await self.loop.shutdown_default_executor()

    def close(self, timeout: float) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self._teardown(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()


class EmbeddedBroker:
    """A Brook broker running inside this process, on a thread and event loop of its own.

    Use it as a context manager (``with`` or ``async with``), or call :meth:`start` and
    :meth:`stop`. :meth:`restart` keeps the data and the port; :meth:`kill` stops it uncleanly,
    for tests of recovery. Construction validates the configuration and starts nothing.
    """

    def __init__(
        self, overrides: Mapping[str, OverrideValue] | None = None, /, **keywords: OverrideValue
    ) -> None:
        settings = {**EMBEDDED_TEST_DEFAULTS, **normalise_overrides(overrides, keywords)}
        #: The data directory is ours (and removed at stop) unless the caller named one.
        self.owns_data = "log.dirs" not in settings and "log.dir" not in settings
        #: Whether the data is fsync'd: not in a temporary directory (it does not outlive the
        #: process). An owner that removes a given directory itself may turn it off before start.
        self.fsync_data = not self.owns_data
        self._settings = settings
        # Validated now (the temporary directory comes at start): a bad key fails where it is written.
        self.config = self._load(
            {**settings, "log.dirs": tempfile.gettempdir()} if self.owns_data else settings
        )
        self._data_dir: Path | None = None if self.owns_data else self.config.log_dirs[0]
        self._thread: _LoopThread | None = None
        self._broker: Broker | None = None
        self._port: int | None = None
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------------

    @staticmethod
    def _load(settings: Mapping[str, str]) -> BrokerConfig:
        config = load_config(None, [f"{k}={v}" for k, v in settings.items()], environment=None)
        unknown = config.unknown_keys
        if unknown:
            raise ConfigError(
                f"Unknown configuration {unknown[0]!r} (not a Kafka 3.9 broker key)", name=unknown[0]
            )
        return config

    def _start_config(self) -> BrokerConfig:
        settings = dict(self._settings)
        if self.owns_data:
            if self._data_dir is None:
                self._data_dir = Path(tempfile.mkdtemp(prefix="brook-"))
            settings["log.dirs"] = str(self._data_dir)
        if self._port is not None and self.config.listeners[0].port == 0:
            # A restart comes back on the same port: clients keep their bootstrap address.
            first = self.config.listeners[0]
            host = f"[{first.host}]" if ":" in first.host else first.host
            rest = [lst.connection_string for lst in self.config.listeners[1:]]
            settings["listeners"] = ",".join([f"{first.name}://{host}:{self._port}", *rest])
        return self._load(settings)

    # -- state ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._broker is not None

    @property
    def broker(self) -> Broker:
        """The running :class:`~broker.app.Broker` (for white-box tests; it lives on the broker's
        own loop: touch it only through :meth:`call`)."""
        if self._broker is None:
            raise RuntimeError("the embedded broker is not running")
        return self._broker

    @property
    def port(self) -> int:
        """The port of the first listener (fixed across restarts)."""
        if self._port is None:
            raise RuntimeError("the embedded broker has not started")
        return self._port

    @property
    def host(self) -> str:
        host = self.config.advertised_listeners[0].host
        return host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for a client's ``bootstrap.servers``."""
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The first log directory (a temporary one unless ``log.dirs`` was given)."""
        if self._data_dir is None:
            raise RuntimeError("the embedded broker has not started")
        return self._data_dir

    def call(self, fn: Callable[[Broker], T | Awaitable[T]], timeout: float = DEFAULT_START_TIMEOUT) -> T:
        """Run ``fn(broker)`` on the broker's loop and return its result (awaited if awaitable)."""
        broker = self.broker
        assert self._thread is not None

        async def run() -> T:
            result = fn(broker)
            if isinstance(result, Awaitable):
                return await result
            return result

        return self._thread.call(run(), timeout)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> EmbeddedBroker:
        """Load the data, bind the port and serve; returns self. Raises if it is running."""
        with self._lock:
            if self._broker is not None:
                raise RuntimeError("the embedded broker is already running")
            config = self._start_config()
            thread = _LoopThread()
            try:
                broker = thread.call(_boot(config, unsynced=not self.fsync_data), timeout)
            except BaseException:
                thread.close(timeout)
                self._remove_data()
                raise
            self._thread = thread
            self._broker = broker
            self.config = config  # the real data directory and, after a restart, the fixed port
            self._port = broker.bound_ports[config.listeners[0].name]
            log.debug("embedded Brook broker on %s, data in %s", self.bootstrap_servers, self._data_dir)
            return self

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop cleanly (requests in flight answered; logs flushed with a clean-shutdown marker
        when the data is kept, i.e. ``log.dirs`` was given), join every thread it started and
        remove a temporary data directory. Idempotent."""
        self._shutdown(clean=True, timeout=timeout, keep_data=False)

    def restart(self, timeout: float = DEFAULT_START_TIMEOUT) -> EmbeddedBroker:
        """Stop cleanly and start again on the same data and port."""
        self._shutdown(clean=True, timeout=timeout, keep_data=True)
        return self.start(timeout)

    def kill(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop as ``kill -9`` would, as far as a thread can: connections dropped, nothing
        flushed, no checkpoint, no producer snapshot, no clean-shutdown marker
        (:meth:`broker.app.Broker.halt`). The data is kept: :meth:`start` then recovers it.
        Disk work already running in a worker thread completes (a thread cannot be interrupted);
        acknowledged data sits in the page cache, as after a process crash."""
        self._shutdown(clean=False, timeout=timeout, keep_data=True)

    def _shutdown(self, *, clean: bool, timeout: float, keep_data: bool) -> None:
        with self._lock:
            thread, broker = self._thread, self._broker
            self._thread = self._broker = None
            try:
                if thread is not None and broker is not None:
                    try:
                        # Data about to be deleted is not worth an fsync.
                        flush = keep_data or not self.owns_data
                        thread.call(broker.stop(timeout, flush=flush) if clean else broker.halt(), timeout)
                    finally:
                        thread.close(timeout)
            finally:
                if not keep_data:
                    self._remove_data()

    def _remove_data(self) -> None:
        if self.owns_data and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    # -- asyncio: the same broker, awaited without blocking the caller's loop --------------------

    async def astart(self, timeout: float = DEFAULT_START_TIMEOUT) -> EmbeddedBroker:
        return await _off_loop(self.start, timeout)

    async def astop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        await _off_loop(self.stop, timeout)

    async def arestart(self, timeout: float = DEFAULT_START_TIMEOUT) -> EmbeddedBroker:
        return await _off_loop(self.restart, timeout)

    async def akill(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        await _off_loop(self.kill, timeout)

    # -- context managers -----------------------------------------------------------------------

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self.running else "stopped"
        return f"<EmbeddedBroker {where}>"


async def _boot(config: BrokerConfig, *, unsynced: bool) -> Broker:
    """``unsynced``: the data is a temporary directory, removed at stop: no fsync is worth its
    milliseconds there (a topic's creation syncs several files and directories)."""
    # Imported here: `import broker` (and the pytest plugin) stays light until a broker starts.
    from broker.app import Broker
    from storage import UnsyncedFileSystem

    broker = Broker(config, fs=UnsyncedFileSystem() if unsynced else None)
    try:
        await broker.start(freeze_gc=False)
    except BaseException:
        await broker.halt()
        raise
    return broker


async def _off_loop(fn: Callable[[float], T], timeout: float) -> T:
    """Run a blocking lifecycle call in a thread of its own (joined), not in the caller's loop's
    default executor: the caller's loop never blocks and keeps no thread of ours."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = fn(timeout)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    thread = threading.Thread(target=work, name=f"{THREAD_NAME}-control", daemon=True)
    thread.start()
    # Shielded: a cancelled caller does not leave a half-started broker; the work completes.
    result = await asyncio.shield(future)
    thread.join(timeout)  # it has settled the future: this returns at once
    return result


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def embedded(
    overrides: Mapping[str, OverrideValue] | None = None, /, **keywords: OverrideValue
) -> EmbeddedBroker:
    """An embedded broker (not started): ``with broker.embedded(num_partitions=3) as b:`` or
    ``async with``. See :class:`EmbeddedBroker`."""
    return EmbeddedBroker(overrides, **keywords)


#: The same object: ``async with broker.embedded_async(...)`` reads better in asyncio code.
embedded_async = embedded
