"""``python -m broker.healthcheck [host:port]``: exit 0 when a broker answers ApiVersions.

Sends a real ApiVersions v0 request and checks the error code, the way a container HEALTHCHECK or
a test harness asks whether the broker is serving (not merely listening).
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys

from protocol import api as papi
from protocol.exceptions import ProtocolError
from protocol.messages.api_versions_request import ApiVersionsRequest


def check(host: str, port: int, timeout: float = 3.0, *, tls: bool | None = None) -> bool:
    """True when ApiVersions is answered; ``tls`` None tries plaintext, then TLS."""
    if tls is None:
        return check(host, port, timeout, tls=False) or check(host, port, timeout, tls=True)
    request = papi.encode_request(ApiVersionsRequest(), 0, correlation_id=1, client_id="brook-healthcheck")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                sock = context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        with sock:
            sock.sendall(request)
            size = struct.unpack(">i", _read(sock, 4))[0]
            if not 0 < size < 1 << 20:
                return False
            correlation_id, body = papi.decode_response(_read(sock, size), papi.API_VERSIONS_KEY, 0)
    except (OSError, ValueError, ProtocolError):
        return False
    return correlation_id == 1 and body.error_code == 0


def _read(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = args[0] if args else "localhost:9092"
    host, _, port = target.rpartition(":")
    return 0 if check(host or "localhost", int(port)) else 1


if __name__ == "__main__":
    sys.exit(main())
