"""Moving a partition's log to another log dir of the same broker: the local catch-up step.

Kafka's ReplicaAlterLogDirsThread copies the current log into a "future" log (a directory
``<topic>-<partition>.<32 hex>-future`` in the destination dir) by fetching from it as a follower
would, then swaps the two. This is one bounded step of that copy, done with storage alone (no
wire format): reconcile the future log with the current one, then read at most ``max_bytes``
of whole batches from the current log at the future's end and append them as a follower does
(offsets and leader epochs kept, :meth:`Log.append_as_follower`).

Reconciling, as a follower truncates against its leader:

- the current log was truncated (a leader change) or rewrote an epoch the future also holds:
  the future is truncated to where its latest epoch ends in the current log (OffsetForLeaderEpoch
  semantics, the smaller of the two ends);
- the current log's start moved past the future's end (retention, DeleteRecords): the future
  restarts empty there; a start that moved less is followed with the same delete.

Blocking file work: run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

from storage.errors import OffsetOutOfRangeError
from storage.fast_dataclass import dataclass
from storage.log import Log

#: How much one step copies at most (Kafka's replica.fetch.max.bytes default is 1 MiB).
DEFAULT_STEP_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: bytes copied, whether the future was truncated, and the lag after it."""

    copied: int
    truncated: bool
    lag: int


def reconcile(current: Log, future: Log) -> bool:
    """Truncate the future log where it diverged from the current one; True when it did."""
    truncated = False
    latest = future.leader_epochs.latest_epoch
    if latest is not None:
        epoch, end = current.leader_epochs.end_offset_for_epoch(latest)
        if epoch < 0 or end < 0:
            target = current.log_start_offset
        else:
            # The smaller end: where the epoch ends in the current log, bounded by where the
            # epoch the current log knows ends in the future one (Kafka's follower truncation).
            own_epoch, own_end = future.leader_epochs.end_offset_for_epoch(epoch)
            target = min(end, own_end) if own_epoch == epoch and own_end >= 0 else end
        target = min(target, current.log_end_offset)
        if target < future.log_end_offset:
            truncated = future.truncate_to(max(target, 0)) or truncated
    elif future.log_end_offset > current.log_end_offset:
        truncated = future.truncate_to(current.log_end_offset) or truncated
    start = current.log_start_offset
    if future.log_end_offset < start:
        future.truncate_fully_and_start_at(start)
        truncated = True
    else:
        _follow_log_start(current, future)
    return truncated


def _follow_log_start(current: Log, future: Log) -> None:
    """Move the future's log start up to the current one's where the future holds it."""
    future.high_watermark = min(current.high_watermark, future.log_end_offset)
    start = current.log_start_offset
    if future.log_start_offset < start <= future.high_watermark:
        future.delete_records_before(start)


def copy_step(current: Log, future: Log, max_bytes: int = DEFAULT_STEP_BYTES) -> StepResult:
    """One bounded step of the copy (see the module docstring)."""
    truncated = reconcile(current, future)
    copied = 0
    offset = future.log_end_offset
    if offset < current.log_end_offset:
        try:
            result = current.read(offset, max_bytes, None, True)
        except OffsetOutOfRangeError:
            result = None  # the current log moved meanwhile: the next step reconciles again
        if result is not None:
            with result:
                data = result.slice.read() if result.slice is not None else b""
            if data and result.first_offset < offset:
                # The current log starts inside a batch (DeleteRecords) and the future is empty:
                # it starts at that batch, as Kafka's follower on UnexpectedAppendOffset.
                future.truncate_fully_and_start_at(result.first_offset)
            if data:
                future.append_as_follower(data)
                copied = len(data)
    _follow_log_start(current, future)
    return StepResult(copied, truncated, max(current.log_end_offset - future.log_end_offset, 0))
