"""The classic group state machine, driven through the handlers on an injected clock."""

from __future__ import annotations

from pathlib import Path

from broker.group.state import GroupState
from protocol.error_codes import ErrorCode as E
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from tests.broker.test_group_kit import REBALANCE, SESSION, GroupKit, run, subscription

G = "grp"


async def single_member_group(kit: GroupKit, group: str = G) -> tuple[str, int]:
    """A Stable group of one member: returns its member id and generation."""
    member = await kit.join_new(group)
    joined = await kit.call_future(kit.join(group, member))
    assert joined.error_code == 0 and joined.leader == member and len(joined.members) == 1
    synced = await kit.call_future(kit.sync(group, member, joined.generation_id, {member: b"A"}))
    assert synced.error_code == 0 and synced.assignment == b"A"
    return member, joined.generation_id


def state(kit: GroupKit, group: str = G) -> GroupState:
    return kit.coord.groups[group].state


def test_first_member_needs_a_member_id_then_leads(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        first = await kit.call_future(kit.join(G, version=4))
        assert first.error_code == E.MEMBER_ID_REQUIRED and first.member_id.startswith("test-client-")
        assert state(kit) is GroupState.EMPTY
        joined = await kit.call_future(kit.join(G, first.member_id, version=4))
        assert joined.error_code == 0 and joined.generation_id == 1
        assert joined.leader == first.member_id and joined.protocol_name == "range"
        assert [m.member_id for m in joined.members] == [first.member_id]
        assert state(kit) is GroupState.COMPLETING_REBALANCE
        synced = await kit.call_future(kit.sync(G, first.member_id, 1, {first.member_id: b"x"}))
        assert synced.error_code == 0 and synced.assignment == b"x"
        assert state(kit) is GroupState.STABLE

    run(tmp_path, scenario)


def test_old_versions_join_without_member_id_required(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        for version in (0, 1, 3):
            response = await kit.call_future(kit.join(f"g{version}", version=version))
            assert response.error_code == 0 and response.member_id and response.generation_id == 1

    run(tmp_path, scenario)


def test_initial_rebalance_delay_waits_for_more_members(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a = await kit.join_new(G)
        join_a = kit.join(G, a)
        await kit.settle()
        kit.advance(2000)
        b = await kit.join_new(G)
        join_b = kit.join(G, b)
        await kit.settle()
        kit.advance(1000)  # the first 3 s delay ends, but b arrived during it: wait another 3 s
        await kit.settle()
        assert not join_a.done() and not join_b.done()
        kit.advance(3000)
        await kit.settle()
        ra, rb = join_a.result(), join_b.result()
        assert ra.error_code == rb.error_code == 0 and ra.generation_id == rb.generation_id == 1
        assert ra.leader == a and len(ra.members) == 2 and rb.members == []

    run(tmp_path, scenario, **{"group.initial.rebalance.delay.ms": "3000"})


def test_new_member_triggers_rebalance_and_all_rejoin(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        b = await kit.join_new(G)
        join_b = kit.join(G, b)
        await kit.settle()
        assert state(kit) is GroupState.PREPARING_REBALANCE and not join_b.done()
        assert await kit.heartbeat(G, a, gen) == E.REBALANCE_IN_PROGRESS
        join_a = kit.join(G, a)
        await kit.settle()
        ra, rb = join_a.result(), join_b.result()
        assert ra.generation_id == rb.generation_id == gen + 1
        assert ra.leader == a and {m.member_id for m in ra.members} == {a, b}
        sync_b = kit.sync(G, b, gen + 1)
        await kit.settle()
        assert not sync_b.done()  # waits for the leader's assignment
        sync_a = kit.sync(G, a, gen + 1, {a: b"pa", b: b"pb"})
        await kit.settle()
        assert sync_a.result().assignment == b"pa" and sync_b.result().assignment == b"pb"
        assert state(kit) is GroupState.STABLE
        assert await kit.heartbeat(G, a, gen) == E.ILLEGAL_GENERATION
        assert await kit.heartbeat(G, "nobody", gen + 1) == E.UNKNOWN_MEMBER_ID

    run(tmp_path, scenario)


def test_session_timeout_removes_a_silent_member(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        b = await kit.join_new(G)
        join_b = kit.join(G, b)
        join_a = kit.join(G, a)
        await kit.settle()
        gen = join_a.result().generation_id
        kit.sync(G, b, gen)
        await kit.call_future(kit.sync(G, a, gen, {a: b"1", b: b"2"}))
        assert join_b.done()
        # a keeps heartbeating, b goes silent
        for _ in range(2):
            kit.advance(SESSION // 2 - 1)
            assert await kit.heartbeat(G, a, gen) == E.NONE
        assert b in kit.coord.groups[G].members
        kit.advance(SESSION // 2)
        assert b not in kit.coord.groups[G].members
        assert state(kit) is GroupState.PREPARING_REBALANCE
        assert await kit.heartbeat(G, a, gen) == E.REBALANCE_IN_PROGRESS
        rejoin = await kit.call_future(kit.join(G, a))
        assert rejoin.generation_id == gen + 1 and [m.member_id for m in rejoin.members] == [a]
        assert await kit.heartbeat(G, b, gen) == E.UNKNOWN_MEMBER_ID

    run(tmp_path, scenario)


def test_rebalance_timeout_drops_members_that_do_not_rejoin(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, _ = await single_member_group(kit)
        b = await kit.join_new(G)
        join_b = kit.join(G, b, rebalance=5000)
        await kit.settle()
        kit.advance(4000)
        assert await kit.heartbeat(G, a, 1) == E.REBALANCE_IN_PROGRESS  # alive, but never rejoins
        await kit.settle()
        assert not join_b.done()
        kit.advance(REBALANCE)  # the group's rebalance timeout is the largest of its members'
        await kit.settle()
        result = join_b.result()
        assert result.error_code == 0 and result.leader == b and [m.member_id for m in result.members] == [b]
        assert a not in kit.coord.groups[G].members

    run(tmp_path, scenario)


def test_members_that_never_sync_are_removed(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        b = await kit.join_new(G)
        join_b, join_a = kit.join(G, b), kit.join(G, a)
        await kit.settle()
        gen = join_a.result().generation_id
        assert join_b.result().generation_id == gen
        sync_a = kit.sync(G, a, gen, {a: b"1", b: b"2"})
        await kit.settle()
        assert sync_a.result().error_code == 0
        for _ in range(REBALANCE // 5000 - 1):
            kit.advance(5000)
            assert await kit.heartbeat(G, a, gen) == E.NONE
            assert await kit.heartbeat(G, b, gen) == E.NONE  # alive, but never sends its SyncGroup
        kit.advance(4999)
        assert await kit.heartbeat(G, a, gen) == E.NONE
        kit.advance(2)
        assert b not in kit.coord.groups[G].members and state(kit) is GroupState.PREPARING_REBALANCE

    run(tmp_path, scenario)


def test_protocol_selection_and_inconsistent_protocols(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        meta = subscription("t")
        a = await kit.join_new(G, protocols=[("range", meta), ("roundrobin", meta)])
        b = await kit.join_new(G, protocols=[("roundrobin", meta), ("range", meta)])
        c = await kit.join_new(G, protocols=[("roundrobin", meta), ("sticky", meta)])
        futures = [
            kit.join(G, a, protocols=[("range", meta), ("roundrobin", meta)]),
            kit.join(G, b, protocols=[("roundrobin", meta), ("range", meta)]),
        ]
        await kit.settle()
        first = futures[0].result()
        assert first.protocol_name == "range"  # a voted range, b roundrobin: a tie, first vote wins
        futures.append(kit.join(G, c, protocols=[("roundrobin", meta), ("sticky", meta)]))
        futures += [
            kit.join(G, a, protocols=[("range", meta), ("roundrobin", meta)]),
            kit.join(G, b, protocols=[("roundrobin", meta), ("range", meta)]),
        ]
        await kit.settle()
        assert {f.result().protocol_name for f in futures[2:]} == {"roundrobin"}  # the only common one
        odd = await kit.call_future(kit.join(G, protocols=[("sticky", meta)]))
        assert odd.error_code == E.INCONSISTENT_GROUP_PROTOCOL
        other_type = await kit.call_future(kit.join(G, protocol_type="connect"))
        assert other_type.error_code == E.INCONSISTENT_GROUP_PROTOCOL

    run(tmp_path, scenario)


def test_session_timeout_bounds_and_group_max_size(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        low = await kit.call_future(kit.join(G, session=5999))
        high = await kit.call_future(kit.join(G, session=1_800_001))
        assert low.error_code == high.error_code == E.INVALID_SESSION_TIMEOUT
        await single_member_group(kit)
        full = await kit.call_future(kit.join(G))  # refused before it is even given a member id
        assert full.error_code == E.GROUP_MAX_SIZE_REACHED and full.member_id == ""

    run(tmp_path, scenario, **{"group.max.size": "1"})


def test_static_member_restart_keeps_assignment_without_rebalance(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a = (await kit.call_future(kit.join(G, instance="ia"))).member_id  # static: no MEMBER_ID_REQUIRED
        b = await kit.join_new(G)
        join_b, join_a = kit.join(G, b), kit.join(G, a, instance="ia")
        await kit.settle()
        gen = join_a.result().generation_id
        assert join_b.result().generation_id == gen
        kit.sync(G, b, gen)
        await kit.call_future(kit.sync(G, a, gen, {a: b"A", b: b"B"}, instance="ia"))
        # a restarts: it comes back without a member id but with its instance id
        again = await kit.call_future(kit.join(G, instance="ia"))
        assert again.error_code == 0 and again.member_id != a and again.generation_id == gen
        assert again.leader == a  # before v9 the old leader id: the new instance does not assign
        assert state(kit) is GroupState.STABLE
        assert await kit.heartbeat(G, b, gen) == E.NONE  # the others do not rebalance
        synced = await kit.call_future(kit.sync(G, again.member_id, gen, instance="ia"))
        assert synced.assignment == b"A"
        # the old incarnation is fenced
        assert await kit.heartbeat(G, a, gen, instance="ia") == E.FENCED_INSTANCE_ID
        # a static member silent for its session timeout is removed like any other
        kit.advance(SESSION + 1)
        assert again.member_id not in kit.coord.groups[G].members

    run(tmp_path, scenario)


def test_static_leader_rejoin_v9_skips_assignment(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a = (await kit.call_future(kit.join(G, instance="ia", version=9))).member_id
        await kit.call_future(kit.sync(G, a, 1, {a: b"A"}, version=5, instance="ia"))
        again = await kit.call_future(kit.join(G, instance="ia", version=9))
        assert again.leader == again.member_id and again.skip_assignment and len(again.members) == 1

    run(tmp_path, scenario)


def test_leave_group_versions_and_batched_members(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        left = await kit.call(LeaveGroupRequest(G, a), 0)
        assert left.error_code == 0
        await kit.settle()
        assert state(kit) is GroupState.EMPTY and kit.coord.groups[G].generation_id == gen + 1
        again = await kit.call(LeaveGroupRequest(G, a), 1)
        assert again.error_code == E.UNKNOWN_MEMBER_ID
        s = (await kit.call_future(kit.join(G, instance="s1"))).member_id
        members = [MemberIdentity("", "s1"), MemberIdentity("ghost", None), MemberIdentity("x", "s1")]
        batch = await kit.call(LeaveGroupRequest(G, members=members), 3)
        assert batch.error_code == 0
        assert [m.error_code for m in batch.members] == [E.NONE, E.UNKNOWN_MEMBER_ID, E.UNKNOWN_MEMBER_ID]
        assert s not in kit.coord.groups[G].members

    run(tmp_path, scenario)


def test_sync_errors(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        assert (await kit.call_future(kit.sync(G, a, gen + 1))).error_code == E.ILLEGAL_GENERATION
        assert (await kit.call_future(kit.sync(G, "who", gen))).error_code == E.UNKNOWN_MEMBER_ID
        assert (await kit.call_future(kit.sync("nogroup", a, gen))).error_code == E.UNKNOWN_MEMBER_ID
        stable = await kit.call_future(kit.sync(G, a, gen))
        assert stable.error_code == 0 and stable.assignment == b"A"
        from protocol.messages.sync_group_request import SyncGroupRequest

        missing = await kit.call(SyncGroupRequest(G, gen, a, None, None, None, []), 5)
        assert missing.error_code == E.INCONSISTENT_GROUP_PROTOCOL

    run(tmp_path, scenario)


def test_pending_member_expires_after_session_timeout(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await single_member_group(kit)
        pending = await kit.join_new(G)
        assert pending in kit.coord.groups[G].pending_members
        kit.advance(SESSION + 1)
        assert pending not in kit.coord.groups[G].pending_members

    run(tmp_path, scenario)


def test_leader_that_does_not_rejoin_is_replaced(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, gen = await single_member_group(kit)
        b = await kit.join_new(G)
        join_b, join_a = kit.join(G, b), kit.join(G, a)
        await kit.settle()
        gen = join_a.result().generation_id
        kit.sync(G, b, gen)
        await kit.call_future(kit.sync(G, a, gen, {a: b"1", b: b"2"}))
        # b rejoins (forcing a rebalance); leader a keeps heartbeating but never rejoins
        join_b = kit.join(G, b, protocols=[("range", subscription("t", "u"))])
        await kit.settle()
        for _ in range(REBALANCE // 5000 + 1):
            kit.advance(5000)
            await kit.heartbeat(G, a, gen)
            await kit.settle()
        result = join_b.result()
        assert result.leader == b and result.generation_id == gen + 1

    run(tmp_path, scenario)
