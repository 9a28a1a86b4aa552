"""KafkaZkClient against a real ZooKeeper: each operation, fencing, ACLs, watches on the loop."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.protocol.states import WatchedEvent

from broker.cluster.zk import data, paths
from broker.cluster.zk.client import KafkaZkClient, ZkSettings, split_chroot
from broker.cluster.zk.errors import (
    BadVersionError,
    BrokerIdInUseError,
    ControllerMovedError,
    NodeExistsError,
    SecureAclsUnavailableError,
    ZkConnectionTimeoutError,
)
from compat_tests.zookeeper import ZooKeeperServer, free_port
from tests.broker.zk.conftest import run


def _broker(broker_id: int, port: int = 9092) -> data.BrokerRegistration:
    return data.BrokerRegistration(
        broker_id, (data.Endpoint("PLAINTEXT", "127.0.0.1", port, "PLAINTEXT"),), timestamp_ms=1
    )


async def _client(connect: str, **settings: object) -> KafkaZkClient:
    return await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=6000, **settings))  # type: ignore[arg-type]


def test_split_chroot() -> None:
    assert split_chroot("a:1,b:2/kafka/x") == ("a:1,b:2", "/kafka/x")
    assert split_chroot("a:1") == ("a:1", None)
    assert split_chroot("a:1/") == ("a:1", None)


def test_chroot_is_created_and_everything_lives_under_it(zookeeper: ZooKeeperServer, chroot: str) -> None:
    async def body() -> None:
        client = await _client(f"{zookeeper.connect_string}{chroot}/nested")
        try:
            await client.create_top_level_paths()
            assert await client.create_or_get_cluster_id("c1") == "c1"
        finally:
            await client.close()
        plain = await _client(zookeeper.connect_string)
        try:
            got = await plain.get_data(f"{chroot}/nested/cluster/id")
            assert got is not None and data.decode_cluster_id(got[0]) == "c1"
            for path in paths.PERSISTENT_PATHS:
                assert await plain.exists(f"{chroot}/nested{path}") is not None, path
            assert await plain.exists("/cluster/id") is None
        finally:
            await plain.close()

    run(body())


def test_unreachable_zookeeper_times_out_with_kafkas_message() -> None:
    port = free_port()  # nothing listens there

    async def body() -> None:
        with pytest.raises(ZkConnectionTimeoutError, match="Timed out waiting for connection"):
            await KafkaZkClient.connect(
                ZkSettings(f"127.0.0.1:{port}", session_timeout_ms=6000, connection_timeout_ms=500)
            )

    run(body())


def test_cluster_id_is_created_once(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            assert await a.get_cluster_id() is None
            assert await a.create_or_get_cluster_id("first") == "first"
            assert await b.create_or_get_cluster_id("second") == "first"
            got = await b.get_data(paths.CLUSTER_ID)
            assert got is not None and got[0] == b'{"version":"1","id":"first"}'
        finally:
            await a.close()
            await b.close()

    run(body())


def test_broker_registration_epoch_and_duplicate_id(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            epoch = await a.register_broker(_broker(1))
            got = await a.get_data(paths.broker_id(1))
            assert got is not None
            assert epoch == got[1].czxid  # the broker epoch is the znode's czxid
            assert got[1].ephemeralOwner == a.session_id
            assert got[0] == data.encode_broker(_broker(1))
            # registering again in the same session is idempotent
            assert await a.register_broker(_broker(1)) == epoch

            with pytest.raises(BrokerIdInUseError) as info:
                await b.register_broker(_broker(1, 9093))
            assert str(info.value) == (
                f"Error while creating ephemeral at /brokers/ids/1, node already exists and owner "
                f"'0x{a.session_id:x}' does not match current session '0x{b.session_id:x}'"
            )
            epoch2 = await b.register_broker(_broker(2, 9093))
            live = await a.get_live_brokers()
            assert sorted(live) == [1, 2]
            assert live[1] == (_broker(1), epoch) and live[2] == (_broker(2, 9093), epoch2)
            assert epoch2 > epoch
        finally:
            await a.close()
        try:
            # a's session closed: its ephemeral went with it, the id is free for b
            assert sorted(await b.get_live_brokers()) == [2]
            assert await b.register_broker(_broker(1, 9093)) > 0
        finally:
            await b.close()

    run(body())


def test_broker_id_generation(connect: str) -> None:
    async def body() -> None:
        clients = [await _client(connect) for _ in range(3)]
        try:
            first = await clients[0].generate_broker_id(1000)
            assert first == 1001  # the seqid znode's version starts at 1 after the first set
            ids = await asyncio.gather(*(c.generate_broker_id(1000) for c in clients for _ in range(5)))
            assert sorted(ids) == list(range(1002, 1017))
        finally:
            for c in clients:
                await c.close()

    run(body())


def test_controller_election_and_fencing(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            epoch, version = await a.register_controller_and_increment_epoch(1)
            assert epoch == 1
            assert await a.get_controller_epoch() == (1, version)
            got = await a.get_data(paths.CONTROLLER)
            assert got is not None and got[1].ephemeralOwner == a.session_id
            assert data.decode_controller(got[0]).broker_id == 1
            with pytest.raises(ControllerMovedError):
                await b.register_controller_and_increment_epoch(2)
            assert await b.get_controller_id() == 1

            # the controller's fenced writes succeed
            await a.fenced_create("/fenced", b"a1", version)
            await a.fenced_set("/fenced", b"a2", 0, version)

            # a resigns; b is elected and bumps the epoch (and its znode version)
            await a.delete_controller(version)
            epoch_b, version_b = await b.register_controller_and_increment_epoch(2)
            assert (epoch_b, version_b) == (2, version + 1)

            # the old controller is fenced: nothing it writes lands
            with pytest.raises(ControllerMovedError, match="Expected zkVersion = "):
                await a.fenced_set("/fenced", b"stale", 1, version)
            with pytest.raises(ControllerMovedError):
                await a.fenced_create("/fenced-other", b"stale", version)
            with pytest.raises(ControllerMovedError):
                await a.fenced_delete("/fenced", -1, version)
            got = await b.get_data("/fenced")
            assert got is not None and got[0] == b"a2"
            assert await b.exists("/fenced-other") is None
            # the new controller's own conditional write still checks the znode's version
            with pytest.raises(BadVersionError):
                await b.fenced_set("/fenced", b"b", 0, version_b)
            await b.fenced_set("/fenced", b"b", 1, version_b)
        finally:
            await a.close()
            await b.close()

    run(body())


def test_controller_ephemeral_goes_with_the_session(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            await a.register_controller_and_increment_epoch(1)
            gone = asyncio.Event()

            def on_change(event: WatchedEvent) -> None:
                gone.set()

            assert await b.get_controller_id(watch=on_change) == 1
            await a.close()
            await asyncio.wait_for(gone.wait(), 10)
            assert await b.get_controller_id() is None
            assert (await b.register_controller_and_increment_epoch(2))[0] == 2
        finally:
            await a.close()
            await b.close()

    run(body())


def test_topics_and_partition_states(connect: str) -> None:
    topic_id = uuid.uuid4()
    assignment = data.TopicAssignment(topic_id, {0: [1, 2], 1: [2, 1]})

    async def body() -> None:
        controller, broker = await _client(connect), await _client(connect)
        try:
            await controller.create_top_level_paths()
            _, epoch_version = await controller.register_controller_and_increment_epoch(1)
            await broker.create_topic("t", assignment, {"retention.ms": "1000"})
            with pytest.raises(NodeExistsError):
                await broker.create_topic("t", assignment, {})
            assert await broker.get_all_topics() == ["t"]
            got = await controller.get_topic_assignment("t")
            assert got is not None and got[0] == assignment and got[1] == 0
            assert await controller.get_entity_config("topics", "t") == {"retention.ms": "1000"}

            states = {
                0: data.PartitionState(1, 0, (1, 2), 1),
                1: data.PartitionState(2, 0, (2, 1), 1),
            }
            results = await controller.create_partition_states("t", states, epoch_version)
            assert results == {0: 0, 1: 0}
            again = await controller.create_partition_states("t", states, epoch_version)
            assert all(isinstance(r, NodeExistsError) for r in again.values())
            read = await broker.get_partition_states([("t", 0), ("t", 1), ("t", 9)])
            assert read == {("t", 0): states[0], ("t", 1): states[1]}
            raw = await broker.get_data(paths.partition_state("t", 0))
            assert raw is not None
            assert raw[0] == b'{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2]}'

            # leader 1 fails: the controller moves leadership, conditional on the zkVersion it read
            moved = data.PartitionState(2, 1, (2,), 1, zk_version=0)
            assert await controller.update_partition_state("t", 0, moved, epoch_version) == 1
            with pytest.raises(BadVersionError):  # a write based on the stale version loses
                await controller.update_partition_state("t", 0, moved, epoch_version)
            current = await broker.get_partition_state("t", 0)
            assert current == data.PartitionState(2, 1, (2,), 1, zk_version=1)

            # reassignment in progress, fenced and conditional on the assignment's version
            moving = data.TopicAssignment(topic_id, {0: [1, 2, 3], 1: [2, 1]}, {0: [3]}, {})
            new_version = await controller.set_topic_assignment("t", moving, 0, epoch_version)
            assert new_version == 1
            with pytest.raises(BadVersionError):
                await controller.set_topic_assignment("t", moving, 0, epoch_version)

            # deletion: marked by an admin, completed by the controller
            await broker.mark_topic_for_deletion("t")
            await broker.mark_topic_for_deletion("t")  # twice is fine
            assert await controller.get_topics_marked_for_deletion() == ["t"]
            await controller.delete_topic_znodes("t", epoch_version)
            assert await broker.get_all_topics() == []
            assert await broker.get_topics_marked_for_deletion() == []
            assert await broker.exists(paths.config_entity("topics", "t")) is None
        finally:
            await controller.close()
            await broker.close()

    run(body())


def test_stale_controller_cannot_delete_a_topic(connect: str) -> None:
    async def body() -> None:
        old, new = await _client(connect), await _client(connect)
        try:
            _, old_version = await old.register_controller_and_increment_epoch(1)
            await old.create_topic("t", data.TopicAssignment(None, {0: [1]}), {})
            await old.delete_controller(old_version)
            await new.register_controller_and_increment_epoch(2)
            with pytest.raises(ControllerMovedError):
                await old.delete_topic_znodes("t", old_version)
            assert await new.get_all_topics() == ["t"]
        finally:
            await old.close()
            await new.close()

    run(body())


def test_config_changes(connect: str) -> None:
    async def body() -> None:
        a = await _client(connect)
        try:
            await a.create_top_level_paths()
            first = await a.change_entity_config("topics", "t", {"cleanup.policy": "compact"})
            await a.change_entity_config("brokers", paths.DEFAULT_ENTITY, {"log.retention.ms": "5"})
            assert first == f"{paths.CONFIG_CHANGES}/config_change_0000000000"
            changes = await a.get_config_changes()
            assert changes == [
                ("config_change_0000000000", "topics/t"),
                ("config_change_0000000001", "brokers/<default>"),
            ]
            got = await a.get_data(first)
            assert got is not None and got[0] == b'{"version":2,"entity_path":"topics/t"}'
            assert await a.get_entity_config("brokers", "<default>") == {"log.retention.ms": "5"}
            await a.set_or_create_entity_config("topics", "t", {})
            assert await a.get_entity_config("topics", "t") == {}
            await a.delete_config_changes([name for name, _ in changes])
            assert await a.get_config_changes() == []
        finally:
            await a.close()

    run(body())


def test_isr_change_and_log_dir_event_notifications(connect: str) -> None:
    async def body() -> None:
        controller, broker = await _client(connect), await _client(connect)
        try:
            await broker.create_top_level_paths()
            _, version = await controller.register_controller_and_increment_epoch(1)
            await broker.create_isr_change_notification([("t", 0), ("t", 1)])
            await broker.create_isr_change_notification([("u", 0)])
            seqs = await controller.get_isr_change_notifications()
            assert seqs == ["0000000000", "0000000001"]
            assert await controller.get_partitions_from_isr_changes(seqs) == {
                ("t", 0),
                ("t", 1),
                ("u", 0),
            }
            await controller.delete_isr_change_notifications(seqs, version)
            assert await controller.get_isr_change_notifications() == []

            await broker.create_log_dir_event_notification(3)
            events = await controller.get_log_dir_event_notifications()
            assert await controller.get_brokers_from_log_dir_events(events) == [3]
            await controller.delete_log_dir_event_notifications(events, version + 1)  # stale
        except ControllerMovedError:
            assert await controller.get_log_dir_event_notifications() == events
            await controller.delete_log_dir_event_notifications(events, version)
            assert await controller.get_log_dir_event_notifications() == []
        else:
            raise AssertionError("a delete with a wrong epoch version was not fenced")
        finally:
            await controller.close()
            await broker.close()

    run(body())


def test_admin_requests_written_by_kafka_tools_are_read(connect: str) -> None:
    async def body() -> None:
        controller = await _client(connect)
        try:
            _, version = await controller.register_controller_and_increment_epoch(1)
            assert await controller.get_partition_reassignment() == {}
            await controller.create(
                paths.REASSIGN_PARTITIONS,
                b'{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}',
            )
            await controller.create(
                paths.PREFERRED_REPLICA_ELECTION,
                b'{"version":1,"partitions":[{"topic":"t","partition":0}]}',
            )
            assert await controller.get_partition_reassignment() == {("t", 0): [2, 3]}
            assert await controller.get_preferred_replica_election() == {("t", 0)}
            await controller.delete_partition_reassignment(version)
            await controller.delete_preferred_replica_election(version)
            assert await controller.exists(paths.REASSIGN_PARTITIONS) is None
            assert await controller.exists(paths.PREFERRED_REPLICA_ELECTION) is None
        finally:
            await controller.close()

    run(body())


def test_producer_id_blocks_from_concurrent_clients_are_disjoint(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            first = await a.allocate_producer_id_block(1)
            assert (first.first_id, first.last_id) == (0, 999)

            async def take(client: KafkaZkClient, broker_id: int) -> list[data.ProducerIdBlock]:
                return [await client.allocate_producer_id_block(broker_id) for _ in range(15)]

            blocks_a, blocks_b = await asyncio.gather(take(a, 1), take(b, 2))
            blocks = sorted([first, *blocks_a, *blocks_b], key=lambda blk: blk.first_id)
            # disjoint and gapless: block n starts where n-1 ended
            assert [blk.first_id for blk in blocks] == [1000 * i for i in range(31)]
            assert all(blk.size == 1000 for blk in blocks)
            got = await a.get_data(paths.LATEST_PRODUCER_ID_BLOCK)
            assert got is not None
            assert data.decode_producer_id_block(got[0]) == blocks[-1]
        finally:
            await a.close()
            await b.close()

    run(body())


def test_watches_and_callbacks_run_on_the_loop(connect: str) -> None:
    async def body() -> None:
        a, b = await _client(connect), await _client(connect)
        try:
            loop_thread = threading.get_ident()
            seen: list[tuple[str, int]] = []
            fired = asyncio.Event()

            def on_event(event: WatchedEvent) -> None:
                seen.append((event.type, threading.get_ident()))
                fired.set()

            await a.create("/watched", b"1")
            assert await a.get_data("/watched", watch=on_event) is not None
            await b.set_data("/watched", b"2")
            await asyncio.wait_for(fired.wait(), 10)
            assert seen == [("CHANGED", loop_thread)]

            fired.clear()
            assert await a.get_children("/watched", watch=on_event) == []
            await b.create("/watched/child")
            await asyncio.wait_for(fired.wait(), 10)
            assert seen[-1] == ("CHILD", loop_thread)
        finally:
            await a.close()
            await b.close()

    run(body())


def test_set_acl_needs_authentication(connect: str) -> None:
    async def body() -> None:
        with pytest.raises(SecureAclsUnavailableError, match=r"zookeeper\.set\.acl is true"):
            await KafkaZkClient.connect(ZkSettings(connect, set_acl=True))

    run(body())


def test_set_acl_with_digest_auth_protects_znodes(zookeeper: ZooKeeperServer, chroot: str) -> None:
    connect = f"{zookeeper.connect_string}{chroot}"

    async def body() -> None:
        secure = await _client(connect, set_acl=True, auth_digest="brook:secret")
        try:
            await secure.create_top_level_paths()
            await secure.change_entity_config("brokers", "1", {"k": "v"})
            await secure.create_topic("t", data.TopicAssignment(None, {0: [1]}), {})
            acl, _ = await asyncio.to_thread(secure._zk.get_acls, "/config/brokers/1")
            assert [(a.perms, a.id.scheme) for a in acl] == [(31, "digest")]
        finally:
            await secure.close()

        anonymous = KazooClient(hosts=connect)
        await asyncio.to_thread(anonymous.start, 10)
        try:
            acl, _ = await asyncio.to_thread(anonymous.get_acls, "/brokers/topics/t")
            # ZooKeeper shows a digest id's hash only to those with ADMIN on the znode: "brook:x"
            assert sorted((a.perms, a.id.scheme, a.id.id.split(":")[0]) for a in acl) == sorted(
                [(31, "digest", "brook"), (1, "world", "anyone")]
            )
            # world-readable: anyone reads it
            value, _ = await asyncio.to_thread(anonymous.get, "/brokers/topics/t")
            assert value
            # sensitive: broker configs are creator-only, not even their ACL is readable
            with pytest.raises(NoAuthError):
                await asyncio.to_thread(anonymous.get_acls, "/config/brokers/1")
            with pytest.raises(NoAuthError):
                await asyncio.to_thread(anonymous.get, "/config/brokers/1")
            with pytest.raises(NoAuthError):
                await asyncio.to_thread(anonymous.set, "/brokers/topics/t", b"x")
        finally:
            await asyncio.to_thread(anonymous.stop)
            await asyncio.to_thread(anonymous.close)

    run(body())
