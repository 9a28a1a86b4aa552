"""Idempotent writer for the producer-state SIGKILL test
(``python -m tests.storage.producer_crash_writer DIR SEED``).

It opens the log dir (recovering it and its producer state), resumes producer ``PID`` at the
sequence after the last one the recovered state knows, and appends idempotent batches forever,
checking and updating the producer state around each append as the broker's partition does.
After every fsync it prints ``FLUSHED <offset>``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from protocol.records.batch import iter_batches
from storage.clock import SystemClock
from storage.config import LogConfig
from storage.manager import LogManager
from tests.storage.batches import make_batch

#: Small segments, so that the writer rolls (and snapshots) often.
CONFIG = LogConfig(segment_bytes=8 * 1024, index_interval_bytes=1024, segment_index_bytes=4096)
TOPIC = "idem"
PID = 4242


def main(directory: str, seed: int) -> None:
    rng = random.Random(seed)
    manager = LogManager([Path(directory)], CONFIG, SystemClock(), max_open_files=8)
    log = manager.get_or_create_log(TOPIC, 0)
    state = log.producer_state
    entry = state.producers.get(PID)
    seq = entry.last_seq + 1 if entry is not None else 0
    print(f"READY {log.log_end_offset} {seq}", flush=True)
    appends = 0
    while True:
        count = rng.randrange(1, 4)
        data = make_batch(
            count,
            producer_id=PID,
            producer_epoch=0,
            base_sequence=seq,
            base_timestamp=int(time.time() * 1000),
            value_size=rng.randrange(10, 600),
        )
        ((_, header),) = list(iter_batches(data))
        if state.check(header) is not None:
            raise SystemExit(f"fresh batch at sequence {seq} taken for a duplicate")
        info = log.append(data, 0)
        state.update(header, info.first_offset)
        seq += count
        appends += 1
        if appends % 10 == 0:
            log.flush()
            print(f"FLUSHED {log.recovery_point}", flush=True)
        if appends % 40 == 0:
            manager.checkpoint()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
