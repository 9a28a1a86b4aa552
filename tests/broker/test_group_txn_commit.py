"""TxnOffsetCommit through its handler on an in-process coordinator: the batch it writes, the
KIP-447 fencing, pending offsets ended by the replica manager's marker notifications (the
marker writes themselves are the partition side's), OffsetFetch ``require_stable``, and the
replay of open and ended transactions after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from broker.group import OFFSETS_TOPIC, partition_for
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode as E
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from protocol.records import COMMIT, build_control_batch, decode_batch, iter_batches, parse_control_key
from tests.broker.test_group_coordinator import single_member_group
from tests.broker.test_group_kit import GroupKit
from tests.broker.test_group_kit import run as run_kit

#: These tests write markers by hand, with no transaction coordinator: KIP-890 verification off
#: (``transaction.partition.verification.enable=false``); test_txn_verification.py covers it on.
NO_VERIFICATION = {"transaction.partition.verification.enable": "false"}


def run(path: Path, scenario: Callable[[GroupKit], Awaitable[None]], **overrides: str) -> None:
    run_kit(path, scenario, **{**NO_VERIFICATION, **overrides})


G = "grp"
PID = 4000
EPOCH = 2


async def topics(kit: GroupKit) -> None:
    response = await kit.call(CreateTopicsRequest(topics=[CreatableTopic("t", 3, 1)]), 5)
    assert all(t.error_code == 0 for t in response.topics)


async def txn_commit(
    kit: GroupKit,
    offsets: dict[tuple[str, int], int],
    *,
    group: str = G,
    producer_id: int = PID,
    member_id: str = "",
    generation: int = -1,
    instance: str | None = None,
    version: int = 3,
    metadata: str | None = "",
) -> dict[tuple[str, int], int]:
    by_topic: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append(
            TxnOffsetCommitRequestPartition(
                partition, offset, committed_leader_epoch=3, committed_metadata=metadata
            )
        )
    request = TxnOffsetCommitRequest(
        transactional_id="tx",
        group_id=group,
        producer_id=producer_id,
        producer_epoch=EPOCH,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=instance,
        topics=[TxnOffsetCommitRequestTopic(name, parts) for name, parts in by_topic.items()],
    )
    response = await kit.call(request, version)
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


def group_partition(kit: GroupKit, group: str = G) -> TopicPartition:
    return TopicPartition(OFFSETS_TOPIC, partition_for(group, kit.coord.store.partition_count))


def marker(
    kit: GroupKit, committed: bool, *, group: str = G, producer_id: int = PID, offset: int = 0
) -> None:
    """What the partition side does after appending a marker on the group's partition."""
    kit.broker.replica_manager.notify_txn_marker(
        group_partition(kit, group), producer_id, EPOCH, committed, offset
    )


async def stable_fetch(
    kit: GroupKit, partitions: dict[str, list[int]], version: int = 7
) -> dict[tuple[str, int], int]:
    """Committed offsets, or the error code (negated) of partitions that are not stable."""
    response = await kit.fetch(G, partitions, version=version, stable=True)
    return {
        (t.name, p.partition_index): (-p.error_code if p.error_code else p.committed_offset)
        for t in response.topics
        for p in t.partitions
    }


