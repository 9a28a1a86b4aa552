"""The controller's channels to brokers: queueing, resend after failures, removal and shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker.cluster.channel import ChannelManager, UnknownBrokerError
from broker.network.client import ClientConfig, Response, UnsupportedApiVersionError
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import MetadataResponse
from protocol.messages.update_metadata_request import UpdateMetadataRequest
from protocol.messages.update_metadata_response import UpdateMetadataResponse
from tests.broker.conftest import make_broker
from tests.broker.fake_server import FakeConn, FakeServer, every_api, other_tasks, run

FAST = ClientConfig(
    connect_timeout_ms=2_000,
    request_timeout_ms=5_000,
    reconnect_backoff_ms=10,
    reconnect_backoff_max_ms=50,
)


async def forever() -> None:
    await asyncio.Event().wait()


def test_requests_to_a_real_broker_complete_in_order_with_callbacks(tmp_path: Path) -> None:
    async def main() -> None:
        broker = make_broker(tmp_path)
        await broker.start()
        manager = ChannelManager(FAST)
        try:
            manager.add_broker(0, "127.0.0.1", broker.bound_ports["PLAINTEXT"])
            called: list[int] = []
            futures = [
                manager.send(0, MetadataRequest(topics=[]), lambda r: called.append(r.correlation_id))
                for _ in range(20)
            ]
            responses = await asyncio.gather(*futures)
            assert [r.body.brokers[0].node_id for r in responses] == [broker.node_id] * 20
            assert called == [r.correlation_id for r in responses] == sorted(called)
            assert manager.channel(0).resent == 0
        finally:
            await manager.shutdown()
            await broker.stop(2)

    run(main())


def test_requests_are_resent_until_a_restarted_broker_answers(tmp_path: Path) -> None:
    async def main() -> None:
        first = make_broker(tmp_path / "a")
        await first.start()
        port = first.bound_ports["PLAINTEXT"]
        manager = ChannelManager(FAST)
        manager.add_broker(0, "127.0.0.1", port)
        second = make_broker(tmp_path / "b", listeners=f"PLAINTEXT://127.0.0.1:{port}")
        try:
            await manager.send(0, ApiVersionsRequest("brook", "1"))
            await first.stop(2)
            # Queued while the broker is down: refused, backed off, tried again.
            pending = [manager.send(0, MetadataRequest(topics=[])) for _ in range(3)]
            while manager.client.failed_attempts(0) < 3:  # bounded by run()'s timeout
                await asyncio.sleep(0.01)
            assert not any(f.done() for f in pending)
            await second.start()
            responses = await asyncio.gather(*pending)
            assert all(isinstance(r.body, MetadataResponse) for r in responses)
            assert manager.client.failed_attempts(0) == 0
        finally:
            await manager.shutdown()
            if second.server is not None:
                await second.stop(2)

    run(main())


def test_a_request_lost_with_its_connection_is_sent_again() -> None:
    connections = 0
    seen: list[int] = []

    async def flaky(conn: FakeConn) -> None:
        nonlocal connections
        connections += 1
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            seen.append(request.body.controller_epoch)
            if connections == 1:
                conn.close()  # the first connection dies with the request unanswered
                return
            conn.answer(request, UpdateMetadataResponse())

    async def main() -> None:
        async with FakeServer(flaky) as server:
            manager = ChannelManager(FAST)
            manager.add_broker(2, "127.0.0.1", server.port)
            futures = [manager.send(2, UpdateMetadataRequest(controller_epoch=e)) for e in (1, 2, 3)]
            responses = await asyncio.gather(*futures)
            assert all(r.body.error_code == 0 for r in responses)
            assert seen == [1, 1, 2, 3]  # one at a time: the lost one first again, order kept
            assert manager.channel(2).resent == 1
            await manager.shutdown()

    run(main())


def test_a_timed_out_request_is_resent_on_a_new_connection() -> None:
    connections = 0

    async def slow_then_fine(conn: FakeConn) -> None:
        nonlocal connections
        connections += 1
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            if connections == 1:
                await forever()
            conn.answer(request, UpdateMetadataResponse())

    async def main() -> None:
        config = ClientConfig(request_timeout_ms=200, reconnect_backoff_ms=10, reconnect_backoff_max_ms=20)
        async with FakeServer(slow_then_fine) as server:
            manager = ChannelManager(config)
            manager.add_broker(1, "127.0.0.1", server.port)
            response = await manager.send(1, UpdateMetadataRequest())
            assert response.body.error_code == 0 and connections == 2
            await manager.shutdown()

    run(main())


def test_pipelined_channel_keeps_the_in_flight_bound() -> None:
    peak = 0

    async def counting(conn: FakeConn) -> None:
        nonlocal peak
        await conn.answer_api_versions()
        read = asyncio.ensure_future(conn.read_request())
        try:
            while True:
                # Gather requests until none came for 50 ms (the client reached its bound), then
                # answer them all: the size of each gathering is what the client had in flight.
                requests = [await read]
                read = asyncio.ensure_future(conn.read_request())
                while True:
                    done, _ = await asyncio.wait({read}, timeout=0.05)
                    if not done:
                        break
                    requests.append(read.result())
                    read = asyncio.ensure_future(conn.read_request())
                peak = max(peak, len(requests))
                for request in requests:
                    conn.answer(request, MetadataResponse())
        finally:
            read.cancel()

    async def main() -> None:
        async with FakeServer(counting) as server:
            manager = ChannelManager(FAST, max_in_flight=2)
            manager.add_broker(1, "127.0.0.1", server.port)
            futures = [manager.send(1, MetadataRequest(topics=[])) for _ in range(10)]
            responses = await asyncio.gather(*futures)
            assert len(responses) == 10
            assert peak == 2
            await manager.shutdown()

    run(main())


def test_an_unsendable_request_fails_alone() -> None:
    async def script(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            conn.answer(await conn.read_request(), MetadataResponse())

    async def main() -> None:
        async with FakeServer(script) as server:
            manager = ChannelManager(FAST)
            manager.add_broker(1, "127.0.0.1", server.port)
            bad = manager.send(1, MetadataRequest(topics=[]), version=99)
            good = manager.send(1, MetadataRequest(topics=[]))
            with pytest.raises(UnsupportedApiVersionError):
                await bad
            assert isinstance((await good).body, MetadataResponse)
            await manager.shutdown()

    run(main())


def test_removing_a_broker_cancels_its_queue_and_leaves_no_task() -> None:
    async def silent(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        await forever()

    async def main() -> None:
        before = other_tasks()
        async with FakeServer(silent) as server:
            manager = ChannelManager(FAST)
            manager.add_broker(1, "127.0.0.1", server.port)
            manager.add_broker(2, "127.0.0.1", server.port)
            called: list[Response] = []
            queued = [manager.send(1, MetadataRequest(topics=[]), called.append) for _ in range(3)]
            other = manager.send(2, MetadataRequest(topics=[]))
            while (conn := manager.client.connection(1)) is None or conn.in_flight == 0:
                await asyncio.sleep(0.005)  # until the first is out (bounded by run()'s timeout)
            await manager.remove_broker(1)
            assert all(f.cancelled() for f in queued) and not called
            assert manager.broker_ids == [2]
            assert manager.send(1, MetadataRequest(topics=[])).cancelled()  # dropped, as Kafka
            with pytest.raises(UnknownBrokerError, match="no channel to broker 1"):
                manager.channel(1)
            await manager.shutdown()
            assert other.cancelled()
            assert manager.broker_ids == []
        assert other_tasks() <= before

    run(main())


def test_a_new_endpoint_is_followed_with_the_queue_kept() -> None:
    async def dead(conn: FakeConn) -> None:
        conn.close()

    async def alive(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            conn.answer(await conn.read_request(), MetadataResponse())

    async def main() -> None:
        async with FakeServer(dead) as old, FakeServer(alive) as new:
            manager = ChannelManager(FAST)
            manager.add_broker(4, "127.0.0.1", old.port)
            future = manager.send(4, MetadataRequest(topics=[]))
            manager.add_broker(4, "127.0.0.1", new.port)
            assert isinstance((await future).body, MetadataResponse)
            assert new.accepted >= 1
            await manager.shutdown()

    run(main())


def test_an_endpoint_change_during_connection_set_up_is_followed() -> None:
    release_old = asyncio.Event()
    old_requests: list[int] = []

    async def old_broker(conn: FakeConn) -> None:
        request = await conn.read_request()
        await release_old.wait()  # ApiVersions answered only after the endpoint moved
        conn.answer(request, ApiVersionsResponse(api_keys=every_api()))
        while True:
            old_requests.append((await conn.read_request()).api.api_key)

    async def new_broker(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            conn.answer(await conn.read_request(), MetadataResponse())

    async def main() -> None:
        async with FakeServer(old_broker) as old, FakeServer(new_broker) as new:
            manager = ChannelManager(FAST)
            manager.add_broker(4, "127.0.0.1", old.port)
            future = manager.send(4, MetadataRequest(topics=[]))
            while old.accepted == 0:
                await asyncio.sleep(0.005)  # until the set-up is under way (bounded by run())
            manager.add_broker(4, "127.0.0.1", new.port)
            release_old.set()
            assert isinstance((await future).body, MetadataResponse)
            assert old_requests == [] and new.accepted == 1
            await manager.shutdown()

    run(main())
