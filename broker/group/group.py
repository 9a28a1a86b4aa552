"""A classic consumer group: members, generation, protocol, state, and its committed offsets.

This is the data and its invariants (Kafka's ``GroupMetadata``); the protocol that drives it
(joins, syncs, timers, persistence) is :mod:`broker.group.coordinator`. Not thread-safe: the
coordinator runs on the event loop.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from broker.group.member import JoinCallback, JoinMember, JoinResult, Member, Protocols, SyncResult
from broker.group.records import OffsetAndMetadata
from broker.group.state import GroupState, IllegalTransition, can_transition
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.group.timers import TimerHandle

log = logging.getLogger(__name__)

CONSUMER_PROTOCOL_TYPE = "consumer"
TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """An offset in the cache with the log offset of the batch that wrote it (None: pending)."""

    record_offset: int | None
    value: OffsetAndMetadata


@dataclass(frozen=True, slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberSummary]


class ClassicGroup:
    def __init__(self, group_id: str, state: GroupState, now_ms: int) -> None:
        self.group_id = group_id
        self.state = state
        self.state_timestamp: int | None = now_ms
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.generation_id = 0
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        self.pending_members: set[str] = set()
        self.pending_sync_members: set[str] = set()
        self.offsets: dict[TopicPartitionKey, CommittedOffset] = {}
        self.pending_offset_commits: dict[TopicPartitionKey, OffsetAndMetadata] = {}
        #: Transactional offset commits by producer id, visible only after a COMMIT marker
        #: (record_offset None: the batch is not appended yet).
        self.pending_txn_offset_commits: dict[int, dict[TopicPartitionKey, CommittedOffset]] = {}
        self.subscribed_topics: set[str] | None = None
        #: A member joined during the initial rebalance delay (the delay may be extended).
        self.new_member_added = False
        self.join_timer: TimerHandle | None = None
        self.join_timer_initial = False
        self.sync_timer: TimerHandle | None = None

    # -- queries ----------------------------------------------------------------------------------

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def get(self, member_id: str) -> Member:
        return self.members[member_id]

    @property
    def size(self) -> int:
        return len(self.members)

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    @property
    def is_consumer_group(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    @property
    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.is_awaiting_join)

    def has_all_members_joined(self) -> bool:
        return self.num_awaiting_join == len(self.members) and not self.pending_members

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.is_awaiting_join]

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def static_member_id(self, instance_id: str) -> str | None:
        return self.static_members.get(instance_id)

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_members

    def can_rebalance(self) -> bool:
        return can_transition(self.state, GroupState.PREPARING_REBALANCE)

    def in_states(self, lowered: set[str]) -> bool:
        return self.state.lower in lowered

    # -- protocols --------------------------------------------------------------------------------

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        members = iter(self.members.values())
        first = next(members, None)
        if first is None:
            return set()
        common = first.protocol_names
        for member in members:
            common &= member.protocol_names
        return common

    def supports_protocols(self, protocol_type: str, protocols: set[str]) -> bool:
        """Kafka's supportsProtocols: some protocol of the member is supported by every current
        member. A rebalancing group whose members all left (the initial delay keeps it in
        PreparingRebalance) has none, so any protocol of its type is."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocols)
        if self.protocol_type != protocol_type:
            return False
        return bool(protocols) and (not self.members or bool(protocols & self.candidate_protocols()))

    def select_protocol(self) -> str:
        """The common protocol most members prefer (ties: the first one voted for)."""
        if not self.members:
            raise IllegalTransition("cannot select a protocol for an empty group")
        candidates = self.candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = member.vote(candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(votes.items(), key=lambda kv: kv[1])[0]

    def compute_subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to, from the consumer protocol's metadata (read as its
        version-0 prefix, as Kafka does); None when they cannot be known."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        try:
            for member in self.members.values():
                data = memoryview(member.metadata(self.protocol_name))
                struct.unpack_from(">h", data, 0)
                subscription, _ = ConsumerProtocolSubscription.decode_from(data, 0, 2)
                topics.update(subscription.topics)
        except Exception as exc:  # malformed metadata from some client: unknown subscription
            log.warning("cannot parse the consumer protocol metadata of group %s: %s", self.group_id, exc)
            return None
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        return self.subscribed_topics is None or topic in self.subscribed_topics

    # -- membership -------------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise IllegalTransition(f"static member {member.group_instance_id} is already in the group")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.pending_members.discard(member.member_id)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            member.cancel_timer()
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_members.discard(member_id)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(
        self,
        member: Member,
        protocols: Protocols,
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        callback: JoinCallback | None,
    ) -> None:
        member.protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.awaiting_join = callback

    def replace_static_member(self, instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """Give a static member a new member id, fencing whoever still waits under the old one."""
        member = self.members.pop(old_member_id)
        self.maybe_invoke_join(member, JoinResult(old_member_id, ErrorCode.FENCED_INSTANCE_ID))
        self.maybe_invoke_sync(member, SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[instance_id] = new_member_id
        return member

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else pick a member that did; False when none did."""
        if self.leader_id is None:
            return False
        leader = self.members.get(self.leader_id)
        if leader is not None and leader.is_awaiting_join:
            return True
        for member_id, member in self.members.items():
            if member.is_awaiting_join:
                log.info(
                    "group %s: leader %s did not rejoin in time; %s leads now",
                    self.group_id,
                    self.leader_id,
                    member_id,
                )
                self.leader_id = member_id
                return True
        return False

    def generate_member_id(self, client_id: str, instance_id: str | None) -> str:
        return f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"

    def maybe_invoke_join(self, member: Member, result: JoinResult) -> None:
        callback = member.awaiting_join
        if callback is not None:
            member.awaiting_join = None
            callback(result)

    def maybe_invoke_sync(self, member: Member, result: SyncResult) -> bool:
        callback = member.awaiting_sync
        if callback is None:
            return False
        member.awaiting_sync = None
        callback(result)
        return True

    # -- state --------------------------------------------------------------------------------------

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        if not can_transition(self.state, target):
            raise IllegalTransition(
                f"group {self.group_id}: {self.state.value} -> {target.value} is not allowed"
            )
        self.state = target
        self.state_timestamp = now_ms

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def current_member_metadata(self) -> list[JoinMember]:
        assert self.protocol_name is not None
        return [
            JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        ]

    def summary(self) -> GroupSummary:
        if self.state is GroupState.STABLE and self.protocol_name is not None:
            protocol = self.protocol_name
            members = [
                MemberSummary(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.metadata(protocol),
                    m.assignment,
                )
                for m in self.members.values()
            ]
            return GroupSummary(self.state.value, self.protocol_type or "", protocol, members)
        members = [
            MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host, b"", b"")
            for m in self.members.values()
        ]
        return GroupSummary(self.state.value, self.protocol_type or "", "", members)

    # -- offsets ------------------------------------------------------------------------------------

    def offset(self, tp: TopicPartitionKey) -> OffsetAndMetadata | None:
        entry = self.offsets.get(tp)
        return entry.value if entry is not None else None

    def has_offsets(self) -> bool:
        return (
            bool(self.offsets) or bool(self.pending_offset_commits) or bool(self.pending_txn_offset_commits)
        )

    def has_pending_offset_commits_for(self, tp: TopicPartitionKey) -> bool:
        """A plain commit in flight, or a transactional one not yet ended by its marker
        (OffsetFetch's ``require_stable`` answers UNSTABLE_OFFSET_COMMIT for it)."""
        return tp in self.pending_offset_commits or any(
            tp in pending for pending in self.pending_txn_offset_commits.values()
        )

    def prepare_offset_commit(self, offsets: dict[TopicPartitionKey, OffsetAndMetadata]) -> None:
        self.pending_offset_commits.update(offsets)

    def on_offset_commit_appended(self, tp: TopicPartitionKey, committed: CommittedOffset) -> None:
        """A commit is durable: cache it unless a later write already is (Kafka keeps the one from
        the later batch), and clear the pending entry it satisfied."""
        pending = self.pending_offset_commits.get(tp)
        if pending is not None:
            current = self.offsets.get(tp)
            if (
                current is None
                or current.record_offset is None
                or (committed.record_offset is not None and current.record_offset < committed.record_offset)
            ):
                self.offsets[tp] = committed
            if pending == committed.value:
                del self.pending_offset_commits[tp]

    def fail_pending_offset_write(self, tp: TopicPartitionKey, value: OffsetAndMetadata) -> None:
        if self.pending_offset_commits.get(tp) == value:
            del self.pending_offset_commits[tp]

    # -- transactional offsets (Kafka's GroupMetadata, KIP-98) ---------------------------------------

    @property
    def active_producers(self) -> set[int]:
        return set(self.pending_txn_offset_commits)

    def has_pending_offset_commits_from(self, producer_id: int) -> bool:
        return producer_id in self.pending_txn_offset_commits

    def prepare_txn_offset_commit(
        self, producer_id: int, offsets: Mapping[TopicPartitionKey, OffsetAndMetadata]
    ) -> None:
        """Stage a transactional commit before its batch is written (no log offset yet)."""
        staged = self.pending_txn_offset_commits.setdefault(producer_id, {})
        for tp, value in offsets.items():
            staged[tp] = CommittedOffset(None, value)

    def on_txn_offset_commit_appended(
        self, producer_id: int, tp: TopicPartitionKey, committed: CommittedOffset
    ) -> None:
        """The transactional batch is durable: remember where it is, so that the marker can order
        it against plain commits (unless a later commit of that producer replaced it meanwhile)."""
        staged = self.pending_txn_offset_commits.get(producer_id)
        if staged is not None and tp in staged and staged[tp].value == committed.value:
            staged[tp] = committed

    def fail_pending_txn_offset_commit(self, producer_id: int, tp: TopicPartitionKey) -> None:
        """The batch was not written: forget the staged offset (the client retries)."""
        staged = self.pending_txn_offset_commits.get(producer_id)
        if staged is None:
            return
        staged.pop(tp, None)
        if not staged:
            del self.pending_txn_offset_commits[producer_id]

    def complete_pending_txn_offset_commit(self, producer_id: int, committed: bool) -> None:
        """The producer's marker is written: on COMMIT its offsets become visible, unless the
        cache holds a commit from a later batch; on ABORT they are dropped."""
        staged = self.pending_txn_offset_commits.pop(producer_id, None)
        if not committed or staged is None:
            return
        for tp, entry in staged.items():
            if entry.record_offset is None:
                # Kafka throws: a client ends its transaction only once the commit was
                # answered. Skip the offset rather than fail the marker's write.
                log.warning(
                    "group %s: producer %d's offset for %s-%d ended before its append",
                    self.group_id,
                    producer_id,
                    *tp,
                )
                continue
            current = self.offsets.get(tp)
            if (
                current is None
                or current.record_offset is None
                or current.record_offset < entry.record_offset
            ):
                self.offsets[tp] = entry

    def remove_offsets(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, OffsetAndMetadata]:
        removed: dict[TopicPartitionKey, OffsetAndMetadata] = {}
        for tp in tps:
            self.pending_offset_commits.pop(tp, None)
            for staged in self.pending_txn_offset_commits.values():
                staged.pop(tp, None)
            entry = self.offsets.pop(tp, None)
            if entry is not None:
                removed[tp] = entry.value
        return removed

    def remove_all_offsets(self) -> dict[TopicPartitionKey, OffsetAndMetadata]:
        return self.remove_offsets(list(self.offsets))

    def remove_expired_offsets(
        self, now_ms: int, retention_ms: int
    ) -> dict[TopicPartitionKey, OffsetAndMetadata]:
        """Kafka's expiration rules: in an Empty group, offsets expire ``retention_ms`` after the
        group became empty; in a Stable consumer group, offsets of topics nobody subscribes to
        expire ``retention_ms`` after their commit; offsets of a group without a protocol (only
        storing offsets) expire after their commit. An explicit expire timestamp (OffsetCommit
        v2-v4) wins over all of these."""

        def expired(
            base_of: Callable[[OffsetAndMetadata], int], exempt: set[str]
        ) -> dict[TopicPartitionKey, OffsetAndMetadata]:
            found: dict[TopicPartitionKey, OffsetAndMetadata] = {}
            for tp, entry in self.offsets.items():
                if tp[0] in exempt or tp in self.pending_offset_commits:
                    continue
                value = entry.value
                if value.expire_timestamp is not None:
                    gone = now_ms >= value.expire_timestamp
                else:
                    base = base_of(value)
                    gone = now_ms - base >= retention_ms
                if gone:
                    found[tp] = value
            return found

        if self.protocol_type is not None and self.state is GroupState.EMPTY:
            state_ts = self.state_timestamp
            result = expired(lambda v: state_ts if state_ts is not None else v.commit_timestamp, set())
        elif (
            self.protocol_type == CONSUMER_PROTOCOL_TYPE
            and self.subscribed_topics is not None
            and self.state is GroupState.STABLE
        ):
            result = expired(lambda v: v.commit_timestamp, self.subscribed_topics)
        elif self.protocol_type is None:
            result = expired(lambda v: v.commit_timestamp, set())
        else:
            result = {}
        for tp in result:
            del self.offsets[tp]
        return result

    def __repr__(self) -> str:
        return (
            f"ClassicGroup({self.group_id!r}, generation={self.generation_id}, state={self.state.value}, "
            f"protocol_type={self.protocol_type!r}, members={list(self.members)})"
        )
