"""Partition logs on disk, byte-compatible with Apache Kafka's log directories.

Storage knows bytes, offsets, timestamps and record-batch headers; it knows nothing of requests
or sockets, starts no thread or task (work to run in the background goes to the ``background``
callable the broker injects), and never imports ``protocol.messages``.

On disk (see the module docstrings for exact formats)::

    <log.dir>/.kafka_cleanshutdown                 clean-shutdown marker (storage.checkpoint)
    <log.dir>/recovery-point-offset-checkpoint     "0\\n<n>\\n<topic> <partition> <offset>\\n..."
    <log.dir>/log-start-offset-checkpoint          same format
    <log.dir>/replication-offset-checkpoint        same format (high watermarks)
    <log.dir>/cleaner-offset-checkpoint            same format (first dirty offsets)
    <log.dir>/<topic>-<partition>/<20-digit base>.log / .index / .timeindex   (storage.segment)
    <log.dir>/<topic>-<partition>/leader-epoch-checkpoint                      (storage.leader_epoch)
    <log.dir>/<topic>-<partition>/partition.metadata                           (topic id)
    <log.dir>/<topic>-<partition>/<20-digit offset>.snapshot    (storage.producer_state)

How the broker uses it
======================

::

    from storage import LogManager, LogConfig, SystemClock

    manager = LogManager([Path("/var/lib/brook")], LogConfig(), SystemClock(),
                         topic_configs={"__consumer_offsets": LogConfig(cleanup_policy="compact")})
    log = manager.get_or_create_log("orders", 0, topic_id, config)   # -> Log

    info = log.append(bytearray(records), leader_epoch=5)            # -> AppendInfo; no fsync
    if log.flush_needed():                                           # flush.messages reached:
        log.flush(info.last_offset + 1)                              # in a worker, then answer
    log.high_watermark = info.last_offset + 1                        # broker owns the HW

    result = log.read(fetch_offset, max_bytes, max_offset=log.high_watermark)   # -> ReadResult
    try:
        if result.slice is not None:
            os.sendfile(sock_fd, result.slice.fd, result.slice.position, result.slice.length)
    finally:
        result.close()                    # or: with log.read(...) as result: ...

    # timers (event loop, or a worker thread for the fsync-heavy ones):
    manager.flush_due()             # flush.ms / rolled segments; blocks on fsync
    manager.checkpoint()            # every log.flush.offset.checkpoint.interval.ms; fsyncs
    manager.run_retention_once()    # every log.retention.check.interval.ms
    manager.run_cleaner_once()      # every log.cleaner.backoff.ms
    manager.close()                 # on shutdown: flush, checkpoints, clean-shutdown marker

``LogManager(log_dirs, default_config, clock=None, *, fs=None, topic_configs=None,
max_open_files=1024, cleaner_max_map_entries=1_000_000, background=None,
producer_id_expiration_ms=86_400_000)``
    (``background(fn)`` runs ``fn`` later in a worker thread: each roll hands it the flush of the
    rolled segment, as Kafka's ``flush-log`` task, so the recovery point follows the rolls;
    without it ``flush_due`` does that flush);
    ``get_or_create_log(topic, partition, topic_id=None, config=None) -> Log``,
    ``get_log(topic, partition) -> Log | None``, ``delete_log(topic, partition) -> bool``
    (renames to ``<topic>-<partition>.<hex>-delete``, removed after ``file.delete.delay.ms``),
    ``all_logs()``, ``checkpoint()``, ``run_retention_once() -> int``,
    ``run_cleaner_once(max_logs=None) -> list[CleanerStats]``, ``flush_due() -> int``,
    ``close()``; ``offline`` maps partitions that failed to load to their error. Disk failures:
    ``mark_dir_offline(log_dir, what, cause) -> bool``, ``mark_offline_for(log, what, cause)``,
    ``offline_dirs`` (dir -> what failed), ``is_offline(topic, partition)``, ``online_dirs()``,
    ``log_dir_of(topic, partition)``; ``all_logs()`` leaves out the logs of offline dirs.

``Log`` (one partition; every method takes the log's lock, so ``flush`` may run in a thread)
    properties ``log_start_offset``, ``log_end_offset``, ``high_watermark`` (settable, clamped to
    ``[log_start_offset, log_end_offset]``), ``recovery_point``, ``topic_id``, ``config``,
    ``segment_count``, ``leader_epochs``;
    ``append(data: bytearray | memoryview, leader_epoch) -> AppendInfo`` (offsets and epoch
    written into ``data`` in place; one ``pwrite``; every record is read first, as Kafka's
    LogValidator: structure, count, keys on compacted topics, per-record timestamps; a header
    max timestamp that differs from the records' is rewritten, CRC included);
    ``append_as_follower(data) -> AppendInfo`` (offsets already assigned, must not go back);
    ``read(offset, max_bytes, max_offset=None, min_one_message=True) -> ReadResult``;
    ``read_bytes(...) -> bytes``;
    ``offset_for_timestamp(ts) -> OffsetAndTimestamp | None`` (a NamedTuple ``(offset,
    timestamp, leader_epoch)``: the first *record* with timestamp >= ts, as Kafka's ListOffsets;
    the one batch holding it is decoded);
    ``max_timestamp_offset() -> OffsetAndTimestamp | None`` (ListOffsets -3);
    ``truncate_to(offset) -> bool`` (a cut inside a batch removes the batch and ends the log at
    its base offset); ``truncate_fully_and_start_at(offset)``;
    ``delete_records_before(offset) -> int``;
    ``scan_batch_headers(start_offset=None) -> Iterator[(BatchPosition, BatchHeader)]``;
    ``flush(up_to=None)``; ``flush_needed() -> bool`` (``flush.messages`` unflushed records:
    the caller flushes before it answers); ``maybe_assign_epoch_start_offset(epoch, offset)``
    (on becoming leader); ``roll()``; ``size_in_bytes()``; ``update_config(config)``;
    ``replace_segments(old, new, guard) -> bool`` (the cleaner's swap; False when the log
    changed under the pass); ``close()``. ``AppendInfo`` is a NamedTuple ``(first_offset,
    last_offset, max_timestamp, offset_of_max_timestamp, batches, bytes, log_append_time,
    log_start_offset)``.

Descriptors: at most ``max_open_files`` segment files are open (plus one ``dup`` per
outstanding FileSlice, and one for the segment a cleaning pass is reading); idle ones are
closed least-recently-used first. The active segment of a log that is being appended to keeps
its descriptor (up to half the pool) until a ``flush_due()`` call finds the log idle. Index
files hold no descriptor.

``log.producer_state`` (:class:`storage.producer_state.ProducerStateManager`)
    Idempotent-producer state, restored by the log at open (latest snapshot + the batches
    after it) and at truncation, snapshotted at each roll and at ``close``. The appender keeps
    it current: ``check(header)`` before an append (duplicate metadata, or raises
    ``InvalidProducerEpoch`` / ``OutOfOrderSequence``), ``update(header, first_offset)`` after
    it, from the same thread; ``expire(now_ms, expiration_ms) -> int`` (producer.id.expiration.ms).

``log.leader_epochs`` (:class:`LeaderEpochCache`)
    ``assign(epoch, start_offset)``, ``end_offset_for_epoch(epoch) -> (epoch, end_offset)``
    (``(-1, -1)`` when undefined), ``latest_epoch``, ``epoch_for_offset(offset)``, ``entries()``.

Reads and FileSlice
===================

A read never spans segments (as in Kafka): it returns whole batches of one segment, at least
the first batch when one is available (even if larger than ``max_bytes``, unless
``min_one_message=False``), and never a batch reaching ``max_offset``. An empty result has
``slice=None``. With ``copy_below=n``, a read shorter than ``n`` bytes is copied into
``result.data`` (one ``pread``) instead of a slice; ``result.records`` is whichever holds them.
``offset`` outside ``[log_start_offset, log_end_offset]`` raises :class:`OffsetOutOfRangeError`.

:class:`FileSlice` owns a ``dup()`` of the segment's descriptor: it stays valid while the broker
sends it even if the descriptor pool closes idle files or retention deletes the segment
meanwhile. **The broker must close every slice it receives** (``result.close()``,
``slice.close()``, or a ``with`` block), after the ``sendfile`` completes; a truncation that
races with the send shows up as a short read. ``__del__`` closes forgotten slices as a safety
net only.

Errors
======

All in :mod:`storage.errors`: ``CorruptBatchError`` (CRC, framing), ``InvalidMagicError``,
``RecordTooLargeError``, ``InvalidRecordBatchError``, ``InvalidTimestampError`` (these two carry
``record_errors``: ``[(index of the record in its batch, message)]`` for per-record rejections),
``InvalidOffsetError`` (follower offsets going back), ``OffsetOutOfRangeError``,
``LogDeletedError``, ``LogDirOfflineError``, ``StorageCorruptionError`` (invalid data below the
recovery point), ``InconsistentTopicIdError``, ``CheckpointFormatError``; all subclass ``StorageError``.
``OSError`` from the disk is not wrapped: the caller reports it with
``LogManager.mark_dir_offline`` (the background work of the manager does so itself), after which
that directory's logs are out of service (see :mod:`storage.manager`).

Blocking
========

Calls that may block on fsync: ``Log.flush``, ``Log.close``, ``LogManager.flush_due``,
``LogManager.checkpoint``, ``LogManager.close``, ``LogManager.get_or_create_log`` (new
directory; several threads may create logs at once), ``LogManager.delete_log``,
``Log.maybe_assign_epoch_start_offset``; ``Log.append`` only when the leader epoch changes (the
epoch checkpoint is fsync'd, as in Kafka; a leader's epoch is assigned when it becomes leader, so
produce never does), never for ``flush.messages`` (see ``flush_needed``); truncation and
``delete_records_before`` (epoch checkpoint). The broker runs all of them in worker threads.
``run_cleaner_once`` does real work (decoding and re-encoding records, fsync of the cleaned
segments) but holds a log's lock only for short swaps.
"""