def test_offsets_become_visible_on_commit_and_require_stable_waits(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        assert await txn_commit(kit, {("t", 0): 5, ("t", 1): 6, ("nope", 0): 1}) == {
            ("t", 0): 0,
            ("t", 1): 0,
            ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION,
        }
        # a group that did not exist is created Empty for it
        assert G in kit.coord.groups
        assert await kit.fetch_offsets(G, {"t": [0, 1, 2]}) == {("t", 0): -1, ("t", 1): -1, ("t", 2): -1}
        unstable = -E.UNSTABLE_OFFSET_COMMIT
        assert await stable_fetch(kit, {"t": [0, 1, 2]}) == {
            ("t", 0): unstable,
            ("t", 1): unstable,
            ("t", 2): -1,
        }
        marker(kit, committed=False, producer_id=PID + 1)  # another producer's marker
        assert await stable_fetch(kit, {"t": [0]}) == {("t", 0): unstable}
        marker(kit, committed=True)
        assert await stable_fetch(kit, {"t": [0, 1]}) == {("t", 0): 5, ("t", 1): 6}
        response = await kit.fetch(G, {"t": [0]}, version=7)
        assert response.topics[0].partitions[0].committed_leader_epoch == 3
        assert kit.coord.store.producer_groups == {}

    run(tmp_path, scenario)


def test_an_abort_drops_the_offsets(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        await kit.commit(G, {("t", 0): 1})
        assert await txn_commit(kit, {("t", 0): 5}) == {("t", 0): 0}
        marker(kit, committed=False)
        assert await stable_fetch(kit, {"t": [0]}) == {("t", 0): 1}
        # a marker on another partition of __consumer_offsets does not touch this group
        assert await txn_commit(kit, {("t", 0): 7}) == {("t", 0): 0}
        other = group_partition(kit)._replace(partition=(group_partition(kit).partition + 1) % 3)
        kit.broker.replica_manager.notify_txn_marker(other, PID, EPOCH, True, 0)
        assert await stable_fetch(kit, {"t": [0]}) == {("t", 0): -E.UNSTABLE_OFFSET_COMMIT}

    run(tmp_path, scenario)


def test_v8_offset_fetch_answers_unstable_per_partition(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        from protocol.messages.offset_fetch_request import (
            OffsetFetchRequest,
            OffsetFetchRequestGroup,
            OffsetFetchRequestTopics,
        )

        await topics(kit)
        await txn_commit(kit, {("t", 0): 5})
        request = OffsetFetchRequest(
            groups=[OffsetFetchRequestGroup(G, topics=[OffsetFetchRequestTopics("t", [0])])],
            require_stable=True,
        )
        (group,) = (await kit.call(request, 8)).groups
        assert group.error_code == 0  # as Kafka: the error is the partition's
        assert group.topics[0].partitions[0].error_code == E.UNSTABLE_OFFSET_COMMIT

    run(tmp_path, scenario)


def test_the_batch_is_one_transactional_batch_of_the_producer(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        assert await txn_commit(kit, {("t", 0): 5, ("t", 1): 6}) == {("t", 0): 0, ("t", 1): 0}
        replica = kit.broker.replica_manager.get(group_partition(kit))
        assert replica is not None
        data = replica.log.read_bytes(0, 1 << 20)
        headers = [h for _, h in iter_batches(data)]
        assert len(headers) == 1
        (header,) = headers
        assert header.is_transactional and not header.is_control
        # Kafka's GroupMetadataManager.generateOffsetRecords numbers the batch from sequence 0.
        assert (header.producer_id, header.producer_epoch, header.base_sequence) == (PID, EPOCH, 0)
        assert header.last_offset_delta == 1  # two records
        assert replica.log.high_watermark == replica.log.log_end_offset  # answered once durable

    run(tmp_path, scenario)


def test_kip_447_fencing(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        member, gen = await single_member_group(kit)
        tp = {("t", 0): 10}
        assert await txn_commit(kit, tp, member_id=member, generation=gen + 1) == {
            ("t", 0): E.ILLEGAL_GENERATION
        }
        assert await txn_commit(kit, tp, member_id="zombie", generation=gen) == {
            ("t", 0): E.UNKNOWN_MEMBER_ID
        }
        assert await txn_commit(kit, tp, member_id=member, generation=gen, instance="i") == {
            ("t", 0): E.UNKNOWN_MEMBER_ID
        }
        # no member named: accepted although the group has members (unlike a plain commit)
        assert await txn_commit(kit, tp) == {("t", 0): 0}
        assert await txn_commit(kit, tp, member_id=member, generation=gen) == {("t", 0): 0}
        # before v3 the request carries no member: never fenced
        assert await txn_commit(kit, tp, version=2) == {("t", 0): 0}
        big = await txn_commit(kit, tp, metadata="x" * 4097)
        assert big == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
        assert await txn_commit(kit, tp, group="") == {("t", 0): E.INVALID_GROUP_ID}

    run(tmp_path, scenario)


def test_static_member_fencing(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        old = (await kit.call_future(kit.join(G, instance="inst"))).member_id
        new = (await kit.call_future(kit.join(G, instance="inst"))).member_id
        gen = kit.coord.groups[G].generation_id
        assert old != new
        assert await txn_commit(kit, {("t", 0): 1}, member_id=old, generation=gen, instance="inst") == {
            ("t", 0): E.FENCED_INSTANCE_ID
        }

    run(tmp_path, scenario)


def test_old_versions_see_load_in_progress_as_not_available(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit)
        index = group_partition(kit).partition
        kit.coord.store.loading.add(index)  # as while a replay runs, held still for the test
        try:
            v1 = await kit.call(_request({("t", 0): 1}), 1)
            v2 = await kit.call(_request({("t", 0): 1}), 2)
        finally:
            kit.coord.store.loading.discard(index)
        assert v1.topics[0].partitions[0].error_code == E.COORDINATOR_NOT_AVAILABLE
        assert v2.topics[0].partitions[0].error_code == E.COORDINATOR_LOAD_IN_PROGRESS

    run(tmp_path, scenario)


def _request(offsets: dict[tuple[str, int], int]) -> TxnOffsetCommitRequest:
    return TxnOffsetCommitRequest(
        transactional_id="tx",
        group_id=G,
        producer_id=PID,
        producer_epoch=EPOCH,
        topics=[
            TxnOffsetCommitRequestTopic(t, [TxnOffsetCommitRequestPartition(p, o)])
            for (t, p), o in offsets.items()
        ],
    )


def test_a_restart_keeps_open_transactions_pending_and_applies_written_markers(tmp_path: Path) -> None:
    async def main() -> None:
        first = GroupKit(tmp_path, **NO_VERIFICATION)
        await first.start()
        await topics(first)
        assert await txn_commit(first, {("t", 0): 5}, producer_id=PID) == {("t", 0): 0}
        assert await txn_commit(first, {("t", 1): 6}, producer_id=PID + 1) == {("t", 1): 0}
        # the partition side writes PID's COMMIT marker (emulated: a control batch appended)
        replica = first.broker.replica_manager.get(group_partition(first))
        assert replica is not None
        control = build_control_batch(
            COMMIT, coordinator_epoch=0, producer_id=PID, producer_epoch=EPOCH, timestamp=1
        )
        outcome = replica.append_internal(bytearray(control))
        assert outcome.error == E.NONE
        header, records = decode_batch(replica.log.read_bytes(outcome.base_offset, 1 << 10), 0)
        assert header.is_control and parse_control_key(records[0].key) == COMMIT
        await first.close()

        kit = GroupKit(tmp_path, **NO_VERIFICATION)
        await kit.start(create_topic=False)
        await kit.settle()
        try:
            assert not kit.coord.store.loading
            g = kit.coord.groups[G]
            assert g.active_producers == {PID + 1}
            assert kit.coord.store.producer_groups == {PID + 1: {G}}
            assert await stable_fetch(kit, {"t": [0, 1]}) == {
                ("t", 0): 5,
                ("t", 1): -E.UNSTABLE_OFFSET_COMMIT,
            }
            marker(kit, committed=True, producer_id=PID + 1)
            assert await stable_fetch(kit, {"t": [0, 1]}) == {("t", 0): 5, ("t", 1): 6}
        finally:
            await kit.close()

    asyncio.run(main())


def test_a_marker_heard_while_the_partition_loads_is_applied_after_the_replay(tmp_path: Path) -> None:
    async def main() -> None:
        first = GroupKit(tmp_path, **NO_VERIFICATION)
        await first.start()
        await topics(first)
        assert await txn_commit(first, {("t", 0): 5}) == {("t", 0): 0}
        await first.close()

        kit = GroupKit(tmp_path, **NO_VERIFICATION)
        await kit.start(create_topic=False)
        try:
            assert kit.coord.store.is_loading(G)
            replica = kit.broker.replica_manager.get(group_partition(kit))
            assert replica is not None
            # written after the replay's end: must be applied once the groups are in place
            marker(kit, committed=True, offset=replica.log.log_end_offset)
            await kit.settle()
            assert not kit.coord.store.loading
            assert await stable_fetch(kit, {"t": [0]}) == {("t", 0): 5}
        finally:
            await kit.close()

    asyncio.run(main())


def test_a_deleted_group_is_not_brought_back_by_its_marker(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        from protocol.messages.delete_groups_request import DeleteGroupsRequest

        await topics(kit)
        assert await txn_commit(kit, {("t", 0): 5}) == {("t", 0): 0}
        assert G in kit.coord.groups and kit.coord.groups[G].has_offsets()
        assert (await kit.call(DeleteGroupsRequest([G]), 2)).results[0].error_code == 0
        assert G not in kit.coord.groups
        marker(kit, committed=True)
        assert G not in kit.coord.groups and kit.coord.store.producer_groups == {}
        assert await stable_fetch(kit, {"t": [0]}) == {("t", 0): -1}

    run(tmp_path, scenario)
