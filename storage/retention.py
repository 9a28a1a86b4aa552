"""Retention: which old segments to delete (Kafka's ``UnifiedLog.deleteOldSegments``).

Whole segments go, oldest first, and only while each one is entirely below the high watermark.
The active segment is never deleted (Kafka rolls it first when it is itself expired; here it
stays until it rolls by ``segment.ms`` / ``segment.bytes``, which bounds retention lag by those).

* Always: segments wholly below the log start offset (DeleteRecords moved it).
* With ``cleanup.policy`` containing ``delete``:
  - ``retention.bytes`` >= 0: delete while the log minus the segment is still >= the limit;
  - ``retention.ms`` >= 0: delete while ``now - largest timestamp of the segment > retention.ms``
    (the largest timestamp is the time index's last entry, or the file's mtime without one).
"""

from __future__ import annotations

from storage.log import Log
from storage.segment import LogSegment


def delete_old_segments(log: Log, now_ms: int) -> int:
    """Apply every retention rule once; returns the number of segments deleted."""
    deleted = log.delete_segments_below_log_start()
    config = log.config
    if config.delete:
        deleted += _delete_retention_bytes_breached(log)
        deleted += _delete_retention_ms_breached(log, now_ms)
    return deleted


def _delete_retention_bytes_breached(log: Log) -> int:
    limit = log.config.retention_bytes
    if limit < 0:
        return 0
    size = log.size_in_bytes()
    if size < limit:
        return 0
    excess = size - limit

    def breached(segment: LogSegment, _next: LogSegment | None) -> bool:
        nonlocal excess
        if excess - segment.size >= 0:
            excess -= segment.size
            return True
        return False

    return log.delete_old_segments(breached)


def _delete_retention_ms_breached(log: Log, now_ms: int) -> int:
    retention = log.config.retention_ms
    if retention < 0:
        return 0

    def expired(segment: LogSegment, _next: LogSegment | None) -> bool:
        return now_ms - segment.largest_timestamp() > retention

    return log.delete_old_segments(expired)
