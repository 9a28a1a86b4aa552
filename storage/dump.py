"""Print the contents of log files, like Kafka's ``kafka-dump-log.sh`` (DumpLogSegments).

Usage::

    python -m storage.dump PATH [PATH ...] [--deep-iteration] [--index-sanity-check]

PATH may be a ``.log``, ``.index``, ``.timeindex`` or ``.txnindex`` file, a checkpoint file,
``partition.metadata``, a partition directory (every file in it) or a log dir (its partitions).
Files are only read, never changed, so a live log can be inspected; an active segment's index
shows its pre-allocated zero tail as ``(N unused slots)``. Batches are printed with their
offsets, timestamps, size and whether the CRC-32C is valid; ``--deep-iteration`` decodes the
records too. An invalid batch or a torn tail is reported with its position and the dump of that
file stops there, as recovery would.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from protocol.records.batch import LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, BatchHeader, compute_crc, read_header
from storage.checkpoint import decode_topic_id
from storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX
from storage.txn_index import ENTRY_SIZE, CorruptTxnIndexError, decode_entries

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _base_offset_of(path: Path) -> int:
    stem = path.name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else 0


def iter_file_batches(data: bytes) -> Iterator[tuple[int, BatchHeader | None, str | None]]:
    """``(position, header, problem)``; a problem ends the iteration."""
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < LOG_OVERHEAD:
            yield pos, None, f"{n - pos} trailing bytes (torn batch prefix)"
            return
        length = struct.unpack_from(">i", data, pos + 8)[0]
        size = length + LOG_OVERHEAD
        if size < RECORD_BATCH_OVERHEAD or n - pos < RECORD_BATCH_OVERHEAD:
            yield pos, None, f"invalid or torn batch header (declared length {length})"
            return
        header = read_header(data, pos)
        if header.magic != 2:
            yield pos, None, f"magic {header.magic} is not 2"
            return
        if pos + size > n:
            yield pos, None, f"torn batch: declares {size} bytes, {n - pos} left"
            return
        yield pos, header, None
        pos += size


def dump_log(path: Path, out: TextIO, *, deep: bool) -> int:
    data = path.read_bytes()
    out.write(f"Dumping {path}\n")
    out.write(f"Log starting offset: {_base_offset_of(path)}\n")
    batches = 0
    for pos, header, problem in iter_file_batches(data):
        if header is None:
            out.write(
                f"Found invalid data at position {pos}: {problem}; {len(data) - pos} bytes not dumped\n"
            )
            return 1
        batches += 1
        valid = compute_crc(data, pos, header.size) == header.crc
        ts_type = "LogAppendTime" if header.is_log_append_time else "CreateTime"
        horizon = header.base_timestamp if header.has_delete_horizon else None
        out.write(
            f"baseOffset: {header.base_offset} lastOffset: {header.last_offset} "
            f"count: {header.records_count} "
            f"baseSequence: {header.base_sequence} lastSequence: {header.last_sequence} "
            f"producerId: {header.producer_id} producerEpoch: {header.producer_epoch} "
            f"partitionLeaderEpoch: {header.partition_leader_epoch} "
            f"isTransactional: {str(header.is_transactional).lower()} "
            f"isControl: {str(header.is_control).lower()} "
            f"deleteHorizonMs: {horizon if horizon is not None else 'none'} position: {pos} "
            f"{ts_type}: {header.max_timestamp} baseTimestamp: {header.base_timestamp} size: {header.size} "
            f"magic: {header.magic} compresscodec: {CODECS.get(header.compression, header.compression)} "
            f"crc: {header.crc} isvalid: {str(valid).lower()}\n"
        )
        if deep and valid:
            _dump_records(data[pos : pos + header.size], header, out)
    out.write(f"{batches} batches, {len(data)} bytes\n")
    return 0


def _dump_records(batch: bytes, header: BatchHeader, out: TextIO) -> None:
    from protocol.records.record import decode_batch, record_offset, record_timestamp

    try:
        _, records = decode_batch(batch, 0)
    except Exception as exc:  # a dump tool reports, it does not crash
        out.write(f"| cannot decode records: {exc}\n")
        return
    if header.is_control:
        _dump_marker(batch, out)
        return
    for rec in records:
        key = "null" if rec.key is None else str(len(rec.key))
        value = "null" if rec.value is None else str(len(rec.value))
        out.write(
            f"| offset: {record_offset(header, rec)} timestamp: {record_timestamp(header, rec)} "
            f"keySize: {key} valueSize: {value} headerKeys: {[k for k, _ in rec.headers]}\n"
        )


def _dump_marker(batch: bytes, out: TextIO) -> None:
    """A control record as Kafka's dump prints it (``endTxnMarker: COMMIT coordinatorEpoch: 3``)."""
    from storage.producer_state import marker_of_batch

    try:
        marker = marker_of_batch(batch)
    except Exception as exc:  # a dump tool reports, it does not crash
        out.write(f"| cannot decode the control record: {exc}\n")
        return
    if marker is None:
        out.write("| control record (not a transaction marker)\n")
        return
    kind = "COMMIT" if marker.committed else "ABORT"
    out.write(f"| endTxnMarker: {kind} coordinatorEpoch: {marker.coordinator_epoch}\n")


