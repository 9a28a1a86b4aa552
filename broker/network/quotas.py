"""Connection limits, as Kafka's ``ConnectionQuotas``.

* ``max.connections.per.ip`` (with ``max.connections.per.ip.overrides``, host:count pairs): a new
  connection from an address that already has that many is accepted and closed at once.
* ``max.connections``: when the broker holds that many connections it stops accepting; new
  connections wait in the listen backlog until one closes (Kafka's acceptor blocks the same way).

Kafka's exemption of the inter-broker listener from ``max.connections`` (when there are several
listeners) and the per-listener ``listener.name.<name>.max.connections`` are not applied: Brook has
no inter-broker traffic yet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from collections.abc import Mapping


def normalise_ip(address: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 (a dual-stack socket's view of an IPv4 peer)
    becomes the IPv4 address, as Java's InetAddress does."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


async def resolve_overrides(loop: asyncio.AbstractEventLoop, overrides: Mapping[str, int]) -> dict[str, int]:
    """The overrides keyed by address: host names are resolved (Kafka's InetAddress.getByName)
    without blocking the loop; a name that does not resolve is kept as given and matches nothing."""
    resolved: dict[str, int] = {}
    for host, limit in overrides.items():
        address = normalise_ip(host)
        try:
            ipaddress.ip_address(address)
        except ValueError:
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError:
                infos = []
            if infos:
                address = normalise_ip(str(infos[0][4][0]))
        resolved[address] = limit
    return resolved


class ConnectionQuotas:
    """Counts of open connections, overall and per address."""

    def __init__(self, max_connections: int, max_per_ip: int, per_ip_overrides: Mapping[str, int]) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.per_ip_overrides = dict(per_ip_overrides)
        self.per_ip: Counter[str] = Counter()
        self.total = 0

    def limit_for(self, address: str) -> int:
        return self.per_ip_overrides.get(address, self.max_per_ip)

    @property
    def slot_available(self) -> bool:
        return self.total < self.max_connections

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False (and not counted) when that address
        already has its maximum."""
        if self.per_ip[address] >= self.limit_for(address):
            return False
        self.per_ip[address] += 1
        self.total += 1
        return True

    def release(self, address: str) -> None:
        self.per_ip[address] -= 1
        if self.per_ip[address] <= 0:
            del self.per_ip[address]
        self.total -= 1
