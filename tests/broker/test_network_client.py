"""The inter-broker client against a real Brook broker and against misbehaving fake servers."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.app import Broker
from broker.network.client import (
    BadResponseError,
    BrokerConnection,
    ClientClosedError,
    ClientConfig,
    ConnectError,
    ConnectTimeoutError,
    DisconnectedError,
    ExponentialBackoff,
    NetworkClient,
    RequestTimeoutError,
    UnsupportedApiVersionError,
)
from broker.testing_ports import free_port
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import MetadataResponse
from protocol.messages.produce_request import ProduceRequest
from tests.broker.conftest import make_broker
from tests.broker.fake_server import FakeConn, FakeServer, every_api, other_tasks, run

FAST = ClientConfig(
    client_id="test-client",
    connect_timeout_ms=2_000,
    connect_timeout_max_ms=4_000,
    request_timeout_ms=5_000,
    reconnect_backoff_ms=10,
    reconnect_backoff_max_ms=80,
)


@asynccontextmanager
async def brook(path: Path, **overrides: str) -> AsyncIterator[Broker]:
    broker = make_broker(path, **overrides)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop(2)


async def forever() -> None:
    await asyncio.Event().wait()


# -- against a real broker -------------------------------------------------------------------------


def test_versions_are_negotiated_with_a_real_broker(tmp_path: Path) -> None:
    async def main() -> None:
        async with brook(tmp_path) as broker:
            conn = await BrokerConnection.open(0, "127.0.0.1", broker.bound_ports["PLAINTEXT"], FAST)
            try:
                assert conn.api_versions is not None
                assert conn.api_versions[3] == (0, 12)
                highest = await conn.request(MetadataRequest(topics=None))
                assert highest.version == 12
                assert isinstance(highest.body, MetadataResponse)
                assert [b.node_id for b in highest.body.brokers] == [broker.node_id]
                bounded = await conn.request(MetadataRequest(topics=None), max_version=5)
                assert bounded.version == 5 and bounded.body.brokers[0].node_id == broker.node_id
                pinned = await conn.request(MetadataRequest(topics=None), version=1)
                assert pinned.version == 1
                with pytest.raises(UnsupportedApiVersionError):
                    conn.send(MetadataRequest(topics=None), version=13)
                # Brook in single-node mode serves no LeaderAndIsr: nothing to negotiate.
                with pytest.raises(UnsupportedApiVersionError, match="does not serve LeaderAndIsr"):
                    conn.send(LeaderAndIsrRequest())
                assert not conn.is_closed  # a refused send leaves the connection usable
            finally:
                conn.close()
                await conn.wait_closed()

    run(main())


def test_pipelined_requests_are_matched_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        async with brook(tmp_path) as broker:
            before = other_tasks()
            client = NetworkClient(FAST)
            conn = await client.connect(0, "127.0.0.1", broker.bound_ports["PLAINTEXT"])
            futures = []
            for i in range(300):
                request = MetadataRequest(topics=[]) if i % 3 == 0 else ApiVersionsRequest("brook", "1")
                future = conn.send(request)
                assert future is not None
                futures.append(future)
            assert conn.in_flight > 1  # they really are pipelined
            responses = await asyncio.gather(*futures)
            assert [r.correlation_id for r in responses] == sorted(r.correlation_id for r in responses)
            assert [r.api_key for r in responses] == [3 if i % 3 == 0 else 18 for i in range(300)]
            assert all(r.body.error_code == 0 for r in responses if r.api_key == 18)
            await client.close()
            assert other_tasks() <= before

    run(main())


def test_a_restarted_broker_is_reconnected_after_backoff(tmp_path: Path) -> None:
    async def main() -> None:
        client = NetworkClient(FAST)
        async with brook(tmp_path / "a") as broker:
            port = broker.bound_ports["PLAINTEXT"]
            conn = await client.connect(0, "127.0.0.1", port)
            await conn.request(ApiVersionsRequest())
        await asyncio.wait_for(conn.wait_closed(), 5)
        assert client.connection(0) is None
        with pytest.raises(ConnectError):
            await client.connect(0, "127.0.0.1", port)
        assert client.failed_attempts(0) >= 1
        again = make_broker(tmp_path / "b", listeners=f"PLAINTEXT://127.0.0.1:{port}")
        await again.start()
        try:
            conn2 = await client.connect(0, "127.0.0.1", port)
            assert conn2 is not conn and client.failed_attempts(0) == 0
            assert (await conn2.request(ApiVersionsRequest("brook", "1"))).body.error_code == 0
        finally:
            await client.close()
            await again.stop(2)

    run(main())


# -- version negotiation with fake brokers ---------------------------------------------------------


@pytest.mark.parametrize(("listed", "expected_retry"), [(2, 2), (None, 0)])
def test_api_versions_falls_back_on_unsupported_version(listed: int | None, expected_retry: int) -> None:
    asked: list[int] = []

    async def old_broker(conn: FakeConn) -> None:
        first = await conn.read_request()
        asked.append(first.version)
        keys = [] if listed is None else [ApiVersion(18, 0, listed)]
        # As an old broker: a v0 body, whatever the version asked.
        conn.answer(first, ApiVersionsResponse(ErrorCode.UNSUPPORTED_VERSION, keys), version=0)
        second = await conn.read_request()
        asked.append(second.version)
        conn.answer(second, ApiVersionsResponse(api_keys=[ApiVersion(18, 0, 2), ApiVersion(3, 0, 4)]))
        await forever()

    async def main() -> None:
        async with FakeServer(old_broker) as server:
            conn = await BrokerConnection.open(7, "127.0.0.1", server.port, FAST)
            assert asked == [3, expected_retry]
            assert conn.api_versions == {18: (0, 2), 3: (0, 4)}
            assert conn.choose_version(3) == 4
            assert conn.choose_version(3, max_version=2) == 2
            with pytest.raises(UnsupportedApiVersionError):
                conn.choose_version(1)  # Fetch is not listed
            conn.close()

    run(main())


def test_without_discovery_versions_are_pinned_or_brooks_highest() -> None:
    seen: list[tuple[int, int]] = []

    async def script(conn: FakeConn) -> None:
        while True:
            request = await conn.read_request()
            seen.append((request.api.api_key, request.version))
            conn.answer(request, MetadataResponse())

    async def main() -> None:
        config = ClientConfig(discover_versions=False)
        async with FakeServer(script) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, config)
            assert conn.api_versions is None
            await conn.request(MetadataRequest(topics=None))
            await conn.request(MetadataRequest(topics=None), version=4)
            assert seen == [(3, 12), (3, 4)]
            conn.close()

    run(main())


# -- misbehaving servers ---------------------------------------------------------------------------


def test_request_timeout_closes_the_connection_and_fails_the_rest() -> None:
    async def silent(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        await forever()

    async def main() -> None:
        async with FakeServer(silent) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            short = conn.send(MetadataRequest(topics=None), timeout_ms=100)
            long = conn.send(MetadataRequest(topics=None), timeout_ms=60_000)
            assert short is not None and long is not None
            with pytest.raises(RequestTimeoutError, match="no response within the request timeout"):
                await short
            with pytest.raises(DisconnectedError, match="timed out"):
                await long
            assert conn.is_closed
            with pytest.raises(DisconnectedError):
                conn.send(MetadataRequest(topics=None))

    run(main())


def test_close_mid_frame_fails_every_pending_request() -> None:
    async def half(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        request = await conn.read_request()
        await conn.read_request()
        frame = papi.encode_response(3, request.version, request.header.correlation_id, MetadataResponse())
        conn.write(frame[: len(frame) // 2])
        await conn.writer.drain()
        conn.close()

    async def main() -> None:
        async with FakeServer(half) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            futures = [conn.send(MetadataRequest(topics=None)) for _ in range(2)]
            for future in futures:
                assert future is not None
                with pytest.raises(DisconnectedError, match="lost"):
                    await future
            await asyncio.wait_for(conn.wait_closed(), 5)

    run(main())


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 40,  # a correlation id that matches nothing
        b"",  # no header at all
        b"\x00\x00\x00\x01" + b"\xff" * 3,  # right correlation id, body truncated
        b"\x00\x00\x00\x01" + b"\x7f\xff\xff\xff" + b"\x00" * 8,  # absurd array length
    ],
    ids=["unknown-id", "empty", "truncated", "huge-array"],
)
def test_garbage_responses_close_the_connection_with_a_typed_error(garbage: bytes) -> None:
    async def liar(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        await conn.read_request()
        await conn.read_request()
        conn.write(struct.pack(">i", len(garbage)) + garbage)
        await forever()

    async def main() -> None:
        async with FakeServer(liar) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            first = conn.send(MetadataRequest(topics=None), version=1)
            second = conn.send(MetadataRequest(topics=None), version=1)
            assert first is not None and second is not None
            with pytest.raises(BadResponseError):
                await first
            with pytest.raises(BadResponseError):
                await second
            await asyncio.wait_for(conn.wait_closed(), 5)

    run(main())


def test_out_of_order_response_closes_the_connection() -> None:
    async def shuffler(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        first = await conn.read_request()
        second = await conn.read_request()
        conn.answer(second, MetadataResponse())
        conn.answer(first, MetadataResponse())
        await forever()

    async def main() -> None:
        async with FakeServer(shuffler) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            first = conn.send(MetadataRequest(topics=None))
            second = conn.send(MetadataRequest(topics=None))
            assert first is not None and second is not None
            with pytest.raises(BadResponseError, match="out of order: expected correlation id 1, got 2"):
                await first
            with pytest.raises(BadResponseError):
                await second
            assert conn.is_closed

    run(main())


def test_response_above_the_frame_bound_is_refused() -> None:
    async def big(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        await conn.read_request()
        conn.write(struct.pack(">i", 10_000_000))
        await forever()

    async def main() -> None:
        config = ClientConfig(max_response_bytes=1_000_000)
        async with FakeServer(big) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, config)
            future = conn.send(MetadataRequest(topics=None))
            assert future is not None
            with pytest.raises(BadResponseError, match="exceeds the maximum of 1000000 bytes"):
                await future

    run(main())


def test_produce_with_acks_0_expects_no_response() -> None:
    received: list[int] = []

    async def script(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            received.append(request.api.api_key)
            if request.api.api_key != 0:
                conn.answer(request, MetadataResponse())

    async def main() -> None:
        async with FakeServer(script) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            assert conn.send(ProduceRequest(acks=0, timeout_ms=1000)) is None
            assert conn.send(ProduceRequest(acks=0, timeout_ms=1000), version=3) is None
            response = await conn.request(MetadataRequest(topics=None))
            assert response.correlation_id == 3  # 0 was ApiVersions, 1 and 2 the produces
            assert received == [0, 0, 3]
            assert conn.in_flight == 0
            conn.close()

    run(main())


# -- connecting ------------------------------------------------------------------------------------


def test_connect_timeout_when_the_peer_never_accepts() -> None:
    # A listener with a full accept queue: the kernel drops further SYNs, so connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)

        async def main() -> None:
            config = ClientConfig(connect_timeout_ms=200, connect_timeout_max_ms=400)
            with pytest.raises(ConnectTimeoutError, match="within 200 ms"):
                await BrokerConnection.open(3, "127.0.0.1", port, config)

        run(main())
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_refused_connections_back_off_exponentially_up_to_the_maximum() -> None:
    async def main() -> None:
        config = ClientConfig(reconnect_backoff_ms=20, reconnect_backoff_max_ms=200, connect_timeout_ms=1000)
        client = NetworkClient(config, rng=random.Random(11))
        port = free_port()
        loop = asyncio.get_running_loop()
        delays = []
        ends = []
        for _ in range(7):
            with pytest.raises(ConnectError, match="cannot connect"):
                await client.connect(5, "127.0.0.1", port)
            ends.append(loop.time())
            delays.append(client.reconnect_delay(5))
        assert client.failed_attempts(5) == 7
        # Each attempt waited the delay set by the failure before it (allowing the loop's clock
        # resolution); the delays follow 20 * 2^n with +-20 % jitter, capped at 200 ms.
        assert delays[0] < 0.03 and delays[-1] > 0.1
        for n, delay in enumerate(delays):
            base = 20 * 2**n
            assert delay <= min(base * 1.2, 200) / 1000 + 1e-9
        for n in range(1, 7):
            waited = ends[n] - ends[n - 1]
            assert waited >= min(20 * 2 ** (n - 1) * 0.8, 160) / 1000 - 0.005
        await client.close()

    run(main())


@given(
    initial=st.integers(1, 10_000),
    factor=st.integers(2, 100),
    attempts=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
def test_exponential_backoff_is_kafkas(initial: int, factor: int, attempts: int, seed: int) -> None:
    maximum = initial * factor
    backoff = ExponentialBackoff(initial, 2, maximum, 0.2, random.Random(seed))
    value = backoff.backoff_ms(attempts)
    term = initial * 2 ** min(attempts, 64)
    assert value <= maximum
    assert value >= min(int(0.8 * min(term, maximum)), maximum) - 1
    assert value <= int(1.2 * term) + 1
    # Never jittered: constant when the maximum is not above the initial value.
    assert ExponentialBackoff(initial, 2, initial, 0.2).backoff_ms(attempts) == initial


def test_closing_the_client_fails_pending_requests_and_leaves_no_task() -> None:
    async def silent(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        await forever()

    async def main() -> None:
        async with FakeServer(silent) as server:
            before = other_tasks()
            client = NetworkClient(FAST)
            conn = await client.connect(1, "127.0.0.1", server.port)
            future = conn.send(MetadataRequest(topics=None))
            assert future is not None
            await client.close()
            with pytest.raises(DisconnectedError, match="closed by this broker"):
                await future
            with pytest.raises(ClientClosedError):
                await client.connect(1, "127.0.0.1", server.port)
            assert other_tasks() <= before

    run(main())


def test_decoding_a_fetch_response_keeps_records_as_views_into_the_frame() -> None:
    from protocol.messages.fetch_request import FetchRequest
    from protocol.messages.fetch_response import (
        FetchableTopicResponse,
        FetchResponse,
        PartitionData,
    )

    records = bytes(range(256)) * 4096  # 1 MiB, bigger than the receive buffer

    async def leader(conn: FakeConn) -> None:
        await conn.answer_api_versions()
        request = await conn.read_request()
        body = FetchResponse(
            responses=[FetchableTopicResponse(topic="t", partitions=[PartitionData(records=records)])]
        )
        conn.answer(request, body)
        await forever()

    async def main() -> None:
        async with FakeServer(leader) as server:
            conn = await BrokerConnection.open(1, "127.0.0.1", server.port, FAST)
            response = await conn.request(FetchRequest(), version=12)
            got = response.body.responses[0].partitions[0].records
            assert isinstance(got, memoryview) and got == records
            conn.close()

    run(main())


def test_every_api_is_listed_by_the_fake() -> None:
    # The fakes above list every api of the protocol: the negotiation tests depend on it.
    assert {v.api_key for v in every_api()} >= {0, 1, 3, 4, 5, 6, 7, 18, 56}


def test_closing_the_client_during_set_up_closes_the_socket() -> None:
    accepted = asyncio.Event()
    peer_closed = asyncio.Event()

    async def mute(conn: FakeConn) -> None:
        accepted.set()
        try:
            await conn.read_request()  # ApiVersions, never answered
            await conn.read_request()
        except asyncio.IncompleteReadError:
            peer_closed.set()

    async def main() -> None:
        async with FakeServer(mute) as server:
            before = other_tasks()
            # A request timeout longer than the test's: only the close can end the socket.
            client = NetworkClient(ClientConfig(request_timeout_ms=120_000))
            attempt = asyncio.ensure_future(client.connect(1, "127.0.0.1", server.port))
            await accepted.wait()
            await client.close()
            with pytest.raises(asyncio.CancelledError):
                await attempt
            await peer_closed.wait()
            assert other_tasks() <= before

    run(main())


def test_the_client_runs_on_uvloop(tmp_path: Path) -> None:
    # The broker's loop is uvloop when installed: its transports are not asyncio.Transport.
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        async with brook(tmp_path) as broker:
            client = NetworkClient(FAST)
            conn = await client.connect(0, "127.0.0.1", broker.bound_ports["PLAINTEXT"])
            futures = [conn.send(MetadataRequest(topics=[])) for _ in range(50)]
            responses = await asyncio.gather(*(f for f in futures if f is not None))
            assert [r.correlation_id for r in responses] == list(range(1, 51))
            await client.close()

    run(main(), loop_factory=uvloop.new_event_loop)


def test_configs_for_the_controller_and_the_fetchers_follow_the_broker_keys() -> None:
    from broker.config import load_config

    config = load_config(
        None,
        [
            "broker.id=3",
            "request.timeout.ms=1234",
            "replica.socket.timeout.ms=4321",
            "socket.connection.setup.timeout.ms=111",
            "socket.connection.setup.timeout.max.ms=222",
            "replica.fetch.backoff.ms=77",
        ],
    )
    controller = ClientConfig.for_controller(config)
    assert (controller.client_id, controller.request_timeout_ms) == ("3", 1234)
    assert (controller.connect_timeout_ms, controller.connect_timeout_max_ms) == (111, 222)
    assert controller.reconnect_backoff_ms == controller.reconnect_backoff_max_ms == 100
    fetcher = ClientConfig.for_replica_fetcher(config, 2)
    assert (fetcher.client_id, fetcher.request_timeout_ms) == ("broker-3-fetcher-2", 4321)
    assert fetcher.reconnect_backoff_ms == fetcher.reconnect_backoff_max_ms == 77


def test_an_uncorked_connection_writes_each_request_in_send(tmp_path: Path) -> None:
    """A corked connection (the default) writes the requests of one turn of the loop together
    at its end; an uncorked one (a replica fetcher's) inside ``send``."""

    async def main() -> None:
        async with brook(tmp_path) as broker:
            port = broker.bound_ports["PLAINTEXT"]
            for config, at_once in ((FAST, False), (dataclasses.replace(FAST, cork=False), True)):
                conn = await BrokerConnection.open(0, "127.0.0.1", port, config)
                try:
                    transport = conn._transport
                    assert transport is not None
                    with mock.patch.object(transport, "writelines", wraps=transport.writelines) as wrote:
                        future = conn.send(MetadataRequest(topics=None))
                        assert wrote.called is at_once
                        assert future is not None
                        await asyncio.wait_for(future, 5)
                        assert wrote.call_count == 1
                finally:
                    conn.close()

    run(main())
