"""max.connections, max.connections.per.ip and its overrides, as Kafka's ConnectionQuotas, over
real loopback sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.network.quotas import ConnectionQuotas, normalise_ip
from protocol import api as papi
from protocol.messages.api_versions_request import ApiVersionsRequest
from tests.broker.conftest import make_broker
from tests.broker.test_network import Running, closed_by_peer, read_frame

Start = Callable[..., Running]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    started: list[Running] = []

    def run(**settings: str) -> Running:
        r = Running(make_broker(tmp_path / "data", **settings))
        started.append(r)
        return r

    yield run
    for r in started:
        r.stop()


def served(sock: socket.socket, correlation_id: int = 1) -> bool:
    """Whether an ApiVersions request on ``sock`` is answered (False: the broker closed it)."""
    try:
        sock.sendall(papi.encode_request(ApiVersionsRequest(), 0, correlation_id))
        return papi.decode_response(read_frame(sock), 18, 0)[0] == correlation_id
    except (ConnectionError, OSError):
        return False


def connect_until_served(running: Running) -> socket.socket:
    """A served connection, retrying while the broker has not yet seen an earlier close."""
    deadline = time.monotonic() + 10
    while True:
        sock = running.connect()
        if served(sock):
            return sock
        sock.close()
        assert time.monotonic() < deadline, "no connection was admitted within 10 s"
        time.sleep(0.05)


def test_max_connections_per_ip_closes_the_connection_over_the_limit(start: Start) -> None:
    running = start(**{"max.connections.per.ip": "1"})
    first = running.connect()
    assert served(first)
    second = running.connect()
    assert closed_by_peer(second)
    second.close()
    first.close()
    # The slot is given back when the first one closes.
    connect_until_served(running).close()


def test_per_ip_overrides_replace_the_default_for_their_address(start: Start) -> None:
    running = start(**{"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "127.0.0.1:3"})
    kept = [running.connect() for _ in range(3)]
    assert all(served(sock) for sock in kept)
    extra = running.connect()
    assert closed_by_peer(extra)
    for sock in [*kept, extra]:
        sock.close()


def test_max_connections_stops_accepting_until_a_connection_closes(start: Start) -> None:
    running = start(**{"max.connections": "2"})
    first, second = running.connect(), running.connect()
    assert served(first) and served(second)
    waiting = running.connect()  # the kernel completes the handshake; the broker does not accept it
    waiting.sendall(papi.encode_request(ApiVersionsRequest(), 0, 7))
    waiting.settimeout(0.5)
    with pytest.raises(TimeoutError):
        waiting.recv(1)
    waiting.settimeout(10)
    first.close()
    assert papi.decode_response(read_frame(waiting), 18, 0)[0] == 7
    second.close()
    waiting.close()


def test_quota_counts_and_address_spelling() -> None:
    quotas = ConnectionQuotas(3, 1, {"10.0.0.1": 2})
    assert quotas.admit("10.0.0.2") and not quotas.admit("10.0.0.2")
    assert quotas.admit("10.0.0.1") and quotas.admit("10.0.0.1") and not quotas.admit("10.0.0.1")
    assert not quotas.slot_available
    quotas.release("10.0.0.1")
    assert quotas.slot_available and quotas.admit("10.0.0.1")
    assert normalise_ip("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalise_ip("::1") == "::1"
