"""The active controller's driver: ZooKeeper in, :class:`Controller` decisions out, carried out.

While this broker is the controller, a :class:`ControllerDriver` owns a sans-I/O
:class:`~broker.cluster.controller.Controller`. Every ZooKeeper watch firing, broker answer,
admin request (ControlledShutdown, ElectLeaders, AlterPartition) and periodic task becomes an
event on :class:`~broker.cluster.zk_mode.ZkCluster`'s queue, run one at a time on the loop (Kafka's
ControllerEventManager). Watches are one-shot: each handler re-reads its znode with the watch
armed again. Events of one kind that are already queued are not queued twice (a watch that fires
again meanwhile is answered by the same re-read).

Carrying out one :class:`ControllerDecisions`, in Kafka's order: the partition-state writes, each
fenced by the ``/controller_epoch`` version (a ControllerMovedError makes the broker resign; a
version conflict reloads that partition's state and the event's requests are not sent, as Kafka
does not send for partitions whose write failed), then the deleted topics' znodes, then the
requests, in order, through the :class:`~broker.cluster.channel.ChannelManager` to each broker's
inter-broker endpoint (the controller included: it talks to itself over the network, as Kafka).

Answers fed back as events: StopReplica answers (topic deletion) and LeaderAndIsr answers that
carry KAFKA_STORAGE_ERROR or clear a replica known offline (Kafka's
LeaderAndIsrResponseReceived: replicas in failed log dirs go offline). ``/log_dir_event_notification``
is watched: the brokers it names get a LeaderAndIsr for all their replicas, then the
notifications are deleted, fenced by the controller epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from kazoo.exceptions import BadVersionError, NodeExistsError
from kazoo.protocol.states import EventType, WatchedEvent

from broker.cluster.channel import ChannelManager
from broker.cluster.config_changes import TOPIC_CONFIG_TYPE
from broker.cluster.controller import (
    BrokerInfo,
    ControlledShutdownResult,
    Controller,
    ControllerConfig,
    ControllerDecisions,
    ElectionOutcomeFor,
    ElectionType,
    Endpoint,
    LeaderAndIsr,
    LeaderIsrAndControllerEpoch,
    LeaderRecoveryState,
    ReassignmentOutcome,
    ReplicaAssignment,
    TopicSnapshot,
    ZkReassignmentRemoval,
)
from broker.cluster.zk import data, paths
from broker.cluster.zk.client import MATCH_ANY_VERSION
from broker.cluster.zk.errors import ControllerMovedError
from broker.network.client import ClientConfig, Response
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import AlterPartitionRequest
from protocol.messages.alter_partition_response import AlterPartitionResponse
from protocol.messages.leader_and_isr_request import LeaderAndIsrRequest
from protocol.messages.leader_and_isr_response import LeaderAndIsrResponse
from protocol.messages.stop_replica_request import StopReplicaRequest
from protocol.messages.stop_replica_response import StopReplicaResponse

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.cluster.zk_mode import ZkCluster

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Kafka's SecurityProtocol ids, as UpdateMetadata carries them.
SECURITY_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}


class NotControllerError(Exception):
    """This broker stopped being the controller before the request was handled."""


def broker_info(registration: data.BrokerRegistration, epoch: int) -> BrokerInfo:
    return BrokerInfo(
        BrokerId(registration.broker_id),
        tuple(
            Endpoint(e.listener, e.host or "", e.port, SECURITY_PROTOCOL_IDS.get(e.security_protocol, 0))
            for e in registration.endpoints
        ),
        registration.rack,
        epoch,
    )


def topic_snapshot(assignment: data.TopicAssignment, topic_id: uuid.UUID) -> TopicSnapshot:
    return TopicSnapshot(
        topic_id,
        {
            p: ReplicaAssignment(
                tuple(BrokerId(r) for r in replicas),
                tuple(BrokerId(r) for r in assignment.adding_replicas.get(p, ())),
                tuple(BrokerId(r) for r in assignment.removing_replicas.get(p, ())),
            )
            for p, replicas in assignment.partitions.items()
        },
    )


def to_controller_state(state: data.PartitionState) -> LeaderIsrAndControllerEpoch:
    return LeaderIsrAndControllerEpoch(
        LeaderAndIsr(
            BrokerId(state.leader),
            state.leader_epoch,
            tuple(BrokerId(b) for b in state.isr),
            LeaderRecoveryState(state.leader_recovery_state),
            state.zk_version,
        ),
        state.controller_epoch,
    )


def to_znode_state(state: LeaderIsrAndControllerEpoch, zk_version: int) -> data.PartitionState:
    lai = state.leader_and_isr
    return data.PartitionState(
        lai.leader,
        lai.leader_epoch,
        tuple(lai.isr),
        state.controller_epoch,
        int(lai.leader_recovery_state),
        zk_version,
    )


def _error_code(code: int) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.UNKNOWN_SERVER_ERROR


def _as_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() == "true"


class ControllerDriver:
    """Runs :class:`Controller` while this broker is the controller (one per election won)."""

    def __init__(self, cluster: ZkCluster, broker: Broker, epoch: int, epoch_zk_version: int) -> None:
        self.cluster = cluster
        self.broker = broker
        self.zk = cluster.zk
        self.epoch = epoch
        self.epoch_zk_version = epoch_zk_version
        config = broker.config
        percentage = config.get("leader.imbalance.per.broker.percentage")
        self.listener = config.inter_broker_listener_name
        self.controller = Controller(
            ControllerConfig(
                BrokerId(broker.node_id),
                self.listener,
                str(config.get("inter.broker.protocol.version")),
                bool(config.get("unclean.leader.election.enable")),
                percentage if isinstance(percentage, int) else 10,
                bool(config.get("delete.topic.enable")),
            )
        )
        self.channels = ChannelManager(ClientConfig.for_controller(config))
        self.active = True
        self._queued: set[str] = set()
        self._topics_watched: set[str] = set()
        self._rebalance_timer: asyncio.TimerHandle | None = None
        self._config_changes_seen: set[str] = set()
        #: Requests waiting for their event (failed with NotControllerError on resignation).
        self._waiting: set[asyncio.Future[Any]] = set()

    # -- events -----------------------------------------------------------------------------------

    def _put(self, name: str, event: Callable[[], Awaitable[None]]) -> None:
        """Queue ``event`` once: a second firing while the first is queued is answered by it."""
        if not self.active or name in self._queued:
            return
        self._queued.add(name)

        async def run() -> None:
            self._queued.discard(name)
            if self.active:
                await event()

        self.cluster.put(name, run)

    def _watch(self, name: str, handler: Callable[[], Awaitable[None]]) -> Callable[[WatchedEvent], None]:
        def fired(_event: WatchedEvent) -> None:
            self._put(name, handler)

        return fired

    async def submit(self, name: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` as a controller event (after the queued ones); its result.
        NotControllerError if this broker resigns before it runs."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        future.add_done_callback(self._waiting.discard)

        async def run() -> None:
            if not self.active:
                self._not_controller(future)
                return
            try:
                result = await work()
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)
                raise
            if not future.done():
                future.set_result(result)

        if not self.active or not self.cluster.put(name, run):
            self._not_controller(future)
        return await future

    def _not_controller(self, future: asyncio.Future[T]) -> None:
        if not future.done():
            future.set_exception(
                NotControllerError(f"broker {self.broker.node_id} is no longer the controller")
            )

    # -- fail-over --------------------------------------------------------------------------------

    async def failover(self) -> None:
        """KafkaController.onControllerFailover: arm the watches, read the cluster, decide."""
        zk = self.zk
        brokers = await self._read_brokers()
        topic_names = await zk.get_all_topics(self._watch("TopicChange", self._on_topic_change))
        topics = await self._read_topics(topic_names)
        to_delete = await zk.get_topics_marked_for_deletion(
            self._watch("TopicDeletion", self._on_topic_deletion)
        )
        partitions = [(t, p) for t, snapshot in topics.items() for p in snapshot.partitions]
        states = await zk.get_partition_states(partitions)
        unclean = await self._topic_unclean_overrides(topics)
        for broker in brokers.values():
            self._open_channel(broker)
        decisions = self.controller.on_controller_failover(
            self.epoch,
            self.epoch_zk_version,
            brokers.values(),
            topics,
            {TopicPartition(t, p): to_controller_state(s) for (t, p), s in states.items()},
            to_delete,
            unclean,
        )
        await self.carry_out(decisions)
        # Config changes before now were read with the topics; later ones are followed.
        self._config_changes_seen = {n for n, _ in await zk.get_config_changes(self._config_watch())}
        # Reassignments: the znode's (watched for its creation), then those the api left.
        zk_requested = await self._read_zk_reassignment()
        await self.carry_out(self.controller.initialize_reassignments(zk_requested))
        # Pending notifications and requests written while there was no controller.
        await self._on_isr_change()
        await self._on_log_dir_event()
        await self._on_preferred_replica_election()
        self._schedule_rebalance()

    async def _read_brokers(self) -> dict[BrokerId, BrokerInfo]:
        registered = await self.zk.get_live_brokers(self._watch("BrokerChange", self._on_broker_change))
        return {BrokerId(b): broker_info(reg, epoch) for b, (reg, epoch) in registered.items()}

    async def _read_topics(self, names: Iterable[str]) -> dict[str, TopicSnapshot]:
        """The topics' assignments (each with a data watch, for partition additions); a topic
        without an id gets one written, as Kafka's controller does for topics made by old tools."""
        found: dict[str, TopicSnapshot] = {}
        for name in names:
            watch = self._watch(f"PartitionModifications({name})", lambda n=name: self._on_partitions(n))  # type: ignore[misc]
            got = await self.zk.get_topic_assignment(name, watch)
            if got is None:
                continue
            self._topics_watched.add(name)
            assignment, version = got
            topic_id = assignment.topic_id
            if topic_id is None:
                topic_id = uuid.uuid4()
                with_id = data.TopicAssignment(
                    topic_id, assignment.partitions, assignment.adding_replicas, assignment.removing_replicas
                )
                await self.zk.set_topic_assignment(name, with_id, version, self.epoch_zk_version)
            found[name] = topic_snapshot(assignment, topic_id)
        return found

    async def _topic_unclean_overrides(self, topics: Iterable[str]) -> dict[str, bool]:
        names = list(topics)
        # One round of concurrent reads: fail-over reads every topic's config.
        configs = await asyncio.gather(*(self.zk.get_entity_config(TOPIC_CONFIG_TYPE, t) for t in names))
        overrides: dict[str, bool] = {}
        for topic, config in zip(names, configs, strict=True):
            value = _as_bool(config.get("unclean.leader.election.enable"))
            if value is not None:
                overrides[topic] = value
        return overrides

    # -- watch handlers ---------------------------------------------------------------------------

    async def _on_broker_change(self) -> None:
        brokers = await self._read_brokers()
        known = set(self.controller.context.live_brokers)
        for broker in brokers.values():
            self._open_channel(broker)
        decisions = self.controller.on_broker_change(brokers)
        for gone in known - set(brokers):
            await self.channels.remove_broker(gone)
        await self.carry_out(decisions)

    async def _on_topic_change(self) -> None:
        names = await self.zk.get_all_topics(self._watch("TopicChange", self._on_topic_change))
        new = [n for n in names if n not in self.controller.context.assignments]
        self._topics_watched &= set(names)
        if not new:
            return
        topics = await self._read_topics(new)
        ctx = self.controller.context
        for topic, override in (await self._topic_unclean_overrides(topics)).items():
            ctx.topic_unclean_leader_election[topic] = override
        await self.carry_out(self.controller.on_topics_created(topics))

    async def _on_partitions(self, topic: str) -> None:
        watch = self._watch(f"PartitionModifications({topic})", lambda: self._on_partitions(topic))
        got = await self.zk.get_topic_assignment(topic, watch)
        if got is None or topic not in self.controller.context.assignments:
            return
        assignment, _version = got
        snapshot = topic_snapshot(assignment, assignment.topic_id or uuid.UUID(int=0))
        if set(snapshot.partitions) - set(self.controller.context.assignments[topic]):
            await self.carry_out(self.controller.on_partitions_added(topic, snapshot.partitions))

    async def _on_topic_deletion(self) -> None:
        topics = await self.zk.get_topics_marked_for_deletion(
            self._watch("TopicDeletion", self._on_topic_deletion)
        )
        if topics:
            await self.carry_out(self.controller.on_topic_deletion_requested(topics))

    def _config_watch(self) -> Callable[[WatchedEvent], None]:
        return self._watch("TopicConfigChange", self._on_config_change)

    async def _on_config_change(self) -> None:
        """``/config/changes``: a topic's ``unclean.leader.election.enable`` may have changed;
        turned on, its leaderless partitions are elected now (Kafka's
        TopicUncleanLeaderElectionEnable). The notifications are the brokers' to delete."""
        changes = await self.zk.get_config_changes(self._config_watch())
        fresh = [(n, entity) for n, entity in changes if n not in self._config_changes_seen]
        self._config_changes_seen = {n for n, _ in changes}
        ctx = self.controller.context
        enabled: list[str] = []
        for _name, entity in fresh:
            entity_type, _, topic = entity.partition("/")
            if entity_type != TOPIC_CONFIG_TYPE or topic not in ctx.assignments:
                continue
            config = await self.zk.get_entity_config(TOPIC_CONFIG_TYPE, topic)
            value = _as_bool(config.get("unclean.leader.election.enable"))
            before = ctx.topic_unclean_leader_election.get(topic)
            if value is None:
                ctx.topic_unclean_leader_election.pop(topic, None)
            else:
                ctx.topic_unclean_leader_election[topic] = value
            if value and not before:
                enabled.append(topic)
        for topic in enabled:
            leaderless = [
                p
                for p in ctx.partitions_for_topic(topic)
                if (state := ctx.leader_and_isr(p)) is not None and state.leader not in ctx.live_broker_ids
            ]
            if leaderless:
                _answers, decisions = self.controller.elect_leaders(leaderless, ElectionType.UNCLEAN)
                await self.carry_out(decisions)

    async def _on_isr_change(self) -> None:
        """``/isr_change_notification``: leaders changed ISRs themselves; every broker learns the
        new states (Kafka's IsrChangeNotification handling), then the notifications go."""
        sequences = await self.zk.get_isr_change_notifications(self._watch("IsrChange", self._on_isr_change))
        if not sequences:
            return
        changed = await self.zk.get_partitions_from_isr_changes(sequences)
        known = [TopicPartition(t, p) for t, p in changed if t in self.controller.context.assignments]
        states = await self.zk.get_partition_states([(tp.topic, tp.partition) for tp in known])
        decisions = self.controller.on_isr_changes(
            {TopicPartition(t, p): to_controller_state(s) for (t, p), s in states.items()}
        )
        await self.carry_out(decisions)
        await self.zk.delete_isr_change_notifications(sequences, self.epoch_zk_version)

    async def _on_log_dir_event(self) -> None:
        """``/log_dir_event_notification``: brokers whose log dir failed (Kafka's
        processLogDirEventNotification). Each gets a LeaderAndIsr for all its replicas, whose
        KAFKA_STORAGE_ERROR answers take those replicas offline; then the notifications go
        (fenced by the controller epoch), processed or not, as Kafka's ``finally``."""
        sequences = await self.zk.get_log_dir_event_notifications(
            self._watch("LogDirEventNotification", self._on_log_dir_event)
        )
        if not sequences:
            return
        try:
            brokers = await self.zk.get_brokers_from_log_dir_events(sequences)
            await self.carry_out(self.controller.on_log_dir_failure(BrokerId(b) for b in brokers))
        finally:
            await self.zk.delete_log_dir_event_notifications(sequences, self.epoch_zk_version)

    async def _on_preferred_replica_election(self) -> None:
        watch = self._watch("PreferredReplicaElection", self._on_preferred_replica_election)
        await self.zk.exists(paths.PREFERRED_REPLICA_ELECTION, watch)
        partitions = await self.zk.get_preferred_replica_election()
        if not partitions:
            return
        _answers, decisions = self.controller.elect_leaders(
            [TopicPartition(t, p) for t, p in partitions], ElectionType.PREFERRED
        )
        await self.carry_out(decisions)
        await self.zk.delete_preferred_replica_election(self.epoch_zk_version)

    def _reassignment_watch(self) -> Callable[[WatchedEvent], None]:
        """Kafka's PartitionReassignmentHandler: only the znode's creation starts reassignments;
        any other firing (the controller's own updates, the deletion) just re-arms the watch."""

        def fired(event: WatchedEvent) -> None:
            if event.type == EventType.CREATED:
                self._put("ZkPartitionReassignment", self._on_zk_reassignment)
            else:
                self._put("ZkPartitionReassignmentWatch", self._read_zk_reassignment_watch_only)

        return fired

    async def _read_zk_reassignment(self) -> dict[TopicPartition, list[int]]:
        """Arm the watch; the znode's reassignments (empty without it)."""
        if await self.zk.exists(paths.REASSIGN_PARTITIONS, self._reassignment_watch()) is None:
            return {}
        try:
            requested = await self.zk.get_partition_reassignment()
        except data.ZkDataError as exc:
            log.error("controller %d: unreadable %s: %s", self.broker.node_id, paths.REASSIGN_PARTITIONS, exc)
            return {}
        return {TopicPartition(t, p): replicas for (t, p), replicas in requested.items()}

    async def _read_zk_reassignment_watch_only(self) -> None:
        await self.zk.exists(paths.REASSIGN_PARTITIONS, self._reassignment_watch())

    async def _on_zk_reassignment(self) -> None:
        requested = await self._read_zk_reassignment()
        if requested:
            await self.carry_out(self.controller.on_zk_reassignment(requested))

    # -- periodic ---------------------------------------------------------------------------------

    def _schedule_rebalance(self) -> None:
        config = self.broker.config
        if not config.get("auto.leader.rebalance.enable") or not self.active:
            return
        interval = config.get("leader.imbalance.check.interval.seconds")
        assert isinstance(interval, int)
        loop = asyncio.get_running_loop()
        self._rebalance_timer = loop.call_later(
            interval, lambda: self._put("AutoPreferredReplicaLeaderElection", self._auto_rebalance)
        )

    async def _auto_rebalance(self) -> None:
        try:
            await self.carry_out(self.controller.auto_rebalance())
        finally:
            self._schedule_rebalance()

    # -- requests to the controller ---------------------------------------------------------------

    async def controlled_shutdown(self, broker: BrokerId, broker_epoch: int) -> ControlledShutdownResult:
        async def work() -> ControlledShutdownResult:
            result, decisions = self.controller.controlled_shutdown(broker, broker_epoch)
            await self.carry_out(decisions)
            return result

        return await self.submit(f"ControlledShutdown({broker})", work)

    async def elect_leaders(
        self, partitions: Iterable[TopicPartition], election_type: ElectionType
    ) -> dict[TopicPartition, ElectionOutcomeFor]:
        chosen = list(partitions)

        async def work() -> dict[TopicPartition, ElectionOutcomeFor]:
            answers, decisions = self.controller.elect_leaders(chosen, election_type)
            await self.carry_out(decisions)
            return answers

        return await self.submit("ReplicaLeaderElection", work)

    async def alter_partition(self, request: AlterPartitionRequest, version: int) -> AlterPartitionResponse:
        async def work() -> AlterPartitionResponse:
            response, decisions = self.controller.alter_partition(request, version)
            await self.carry_out(decisions)
            return response

        return await self.submit("AlterPartitionReceived", work)

    async def alter_partition_reassignments(
        self, requested: Mapping[TopicPartition, list[int] | None]
    ) -> dict[TopicPartition, ReassignmentOutcome]:
        chosen = dict(requested)

        async def work() -> dict[TopicPartition, ReassignmentOutcome]:
            answers, decisions = self.controller.alter_partition_reassignments(chosen)
            await self.carry_out(decisions)
            return answers

        return await self.submit("ApiPartitionReassignment", work)

    async def list_partition_reassignments(
        self, partitions: Iterable[TopicPartition] | None
    ) -> dict[TopicPartition, ReplicaAssignment]:
        chosen = None if partitions is None else list(partitions)

        async def work() -> dict[TopicPartition, ReplicaAssignment]:
            return self.controller.list_partition_reassignments(chosen)

        return await self.submit("ListPartitionReassignments", work)

    # -- carrying out decisions -------------------------------------------------------------------

    def _open_channel(self, broker: BrokerInfo) -> None:
        endpoint = broker.endpoint(self.listener)
        if endpoint is None:
            log.warning("broker %d has no endpoint on the inter-broker listener %s", broker.id, self.listener)
            return
        self.channels.add_broker(broker.id, endpoint.host, endpoint.port)

    async def carry_out(self, decisions: ControllerDecisions) -> None:
        """ZooKeeper writes (fenced, in order), deleted topics' znodes, then the requests."""
        for failure in decisions.failures:
            log.debug("controller %d: %s", self.broker.node_id, failure)  # the controller logged it
        conflicts: dict[TopicPartition, LeaderIsrAndControllerEpoch] = {}
        for write in decisions.partition_writes:
            tp = write.partition
            try:
                if write.expected_zk_version is None:
                    await self.zk.ensure_path(paths.topic_partition(tp.topic, tp.partition))
                    await self.zk.fenced_create(
                        paths.partition_state(tp.topic, tp.partition),
                        data.encode_partition_state(to_znode_state(write.state, 0)),
                        self.epoch_zk_version,
                    )
                else:
                    await self.zk.update_partition_state(
                        tp.topic,
                        tp.partition,
                        to_znode_state(write.state, write.expected_zk_version),
                        self.epoch_zk_version,
                    )
            except ControllerMovedError:
                raise
            except (BadVersionError, NodeExistsError):
                current = await self.zk.get_partition_state(tp.topic, tp.partition)
                if current is not None:
                    conflicts[tp] = to_controller_state(current)
                log.warning(
                    "controller %d: partition state of %s changed meanwhile: reloaded",
                    self.broker.node_id,
                    tp,
                )
        if conflicts:
            self.controller.reload_partition_states(conflicts)
        for assignment in decisions.assignment_writes:
            await self.zk.set_topic_assignment(
                assignment.topic,
                data.TopicAssignment(
                    assignment.topic_id,
                    {p: list(a.replicas) for p, a in assignment.partitions.items()},
                    {p: list(a.adding_replicas) for p, a in assignment.partitions.items()},
                    {p: list(a.removing_replicas) for p, a in assignment.partitions.items()},
                ),
                MATCH_ANY_VERSION,
                self.epoch_zk_version,
            )
        if decisions.zk_reassignment_removals:
            await self._remove_from_zk_reassignment(decisions.zk_reassignment_removals)
        for topic in decisions.deleted_topics:
            await self.zk.delete_topic_znodes(topic, self.epoch_zk_version)
            self._topics_watched.discard(topic)
        if conflicts:
            return
        for request in decisions.requests:
            callback = None
            if isinstance(request.request, StopReplicaRequest):
                callback = self._stop_replica_callback(request.broker)
            elif isinstance(request.request, LeaderAndIsrRequest):
                callback = self._leader_and_isr_callback(request.broker)
            self.channels.send(request.broker, request.request, callback, version=request.version)

    def _leader_and_isr_callback(self, broker: BrokerId) -> Callable[[Response], None]:
        """Feed a LeaderAndIsr answer back as an event: KAFKA_STORAGE_ERROR takes replicas offline."""

        def on_response(response: Response) -> None:
            body = response.body
            if not isinstance(body, LeaderAndIsrResponse):
                return
            error = _error_code(body.error_code)
            ctx = self.controller.context
            errors: dict[TopicPartition, ErrorCode] = {
                TopicPartition(e.topic_name, e.partition_index): _error_code(e.error_code)
                for e in body.partition_errors
            }
            for topic in body.topics:  # v5+: by topic id
                name = ctx.topic_name(topic.topic_id)
                if name is not None:
                    errors.update(
                        (TopicPartition(name, e.partition_index), _error_code(e.error_code))
                        for e in topic.partition_errors
                    )
            storage_error = any(e is ErrorCode.KAFKA_STORAGE_ERROR for e in errors.values())
            if error is ErrorCode.NONE and not storage_error and not ctx.replicas_on_offline_dirs.get(broker):
                return  # the common case: nothing offline before or now, no event needed

            async def event() -> None:
                await self.carry_out(self.controller.on_leader_and_isr_response(broker, errors, error))

            self.cluster.put(f"LeaderAndIsrResponseReceived({broker})", event)

        return on_response

    async def _remove_from_zk_reassignment(self, removals: list[ZkReassignmentRemoval]) -> None:
        """Kafka's ``maybeRemoveFromZkReassignment``: rewrite the znode without these partitions,
        or delete it when none is left."""
        if await self.zk.exists(paths.REASSIGN_PARTITIONS) is None:
            return
        try:
            current = await self.zk.get_partition_reassignment()
        except data.ZkDataError:
            current = {}

        def removed(key: tuple[str, int], replicas: list[int]) -> bool:
            tp = TopicPartition(*key)
            return any(
                r.partition == tp and (r.replicas is None or list(r.replicas) == replicas) for r in removals
            )

        keep = {k: v for k, v in current.items() if not removed(k, v)}
        if current and keep == current:
            return
        if keep:
            await self.zk.set_partition_reassignment(keep, self.epoch_zk_version)
        else:
            log.info(
                "No more partitions need to be reassigned. Deleting zk path %s", paths.REASSIGN_PARTITIONS
            )
            await self.zk.delete_partition_reassignment(self.epoch_zk_version)

    def _stop_replica_callback(self, broker: BrokerId) -> Callable[[Response], None]:
        def on_response(response: Response) -> None:
            body = response.body
            if not isinstance(body, StopReplicaResponse):
                return
            errors: Mapping[TopicPartition, ErrorCode] = {
                TopicPartition(e.topic_name, e.partition_index): ErrorCode(
                    body.error_code if body.error_code else e.error_code
                )
                for e in body.partition_errors
            }
            if not errors:
                return

            async def event() -> None:
                await self.carry_out(self.controller.on_stop_replica_response(broker, errors))

            self.cluster.put(f"TopicDeletionStopReplicaResponseReceived({broker})", event)

        return on_response

    async def shutdown(self) -> None:
        """Resign: no more events run, the channels close (queued requests are dropped)."""
        self.active = False
        if self._rebalance_timer is not None:
            self._rebalance_timer.cancel()
        for future in list(self._waiting):
            self._not_controller(future)
        with contextlib.suppress(Exception):
            await self.channels.shutdown()
