"""Writer process for the SIGKILL crash test (``python -m tests.storage.crash_writer DIR SEED``).

It opens the log dir (recovering it), then appends batches forever. The content of the batch
starting at offset ``o`` is a pure function of ``o`` (:func:`expected_batch`), so the test can
check recovered data byte for byte. After every fsync it prints ``FLUSHED <offset>``: every
batch below that offset was fsync'd and must survive.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from storage.clock import SystemClock
from storage.config import LogConfig
from storage.manager import LogManager
from tests.storage.batches import make_batch

CONFIG = LogConfig(segment_bytes=48 * 1024, index_interval_bytes=1024, segment_index_bytes=4096)
TOPIC = "crash"


def expected_batch(offset: int) -> bytearray:
    rng = random.Random(offset)
    count = rng.randrange(1, 4)
    records = [(b"k%d" % (offset + i), rng.randbytes(rng.randrange(10, 900))) for i in range(count)]
    b = make_batch(
        records, base_offset=offset, base_timestamp=1_700_000_000_000 + offset, partition_leader_epoch=0
    )
    return b


def main(directory: str, seed: int) -> None:
    rng = random.Random(seed)
    manager = LogManager([Path(directory)], CONFIG, SystemClock(), max_open_files=8)
    log = manager.get_or_create_log(TOPIC, 0)
    print(f"READY {log.log_end_offset}", flush=True)
    appends = 0
    while True:
        buf = bytearray()
        offset = log.log_end_offset
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            b = expected_batch(offset)
            buf += b
            offset += int.from_bytes(b[23:27], "big") + 1
        log.append(buf, 0)
        appends += 1
        if appends % 15 == 0:
            log.flush()
            print(f"FLUSHED {log.recovery_point}", flush=True)
        if appends % 40 == 0:
            manager.checkpoint()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