def dump_txn_index(path: Path, out: TextIO) -> int:
    """Each aborted transaction, as Kafka's DumpLogSegments prints a ``.txnindex``."""
    data = path.read_bytes()
    out.write(f"Dumping {path}\n")
    try:
        entries = decode_entries(data)
    except CorruptTxnIndexError as exc:
        out.write(f"{exc}\n")
        return 1
    for txn in entries:
        out.write(
            f"version: 0 producerId: {txn.producer_id} firstOffset: {txn.first_offset} "
            f"lastOffset: {txn.last_offset} lastStableOffset: {txn.last_stable_offset}\n"
        )
    if len(data) % ENTRY_SIZE:
        out.write(f"{len(data) % ENTRY_SIZE} trailing bytes (torn entry)\n")
        return 1
    return 0


def dump_index(path: Path, out: TextIO, *, entry_size: int, fmt: str, time: bool) -> int:
    data = path.read_bytes()
    base = _base_offset_of(path)
    out.write(f"Dumping {path}\n")
    usable = len(data) - len(data) % entry_size
    entries = list(struct.iter_unpack(fmt, data[:usable]))
    unused = 0
    while entries and entries[-1] == (0, 0):
        entries.pop()
        unused += 1
    for a, b in entries:
        if time:
            out.write(f"timestamp: {a} offset: {base + b}\n")
        else:
            out.write(f"offset: {base + a} position: {b}\n")
    if unused:
        out.write(f"({unused} unused slots)\n")
    if len(data) % entry_size:
        out.write(f"{len(data) % entry_size} trailing bytes: index is corrupt\n")
        return 1
    return 0


def index_sanity(log_path: Path, out: TextIO) -> int:
    """Check that every offset-index entry points at a batch start whose last offset it names."""
    index_path = log_path.with_name(log_path.name[: -len(LOG_SUFFIX)] + INDEX_SUFFIX)
    if not index_path.exists():
        out.write(f"{index_path}: missing\n")
        return 1
    data = log_path.read_bytes()
    starts = {pos: h for pos, h, _ in iter_file_batches(data) if h is not None}
    base = _base_offset_of(log_path)
    raw = index_path.read_bytes()
    bad = 0
    for rel, pos in struct.iter_unpack(">ii", raw[: len(raw) - len(raw) % 8]):
        if rel == 0 and pos == 0:
            continue
        h = starts.get(pos)
        if h is None or h.last_offset != base + rel:
            out.write(f"index entry offset {base + rel} position {pos} does not match a batch\n")
            bad += 1
    out.write(f"{index_path}: {'ok' if not bad else f'{bad} bad entries'}\n")
    return 1 if bad else 0


def dump_text(path: Path, out: TextIO) -> int:
    out.write(f"Dumping {path}\n")
    text = path.read_text("utf-8")
    out.write(text if text.endswith("\n") or not text else text + "\n")
    if path.name == "partition.metadata":
        for line in text.splitlines():
            if line.startswith("topic_id:"):
                out.write(f"(topic id as UUID: {decode_topic_id(line.split(':', 1)[1].strip())})\n")
    return 0


def dump_path(path: Path, out: TextIO, *, deep: bool = False, sanity: bool = False) -> int:
    if path.is_dir():
        rc = 0
        for child in sorted(path.iterdir()):
            if child.is_dir() or not child.name.endswith(".tmp"):
                rc |= dump_path(child, out, deep=deep, sanity=sanity)
        return rc
    name = path.name
    if name.endswith(LOG_SUFFIX):
        rc = dump_log(path, out, deep=deep)
        return rc | (index_sanity(path, out) if sanity else 0)
    if name.endswith(INDEX_SUFFIX):
        return dump_index(path, out, entry_size=8, fmt=">ii", time=False)
    if name.endswith(TIME_INDEX_SUFFIX):
        return dump_index(path, out, entry_size=12, fmt=">qi", time=True)
    if name.endswith(TXN_INDEX_SUFFIX):
        return dump_txn_index(path, out)
    if name.endswith("checkpoint") or name in ("partition.metadata", ".kafka_cleanshutdown"):
        return dump_text(path, out)
    out.write(f"Skipping {path}: unknown file type\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.dump", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--deep-iteration", action="store_true", help="decode and print every record")
    parser.add_argument("--index-sanity-check", action="store_true", help="verify offset index entries")
    args = parser.parse_args(argv)
    rc = 0
    for path in args.paths:
        if not path.exists():
            sys.stderr.write(f"{path}: no such file or directory\n")
            rc = 2
            continue
        rc |= dump_path(path, sys.stdout, deep=args.deep_iteration, sanity=args.index_sanity_check)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
