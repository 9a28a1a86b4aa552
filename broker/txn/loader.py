"""Rebuilding the transactions of one ``__transaction_state`` partition by replaying it
(Kafka's TransactionStateManager.loadTransactionMetadata).

The log is read from its start to its end in chunks of ``transaction.state.log.load.buffer.size``;
the last record of a transactional id wins and a tombstone removes it. The replay yields to the
event loop every few milliseconds; meanwhile the partition answers COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time

from broker.txn.records import read_key, read_value
from broker.txn.state import TransactionMetadata
from protocol.exceptions import ProtocolError
from protocol.records import decode_batch, iter_batches
from storage import Log, StorageError

log = logging.getLogger(__name__)

YIELD_EVERY_S = 0.01


async def replay(log_: Log, buffer_size: int) -> dict[str, TransactionMetadata]:
    """Every transactional id of ``log_`` as its last record left it."""
    loaded: dict[str, TransactionMetadata] = {}
    offset = log_.log_start_offset
    end = log_.log_end_offset
    budget_start = time.monotonic()
    while offset < end:
        try:
            data = log_.read_bytes(offset, buffer_size, max_offset=end)
        except (StorageError, OSError) as exc:
            log.error("stopped loading %s at offset %d: %s", log_, offset, exc)
            break
        if not data:
            break
        progressed = False
        for pos, header in iter_batches(data):
            offset = header.base_offset + header.last_offset_delta + 1
            progressed = True
            if header.is_control:
                continue
            _, records = decode_batch(data, pos)
            for record in records:
                _apply(loaded, record.key, record.value, header.base_offset + record.offset_delta)
            if time.monotonic() - budget_start > YIELD_EVERY_S:
                await asyncio.sleep(0)
                budget_start = time.monotonic()
        if not progressed:
            break
        await asyncio.sleep(0)
        budget_start = time.monotonic()
    return loaded


def _apply(
    loaded: dict[str, TransactionMetadata],
    key: bytes | memoryview | None,
    value: bytes | memoryview | None,
    offset: int,
) -> None:
    if key is None:
        log.warning("skipping a record without a key at offset %d", offset)
        return
    try:
        transactional_id = read_key(key)
    except (struct.error, ProtocolError) as exc:
        log.error("skipping an unreadable key at offset %d: %s", offset, exc)
        return
    if transactional_id is None:
        log.warning("skipping a record with an unknown key version at offset %d", offset)
        return
    if value is None:
        loaded.pop(transactional_id, None)
        return
    try:
        transit = read_value(value)
    except (ValueError, struct.error, ProtocolError) as exc:
        log.error("skipping an unreadable value of %s at offset %d: %s", transactional_id, offset, exc)
        return
    loaded[transactional_id] = TransactionMetadata.from_transit(transactional_id, transit)
