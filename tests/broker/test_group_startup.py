"""Four consumers starting together with a session timeout (3 s) shorter than the initial join
phase (Kafka's 3 s ``group.initial.rebalance.delay.ms``, extended once while members keep
arriving): the scenario of kafka-python's own group test, on the manual clock.

Also the rejoin kafka-python 3.0.12 sends when it discards a SyncGroup answer that completed
between two polls: a follower with unchanged metadata gets the current generation at once (no
rebalance), as Kafka's doCurrentMemberJoinGroup answers it; only the leader's rejoin rebalances.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from broker.group.state import GroupState
from protocol.error_codes import ErrorCode as E
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from tests.broker.test_group_kit import GroupKit, run

G = "startup"
SESSION = 3000
DELAY = 3000
SETTINGS = {"group.initial.rebalance.delay.ms": str(DELAY), "group.min.session.timeout.ms": str(SESSION)}


async def four_members_joined(kit: GroupKit) -> tuple[list[str], list[asyncio.Future[Any]]]:
    """Four v7 members get their ids, then wait in their joins during the initial delay."""
    ids = [await kit.join_new(G, version=7, session=SESSION) for _ in range(4)]
    joins: list[asyncio.Future[Any]] = [kit.join(G, m, version=7, session=SESSION) for m in ids]
    await kit.settle()
    return ids, joins


def test_members_waiting_through_the_initial_delay_outlive_their_session_timeout(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        ids, joins = await four_members_joined(kit)
        group = kit.coord.groups[G]
        kit.advance(DELAY)  # members arrived during the first delay: it is extended once
        await kit.settle()
        assert not any(j.done() for j in joins) and group.state is GroupState.PREPARING_REBALANCE
        assert set(group.members) == set(ids)  # 3 s passed: nobody expired while waiting
        kit.advance(DELAY)
        await kit.settle()
        answers = [j.result() for j in joins]
        assert {a.error_code for a in answers} == {0}
        assert {a.generation_id for a in answers} == {1}
        leader = answers[0].leader
        assert [len(a.members) for a in answers] == [4 if m == leader else 0 for m in ids]

        syncs = [kit.sync(G, m, 1, {x: x.encode() for x in ids} if m == leader else None) for m in ids]
        await kit.settle()
        assert [s.result().assignment for s in syncs] == [m.encode() for m in ids]
        assert group.state is GroupState.STABLE
        for _ in range(8):  # 4 s of heartbeats every 500 ms: the session keeps them all
            kit.advance(500)
            assert [await kit.heartbeat(G, m, 1) for m in ids] == [E.NONE] * 4
        assert group.state is GroupState.STABLE and len(group.members) == 4

    run(tmp_path, scenario, **SETTINGS)


def test_follower_rejoin_with_same_metadata_is_answered_at_once_leader_rejoin_rebalances(
    tmp_path: Path,
) -> None:
    async def scenario(kit: GroupKit) -> None:
        ids, joins = await four_members_joined(kit)
        kit.advance(2 * DELAY)
        await kit.settle()
        leader = joins[0].result().leader
        for m in ids:
            kit.sync(G, m, 1, {x: x.encode() for x in ids} if m == leader else None)
        await kit.settle()
        group = kit.coord.groups[G]
        assert group.state is GroupState.STABLE
        follower = next(m for m in ids if m != leader)

        again = await kit.call_future(kit.join(G, follower, version=7, session=SESSION))
        assert again.error_code == 0 and again.generation_id == 1 and again.leader == leader
        assert again.members == [] and group.state is GroupState.STABLE
        synced = await kit.call_future(kit.sync(G, follower, 1))
        assert synced.error_code == 0 and synced.assignment == follower.encode()

        leader_join = kit.join(G, leader, version=7, session=SESSION)
        await kit.settle()
        assert not leader_join.done() and group.state is GroupState.PREPARING_REBALANCE
        assert await kit.heartbeat(G, follower, 1) == E.REBALANCE_IN_PROGRESS

    run(tmp_path, scenario, **SETTINGS)


def test_member_joins_a_group_whose_members_all_left_during_the_initial_delay(tmp_path: Path) -> None:
    """Kafka's supportsProtocols counts, per protocol, the members supporting it against the
    group size: with no member left (the initial delay keeps the group in PreparingRebalance),
    any protocol of the group's type is accepted, not INCONSISTENT_GROUP_PROTOCOL."""

    async def scenario(kit: GroupKit) -> None:
        first = await kit.join_new(G, version=7, session=SESSION)
        first_join = kit.join(G, first, version=7, session=SESSION)
        await kit.settle()
        left = await kit.call(LeaveGroupRequest(G, members=[MemberIdentity(first, None)]), 3)
        assert left.error_code == 0 and first_join.result().error_code == E.UNKNOWN_MEMBER_ID
        group = kit.coord.groups[G]
        assert group.state is GroupState.PREPARING_REBALANCE and not group.members

        second = await kit.call_future(kit.join(G, version=7, session=SESSION))
        assert second.error_code == E.MEMBER_ID_REQUIRED
        second_join = kit.join(G, second.member_id, version=7, session=SESSION)
        await kit.settle()
        kit.advance(2 * DELAY)
        await kit.settle()
        answer = second_join.result()
        assert answer.error_code == 0 and answer.generation_id == 1 and answer.leader == second.member_id
        other_type = await kit.call_future(kit.join(G, version=7, session=SESSION, protocol_type="connect"))
        assert other_type.error_code == E.INCONSISTENT_GROUP_PROTOCOL

    run(tmp_path, scenario, **SETTINGS)
