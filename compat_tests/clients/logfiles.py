"""Read record-batch headers straight from a partition's segment files (Kafka's on-disk format),
to check what the broker stored independently of any client and of the broker's own code."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
# baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, recordCount
_HEADER = struct.Struct(">qiibIhiqqqhii")
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


@dataclass(frozen=True)
class StoredBatch:
    base_offset: int
    last_offset: int
    magic: int
    compression: str
    timestamp_type: int
    producer_id: int
    base_sequence: int
    count: int


def batches(partition_dir: Path) -> list[StoredBatch]:
    out: list[StoredBatch] = []
    for segment in sorted(partition_dir.glob("*.log")):
        data = segment.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            (base, length, _epoch, magic, _crc, attrs, last_delta, _t0, _tmax, pid, _pe, seq, count) = (
                _HEADER.unpack_from(data, pos)
            )
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated zeros or a torn tail
            codec = CODECS.get(attrs & 7, "?")
            timestamp_type = (attrs >> 3) & 1
            out.append(StoredBatch(base, base + last_delta, magic, codec, timestamp_type, pid, seq, count))
            pos += 12 + length
    return out
