"""Base classes of the generated messages and the decode/encode entry points.

Every generated message class carries, per valid version, one specialised encoder and decoder
(straight-line code written by :mod:`protocol.codegen`). These entry points wrap them so that any
failure on hostile bytes surfaces as a :class:`DecodeError` subclass and nothing else.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from protocol.exceptions import (
    BadUtf8Error,
    EncodeError,
    TrailingBytesError,
    TruncatedError,
    UnsupportedVersionError,
)
from protocol.primitives import Append, Buf

M = TypeVar("M", bound="Message")

Encoder = Callable[[Append, Any], None]
Decoder = Callable[[Buf, int], tuple[Any, int]]


class _DefaultFactory:
    def __repr__(self) -> str:
        return "<factory>"


#: The ``__init__`` default of a generated mutable field (a list, a struct): the instance gets a
#: new value of its own, as with a dataclass's ``default_factory``.
DEFAULT_FACTORY: Any = _DefaultFactory()


class _DataclassFields:
    """``__dataclass_fields__`` of a generated class, so that ``dataclasses.fields``, ``replace``
    and ``asdict`` work on messages as on the dataclasses they look like. Built on first use
    from the class's slots, annotations and default instance, then cached on the class."""

    def __get__(self, instance: object, owner: type[Struct]) -> dict[str, dataclasses.Field[Any]]:
        defaults = owner()
        specs: list[tuple[str, Any, Any]] = []
        for name in owner.__slots__:
            value = getattr(defaults, name)
            if isinstance(value, list):
                default: Any = dataclasses.field(default_factory=list)
            elif isinstance(value, Struct):
                default = dataclasses.field(default_factory=type(value))
            else:
                default = dataclasses.field(default=value)
            specs.append((name, owner.__annotations__.get(name, Any), default))
        shadow = dataclasses.make_dataclass(owner.__name__, specs)
        fields: dict[str, dataclasses.Field[Any]] = getattr(shadow, "__dataclass_fields__")  # noqa: B009
        owner.__dataclass_fields__ = fields  # shadows this descriptor from now on
        return fields


class Struct:
    """Base of every generated struct: a slotted class with a generated ``__init__`` and
    ``__eq__`` (see :mod:`protocol.codegen.emit`), which looks like a dataclass from outside."""

    __slots__: tuple[str, ...] = ()
    __dataclass_fields__: ClassVar[Any] = _DataclassFields()

    def __repr__(self) -> str:
        # The dataclass format: Name(field=value, ...).
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"


class Message(Struct):
    """A top-level message: request or response body, header, or internal record key/value."""

    __slots__ = ()

    NAME: ClassVar[str]
    #: Api key for requests and responses, -1 for headers and data records.
    API_KEY: ClassVar[int]
    MIN_VERSION: ClassVar[int]
    MAX_VERSION: ClassVar[int]
    #: First flexible version, or None when no version is flexible.
    FLEXIBLE_MIN: ClassVar[int | None]
    _encoders: ClassVar[dict[int, Encoder]]
    _decoders: ClassVar[dict[int, Decoder]]

    def encode_into(self, append: Append, version: int) -> None:
        """Append the encoded pieces of this message in ``version`` through ``append``."""
        encoder = self._encoders.get(version)
        if encoder is None:
            raise EncodeError(f"{self.NAME} has no version {version}")
        try:
            encoder(append, self)
        except EncodeError:
            raise
        except (struct.error, AttributeError, TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode {self.NAME} v{version}: {exc}") from exc

    def encode_parts(self, version: int) -> list[Any]:
        """Encoded pieces; opaque record regions (e.g. file slices) stay separate pieces."""
        parts: list[Any] = []
        self.encode_into(parts.append, version)
        return parts

    def encode(self, version: int) -> bytes:
        parts = self.encode_parts(version)
        try:
            return b"".join(parts)
        except TypeError as exc:
            raise EncodeError(f"{self.NAME} holds a record region; use encode_parts") from exc

    @classmethod
    def decode_from(cls: type[M], buf: Buf, version: int, pos: int = 0) -> tuple[M, int]:
        """Decode one message at ``pos`` of a memoryview; returns it and the position after it."""
        decoder = cls._decoders.get(version)
        if decoder is None:
            raise UnsupportedVersionError(cls.NAME, version)
        try:
            result: tuple[M, int] = decoder(buf, pos)
        except (struct.error, IndexError) as exc:
            raise TruncatedError(f"{cls.NAME} v{version} truncated: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise BadUtf8Error(f"{cls.NAME} v{version} has a string that is not UTF-8") from exc
        return result

    @classmethod
    def decode(cls: type[M], data: bytes | bytearray | memoryview, version: int) -> M:
        """Decode a whole buffer; trailing bytes are an error (a frame holds one message)."""
        buf = data if isinstance(data, memoryview) else memoryview(data)
        message, end = cls.decode_from(buf, version, 0)
        if end != len(buf):
            raise TrailingBytesError(f"{cls.NAME} v{version}: {len(buf) - end} bytes left after decoding")
        return message


def is_bytes_like(piece: Any) -> bool:
    """Whether a piece exposes its bytes through the buffer protocol (bytes, bytearray,
    memoryview, ...) rather than being an opaque record region."""
    if isinstance(piece, (bytes, bytearray, memoryview)):
        return True
    try:
        memoryview(piece)
    except TypeError:
        return False
    return True


def join_pieces(pieces: list[Any]) -> list[Any]:
    """Merge runs of bytes-like pieces; opaque regions (anything else) stay as they are."""
    out: list[Any] = []
    start = 0
    for i, piece in enumerate(pieces):
        if type(piece) in _BYTES_TYPES or is_bytes_like(piece):
            continue
        if i > start:
            out.append(b"".join(pieces[start:i]))
        out.append(piece)
        start = i + 1
    if start < len(pieces):
        out.append(b"".join(pieces[start:]))
    return out


#: The usual pieces, known bytes-like without a call.
_BYTES_TYPES = frozenset({bytes, bytearray, memoryview})
