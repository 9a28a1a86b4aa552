"""Every well-formed request gets an answer: a handler that fails, synchronously or not, or whose
response cannot be encoded, is answered over the socket with the api's error response (Kafka's
``getErrorResponse``), for every api and version the broker serves."""

from __future__ import annotations

import dataclasses
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.handlers import HANDLERS
from broker.handlers.base import Handler, RequestContext
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.error_responses import has_builder
from protocol.exceptions import ApiError, EncodeError
from protocol.message import Message, Struct
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.produce_request import ProduceRequest
from tests.broker.conftest import make_broker
from tests.broker.test_network import Running, closed_by_peer, read_frame

SERVED = [
    (key, version)
    for key, h in sorted(HANDLERS.items())
    for version in range(h.min_version, h.max_version + 1)
]
#: Kafka answers these with a response that has no error field at all (DescribeLogDirs before v3
#: has no top-level error code; Kafka sends an empty result).
NO_ERROR_FIELD = {(35, 0), (35, 1), (35, 2)}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    r = Running(make_broker(Path(tmp_path_factory.mktemp("errors")) / "data"))
    try:
        yield r
    finally:
        r.stop()


def sample(cls: type[Any]) -> Any:
    """An instance with one element in every list, so that the error response has entries."""
    module = sys.modules[cls.__module__]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        match = re.fullmatch(r"list\[(\w+)\]( \| None)?", str(f.type))
        if match is None:
            continue
        element = match.group(1)
        if element == "str":
            values[f.name] = ["x"]
        elif element == "int":
            values[f.name] = [0]
        elif isinstance(getattr(module, element, None), type):
            values[f.name] = [sample(getattr(module, element))]
    instance = cls(**values)
    if isinstance(instance, ProduceRequest):
        instance.acks = -1  # acks=0 gets no response, failed or not (see the test below)
    return instance


def sample_request(api_key: int, version: int) -> Any:
    """:func:`sample`, less the lists that ``version`` cannot carry (the encoder names them)."""
    request = sample(papi.api(api_key).request_type())
    for _ in range(20):
        try:
            request.encode(version)
        except EncodeError as exc:
            match = re.search(r"(\w+)\.(\w+) is not default", str(exc))
            assert match is not None, exc
            _reset(request, match.group(1), match.group(2))
        else:
            return request
    raise AssertionError(f"no encodable sample of api {api_key} v{version}")


def _reset(value: Any, class_name: str, field_name: str) -> None:
    """Put ``field_name`` of every ``class_name`` inside ``value`` back to its default."""
    if isinstance(value, list):
        for item in value:
            _reset(item, class_name, field_name)
    elif isinstance(value, Struct):
        for f in dataclasses.fields(value):  # type: ignore[arg-type]
            if type(value).__name__ == class_name and f.name == field_name:
                default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
                setattr(value, f.name, default)
            else:
                _reset(getattr(value, f.name), class_name, field_name)


def error_codes(value: Any) -> list[int]:
    """Every error code in a decoded response, nested ones included."""
    found: list[int] = []
    if isinstance(value, list):
        for item in value:
            found += error_codes(item)
    elif isinstance(value, Struct):
        for f in dataclasses.fields(value):  # type: ignore[arg-type]
            item = getattr(value, f.name)
            if f.name.endswith("error_code"):  # AddPartitionsToTxn v0-3: partition_error_code
                found.append(item)
            else:
                found += error_codes(item)
    return found


def failing(api_key: int, mode: str) -> Handler:
    served = HANDLERS[api_key]

    def handle(ctx: RequestContext, request: Any) -> Any:
        if mode == "raises":
            raise RuntimeError("a handler bug")
        if mode == "raises-later":

            async def later() -> Message:
                raise ApiError(ErrorCode.POLICY_VIOLATION, "refused")

            return later()
        response_type = papi.api(api_key).response_type()
        unencodable = type("Unencodable", (response_type,), {"__slots__": (), "encode_into": _cannot_encode})
        return unencodable()

    return Handler(api_key, served.min_version, served.max_version, handle)


def _cannot_encode(self: Any, append: Any, version: int) -> None:
    raise EncodeError("a value this version cannot carry")


EXPECTED = {
    "raises": ErrorCode.UNKNOWN_SERVER_ERROR,
    "raises-later": ErrorCode.POLICY_VIOLATION,
    "unencodable": ErrorCode.UNKNOWN_SERVER_ERROR,
}


@pytest.fixture
def sock(running: Running) -> Iterator[socket.socket]:
    s = running.connect()
    yield s
    s.close()


@pytest.mark.parametrize("mode", sorted(EXPECTED))
@pytest.mark.parametrize(("api_key", "version"), SERVED)
def test_a_failed_request_gets_its_error_response(
    running: Running, sock: socket.socket, api_key: int, version: int, mode: str
) -> None:
    server = running.broker.server
    assert server is not None
    server.handlers = {**HANDLERS, api_key: failing(api_key, mode)}
    try:
        request = sample_request(api_key, version)
        correlation_id = api_key * 1000 + version
        sock.sendall(papi.encode_request(request, version, correlation_id))
        correlation, body = papi.decode_response(read_frame(sock), api_key, version)
    finally:
        server.handlers = HANDLERS
    assert correlation == correlation_id
    codes = error_codes(body)
    if (api_key, version) in NO_ERROR_FIELD:
        assert set(codes) <= {0}
    else:
        assert EXPECTED[mode] in codes
        assert set(codes) <= {0, EXPECTED[mode]}


def test_every_served_api_has_a_kafka_error_response_builder() -> None:
    assert [key for key in HANDLERS if not has_builder(key)] == []


def test_a_failed_acks_0_produce_closes_the_connection(running: Running) -> None:
    server = running.broker.server
    assert server is not None
    server.handlers = {**HANDLERS, 0: failing(0, "raises")}
    sock = running.connect()
    try:
        request = sample(ProduceRequest)
        request.acks = 0
        sock.sendall(papi.encode_request(ApiVersionsRequest(), 0, 1) + papi.encode_request(request, 9, 2))
        assert papi.decode_response(read_frame(sock), 18, 0)[0] == 1
        assert closed_by_peer(sock)
    finally:
        server.handlers = HANDLERS
        sock.close()
