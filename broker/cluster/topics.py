"""Creating, deleting and changing topics: validation, replica assignment, then metadata and logs.

Used by CreateTopics, DeleteTopics, CreatePartitions, the config apis, Metadata's auto-creation
and the coordinators' internal topics. Errors come back as Kafka error codes with messages, as
the admin apis report them per topic.

The handlers use the ``*_async`` methods: validation and the in-memory changes run on the event
loop, the disk work (log directories, their metadata files, renames, the metadata document) in
the broker's disk workers, and the answer comes when it is done. :meth:`TopicAdmin.create` does
the same work inline, for callers that are not serving requests (tests, tools).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from broker.cluster.controller.assignment import (
    AssignmentError,
    BrokerPlacement,
    assign_replicas_to_brokers,
    new_partitions_assignment,
)
from broker.cluster.metadata import (
    INTERNAL_TOPICS,
    PartitionState,
    TopicInfo,
    topic_name_error,
    unify_collision_chars,
)
from broker.config import ConfigError, validate_topic_configs
from broker.types import BrokerId
from protocol.error_codes import ErrorCode
from storage import StorageError
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.replica.partition import Partition

log = logging.getLogger(__name__)

#: Fewest partitions per disk worker when a topic's logs are created in parallel.
OPEN_SLICE_MIN = 16


@dataclass(slots=True)
class TopicError(Exception):
    code: ErrorCode
    message: str

    def __str__(self) -> str:
        return self.message


# -- the checks of a new topic both modes make (standalone here, ZooKeeper in zk_admin) --------


def check_topic_name(name: str) -> None:
    """INVALID_TOPIC_EXCEPTION for a name Kafka refuses (Topic.validate)."""
    problem = topic_name_error(name)
    if problem is not None:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)


def check_not_internal(name: str, allow_internal: bool) -> None:
    """Clients may not create the internal topics; the coordinators may."""
    if name in INTERNAL_TOPICS and not allow_internal:
        raise TopicError(ErrorCode.INVALID_REQUEST, f"Creation of internal topic {name} is prohibited.")


def check_sizing(
    num_partitions: int, replication_factor: int, assignments: Mapping[int, Sequence[int]] | None
) -> None:
    """An explicit assignment excludes a partition count and a replication factor."""
    if assignments and (num_partitions != -1 or replication_factor != -1):
        raise TopicError(
            ErrorCode.INVALID_REQUEST,
            "Both numPartitions or replicationFactor and replicasAssignments were set. "
            "Both cannot be used at the same time.",
        )


def validated_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """The topic overrides, checked (INVALID_CONFIG)."""
    try:
        return validate_topic_configs(configs)
    except ConfigError as exc:
        raise TopicError(ErrorCode.INVALID_CONFIG, str(exc)) from None


def assign_replicas(
    brokers: Sequence[BrokerId],
    partitions: int,
    replication_factor: int,
    start_partition: int = 0,
    rng: random.Random | None = None,
    *,
    existing: Sequence[Sequence[BrokerId]] | None = None,
) -> list[list[BrokerId]]:
    """Kafka's rack-unaware assignment (``broker.cluster.controller.assignment``): replicas of
    successive partitions start on successive brokers, followers shifted so that load spreads
    evenly. With ``existing`` (CreatePartitions), the new partitions continue the round from
    partition 0's first replica, as Kafka's ``createNewPartitionsAssignment``."""
    placements = [BrokerPlacement(b) for b in brokers]
    try:
        if existing:
            current = dict(enumerate(existing))
            plan = new_partitions_assignment(current, placements, len(current) + partitions, rng=rng)
        else:
            plan = assign_replicas_to_brokers(
                placements, partitions, replication_factor, start_partition_id=start_partition, rng=rng
            )
    except AssignmentError as exc:
        raise TopicError(exc.code, exc.message) from None
    return [plan[p] for p in sorted(plan)]


class TopicAdmin:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        #: Topics whose creation, deletion or new partitions are being written by a worker.
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    def create(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        assignments: Mapping[int, Sequence[int]] | None = None,
        configs: Mapping[str, str | None] | None = None,
        *,
        validate_only: bool = False,
        allow_internal: bool = False,
    ) -> TopicInfo | None:
        """Create a topic (or only validate the request), blocking on disk: for callers off the
        event loop (start-up, tests). Raises :class:`TopicError`."""
        planned = self._plan(name, num_partitions, replication_factor, assignments, configs, allow_internal)
        if validate_only:
            return None
        info = self.broker.metadata.new_topic(name, *planned)
        replicas = self.broker.replica_manager
        replicas.register(replicas.open_partitions(info))
        self.broker.metadata.add_topic(info)
        self.broker.metadata.save()
        log.info("created topic %s (id %s) with %d partitions", name, info.topic_id, len(info.partitions))
        return info

    async def create_async(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        assignments: Mapping[int, Sequence[int]] | None = None,
        configs: Mapping[str, str | None] | None = None,
        *,
        validate_only: bool = False,
        allow_internal: bool = False,
    ) -> TopicInfo | None:
        """:meth:`create` with the disk work (directories, metadata files, the metadata
        document) in worker threads. The topic is registered (visible to every other request)
        only once its logs exist, and the call returns once that is durable. Meanwhile the name
        is taken: another creation gets TOPIC_ALREADY_EXISTS, as it would in Kafka."""
        broker = self.broker
        if name in self._pending:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        for other in self._pending:
            if unify_collision_chars(other) == unify_collision_chars(name):
                raise TopicError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic '{name}' collides with existing topic: {other}"
                )
        planned = self._plan(name, num_partitions, replication_factor, assignments, configs, allow_internal)
        if validate_only:
            return None
        info = broker.metadata.new_topic(name, *planned)
        await self._finish(name, self._create(info))
        return info

    async def _create(self, info: TopicInfo) -> None:
        broker = self.broker
        opened = await self._open_partitions(info, 0)
        broker.metadata.add_topic(info)
        broker.replica_manager.register(opened)
        await broker.persist_metadata()
        log.info(
            "created topic %s (id %s) with %d partitions", info.name, info.topic_id, len(info.partitions)
        )

    async def _open_partitions(self, info: TopicInfo, first: int) -> list[Partition]:
        """Open or create the logs of ``info``'s partitions from ``first`` on, in slices over
        the disk workers: their fsyncs overlap, which shortens a large creation. If the disk
        fails, the logs this call created are deleted again and KAFKA_STORAGE_ERROR raised."""
        broker = self.broker
        total = len(info.partitions) - first
        slices = max(1, min(broker.disk.threads, total // OPEN_SLICE_MIN))
        bounds = [first + total * i // slices for i in range(slices + 1)]
        opened = await asyncio.gather(
            *(
                broker.disk.run(broker.replica_manager.open_partitions, info, start, stop)
                for start, stop in itertools.pairwise(bounds)
            ),
            return_exceptions=True,
        )
        failures = [part for part in opened if isinstance(part, BaseException)]
        if failures:
            if not all(isinstance(f, (OSError, StorageError)) for f in failures):
                raise failures[0]
            log.error("cannot create the logs of %s: %s", info.name, failures[0])
            await broker.disk.run(self._delete_new_logs, info, first)
            raise TopicError(
                ErrorCode.KAFKA_STORAGE_ERROR, f"Cannot create the logs of {info.name}: {failures[0]}"
            )
        return [partition for part in opened if not isinstance(part, BaseException) for partition in part]

    def _delete_new_logs(self, info: TopicInfo, first: int) -> None:
        manager = self.broker.log_manager
        for index in range(first, len(info.partitions)):
            existing = manager.get_log(info.name, index)
            if existing is None or existing.topic_id != info.topic_id:
                continue  # not made by this creation (a stray log of an older topic stays)
            try:
                manager.delete_log(info.name, index)
            except (OSError, StorageError) as exc:
                log.error("cannot delete the log %s-%d: %s", info.name, index, exc)

    async def created(self, name: str) -> TopicInfo | None:
        """The topic once any creation or deletion of ``name`` in progress has finished."""
        while name in self._pending:
            await asyncio.shield(self._pending[name])
        return self.broker.metadata.topic(name)

    async def _finish(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` with ``name`` pending, to its end even if the request awaiting it is
        cancelled (its client disconnected): a change half written to disk is never abandoned,
        or the next attempt would find logs of a topic id nobody knows."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[name] = done  # at once: the next request already sees the name taken

        async def run() -> None:
            try:
                await work
            finally:
                del self._pending[name]
                done.set_result(None)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        await asyncio.shield(task)

    async def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for topic changes in progress to finish."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    def _finished(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Raised to the request too, unless it was cancelled; then this is the only trace.
            log.debug("topic change failed: %s", task.exception())

    def _plan(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        assignments: Mapping[int, Sequence[int]] | None,
        configs: Mapping[str, str | None] | None,
        allow_internal: bool,
    ) -> tuple[list[list[BrokerId]], dict[str, str]]:
        """Validate a creation as Kafka does; the replica assignment and validated configs."""
        broker = self.broker
        metadata = broker.metadata
        check_topic_name(name)
        if name in metadata.topics:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        check_not_internal(name, allow_internal)
        collision = metadata.colliding_topic(name)
        if collision is not None:
            raise TopicError(
                ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic '{name}' collides with existing topic: {collision}"
            )
        topic_configs = validated_topic_configs(configs or {})
        live = broker.live_broker_ids()
        check_sizing(num_partitions, replication_factor, assignments)
        if assignments:
            plan = self.explicit_assignment(assignments, live)
        else:
            partitions = broker.config.num_partitions if num_partitions == -1 else num_partitions
            rf = broker.config.default_replication_factor if replication_factor == -1 else replication_factor
            if partitions <= 0:
                raise TopicError(ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
            if rf <= 0:
                raise TopicError(
                    ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
                )
            plan = assign_replicas(live, partitions, rf)
        return plan, topic_configs

    @staticmethod
    def explicit_assignment(
        assignments: Mapping[int, Sequence[int]], live: Sequence[BrokerId]
    ) -> list[list[BrokerId]]:
        indexes = sorted(assignments)
        if indexes != list(range(len(indexes))):
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "Partitions should be a consecutive 0-based integer sequence",
            )
        plan: list[list[BrokerId]] = []
        size = None
        for index in indexes:
            replicas = [BrokerId(int(b)) for b in assignments[index]]
            if not replicas:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Empty replica list for partition {index}"
                )
            if len(set(replicas)) != len(replicas):
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"Duplicate brokers not allowed in replica assignment: {replicas}",
                )
            unknown = [b for b in replicas if b not in live]
            if unknown:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Unknown broker(s) {unknown} in replica assignment"
                )
            if size is not None and len(replicas) != size:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    "All partitions should have the same number of replicas",
                )
            size = len(replicas)
            plan.append(replicas)
        return plan

    async def delete_async(self, name: str) -> TopicInfo:
        """Delete a topic: it stops being served at once, the directory renames and the metadata
        write run in worker threads, and the call returns when the deletion is durable."""
        await self.created(name)
        info, detached = self._detach(name)
        await self._finish(name, self._delete_detached(detached))
        return info

    async def _delete_detached(self, detached: list[Partition]) -> None:
        await self.broker.disk.run(self.broker.replica_manager.delete_logs, detached)
        await self.broker.persist_metadata()

    def _detach(self, name: str) -> tuple[TopicInfo, list[Partition]]:
        broker = self.broker
        info = broker.metadata.topic(name)
        if info is None:
            raise TopicError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."
            )
        if not broker.config.delete_topic_enable:
            raise TopicError(ErrorCode.TOPIC_DELETION_DISABLED, "Topic deletion is disabled.")
        if info.is_internal:
            raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Internal topic {name} cannot be deleted")
        detached = broker.replica_manager.detach_topic(name, len(info.partitions))
        broker.metadata.delete_topic(name)
        # Committed offsets of a deleted topic go with it (Kafka's handleDeletedPartitions).
        # (No coordinator built: no __consumer_offsets at start and no group since, so no offsets.)
        coordinator = broker.built_group_coordinator
        if coordinator is not None:
            coordinator.offsets.on_partitions_deleted((name, i) for i in range(len(info.partitions)))
        broker.stats.forget_topic(name)  # a deleted topic's series go, as Kafka removes its metrics
        log.info("deleted topic %s (id %s)", name, info.topic_id)
        return info, detached

    async def add_partitions_async(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None,
        *,
        validate_only: bool = False,
    ) -> None:
        """Raise the partition count; the new logs are created in worker threads and the new
        partitions appear in the metadata only once they exist. Changes to one topic are
        serialized."""
        await self.created(name)
        planned = self._plan_partitions(name, total, assignments)
        if validate_only:
            return
        info, current, plan = planned
        await self._finish(name, self._add_partitions(info, current, plan))

    async def _add_partitions(self, info: TopicInfo, current: int, plan: list[list[BrokerId]]) -> None:
        broker = self.broker
        # The logs first, from a description that already holds the new partitions.
        future = TopicInfo(info.name, info.topic_id, info.partitions + _states(plan), info.configs)
        opened = await self._open_partitions(future, current)
        broker.metadata.add_partitions(info.name, plan)
        for partition in opened:
            partition.state = info.partitions[partition.tp.partition]
        broker.replica_manager.register(opened)
        await broker.persist_metadata()

    def _plan_partitions(
        self, name: str, total: int, assignments: Sequence[Sequence[int]] | None
    ) -> tuple[TopicInfo, int, list[list[BrokerId]]]:
        broker = self.broker
        info = broker.metadata.topic(name)
        if info is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
        current = len(info.partitions)
        if total < current:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"Topic currently has {current} partitions, which is higher than the requested {total}.",
            )
        if total == current:
            raise TopicError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partitions.")
        live = broker.live_broker_ids()
        rf = len(info.partitions[0].replicas)
        if assignments is not None:
            if len(assignments) != total - current:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"Increasing the number of partitions by {total - current} but "
                    f"{len(assignments)} assignments provided.",
                )
            plan = self.explicit_assignment({i: a for i, a in enumerate(assignments)}, live)
        else:
            existing = [p.replicas for p in info.partitions]
            plan = assign_replicas(live, total - current, rf, start_partition=current, existing=existing)
        return info, current, plan

    def set_configs(
        self, name: str, configs: Mapping[str, str | None], *, validate_only: bool = False
    ) -> bool:
        """Replace the topic's overrides with ``configs`` (AlterConfigs semantics), in memory;
        returns whether anything changed, in which case the caller persists the metadata
        (:meth:`Broker.persist_metadata`) before it answers."""
        broker = self.broker
        info = broker.metadata.topic(name)
        if info is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
        validated = validated_topic_configs(configs)
        if validate_only:
            return False
        broker.metadata.set_topic_configs(name, validated)
        broker.replica_manager.update_topic_config(info)
        return True


def _states(plan: list[list[BrokerId]]) -> list[PartitionState]:
    return [PartitionState(list(r), r[0], 0, list(r)) for r in plan]
