"""FindCoordinator, DescribeGroups, ListGroups, DeleteGroups and the advertised versions."""

from __future__ import annotations

from pathlib import Path

from protocol.error_codes import ErrorCode as E
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.metadata_request import MetadataRequest
from tests.broker.test_group_coordinator import single_member_group
from tests.broker.test_group_kit import GroupKit, run

G = "grp"


def test_api_versions_advertise_the_group_apis(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        response = await kit.call(ApiVersionsRequest(), 2)
        ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        expected = {8: (0, 9), 9: (0, 9), 10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5)}
        expected |= {15: (0, 5), 16: (0, 5), 42: (0, 2), 47: (0, 0)}
        assert {k: ranges[k] for k in expected} == expected

    run(tmp_path, scenario)


def test_find_coordinator_creates_the_topic_and_answers_every_version(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        assert kit.broker.metadata.topic("__consumer_offsets") is None
        v0 = await kit.call(FindCoordinatorRequest(key=G), 0)
        assert v0.error_code == 0 and v0.node_id == 0 and v0.host == "127.0.0.1"
        info = kit.broker.metadata.topic("__consumer_offsets")
        assert info is not None and len(info.partitions) == 3 and info.configs["cleanup.policy"] == "compact"
        assert len(info.partitions[0].replicas) == 1  # standalone: capped at the live brokers
        for version in (1, 2, 3):
            response = await kit.call(FindCoordinatorRequest(key=G, key_type=0), version)
            assert response.error_code == 0 and response.node_id == 0
            assert response.error_message == "NONE"
        batched = await kit.call(FindCoordinatorRequest(key_type=0, coordinator_keys=["a", "b", "日本"]), 4)
        assert [(c.key, c.error_code, c.node_id) for c in batched.coordinators] == [
            ("a", 0, 0),
            ("b", 0, 0),
            ("日本", 0, 0),
        ]
        txn = await kit.call(FindCoordinatorRequest(key="tx", key_type=1), 3)
        assert txn.error_code == E.NONE and txn.node_id == 0  # the transaction coordinator (broker.txn)
        share = await kit.call(FindCoordinatorRequest(key_type=2, coordinator_keys=["s"]), 5)
        assert share.coordinators[0].error_code == E.INVALID_REQUEST
        metadata = await kit.call(MetadataRequest(topics=None), 12)
        internal = [t for t in metadata.topics if t.name == "__consumer_offsets"]
        assert internal and internal[0].is_internal

    run(tmp_path, scenario, create_topic=False)


def test_describe_groups(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        a, _ = await single_member_group(kit)
        response = await kit.call(
            DescribeGroupsRequest(groups=[G, "nobody"], include_authorized_operations=True), 5
        )
        stable, dead = response.groups
        assert (stable.error_code, stable.group_state, stable.protocol_type, stable.protocol_data) == (
            0,
            "Stable",
            "consumer",
            "range",
        )
        [member] = stable.members
        assert (
            member.member_id == a and member.client_id == "test-client" and member.client_host == "/127.0.0.1"
        )
        assert member.member_assignment == b"A" and member.member_metadata.startswith(b"\x00\x00")
        assert stable.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8)
        assert (dead.error_code, dead.group_state, dead.members) == (0, "Dead", [])
        b = await kit.join_new(G)
        kit.join(G, b)
        await kit.settle()
        rebalancing = (await kit.call(DescribeGroupsRequest(groups=[G]), 0)).groups[0]
        assert rebalancing.group_state == "PreparingRebalance" and rebalancing.protocol_data == ""
        assert all(m.member_metadata == b"" and m.member_assignment == b"" for m in rebalancing.members)

    run(tmp_path, scenario)


def test_list_groups_with_filters(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        await single_member_group(kit, "stable-group")
        await kit.commit("offsets-only", {})
        await kit.join_new("empty-group")  # a pending member: the group exists, Empty
        every = await kit.call(ListGroupsRequest(), 0)
        assert every.error_code == 0
        assert {(g.group_id, g.protocol_type) for g in every.groups} >= {("stable-group", "consumer")}
        stable = await kit.call(ListGroupsRequest(states_filter=["stable"]), 4)
        assert [(g.group_id, g.group_state) for g in stable.groups] == [("stable-group", "Stable")]
        empty = await kit.call(ListGroupsRequest(states_filter=["Empty"]), 4)
        assert {g.group_id for g in empty.groups} == {"empty-group"}
        classic = await kit.call(ListGroupsRequest(types_filter=["Classic"]), 5)
        assert {g.group_type for g in classic.groups} == {"classic"} and len(classic.groups) == 2
        consumer = await kit.call(ListGroupsRequest(types_filter=["consumer"]), 5)
        assert consumer.groups == []

    run(tmp_path, scenario)


def test_delete_groups(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

        await kit.call(CreateTopicsRequest(topics=[CreatableTopic("t", 1, 1)]), 5)
        await single_member_group(kit, "busy")
        await kit.commit("idle", {("t", 0): 3})
        response = await kit.call(DeleteGroupsRequest(["busy", "idle", "nobody", "idle"]), 2)
        assert {r.group_id: r.error_code for r in response.results} == {
            "busy": E.NON_EMPTY_GROUP,
            "idle": 0,
            "nobody": E.GROUP_ID_NOT_FOUND,
        }
        assert len(response.results) == 3
        assert "idle" not in kit.coord.groups
        assert await kit.fetch_offsets("idle", {"t": [0]}) == {("t", 0): -1}
        again = await kit.call(DeleteGroupsRequest(["idle"]), 0)
        assert again.results[0].error_code == E.GROUP_ID_NOT_FOUND

    run(tmp_path, scenario)


def test_wrong_coordinator_and_loading_errors(tmp_path: Path) -> None:
    async def scenario(kit: GroupKit) -> None:
        store = kit.coord.store
        index = store.partition_for(G)
        store.owned.discard(index)
        joined = await kit.call_future(kit.join(G))
        assert joined.error_code == E.NOT_COORDINATOR
        described = await kit.call(DescribeGroupsRequest(groups=[G]), 1)
        assert described.groups[0].error_code == E.NOT_COORDINATOR
        store.loading.add(index)
        assert (await kit.call_future(kit.join(G))).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        assert (await kit.call_future(kit.sync(G, "m", 1))).error_code == E.REBALANCE_IN_PROGRESS
        assert await kit.heartbeat(G, "m", 1) == E.NONE  # answered blindly while loading
        listed = await kit.call(ListGroupsRequest(), 3)
        assert listed.error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        deleted = await kit.call(DeleteGroupsRequest([G]), 1)
        assert deleted.results[0].error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        bad = await kit.call_future(kit.join(""))
        assert bad.error_code == E.INVALID_GROUP_ID

    run(tmp_path, scenario)
