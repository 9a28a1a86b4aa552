"""Leader epoch cache: which leader epoch started at which offset (``leader-epoch-checkpoint``).

Followers use it through OffsetForLeaderEpoch to find where their log diverges from the
leader's. Semantics follow Kafka's ``LeaderEpochFileCache``:

* ``assign(epoch, start_offset)`` adds an entry unless it repeats the latest epoch at the same
  or a later offset; entries that would break monotonicity (an epoch or start offset at or above
  the new one) are dropped first. It rewrites the checkpoint with fsync, so it may block; it runs
  only when the epoch changes, not on every append.
* ``end_offset_for_epoch(epoch)`` answers OffsetForLeaderEpoch: for the latest epoch, the log end
  offset; for an older one, the start offset of the next higher epoch together with the largest
  known epoch <= the requested one; ``(-1, -1)`` when undefined.
* ``truncate_from_end`` / ``truncate_from_start`` follow log truncation and log start moves.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from storage.checkpoint import LEADER_EPOCH_CHECKPOINT, decode_checkpoint, encode_checkpoint
from storage.errors import CheckpointFormatError
from storage.fs import FileSystem

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochCache:
    VERSION = 0

    def __init__(self, fs: FileSystem, directory: Path, log_end_offset: Callable[[], int]) -> None:
        self.fs = fs
        self.path = directory / LEADER_EPOCH_CHECKPOINT
        self._log_end_offset = log_end_offset
        self._epochs: list[EpochEntry] = []
        #: Epoch of the last entry, or None; an attribute kept in step with the entries (the
        #: append hot path reads it on every call).
        self.latest_epoch: int | None = None
        if self.path.exists():
            for fields in decode_checkpoint(self.fs.read_file(self.path), self.VERSION, str(self.path)):
                if len(fields) != 2:
                    raise CheckpointFormatError(f"malformed line in {self.path}: {fields!r}")
                self._assign(EpochEntry(int(fields[0]), int(fields[1])))

    # -- queries ----------------------------------------------------------------------------------

    def entries(self) -> list[EpochEntry]:
        return list(self._epochs)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """``(epoch, end_offset)`` as OffsetForLeaderEpoch answers it (see module docstring)."""
        if epoch == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if self._epochs[-1].epoch == epoch:
            return epoch, self._log_end_offset()
        epochs = [e.epoch for e in self._epochs]
        higher = bisect.bisect_right(epochs, epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            # Older than anything known: the data has been removed; answer with the start of the
            # first known epoch so the follower truncates to the leader's start.
            return epoch, self._epochs[0].start_offset
        return self._epochs[higher - 1].epoch, self._epochs[higher].start_offset

    def epoch_for_offset(self, offset: int) -> int | None:
        found: int | None = None
        for entry in self._epochs:
            if entry.start_offset == offset:
                return entry.epoch
            if entry.start_offset > offset:
                return found
            found = entry.epoch
        return found

    # -- updates ----------------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; fsyncs the checkpoint if it changed."""
        if self._assign(EpochEntry(epoch, start_offset)):
            self.flush()
            return True
        return False

    def _assign(self, entry: EpochEntry) -> bool:
        if entry.epoch < 0 or entry.start_offset < 0:
            raise ValueError(f"invalid leader epoch entry {entry}")
        latest = self._epochs[-1] if self._epochs else None
        if latest is not None and latest.epoch == entry.epoch and entry.start_offset >= latest.start_offset:
            return False
        while self._epochs and (
            self._epochs[-1].epoch >= entry.epoch or self._epochs[-1].start_offset >= entry.start_offset
        ):
            self._epochs.pop()
        self._epochs.append(entry)
        self.latest_epoch = entry.epoch
        return True

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after ``end_offset`` (the log was truncated there)."""
        changed = False
        while end_offset >= 0 and self._epochs and self._epochs[-1].start_offset >= end_offset:
            self._epochs.pop()
            changed = True
        if changed:
            self.latest_epoch = self._epochs[-1].epoch if self._epochs else None
            self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop entries wholly before ``start_offset``; the epoch containing it now starts there."""
        if self._epochs and self._epochs[0].start_offset == start_offset:
            return  # already starts there (start offsets only grow): nothing to rewrite
        removed: EpochEntry | None = None
        while self._epochs and self._epochs[0].start_offset <= start_offset:
            removed = self._epochs.pop(0)
        if removed is not None:
            self._epochs.insert(0, EpochEntry(removed.epoch, start_offset))
            self.flush()

    def clear(self) -> None:
        self._epochs.clear()
        self.latest_epoch = None
        self.flush()

    def flush(self) -> None:
        if not self.path.parent.exists():
            return
        lines = [f"{e.epoch} {e.start_offset}" for e in self._epochs]
        self.fs.write_file_atomically(self.path, encode_checkpoint(self.VERSION, lines))
