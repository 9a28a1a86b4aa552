"""Replaying a coordinator's partition (``__consumer_offsets``, ``__transaction_state``) at
load: every batch from the log's start to its end, read in chunks, yielding to the event loop
every few milliseconds so that a large partition never stalls the broker.

Kept apart from :mod:`broker.coordinator.partitions` so that the group coordinator's loader
imports no more than it needs (its modules load one slice at a time, see FindCoordinator).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from protocol.records import BatchHeader, iter_batches
from storage import Log, StorageError
from storage.fast_dataclass import dataclass

log = logging.getLogger(__name__)

#: Longest stretch of replay work between two yields to the event loop.
YIELD_EVERY_S = 0.01

#: Called with (chunk, position of the batch in it, its header) for each batch replayed.
ApplyBatch = Callable[[bytes, int, BatchHeader], None]


@dataclass(frozen=True, slots=True)
class ReplayRead:
    """How far a replay read: the log end offset it stopped at and the bytes it read."""

    end_offset: int
    bytes: int


async def replay_batches(log_: Log, buffer_size: int, apply: ApplyBatch) -> ReplayRead:
    """Call ``apply`` on every batch of ``log_`` from its start to its current end, in order,
    reading ``buffer_size`` bytes at a time. A read error ends the replay (logged)."""
    offset = log_.log_start_offset
    end = log_.log_end_offset
    read = 0
    budget_start = time.monotonic()
    while offset < end:
        try:
            data = log_.read_bytes(offset, buffer_size, max_offset=end)
        except (StorageError, OSError) as exc:
            log.error("stopped loading %s at offset %d: %s", log_, offset, exc)
            break
        if not data:
            break
        read += len(data)
        progressed = False
        for pos, header in iter_batches(data):
            apply(data, pos, header)
            offset = header.base_offset + header.last_offset_delta + 1
            progressed = True
            if time.monotonic() - budget_start > YIELD_EVERY_S:
                await asyncio.sleep(0)
                budget_start = time.monotonic()
        if not progressed:
            break
        await asyncio.sleep(0)  # at least once per chunk
        budget_start = time.monotonic()
    return ReplayRead(end, read)
