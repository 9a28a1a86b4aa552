"""A classic consumer-group member for ``brook console-consumer --group``: JoinGroup, the range
assignor when this member leads, SyncGroup, heartbeats between fetches, commits with the
generation, LeaveGroup at the end — so the console consumer shares a group's partitions as Kafka's
does, and shows in ``consumer-groups --describe`` as an active member."""

from __future__ import annotations

import struct
import time
from collections import defaultdict

from broker.cli.client import KafkaClient, KafkaError, NodeConnection, check_error
from broker.cli.offsets import TopicPartition, commit_offsets, decode_assignment
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from protocol.messages.consumer_protocol_assignment import TopicPartition as AssignedTopic
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment

PROTOCOL_TYPE = "consumer"
ASSIGNOR = "range"
SUBSCRIPTION_VERSION = 1
ASSIGNMENT_VERSION = 1
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_S = 3.0
#: Kafka's consumer sends JoinGroup with max.poll.interval.ms and waits that long plus 5 s.
REBALANCE_TIMEOUT_MS = 60_000
#: How long joining may take in all (Kafka's default.api.timeout.ms), and the backoff from a
#: coordinator that is not ready (retry.backoff.ms, doubling up to retry.backoff.max.ms).
JOIN_TIMEOUT_S = 60.0
RETRY_BACKOFF_S = 0.1
RETRY_BACKOFF_MAX_S = 1.0
#: LeaveGroup v3+ names the leaving members in a list, not in ``member_id``.
BATCHED_LEAVE_VERSION = 3
#: Errors after which the member joins again (with a new member id for UNKNOWN_MEMBER_ID).
REJOIN_ERRORS = {ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID}


def encode_subscription(topics: list[str]) -> bytes:
    body = ConsumerProtocolSubscription(topics=sorted(topics), user_data=None)
    return struct.pack(">h", SUBSCRIPTION_VERSION) + body.encode(SUBSCRIPTION_VERSION)


def decode_subscription(data: bytes) -> list[str]:
    if len(data) < 2:
        return []
    (version,) = struct.unpack_from(">h", data)
    try:
        return list(ConsumerProtocolSubscription.decode(memoryview(data)[2:], min(max(version, 0), 3)).topics)
    except Exception:  # a member of another protocol's bytes: it subscribes to nothing we assign
        return []


def encode_assignment(partitions: list[TopicPartition]) -> bytes:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for topic, partition in sorted(partitions):
        by_topic[topic].append(partition)
    body = ConsumerProtocolAssignment(
        assigned_partitions=[AssignedTopic(topic=t, partitions=ps) for t, ps in by_topic.items()],
        user_data=None,
    )
    return struct.pack(">h", ASSIGNMENT_VERSION) + body.encode(ASSIGNMENT_VERSION)


def range_assign(
    subscriptions: dict[str, list[str]], partitions: dict[str, int]
) -> dict[str, list[TopicPartition]]:
    """Kafka's RangeAssignor: per topic, its subscribers in member-id order each take a contiguous
    range, the first ``count % members`` one partition more."""
    result: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    for topic, count in sorted(partitions.items()):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        if not members:
            continue
        per, extra = divmod(count, len(members))
        for i, member in enumerate(members):
            start = i * per + min(i, extra)
            length = per + (1 if i < extra else 0)
            result[member] += [(topic, p) for p in range(start, start + length)]
    return result


class GroupMember:
    """One member of ``group`` subscribed to ``topics``."""

    def __init__(self, client: KafkaClient, group: str, topics: list[str]) -> None:
        self.client = client
        self.group = group
        self.topics = topics
        self.member_id = ""
        self.generation = -1
        self._coordinator: NodeConnection | None = None
        self._last_heartbeat = 0.0

    @property
    def coordinator(self) -> NodeConnection:
        if self._coordinator is None:
            _, self._coordinator = self.client.coordinator(self.group)
        return self._coordinator

    def join(self) -> list[TopicPartition]:
        """Join (or rejoin) the group; this member's assigned partitions. A rebalance is joined
        again at once; a coordinator that moved, is not available or is still loading the group
        (a new ``__consumer_offsets`` partition) is asked again after a backoff, as Kafka's
        consumer does, until ``JOIN_TIMEOUT_S``; then the last error is raised."""
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        backoff = RETRY_BACKOFF_S
        while True:
            try:
                return self._join_once()
            except KafkaError as exc:
                if exc.code == ErrorCode.UNKNOWN_MEMBER_ID:
                    self.member_id = ""
                elif exc.code in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE):
                    self._coordinator = None
                elif exc.code not in REJOIN_ERRORS and exc.code != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                    raise
                if time.monotonic() + backoff > deadline:
                    raise
                if exc.code not in REJOIN_ERRORS:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)

    def _join_once(self) -> list[TopicPartition]:
        request = JoinGroupRequest(
            group_id=self.group,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            member_id=self.member_id,
            protocol_type=PROTOCOL_TYPE,
            protocols=[JoinGroupRequestProtocol(ASSIGNOR, encode_subscription(self.topics))],
        )
        wait = REBALANCE_TIMEOUT_MS / 1000 + 5
        response = self.coordinator.call(request, timeout=wait)
        if response.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            request.member_id = self.member_id
            response = self.coordinator.call(request, timeout=wait)
        check_error(response.error_code, None, f"JoinGroup {self.group}")
        self.member_id = response.member_id
        self.generation = response.generation_id
        assignments: list[SyncGroupRequestAssignment] = []
        if response.leader == response.member_id:
            subscriptions = {m.member_id: decode_subscription(bytes(m.metadata)) for m in response.members}
            wanted = sorted({t for topics in subscriptions.values() for t in topics})
            counts: dict[str, int] = defaultdict(int)
            for topic, _partition in self.client.leaders(wanted):
                counts[topic] += 1
            plan = range_assign(subscriptions, dict(counts))
            assignments = [SyncGroupRequestAssignment(m, encode_assignment(tps)) for m, tps in plan.items()]
        sync = SyncGroupRequest(
            group_id=self.group,
            generation_id=self.generation,
            member_id=self.member_id,
            protocol_type=PROTOCOL_TYPE,
            protocol_name=ASSIGNOR,
            assignments=assignments,
        )
        synced = self.coordinator.call(sync, timeout=wait)
        check_error(synced.error_code, None, f"SyncGroup {self.group}")
        self._last_heartbeat = time.monotonic()
        return sorted(decode_assignment(bytes(synced.assignment)))

    def heartbeat_due(self) -> bool:
        """Send a heartbeat if one is due; True when the group is rebalancing (join again)."""
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_INTERVAL_S:
            return False
        request = HeartbeatRequest(
            group_id=self.group, generation_id=self.generation, member_id=self.member_id
        )
        response = self.coordinator.call(request)
        self._last_heartbeat = time.monotonic()
        if response.error_code in REJOIN_ERRORS:
            return True
        check_error(response.error_code, None, f"Heartbeat {self.group}")
        return False

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if offsets:
            commit_offsets(
                self.coordinator, self.group, offsets, generation=self.generation, member_id=self.member_id
            )

    def leave(self) -> None:
        if not self.member_id:
            return
        conn = self.coordinator
        version = conn.version_for(LeaveGroupRequest.API_KEY)
        if version is not None and version >= BATCHED_LEAVE_VERSION:
            identity = MemberIdentity(member_id=self.member_id, reason="the consumer is done")
            request = LeaveGroupRequest(group_id=self.group, members=[identity])
        else:
            request = LeaveGroupRequest(group_id=self.group, member_id=self.member_id)
        conn.call(request)
        self.member_id = ""