from typing import TYPE_CHECKING, Any

from storage.clock import Clock, ManualClock, SystemClock
from storage.config import LogConfig
from storage.errors import (
    CheckpointFormatError,
    CorruptBatchError,
    InconsistentTopicIdError,
    InvalidMagicError,
    InvalidOffsetError,
    InvalidRecordBatchError,
    InvalidTimestampError,
    LogDeletedError,
    LogDirOfflineError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageCorruptionError,
    StorageError,
)
from storage.fs import FileSystem, UnsyncedFileSystem
from storage.leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, EpochEntry, LeaderEpochCache
from storage.log import Log
from storage.manager import LogManager
from storage.results import AppendInfo, BatchPosition, FileSlice, OffsetAndTimestamp, ReadResult

if TYPE_CHECKING:
    from storage.cleaner import CleanerStats


def __getattr__(name: str) -> Any:
    # The cleaner loads at its first use (PEP 562): a broker's start does not need it.
    if name == "CleanerStats":
        from storage.cleaner import CleanerStats

        return CleanerStats
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "AppendInfo",
    "BatchPosition",
    "CheckpointFormatError",
    "CleanerStats",
    "Clock",
    "CorruptBatchError",
    "EpochEntry",
    "FileSlice",
    "FileSystem",
    "InconsistentTopicIdError",
    "InvalidMagicError",
    "InvalidOffsetError",
    "InvalidRecordBatchError",
    "InvalidTimestampError",
    "LeaderEpochCache",
    "Log",
    "LogConfig",
    "LogDeletedError",
    "LogDirOfflineError",
    "LogManager",
    "ManualClock",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "ReadResult",
    "RecordTooLargeError",
    "StorageCorruptionError",
    "StorageError",
    "SystemClock",
    "UnsyncedFileSystem",
]
