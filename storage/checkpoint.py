"""Kafka's small text files: checkpoints, partition metadata, the clean-shutdown marker.

Formats (as Kafka 3.9 writes them; every line ends with ``\\n``):

* Checkpoint files (``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint``,
  ``replication-offset-checkpoint``, ``cleaner-offset-checkpoint`` in each log dir, and
  ``leader-epoch-checkpoint`` in each partition dir)::

      0                  <- version
      2                  <- number of entries
      my-topic 0 1234    <- "topic partition offset" (leader epochs: "epoch start_offset")
      my-topic 1 99

* ``partition.metadata``: ``version: 0\\ntopic_id: <base64url, no padding, of the 16 uuid bytes>``
  (no trailing newline, exactly as Kafka's ``PartitionMetadata.encode``).
* ``.kafka_cleanshutdown`` in each log dir: ``{"version":0,"brokerEpoch":<n>}``; its presence,
  not its content, tells the next start that logs were closed cleanly.

Writes go to ``<name>.tmp``, are fsync'd, renamed over the target and the directory fsync'd,
like Kafka's ``CheckpointFile.write``; so every write here may block on fsync.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from storage.errors import CheckpointFormatError
from storage.fs import FileSystem

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
PARTITION_METADATA = "partition.metadata"
CLEAN_SHUTDOWN = ".kafka_cleanshutdown"

_WS = re.compile(r"\s+")


def encode_checkpoint(version: int, lines: Iterable[str]) -> bytes:
    body = list(lines)
    return "".join(f"{line}\n" for line in [str(version), str(len(body)), *body]).encode("utf-8")


def decode_checkpoint(data: bytes, version: int, where: str) -> list[list[str]]:
    """Return each entry line split on whitespace. An empty file has no entries (Kafka creates
    checkpoint files empty before their first write)."""
    lines = data.decode("utf-8").splitlines()
    if not lines:
        return []
    try:
        found = int(lines[0])
    except ValueError as exc:
        raise CheckpointFormatError(f"malformed version line in {where}: {lines[0]!r}") from exc
    if found != version:
        raise CheckpointFormatError(f"unrecognised version {found} in {where}, expected {version}")
    if len(lines) < 2:
        return []
    try:
        expected = int(lines[1])
    except ValueError as exc:
        raise CheckpointFormatError(f"malformed count line in {where}: {lines[1]!r}") from exc
    entries = [_WS.split(line.strip()) for line in lines[2:]]
    if len(entries) != expected:
        raise CheckpointFormatError(f"expected {expected} entries in {where}, found {len(entries)}")
    return entries


class OffsetCheckpointFile:
    """``topic partition offset`` checkpoints kept per log dir."""

    VERSION = 0

    def __init__(self, fs: FileSystem, path: Path) -> None:
        self.fs = fs
        self.path = path

    def read(self) -> dict[tuple[str, int], int]:
        if not self.path.exists():
            return {}
        out: dict[tuple[str, int], int] = {}
        for entry in decode_checkpoint(self.fs.read_file(self.path), self.VERSION, str(self.path)):
            if len(entry) != 3:
                raise CheckpointFormatError(f"malformed line in {self.path}: {' '.join(entry)!r}")
            try:
                out[(entry[0], int(entry[1]))] = int(entry[2])
            except ValueError as exc:
                raise CheckpointFormatError(f"malformed line in {self.path}: {entry!r}") from exc
        return out

    def write(self, offsets: Mapping[tuple[str, int], int]) -> None:
        lines = [f"{topic} {partition} {offset}" for (topic, partition), offset in offsets.items()]
        self.fs.write_file_atomically(self.path, encode_checkpoint(self.VERSION, lines))


def encode_topic_id(topic_id: uuid.UUID) -> str:
    """Kafka's ``Uuid.toString``: URL-safe base64 of the 16 bytes, without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode("ascii")


def decode_topic_id(text: str) -> uuid.UUID:
    if len(text) > 24:
        raise CheckpointFormatError(f"topic id {text!r} is too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise CheckpointFormatError(f"topic id {text!r} is not base64") from exc
    if len(raw) != 16:
        raise CheckpointFormatError(f"topic id {text!r} does not decode to 16 bytes")
    return uuid.UUID(bytes=raw)


class PartitionMetadataFile:
    VERSION = 0

    def __init__(self, fs: FileSystem, directory: Path) -> None:
        self.fs = fs
        self.path = directory / PARTITION_METADATA

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, topic_id: uuid.UUID) -> None:
        text = f"version: {self.VERSION}\ntopic_id: {encode_topic_id(topic_id)}"
        self.fs.write_file_atomically(self.path, text.encode("utf-8"))

    def read(self) -> uuid.UUID:
        lines = self.fs.read_file(self.path).decode("utf-8").splitlines()
        if len(lines) < 2:
            raise CheckpointFormatError(f"malformed partition metadata in {self.path}")
        version = re.split(r":\s+", lines[0])
        topic = re.split(r":\s+", lines[1])
        if len(version) != 2 or version[0] != "version" or len(topic) != 2 or topic[0] != "topic_id":
            raise CheckpointFormatError(f"malformed partition metadata in {self.path}")
        try:
            if int(version[1]) < self.VERSION:
                raise CheckpointFormatError(f"unknown partition metadata version in {self.path}")
        except ValueError as exc:
            raise CheckpointFormatError(f"malformed version in {self.path}") from exc
        topic_id = decode_topic_id(topic[1].strip())
        if topic_id.int == 0:
            raise CheckpointFormatError(f"zero topic id in {self.path}")
        return topic_id


class CleanShutdownFile:
    """Marker written at clean close and deleted when a log dir is opened for writing."""

    def __init__(self, fs: FileSystem, log_dir: Path) -> None:
        self.fs = fs
        self.path = log_dir / CLEAN_SHUTDOWN

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, broker_epoch: int = -1) -> None:
        text = json.dumps({"version": 0, "brokerEpoch": broker_epoch}, separators=(",", ":"))
        self.fs.write_file_atomically(self.path, text.encode("utf-8"))

    def delete(self) -> None:
        if self.path.exists():
            self.fs.unlink(self.path)
            self.fs.fsync_dir(self.path.parent)
