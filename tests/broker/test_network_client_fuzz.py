"""Hostile response bytes fed straight into a BrokerConnection (no socket): whatever arrives, the
pending requests end with a response or a typed ClientError, and nothing escapes the callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.network.client import BadResponseError, BrokerConnection, ClientConfig, ClientError, Response
from protocol import api as papi
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import MetadataResponse, MetadataResponseBroker


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        self.written.extend(bytes(line) for line in lines)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 9) if name == "peername" else default


def feed(conn: BrokerConnection, data: bytes, chunk: int) -> None:
    view = memoryview(data)
    while view and not conn.is_closed:
        room = conn.get_buffer(-1)
        n = min(len(room), len(view), chunk)
        room[:n] = view[:n]
        view = view[n:]
        conn.buffer_updated(n)


Outcome = list[Response | BaseException]
closed_by_input: list[bool] = []  # per drive(), whether the bytes made the connection close


def drive(data: bytes, chunk: int, requests: int = 2) -> Outcome:
    async def main() -> Outcome:
        loop = asyncio.get_running_loop()
        conn = BrokerConnection(1, ClientConfig(discover_versions=False, max_response_bytes=4096), loop)
        conn.connection_made(FakeTransport())
        futures = [conn.send(MetadataRequest(topics=None), version=1) for _ in range(requests)]
        feed(conn, data, chunk)
        closed_by_input.append(conn.is_closed)
        conn.close()
        results: list[Response | BaseException] = []
        for future in futures:
            assert future is not None and future.done()
            results.append(future.exception() or future.result())
        return results

    return asyncio.run(main())


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_any_bytes_end_in_a_response_or_a_client_error(data: bytes, chunk: int) -> None:
    for result in drive(data, chunk):
        assert isinstance(result, (Response, ClientError)), result


def good_frame(correlation_id: int) -> bytes:
    body = MetadataResponse(brokers=[MetadataResponseBroker(1, "h", 9092)], controller_id=1)
    return papi.encode_response(3, 1, correlation_id, body)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 200), flip=st.integers(0, 255), chunk=st.integers(1, 64))
def test_a_corrupted_second_response_fails_only_from_there(cut: int, flip: int, chunk: int) -> None:
    second = bytearray(good_frame(1))
    position = 4 + cut % (len(second) - 4)
    second[position] ^= flip or 1
    first, rest = drive(good_frame(0) + bytes(second), chunk)
    assert isinstance(first, Response) and first.body.brokers[0].host == "h"
    if isinstance(rest, Response):
        return  # the flip landed where any value decodes (a port, say)
    assert isinstance(rest, ClientError)


def test_frames_split_anywhere_decode_the_same() -> None:
    data = good_frame(0) + good_frame(1)
    for chunk in (1, 3, 7, len(data)):
        results = drive(data, chunk)
        assert all(isinstance(r, Response) and r.body.controller_id == 1 for r in results), chunk


def test_a_response_nobody_asked_for_closes_the_connection() -> None:
    (result,) = drive(good_frame(0), 64, requests=1)
    assert isinstance(result, Response) and closed_by_input[-1] is False
    (result,) = drive(good_frame(0) + good_frame(1), 64, requests=1)
    assert isinstance(result, Response) and closed_by_input[-1] is True
    (result,) = drive(good_frame(5), 64, requests=1)
    assert isinstance(result, BadResponseError) and closed_by_input[-1] is True
