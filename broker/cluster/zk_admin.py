"""Topic administration in ZooKeeper mode, as Kafka 3.9's ZkAdminManager and AdminZkClient.

Admin requests write ZooKeeper and the controller carries them out:

- a creation writes ``/config/topics/<t>`` and then ``/brokers/topics/<t>`` (the assignment with
  a topic id made once, here); the controller sees the new topic, elects leaders and sends
  LeaderAndIsr and UpdateMetadata;
- a deletion writes ``/admin/delete_topics/<t>``; the controller stops and deletes the replicas
  and removes the topic's znodes;
- new partitions are a conditional update of ``/brokers/topics/<t>``;
- a config change writes ``/config/topics/<t>`` and a ``/config/changes/config_change_N``
  notification, which every broker's :class:`~broker.cluster.config_changes.ConfigChangeWatcher`
  applies to its logs.

The request then waits, as Kafka's DelayedCreatePartitions and DelayedDeleteTopics purgatories,
until this broker's metadata cache shows a leader for every new partition (or the topic gone),
woken by each UpdateMetadata applied to the cache; past the request's timeout the topic gets
REQUEST_TIMED_OUT. Validation is the embedded mode's (:mod:`broker.cluster.topics`), against the
live brokers of the metadata cache (ZooKeeper's ``/brokers/ids`` before the first UpdateMetadata),
with their racks for Kafka's rack-aware placement.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from kazoo.exceptions import BadVersionError, NodeExistsError, ZookeeperError

from broker.cluster.config_changes import TOPIC_CONFIG_TYPE, ConfigChangeWatcher
from broker.cluster.controller.assignment import (
    AssignmentError,
    BrokerPlacement,
    assign_replicas_to_brokers,
    new_partitions_assignment,
)
from broker.cluster.metadata import INTERNAL_TOPICS, NO_LEADER_ID, unify_collision_chars
from broker.cluster.metadata_cache import MetadataCache
from broker.cluster.topics import (
    TopicAdmin,
    TopicError,
    check_not_internal,
    check_sizing,
    check_topic_name,
    validated_topic_configs,
)
from broker.cluster.zk import data, paths
from broker.cluster.zk.errors import ZkError
from broker.config import ConfigError, topic_log_config
from broker.group import OFFSETS_TOPIC
from broker.group.store import offsets_topic_configs
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.primitives import ZERO_UUID
from storage.fast_dataclass import dataclass, field

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.cluster.zk.client import KafkaZkClient
    from broker.cluster.zk_mode import ZkCluster

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PlannedTopic:
    """A validated creation: what is (or would be, with validate_only) written to ZooKeeper."""

    name: str
    topic_id: uuid.UUID
    assignment: dict[int, list[BrokerId]]
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.name, p) for p in sorted(self.assignment)]

    @property
    def replication_factor(self) -> int:
        return len(self.assignment[min(self.assignment)])


async def await_cache(
    cache: MetadataCache, predicate: Callable[[MetadataCache], bool], timeout_s: float
) -> bool:
    """Wait until ``predicate(cache)`` holds, re-checked after each UpdateMetadata applied to the
    cache (no polling); False once ``timeout_s`` has passed (at once when it is <= 0)."""
    if predicate(cache):
        return True
    if timeout_s <= 0:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    changed = asyncio.Event()
    cache.add_listener(changed.set)
    try:
        while not predicate(cache):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return predicate(cache)
        return True
    finally:
        cache.remove_listener(changed.set)


def leaders_elected(partitions: Iterable[TopicPartition]) -> Callable[[MetadataCache], bool]:
    """DelayedCreatePartitions' test: every partition is in the cache with a leader."""
    wanted = list(partitions)

    def check(cache: MetadataCache) -> bool:
        for tp in wanted:
            state = cache.partition(tp)
            if state is None or state.leader == NO_LEADER_ID:
                return False
        return True

    return check


def topics_gone(topics: Iterable[str]) -> Callable[[MetadataCache], bool]:
    """DelayedDeleteTopics' test: no topic is in the cache any more."""
    wanted = list(topics)
    return lambda cache: not any(cache.contains(t) for t in wanted)


