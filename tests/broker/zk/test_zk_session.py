"""Sessions: expiry and re-registration, a ZooKeeper outage shorter than the session, an ensemble
losing a member."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from broker.cluster.zk import data, paths
from broker.cluster.zk.client import BrokerRegistrar, KafkaZkClient, SessionState, ZkSettings
from broker.cluster.zk.errors import ZkUnavailableError
from compat_tests.zookeeper import ZooKeeperEnsemble, ZooKeeperServer
from tests.broker.zk.conftest import run

REG = data.BrokerRegistration(
    7, (data.Endpoint("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT"),), timestamp_ms=1
)


async def _expire_session(connect: str, client: KafkaZkClient) -> None:
    """Close ``client``'s session from another connection holding its id and password (kazoo's
    own test trick): the server ends the session and ``client`` finds it expired."""
    assert client.session_id is not None and client.session_password is not None
    thief = KazooClient(hosts=connect, client_id=(client.session_id, client.session_password))
    await asyncio.to_thread(thief.start, 10)
    await asyncio.to_thread(thief.stop)
    await asyncio.to_thread(thief.close)


def test_session_expiry_is_detected_and_the_broker_re_registers(connect: str) -> None:
    async def body() -> None:
        client = await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=4000))
        observer = await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=4000))
        try:
            states: list[SessionState] = []
            client.add_state_listener(states.append)
            epochs: asyncio.Queue[int] = asyncio.Queue()
            registrar = BrokerRegistrar(client, REG, epochs.put_nowait)
            first_epoch = await registrar.register()
            assert await asyncio.wait_for(epochs.get(), 5) == first_epoch
            old_session = client.session_id

            await _expire_session(connect, client)
            second_epoch = await asyncio.wait_for(epochs.get(), 20)

            assert SessionState.EXPIRED in states and states[-1] is SessionState.CONNECTED
            assert client.session_id != old_session
            assert second_epoch > first_epoch  # a new znode: a new czxid, a new broker epoch
            assert registrar.broker_epoch == second_epoch
            got = await observer.get_data(paths.broker_id(7))
            assert got is not None
            assert got[1].ephemeralOwner == client.session_id and got[1].czxid == second_epoch
            assert got[0] == data.encode_broker(REG)
        finally:
            await client.close()
            await observer.close()

    run(body())


@pytest.fixture
def own_zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A server of the test's own, to stop and restart."""
    server = ZooKeeperServer(tmp_path / "zk").start()
    try:
        yield server
    finally:
        server.kill()


def test_outage_shorter_than_the_session_keeps_it(own_zookeeper: ZooKeeperServer) -> None:
    connect = own_zookeeper.connect_string

    async def body() -> None:
        # The request made during the outage has a deadline of its own, from its start: long
        # enough for a ZooKeeper restart and kazoo's reconnection on a loaded machine.
        settings = ZkSettings(connect, session_timeout_ms=20000, request_timeout_ms=60000)
        client = await KafkaZkClient.connect(settings)
        try:
            suspended = asyncio.Event()
            reconnected = asyncio.Event()

            def on_state(state: SessionState) -> None:
                if state is SessionState.SUSPENDED:
                    suspended.set()
                elif state is SessionState.CONNECTED and suspended.is_set():
                    reconnected.set()

            client.add_state_listener(on_state)
            epoch = await client.register_broker(REG)
            session = client.session_id

            await asyncio.to_thread(own_zookeeper.stop)
            await asyncio.wait_for(suspended.wait(), 30)
            # a request made during the outage waits for the connection and then completes
            pending = asyncio.create_task(client.get_data(paths.broker_id(7)))
            await asyncio.to_thread(own_zookeeper.start)
            await asyncio.wait_for(reconnected.wait(), 40)
            got = await asyncio.wait_for(pending, 40)
            assert got is not None and got[1].czxid == epoch
            assert client.session_id == session  # same session: the ephemeral survived
        finally:
            await client.close()

    run(body(), timeout=150)


def test_requests_fail_clearly_when_zookeeper_stays_away(own_zookeeper: ZooKeeperServer) -> None:
    connect = own_zookeeper.connect_string

    async def body() -> None:
        client = await KafkaZkClient.connect(
            ZkSettings(connect, session_timeout_ms=20000, request_timeout_ms=1500)
        )
        try:
            await asyncio.to_thread(own_zookeeper.kill)
            with pytest.raises(ZkUnavailableError, match="ZooKeeper unavailable: children /brokers/ids"):
                await client.get_live_brokers()
        finally:
            await client.close()

    run(body())


def test_client_keeps_working_when_an_ensemble_member_dies(
    zookeeper_ensemble: ZooKeeperEnsemble,
) -> None:
    connect = f"{zookeeper_ensemble.connect_string}/brook"

    async def body() -> None:
        client = await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=6000))
        try:
            epoch = await client.register_broker(REG)
            _, epoch_version = await client.register_controller_and_increment_epoch(7)
            session = client.session_id

            # kill the very member this client is talking to (kazoo 2.11's socket, pinned version)
            connected_port = int(client._zk._connection._socket.getpeername()[1])
            victim = next(m for m in zookeeper_ensemble.members if m.client_port == connected_port)
            await asyncio.to_thread(victim.kill)

            for i in range(5):
                await client.create_isr_change_notification([("t", i)])
            assert len(await client.get_isr_change_notifications()) == 5
            await client.fenced_create("/after-failover", b"x", epoch_version)
            assert client.session_id == session  # the session moved to a surviving member
            got = await client.get_data(paths.broker_id(7))
            assert got is not None and got[1].czxid == epoch

            # the member comes back and catches up
            await asyncio.to_thread(victim.start)
            checker = await KafkaZkClient.connect(
                ZkSettings(f"{victim.connect_string}/brook", session_timeout_ms=6000)
            )
            try:
                await checker.set_data("/after-failover", b"sync")  # a write orders reads after it
                assert await checker.exists("/after-failover") is not None
                assert len(await checker.get_isr_change_notifications()) == 5
            finally:
                await checker.close()

            # then the quorum's leader dies: the two others elect one and the client goes on
            leader = await asyncio.to_thread(_wait_for_leader, zookeeper_ensemble)
            await asyncio.to_thread(leader.kill)
            await client.fenced_set("/after-failover", b"after-leader", -1, epoch_version)
            got = await client.get_data("/after-failover")
            assert got is not None and got[0] == b"after-leader"
            assert client.session_id == session
        finally:
            await client.close()

    run(body(), timeout=60)


def _wait_for_leader(ensemble: ZooKeeperEnsemble, timeout: float = 20.0) -> ZooKeeperServer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = ensemble.leader()
        if leader is not None:
            return leader
        time.sleep(0.05)
    raise TimeoutError("the ensemble has no leader")
