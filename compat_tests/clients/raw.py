"""A few requests sent by hand (no client library, no Brook code): what the broker advertises."""

from __future__ import annotations

import socket
import struct


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def request_header_v1(api_key: int, version: int, correlation_id: int, client_id: str = "compat") -> bytes:
    cid = client_id.encode()
    return struct.pack(">hhih", api_key, version, correlation_id, len(cid)) + cid


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def api_versions(host: str, port: int, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """ApiVersions v0: {api key: (min version, max version)} as the broker advertises."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame(request_header_v1(18, 0, 7)))
        body = read_frame(sock)
    correlation_id, error_code, count = struct.unpack_from(">ihi", body, 0)
    assert correlation_id == 7 and error_code == 0, (correlation_id, error_code)
    out = {}
    for i in range(count):
        key, lo, hi = struct.unpack_from(">hhh", body, 10 + 6 * i)
        out[key] = (lo, hi)
    return out


def advertises(bootstrap: str, api_key: int, version: int = 0) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    found = api_versions(host, int(port)).get(api_key)
    return found is not None and found[0] <= version <= found[1]


FIND_COORDINATOR = 10
JOIN_GROUP = 11
