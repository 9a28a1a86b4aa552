"""The request registry: api key and version to types, header versions, request/response framing.

Header versions follow Kafka's ``ApiMessageType``: a request uses header v2 when its api version is
flexible, v1 otherwise (v0 only for ControlledShutdown v0); a response uses header v1 when
flexible, v0 otherwise, except ApiVersions responses, which always use v0 so that a client can
read the error of an ApiVersions request whose version the broker does not know.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from protocol.apispec import ApiSpec, DataSpec
from protocol.exceptions import (
    TrailingBytesError,
    TruncatedError,
    UnknownApiError,
    UnsupportedVersionError,
)
from protocol.message import Message
from protocol.messages._index import APIS, DATA
from protocol.messages.request_header import RequestHeader
from protocol.messages.response_header import ResponseHeader

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7

_PEEK = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")


def api(api_key: int) -> ApiSpec:
    """The api with this key; :class:`UnknownApiError` when Kafka defines none."""
    spec = APIS.get(api_key)
    if spec is None:
        raise UnknownApiError(api_key)
    return spec


def all_apis() -> list[ApiSpec]:
    return [APIS[k] for k in sorted(APIS)]


def data_type(name: str) -> type[Message]:
    """A versioned data type by schema name (internal records, embedded data, headers)."""
    spec: DataSpec = DATA[name]
    return spec.type()


def request_header_version(api_key: int, api_version: int) -> int:
    if api_key == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if api(api_key).is_flexible(api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if api(api_key).is_flexible(api_version) else 0


@dataclass(frozen=True, slots=True)
class Peek:
    """The fixed first fields of every request header."""

    api_key: int
    api_version: int
    correlation_id: int


def peek(frame: bytes | bytearray | memoryview) -> Peek:
    """Read api key, version and correlation id without decoding anything else."""
    if len(frame) < _PEEK.size:
        raise TruncatedError(f"request of {len(frame)} bytes is shorter than a request header")
    return Peek(*_PEEK.unpack_from(frame, 0))


@dataclass(slots=True)
class Request:
    """A decoded request: header, body and the api it belongs to."""

    header: RequestHeader
    body: Any
    api: ApiSpec

    @property
    def version(self) -> int:
        return self.header.request_api_version


def decode_header(frame: memoryview) -> tuple[RequestHeader, int]:
    """Decode the request header of a frame; returns it and where the body starts."""
    first = peek(frame)
    version = request_header_version(first.api_key, first.api_version)
    return RequestHeader.decode_from(frame, version, 0)


def decode_request(frame: bytes | bytearray | memoryview) -> Request:
    """Decode a whole request frame (without its size prefix).

    Raises :class:`UnknownApiError` for an api key Kafka does not define and
    :class:`UnsupportedVersionError` for a version outside the api's valid range; the caller
    may answer ApiVersions in that case (see module docstring).
    """
    view = frame if isinstance(frame, memoryview) else memoryview(frame)
    first = peek(view)
    spec = api(first.api_key)
    if not spec.min_version <= first.api_version <= spec.max_version:
        raise UnsupportedVersionError(spec.name, first.api_version)
    header, pos = decode_header(view)
    request_type = spec.request_type()
    body, end = request_type.decode_from(view, first.api_version, pos)
    if end != len(view):
        raise TrailingBytesError(f"{spec.name} v{first.api_version}: {len(view) - end} bytes after the body")
    return Request(header, body, spec)


def encode_request(body: Message, version: int, correlation_id: int, client_id: str | None = "brook") -> bytes:
    """A whole request frame, size prefix included (clients, tests, replication)."""
    api_key = body.API_KEY
    header = RequestHeader(api_key, version, correlation_id, client_id)
    parts: list[Any] = [b""]
    header.encode_into(parts.append, request_header_version(api_key, version))
    body.encode_into(parts.append, version)
    payload = b"".join(parts)
    return _SIZE.pack(len(payload)) + payload


def encode_response_parts(api_key: int, version: int, correlation_id: int, body: Message) -> list[Any]:
    """Pieces of a response frame, size prefix first. Record regions stay separate pieces so
    the network layer can ``sendfile`` them; everything else is bytes."""
    parts: list[Any] = [b""]
    ResponseHeader(correlation_id).encode_into(parts.append, response_header_version(api_key, version))
    body.encode_into(parts.append, version)
    size = 0
    for piece in parts:
        size += piece.nbytes if isinstance(piece, memoryview) else len(piece)
    parts[0] = _SIZE.pack(size)
    return parts


def encode_response(api_key: int, version: int, correlation_id: int, body: Message) -> bytes:
    """A whole response frame, size prefix included, when it holds no record regions."""
    return b"".join(encode_response_parts(api_key, version, correlation_id, body))


def decode_response(frame: bytes | bytearray | memoryview, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation id, body) of a response frame without its size prefix (clients, tests)."""
    view = frame if isinstance(frame, memoryview) else memoryview(frame)
    header, pos = ResponseHeader.decode_from(view, response_header_version(api_key, version), 0)
    body, _ = api(api_key).response_type().decode_from(view, version, pos)
    return header.correlation_id, body
