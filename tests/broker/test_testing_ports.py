"""free_port: never the same port twice in one process, never a bound one, below the ephemeral range."""

from __future__ import annotations

import socket

import pytest

from broker import testing_ports
from broker.testing_ports import free_port


def test_ports_are_never_handed_out_twice_and_lie_below_the_ephemeral_range() -> None:
    ephemeral_low = testing_ports._ephemeral_low()
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < ephemeral_low for port in ports)


def test_a_port_with_a_listener_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        # Point the cursor at the taken port, as if it came next in line.
        monkeypatch.setattr(testing_ports, "_LOWEST", taken)
        monkeypatch.setattr(testing_ports, "_ephemeral_low", lambda: taken + 1000)
        monkeypatch.setattr(testing_ports, "_cursor", 0)
        picked = free_port()
        assert picked != taken
        assert taken < picked < taken + 1000


def test_without_room_below_the_ephemeral_range_the_kernel_picks_but_never_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel's bind-to-0 hands the same port out again often (about 1 in 14 of 2,000 calls here).
    monkeypatch.setattr(testing_ports, "_ephemeral_low", lambda: 1024)
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
    for port in ports[-20:]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
