"""What the drivers exchange: messages to produce, records read back, where reading starts."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Start positions for :meth:`Driver.consume`.
EARLIEST = "earliest"
LATEST = "latest"


@dataclass(frozen=True)
class AtTimestamp:
    """Start at the first record whose timestamp is at least ``ms`` (ListOffsets by time)."""

    ms: int


Start = str | int | AtTimestamp


@dataclass(frozen=True)
class Msg:
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int | None = None
    partition: int | None = None


@dataclass(frozen=True)
class Ack:
    """What the producer reported for one message (offset None when acks=0 tells nothing)."""

    partition: int
    offset: int | None


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    timestamp: int = -1
