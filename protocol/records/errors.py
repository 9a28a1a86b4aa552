"""Errors specific to record batches, refining :class:`protocol.exceptions.CorruptRecordError`.

Kafka distinguishes bytes that fail a checksum or cannot be parsed (``CORRUPT_MESSAGE``) from input
that parses but breaks a rule of the log (``INVALID_RECORD``, e.g. a compressed legacy wrapper with
no inner messages, or two compressed wrappers in one produce request). Both are
:class:`CorruptRecordError` here, so callers that only care about "bad input" catch one type; the
broker can map :class:`InvalidRecordError` to ``INVALID_RECORD`` and everything else to
``CORRUPT_MESSAGE``.
"""

from __future__ import annotations

from protocol.exceptions import CorruptRecordError, ProtocolError


class InvalidRecordError(CorruptRecordError):
    """Well-formed bytes that Kafka rejects with ``InvalidRecordException`` (``INVALID_RECORD``)."""


class UnsupportedCompressionError(ProtocolError):
    """A conversion the target format cannot express, e.g. down-converting a zstd batch to
    magic 0/1 (Kafka answers ``UNSUPPORTED_COMPRESSION_TYPE``). Not a decode error: the input is fine."""
