"""A parked request answered by a :class:`Reply` is written in the call that answers it; a
plain future's answer waits for the loop (its done callback, then the end-of-turn write)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from broker.network.connection import Connection
from broker.network.reply import Reply
from protocol.messages.api_versions_response import ApiVersionsResponse


def readable(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_a_reply_is_written_when_it_is_answered_a_future_a_turn_later() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        server = SimpleNamespace(loop=loop, max_frame_size=1 << 20, stats=None, forget=lambda conn: None)
        conn = Connection(server, ours, "peer", "PLAINTEXT")  # type: ignore[arg-type]
        try:
            answer = ApiVersionsResponse(error_code=0, api_keys=[])
            for pending, at_once in ((loop.create_future(), False), (Reply(loop=loop), True)):
                slot = conn.new_slot(18, 3, 7)
                slot.received = 0  # not timed: no stats
                conn.track(slot, pending)
                pending.set_result(answer)
                assert bool(readable(theirs)) is at_once
                for _ in range(3):
                    await asyncio.sleep(0)
                if not at_once:
                    assert readable(theirs)  # the loop turned: written
                assert not conn.slots
        finally:
            conn.close(None)
            theirs.close()

    asyncio.run(scenario())
