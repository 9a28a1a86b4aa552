"""Cluster metadata: topics, their ids, partition assignments and configs, and who leads what.

The embedded (single-node) mode keeps this in one JSON document in the first log directory,
rewritten atomically after every change (changes touch memory; the caller persists a
:meth:`ClusterMetadata.snapshot` with :meth:`ClusterMetadata.write` in a worker thread before it
answers, so no fsync runs on the event loop); the cluster mode will keep the same model in ZooKeeper.
Handlers only see :class:`ClusterMetadata`, never where it is stored.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from broker.types import BrokerId, TopicPartition
from protocol.primitives import ZERO_UUID
from storage.checkpoint import encode_topic_id
from storage.fast_dataclass import dataclass, field
from storage.fs import FileSystem

log = logging.getLogger(__name__)

METADATA_FILE = "brook-metadata.json"
#: Kafka reserves this id for its metadata topic; Uuid.randomUuid never returns it.
METADATA_TOPIC_ID = uuid.UUID(int=1)

MAX_TOPIC_NAME = 249
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def random_kafka_uuid() -> uuid.UUID:
    """A random id as Kafka's Uuid.randomUuid: never zero, never the metadata topic's id, and
    never one whose base64 form starts with '-' (it would read as a command-line flag)."""
    while True:
        candidate = uuid.uuid4()
        if candidate in (ZERO_UUID, METADATA_TOPIC_ID):
            continue
        if encode_topic_id(candidate).startswith("-"):
            continue
        return candidate


def topic_name_error(name: str) -> str | None:
    """Why ``name`` is not a legal topic name (Kafka's Topic.validate), or None."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME:
        return (
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
        )
    if not _LEGAL_TOPIC.match(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than ASCII alphanumerics, '
            "'.', '_' and '-'"
        )
    return None


def has_collision_chars(name: str) -> bool:
    return "." in name or "_" in name


def unify_collision_chars(name: str) -> str:
    """Kafka treats '.' and '_' as colliding in topic names (metric names)."""
    return name.replace(".", "_")


@dataclass(slots=True)
class PartitionState:
    """Leadership of one partition: replicas in preference order, ISR, leader and epoch."""

    replicas: list[BrokerId]
    leader: BrokerId
    leader_epoch: int = 0
    isr: list[BrokerId] = field(default_factory=list)
    partition_epoch: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "replicas": list(self.replicas),
            "leader": self.leader,
            "leader_epoch": self.leader_epoch,
            "isr": list(self.isr),
            "partition_epoch": self.partition_epoch,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PartitionState:
        return cls(
            replicas=[BrokerId(int(r)) for r in raw["replicas"]],
            leader=BrokerId(int(raw["leader"])),
            leader_epoch=int(raw.get("leader_epoch", 0)),
            isr=[BrokerId(int(r)) for r in raw.get("isr", raw["replicas"])],
            partition_epoch=int(raw.get("partition_epoch", 0)),
        )


@dataclass(slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: list[PartitionState]
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def is_internal(self) -> bool:
        return self.name in INTERNAL_TOPICS

    def to_json(self) -> dict[str, Any]:
        return {
            "topic_id": str(self.topic_id),
            "partitions": [p.to_json() for p in self.partitions],
            "configs": dict(self.configs),
        }

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> TopicInfo:
        return cls(
            name=name,
            topic_id=uuid.UUID(raw["topic_id"]),
            partitions=[PartitionState.from_json(p) for p in raw["partitions"]],
            configs={str(k): str(v) for k, v in raw.get("configs", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    node_id: BrokerId
    host: str
    port: int
    rack: str | None = None


#: No leader (Kafka's LeaderAndIsr.NoLeader).
NO_LEADER_ID = -1


@dataclass(frozen=True, slots=True)
class LeaderHint:
    """The current leader of a partition as the metadata knows it (KIP-951); -1/-1/None if
    unknown. Defined here rather than with the cluster mode's cache, which only cluster mode loads."""

    leader_id: int = NO_LEADER_ID
    leader_epoch: int = -1
    endpoint: BrokerEndpoint | None = None


class ClusterMetadata:
    """Topics and partition states, persisted as JSON (embedded mode)."""

    def __init__(self, path: Path, cluster_id: str, fs: FileSystem | None = None) -> None:
        self.path = path
        self.cluster_id = cluster_id
        self.fs = fs if fs is not None else FileSystem()
        self.topics: dict[str, TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicInfo] = {}
        self.next_producer_id = 0
        #: Dynamic broker configs by entity (a broker id or ``<default>``), as ``/config/brokers``.
        self.broker_configs: dict[str, dict[str, str]] = {}
        #: Bumped by every change; a write of an older snapshot than the last written is skipped.
        self._generation = 0
        self._written_generation = -1
        self._write_lock = threading.Lock()
        self._load()

    # -- persistence --------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        self.next_producer_id = int(raw.get("next_producer_id", 0))
        for name, topic in raw.get("topics", {}).items():
            info = TopicInfo.from_json(name, topic)
            self.topics[name] = info
            self.by_id[info.topic_id] = info
        for entity, configs in raw.get("broker_configs", {}).items():
            self.broker_configs[str(entity)] = {str(k): str(v) for k, v in configs.items()}

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """The document as it is now, as fresh dicts and lists (shared with nothing live), for
        :meth:`write` in a thread, which also encodes it (10,000 partitions take ~0.1 s). Changes
        only touch memory; whoever changes something persists a snapshot before it answers
        (the broker does the write off its event loop)."""
        doc = {
            "version": 1,
            "cluster_id": self.cluster_id,
            "next_producer_id": self.next_producer_id,
            "topics": {name: info.to_json() for name, info in sorted(self.topics.items())},
        }
        if self.broker_configs:
            doc["broker_configs"] = {e: dict(c) for e, c in sorted(self.broker_configs.items())}
        return self._generation, doc

    def write(self, snapshot: tuple[int, dict[str, Any]]) -> None:
        """Write a snapshot atomically (temp file, fsync, rename, fsync the directory); blocks.
        Thread-safe; a snapshot older than one already written is skipped (it holds less)."""
        generation, doc = snapshot
        with self._write_lock:
            if generation <= self._written_generation:
                return
            data = json.dumps(doc, indent=1, sort_keys=True).encode()
            self.fs.mkdir(self.path.parent)
            self.fs.write_file_atomically(self.path, data)
            self._written_generation = generation

    def save(self) -> None:
        """Persist the current state now (blocks on fsync)."""
        self.write(self.snapshot())

    def _changed(self) -> None:
        self._generation += 1

    # -- queries -------------------------------------------------------------------------------

    def topic(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self.by_id.get(topic_id)

    def partition(self, tp: TopicPartition) -> PartitionState | None:
        info = self.topics.get(tp.topic)
        if info is None or not 0 <= tp.partition < len(info.partitions):
            return None
        return info.partitions[tp.partition]

    def partitions(self) -> Iterator[tuple[TopicInfo, int, PartitionState]]:
        for info in self.topics.values():
            for index, state in enumerate(info.partitions):
                yield info, index, state

    def colliding_topic(self, name: str) -> str | None:
        """An existing topic whose name collides with ``name`` on '.' versus '_'."""
        if not has_collision_chars(name):
            return None
        unified = unify_collision_chars(name)
        for existing in self.topics:
            if existing != name and unify_collision_chars(existing) == unified:
                return existing
        return None

    # -- changes -------------------------------------------------------------------------------

    def new_topic(
        self,
        name: str,
        assignments: list[list[BrokerId]],
        configs: Mapping[str, str],
        topic_id: uuid.UUID | None = None,
    ) -> TopicInfo:
        """A topic's description, not registered yet (its logs are created first)."""
        return TopicInfo(
            name=name,
            topic_id=topic_id or random_kafka_uuid(),
            partitions=[PartitionState(list(r), r[0], 0, list(r)) for r in assignments],
            configs=dict(configs),
        )

    def add_topic(self, info: TopicInfo) -> TopicInfo:
        if info.name in self.topics:
            raise ValueError(f"topic {info.name} exists")
        self.topics[info.name] = info
        self.by_id[info.topic_id] = info
        self._changed()
        return info

    def create_topic(
        self,
        name: str,
        assignments: list[list[BrokerId]],
        configs: Mapping[str, str],
        topic_id: uuid.UUID | None = None,
    ) -> TopicInfo:
        if name in self.topics:
            raise ValueError(f"topic {name} exists")
        return self.add_topic(self.new_topic(name, assignments, configs, topic_id))

    def delete_topic(self, name: str) -> TopicInfo:
        info = self.topics.pop(name)
        self.by_id.pop(info.topic_id, None)
        self._changed()
        return info

    def add_partitions(self, name: str, assignments: list[list[BrokerId]]) -> TopicInfo:
        info = self.topics[name]
        info.partitions.extend(PartitionState(list(r), r[0], 0, list(r)) for r in assignments)
        self._changed()
        return info

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        self.topics[name].configs = dict(configs)
        self._changed()

    def set_broker_configs(self, entity: str, configs: Mapping[str, str]) -> None:
        """Replace the dynamic configs of a broker id or ``<default>`` (empty removes them)."""
        if configs:
            self.broker_configs[entity] = dict(configs)
        else:
            self.broker_configs.pop(entity, None)
        self._changed()

    def allocate_producer_ids(self, count: int) -> tuple[int, int]:
        """Reserve ``count`` producer ids; persisted before any is handed out, so none is
        reused after a restart (Kafka hands out blocks the same way through ZooKeeper)."""
        start = self.next_producer_id
        self.next_producer_id = start + count
        self._changed()
        return start, start + count