class ZkAdmin:
    """The ZooKeeper-mode side of CreateTopics, DeleteTopics, CreatePartitions, the config apis
    and auto-creation, for one broker. Any broker may write ZooKeeper (auto-creation and configs,
    as Kafka ZK mode); the handlers let only the active controller serve the topic apis."""

    def __init__(self, broker: Broker, cluster: ZkCluster) -> None:
        self.broker = broker
        self.cluster = cluster
        #: Names being created by this broker: a second creation is TOPIC_ALREADY_EXISTS at once.
        self._creating: set[str] = set()
        #: The topic overrides last read from ZooKeeper (applied to local logs, used for new ones).
        self.topic_overrides: dict[str, Mapping[str, str]] = {}
        self.config_watcher: ConfigChangeWatcher | None = None
        self._offsets_creation: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start following topic configs in ZooKeeper (ZkConfigManager): every stored topic
        config is applied to the local logs, then each change notification."""
        if self.config_watcher is None:
            from broker.dynamic_configs import DEFAULT_ENTITY

            self.config_watcher = ConfigChangeWatcher(
                self.zk,
                self.apply_topic_config,
                apply_broker=self.broker.dynamic_configs.apply,
                broker_entities=(DEFAULT_ENTITY, str(self.broker.node_id)),
                apply_user=self.broker.scram_credentials.user_changed,
                apply_quota_entity=self.broker.quota_entity_changed,
            )
            await self.config_watcher.start()

    def stop(self) -> None:
        if self.config_watcher is not None:
            self.config_watcher.stop()

    @property
    def zk(self) -> KafkaZkClient:
        return self.cluster.zk

    @property
    def cache(self) -> MetadataCache:
        return self.broker.metadata_cache

    @property
    def is_active_controller(self) -> bool:
        return self.cluster.is_active_controller

    # -- live brokers ---------------------------------------------------------------------------

    async def live_placements(self) -> list[BrokerPlacement]:
        """The live brokers with their racks: the metadata cache's (Kafka's getAliveBrokers), or
        the registrations under ``/brokers/ids`` before the controller sent any."""
        if self.cache.alive:
            return [BrokerPlacement(b.broker_id, b.rack) for _, b in sorted(self.cache.alive.items())]
        registered = await self._zk(self.zk.get_live_brokers())
        return [BrokerPlacement(BrokerId(i), reg.rack) for i, (reg, _) in sorted(registered.items())]

    # -- creation -------------------------------------------------------------------------------

    async def create_topic(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        assignments: Mapping[int, Sequence[int]] | None = None,
        configs: Mapping[str, str | None] | None = None,
        *,
        validate_only: bool = False,
        allow_internal: bool = False,
    ) -> PlannedTopic:
        """Validate and (unless ``validate_only``) write a new topic to ZooKeeper: its config
        znode, then its assignment with a new topic id (AdminZkClient.createTopicWithAssignment).
        Returns at once: :meth:`wait_for_leaders` waits for the controller. Raises TopicError."""
        check_topic_name(name)
        check_not_internal(name, allow_internal)
        if name in self._creating or self.cache.contains(name):
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        check_sizing(num_partitions, replication_factor, assignments)
        topic_configs = validated_topic_configs(configs or {})
        self._creating.add(name)
        try:
            placements = await self.live_placements()
            plan = self._plan(num_partitions, replication_factor, assignments, placements)
            await self._check_new_in_zk(name)
            if validate_only:
                return PlannedTopic(name, ZERO_UUID, plan, topic_configs)
            planned = PlannedTopic(name, uuid.uuid4(), plan, topic_configs)
            try:
                await self._zk(
                    self.zk.create_topic(name, data.TopicAssignment(planned.topic_id, plan), topic_configs)
                )
            except NodeExistsError:
                raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.") from None
        finally:
            self._creating.discard(name)
        log.info(
            "wrote topic %s (id %s) to ZooKeeper: %d partitions, replication factor %d",
            name,
            planned.topic_id,
            len(plan),
            planned.replication_factor,
        )
        return planned

    def _plan(
        self,
        num_partitions: int,
        replication_factor: int,
        assignments: Mapping[int, Sequence[int]] | None,
        placements: list[BrokerPlacement],
    ) -> dict[int, list[BrokerId]]:
        if assignments:
            explicit = TopicAdmin.explicit_assignment(assignments, [p.id for p in placements])
            return dict(enumerate(explicit))
        config = self.broker.config
        partitions = config.num_partitions if num_partitions == -1 else num_partitions
        rf = config.default_replication_factor if replication_factor == -1 else replication_factor
        try:
            return assign_replicas_to_brokers(placements, partitions, rf)
        except AssignmentError as exc:
            raise TopicError(exc.code, exc.message) from None

    async def _check_new_in_zk(self, name: str) -> None:
        """AdminZkClient.validateTopicCreate's ZooKeeper checks."""
        zk = self.zk
        if await self._zk(zk.exists(paths.delete_topic(name))) is not None:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' is marked for deletion.")
        if await self._zk(zk.exists(paths.topic(name))) is not None:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        if "." in name or "_" in name:
            unified = unify_collision_chars(name)
            colliding = [
                t for t in await self._zk(zk.get_all_topics()) if unify_collision_chars(t) == unified
            ]
            if colliding:
                raise TopicError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"Topic '{name}' collides with existing topics: {', '.join(colliding)}",
                )

    async def create_offsets_topic(self) -> None:
        """FindCoordinator's auto-creation of ``__consumer_offsets`` (AutoTopicCreationManager):
        ``offsets.topic.num.partitions`` partitions, ``offsets.topic.replication.factor`` replicas
        (INVALID_REPLICATION_FACTOR while fewer brokers are alive) and the offsets topic's
        configs. Concurrent callers share one attempt. Raises TopicError."""
        if self._offsets_creation is None:
            self._offsets_creation = asyncio.ensure_future(self._create_offsets_topic())
            self._offsets_creation.add_done_callback(self._offsets_created)
        await asyncio.shield(self._offsets_creation)

    async def _create_offsets_topic(self) -> None:
        group_config = self.broker.group_coordinator.config
        await self.create_topic(
            OFFSETS_TOPIC,
            group_config.num_partitions,
            group_config.replication_factor,
            configs=offsets_topic_configs(group_config),
            allow_internal=True,
        )

    def _offsets_created(self, task: asyncio.Future[None]) -> None:
        self._offsets_creation = None
        if not task.cancelled():
            task.exception()  # retrieved: each awaiting request reports it

    async def wait_for_leaders(self, partitions: Iterable[TopicPartition], timeout_ms: int) -> bool:
        """DelayedCreatePartitions: whether every partition has a leader in the metadata cache
        within ``timeout_ms`` (<= 0: only whether it has one now)."""
        return await await_cache(self.cache, leaders_elected(partitions), timeout_ms / 1000)

    # -- deletion -------------------------------------------------------------------------------

    def topic_name_of(self, topic_id: uuid.UUID) -> str | None:
        return self.cache.topic_name(topic_id)

    async def delete_topic(self, name: str) -> uuid.UUID:
        """Mark a topic for deletion (``/admin/delete_topics/<t>``); its id. A topic already
        marked counts as deleted again, as Kafka. Raises TopicError."""
        if not self.cache.contains(name):
            raise TopicError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."
            )
        if not self.broker.config.delete_topic_enable:
            raise TopicError(ErrorCode.TOPIC_DELETION_DISABLED, "Topic deletion is disabled.")
        if name in INTERNAL_TOPICS:
            raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Internal topic {name} cannot be deleted")
        if await self._zk(self.zk.exists(paths.topic(name))) is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic `{name}` to delete does not exist")
        topic_id = self.cache.topic_id(name)
        await self._zk(self.zk.mark_topic_for_deletion(name))
        log.info("marked topic %s (id %s) for deletion", name, topic_id)
        return topic_id

    async def wait_for_deletion(self, topics: Iterable[str], timeout_ms: int) -> bool:
        """DelayedDeleteTopics: whether the topics left the metadata cache within ``timeout_ms``."""
        return await await_cache(self.cache, topics_gone(topics), timeout_ms / 1000)

    # -- new partitions -------------------------------------------------------------------------

    async def add_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None,
        *,
        validate_only: bool = False,
    ) -> list[TopicPartition]:
        """Raise the partition count (ZkAdminManager.createPartitions): the new partitions
        continue the placement from partition 0's first replica, or follow ``assignments``; the
        assignment znode is updated conditionally on the version read. The new partitions."""
        got = await self._zk(self.zk.get_topic_assignment(name))
        if got is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
        if await self._zk(self.zk.exists(paths.delete_topic(name))) is not None:
            raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, "The topic is queued for deletion.")
        assignment, version = got
        if any(assignment.adding_replicas.values()) or any(assignment.removing_replicas.values()):
            raise TopicError(
                ErrorCode.REASSIGNMENT_IN_PROGRESS,
                f"A partition reassignment is in progress for the topic '{name}'.",
            )
        current = len(assignment.partitions)
        if total < current:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"Topic currently has {current} partitions, which is higher than the requested {total}.",
            )
        if total == current:
            raise TopicError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partitions.")
        placements = await self.live_placements()
        if assignments is not None:
            if len(assignments) != total - current:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"Increasing the number of partitions by {total - current} but "
                    f"{len(assignments)} assignments provided.",
                )
            explicit = TopicAdmin.explicit_assignment(
                dict(enumerate(assignments)), [p.id for p in placements]
            )
            plan = {current + i: replicas for i, replicas in enumerate(explicit)}
        else:
            existing = {p: [BrokerId(b) for b in r] for p, r in assignment.partitions.items()}
            try:
                plan = new_partitions_assignment(existing, placements, total)
            except AssignmentError as exc:
                raise TopicError(exc.code, exc.message) from None
        new = [TopicPartition(name, p) for p in sorted(plan)]
        if validate_only:
            return new
        updated = data.TopicAssignment(
            assignment.topic_id,
            {**assignment.partitions, **plan},
            assignment.adding_replicas,
            assignment.removing_replicas,
        )
        try:
            await self._zk(self.zk.set_topic_assignment(name, updated, version))
        except BadVersionError:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"The assignment of topic '{name}' changed while partitions were added; retry.",
            ) from None
        log.info("added partitions %d..%d to topic %s", current, total - 1, name)
        return new

    # -- configs --------------------------------------------------------------------------------

    async def topic_exists(self, name: str) -> bool:
        """In the metadata cache, or (before the controller's UpdateMetadata came) in ZooKeeper."""
        if self.cache.contains(name):
            return True
        return await self._zk(self.zk.exists(paths.topic(name))) is not None

    async def topic_config(self, name: str) -> dict[str, str]:
        """The topic's overrides, ``/config/topics/<t>`` (AdminZkClient.fetchEntityConfig)."""
        return await self._zk(self.zk.get_entity_config(TOPIC_CONFIG_TYPE, name))

    async def set_topic_config(
        self, name: str, configs: Mapping[str, str | None], *, validate_only: bool = False
    ) -> None:
        """Replace the topic's overrides (AdminZkClient.changeTopicConfig: the config znode, then
        the change notification every broker applies). Raises TopicError."""
        if await self._zk(self.zk.exists(paths.topic(name))) is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
        validated = validated_topic_configs(configs)
        if validate_only:
            return
        await self._zk(self.zk.change_entity_config(TOPIC_CONFIG_TYPE, name, validated))
        log.info("changed the config of topic %s to %s", name, validated)

    # -- topic configs on this broker's logs ----------------------------------------------------

    def apply_topic_config(self, topic: str, overrides: Mapping[str, str]) -> None:
        """Kafka's TopicConfigHandler: the topic's new overrides apply to its local logs."""
        try:
            config = topic_log_config(self.broker.config, overrides)
        except ConfigError as exc:
            log.error("ignoring the config of topic %s in ZooKeeper: %s", topic, exc)
            return
        self.topic_overrides[topic] = dict(overrides)
        changed = 0
        for local in self.broker.log_manager.all_logs():
            if local.topic == topic:
                local.update_config(config)
                changed += 1
        if changed:
            log.info("applied the config of topic %s to %d local logs: %s", topic, changed, dict(overrides))

    async def fetch_topic_configs(self, topics: Sequence[str]) -> Mapping[str, Mapping[str, str]]:
        """The overrides of ``topics`` read from ZooKeeper, for the logs a LeaderAndIsr creates
        (the last known ones when ZooKeeper cannot be read, logged). The mapping returned is
        :attr:`topic_overrides` itself: the config watcher keeps it current meanwhile."""
        try:
            found = await asyncio.gather(*(self.zk.get_entity_config(TOPIC_CONFIG_TYPE, t) for t in topics))
        except (ZkError, ZookeeperError) as exc:
            log.warning("cannot read topic configs from ZooKeeper (%s); using the last known", exc)
            return self.topic_overrides
        for topic, overrides in zip(topics, found, strict=True):
            try:
                topic_log_config(self.broker.config, overrides)
            except ConfigError as exc:
                log.error("ignoring the config of topic %s in ZooKeeper: %s", topic, exc)
                overrides = {}
            self.topic_overrides[topic] = overrides
        return self.topic_overrides

    # -- ZooKeeper failures ---------------------------------------------------------------------

    @staticmethod
    async def _zk(call: Awaitable[T]) -> T:
        """A ZooKeeper call whose failure (unreachable, a server error) becomes a clear per-topic
        error rather than a failed request; NodeExists and BadVersion pass to the caller."""
        try:
            return await call
        except (NodeExistsError, BadVersionError):
            raise
        except (ZkError, ZookeeperError) as exc:
            raise TopicError(
                ErrorCode.UNKNOWN_SERVER_ERROR, f"ZooKeeper: {exc or type(exc).__name__}"
            ) from None
