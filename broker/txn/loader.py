"""Rebuilding the transactions of one ``__transaction_state`` partition by replaying it
(Kafka's TransactionStateManager.loadTransactionMetadata).

The log is read from its start to its end in chunks of ``transaction.state.log.load.buffer.size``;
the last record of a transactional id wins and a tombstone removes it. The replay yields to the
event loop every few milliseconds; meanwhile the partition answers COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

import logging
import struct

from broker.coordinator.replay import replay_batches
from broker.txn.records import read_key, read_value
from broker.txn.state import TransactionMetadata
from protocol.exceptions import ProtocolError
from protocol.records import BatchHeader, decode_batch
from storage import Log

log = logging.getLogger(__name__)


async def replay(log_: Log, buffer_size: int) -> dict[str, TransactionMetadata]:
    """Every transactional id of ``log_`` as its last record left it."""
    loaded: dict[str, TransactionMetadata] = {}

    def apply_batch(data: bytes, pos: int, header: BatchHeader) -> None:
        if header.is_control:
            return
        _, records = decode_batch(data, pos)
        for record in records:
            _apply(loaded, record.key, record.value, header.base_offset + record.offset_delta)

    await replay_batches(log_, buffer_size, apply_batch)
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
