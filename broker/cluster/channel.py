"""The controller's channels to brokers, as Kafka's ``ControllerChannelManager``.

One :class:`BrokerChannel` per destination broker: a queue of requests and one task that sends
them, by default one at a time as Kafka's ``RequestSendThread``, or pipelined up to a bounded
number in flight. A request whose connection fails (refused, lost, timed out, bad response) is
sent again on a new connection after the reconnect backoff, in its original order, until it is
answered or the channel is removed: the controller removes the channels of dead brokers. A
request that can never be sent (no common version, not encodable) fails its future at once.

:class:`ChannelManager` keeps the channels by broker id and shares one
:class:`~broker.network.client.NetworkClient` among them. Its ``shutdown`` cancels every queued
request's future, ends every task and closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from broker.network.client import (
    ClientClosedError,
    ClientConfig,
    ConnectionFailure,
    NetworkClient,
    Response,
    fail_quietly,
)
from protocol.message import Message

log = logging.getLogger(__name__)

ResponseCallback = Callable[[Response], None]


class UnknownBrokerError(KeyError):
    """A request for a broker that has no channel (never added, or removed)."""

    def __str__(self) -> str:
        return f"no channel to broker {self.args[0]}"


class _Queued:
    __slots__ = ("callback", "future", "max_version", "request", "version")

    def __init__(
        self,
        request: Message,
        version: int | None,
        max_version: int | None,
        callback: ResponseCallback | None,
        future: asyncio.Future[Response],
    ) -> None:
        self.request = request
        self.version = version
        self.max_version = max_version
        self.callback = callback
        self.future = future

    def complete(self, response: Response) -> None:
        if self.future.cancelled():  # its sender gave up on it
            return
        if self.callback is not None:
            try:
                self.callback(response)
            except Exception:
                log.exception("callback of %s failed", type(self.request).__name__)
        if not self.future.done():
            self.future.set_result(response)


class BrokerChannel:
    """The queue of requests to one broker and the task that sends them."""

    def __init__(
        self, broker_id: int, host: str, port: int, client: NetworkClient, *, max_in_flight: int = 1
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.broker_id = broker_id
        self.host = host
        self.port = port
        self.max_in_flight = max_in_flight
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._pending: deque[_Queued] = deque()  # not yet sent on the current connection
        self._window: deque[tuple[_Queued, asyncio.Future[Response]]] = deque()  # sent, unanswered
        self._wakeup = asyncio.Event()
        self._conn_lost = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Requests sent again after a connection failure (a measure for tests and logs).
        self.resent = 0

    def start(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name=f"brook-channel-{self.broker_id}")

    @property
    def queued(self) -> int:
        """Requests not answered yet, in flight or waiting."""
        return len(self._pending) + len(self._window)

    def send(
        self,
        request: Message,
        *,
        version: int | None = None,
        max_version: int | None = None,
        callback: ResponseCallback | None = None,
    ) -> asyncio.Future[Response]:
        """Queue ``request``; the future (and ``callback``, on success only, as Kafka's) gets the
        response. The future is cancelled if the channel is removed first."""
        if self._closed:
            raise UnknownBrokerError(self.broker_id)
        future: asyncio.Future[Response] = self._loop.create_future()
        self._pending.append(_Queued(request, version, max_version, callback, future))
        self._fill()
        self._wakeup.set()
        return future

    def update_endpoint(self, host: str, port: int) -> None:
        """The broker re-registered elsewhere: reconnect there; queued requests are kept."""
        if (host, port) != (self.host, self.port):
            self.host, self.port = host, port
            self._client.disconnect(self.broker_id)

    async def close(self) -> None:
        """Stop the task, cancel every unanswered request's future; leaves no task behind."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._cancel_all()
        await self._client.forget(self.broker_id)

    def _cancel_all(self) -> None:
        self._closed = True
        for item, _ in self._window:
            item.future.cancel()
        for item in self._pending:
            item.future.cancel()
        self._window.clear()
        self._pending.clear()

    # -- the sending task -------------------------------------------------------------------------

    def _fill(self) -> None:
        """Send waiting requests on the current connection while the window has room."""
        conn = self._client.connection(self.broker_id)
        if conn is None or self._conn_lost:
            return
        while self._pending and len(self._window) < self.max_in_flight:
            item = self._pending[0]
            if item.future.cancelled():  # its sender gave up before it went out
                self._pending.popleft()
                continue
            try:
                future = conn.send(
                    item.request, version=item.version, max_version=item.max_version, expect_response=True
                )
            except ConnectionFailure:
                self._conn_lost = True
                self._wakeup.set()
                return
            except Exception as exc:  # never sendable: no common version, not encodable
                self._pending.popleft()
                log.error("Cannot send %s to broker %d: %s", type(item.request).__name__, self.broker_id, exc)
                fail_quietly(item.future, exc)
                continue
            assert future is not None
            self._pending.popleft()
            self._window.append((item, future))

    def _requeue_window(self) -> None:
        """Put what was in flight back at the head of the queue, in its order."""
        self.resent += len(self._window)
        while self._window:
            item, _ = self._window.pop()
            self._pending.appendleft(item)

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._pending and not self._window:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._conn_lost or self._client.connection(self.broker_id) is None:
                self._requeue_window()
                self._conn_lost = False
                try:
                    # Waits out the reconnect backoff first: a dead broker costs one try per backoff.
                    await self._client.connect(self.broker_id, self.host, self.port)
                except ClientClosedError:
                    log.warning("Channel to broker %d stops: the network client is closed", self.broker_id)
                    self._cancel_all()
                    return
                except ConnectionFailure as exc:
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(
                        level,
                        "Broker %d unreachable, %d request(s) queued: %s",
                        self.broker_id,
                        self.queued,
                        exc,
                    )
                    continue
                if failures:
                    log.info("Reconnected to broker %d after %d failed attempt(s)", self.broker_id, failures)
                failures = 0
                self._fill()
            if not self._window:
                if self._pending and not self._conn_lost:
                    self._fill()  # every pending one was unsendable or cancelled: the queue drains
                if not self._window:
                    continue
            item, future = self._window[0]
            try:
                response = await future
            except ConnectionFailure as exc:
                log.info(
                    "Request %s to broker %d failed (%s); resending after reconnecting",
                    type(item.request).__name__,
                    self.broker_id,
                    exc,
                )
                self._conn_lost = True
                continue
            self._window.popleft()
            item.complete(response)
            self._fill()


class ChannelManager:
    """Channels to brokers by id (Kafka's ``ControllerChannelManager``)."""

    def __init__(self, config: ClientConfig | None = None, *, max_in_flight: int = 1) -> None:
        self.client = NetworkClient(config)
        self.max_in_flight = max_in_flight
        self._channels: dict[int, BrokerChannel] = {}

    @property
    def broker_ids(self) -> list[int]:
        return sorted(self._channels)

    def channel(self, broker_id: int) -> BrokerChannel:
        channel = self._channels.get(broker_id)
        if channel is None:
            raise UnknownBrokerError(broker_id)
        return channel

    def add_broker(self, broker_id: int, host: str, port: int) -> None:
        """Open a channel to ``broker_id``; for a known one, follow its new endpoint."""
        channel = self._channels.get(broker_id)
        if channel is not None:
            channel.update_endpoint(host, port)
            return
        channel = BrokerChannel(broker_id, host, port, self.client, max_in_flight=self.max_in_flight)
        self._channels[broker_id] = channel
        channel.start()

    async def remove_broker(self, broker_id: int) -> None:
        """Drop the channel: its unanswered requests' futures are cancelled, callbacks not called."""
        channel = self._channels.pop(broker_id, None)
        if channel is not None:
            await channel.close()

    def send(
        self,
        broker_id: int,
        request: Message,
        callback: ResponseCallback | None = None,
        *,
        version: int | None = None,
        max_version: int | None = None,
    ) -> asyncio.Future[Response]:
        """Queue ``request`` for ``broker_id``.

        Without a channel to it (a broker that died meanwhile, say), the request is dropped with a
        warning and the future returned is cancelled, as Kafka's ``sendRequest`` does: one dead
        broker must not abort the controller's sending to the others.
        """
        channel = self._channels.get(broker_id)
        if channel is None:
            log.warning(
                "Not sending %s to broker %d: it has no channel (offline)", type(request).__name__, broker_id
            )
            dropped: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            dropped.cancel()
            return dropped
        return channel.send(request, version=version, max_version=max_version, callback=callback)

    async def shutdown(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        for channel in channels:
            await channel.close()
        await self.client.close()
