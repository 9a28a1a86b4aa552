"""The request registry: api key and version to types, header versions, request/response framing.

Header versions follow Kafka's ``ApiMessageType``: a request uses header v2 when its api version is
flexible, v1 otherwise (v0 only for ControlledShutdown v0); a response uses header v1 when
flexible, v0 otherwise, except ApiVersions responses, which always use v0 so that a client can
read the error of an ApiVersions request whose version the broker does not know.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from protocol.apispec import ApiSpec, DataSpec
from protocol.exceptions import (
    BadUtf8Error,
    EncodeError,
    TrailingBytesError,
    TruncatedError,
    UnknownApiError,
    UnsupportedVersionError,
)
from protocol.message import Decoder, Encoder, Message, join_pieces
from protocol.messages._index import APIS, DATA
from protocol.messages.request_header import RequestHeader
from protocol.messages.response_header import ResponseHeader
from protocol.primitives import bytes_len

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


class Peek(NamedTuple):
    """The fixed first fields of every request header."""

    api_key: int
    api_version: int
    correlation_id: int


def peek(frame: bytes | bytearray | memoryview) -> Peek:
    """Read api key, version and correlation id without decoding anything else."""
    if len(frame) < _PEEK.size:
        raise TruncatedError(f"request of {len(frame)} bytes is shorter than a request header")
    return Peek(*_PEEK.unpack_from(frame, 0))


class Request:
    """A decoded request: header, body and the api it belongs to.

    Written out rather than a dataclass (the same methods): the protocol's import is part of an
    embedded broker's first start, and a dataclass costs most of a millisecond to create."""

    __slots__ = ("api", "body", "header")

    def __init__(self, header: RequestHeader, body: Any, api: ApiSpec) -> None:
        self.header = header
        self.body = body
        self.api = api

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Request)
            return (self.header, self.body, self.api) == (other.header, other.body, other.api)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def __repr__(self) -> str:
        return f"Request(header={self.header!r}, body={self.body!r}, api={self.api!r})"

    @property
    def version(self) -> int:
        return self.header.request_api_version


def decode_header(frame: memoryview) -> tuple[RequestHeader, int]:
    """Decode the request header of a frame; returns it and where the body starts."""
    first = peek(frame)
    version = request_header_version(first.api_key, first.api_version)
    return RequestHeader.decode_from(frame, version, 0)


#: (api key << 16 | version) -> (api, header decoder, body decoder) of every route seen so far.
_ROUTES: dict[int, tuple[ApiSpec, Decoder, Decoder]] = {}
_KEY_VERSION = struct.Struct(">hh")
#: (api key << 16 | version) -> encoder of the response header version it uses, per route seen.
_RESPONSE_HEADER_ENCODERS: dict[int, Encoder] = {}
_PEEK_SIZE = _PEEK.size


def _route(api_key: int, version: int, frame: memoryview) -> tuple[ApiSpec, Decoder, Decoder]:
    spec = api(api_key)
    if not spec.min_version <= version <= spec.max_version:
        # As Kafka's RequestHeader.parse: the header still decodes, its version following the
        # api's flexible versions, so that the broker can answer ApiVersions with v0.
        header, _ = decode_header(frame)
        raise UnsupportedVersionError(spec.name, version, header)
    route = (
        spec,
        RequestHeader._decoders[request_header_version(api_key, version)],
        spec.request_type()._decoders[version],
    )
    _ROUTES[api_key << 16 | version] = route
    return route


def decode_request(frame: bytes | bytearray | memoryview, *, allow_trailing: bool = False) -> Request:
    """Decode a whole request frame (without its size prefix).

    Raises :class:`UnknownApiError` for an api key Kafka does not define and
    :class:`UnsupportedVersionError` (with the decoded header) for a version outside the api's
    valid range; the caller may answer ApiVersions in that case (see module docstring). Every
    other failure is a :class:`DecodeError` too. Bytes after the body are a
    :class:`TrailingBytesError` unless ``allow_trailing``: a broker must ignore them as Kafka's
    ``AbstractRequest.parseRequest`` does (librdkafka 2.16 sends some after a Metadata v12 body).
    """
    view = frame if type(frame) is memoryview else memoryview(frame)
    if len(view) < _PEEK_SIZE:
        raise TruncatedError(f"request of {len(view)} bytes is shorter than a request header")
    api_key, version = _KEY_VERSION.unpack_from(view, 0)
    route = _ROUTES.get(api_key << 16 | (version & 0xFFFF))
    if route is None:
        route = _route(api_key, version, view)
    spec, read_header, read_body = route
    try:
        header, pos = read_header(view, 0)
        body, end = read_body(view, pos)
    except (struct.error, IndexError) as exc:
        raise TruncatedError(f"{spec.name} v{version} request truncated: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadUtf8Error(f"{spec.name} v{version} request has a string that is not UTF-8") from exc
    if end != len(view) and not allow_trailing:
        raise TrailingBytesError(f"{spec.name} v{version}: {len(view) - end} bytes after the body")
    return Request(header, body, spec)


def encode_request(
    body: Message, version: int, correlation_id: int, client_id: str | None = "brook"
) -> bytes:
    """A whole request frame, size prefix included (clients, tests, replication)."""
    api_key = body.API_KEY
    header = RequestHeader(api_key, version, correlation_id, client_id)
    parts: list[Any] = [b""]
    header.encode_into(parts.append, request_header_version(api_key, version))
    body.encode_into(parts.append, version)
    payload = b"".join(parts)
    return _SIZE.pack(len(payload)) + payload


def encode_response_parts(api_key: int, version: int, correlation_id: int, body: Message) -> list[Any]:
    """Pieces of a response frame, size prefix first, then the header and body.

    Bytes-like pieces are joined into as few pieces as possible; a record region (any
    non-bytes-like value of a ``records`` field with a ``__len__``, such as a file slice) stays a
    piece of its own so the network layer can ``sendfile`` it, and the size prefix counts it.
    """
    parts: list[Any] = []
    route = api_key << 16 | (version & 0xFFFF)
    encode_header = _RESPONSE_HEADER_ENCODERS.get(route)
    if encode_header is None:
        # Through encode_into once: an unknown api key raises as it always did.
        ResponseHeader(correlation_id).encode_into(parts.append, response_header_version(api_key, version))
        _RESPONSE_HEADER_ENCODERS[route] = ResponseHeader._encoders[response_header_version(api_key, version)]
    else:
        encode_header(parts.append, ResponseHeader(correlation_id))
    body.encode_into(parts.append, version)
    try:
        payload = b"".join(parts)
    except TypeError:  # a record region among the pieces (a fetch read of COPY_BELOW or more)
        pieces = join_pieces(parts)
        size = sum(bytes_len(piece) for piece in pieces)
        return [_SIZE.pack(size), *pieces]
    return [_SIZE.pack(len(payload)), payload]


def encode_response(api_key: int, version: int, correlation_id: int, body: Message) -> bytes:
    """A whole response frame, size prefix included, when it holds no record regions."""
    parts = encode_response_parts(api_key, version, correlation_id, body)
    if len(parts) != 2:
        raise EncodeError(f"{body.NAME} holds a record region; use encode_response_parts")
    frame: bytes = parts[0] + parts[1]
    return frame


def decode_response(frame: bytes | bytearray | memoryview, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation id, body) of a response frame without its size prefix (clients, tests)."""
    view = frame if isinstance(frame, memoryview) else memoryview(frame)
    header, pos = ResponseHeader.decode_from(view, response_header_version(api_key, version), 0)
    body, _ = api(api_key).response_type().decode_from(view, version, pos)
    return header.correlation_id, body
