"""Committed offsets: OffsetCommit/OffsetFetch rules by version, expiration, OffsetDelete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.group import OFFSETS_TOPIC, partition_for
from broker.group.records import read_key
from broker.group.state import GroupState
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode as E
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_delete_request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopics,
)
from protocol.records import decode_batch, iter_batches
from tests.broker.test_group_coordinator import single_member_group
from tests.broker.test_group_kit import GroupKit, run, subscription

G = "grp"
DAY = 24 * 3600 * 1000


async def topics(kit: GroupKit, *names: str, partitions: int = 3) -> None:
    response = await kit.call(
        CreateTopicsRequest(topics=[CreatableTopic(n, partitions, 1) for n in names]), 5
    )
    assert all(t.error_code == 0 for t in response.topics)


def test_simple_consumer_commits_and_fetches(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        errors = await kit.commit(G, {("t", 0): 5, ("t", 1): 7, ("nope", 0): 1, ("t", 9): 1}, metadata="m")
        assert errors == {
            ("t", 0): 0,
            ("t", 1): 0,
            ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION,
            ("t", 9): E.UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert await kit.fetch_offsets(G, {"t": [0, 1, 2]}) == {("t", 0): 5, ("t", 1): 7, ("t", 2): -1}
        assert await kit.fetch_offsets(G, None) == {("t", 0): 5, ("t", 1): 7}
        response = await kit.fetch(G, {"t": [0]})
        assert response.topics[0].partitions[0].metadata == "m"
        assert await kit.fetch_offsets("other", {"t": [0]}) == {("t", 0): -1}
        group = kit.coord.groups[G]
        assert group.state is GroupState.EMPTY and group.generation_id == 0

    run(tmp_path, scenario)


def test_offset_commit_batches_start_at_sequence_0_group_metadata_has_none(tmp_path: Path) -> None:
    """As Kafka's GroupMetadataManager: generateOffsetRecords builds an offset-commit batch with
    base sequence 0 (and no producer), storeGroup a group-metadata batch with none (-1)."""

    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        member, generation = await single_member_group(kit)
        committed = await kit.commit(G, {("t", 0): 5, ("t", 1): 6}, member_id=member, generation=generation)
        assert committed == {("t", 0): 0, ("t", 1): 0}
        replica = kit.broker.replica_manager.get(
            TopicPartition(OFFSETS_TOPIC, partition_for(G, kit.coord.store.partition_count))
        )
        assert replica is not None
        data = replica.log.read_bytes(0, 1 << 20)
        kinds = []
        for pos, header in iter_batches(data):
            _, records = decode_batch(data, pos)
            assert records[0].key is not None
            kinds.append((type(read_key(records[0].key)).__name__, header.producer_id, header.base_sequence))
        assert kinds == [("GroupKey", -1, -1), ("OffsetKey", -1, 0)]

    run(tmp_path, scenario)


def test_commit_generation_and_member_checks(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        a, gen = await single_member_group(kit)
        tp = {("t", 0): 10}
        assert await kit.commit(G, tp, member_id=a, generation=gen) == {("t", 0): 0}
        assert await kit.commit(G, tp, member_id=a, generation=gen + 1) == {("t", 0): E.ILLEGAL_GENERATION}
        assert await kit.commit(G, tp, member_id="who", generation=gen) == {("t", 0): E.UNKNOWN_MEMBER_ID}
        # a non-member (generation -1) may not commit while the group has members
        assert await kit.commit(G, tp) == {("t", 0): E.UNKNOWN_MEMBER_ID}
        assert await kit.commit("gone", tp, member_id="x", generation=3) == {("t", 0): E.ILLEGAL_GENERATION}
        assert await kit.commit(G, tp, member_id=a, generation=gen, instance="i") == {
            ("t", 0): E.UNKNOWN_MEMBER_ID
        }
        big = await kit.commit(G, tp, member_id=a, generation=gen, metadata="x" * 4097)
        assert big == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
        assert await kit.fetch_offsets(G, {"t": [0]}) == {("t", 0): 10}

    run(tmp_path, scenario)


def test_commit_during_rebalance(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        a, gen = await single_member_group(kit)
        b = await kit.join_new(G)
        kit.join(G, b)
        await kit.settle()
        # PreparingRebalance: members of the current generation may still commit
        assert await kit.commit(G, {("t", 0): 3}, member_id=a, generation=gen) == {("t", 0): 0}
        rejoin = kit.join(G, a)
        await kit.settle()
        new_gen = rejoin.result().generation_id
        # CompletingRebalance: the member must first get its assignment
        assert await kit.commit(G, {("t", 0): 4}, member_id=a, generation=new_gen) == {
            ("t", 0): E.REBALANCE_IN_PROGRESS
        }

    run(tmp_path, scenario)


def test_commit_static_member_fenced(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        old = (await kit.call_future(kit.join(G, instance="s"))).member_id
        await kit.call_future(kit.sync(G, old, 1, {old: b"a"}, instance="s"))
        new = (await kit.call_future(kit.join(G, instance="s"))).member_id
        assert new != old
        fenced = await kit.commit(G, {("t", 0): 1}, member_id=old, generation=1, instance="s", version=7)
        assert fenced == {("t", 0): E.FENCED_INSTANCE_ID}
        assert await kit.commit(G, {("t", 0): 1}, member_id=new, generation=1, instance="s", version=7) == {
            ("t", 0): 0
        }

    run(tmp_path, scenario)


def test_commit_versions_timestamps_and_retention(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        now = kit.coord.now()
        v1 = OffsetCommitRequest(
            group_id=G,
            generation_id_or_member_epoch=-1,
            topics=[
                OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 11, commit_timestamp=now - 5)])
            ],
        )
        assert (await kit.call(v1, 1)).topics[0].partitions[0].error_code == 0
        v2 = OffsetCommitRequest(
            group_id=G,
            generation_id_or_member_epoch=-1,
            retention_time_ms=1000,
            topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(1, 12)])],
        )
        assert (await kit.call(v2, 2)).topics[0].partitions[0].error_code == 0
        v0 = OffsetCommitRequest(
            group_id=G, topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(2, 13)])]
        )
        assert (await kit.call(v0, 0)).topics[0].partitions[0].error_code == 0
        group = kit.coord.groups[G]
        assert group.offset(("t", 0)).commit_timestamp == now - 5
        assert group.offset(("t", 1)).expire_timestamp == now + 1000
        assert group.offset(("t", 2)).expire_timestamp is None
        v6 = OffsetCommitRequest(
            group_id=G,
            generation_id_or_member_epoch=-1,
            topics=[
                OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 20, committed_leader_epoch=4)])
            ],
        )
        await kit.call(v6, 6)
        fetched = await kit.fetch(G, {"t": [0]}, version=5)
        assert fetched.topics[0].partitions[0].committed_leader_epoch == 4
        # the explicit expire timestamp wins: gone after 1 s although the group is only storing offsets
        kit.advance(kit.coord.config.retention_check_interval_ms)
        await kit.settle()
        assert await kit.fetch_offsets(G, None) == {("t", 0): 20, ("t", 2): 13}

    run(tmp_path, scenario)


def test_offset_fetch_versions(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t", "u")
        await kit.commit("g1", {("t", 0): 1, ("u", 1): 2})
        await kit.commit("g2", {("t", 0): 3})
        multi = OffsetFetchRequest(
            groups=[
                OffsetFetchRequestGroup("g1", topics=None),
                OffsetFetchRequestGroup("g2", topics=[OffsetFetchRequestTopics("t", [0, 1])]),
                OffsetFetchRequestGroup("", topics=None),
            ]
        )
        response = await kit.call(multi, 8)
        by_group = {
            g.group_id: {
                (t.name, p.partition_index): p.committed_offset for t in g.topics for p in t.partitions
            }
            for g in response.groups
        }
        assert by_group == {"g1": {("t", 0): 1, ("u", 1): 2}, "g2": {("t", 0): 3, ("t", 1): -1}, "": {}}
        assert all(g.error_code == 0 for g in response.groups)
        # an empty group id is not a valid group for most apis, but fine for offsets
        bad = await kit.call(OffsetFetchRequest(groups=[OffsetFetchRequestGroup("g1", topics=None)]), 9)
        assert bad.groups[0].error_code == 0

    run(tmp_path, scenario)


def test_offset_fetch_errors_by_version(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        kit.coord.store.owned.clear()  # pretend another broker leads every partition
        v1 = await kit.fetch(G, {"t": [0, 1]}, version=1)
        assert v1.error_code == 0
        assert [p.error_code for p in v1.topics[0].partitions] == [E.NOT_COORDINATOR, E.NOT_COORDINATOR]
        v3 = await kit.fetch(G, {"t": [0]}, version=3)
        assert v3.error_code == E.NOT_COORDINATOR and v3.topics == []
        kit.coord.store.loading.add(kit.coord.store.partition_for(G))
        v6 = await kit.fetch(G, {"t": [0]}, version=6)
        assert v6.error_code == E.COORDINATOR_LOAD_IN_PROGRESS

    run(tmp_path, scenario)


def test_require_stable_sees_commits_in_flight(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        await kit.commit(G, {("t", 0): 1})
        group = kit.coord.groups[G]
        from broker.group.records import OffsetAndMetadata

        group.prepare_offset_commit({("t", 0): OffsetAndMetadata(2)})  # a write not yet durable
        stable = await kit.fetch(G, {"t": [0]}, version=7, stable=True)
        assert stable.topics[0].partitions[0].error_code == E.UNSTABLE_OFFSET_COMMIT
        loose = await kit.fetch(G, {"t": [0]}, version=7, stable=False)
        assert loose.topics[0].partitions[0].committed_offset == 1

    run(tmp_path, scenario)


def test_offsets_of_an_empty_group_expire_after_retention(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t")
        a, gen = await single_member_group(kit)
        await kit.commit(G, {("t", 0): 5}, member_id=a, generation=gen)
        from protocol.messages.leave_group_request import LeaveGroupRequest

        await kit.call(LeaveGroupRequest(G, a), 1)
        await kit.settle()
        assert kit.coord.groups[G].state is GroupState.EMPTY
        kit.advance(7 * DAY - kit.coord.config.retention_check_interval_ms)
        await kit.settle()
        assert await kit.fetch_offsets(G, {"t": [0]}) == {("t", 0): 5}
        kit.advance(kit.coord.config.retention_check_interval_ms)
        await kit.settle()
        assert G not in kit.coord.groups  # offsets expired, then the empty group went Dead
        assert await kit.fetch_offsets(G, {"t": [0]}) == {("t", 0): -1}

    run(tmp_path, scenario)


def test_offsets_of_a_stable_group_expire_only_for_unsubscribed_topics(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t", "old")
        a = await kit.join_new(G, protocols=[("range", subscription("t"))])
        gen = (await kit.call_future(kit.join(G, a, protocols=[("range", subscription("t"))]))).generation_id
        await kit.call_future(kit.sync(G, a, gen, {a: b""}))
        await kit.commit(G, {("t", 0): 1, ("old", 0): 2}, member_id=a, generation=gen)
        for _ in range(16):  # 80 s of a live member; retention is 60 s, checked every 10 s
            kit.advance(5000)
            assert await kit.heartbeat(G, a, gen) == E.NONE
        await kit.settle()
        assert kit.coord.groups[G].state is GroupState.STABLE
        assert await kit.fetch_offsets(G, None) == {("t", 0): 1}

    run(
        tmp_path,
        scenario,
        **{"offsets.retention.minutes": "1", "offsets.retention.check.interval.ms": "10000"},
    )


def test_offset_delete(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "t", "u")
        a = await kit.join_new(G, protocols=[("range", subscription("t"))])
        gen = (await kit.call_future(kit.join(G, a, protocols=[("range", subscription("t"))]))).generation_id
        await kit.call_future(kit.sync(G, a, gen, {a: b""}))
        await kit.commit(G, {("t", 0): 1, ("u", 0): 2}, member_id=a, generation=gen)
        request = OffsetDeleteRequest(
            G,
            [
                OffsetDeleteRequestTopic("t", [OffsetDeleteRequestPartition(0)]),
                OffsetDeleteRequestTopic("u", [OffsetDeleteRequestPartition(0)]),
                OffsetDeleteRequestTopic("zz", [OffsetDeleteRequestPartition(0)]),
            ],
        )
        response = await kit.call(request, 0)
        errors = {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}
        assert response.error_code == 0
        assert errors == {
            ("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC,
            ("u", 0): 0,
            ("zz", 0): E.UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert await kit.fetch_offsets(G, None) == {("t", 0): 1}
        missing = await kit.call(OffsetDeleteRequest("nobody", request.topics), 0)
        assert missing.error_code == E.GROUP_ID_NOT_FOUND and missing.topics == []

    run(tmp_path, scenario)


def test_deleting_a_topic_removes_its_committed_offsets(tmp_path: Path) -> None:
    from protocol.messages.delete_topics_request import DeleteTopicsRequest

    async def scenario(kit: GroupKit) -> None:
        await topics(kit, "doomed", "kept")
        await kit.commit(G, {("doomed", 0): 3, ("kept", 0): 4})
        response = await kit.call(DeleteTopicsRequest(topic_names=["doomed"]), 5)
        assert response.responses[0].error_code == 0
        for _ in range(100):  # the coordinator writes the tombstones in the background
            if await kit.fetch_offsets(G, None) == {("kept", 0): 4}:
                break
            await asyncio.sleep(0.01)
        assert await kit.fetch_offsets(G, None) == {("kept", 0): 4}

    run(tmp_path, scenario)
