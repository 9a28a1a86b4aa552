"""A restart is a replay: groups and offsets come back from ``__consumer_offsets``, and the
bytes written there decode with Kafka's internal-record schemas."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from broker.group.state import GroupState
from protocol.error_codes import ErrorCode as E
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.group_metadata_key import GroupMetadataKey
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.messages.leave_group_request import LeaveGroupRequest
from protocol.messages.offset_commit_key import OffsetCommitKey
from protocol.messages.offset_commit_value import OffsetCommitValue
from protocol.records import decode_batch, iter_batches
from tests.broker.test_group_kit import SESSION, GroupKit

TOPIC = "t"


async def build_state(kit: GroupKit) -> dict[str, str]:
    """Groups in every shape a restart must restore; returns the member ids."""
    await kit.call(CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 4, 1)]), 5)
    # "stable": a dynamic leader and a static member, with offsets
    a = await kit.join_new("stable")
    s = (await kit.call_future(kit.join("stable", instance="inst-1"))).member_id
    join_a = kit.join("stable", a)
    join_s = kit.join("stable", s, instance="inst-1")
    await kit.settle()
    gen = join_a.result().generation_id
    assert join_s.result().generation_id == gen
    assert join_s.result().leader == s  # the first member to join leads
    kit.sync("stable", a, gen)
    await kit.call_future(kit.sync("stable", s, gen, {a: b"for-a", s: b"for-s"}, instance="inst-1"))
    await kit.commit("stable", {(TOPIC, 0): 10, (TOPIC, 1): 11}, member_id=a, generation=gen, metadata="meta")
    await kit.commit("stable", {(TOPIC, 0): 12}, member_id=a, generation=gen)  # the later write wins
    # "empty": a member left; its offsets stay
    e = await kit.join_new("empty")
    gen_e = (await kit.call_future(kit.join("empty", e))).generation_id
    await kit.call_future(kit.sync("empty", e, gen_e, {e: b""}))
    await kit.commit("empty", {(TOPIC, 2): 20}, member_id=e, generation=gen_e)
    await kit.call(LeaveGroupRequest("empty", e), 1)
    # "offsets-only": a consumer that never joins
    await kit.commit("offsets-only", {(TOPIC, 3): 30})
    # "deleted": committed, then deleted
    await kit.commit("deleted", {(TOPIC, 0): 40})
    assert (await kit.call(DeleteGroupsRequest(["deleted"]), 2)).results[0].error_code == 0
    await kit.settle()
    return {"a": a, "s": s, "gen": str(gen)}


def test_restart_restores_groups_and_offsets(tmp_path: Path) -> None:
    async def main() -> None:
        first = GroupKit(tmp_path)
        await first.start()
        ids = await build_state(first)
        await first.close()

        kit = GroupKit(tmp_path)
        await kit.start(create_topic=False)
        # the partitions are being replayed: their groups are not available yet
        assert kit.coord.store.loading
        assert (await kit.call_future(kit.join("stable"))).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        await kit.settle()
        assert not kit.coord.store.loading
        try:
            a, s, gen = ids["a"], ids["s"], int(ids["gen"])
            stable = kit.coord.groups["stable"]
            assert stable.state is GroupState.STABLE and stable.generation_id == gen
            assert stable.leader_id == s and stable.protocol_name == "range"
            assert stable.static_members == {"inst-1": s}
            described = (await kit.call(DescribeGroupsRequest(groups=["stable"]), 4)).groups[0]
            assignments = {m.member_id: m.member_assignment for m in described.members}
            assert assignments == {a: b"for-a", s: b"for-s"}
            assert await kit.fetch_offsets("stable", None) == {(TOPIC, 0): 12, (TOPIC, 1): 11}
            fetched = await kit.fetch("stable", {TOPIC: [1]})
            assert fetched.topics[0].partitions[0].metadata == "meta"
            assert kit.coord.groups["empty"].state is GroupState.EMPTY
            assert await kit.fetch_offsets("empty", None) == {(TOPIC, 2): 20}
            assert await kit.fetch_offsets("offsets-only", None) == {(TOPIC, 3): 30}
            assert "deleted" not in kit.coord.groups
            assert await kit.fetch_offsets("deleted", {TOPIC: [0]}) == {(TOPIC, 0): -1}
            # the members carry on where they were
            assert await kit.heartbeat("stable", a, gen) == E.NONE
            assert await kit.heartbeat("stable", s, gen, instance="inst-1") == E.NONE
            # and a member that never comes back is expired after its session timeout
            for _ in range(3):
                kit.advance(SESSION // 2 - 1)
                await kit.heartbeat("stable", s, gen, instance="inst-1")
            assert a not in stable.members and stable.state is GroupState.PREPARING_REBALANCE
        finally:
            await kit.close()

    asyncio.run(main())


def test_written_bytes_decode_with_the_internal_record_schemas(tmp_path: Path) -> None:
    """Read the partition files Brook wrote and decode them with the generated schema classes
    (independently of Brook's own record helpers)."""

    async def main() -> None:
        kit = GroupKit(tmp_path)
        await kit.start()
        try:
            ids = await build_state(kit)
            index = kit.coord.store.partition_for("stable")
            log = kit.coord.store.replica(index).log  # type: ignore[union-attr]
            data = log.read_bytes(0, 1 << 20)
        finally:
            await kit.close()
        offsets: dict[tuple[str, str, int], OffsetCommitValue | None] = {}
        groups: dict[str, tuple[int, GroupMetadataValue | None]] = {}
        for pos, _ in iter_batches(data):
            header, records = decode_batch(data, pos)
            assert header.magic == 2 and header.producer_id == -1
            for record in records:
                assert record.key is not None
                (key_version,) = struct.unpack_from(">h", record.key)
                if key_version == 1:
                    key = OffsetCommitKey.decode(record.key[2:], 1)
                    value = None
                    if record.value is not None:
                        (value_version,) = struct.unpack_from(">h", record.value)
                        assert value_version == 3  # no expire timestamp
                        value = OffsetCommitValue.decode(record.value[2:], 3)
                    offsets[(key.group, key.topic, key.partition)] = value
                else:
                    assert key_version == 2
                    gkey = GroupMetadataKey.decode(record.key[2:], 2)
                    if record.value is None:
                        groups[gkey.group] = (-1, None)
                    else:
                        (value_version,) = struct.unpack_from(">h", record.value)
                        groups[gkey.group] = (
                            value_version,
                            GroupMetadataValue.decode(record.value[2:], value_version),
                        )
        stable = offsets[("stable", TOPIC, 0)]
        assert stable is not None and stable.offset == 12 and stable.leader_epoch == -1
        assert offsets[("stable", TOPIC, 1)].metadata == "meta"  # type: ignore[union-attr]
        version, value = groups["stable"]
        assert version == 3 and value is not None
        assert value.protocol_type == "consumer" and value.protocol == "range" and value.leader == ids["s"]
        members = {m.member_id: m for m in value.members}
        assert members[ids["s"]].group_instance_id == "inst-1"
        assert members[ids["a"]].assignment == b"for-a" and members[ids["a"]].session_timeout == SESSION
        assert members[ids["a"]].subscription.startswith(b"\x00\x00")  # ConsumerProtocolSubscription

    asyncio.run(main())


def test_replay_of_many_records_yields_to_the_loop(tmp_path: Path) -> None:
    async def main() -> None:
        settings = {"offsets.topic.num.partitions": "1", "offsets.load.buffer.size": "4096"}
        first = GroupKit(tmp_path, **settings)
        await first.start()
        await first.call(CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 100, 1)]), 5)
        for round_ in range(30):
            offsets = {(TOPIC, p): round_ * 1000 + p for p in range(100)}
            assert set((await first.commit("big", offsets)).values()) == {0}
        await first.close()

        kit = GroupKit(tmp_path, **settings)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await kit.start(create_topic=False)
        while kit.coord.store.loading:
            await asyncio.sleep(0)
        task.cancel()
        try:
            assert ticks > 10  # the loop kept running while 3000 records were replayed
            offsets = await kit.fetch_offsets("big", None)
            assert offsets == {(TOPIC, p): 29_000 + p for p in range(100)}
        finally:
            await kit.close()

    asyncio.run(main())


def test_compaction_keeps_the_topic_small_and_the_state_intact(tmp_path: Path) -> None:
    """The log cleaner compacts ``__consumer_offsets`` (cleanup.policy=compact): only the last
    commit of each key survives, and a replay of the compacted log gives the same offsets."""

    async def main() -> None:
        settings = {"offsets.topic.num.partitions": "1", "offsets.topic.segment.bytes": "16384"}
        first = GroupKit(tmp_path, **settings)
        await first.start()
        await first.call(CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 10, 1)]), 5)
        for round_ in range(200):
            await first.commit("busy", {(TOPIC, p): round_ * 100 + p for p in range(10)})
        replica = first.coord.store.replica(0)
        assert replica is not None
        before = replica.log.size_in_bytes()
        stats = first.broker.log_manager.run_cleaner_once()
        after = replica.log.size_in_bytes()
        assert stats and after < before / 5, (before, after)
        await first.close()

        kit = GroupKit(tmp_path, **settings)
        await kit.start(create_topic=False)
        await kit.settle()
        try:
            assert await kit.fetch_offsets("busy", None) == {(TOPIC, p): 19_900 + p for p in range(10)}
        finally:
            await kit.close()

    asyncio.run(main())
