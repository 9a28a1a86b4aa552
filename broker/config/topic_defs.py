"""Topic-level configs of Kafka 3.9 (``TopicConfig``/``LogConfig``) and their broker synonyms.

A topic config that is not overridden takes its value from the broker config(s) listed in
:data:`TOPIC_SYNONYMS`, in that order of precedence (``retention.ms`` <- ``log.retention.ms``,
``log.retention.minutes``, ``log.retention.hours``). The order also drives the ``synonyms`` list
of DescribeConfigs. Topic configs without a broker synonym (tiered-storage switches, replication
throttles) always start from the defaults below.
"""

from __future__ import annotations

from storage.fast_dataclass import dataclass

from .broker_defs import COMPRESSION_TYPES, DEFAULT_MAX_MESSAGE_BYTES, GZIP_LEVEL
from .schema import LONG_MAX, ConfigDef, define
from .schema import ConfigType as T
from .schema import Importance as I
from .validators import MetadataVersionValid, ThrottledReplicas, at_least, between, each_one_of, one_of
from .versions import IBP_3_0_IV1

M, L = I.MEDIUM, I.LOW
HOUR_MS = 3_600_000
WEEK_MS = 7 * 24 * HOUR_MS

# fmt: off
TOPIC_CONFIG_DEFS: tuple[ConfigDef, ...] = (
    define("segment.bytes", T.INT, 1024 * 1024 * 1024, M,
           "Segment file size at which a new segment is rolled.", at_least(14)),
    define("segment.ms", T.LONG, WEEK_MS, M, "Age at which a segment is rolled even if not full.",
           at_least(1)),
    define("segment.jitter.ms", T.LONG, 0, M, "Random jitter subtracted from segment.ms.", at_least(0)),
    define("segment.index.bytes", T.INT, 10 * 1024 * 1024, M, "Maximum size of a segment's offset index.",
           at_least(4)),
    define("flush.messages", T.LONG, LONG_MAX, M, "Records appended before an fsync.", at_least(1)),
    define("flush.ms", T.LONG, LONG_MAX, M, "Longest time appended data stays unflushed.", at_least(0)),
    define("retention.bytes", T.LONG, -1, M,
           "Partition size above which old segments are deleted; -1 = none."),
    define("retention.ms", T.LONG, WEEK_MS, M, "How long data is kept before deletion; -1 = forever.",
           at_least(-1)),
    define("max.message.bytes", T.INT, DEFAULT_MAX_MESSAGE_BYTES, M, "Largest record batch accepted.",
           at_least(0)),
    define("index.interval.bytes", T.INT, 4096, M, "Bytes between two offset index entries.", at_least(0)),
    define("delete.retention.ms", T.LONG, 24 * HOUR_MS, M, "How long tombstones survive compaction.",
           at_least(0)),
    define("min.compaction.lag.ms", T.LONG, 0, M, "Minimum age before a record may be compacted.",
           at_least(0)),
    define("max.compaction.lag.ms", T.LONG, LONG_MAX, M, "Maximum age before a record must be compactable.",
           at_least(1)),
    define("file.delete.delay.ms", T.LONG, 60000, M, "Wait before a deleted segment's files are removed.",
           at_least(0)),
    define("min.cleanable.dirty.ratio", T.DOUBLE, 0.5, M, "Dirty ratio at which the log becomes cleanable.",
           between(0, 1)),
    define("cleanup.policy", T.LIST, ["delete"], M, "delete, compact, or both.",
           each_one_of("compact", "delete")),
    define("unclean.leader.election.enable", T.BOOLEAN, False, M,
           "Allow an out-of-sync replica to become leader (may lose data)."),
    define("min.insync.replicas", T.INT, 1, M, "In-sync replicas required for an acks=all produce.",
           at_least(1)),
    define("compression.type", T.STRING, "producer", M, "Final codec of stored batches.",
           one_of(*COMPRESSION_TYPES)),
    define("compression.gzip.level", T.INT, -1, M, "gzip level when compression.type is gzip.", GZIP_LEVEL),
    define("compression.lz4.level", T.INT, 9, M, "lz4 level when compression.type is lz4.", between(1, 17)),
    define("compression.zstd.level", T.INT, 3, M, "zstd level when compression.type is zstd.",
           between(-131072, 22)),
    define("preallocate", T.BOOLEAN, False, M, "Preallocate segment files (Brook ignores it)."),
    define("message.format.version", T.STRING, IBP_3_0_IV1, M, "Deprecated; ignored since IBP 3.0.",
           MetadataVersionValid()),
    define("message.timestamp.type", T.STRING, "CreateTime", M, "CreateTime or LogAppendTime.",
           one_of("CreateTime", "LogAppendTime")),
    define("message.timestamp.difference.max.ms", T.LONG, LONG_MAX, M,
           "Deprecated; both-ways timestamp bound used when the before/after bounds are unset.", at_least(0)),
    define("message.timestamp.before.max.ms", T.LONG, LONG_MAX, M,
           "How far in the past a CreateTime timestamp may be.", at_least(0)),
    define("message.timestamp.after.max.ms", T.LONG, LONG_MAX, M,
           "How far in the future a CreateTime timestamp may be.", at_least(0)),
    define("leader.replication.throttled.replicas", T.LIST, [], M,
           "Replicas throttled on the leader side: partition:broker pairs or *.", ThrottledReplicas()),
    define("follower.replication.throttled.replicas", T.LIST, [], M,
           "Replicas throttled on the follower side: partition:broker pairs or *.", ThrottledReplicas()),
    define("message.downconversion.enable", T.BOOLEAN, True, L, "Down-convert records for old consumers."),
    define("remote.storage.enable", T.BOOLEAN, False, M,
           "Tiered storage for this topic (Brook: unsupported)."),
    define("local.retention.ms", T.LONG, -2, M, "Local retention of a tiered topic; -2 uses retention.ms.",
           at_least(-2)),
    define("local.retention.bytes", T.LONG, -2, M,
           "Local size retention of a tiered topic; -2 uses retention.bytes.", at_least(-2)),
    define("remote.log.copy.disable", T.BOOLEAN, False, M, "Stop copying segments to remote storage."),
    define("remote.log.delete.on.disable", T.BOOLEAN, False, M,
           "Delete remote data when tiering is disabled."),
)

