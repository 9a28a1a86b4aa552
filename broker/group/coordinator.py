"""The classic group protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup with Kafka's
state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead) and its timers.

Behaviour follows Kafka 3.9's classic coordinator (``kafka.coordinator.group.GroupCoordinator``):

* a member joining with no member id gets one; from JoinGroup v4 on a dynamic member must
  first come back with it (MEMBER_ID_REQUIRED), a static member (``group.instance.id``) never;
* a join moves the group to PreparingRebalance; the join phase ends when every known member has
  rejoined, or after the largest rebalance timeout, when the dynamic members that did not
  rejoin are dropped; an Empty group first waits ``group.initial.rebalance.delay.ms``, extended
  while new members keep arriving (up to the rebalance timeout);
* the protocol is the one the most members prefer among those all of them support; the first
  member to join leads and receives everyone's metadata; the leader's SyncGroup assignment is
  written to ``__consumer_offsets`` and, once durable, handed to every member (Stable);
* members that never send their SyncGroup within the rebalance timeout are removed;
* each member's session timeout runs from its last sign of life (heartbeat, sync, commit); when
  it expires the member is removed and the group rebalances;
* a static member that comes back with the same ``group.instance.id`` takes over its old
  member's place and assignment: in a Stable group this is persisted and the others do not
  rebalance; an old instance still using the previous member id is fenced (FENCED_INSTANCE_ID).

Every operation runs synchronously on the event loop; only the waits (a join for the others,
a sync for the leader, a write for durability) return futures. Timers come from an injectable
:class:`~broker.group.timers.Scheduler`.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from broker.group import OFFSETS_TOPIC
from broker.group.config import NEW_MEMBER_JOIN_TIMEOUT_MS, GroupConfig
from broker.group.group import ClassicGroup
from broker.group.member import JoinCallback, JoinResult, Member, Protocols, SyncResult
from broker.group.records import group_metadata_key, group_metadata_value
from broker.group.state import GroupState
from broker.group.store import OffsetsTopic, group_write_error
from broker.group.timers import LoopScheduler, Scheduler, TimerHandle
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.group_metadata_value import GroupMetadataValue, MemberMetadata
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.group.admin import GroupAdmin
    from broker.group.offsets import OffsetManager

log = logging.getLogger(__name__)

E = ErrorCode
S = GroupState


class Api(enum.Enum):
    """The apis whose group id rules differ (Kafka's isValidGroupId)."""

    JOIN_GROUP = "JoinGroup"
    SYNC_GROUP = "SyncGroup"
    HEARTBEAT = "Heartbeat"
    LEAVE_GROUP = "LeaveGroup"
    OFFSET_COMMIT = "OffsetCommit"
    OFFSET_FETCH = "OffsetFetch"
    DESCRIBE_GROUPS = "DescribeGroups"
    DELETE_GROUPS = "DeleteGroups"
    OFFSET_DELETE = "OffsetDelete"
    TXN_OFFSET_COMMIT = "TxnOffsetCommit"


#: Apis that accept the empty group id (offset storage only, and describing/deleting it).
_EMPTY_ID_ALLOWED = {Api.OFFSET_COMMIT, Api.OFFSET_FETCH, Api.DESCRIBE_GROUPS, Api.DELETE_GROUPS}


@dataclass(frozen=True, slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    require_known_member_id: bool
    support_skip_assignment: bool
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LeavingMember:
    member_id: str
    group_instance_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveResult:
    member_id: str
    group_instance_id: str | None
    error: ErrorCode


class GroupCoordinator:
    """All classic groups whose ``__consumer_offsets`` partition this broker leads."""

    def __init__(
        self,
        broker: Broker,
        *,
        config: GroupConfig | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.broker = broker
        self.config = config or GroupConfig.from_broker(broker.config)
        self.scheduler: Scheduler = scheduler or LoopScheduler(broker.clock)
        self.clock = self.scheduler.clock
        self.store = OffsetsTopic(
            broker, self.config, self.clock, self._on_group_loaded, self._on_group_unloaded
        )
        self.active = False
        self._hears_markers = False
        self._background: set[asyncio.Task[Any]] = set()
        self._expiry_timer: TimerHandle | None = None
        # Imported here: both modules build on this one.
        from broker.group.offsets import OffsetManager

        self.offsets: OffsetManager = OffsetManager(self)

    @functools.cached_property
    def admin(self) -> GroupAdmin:
        """Describe/List/DeleteGroups, built at their first request: a start does not need
        the module (a few ms of the first start of a process)."""
        from broker.group.admin import GroupAdmin

        return GroupAdmin(self)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the partitions this broker leads, listen for transaction markers and start the
        offset expiration timer."""
        self.active = True
        if not self._hears_markers:
            self._hears_markers = True
            self.broker.replica_manager.add_txn_marker_listener(self.on_txn_marker)
            self.store.on_marker_after_load = self.offsets.complete_txn
        self.store.start()
        self._schedule_expiry()

    def on_txn_marker(
        self, tp: TopicPartition, producer_id: int, producer_epoch: int, committed: bool, marker_offset: int
    ) -> None:
        """A replica manager listener: a COMMIT/ABORT marker was written (durably) on a partition
        this broker leads. On ``__consumer_offsets`` it ends the producer's pending offsets in
        that partition's groups; a partition still loading applies it after its replay."""
        if tp.topic != OFFSETS_TOPIC or not self.active:
            return
        index = tp.partition
        if self.store.note_marker_while_loading(index, producer_id, committed, marker_offset):
            return
        log.debug(
            "%s marker of producer %d (epoch %d) at %s-%d",
            "COMMIT" if committed else "ABORT",
            producer_id,
            producer_epoch,
            tp.topic,
            index,
        )
        self.offsets.complete_txn(index, producer_id, committed)

    async def stop(self) -> None:
        self.active = False
        self.store.stop()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        for group in self.store.groups.values():
            self._cancel_group_timers(group)
        if self._background:
            await asyncio.wait(list(self._background), timeout=1.0)

    def _schedule_expiry(self) -> None:
        interval = self.config.retention_check_interval_ms
        if interval <= 0:
            return

        def fire() -> None:
            self._expiry_timer = None
            if not self.active:
                return
            try:
                self.offsets.expire_offsets()
            finally:
                self._schedule_expiry()

        self._expiry_timer = self.scheduler.call_at(self.now() + interval, fire)

    def now(self) -> int:
        return self.clock.milliseconds()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a continuation (a write's completion) in the background, keeping a reference."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("group coordinator task failed", exc_info=t.exception())

        task.add_done_callback(done)

    @property
    def groups(self) -> dict[str, ClassicGroup]:
        return self.store.groups

    # -- checks -------------------------------------------------------------------------------------

    def validate_group_status(self, group_id: str | None, api: Api) -> ErrorCode | None:
        """Kafka's validateGroupStatus: a usable group id, an active coordinator, the group's
        partition loaded and led here."""
        if group_id is None or (not group_id and api not in _EMPTY_ID_ALLOWED):
            return E.INVALID_GROUP_ID
        if not self.active:
            return E.COORDINATOR_NOT_AVAILABLE
        if self.store.is_loading(group_id):
            return E.COORDINATOR_LOAD_IN_PROGRESS
        if not self.store.is_local(group_id):
            return E.NOT_COORDINATOR
        return None

    def group_not_exists(self, group_id: str) -> bool:
        group = self.store.get(group_id)
        return self.store.is_local(group_id) and (group is None or group.state is S.DEAD)

    @staticmethod
    def _validate_current_member(
        group: ClassicGroup, member_id: str, instance_id: str | None
    ) -> ErrorCode | None:
        if instance_id is not None:
            current = group.static_member_id(instance_id)
            if current is None:
                return E.UNKNOWN_MEMBER_ID
            if current != member_id:
                log.info(
                    "group %s: member %s of static instance %s is fenced by %s",
                    group.group_id,
                    member_id,
                    instance_id,
                    current,
                )
                return E.FENCED_INSTANCE_ID
        if not group.has(member_id):
            return E.UNKNOWN_MEMBER_ID
        return None

    # -- JoinGroup ----------------------------------------------------------------------------------

    def join_group(self, req: JoinRequest) -> asyncio.Future[JoinResult]:
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()

        def respond(result: JoinResult) -> None:
            if not future.done():
                future.set_result(result)

        error = self.validate_group_status(req.group_id, Api.JOIN_GROUP)
        if error is not None:
            respond(JoinResult(req.member_id, error))
            return future
        cfg = self.config
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            respond(JoinResult(req.member_id, E.INVALID_SESSION_TIMEOUT))
            return future
        unknown = req.member_id == ""
        group = self.store.get(req.group_id)
        if group is None:
            if not unknown:
                respond(JoinResult(req.member_id, E.UNKNOWN_MEMBER_ID))
                return future
            group = self.store.add(ClassicGroup(req.group_id, S.EMPTY, self.now()))
        if not self._accept_joining_member(group, req.member_id):
            group.remove(req.member_id)
            respond(JoinResult("", E.GROUP_MAX_SIZE_REACHED))
        elif unknown:
            self._new_member_join(group, req, respond)
        else:
            self._current_member_join(group, req, respond)
        if group.state is S.PREPARING_REBALANCE:
            self._try_complete_join(group)
        return future

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        state = group.state
        if state in (S.EMPTY, S.DEAD):
            return True
        if state is S.PREPARING_REBALANCE:
            return (
                group.has(member_id) and group.get(member_id).is_awaiting_join
            ) or group.num_awaiting_join < self.config.max_size
        return group.has(member_id) or group.size < self.config.max_size

    def _new_member_join(self, group: ClassicGroup, req: JoinRequest, respond: JoinCallback) -> None:
        if group.state is S.DEAD:
            respond(JoinResult("", E.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(req.protocol_type, {name for name, _ in req.protocols}):
            respond(JoinResult("", E.INCONSISTENT_GROUP_PROTOCOL))
            return
        new_id = group.generate_member_id(req.client_id, req.group_instance_id)
        instance_id = req.group_instance_id
        if instance_id is not None:
            old_id = group.static_member_id(instance_id)
            if old_id is not None:
                log.info(
                    "group %s: static instance %s rejoins in state %s; member %s replaces %s",
                    group.group_id,
                    instance_id,
                    group.state.value,
                    new_id,
                    old_id,
                )
                self._update_static_member_and_rebalance(group, old_id, new_id, instance_id, req, respond)
            else:
                self._add_member_and_rebalance(group, req, new_id, respond)
        elif req.require_known_member_id:
            group.pending_members.add(new_id)
            self._schedule_pending_expiration(group, new_id, req.session_timeout_ms)
            respond(JoinResult(new_id, E.MEMBER_ID_REQUIRED))
        else:
            self._add_member_and_rebalance(group, req, new_id, respond)

    def _current_member_join(self, group: ClassicGroup, req: JoinRequest, respond: JoinCallback) -> None:
        member_id = req.member_id
        if group.state is S.DEAD:
            respond(JoinResult(member_id, E.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(req.protocol_type, {name for name, _ in req.protocols}):
            respond(JoinResult(member_id, E.INCONSISTENT_GROUP_PROTOCOL))
            return
        if group.is_pending_member(member_id):
            if req.group_instance_id is not None:
                # A pending member id was handed to a dynamic member; a static one cannot use it.
                respond(JoinResult(member_id, E.UNKNOWN_SERVER_ERROR))
                return
            self._add_member_and_rebalance(group, req, member_id, respond)
            return
        error = self._validate_current_member(group, member_id, req.group_instance_id)
        if error is not None:
            respond(JoinResult(member_id, error))
            return
        member = group.get(member_id)
        state = group.state
        if state is S.PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, req, respond)
        elif state is S.COMPLETING_REBALANCE:
            if member.matches(req.protocols):
                # The member lost our JoinGroup answer: send this generation's again.
                respond(self._join_answer(group, member_id, with_members=group.is_leader(member_id)))
            else:
                self._update_member_and_rebalance(group, member, req, respond)
        elif state is S.STABLE:
            if group.is_leader(member_id) or not member.matches(req.protocols):
                # A leader's rejoin forces a rebalance (e.g. its topics' metadata changed).
                self._update_member_and_rebalance(group, member, req, respond)
            else:
                respond(self._join_answer(group, member_id, with_members=False))
        else:
            log.warning("group %s: member %s rejoins in state %s", group.group_id, member_id, state.value)
            respond(JoinResult(member_id, E.UNKNOWN_MEMBER_ID))

    def _join_answer(
        self, group: ClassicGroup, member_id: str, *, with_members: bool, skip: bool = False
    ) -> JoinResult:
        return JoinResult(
            member_id=member_id,
            error=E.NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader_id=group.leader_id or "",
            skip_assignment=skip,
            members=group.current_member_metadata() if with_members else (),
        )

    def _add_member_and_rebalance(
        self, group: ClassicGroup, req: JoinRequest, member_id: str, respond: JoinCallback
    ) -> None:
        member = Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=list(req.protocols),
            awaiting_join=respond,
            is_new=True,
        )
        if group.state is S.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True
        group.add(member)
        # A new member cannot heartbeat before its join completes; a client that gave up and
        # retried would leave a stale member behind, so new members get a join timeout instead.
        self._schedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group, f"adding new member {member_id}")

    def _update_member_and_rebalance(
        self, group: ClassicGroup, member: Member, req: JoinRequest, respond: JoinCallback
    ) -> None:
        group.update_member(
            member, list(req.protocols), req.rebalance_timeout_ms, req.session_timeout_ms, respond
        )
        self._maybe_prepare_rebalance(group, f"member {member.member_id} rejoins")

    def _update_static_member_and_rebalance(
        self,
        group: ClassicGroup,
        old_id: str,
        new_id: str,
        instance_id: str,
        req: JoinRequest,
        respond: JoinCallback,
    ) -> None:
        current_leader = group.leader_id
        member = group.replace_static_member(instance_id, old_id, new_id)
        self._schedule_heartbeat(group, member)
        old = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
        group.update_member(
            member, list(req.protocols), req.rebalance_timeout_ms, req.session_timeout_ms, respond
        )
        state = group.state
        if state is S.STABLE:
            if group.protocol_name == group.select_protocol():
                assignment = {m.member_id: m.assignment for m in group.members.values()}
                written = self._store_group(group, assignment)

                async def finish() -> None:
                    error = await written
                    if error != E.NONE:
                        log.warning(
                            "group %s: cannot persist static member %s: %s", group.group_id, new_id, error
                        )
                        group.update_member(member, old[0], old[1], old[2], None)
                        restored = group.replace_static_member(instance_id, new_id, old_id)
                        self._schedule_heartbeat(group, restored)
                        respond(
                            JoinResult(
                                "",
                                error,
                                group.generation_id,
                                group.protocol_type,
                                group.protocol_name,
                                current_leader or "",
                            )
                        )
                    elif req.support_skip_assignment:
                        is_leader = group.is_leader(new_id)
                        group.maybe_invoke_join(
                            member, self._join_answer(group, new_id, with_members=is_leader, skip=is_leader)
                        )
                    else:
                        # Before v9 the old leader id is returned, so that a restarted leader does
                        # not compute an assignment a Stable group would not hand out.
                        answer = self._join_answer(group, new_id, with_members=False)
                        answer.leader_id = current_leader or ""
                        group.maybe_invoke_join(member, answer)

                self.spawn(finish())
            else:
                self._maybe_prepare_rebalance(group, f"static member {instance_id} changes the protocol")
        elif state is S.COMPLETING_REBALANCE:
            # The leader may already have assigned to the old member id: start over.
            self._prepare_rebalance(group, f"static member {instance_id} rejoins during CompletingRebalance")

    # -- rebalances ---------------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state is S.COMPLETING_REBALANCE:
            self._reset_and_propagate_assignment_error(group, E.REBALANCE_IN_PROGRESS)
        self._remove_sync_expiration(group)
        self._cancel_join_timer(group)
        initial = group.state is S.EMPTY
        log.info(
            "preparing to rebalance group %s in state %s with old generation %d (%s-%d) (reason: %s)",
            group.group_id,
            group.state.value,
            group.generation_id,
            OFFSETS_TOPIC,
            self.store.partition_for(group.group_id),
            reason,
        )
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms - delay, 0)
            group.transition_to(S.PREPARING_REBALANCE, self.now())
            self._schedule_join(group, delay, initial=True, remaining=remaining)
        else:
            timeout = group.rebalance_timeout_ms
            group.transition_to(S.PREPARING_REBALANCE, self.now())
            self._schedule_join(group, timeout, initial=False, remaining=0)
            self._try_complete_join(group)

    def _schedule_join(self, group: ClassicGroup, delay_ms: int, *, initial: bool, remaining: int) -> None:
        group.join_timer_initial = initial
        group.join_timer = self.scheduler.call_at(
            self.now() + delay_ms, lambda: self._join_expired(group, delay_ms, initial, remaining)
        )

    def _cancel_join_timer(self, group: ClassicGroup) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None

    def _join_expired(self, group: ClassicGroup, delay_ms: int, initial: bool, remaining: int) -> None:
        group.join_timer = None
        if initial and group.new_member_added and remaining != 0:
            # Members are still arriving at a new group: wait a little longer for the rest.
            group.new_member_added = False
            next_delay = min(self.config.initial_rebalance_delay_ms, remaining)
            self._schedule_join(group, next_delay, initial=True, remaining=max(remaining - delay_ms, 0))
            return
        self._complete_join(group)

    def _try_complete_join(self, group: ClassicGroup) -> None:
        if group.join_timer is not None and not group.join_timer_initial and group.has_all_members_joined():
            self._cancel_join_timer(group)
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        """The join phase is over: drop dynamic members that did not rejoin, start the next
        generation and answer every waiting JoinGroup (the leader with everyone's metadata)."""
        gone = [m for m in group.not_yet_rejoined() if not m.is_static]
        if gone:
            log.info(
                "group %s removed dynamic members who did not rejoin: %s",
                group.group_id,
                [m.member_id for m in gone],
            )
            for member in gone:
                group.remove(member.member_id)
        if group.state is S.DEAD:
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            log.error("group %s could not complete its rebalance: no member rejoined", group.group_id)
            self._schedule_join(group, group.rebalance_timeout_ms, initial=False, remaining=0)
            self._try_complete_join(group)
            return
        group.init_next_generation(self.now())
        if group.state is S.EMPTY:
            log.info("group %s with generation %d is now empty", group.group_id, group.generation_id)
            written = self._store_group(group, {})

            async def warn_on_failure() -> None:
                error = await written
                if error != E.NONE:
                    log.warning("cannot write the empty metadata of group %s: %s", group.group_id, error)

            self.spawn(warn_on_failure())
            return
        log.info(
            "stabilized group %s generation %d (%s-%d) with %d members",
            group.group_id,
            group.generation_id,
            OFFSETS_TOPIC,
            self.store.partition_for(group.group_id),
            group.size,
        )
        for member in list(group.members.values()):
            group.maybe_invoke_join(
                member,
                self._join_answer(group, member.member_id, with_members=group.is_leader(member.member_id)),
            )
            self._schedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        self._schedule_pending_sync(group)

    # -- SyncGroup ----------------------------------------------------------------------------------

    def sync_group(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        protocol_type: str | None,
        protocol_name: str | None,
        instance_id: str | None,
        assignments: Mapping[str, bytes],
    ) -> asyncio.Future[SyncResult]:
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()

        def respond(result: SyncResult) -> None:
            if not future.done():
                future.set_result(result)

        error = self.validate_group_status(group_id, Api.SYNC_GROUP)
        if error == E.COORDINATOR_LOAD_IN_PROGRESS:
            # The rebalance's state is lost with the reload: make the member rejoin.
            respond(SyncResult(E.REBALANCE_IN_PROGRESS))
            return future
        if error is not None:
            respond(SyncResult(error))
            return future
        group = self.store.get(group_id)
        if group is None:
            respond(SyncResult(E.UNKNOWN_MEMBER_ID))
            return future
        if group.state is S.DEAD:
            error = E.COORDINATOR_NOT_AVAILABLE
        else:
            error = self._validate_current_member(group, member_id, instance_id)
            if error is None:
                if generation_id != group.generation_id:
                    error = E.ILLEGAL_GENERATION
                elif (protocol_type is not None and protocol_type != group.protocol_type) or (
                    protocol_name is not None and protocol_name != group.protocol_name
                ):
                    error = E.INCONSISTENT_GROUP_PROTOCOL
        if error is not None:
            respond(SyncResult(error))
            return future
        state = group.state
        if state is S.EMPTY:
            respond(SyncResult(E.UNKNOWN_MEMBER_ID))
        elif state is S.PREPARING_REBALANCE:
            respond(SyncResult(E.REBALANCE_IN_PROGRESS))
        elif state is S.COMPLETING_REBALANCE:
            member = group.get(member_id)
            member.awaiting_sync = respond
            self._remove_pending_sync_member(group, member_id)
            if group.is_leader(member_id):
                self._complete_sync(group, generation_id, member_id, assignments)
        else:  # Stable: hand out the current assignment again
            self._remove_pending_sync_member(group, member_id)
            member = group.get(member_id)
            respond(SyncResult(E.NONE, group.protocol_type, group.protocol_name, member.assignment))
            self._schedule_heartbeat(group, member)
        return future

    def _complete_sync(
        self, group: ClassicGroup, generation_id: int, leader_id: str, assignments: Mapping[str, bytes]
    ) -> None:
        log.info(
            "assignment received from leader %s for group %s for generation %d; the group has %d members, "
            "%d of them static",
            leader_id,
            group.group_id,
            group.generation_id,
            group.size,
            len(group.static_members),
        )
        assignment = {member_id: bytes(assignments.get(member_id, b"")) for member_id in group.members}
        missing = [member_id for member_id in group.members if member_id not in assignments]
        if missing:
            log.warning("group %s: empty assignments for members %s", group.group_id, missing)
        written = self._store_group(group, assignment)

        async def finish() -> None:
            error = await written
            if group.state is not S.COMPLETING_REBALANCE or group.generation_id != generation_id:
                return
            if error != E.NONE:
                self._reset_and_propagate_assignment_error(group, error)
                self._maybe_prepare_rebalance(group, f"error {error.name} when storing the assignment")
            else:
                for member in group.members.values():
                    member.assignment = assignment.get(member.member_id, b"")
                self._propagate_assignment(group, E.NONE)
                group.transition_to(S.STABLE, self.now())

        self.spawn(finish())

    def _reset_and_propagate_assignment_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error == E.NONE
        for member in list(group.members.values()):
            result = SyncResult(
                error,
                group.protocol_type if ok else None,
                group.protocol_name if ok else None,
                member.assignment,
            )
            if group.maybe_invoke_sync(member, result):
                # A member whose session expired while waiting was spared; its clock restarts now.
                self._schedule_heartbeat(group, member)

    def _schedule_pending_sync(self, group: ClassicGroup) -> None:
        if group.sync_timer is not None:
            group.sync_timer.cancel()
        generation = group.generation_id
        group.sync_timer = self.scheduler.call_at(
            self.now() + group.rebalance_timeout_ms, lambda: self._sync_expired(group, generation)
        )

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members and group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _sync_expired(self, group: ClassicGroup, generation: int) -> None:
        group.sync_timer = None
        if generation != group.generation_id:
            return
        if group.state in (S.COMPLETING_REBALANCE, S.STABLE) and group.pending_sync_members:
            laggards = list(group.pending_sync_members)
            for member_id in laggards:
                group.remove(member_id)
            log.info("group %s removed members who did not sync in time: %s", group.group_id, laggards)
            self._prepare_rebalance(group, f"removing {laggards} on pending sync expiration")

    # -- Heartbeat ----------------------------------------------------------------------------------

    def heartbeat(
        self, group_id: str, member_id: str, instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        error = self.validate_group_status(group_id, Api.HEARTBEAT)
        if error == E.COORDINATOR_LOAD_IN_PROGRESS:
            return E.NONE  # answered blindly, as Kafka does, until the group is back
        if error is not None:
            return error
        group = self.store.get(group_id)
        if group is None:
            return E.UNKNOWN_MEMBER_ID
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        error = self._validate_current_member(group, member_id, instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return E.ILLEGAL_GENERATION
        if group.state is S.EMPTY:
            return E.UNKNOWN_MEMBER_ID
        self._schedule_heartbeat(group, group.get(member_id))
        return E.REBALANCE_IN_PROGRESS if group.state is S.PREPARING_REBALANCE else E.NONE

    def _schedule_heartbeat(self, group: ClassicGroup, member: Member, timeout_ms: int | None = None) -> None:
        member.cancel_timer()
        member_id = member.member_id
        deadline = self.now() + (member.session_timeout_ms if timeout_ms is None else timeout_ms)
        member.heartbeat_timer = self.scheduler.call_at(
            deadline, lambda: self._heartbeat_expired(group, member_id, member)
        )

    def touch_member(self, group: ClassicGroup, member_id: str) -> None:
        """A sign of life other than a heartbeat (an offset commit) restarts the session."""
        member = group.members.get(member_id)
        if member is not None:
            self._schedule_heartbeat(group, member)

    def _heartbeat_expired(self, group: ClassicGroup, member_id: str, member: Member) -> None:
        member.heartbeat_timer = None
        if group.state is S.DEAD or group.members.get(member_id) is not member:
            return
        if not member.satisfied_heartbeat_at_expiry():
            log.info(
                "member %s in group %s has failed, removing it from the group", member_id, group.group_id
            )
            self._remove_member_and_update_group(
                group, member, f"removing member {member_id} on heartbeat expiration"
            )

    def _schedule_pending_expiration(self, group: ClassicGroup, member_id: str, timeout_ms: int) -> None:
        def expire() -> None:
            if group.state is not S.DEAD and member_id in group.pending_members:
                log.info("pending member %s in group %s expired", member_id, group.group_id)
                self._remove_pending_member_and_update_group(group, member_id)

        self.scheduler.call_at(self.now() + timeout_ms, expire)

    # -- LeaveGroup ---------------------------------------------------------------------------------

    def leave_group(self, group_id: str, leaving: list[LeavingMember]) -> tuple[ErrorCode, list[LeaveResult]]:
        error = self.validate_group_status(group_id, Api.LEAVE_GROUP)
        if error is not None:
            return error, []
        group = self.store.get(group_id)
        if group is None:
            return E.NONE, [
                LeaveResult(m.member_id, m.group_instance_id, E.UNKNOWN_MEMBER_ID) for m in leaving
            ]
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE, []
        results: list[LeaveResult] = []
        for leaver in leaving:
            member_id = leaver.member_id
            if member_id == "":
                # An administrator removes a static member by its instance id alone.
                current = (
                    group.static_member_id(leaver.group_instance_id) if leaver.group_instance_id else None
                )
                if current is None:
                    results.append(LeaveResult(member_id, leaver.group_instance_id, E.UNKNOWN_MEMBER_ID))
                    continue
                self._remove_leaving_member(group, current, leaver.reason)
                results.append(LeaveResult(member_id, leaver.group_instance_id, E.NONE))
            elif group.is_pending_member(member_id):
                self._remove_pending_member_and_update_group(group, member_id)
                results.append(LeaveResult(member_id, leaver.group_instance_id, E.NONE))
            else:
                error = self._validate_current_member(group, member_id, leaver.group_instance_id)
                if error is None:
                    self._remove_leaving_member(group, member_id, leaver.reason)
                results.append(LeaveResult(member_id, leaver.group_instance_id, error or E.NONE))
        return E.NONE, results

    def _remove_leaving_member(self, group: ClassicGroup, member_id: str, reason: str | None) -> None:
        member = group.get(member_id)
        log.info(
            "member %s has left group %s through LeaveGroup; client reason: %s",
            member_id,
            group.group_id,
            reason or "not provided",
        )
        self._remove_member_and_update_group(group, member, f"member {member_id} left")

    def _remove_member_and_update_group(self, group: ClassicGroup, member: Member, reason: str) -> None:
        # A new member may still wait in its join: answer it, so that the client retries.
        group.maybe_invoke_join(member, JoinResult("", E.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        state = group.state
        if state in (S.STABLE, S.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, reason)
        elif state is S.PREPARING_REBALANCE:
            self._try_complete_join(group)

    def _remove_pending_member_and_update_group(self, group: ClassicGroup, member_id: str) -> None:
        group.remove(member_id)
        if group.state is S.PREPARING_REBALANCE:
            self._try_complete_join(group)

    # -- persistence --------------------------------------------------------------------------------

    def _store_group(
        self, group: ClassicGroup, assignment: Mapping[str, bytes]
    ) -> Coroutine[Any, Any, ErrorCode]:
        """Write the group's metadata (with ``assignment``) now; the coroutine waits for it."""
        protocol = group.protocol_name
        members = []
        for member in group.members.values():
            if protocol is None:
                raise RuntimeError(f"group {group.group_id} has members but no protocol")
            members.append(
                MemberMetadata(
                    member_id=member.member_id,
                    group_instance_id=member.group_instance_id,
                    client_id=member.client_id,
                    client_host=member.client_host,
                    rebalance_timeout=member.rebalance_timeout_ms,
                    session_timeout=member.session_timeout_ms,
                    subscription=member.metadata(protocol),
                    assignment=assignment[member.member_id],
                )
            )
        value = GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=protocol,
            leader=group.leader_id,
            current_state_timestamp=group.state_timestamp if group.state_timestamp is not None else -1,
            members=members,
        )
        pending = self.store.append(
            group.group_id, [(group_metadata_key(group.group_id), group_metadata_value(value))]
        )

        async def wait() -> ErrorCode:
            result = await pending
            return group_write_error(result.error)

        return wait()

    # -- loading and unloading ----------------------------------------------------------------------

    def _on_group_loaded(self, group: ClassicGroup) -> None:
        log.info("loaded group %s with generation %d", group.group_id, group.generation_id)
        if group.size > self.config.max_size:
            self._prepare_rebalance(group, f"freshly loaded group is over capacity ({self.config.max_size})")
        for member in group.members.values():
            self._schedule_heartbeat(group, member)

    def _on_group_unloaded(self, group: ClassicGroup) -> None:
        log.info("unloading group %s with generation %d", group.group_id, group.generation_id)
        previous = group.state
        group.transition_to(S.DEAD, self.now())
        if previous is S.PREPARING_REBALANCE:
            for member in group.members.values():
                group.maybe_invoke_join(member, JoinResult(member.member_id, E.NOT_COORDINATOR))
        elif previous in (S.STABLE, S.COMPLETING_REBALANCE):
            for member in group.members.values():
                group.maybe_invoke_sync(member, SyncResult(E.NOT_COORDINATOR))
        self._cancel_group_timers(group)

    def _cancel_group_timers(self, group: ClassicGroup) -> None:
        self._cancel_join_timer(group)
        self._remove_sync_expiration(group)
        for member in group.members.values():
            member.cancel_timer()
