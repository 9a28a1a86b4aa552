"""Typed errors of the storage package.

Every error the broker is expected to map to a Kafka error code has its own type here, so a
handler can ``except`` exactly what it knows how to answer and let everything else (an ``OSError``
from a failing disk) escape to its log-dir failure handling.

The Kafka error each one corresponds to is named in its docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

#: A rejected record: (its index inside its batch, why), Kafka's ``RecordError`` (KIP-467).
RecordError = tuple[int, str]


class StorageError(Exception):
    """Base of every error raised on purpose by the storage package."""


class InvalidRecordBatchError(StorageError):
    """An appended buffer that is not a sequence of well-framed record batches, or whose records
    break a rule of the log (Kafka: INVALID_RECORD; the CORRUPT_MESSAGE cases subclass it).

    ``record_errors`` names every rejected record when the rejection is per record (a record
    without a key on a compacted topic), as Kafka's ``RecordValidationException``."""

    def __init__(self, message: str, record_errors: Sequence[RecordError] = ()) -> None:
        super().__init__(message)
        self.record_errors: list[RecordError] = list(record_errors)


class CorruptBatchError(InvalidRecordBatchError):
    """A batch whose CRC-32C does not match its bytes, or whose declared length is impossible
    (Kafka: CORRUPT_MESSAGE)."""


class InvalidMagicError(InvalidRecordBatchError):
    """A batch that is not magic v2. The broker up-converts legacy message sets before append
    (Kafka: UNSUPPORTED_FOR_MESSAGE_FORMAT / CORRUPT_MESSAGE)."""


class RecordTooLargeError(StorageError):
    """A batch larger than ``max.message.bytes`` (Kafka: MESSAGE_TOO_LARGE)."""

    def __init__(self, size: int, maximum: int) -> None:
        super().__init__(f"record batch of {size} bytes exceeds max.message.bytes={maximum}")
        self.size = size
        self.maximum = maximum


class InvalidTimestampError(StorageError):
    """Records whose CreateTime is outside ``message.timestamp.before/after.max.ms``, or a client
    batch claiming LogAppendTime (Kafka: INVALID_TIMESTAMP); ``record_errors`` names them."""

    def __init__(self, message: str, record_errors: Sequence[RecordError] = ()) -> None:
        super().__init__(message)
        self.record_errors: list[RecordError] = list(record_errors)


class InvalidOffsetError(StorageError):
    """A follower append whose offsets are not monotonic or start below the log end offset
    (Kafka: UNKNOWN_SERVER_ERROR after an UnexpectedAppendOffsetException)."""


class OffsetOutOfRangeError(StorageError):
    """A read or truncation offset outside ``[log_start_offset, log_end_offset]`` (Kafka:
    OFFSET_OUT_OF_RANGE)."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(f"offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class LogDeletedError(StorageError):
    """An operation on a log that was deleted or closed (Kafka: NOT_LEADER_OR_FOLLOWER /
    KAFKA_STORAGE_ERROR, depending on why)."""


class StorageCorruptionError(StorageError):
    """Data before the recovery point that fails validation. Such data was fsync'd and must be
    intact; it is reported rather than truncated or served (Kafka: KAFKA_STORAGE_ERROR)."""


class LogDirOfflineError(StorageError):
    """An operation on a log whose log directory was taken offline after a disk error, or a new
    log when no log directory is online (Kafka: KAFKA_STORAGE_ERROR)."""


class InconsistentTopicIdError(StorageError):
    """A ``partition.metadata`` topic id that differs from the one the broker expects (Kafka:
    INCONSISTENT_TOPIC_ID)."""


class CheckpointFormatError(StorageError):
    """A checkpoint or metadata file that does not follow Kafka's text format."""
