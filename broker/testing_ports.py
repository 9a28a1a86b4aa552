"""Free loopback TCP ports for tests, benches and the in-process fixtures.

A port is picked before the process that listens on it starts, so two things can take it in
between, and both have failed a CI run:

* the same process picking it again: the kernel's ``bind(("127.0.0.1", 0))`` may return a port it
  returned a moment ago, once that probe socket is closed (a broker's metrics port came out equal
  to its listener port). This process never hands out a port twice.
* an outgoing connection, whose source port the kernel takes from the ephemeral range
  (``net.ipv4.ip_local_port_range``). Ports are picked below that range when there is room.

This module imports only the standard library.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

# Below this, well-known and registered services are more likely to be listening somewhere.
_LOWEST = 20000
_EPHEMERAL_LOW_DEFAULT = 32768
_lock = threading.Lock()
_handed_out: set[int] = set()
_cursor: int | None = None


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_LOW_DEFAULT


def _bindable(host: str, port: int) -> bool:
    # No SO_REUSEADDR: a port with any socket on it, even one in TIME_WAIT, is passed over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _below_ephemeral(host: str) -> int | None:
    global _cursor
    span = _ephemeral_low() - _LOWEST
    if span < 1000:
        return None
    if _cursor is None:  # a random start per process, so concurrent test runs rarely meet
        _cursor = random.randrange(span)
    for _ in range(span):
        port = _LOWEST + _cursor
        _cursor = (_cursor + 1) % span
        if port not in _handed_out and _bindable(host, port):
            return port
    return None


def _kernel_choice(host: str) -> int:
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            return port
    raise RuntimeError(f"no free TCP port on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing is bound to and this process has not handed out before."""
    with _lock:
        port = _below_ephemeral(host)
        if port is None:
            port = _kernel_choice(host)
        _handed_out.add(port)
        return port
