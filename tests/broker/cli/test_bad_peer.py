"""A peer that answers garbage, or hangs up, gets a clear error and exit code 1 from ``brook``,
never a traceback."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from broker.cli.main import main


def _serve(listener: socket.socket, reply: bytes) -> None:
    listener.settimeout(10)
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    with conn:
        conn.settimeout(10)
        try:
            (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
            conn.recv(size, socket.MSG_WAITALL)
            conn.sendall(reply)
        except OSError:
            pass


@pytest.fixture(params=["garbage", "short", "hang-up"])
def bad_peer(request: pytest.FixtureRequest) -> Iterator[str]:
    replies = {
        # correlation id 1, then bytes that are no ApiVersions response
        "garbage": struct.pack(">ii", 12, 1) + b"\xff" * 8,
        "short": struct.pack(">i", 100) + b"\x00" * 10,
        "hang-up": b"",
    }
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_serve, args=(listener, replies[request.param]), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(timeout=10)


def test_bad_bytes_from_a_peer_are_a_clear_error(bad_peer: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "--bootstrap-server", bad_peer, "--list", "--command-config", "/dev/null"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Error while executing topic command : ")
    assert bad_peer in out and "Traceback" not in out


def test_a_bad_bootstrap_address_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consumer-groups", "--bootstrap-server", "no-port", "--list"]) == 1
    assert "Invalid url in bootstrap.servers: no-port" in capsys.readouterr().out
