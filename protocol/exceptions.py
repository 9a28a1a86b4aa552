"""Typed errors of the protocol layer.

Every failure to decode bytes from the wire raises a subclass of :class:`DecodeError`, so the
network layer can catch exactly one type, log it and close that connection.
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Base of every error raised by the protocol package."""


class DecodeError(ProtocolError):
    """Bytes that cannot be decoded as what they claim to be."""


class TruncatedError(DecodeError):
    """The buffer ended before the value being read."""


class BadLengthError(DecodeError):
    """A length prefix is negative where null is not allowed, or otherwise impossible."""


class LengthExceedsRemainingError(BadLengthError):
    """A string, bytes or array length is larger than the bytes left in the buffer."""


class BadVarintError(DecodeError):
    """A varint longer than its type allows."""


class BadUtf8Error(DecodeError):
    """A string whose bytes are not valid UTF-8."""


class FrameTooLargeError(DecodeError):
    """A frame's length prefix is above the configured maximum (or negative)."""

    def __init__(self, size: int, maximum: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the maximum of {maximum} bytes")
        self.size = size
        self.maximum = maximum
        #: Whole frames that arrived before the bad prefix (the decoder fills this in).
        self.frames: list[bytearray] = []


class UnknownApiError(DecodeError):
    """An api key that the protocol does not define."""

    def __init__(self, api_key: int) -> None:
        super().__init__(f"unknown api key {api_key}")
        self.api_key = api_key


class UnsupportedVersionError(DecodeError):
    """A version outside the valid range of a known api (or message).

    When raised by :func:`protocol.api.decode_request`, ``header`` holds the request header, which
    still decodes (its version follows from the api's flexible versions, as in Kafka), so that
    the broker can answer an ApiVersions request of a version it does not know with an
    ApiVersions v0 response carrying UNSUPPORTED_VERSION and the request's correlation id.
    """

    def __init__(self, name: str, version: int, header: Any = None) -> None:
        super().__init__(f"{name} has no version {version}")
        self.name = name
        self.version = version
        #: The decoded :class:`~protocol.messages.request_header.RequestHeader`, or None.
        self.header = header


class TrailingBytesError(DecodeError):
    """A message decoded completely but bytes were left over in its frame."""


class CorruptRecordError(DecodeError):
    """A record batch or legacy message that is malformed (bad size, CRC, varint, ...)."""


class EncodeError(ProtocolError):
    """A value that cannot be encoded in the requested version (e.g. a non-ignorable field
    that the version lacks, or null where the version does not allow it)."""


class ApiError(ProtocolError):
    """A request refused as a whole with a Kafka error code (Kafka's ``ApiException``).

    A handler raises it for a request it will not serve (Metadata v10 naming a topic by null, for
    one); the broker answers with the api's error response (:mod:`protocol.error_responses`),
    in which every topic, partition or group the request names carries ``error_code``.
    """

    def __init__(self, error_code: int, message: str | None = None) -> None:
        super().__init__(message or f"error code {error_code}")
        self.error_code = error_code
        #: Sent in the responses that carry an error message; None sends none.
        self.message = message
