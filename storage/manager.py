"""All partition logs of a broker, across its log directories.

The manager owns what is per log dir (the four offset checkpoint files, the clean-shutdown
marker) and what is shared by all logs (the descriptor pool, delayed deletion, the cleaner). It
starts no thread and no task: an optional ``background`` callable from the broker runs the
flush of each rolled segment in the broker's disk worker pool (Kafka's ``flush-log`` task, so
the recovery point follows the rolls with the default flush settings); the broker calls
``checkpoint``, ``run_retention_once``, ``run_cleaner_once`` and ``flush_due`` from its timers
(Kafka's defaults: ``log.flush.offset.checkpoint.interval.ms`` 60 s,
``log.retention.check.interval.ms`` 5 min, ``log.cleaner.backoff.ms`` 15 s,
``log.flush.scheduler.interval.ms``) in worker threads. Calls that block on fsync:
``checkpoint``, ``flush_due``, ``close``, ``get_or_create_log`` (a new directory and its metadata
file), ``delete_log``: the broker runs them in worker threads, never on its event loop.

Start-up: every ``<topic>-<partition>`` directory is loaded; without the ``.kafka_cleanshutdown``
marker in its log dir a log is recovered from its recovery point (see :mod:`storage.recovery`).
The marker is removed once the dir is loaded and written again by :meth:`LogManager.close`. A
log that fails to load (corruption below its recovery point) is kept out of service in
:attr:`LogManager.offline` and ``get_or_create_log`` raises its error; the marker is then not
written for that dir, so the problem is found again on the next start.

A disk error (``OSError``) takes the whole log directory offline, as Kafka's LogDirFailureChannel
does: :meth:`LogManager.mark_dir_offline` logs an ERROR naming the dir and the cause, closes the
descriptors of its logs without writing anything, and from then on its logs are out of service
(``is_offline``, ``get_or_create_log`` raises :class:`LogDirOfflineError`), no new log is placed
there, and neither checkpoints nor the clean-shutdown marker are written to it, so the next start
recovers it. The periodic work (flush, checkpoint, retention, cleaner, close) catches such errors
per dir or per log, marks the dir offline and goes on with the others; the broker reports the
errors of its own calls (append, read, ...) the same way. Kafka halts the process when every log
dir is offline; the manager never does: that decision is the broker's.

``delete_log`` renames the directory to ``<topic>-<partition>.<32 hex>-delete`` at once (as
Kafka) and removes it after ``file.delete.delay.ms``; leftover ``-delete`` directories are
removed at start-up.

Future logs (a replica moving to another log dir of this broker, AlterReplicaLogDirs): at most one
per partition, in ``<topic>-<partition>.<32 hex>-future`` of the destination dir
(:meth:`create_future_log`), filled by :func:`storage.log_mover.copy_step`, then swapped in by
:meth:`replace_current_with_future` under the current log's lock: the current directory is renamed
``-delete`` and the future one takes the plain name. They are flushed and checkpointed with their
dir, not cleaned and not subject to retention (the copy follows the current log's start), and
loaded again at start-up; a future dir whose current log is gone (a crash between the two renames
of a swap) becomes the current log.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from storage.checkpoint import (
    CLEANER_OFFSET_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    CleanShutdownFile,
    OffsetCheckpointFile,
)
from storage.clock import Clock, SystemClock
from storage.config import DEFAULT_CLEANER_MAX_MAP_ENTRIES, LogConfig
from storage.deletion import FileDeleter
from storage.errors import CheckpointFormatError, InconsistentTopicIdError, LogDirOfflineError, StorageError
from storage.fast_dataclass import dataclass
from storage.fs import FileSystem
from storage.handles import HandleCache
from storage.log import Background, Log, parse_partition_dir
from storage.producer_state import DEFAULT_PRODUCER_ID_EXPIRATION_MS

if TYPE_CHECKING:
    # The cleaner loads at its first run (see LogManager.cleaner).
    from storage.cleaner import Cleaner, CleanerStats

_logger = logging.getLogger(__name__)

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_FUTURE_DIR = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)\.[0-9a-f]{32}-future$")

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _DirState:
    """What a log dir's files say of the logs found in it at startup: whether it was shut down
    cleanly, and its recovery-point, log-start-offset and high-watermark checkpoints."""

    clean: bool
    recovery: Mapping[TopicPartition, int]
    starts: Mapping[TopicPartition, int]
    hws: Mapping[TopicPartition, int]


class LogManager:
    def __init__(
        self,
        log_dirs: Sequence[Path],
        default_config: LogConfig,
        clock: Clock | None = None,
        *,
        fs: FileSystem | None = None,
        topic_configs: Mapping[str, LogConfig] | None = None,
        max_open_files: int = 1024,
        cleaner_max_map_entries: int = DEFAULT_CLEANER_MAX_MAP_ENTRIES,
        background: Background | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        if not log_dirs:
            raise ValueError("at least one log dir is needed")
        self.log_dirs = [Path(d) for d in log_dirs]
        self.default_config = default_config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.fs = fs if fs is not None else FileSystem()
        self.handles = HandleCache(self.fs, max_open_files)
        self.deleter = FileDeleter(self.fs, self.clock)
        self._cleaner_max_map_entries = cleaner_max_map_entries
        self._cleaner: Cleaner | None = None
        #: producer.id.expiration.ms: producers idle this long are not restored from snapshots.
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self._topic_configs = dict(topic_configs or {})
        self._background = background
        self._lock = threading.RLock()
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        #: Future logs (replicas moving to another log dir), with their dirs.
        self._futures: dict[TopicPartition, Log] = {}
        self._future_dir_of: dict[TopicPartition, Path] = {}
        #: Where a replica not hosted yet is to be created (AlterReplicaLogDirs before the replica
        #: exists; Kafka's preferredLogDirs).
        self.preferred_dirs: dict[TopicPartition, Path] = {}
        #: Logs being created by some thread, with the dir chosen for each.
        self._creating: dict[TopicPartition, tuple[threading.Event, Path]] = {}
        #: Logs that could not be loaded, with the reason; never served.
        self.offline: dict[TopicPartition, Exception] = {}
        #: Logs the cleaner gave up on (corrupt data found while compacting).
        self.uncleanable: dict[TopicPartition, Exception] = {}
        #: Log dirs taken offline after a disk error, with what failed (see ``mark_dir_offline``).
        self.offline_dirs: dict[Path, str] = {}
        #: Called once per dir taken offline, on the thread that found the error (the broker
        #: tells ZooKeeper's controller, as Kafka's LogDirFailureChannel consumer does).
        self.on_dir_offline: Callable[[Path], None] | None = None
        self._closed = False
        for log_dir in self.log_dirs:
            self._load_dir(log_dir)
        self._promote_orphan_futures()

    # -- loading ----------------------------------------------------------------------------------

    def _read_checkpoint(self, log_dir: Path, name: str) -> dict[TopicPartition, int]:
        try:
            return OffsetCheckpointFile(self.fs, log_dir / name).read()
        except (CheckpointFormatError, UnicodeDecodeError):
            # Kafka too falls back to "no checkpoint" (full recovery) for an unreadable file.
            return {}

    def _load_dir(self, log_dir: Path) -> None:
        self.fs.mkdir(log_dir)
        marker = CleanShutdownFile(self.fs, log_dir)
        state = _DirState(
            clean=marker.exists(),
            recovery=self._read_checkpoint(log_dir, RECOVERY_POINT_CHECKPOINT),
            starts=self._read_checkpoint(log_dir, LOG_START_OFFSET_CHECKPOINT),
            hws=self._read_checkpoint(log_dir, REPLICATION_OFFSET_CHECKPOINT),
        )
        cleaner = self._read_checkpoint(log_dir, CLEANER_OFFSET_CHECKPOINT)
        for child in sorted(log_dir.iterdir()):
            if not child.is_dir():
                continue
            if child.name.endswith("-delete"):
                shutil.rmtree(child, ignore_errors=True)
                continue
            if child.name.endswith("-future"):
                self._load_future(child, log_dir, state)
                continue
            if child.name.endswith("-stray"):
                continue
            parsed = parse_partition_dir(child.name)
            if parsed is None:
                continue
            if parsed in self._logs or parsed in self.offline:
                raise StorageError(f"duplicate log directories for {parsed[0]}-{parsed[1]}: {child}")
            try:
                log = self._open_found_log(child, parsed, state)
            except (StorageError, OSError, ValueError) as exc:
                self.offline[parsed] = exc
                self._dir_of[parsed] = log_dir
                continue
            log.cleaner_checkpoint = cleaner.get(parsed, 0)
            self._logs[parsed] = log
            self._dir_of[parsed] = log_dir
        marker.delete()

    def _open_found_log(self, child: Path, key: TopicPartition, state: _DirState) -> Log:
        """Open the log of ``key`` found in ``child`` (current or future) at startup, from its
        dir's checkpoints and clean-shutdown marker."""
        return Log.open(
            child,
            self._topic_configs.get(key[0], self.default_config),
            clock=self.clock,
            fs=self.fs,
            handles=self.handles,
            deleter=self.deleter,
            recovery_point=state.recovery.get(key, 0),
            log_start_offset=state.starts.get(key, 0),
            high_watermark=state.hws.get(key, 0),
            had_clean_shutdown=state.clean,
            background=self._background,
            producer_id_expiration_ms=self.producer_id_expiration_ms,
            topic_partition=key,
        )

    def _load_future(self, child: Path, log_dir: Path, state: _DirState) -> None:
        match = _FUTURE_DIR.match(child.name)
        if match is None:
            return
        key = (match["topic"], int(match["partition"]))
        if key in self._futures:
            _logger.warning("a second future log of %s-%d is ignored: %s", key[0], key[1], child)
            return
        try:
            log = self._open_found_log(child, key, state)
        except (StorageError, OSError, ValueError) as exc:
            # Kafka would fail the dir; the move is simply lost here (the current log serves).
            _logger.error("cannot load the future log %s, so its move is dropped: %s", child, exc)
            return
        self._futures[key] = log
        self._future_dir_of[key] = log_dir

    def _promote_orphan_futures(self) -> None:
        """A future log without a current one: the process died in the middle of a swap, after
        the current directory was renamed for deletion (the future had every offset then)."""
        for key in [k for k in self._futures if k not in self._logs and k not in self.offline]:
            future = self._futures.pop(key)
            log_dir = self._future_dir_of.pop(key)
            target = log_dir / f"{key[0]}-{key[1]}"
            _logger.warning("the move of %s-%d to %s was interrupted by a stop; completing it", *key, log_dir)
            self._logs[key] = self._reopen_at(future, target)
            self._dir_of[key] = log_dir

    def _reopen_at(self, log: Log, target: Path, config: LogConfig | None = None) -> Log:
        """Close ``log`` cleanly, rename its directory to ``target`` and open it there (with
        ``config``, default its own)."""
        log.close()
        self.fs.replace(log.directory, target)
        self.fs.fsync_dir(target.parent)
        return Log.open(
            target,
            config if config is not None else log.config,
            clock=self.clock,
            fs=self.fs,
            handles=self.handles,
            deleter=self.deleter,
            recovery_point=log.log_end_offset,
            log_start_offset=log.log_start_offset,
            high_watermark=log.high_watermark,
            had_clean_shutdown=True,
            background=self._background,
            producer_id_expiration_ms=self.producer_id_expiration_ms,
        )

    # -- future logs (moves between log dirs) ------------------------------------------------------

    def future_log(self, topic: str, partition: int) -> Log | None:
        return self._futures.get((topic, partition))

    def future_dir_of(self, topic: str, partition: int) -> Path | None:
        return self._future_dir_of.get((topic, partition))

    def future_logs(self) -> list[Log]:
        with self._lock:
            return list(self._futures.values())

    def create_future_log(self, topic: str, partition: int, log_dir: Path) -> Log:
        """The future log of ``topic-partition`` in ``log_dir`` (created empty if absent), with
        the current log's topic id and configuration. Blocking (a directory and its files)."""
        key = (topic, partition)
        with self._lock:
            current = self._logs.get(key)
            if current is None:
                raise StorageError(f"{topic}-{partition} has no log to move")
            if log_dir in self.offline_dirs or log_dir not in self.log_dirs:
                raise LogDirOfflineError(f"log dir {log_dir} is offline or unknown")
            existing = self._futures.get(key)
            if existing is not None:
                if self._future_dir_of[key] != log_dir:
                    raise StorageError(f"{topic}-{partition} is already moving to {self._future_dir_of[key]}")
                return existing
        try:
            future = Log.open(
                log_dir / f"{topic}-{partition}.{uuid.uuid4().hex}-future",
                current.config,
                clock=self.clock,
                fs=self.fs,
                handles=self.handles,
                deleter=self.deleter,
                topic_id=current.topic_id,
                background=self._background,
                producer_id_expiration_ms=self.producer_id_expiration_ms,
                topic_partition=key,
            )
        except OSError as exc:
            self.mark_dir_offline(log_dir, f"creating the future log of {topic}-{partition}", exc)
            raise LogDirOfflineError(f"log directory {log_dir} is offline: {exc}") from exc
        with self._lock:
            self._futures[key] = future
            self._future_dir_of[key] = log_dir
        return future

    def remove_future_log(self, topic: str, partition: int) -> bool:
        """Drop the future log (a move cancelled or redirected): its directory is deleted as a
        log's is. False when there was none."""
        key = (topic, partition)
        with self._lock:
            future = self._futures.pop(key, None)
            log_dir = self._future_dir_of.pop(key, None)
        if future is None:
            return False
        self._discard(future, log_dir or future.directory.parent, f"{topic}-{partition}")
        return True

    def replace_current_with_future(
        self,
        topic: str,
        partition: int,
        on_swap: Callable[[Log], None] | None = None,
        catch_up: Callable[[], object] | None = None,
    ) -> Log | None:
        """Kafka's replaceCurrentWithFutureLog: when the future log has caught up with the
        current one (same log end offset, checked under the current log's lock, so nothing
        appends meanwhile), the future is closed, the current directory renamed ``-delete`` and
        the future's renamed to ``<topic>-<partition>``, then opened there. ``on_swap(new log)``
        runs before the lock is released (the partition takes the new log); ``catch_up()`` runs
        first under it (the last copy, which no append can race). The new log, or None when the
        future is behind (copy more and try again). Blocking."""
        key = (topic, partition)
        with self._lock:
            current = self._logs.get(key)
            future = self._futures.get(key)
            source_dir = self._dir_of.get(key)
            dest_dir = self._future_dir_of.get(key)
        if current is None or future is None or source_dir is None or dest_dir is None:
            raise StorageError(f"{topic}-{partition} has no move in progress")
        failed: tuple[Path, str, OSError] | None = None
        new: Log | None = None
        # The manager's lock is never taken under a log's lock (mark_dir_offline and close take
        # them the other way round): the maps change after this block, the partition in it.
        with current.lock:
            if catch_up is not None:
                catch_up()
            if future.log_end_offset != current.log_end_offset:
                return None
            future.high_watermark = current.high_watermark
            future.close()
            # The current directory goes first: a crash between the renames leaves the future one
            # alone, which the next start completes (two plain directories would not load).
            current.mark_deleted()
            doomed = current.directory.with_name(f"{topic}-{partition}.{uuid.uuid4().hex}-delete")
            try:
                self.fs.replace(current.directory, doomed)
                current.mark_reopened_directory(doomed)
                self.fs.fsync_dir(source_dir)
            except OSError as exc:
                failed = (source_dir, f"moving {topic}-{partition} away", exc)
            if failed is None:
                try:
                    # The current log's config: topic config changes during the move reached it only.
                    new = self._reopen_at(future, dest_dir / f"{topic}-{partition}", current.config)
                except OSError as exc:
                    failed = (dest_dir, f"moving {topic}-{partition} in", exc)
            if new is not None:
                new.cleaner_checkpoint = current.cleaner_checkpoint
                if on_swap is not None:
                    on_swap(new)
        with self._lock:
            self._futures.pop(key, None)
            self._future_dir_of.pop(key, None)
            if new is not None:
                self._logs[key] = new
                self._dir_of[key] = dest_dir
        if failed is not None:
            self.mark_dir_offline(*failed)
            raise LogDirOfflineError(f"log directory {failed[0]} is offline: {failed[2]}") from failed[2]
        assert new is not None
        self.deleter.schedule([doomed], current.config.file_delete_delay_ms)
        try:
            self._checkpoint_dir(source_dir, self._entries_in(source_dir))
        except OSError as exc:
            self.mark_dir_offline(source_dir, "writing the offset checkpoints", exc)
        return new

    def _entries_in(self, log_dir: Path) -> list[tuple[TopicPartition, Log]]:
        with self._lock:
            entries = [(k, log) for k, log in self._logs.items() if self._dir_of[k] == log_dir]
            entries += [(k, log) for k, log in self._futures.items() if self._future_dir_of[k] == log_dir]
        return entries

    def _discard(self, log: Log, log_dir: Path, what: str) -> None:
        """Rename ``log``'s directory ``-delete`` and schedule its removal."""
        if log_dir in self.offline_dirs:
            return
        log.mark_deleted()
        target = log.directory.with_name(f"{what}.{uuid.uuid4().hex}-delete")
        try:
            self.fs.replace(log.directory, target)
            log.mark_reopened_directory(target)
            self.fs.fsync_dir(log_dir)
        except OSError as exc:
            self.mark_dir_offline(log_dir, f"deleting {what}", exc)
            return
        self.deleter.schedule([target], log.config.file_delete_delay_ms)

    # -- logs -------------------------------------------------------------------------------------

    def get_log(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def all_logs(self) -> list[Log]:
        """The logs in service (those of offline log dirs excluded)."""
        with self._lock:
            if not self.offline_dirs:
                return list(self._logs.values())
            return [log_ for key, log_ in self._logs.items() if self._dir_of[key] not in self.offline_dirs]

    def log_dir_of(self, topic: str, partition: int) -> Path | None:
        return self._dir_of.get((topic, partition))

    def is_offline(self, topic: str, partition: int) -> bool:
        """Whether the partition's log lies in a log dir taken offline."""
        return bool(self.offline_dirs) and self._dir_of.get((topic, partition)) in self.offline_dirs

    def online_dirs(self) -> list[Path]:
        return [d for d in self.log_dirs if d not in self.offline_dirs]

    # -- disk failures ----------------------------------------------------------------------------

    def mark_dir_offline(self, log_dir: Path, what: str, cause: BaseException) -> bool:
        """Take ``log_dir`` out of service after ``cause`` (an ``OSError``) happened while
        ``what`` (e.g. "appending records to t-0"). Logs one ERROR line naming the dir, the
        action, the cause and the partitions that stop serving; closes their descriptors without
        writing. Thread-safe and idempotent: False when the dir was already offline."""
        with self._lock:
            if log_dir in self.offline_dirs:
                return False
            self.offline_dirs[log_dir] = f"{what}: {cause}"
            affected = sorted(key for key, d in self._dir_of.items() if d == log_dir and key in self._logs)
            names = ", ".join(f"{t}-{p}" for t, p in affected) or "none"
            _logger.error(
                "Log directory %s is offline after a disk error while %s: %s (%s). Partitions that "
                "stop serving (KAFKA_STORAGE_ERROR): %s. Logs in other directories go on; the dir is "
                "recovered at the next start.",
                log_dir,
                what,
                cause,
                type(cause).__name__,
                names,
            )
            for key in affected:
                # Descriptors are released without a flush or an index write: the disk failed.
                self._logs[key].mark_deleted()
            for key in [k for k, d in self._future_dir_of.items() if d == log_dir]:
                # A move into (or out of, below) a failed dir is abandoned: the current log serves.
                self._futures.pop(key).mark_deleted()
                del self._future_dir_of[key]
        listener = self.on_dir_offline
        if listener is not None:
            try:
                listener(log_dir)
            except Exception:
                _logger.exception("the listener of log dir failures failed for %s", log_dir)
        return True

    def mark_offline_for(self, log_: Log, what: str, cause: BaseException) -> bool:
        """:meth:`mark_dir_offline` for the directory holding ``log_``."""
        log_dir = self._dir_of.get((log_.topic, log_.partition), log_.directory.parent)
        return self.mark_dir_offline(log_dir, what, cause)

    def get_or_create_log(
        self, topic: str, partition: int, topic_id: uuid.UUID | None = None, config: LogConfig | None = None
    ) -> Log:
        """The log for ``topic-partition``, created empty in the least loaded log dir if absent.

        An existing log with a different topic id raises :class:`InconsistentTopicIdError` (the
        topic was deleted and re-created elsewhere); one without a topic id adopts ``topic_id``.
        A given ``config`` replaces the log's configuration if it differs.
        """
        key = (topic, partition)
        while True:
            with self._lock:
                if self._closed:
                    raise StorageError("log manager is closed")
                if key in self.offline:
                    raise self.offline[key]
                if self._dir_of.get(key) in self.offline_dirs:
                    raise LogDirOfflineError(
                        f"the log dir {self._dir_of[key]} of {topic}-{partition} is offline"
                    )
                log = self._logs.get(key)
                if log is not None:
                    if topic_id is not None:
                        if log.topic_id is not None and log.topic_id != topic_id:
                            raise InconsistentTopicIdError(
                                f"{topic}-{partition} has topic id {log.topic_id}, not {topic_id}"
                            )
                        log.assign_topic_id(topic_id)
                    if config is not None and config != log.config:
                        log.update_config(config)
                    return log
                creating = self._creating.get(key)
                if creating is None:
                    if not _TOPIC_NAME.match(topic) or topic in (".", "..") or partition < 0:
                        raise ValueError(f"invalid topic partition {topic!r}-{partition}")
                    online = self.online_dirs()
                    if not online:
                        raise LogDirOfflineError(f"no log dir is online to create {topic}-{partition} in")
                    counts = {d: 0 for d in online}
                    for tp, d in self._dir_of.items():
                        if tp in self._logs:
                            counts[d] = counts.get(d, 0) + 1
                    for _, d in self._creating.values():
                        counts[d] = counts.get(d, 0) + 1
                    preferred = self.preferred_dirs.pop(key, None)
                    if preferred in online:
                        log_dir = preferred  # AlterReplicaLogDirs named it before the replica existed
                    else:
                        log_dir = min(online, key=lambda d: counts.get(d, 0))
                    done = threading.Event()
                    self._creating[key] = (done, log_dir)
                    break
            creating[0].wait()  # created by another thread meanwhile: look again
        # The directory and its files are created outside the manager's lock, so several threads
        # create logs at once (their fsyncs overlap) and lookups are not held up.
        try:
            log = Log.open(
                log_dir / f"{topic}-{partition}",
                config if config is not None else self._topic_configs.get(topic, self.default_config),
                clock=self.clock,
                fs=self.fs,
                handles=self.handles,
                deleter=self.deleter,
                topic_id=topic_id,
                background=self._background,
                producer_id_expiration_ms=self.producer_id_expiration_ms,
            )
        except BaseException as exc:
            with self._lock:
                del self._creating[key]
            done.set()
            if isinstance(exc, OSError):
                self.mark_dir_offline(log_dir, f"creating the log of {topic}-{partition}", exc)
                raise LogDirOfflineError(f"log directory {log_dir} is offline: {exc}") from exc
            raise
        with self._lock:
            del self._creating[key]
            self._logs[key] = log
            self._dir_of[key] = log_dir
        done.set()
        return log

    def delete_log(self, topic: str, partition: int) -> bool:
        """Take the log out of service and delete its directory (see module docstring), and its
        future log's if it was moving."""
        key = (topic, partition)
        self.remove_future_log(topic, partition)
        self.preferred_dirs.pop(key, None)
        with self._lock:
            log = self._logs.pop(key, None)
            self.offline.pop(key, None)
            log_dir = self._dir_of.pop(key, None)
            if log is None:
                return False
            if log_dir in self.offline_dirs:
                # The disk failed: the directory is left alone (the next start finds it a stray).
                return True
            log.mark_deleted()
            target = log.directory.with_name(f"{topic}-{partition}.{uuid.uuid4().hex}-delete")
            try:
                self.fs.replace(log.directory, target)
                log.mark_reopened_directory(target)
                if log_dir is not None:
                    self.fs.fsync_dir(log_dir)
            except OSError as exc:
                self.mark_dir_offline(log_dir or log.directory.parent, f"deleting {topic}-{partition}", exc)
                return True
            self.deleter.schedule([target], log.config.file_delete_delay_ms)
            return True

    # -- periodic work ----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Write the per-dir recovery point, log start offset, high watermark and cleaner offset
        checkpoints in Kafka's format (fsync'd)."""
        with self._lock:
            by_dir: dict[Path, list[tuple[TopicPartition, Log]]] = {d: [] for d in self.log_dirs}
            for key, log in self._logs.items():
                by_dir.setdefault(self._dir_of[key], []).append((key, log))
            for key, log in self._futures.items():
                by_dir.setdefault(self._future_dir_of[key], []).append((key, log))
        for log_dir, entries in by_dir.items():
            if log_dir in self.offline_dirs:
                continue
            try:
                self._checkpoint_dir(log_dir, entries)
            except OSError as exc:
                self.mark_dir_offline(log_dir, "writing the offset checkpoints", exc)

    def _checkpoint_dir(self, log_dir: Path, entries: list[tuple[TopicPartition, Log]]) -> None:
        self._write(log_dir, RECOVERY_POINT_CHECKPOINT, {k: log.recovery_point for k, log in entries})
        self._write(
            log_dir,
            LOG_START_OFFSET_CHECKPOINT,
            {
                k: log.log_start_offset
                for k, log in entries
                if log.log_start_offset > log.segments()[0].base_offset
            },
        )
        self._write(log_dir, REPLICATION_OFFSET_CHECKPOINT, {k: log.high_watermark for k, log in entries})
        self._write(
            log_dir,
            CLEANER_OFFSET_CHECKPOINT,
            {
                k: log.cleaner_checkpoint
                for k, log in entries
                if log.config.compact and log.cleaner_checkpoint > 0
            },
        )

    def _write(self, log_dir: Path, name: str, offsets: dict[TopicPartition, int]) -> None:
        OffsetCheckpointFile(self.fs, log_dir / name).write(dict(sorted(offsets.items())))

    def run_retention_once(self) -> int:
        """Apply retention to every log and remove files whose deletion delay has passed.
        Returns the number of segments deleted."""
        from storage.retention import delete_old_segments  # the first run is minutes after a start

        now = self.clock.milliseconds()
        deleted = 0
        for log_ in self.all_logs():
            try:
                deleted += delete_old_segments(log_, now)
            except StorageError:
                continue  # deleted or closed meanwhile
            except OSError as exc:
                self.mark_offline_for(log_, f"applying retention to {log_.topic}-{log_.partition}", exc)
        try:
            self.deleter.purge()
        except OSError as exc:
            # Which dir the file was in is not known here; the next purge tries again.
            _logger.error("removing deleted log files failed: %s", exc)
        return deleted

    @property
    def cleaner(self) -> Cleaner:
        """The compactor, imported and built at its first use (the first cleaner run, in a
        worker thread): a start does not pay for it."""
        cleaner = self._cleaner
        if cleaner is None:
            from storage.cleaner import Cleaner

            with self._lock:
                if self._cleaner is None:
                    self._cleaner = Cleaner(self._cleaner_max_map_entries)
                cleaner = self._cleaner
        return cleaner

    def run_cleaner_once(self, max_logs: int | None = None) -> list[CleanerStats]:
        """Compact the logs that are due, dirtiest first (at most ``max_logs``)."""
        from storage.cleaner import cleanable_range, should_clean

        now = self.clock.milliseconds()
        due: list[tuple[bool, float, TopicPartition, Log]] = []
        for log in self.all_logs():
            key = (log.topic, log.partition)
            if key in self.uncleanable or key in self._futures:
                continue  # a moving log is not cleaned (Kafka pauses cleaning during the copy)
            rng = cleanable_range(log, now)
            if rng is not None and should_clean(rng, log.config.min_cleanable_dirty_ratio):
                due.append((rng.needs_compaction_now, rng.ratio, key, log))
        due.sort(key=lambda t: (not t[0], -t[1]))
        results: list[CleanerStats] = []
        for _, _, key, log in due[:max_logs] if max_logs is not None else due:
            try:
                stats = self.cleaner.clean(log, now)
            except StorageError as exc:
                self.uncleanable[key] = exc
                continue
            except OSError as exc:
                self.mark_offline_for(log, f"cleaning {log.topic}-{log.partition}", exc)
                continue
            if stats is not None:
                results.append(stats)
        return results

    def flush_due(self) -> int:
        """fsync logs whose ``flush.ms`` elapsed or that rolled since their last flush, and let
        the descriptor pool close the files of logs that saw no append since the previous call.
        Returns how many logs were flushed. Blocks on fsync."""
        flushed = 0
        for log_ in self.all_logs() + self.future_logs():
            try:
                if log_.flush_if_due():
                    flushed += 1
                log_.release_idle_handles()
            except StorageError:
                continue
            except OSError as exc:
                self.mark_offline_for(log_, f"flushing {log_.topic}-{log_.partition}", exc)
        return flushed

    def abandon(self) -> None:
        """Close every log's descriptors and write nothing (no checkpoint, no clean-shutdown
        marker): the state a killed process leaves, for crash tests in one process."""
        with self._lock:
            if self._closed:
                return
            for log_ in self.all_logs() + self.future_logs():
                log_.abandon()
            self._closed = True

    def close(self) -> None:
        """Flush and close every log, write checkpoints and the clean-shutdown markers."""
        with self._lock:
            if self._closed:
                return
            for log_ in self.all_logs() + self.future_logs():
                try:
                    log_.close()
                except OSError as exc:
                    self.mark_offline_for(log_, f"closing {log_.topic}-{log_.partition}", exc)
            self.checkpoint()
            offline_dirs = {self._dir_of[k] for k in self.offline if k in self._dir_of}
            offline_dirs.update(self.offline_dirs)
            for log_dir in self.log_dirs:
                if log_dir not in offline_dirs:
                    try:
                        CleanShutdownFile(self.fs, log_dir).write()
                    except OSError as exc:
                        self.mark_dir_offline(log_dir, "writing the clean-shutdown marker", exc)
            try:
                self.deleter.purge(everything=True)
            except OSError as exc:
                _logger.error("removing deleted log files failed: %s", exc)
            self._closed = True
