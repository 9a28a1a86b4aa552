"""ZooKeeper mode end to end inside one process: Brook brokers on one loop, a real ZooKeeper.

Each test has its own chroot. Brokers listen on 127.0.0.1 port 0; the controller talks to every
broker (itself included) over the network, as Kafka's does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from broker.app import Broker
from broker.cluster.meta_properties import META_PROPERTIES, read_meta_properties
from broker.cluster.metadata_cache import MetadataCache
from broker.cluster.zk import data, paths
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from broker.cluster.zk.errors import BrokerIdInUseError, InconsistentClusterIdError
from broker.config import BrokerConfig
from broker.network.client import ClientConfig, NetworkClient
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.controlled_shutdown_request import ControlledShutdownRequest
from protocol.messages.elect_leaders_request import ElectLeadersRequest, TopicPartitions
from tests.broker.zk.conftest import run
from tests.broker.zk.test_zk_session import _expire_session

WAIT = 15.0


def config(connect: str, data_dir: Path, broker_id: int | None, **extra: str) -> BrokerConfig:
    settings = {
        "zookeeper.connect": connect,
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(data_dir),
        "zookeeper.session.timeout.ms": "6000",
        "controlled.shutdown.retry.backoff.ms": "100",
        "group.initial.rebalance.delay.ms": "0",
        **extra,
    }
    if broker_id is not None:
        settings["broker.id"] = str(broker_id)
    return BrokerConfig(settings)


async def start_broker(connect: str, base: Path, broker_id: int, **extra: str) -> Broker:
    broker = Broker(config(connect, base / f"broker-{broker_id}", broker_id, **extra))
    await broker.start(freeze_gc=False)
    return broker


@asynccontextmanager
async def cluster(connect: str, base: Path, size: int = 3) -> AsyncIterator[list[Broker]]:
    brokers: list[Broker] = []
    try:
        for broker_id in range(size):
            brokers.append(await start_broker(connect, base, broker_id))
        for broker in brokers:
            assert await wait_metadata(broker, lambda c: len(c.alive_broker_ids()) == size)
        yield brokers
    finally:
        for broker in reversed(brokers):
            if broker.zk_cluster is not None:
                await broker.stop()


async def wait_metadata(broker: Broker, predicate: Callable[[MetadataCache], bool]) -> bool:
    assert broker.zk_cluster is not None
    return await broker.zk_cluster.await_metadata(predicate, WAIT)


async def write_isr_and_notify(zk: KafkaZkClient, topic: str, partition: int, isr: tuple[int, ...]) -> None:
    """Write the partition's ISR into its state znode (leader and epochs kept) and post an ISR
    change notification, as a leader did before AlterPartition."""
    state = await zk.get_partition_state(topic, partition)
    assert state is not None
    changed = data.PartitionState(state.leader, state.leader_epoch, isr, state.controller_epoch)
    await zk.set_data(
        paths.partition_state(topic, partition), data.encode_partition_state(changed), state.zk_version
    )
    await zk.create_isr_change_notification([(topic, partition)])


def controller_of(brokers: list[Broker]) -> Broker:
    [controller] = [b for b in brokers if b.zk_cluster is not None and b.zk_cluster.is_active_controller]
    return controller


async def observer(connect: str) -> KafkaZkClient:
    return await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=6000))


async def until(check: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll ``check`` (a condition on state changed by other tasks) until true."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def send(broker: Broker, request: object) -> object:
    client = NetworkClient(ClientConfig())
    try:
        port = broker.bound_ports["PLAINTEXT"]
        response = await client.send(broker.node_id, "127.0.0.1", port, request)  # type: ignore[arg-type]
        return response.body
    finally:
        await client.close()


def test_three_brokers_register_and_one_controller_tells_them_all(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                controller = controller_of(brokers)
                for broker in brokers:
                    assert broker.metadata_cache.controller_id == controller.node_id
                    assert sorted(broker.metadata_cache.alive_broker_ids()) == [0, 1, 2]
                    # /brokers/ids/<id>: Kafka's JSON; the broker epoch is the znode's czxid.
                    got = await zk.get_data(paths.broker_id(broker.node_id))
                    assert got is not None
                    registration = json.loads(got[0])
                    assert registration["version"] == 5
                    port = broker.bound_ports["PLAINTEXT"]
                    assert registration["endpoints"] == [f"PLAINTEXT://127.0.0.1:{port}"]
                    assert registration["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"}
                    assert broker.broker_epoch == got[1].czxid
                assert await zk.get_controller_id() == controller.node_id
                # meta.properties carries ZooKeeper's cluster id.
                cluster_id = await zk.get_cluster_id()
                for broker in brokers:
                    assert broker.cluster_id == cluster_id
                    meta = read_meta_properties(broker.log_dirs[0] / META_PROPERTIES)
                    assert meta["cluster.id"] == cluster_id and meta["broker.id"] == str(broker.node_id)
        finally:
            await zk.close()

    run(body(), 60)


def test_a_topic_written_to_zookeeper_gets_leaders_and_kafkas_partition_state(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                assignment = {0: [0, 1, 2], 1: [1, 2, 0], 2: [2, 0, 1]}
                await zk.create_topic("orders", data.TopicAssignment(uuid.uuid4(), assignment), {})
                for broker in brokers:
                    assert await wait_metadata(
                        broker,
                        lambda c: all(
                            (p := c.partition(TopicPartition("orders", i))) is not None and p.leader >= 0
                            for i in range(3)
                        ),
                    )
                for index, replicas in assignment.items():
                    got = await zk.get_data(paths.partition_state("orders", index))
                    assert got is not None
                    assert json.loads(got[0]) == {
                        "controller_epoch": 1,
                        "leader": replicas[0],
                        "version": 1,
                        "leader_epoch": 0,
                        "isr": replicas,
                    }
                    assert list(json.loads(got[0])) == [
                        "controller_epoch",
                        "leader",
                        "version",
                        "leader_epoch",
                        "isr",
                    ]
                    leader = brokers[replicas[0]]
                    assert leader.replica_manager.control is not None
                    assert (
                        brokers[0].metadata_cache.partition(TopicPartition("orders", index)).leader
                        == replicas[0]
                    )  # type: ignore[union-attr]
        finally:
            await zk.close()

    run(body(), 60)


def test_the_controller_stopping_hands_over_with_a_new_epoch(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                first = controller_of(brokers)
                epoch = await zk.get_controller_epoch()
                assert epoch is not None
                await first.stop()
                rest = [b for b in brokers if b is not first]
                await until(lambda: any(b.zk_cluster and b.zk_cluster.is_active_controller for b in rest))
                second = controller_of(rest)
                after = await zk.get_controller_epoch()
                assert after is not None and after[0] == epoch[0] + 1
                for broker in rest:
                    assert await wait_metadata(
                        broker,
                        lambda c: (
                            c.controller_id == second.node_id
                            and sorted(c.alive_broker_ids()) == sorted(b.node_id for b in rest)
                        ),
                    )
                first.zk_cluster = None  # stopped: the fixture must not stop it again
        finally:
            await zk.close()

    run(body(), 60)


def test_an_expired_session_re_registers_and_the_controller_sees_the_new_epoch(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        async with cluster(connect, tmp_path) as brokers:
            controller = controller_of(brokers)
            victim = next(b for b in brokers if b is not controller)
            assert victim.zk_cluster is not None and controller.zk_cluster is not None
            old_epoch = victim.broker_epoch
            await _expire_session(connect, victim.zk_cluster.zk)
            await until(lambda: victim.broker_epoch > old_epoch)
            driver = controller.zk_cluster.controller
            assert driver is not None
            await until(lambda: driver.controller.context.broker_epoch(victim.node_id) == victim.broker_epoch)
            assert sorted(victim.metadata_cache.alive_broker_ids()) == [0, 1, 2]

    run(body(), 60)


def test_the_controller_resigns_on_session_expiry_and_a_controller_is_elected(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                first = controller_of(brokers)
                assert first.zk_cluster is not None
                epoch = await zk.get_controller_epoch()
                assert epoch is not None
                await _expire_session(connect, first.zk_cluster.zk)

                async def new_epoch() -> bool:
                    now = await zk.get_controller_epoch()
                    return now is not None and now[0] > epoch[0]

                async with asyncio.timeout(WAIT):
                    while not await new_epoch():
                        await asyncio.sleep(0.05)
                controller_id = await zk.get_controller_id()

                def settled() -> bool:
                    active = [
                        b.node_id for b in brokers if b.zk_cluster and b.zk_cluster.is_active_controller
                    ]
                    return active == [controller_id]

                await until(settled)
                for broker in brokers:
                    assert await wait_metadata(broker, lambda c: c.controller_id == controller_id)
        finally:
            await zk.close()

    run(body(), 60)


def test_a_duplicate_broker_id_is_refused(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        async with cluster(connect, tmp_path, size=1):
            twin = Broker(config(connect, tmp_path / "twin", 0))
            with pytest.raises(BrokerIdInUseError, match=r"/brokers/ids/0, node already exists"):
                await twin.start(freeze_gc=False)
            assert twin.zk_cluster is None or twin.zk_cluster._closed

    run(body(), 60)


def test_a_generated_broker_id_is_recorded_and_kept(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        first = Broker(config(connect, tmp_path / "gen", None))
        await first.start(freeze_gc=False)
        assert first.node_id == 1001  # reserved.broker.max.id + the first /brokers/seqid version
        meta = read_meta_properties(tmp_path / "gen" / META_PROPERTIES)
        assert meta["broker.id"] == "1001"
        await first.stop()
        again = Broker(config(connect, tmp_path / "gen", None))
        await again.start(freeze_gc=False)
        try:
            assert again.node_id == 1001
        finally:
            await again.stop()

    run(body(), 60)


def test_log_dirs_of_another_cluster_refuse_to_start(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            await zk.create_top_level_paths()
            await zk.create_or_get_cluster_id("the-zookeeper-cluster")
            data_dir = tmp_path / "other"
            data_dir.mkdir()
            (data_dir / META_PROPERTIES).write_text("cluster.id=another-cluster\nversion=0\nbroker.id=4\n")
            broker = Broker(config(connect, data_dir, 4))
            with pytest.raises(
                InconsistentClusterIdError, match="Expected the-zookeeper-cluster, but read another-cluster"
            ):
                await broker.start(freeze_gc=False)
        finally:
            await zk.close()

    run(body(), 60)


def test_producer_ids_are_unique_across_brokers(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        async with cluster(connect, tmp_path, size=2) as brokers:
            ids = [await brokers[i % 2].next_producer_id() for i in range(6)]
            assert len(set(ids)) == 6
            zk = brokers[0].zk_cluster
            assert zk is not None
            got = await zk.zk.get_data(paths.LATEST_PRODUCER_ID_BLOCK)
            assert got is not None and data.decode_producer_id_block(got[0]).last_id == 1999

    run(body(), 60)


def test_controller_apis_answer_not_controller_off_the_controller(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        async with cluster(connect, tmp_path, size=2) as brokers:
            controller = controller_of(brokers)
            other = next(b for b in brokers if b is not controller)
            shutdown = await send(
                other, ControlledShutdownRequest(broker_id=other.node_id, broker_epoch=other.broker_epoch)
            )
            assert shutdown.error_code == ErrorCode.NOT_CONTROLLER  # type: ignore[attr-defined]
            elect = await send(
                other, ElectLeadersRequest(topic_partitions=[TopicPartitions(topic="t", partitions=[0])])
            )
            [result] = elect.replica_election_results  # type: ignore[attr-defined]
            assert [p.error_code for p in result.partition_result] == [ErrorCode.NOT_CONTROLLER]
            # A stale broker epoch is refused by the controller.
            stale = await send(
                controller,
                ControlledShutdownRequest(broker_id=other.node_id, broker_epoch=other.broker_epoch - 1),
            )
            assert stale.error_code == ErrorCode.STALE_BROKER_EPOCH  # type: ignore[attr-defined]

    run(body(), 60)


def test_controlled_shutdown_and_preferred_election_move_leadership(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                await zk.create_topic("moves", data.TopicAssignment(uuid.uuid4(), {0: [1, 2, 0]}), {})
                tp = TopicPartition("moves", 0)
                assert await wait_metadata(
                    brokers[0], lambda c: (p := c.partition(tp)) is not None and p.leader == 1
                )
                await brokers[1].stop()
                brokers[1].zk_cluster = None
                state = await zk.get_partition_state("moves", 0)
                # Controlled shutdown moved leadership before the broker went: the next replica in ISR.
                assert state is not None and state.leader == 2 and 1 not in state.isr
                assert await wait_metadata(
                    brokers[0], lambda c: (p := c.partition(tp)) is not None and p.leader == 2
                )
                controller = controller_of([b for b in brokers if b.zk_cluster is not None])
                elect = await send(
                    controller,
                    ElectLeadersRequest(
                        election_type=0, topic_partitions=[TopicPartitions(topic="moves", partitions=[0])]
                    ),
                )
                [result] = elect.replica_election_results  # type: ignore[attr-defined]
                # The preferred replica (1) is down: not available.
                assert [p.error_code for p in result.partition_result] == [
                    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
                ]
        finally:
            await zk.close()

    run(body(), 60)


def partition_led(tp: TopicPartition, leader: int) -> Callable[[MetadataCache], bool]:
    return lambda c: (p := c.partition(tp)) is not None and p.leader == leader


def test_topic_deletion_stops_replicas_and_removes_the_znodes(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                await zk.create_topic(
                    "doomed",
                    data.TopicAssignment(uuid.uuid4(), {0: [0, 1], 1: [2, 0]}),
                    {"retention.ms": "1000"},
                )
                for broker in brokers:
                    assert await wait_metadata(broker, partition_led(TopicPartition("doomed", 1), 2))
                await zk.mark_topic_for_deletion("doomed")
                for broker in brokers:
                    assert await wait_metadata(broker, lambda c: not c.contains("doomed"))

                async def gone() -> bool:
                    return (
                        await zk.exists(paths.topic("doomed")) is None
                        and await zk.exists(paths.delete_topic("doomed")) is None
                        and await zk.exists(paths.config_entity("topics", "doomed")) is None
                    )

                async with asyncio.timeout(WAIT):
                    while not await gone():
                        await asyncio.sleep(0.05)
        finally:
            await zk.close()

    run(body(), 60)


def test_partitions_added_to_a_topic_get_leaders(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path, size=2) as brokers:
                topic_id = uuid.uuid4()
                await zk.create_topic("grows", data.TopicAssignment(topic_id, {0: [0, 1]}), {})
                assert await wait_metadata(brokers[1], partition_led(TopicPartition("grows", 0), 0))
                got = await zk.get_topic_assignment("grows")
                assert got is not None
                await zk.set_topic_assignment(
                    "grows", data.TopicAssignment(topic_id, {0: [0, 1], 1: [1, 0]}), got[1]
                )
                assert await wait_metadata(brokers[0], partition_led(TopicPartition("grows", 1), 1))
                state = await zk.get_partition_state("grows", 1)
                assert state is not None and state.isr == (1, 0)
        finally:
            await zk.close()

    run(body(), 60)


def test_alter_partition_on_the_controller_writes_the_isr_and_tells_every_broker(
    connect: str, tmp_path: Path
) -> None:
    from protocol.messages.alter_partition_request import (
        AlterPartitionRequest,
        BrokerState,
        PartitionData,
        TopicData,
    )

    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path) as brokers:
                topic_id = uuid.uuid4()
                await zk.create_topic("shrinks", data.TopicAssignment(topic_id, {0: [1, 2, 0]}), {})
                tp = TopicPartition("shrinks", 0)
                assert await wait_metadata(brokers[0], partition_led(tp, 1))
                before = await zk.get_partition_state("shrinks", 0)
                assert before is not None
                leader = brokers[1]
                request = AlterPartitionRequest(
                    broker_id=1,
                    broker_epoch=leader.broker_epoch,
                    topics=[
                        TopicData(
                            topic_id=topic_id,
                            partitions=[
                                PartitionData(
                                    partition_index=0,
                                    leader_epoch=before.leader_epoch,
                                    new_isr_with_epochs=[
                                        BrokerState(broker_id=1, broker_epoch=leader.broker_epoch)
                                    ],
                                    partition_epoch=before.zk_version,
                                )
                            ],
                        )
                    ],
                )
                other = next(b for b in brokers if not (b.zk_cluster and b.zk_cluster.is_active_controller))
                refused = await send(other, request)
                assert refused.error_code == ErrorCode.NOT_CONTROLLER  # type: ignore[attr-defined]
                response = await send(controller_of(brokers), request)
                assert response.error_code == ErrorCode.NONE  # type: ignore[attr-defined]
                [answer] = response.topics[0].partitions  # type: ignore[attr-defined]
                assert (answer.error_code, answer.isr, answer.partition_epoch) == (
                    0,
                    [1],
                    before.zk_version + 1,
                )
                after = await zk.get_partition_state("shrinks", 0)
                assert after is not None and after.isr == (1,) and after.zk_version == before.zk_version + 1
                for broker in brokers:
                    assert await wait_metadata(
                        broker, lambda c: (p := c.partition(tp)) is not None and p.isr == [1]
                    )
        finally:
            await zk.close()

    run(body(), 60)


def test_isr_change_notifications_reach_every_broker_and_are_deleted(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path, size=2) as brokers:
                await zk.create_topic("isr", data.TopicAssignment(uuid.uuid4(), {0: [0, 1]}), {})
                tp = TopicPartition("isr", 0)
                assert await wait_metadata(brokers[1], partition_led(tp, 0))
                # An old-style leader writes its ISR itself, then notifies.
                await write_isr_and_notify(zk, "isr", 0, (0,))
                for broker in brokers:
                    assert await wait_metadata(
                        broker, lambda c: (p := c.partition(tp)) is not None and p.isr == [0]
                    )
                async with asyncio.timeout(WAIT):
                    while await zk.get_isr_change_notifications():
                        await asyncio.sleep(0.05)
        finally:
            await zk.close()

    run(body(), 60)


def test_auto_rebalance_returns_leadership_to_the_preferred_replica(connect: str, tmp_path: Path) -> None:
    async def body() -> None:
        zk = await observer(connect)
        brokers: list[Broker] = []
        fast = {"leader.imbalance.check.interval.seconds": "1"}
        try:
            for broker_id in range(2):
                brokers.append(await start_broker(connect, tmp_path, broker_id, **fast))
            await zk.create_topic("pref", data.TopicAssignment(uuid.uuid4(), {0: [1, 0]}), {})
            tp = TopicPartition("pref", 0)
            assert await wait_metadata(brokers[0], partition_led(tp, 1))
            await brokers[1].stop()
            assert await wait_metadata(brokers[0], partition_led(tp, 0))
            brokers[1] = await start_broker(connect, tmp_path, 1, **fast)
            # The restarted replica catches up through its fetcher and rejoins the ISR with
            # AlterPartition; only then is the preferred leader eligible again.
            assert await wait_metadata(
                brokers[0], lambda c: (p := c.partition(tp)) is not None and 1 in p.isr
            )
            assert await wait_metadata(brokers[0], partition_led(tp, 1))
        finally:
            for broker in reversed(brokers):
                if broker.zk_cluster is not None:
                    await broker.stop()
            await zk.close()

    run(body(), 60)


def test_turning_on_unclean_election_for_a_topic_elects_its_leaderless_partitions(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path, size=2) as brokers:
                await zk.create_topic("unc", data.TopicAssignment(uuid.uuid4(), {0: [1, 0]}), {})
                tp = TopicPartition("unc", 0)
                assert await wait_metadata(brokers[0], partition_led(tp, 1))
                # Only the leader is in sync: its loss leaves no clean candidate.
                await write_isr_and_notify(zk, "unc", 0, (1,))
                assert await wait_metadata(
                    brokers[0], lambda c: (p := c.partition(tp)) is not None and p.isr == [1]
                )
                assert controller_of(brokers) is brokers[0]  # started first, so elected first
                await brokers[1].stop()
                brokers[1].zk_cluster = None
                assert await wait_metadata(brokers[0], partition_led(tp, -1))
                await zk.change_entity_config("topics", "unc", {"unclean.leader.election.enable": "true"})
                assert await wait_metadata(brokers[0], partition_led(tp, 0))
                after = await zk.get_partition_state("unc", 0)
                assert after is not None and after.leader == 0 and after.isr == (0,)
        finally:
            await zk.close()

    run(body(), 60)


def test_a_rival_controller_fences_the_old_one_which_steps_down(connect: str, tmp_path: Path) -> None:
    """A rival takes /controller and the epoch in one multi-op (as a broker whose election raced
    ahead would); the old controller, whether it learns it from the /controller watch or from a
    refused fenced write, steps down. When the rival goes, a Brook broker is elected again with a
    newer epoch and does the work it missed."""

    async def body() -> None:
        rival = await observer(connect)
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path, size=2) as brokers:
                epoch = await zk.get_controller_epoch()
                assert epoch is not None
                tx = rival._zk.transaction()
                tx.delete(paths.CONTROLLER)
                tx.set_data(paths.CONTROLLER_EPOCH, data.encode_controller_epoch(epoch[0] + 1), epoch[1])
                tx.create(
                    paths.CONTROLLER,
                    data.encode_controller(data.ControllerRegistration(99, 1)),
                    ephemeral=True,
                )
                results = await asyncio.to_thread(tx.commit)
                assert not any(isinstance(r, Exception) for r in results), results
                await zk.create_topic("fenced", data.TopicAssignment(uuid.uuid4(), {0: [1, 0]}), {})
                await until(
                    lambda: not any(b.zk_cluster and b.zk_cluster.is_active_controller for b in brokers)
                )
                await rival.close()  # the rival dies: its /controller goes
                tp = TopicPartition("fenced", 0)
                for broker in brokers:
                    assert await wait_metadata(broker, partition_led(tp, 1))
                after = await zk.get_controller_epoch()
                assert after is not None and after[0] == epoch[0] + 2
                state = await zk.get_partition_state("fenced", 0)
                assert state is not None and state.controller_epoch == after[0]
                controller_id = await zk.get_controller_id()
                assert [b.node_id for b in brokers if b.zk_cluster and b.zk_cluster.is_active_controller] == [
                    controller_id
                ]
        finally:
            await rival.close()
            await zk.close()

    run(body(), 60)


def test_elect_leaders_on_the_controller_moves_leadership_to_the_preferred_replica(
    connect: str, tmp_path: Path
) -> None:
    async def body() -> None:
        zk = await observer(connect)
        try:
            async with cluster(connect, tmp_path, size=2) as brokers:
                await zk.create_topic("elect", data.TopicAssignment(uuid.uuid4(), {0: [1, 0], 1: [0, 1]}), {})
                tp = TopicPartition("elect", 0)
                assert await wait_metadata(brokers[0], partition_led(tp, 1))
                controller = controller_of(brokers)
                everything = await send(
                    controller, ElectLeadersRequest(election_type=0, topic_partitions=None)
                )
                # Every leader is preferred: an election over all partitions lists none.
                assert everything.replica_election_results == []  # type: ignore[attr-defined]
                # Leadership elsewhere, as after a failure (written as an old leader would).
                state = await zk.get_partition_state("elect", 0)
                assert state is not None
                moved = data.PartitionState(0, state.leader_epoch + 1, (0, 1), state.controller_epoch)
                await zk.set_data(
                    paths.partition_state("elect", 0), data.encode_partition_state(moved), state.zk_version
                )
                await zk.create_isr_change_notification([("elect", 0)])
                assert await wait_metadata(brokers[0], partition_led(tp, 0))
                request = ElectLeadersRequest(
                    election_type=0, topic_partitions=[TopicPartitions(topic="elect", partitions=[0, 1, 7])]
                )
                response = await send(controller, request)
                [result] = response.replica_election_results  # type: ignore[attr-defined]
                assert {p.partition_id: p.error_code for p in result.partition_result} == {
                    0: ErrorCode.NONE,
                    1: ErrorCode.ELECTION_NOT_NEEDED,
                    7: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                }
                # Answered once the controller's own metadata shows the new leader (Kafka's
                # DelayedElectLeader), so a client asking it next sees the election done.
                cached = controller.metadata_cache.partition(tp)
                assert cached is not None and cached.leader == 1
                for broker in brokers:
                    assert await wait_metadata(broker, partition_led(tp, 1))
                after = await zk.get_partition_state("elect", 0)
                assert (
                    after is not None and after.leader == 1 and after.leader_epoch == moved.leader_epoch + 1
                )
        finally:
            await zk.close()

    run(body(), 60)
