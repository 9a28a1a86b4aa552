"""Listener endpoints: ``listeners``, ``advertised.listeners`` and ``listener.security.protocol.map``.

Parsing follows Kafka (``SocketServerConfigs.listenerListToEndPoints`` and ``CoreUtils``):
``NAME://host:port`` entries separated by commas, IPv6 hosts in brackets (``[::1]:9092``), an empty
host meaning every interface, listener names case-insensitive (normalised to upper case), and each
name's security protocol looked up in the protocol map. Two bind listeners may share a port only if
one is on an IPv4 and the other on an IPv6 address.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict

from storage.fast_dataclass import dataclass

from .broker_defs import SECURITY_PROTOCOLS
from .errors import ConfigError
from .values import java_trim

#: What Brook can serve: all four of Kafka's security protocols.
SUPPORTED_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_ENDPOINT = re.compile(r"(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)")
_CSV = re.compile(r"\s*,\s*")
#: Hosts that mean "any interface": fine to bind, useless to advertise.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Listener:
    """One endpoint. ``host`` is ``""`` for "all interfaces" (bind listeners only); IPv6 hosts
    are stored without brackets."""

    name: str
    host: str
    port: int
    security_protocol: str

    @property
    def connection_string(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


def _ip_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).version
    except ValueError:
        return None


def parse_security_protocol_map(text: str, config: str = "listener.security.protocol.map") -> dict[str, str]:
    """``NAME:PROTOCOL,...`` -> {NAME: PROTOCOL}, names upper-cased, protocols validated."""
    result: dict[str, str] = {}
    if not text:
        return result
    for pair in _CSV.split(text):
        name, sep, protocol = pair.rpartition(":")
        if not sep:
            raise ConfigError.invalid(config, text, f"entry {pair!r} is not of the form NAME:PROTOCOL")
        protocol = protocol.strip().upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigError.invalid(
                config,
                text,
                f"Invalid security protocol `{protocol}` (expected one of {', '.join(SECURITY_PROTOCOLS)})",
            )
        result[name.strip().upper()] = protocol
    return result


def parse_listeners(
    text: str, protocols: dict[str, str], *, config: str = "listeners", distinct_ports: bool = True
) -> list[Listener]:
    """Parse a listener list; ConfigError names ``config`` and the offending entry."""
    listeners: list[Listener] = []
    for entry in (e for e in _CSV.split(java_trim(text)) if e):
        match = _ENDPOINT.fullmatch(entry)
        if match is None:
            raise ConfigError.invalid(
                config, text, f"Unable to parse {entry} to a broker endpoint (expected NAME://host:port)"
            )
        name, host, port_text = match.group(1).upper(), match.group(2), match.group(3)
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ConfigError.invalid(config, text, f"port {port} of {entry} is not within 0..65535")
        if name not in protocols:
            raise ConfigError.invalid(
                config,
                text,
                f"No security protocol defined for listener {name} (see listener.security.protocol.map)",
            )
        listeners.append(Listener(name, host, port, protocols[name]))
    names = [listener.name for listener in listeners]
    if len(set(names)) != len(names):
        raise ConfigError.invalid(config, text, "Each listener must have a different name")
    if distinct_ports:
        _check_ports(listeners, config, text)
    return listeners


def _check_ports(listeners: list[Listener], config: str, text: str) -> None:
    by_port: dict[int, list[Listener]] = defaultdict(list)
    for listener in listeners:
        if listener.port != 0:  # port 0 = pick any free port, may repeat
            by_port[listener.port].append(listener)
    for port, group in by_port.items():
        if len(group) < 2:
            continue
        with_ip = [listener for listener in group if listener.host and _ip_version(listener.host)]
        without_ip = [listener for listener in group if listener not in with_ip]
        if len(without_ip) > 1:
            raise ConfigError.invalid(config, text, "Each listener must have a different port")
        versions = sorted(_ip_version(listener.host) or 0 for listener in with_ip)
        if not with_ip:
            continue
        if versions != [4, 6] or without_ip:
            raise ConfigError.invalid(
                config,
                text,
                f"Each listener must have a different port unless exactly one listener has an IPv4 address "
                f"and the other an IPv6 address (port {port})",
            )


def check_supported(listeners: list[Listener], config: str) -> None:
    """Refuse a protocol Brook cannot serve up front, by name (all four of Kafka's are served)."""
    for listener in listeners:
        if listener.security_protocol not in SUPPORTED_PROTOCOLS:
            raise ConfigError(
                f"Listener {listener.name} in {config} uses security protocol {listener.security_protocol}, "
                f"which Brook does not support yet (only {', '.join(SUPPORTED_PROTOCOLS)})",
                name=config,
                value=listener.connection_string,
            )


def advertise(listeners: list[Listener]) -> list[Listener]:
    """Listeners as clients should reach them: a wildcard host becomes ``localhost``.

    Kafka advertises the machine's canonical host name instead; ``localhost`` is what a
    developer's single broker needs, and anything else should be set in advertised.listeners."""
    return [
        Listener(listener.name, "localhost", listener.port, listener.security_protocol)
        if listener.host in WILDCARD_HOSTS
        else listener
        for listener in listeners
    ]
