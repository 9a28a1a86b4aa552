"""Bytes on disk against Kafka's documented layouts, with expectations computed by hand.

Record batch v2 header (implementation.html 5.3.1): baseOffset int64, batchLength int32,
partitionLeaderEpoch int32, magic int8, crc uint32, ... ; offset index entries are
(relative offset int32, position int32); time index entries (timestamp int64, relative offset
int32); checkpoints are "version\\ncount\\nentries...\\n".
"""

from __future__ import annotations

import uuid
from pathlib import Path

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.manager import LogManager
from tests.storage.batches import batch_of_size

TOPIC_ID = uuid.UUID(bytes=bytes(7) + b"\x01" + bytes(7) + b"\x02")


def test_log_index_timeindex_and_checkpoint_bytes(tmp_path: Path) -> None:
    clock = ManualClock(5_000)
    config = LogConfig(index_interval_bytes=100, segment_index_bytes=800)
    manager = LogManager([tmp_path], config, clock)
    log = manager.get_or_create_log("t", 0, TOPIC_ID)
    part = tmp_path / "t-0"

    b0 = batch_of_size(150, records=2, base_timestamp=1000)
    b1 = batch_of_size(150, records=2, base_timestamp=3000)
    b2 = batch_of_size(150, records=2, base_timestamp=2000)
    originals = [bytes(b) for b in (b0, b1, b2)]
    for b in (b0, b1, b2):
        log.append(b, leader_epoch=7)

    # While active, both indexes are pre-allocated to segment.index.bytes (rounded to entries).
    assert (part / "00000000000000000000.index").stat().st_size == 800
    assert (part / "00000000000000000000.timeindex").stat().st_size == 792

    log.roll()  # the next segment is named by its base offset, 6
    manager.checkpoint()
    manager.close()

    data = (part / "00000000000000000000.log").read_bytes()
    assert len(data) == 450
    for i, original in enumerate(originals):
        got = data[150 * i : 150 * (i + 1)]
        # baseOffset (bytes 0-7) = 2*i, partitionLeaderEpoch (bytes 12-15) = 7, rest untouched
        assert got[0:8] == bytes(7) + bytes([2 * i])
        assert got[8:12] == original[8:12] == b"\x00\x00\x00\x8a"  # batchLength = 150 - 12 = 138
        assert got[12:16] == b"\x00\x00\x00\x07"
        assert got[16:] == original[16:]  # magic, CRC and everything after: as produced

    # Batch 0 at position 0 gets no entry; batches 1 and 2 follow more than 100 bytes later:
    # (relative offset 3 -> position 150), (5 -> 300).
    assert (part / "00000000000000000000.index").read_bytes() == (
        b"\x00\x00\x00\x03\x00\x00\x00\x96" + b"\x00\x00\x00\x05\x00\x00\x01\x2c"
    )
    # Largest timestamp so far when batch 1 was indexed: 3000 at offset 3; batch 2 (2000) and
    # the final roll entry do not raise it, so there is exactly one entry.
    assert (part / "00000000000000000000.timeindex").read_bytes() == (
        b"\x00\x00\x00\x00\x00\x00\x0b\xb8" + b"\x00\x00\x00\x03"
    )
    assert (part / "00000000000000000006.log").read_bytes() == b""
    assert (part / "00000000000000000006.index").read_bytes() == b""

    assert (part / "leader-epoch-checkpoint").read_bytes() == b"0\n1\n7 0\n"
    assert (part / "partition.metadata").read_bytes() == b"version: 0\ntopic_id: AAAAAAAAAAEAAAAAAAAAAg"
    assert (tmp_path / "recovery-point-offset-checkpoint").read_bytes() == b"0\n1\nt 0 6\n"
    assert (tmp_path / "replication-offset-checkpoint").read_bytes() == b"0\n1\nt 0 0\n"
    # Kafka only records a log start offset above the first segment's base.
    assert (tmp_path / "log-start-offset-checkpoint").read_bytes() == b"0\n0\n"
    assert (tmp_path / ".kafka_cleanshutdown").read_bytes() == b'{"version":0,"brokerEpoch":-1}'


def test_reads_a_kafka_style_directory_written_by_hand(tmp_path: Path) -> None:
    """A partition dir assembled byte by byte (as Kafka would leave it after a clean shutdown)
    loads with the right offsets and serves the batches."""
    part = tmp_path / "orders-3"
    part.mkdir()
    b0 = batch_of_size(200, records=4, base_timestamp=10)
    b0[0:8] = (40).to_bytes(8, "big")  # base offset 40, offsets 40..43
    b1 = batch_of_size(200, records=1, base_timestamp=20)
    b1[0:8] = (44).to_bytes(8, "big")
    (part / "00000000000000000040.log").write_bytes(bytes(b0 + b1))
    (part / "00000000000000000040.index").write_bytes(b"")
    (part / "00000000000000000040.timeindex").write_bytes(b"\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00\x04")
    (part / "leader-epoch-checkpoint").write_bytes(b"0\n1\n2 40\n")
    (tmp_path / "recovery-point-offset-checkpoint").write_bytes(b"0\n1\norders 3 45\n")
    (tmp_path / "log-start-offset-checkpoint").write_bytes(b"0\n1\norders 3 41\n")
    (tmp_path / "replication-offset-checkpoint").write_bytes(b"0\n1\norders 3 45\n")
    (tmp_path / ".kafka_cleanshutdown").write_bytes(b"")
    manager = LogManager([tmp_path], LogConfig(), ManualClock())
    log = manager.get_log("orders", 3)
    assert log is not None
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (41, 45, 45)
    assert log.leader_epochs.end_offset_for_epoch(2) == (2, 45)
    assert log.read_bytes(44, 1000) == bytes(b1)
    found = log.offset_for_timestamp(15)
    assert found is not None and found.offset == 44
    manager.close()
