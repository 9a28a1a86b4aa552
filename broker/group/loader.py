"""Rebuilding the coordinator's state by replaying one ``__consumer_offsets`` partition.

The log is read from its start to its end offset in chunks of ``offsets.load.buffer.size``;
every record is applied in order, so the last write of a key wins and a tombstone removes it
(Kafka's ``doLoadGroupsAndOffsets``). Offsets in transactional batches are held per producer
id until that producer's control batch: COMMIT applies them (unless a later batch already wrote
the key), ABORT drops them; those still open at the end stay pending in their groups, for a
marker written later to complete. The replay yields to the event loop every few milliseconds,
so a large partition never stalls the broker; meanwhile its groups answer
COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

import logging

from broker.coordinator.replay import replay_batches
from broker.group.group import ClassicGroup, CommittedOffset, TopicPartitionKey
from broker.group.member import Member
from broker.group.records import GroupKey, OffsetKey, read_group_value, read_key, read_offset_value
from broker.group.state import GroupState
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.records import COMMIT, decode_batch, parse_control_key
from storage import Log
from storage.fast_dataclass import dataclass, field

log = logging.getLogger(__name__)

GroupTopicPartition = tuple[str, str, int]


@dataclass(slots=True)
class Replayed:
    """What one partition holds once every record has been applied."""

    offsets: dict[GroupTopicPartition, CommittedOffset] = field(default_factory=dict)
    groups: dict[str, tuple[int, GroupMetadataValue]] = field(default_factory=dict)
    removed_groups: set[str] = field(default_factory=set)
    #: Transactional offsets without a marker yet, by producer id.
    pending_txn: dict[int, dict[GroupTopicPartition, CommittedOffset]] = field(default_factory=dict)
    #: The log end offset the replay read up to.
    end_offset: int = 0
    records: int = 0
    bytes: int = 0


async def replay(log_: Log, buffer_size: int) -> Replayed:
    """Apply every record of ``log_`` from its start to its current end."""
    state = Replayed()
    pending_txn = state.pending_txn
    read = await replay_batches(
        log_, buffer_size, lambda data, pos, _: _apply_batch(state, pending_txn, data, pos)
    )
    state.end_offset = read.end_offset
    state.bytes = read.bytes
    if pending_txn:
        log.info("%s: %d producers have transactional offset commits still open", log_, len(pending_txn))
    return state


def _apply_batch(
    state: Replayed,
    pending_txn: dict[int, dict[GroupTopicPartition, CommittedOffset]],
    data: bytes,
    pos: int,
) -> None:
    header, records = decode_batch(data, pos)
    if header.is_control:
        if records:
            kind = parse_control_key(records[0].key)
            committed = pending_txn.pop(header.producer_id, {})
            if kind == COMMIT:
                for txn_key, value in committed.items():
                    current = state.offsets.get(txn_key)
                    if current is None or _older(current, value):
                        state.offsets[txn_key] = value
        return
    transactional = header.is_transactional
    for record in records:
        state.records += 1
        if record.key is None:
            log.warning(
                "skipping a record without a key at offset %d", header.base_offset + record.offset_delta
            )
            continue
        key = read_key(record.key)
        if isinstance(key, OffsetKey):
            gtp: GroupTopicPartition = (key.group, key.topic, key.partition)
            target = pending_txn.setdefault(header.producer_id, {}) if transactional else state.offsets
            if record.value is None:
                target.pop(gtp, None)
            else:
                target[gtp] = CommittedOffset(header.base_offset, read_offset_value(record.value))
        elif isinstance(key, GroupKey):
            if record.value is None:
                state.groups.pop(key.group, None)
                state.removed_groups.add(key.group)
            else:
                state.removed_groups.discard(key.group)
                state.groups[key.group] = read_group_value(record.value)
        else:
            log.warning("skipping a record with unknown key version %d", key.version)


def _older(current: CommittedOffset, candidate: CommittedOffset) -> bool:
    if current.record_offset is None or candidate.record_offset is None:
        return True
    return current.record_offset < candidate.record_offset


def build_groups(state: Replayed, now_ms: int) -> list[ClassicGroup]:
    """Groups with their metadata, offsets and still-open transactional offsets; groups that
    only have offsets come back Empty."""
    offsets_by_group: dict[str, dict[TopicPartitionKey, CommittedOffset]] = {}
    for (group_id, topic, partition), committed in state.offsets.items():
        offsets_by_group.setdefault(group_id, {})[(topic, partition)] = committed
    pending_by_group: dict[str, dict[int, dict[TopicPartitionKey, CommittedOffset]]] = {}
    for producer_id, staged in state.pending_txn.items():
        for (group_id, topic, partition), committed in staged.items():
            by_producer = pending_by_group.setdefault(group_id, {})
            by_producer.setdefault(producer_id, {})[(topic, partition)] = committed
    groups: list[ClassicGroup] = []
    for group_id, (version, value) in state.groups.items():
        groups.append(group_from_value(group_id, version, value, now_ms))
    known = {group.group_id for group in groups}
    for group_id in [*offsets_by_group, *pending_by_group]:
        if group_id not in known:
            known.add(group_id)
            groups.append(ClassicGroup(group_id, GroupState.EMPTY, now_ms))
    for group in groups:
        group.offsets.update(offsets_by_group.get(group.group_id, {}))
        group.pending_txn_offset_commits.update(pending_by_group.get(group.group_id, {}))
    return groups


def group_from_value(group_id: str, version: int, value: GroupMetadataValue, now_ms: int) -> ClassicGroup:
    """Kafka's ``readGroupMessageValue``: members come back with the selected protocol only."""
    state = GroupState.STABLE if value.members else GroupState.EMPTY
    group = ClassicGroup(group_id, state, now_ms)
    group.generation_id = value.generation
    group.protocol_name = value.protocol
    group.state_timestamp = None if value.current_state_timestamp == -1 else value.current_state_timestamp
    protocol = value.protocol or ""
    for m in value.members:
        member = Member(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout_ms=m.session_timeout if version == 0 else m.rebalance_timeout,
            session_timeout_ms=m.session_timeout,
            protocol_type=value.protocol_type,
            protocols=[(protocol, bytes(m.subscription))],
            assignment=bytes(m.assignment),
        )
        group.add(member)
    group.protocol_type = value.protocol_type or None
    group.leader_id = value.leader
    group.subscribed_topics = group.compute_subscribed_topics()
    return group
