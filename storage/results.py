"""Value types returned by :class:`storage.log.Log`.

:class:`FileSlice` is how reads hand bytes to the network layer without copying them: it owns a
``dup()`` of the segment's descriptor, so it stays valid when the descriptor pool closes the
segment's own descriptor, when retention deletes the segment (an open descriptor keeps an
unlinked file readable on POSIX), or when the segment is truncated *after* the read (the slice
then reads short: a reader must treat fewer bytes than ``length`` as end of data). The owner
must call :meth:`FileSlice.close` (or use it as a context manager) once the bytes are sent;
``__del__`` closes a forgotten one as a safety net, but relying on that leaks descriptors until
garbage collection.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

from storage.fast_dataclass import dataclass


class FileSlice:
    """``length`` bytes at ``position`` of the file open as ``fd``; ready for ``os.sendfile``."""

    __slots__ = ("fd", "length", "position")

    def __init__(self, fd: int, position: int, length: int) -> None:
        self.fd = fd
        self.position = position
        self.length = length

    def read(self) -> bytes:
        """The slice's bytes, read into memory (for down-conversion or tests)."""
        if self.fd < 0:
            raise ValueError("slice is closed")
        parts: list[bytes] = []
        got = 0
        while got < self.length:
            chunk = os.pread(self.fd, self.length - got, self.position + got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __len__(self) -> int:
        """Byte length, so a slice can stand where a response's ``records`` bytes would."""
        return self.length

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        return f"FileSlice(fd={self.fd}, position={self.position}, length={self.length})"


@dataclass(slots=True)
class ReadResult:
    """Result of :meth:`storage.log.Log.read`.

    ``slice`` is None when there is nothing to return (offset at ``max_offset`` or the log end,
    or ``max_bytes`` too small with ``min_one_message=False``), and when the read was copied:
    a read shorter than the caller's ``copy_below`` comes as ``data`` (bytes) instead.
    :attr:`records` is whichever holds the batches. A read never spans segments:
    when a segment's data ends before ``max_bytes`` the broker may read again from
    ``next_offset``. ``first_offset``/``next_offset`` bound the returned batches (the first
    batch may start before the requested offset: batches are never split).
    """

    slice: FileSlice | None
    first_offset: int
    next_offset: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int
    segment_base_offset: int
    #: True when min_one_message=False and the first batch alone exceeded max_bytes (Kafka's
    #: "first entry incomplete"; the fetch should tell the client to grow its buffer).
    first_batch_too_large: bool = False
    #: The batches' bytes when the read was copied (``copy_below``); then ``slice`` is None.
    data: bytes | None = None

    @property
    def length(self) -> int:
        records = self.records
        return len(records) if records is not None else 0

    @property
    def records(self) -> FileSlice | bytes | None:
        """The batches read: a slice to send, copied bytes, or None when there are none."""
        return self.slice if self.slice is not None else self.data

    def close(self) -> None:
        if self.slice is not None:
            self.slice.close()

    def __enter__(self) -> ReadResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AppendInfo(NamedTuple):
    """What an append did; offsets are inclusive. (A NamedTuple: built once per append, and
    a frozen dataclass costs microseconds to construct.)"""

    first_offset: int
    last_offset: int
    max_timestamp: int
    #: Last offset of the (first) batch carrying ``max_timestamp`` (Kafka's shallow offset).
    offset_of_max_timestamp: int
    batches: int
    bytes: int
    #: Timestamp the broker stamped for LogAppendTime topics, else -1.
    log_append_time: int = -1
    log_start_offset: int = 0


class OffsetAndTimestamp(NamedTuple):
    """Answer to a timestamp lookup (ListOffsets)."""

    offset: int
    timestamp: int
    #: Partition leader epoch of the batch holding ``offset`` (-1 if unknown).
    leader_epoch: int


class BatchPosition(NamedTuple):
    """Where a batch lives, as yielded by ``Log.scan_batch_headers``."""

    segment_base_offset: int
    position: int