# fmt: on
TOPIC_CONFIGS: dict[str, ConfigDef] = {d.name: d for d in TOPIC_CONFIG_DEFS}


@dataclass(frozen=True, slots=True)
class Synonym:
    """A broker config standing in for a topic config; ``to_ms`` converts its unit to the topic's."""

    name: str
    to_ms: int = 1


def _same(prefix: str, topic: str) -> tuple[Synonym, ...]:
    return (Synonym(prefix + topic),)


#: Topic config -> broker configs supplying its default, highest precedence first (Kafka's
#: ``ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS``).
TOPIC_SYNONYMS: dict[str, tuple[Synonym, ...]] = {
    "segment.bytes": _same("log.", "segment.bytes"),
    "segment.ms": (Synonym("log.roll.ms"), Synonym("log.roll.hours", HOUR_MS)),
    "segment.jitter.ms": (Synonym("log.roll.jitter.ms"), Synonym("log.roll.jitter.hours", HOUR_MS)),
    "segment.index.bytes": (Synonym("log.index.size.max.bytes"),),
    "flush.messages": (Synonym("log.flush.interval.messages"),),
    "flush.ms": (Synonym("log.flush.interval.ms"), Synonym("log.flush.scheduler.interval.ms")),
    "retention.bytes": _same("log.", "retention.bytes"),
    "retention.ms": (
        Synonym("log.retention.ms"),
        Synonym("log.retention.minutes", 60_000),
        Synonym("log.retention.hours", HOUR_MS),
    ),
    "max.message.bytes": (Synonym("message.max.bytes"),),
    "index.interval.bytes": _same("log.", "index.interval.bytes"),
    "delete.retention.ms": _same("log.cleaner.", "delete.retention.ms"),
    "min.compaction.lag.ms": _same("log.cleaner.", "min.compaction.lag.ms"),
    "max.compaction.lag.ms": _same("log.cleaner.", "max.compaction.lag.ms"),
    "file.delete.delay.ms": (Synonym("log.segment.delete.delay.ms"),),
    "min.cleanable.dirty.ratio": (Synonym("log.cleaner.min.cleanable.ratio"),),
    "cleanup.policy": _same("log.", "cleanup.policy"),
    "unclean.leader.election.enable": _same("", "unclean.leader.election.enable"),
    "min.insync.replicas": _same("", "min.insync.replicas"),
    "compression.type": _same("", "compression.type"),
    "compression.gzip.level": _same("", "compression.gzip.level"),
    "compression.lz4.level": _same("", "compression.lz4.level"),
    "compression.zstd.level": _same("", "compression.zstd.level"),
    "preallocate": _same("log.", "preallocate"),
    "message.format.version": _same("log.", "message.format.version"),
    "message.timestamp.type": _same("log.", "message.timestamp.type"),
    "message.timestamp.difference.max.ms": _same("log.", "message.timestamp.difference.max.ms"),
    "message.timestamp.before.max.ms": _same("log.", "message.timestamp.before.max.ms"),
    "message.timestamp.after.max.ms": _same("log.", "message.timestamp.after.max.ms"),
    "message.downconversion.enable": _same("log.", "message.downconversion.enable"),
    "local.retention.ms": _same("log.", "local.retention.ms"),
    "local.retention.bytes": _same("log.", "local.retention.bytes"),
}


def broker_synonym(topic_config: str) -> str | None:
    """The broker config of highest precedence for a topic config (None if it has none)."""
    synonyms = TOPIC_SYNONYMS.get(topic_config)
    return synonyms[0].name if synonyms else None
