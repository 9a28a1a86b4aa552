"""ZooKeeper mode with real processes: a ZooKeeper from Debian's package and three
``python -m broker`` processes, driven by confluent-kafka (librdkafka) and by ZooKeeper itself.

Topics are created by writing ``/brokers/topics/<t>`` (as Kafka's AdminZkClient does), so these
tests depend only on the controller, not on the admin requests. Without replica fetchers (issue
13) a follower never catches up: data is produced and read on partitions of one replica, while
leadership moves are checked on partitions of three replicas with acks=1.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from broker.cluster.zk import data
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from compat_tests.harness import BrokerProcess, free_port
from compat_tests.zookeeper import ZooKeeperServer

T = TypeVar("T")
SESSION_TIMEOUT_MS = 6000
#: Bound on a leader or controller change after a kill -9: the session timeout plus a margin.
FAILOVER_BOUND_S = SESSION_TIMEOUT_MS / 1000 + 6


def zk_run(connect: str, work: Callable[[KafkaZkClient], Coroutine[Any, Any, T]]) -> T:
    """One ZooKeeper session for ``work`` (the test's own view of the cluster)."""

    async def body() -> T:
        zk = await KafkaZkClient.connect(ZkSettings(connect, session_timeout_ms=SESSION_TIMEOUT_MS))
        try:
            return await asyncio.wait_for(work(zk), 30)
        finally:
            await zk.close()

    return asyncio.run(body())


def broker_process(base: Path, connect: str, broker_id: int, **extra: str) -> BrokerProcess:
    return BrokerProcess(
        base / f"broker-{broker_id}" / "data",
        {
            "broker.id": str(broker_id),
            "zookeeper.connect": connect,
            "zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS),
            "controlled.shutdown.retry.backoff.ms": "200",
            **extra,
        },
    )


class Cluster:
    def __init__(self, base: Path, connect: str, size: int = 3) -> None:
        self.connect = connect
        self.brokers = [broker_process(base, connect, i) for i in range(size)]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def start(self) -> Cluster:
        for broker in self.brokers:
            broker.start()
        wait_for(lambda: len(self.admin().list_topics(timeout=5).brokers) == len(self.brokers), "3 brokers")
        return self

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def stop(self) -> None:
        for broker in self.brokers:
            broker.kill() if not broker.alive() else broker.stop()

    def partition_state(self, topic: str, partition: int) -> data.PartitionState | None:
        return zk_run(self.connect, lambda zk: zk.get_partition_state(topic, partition))

    def controller(self) -> tuple[int | None, int | None]:
        async def read(zk: KafkaZkClient) -> tuple[int | None, int | None]:
            epoch = await zk.get_controller_epoch()
            return await zk.get_controller_id(), epoch[0] if epoch else None

        return zk_run(self.connect, read)

    def create_topic(self, topic: str, assignment: dict[int, list[int]]) -> None:
        zk_run(
            self.connect,
            lambda zk: zk.create_topic(topic, data.TopicAssignment(uuid.uuid4(), assignment), {}),
        )


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> float:
    """Poll ``check`` until true (the state is in other processes); the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # a client or ZooKeeper hiccup while the cluster changes: poll again
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def cluster(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[Cluster]:
    chroot = f"/brook-{uuid.uuid4().hex[:8]}"
    running = Cluster(tmp_path, zookeeper.connect_string + chroot).start()
    try:
        yield running
    finally:
        running.stop()


def led_by(cluster: Cluster, topic: str, partition: int) -> int:
    state = cluster.partition_state(topic, partition)
    return -1 if state is None else state.leader


def metadata_leaders(cluster: Cluster, topic: str) -> dict[int, int]:
    topics = cluster.admin().list_topics(topic, timeout=5).topics
    meta = topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {p.id: p.leader for p in meta.partitions.values()}


def produce(
    bootstrap: str, topic: str, partition: int, values: list[bytes], acks: str = "all"
) -> list[KafkaError]:
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "message.timeout.ms": 30000})
    for value in values:
        producer.produce(topic, value, partition=partition, on_delivery=delivered)
    assert producer.flush(30) == 0
    return errors


def consume(bootstrap: str, topic: str, partition: int, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        return got
    finally:
        consumer.close()


def test_three_brokers_one_controller_and_data_through_leaders_on_each(cluster: Cluster) -> None:
    metadata = cluster.admin().list_topics(timeout=5)
    assert sorted(metadata.brokers) == [0, 1, 2]
    controller, epoch = cluster.controller()
    assert metadata.controller_id == controller and epoch == 1
    # One partition led by each broker.
    cluster.create_topic("spread", {0: [0], 1: [1], 2: [2]})
    wait_for(lambda: metadata_leaders(cluster, "spread") == {0: 0, 1: 1, 2: 2}, "leaders of spread")
    for partition in range(3):
        state = cluster.partition_state("spread", partition)
        assert state is not None and (state.leader, state.isr, state.controller_epoch) == (
            partition,
            (partition,),
            1,
        )
        values = [f"p{partition}-{i}".encode() for i in range(20)]
        assert produce(cluster.bootstrap, "spread", partition, values) == []
        assert consume(cluster.bootstrap, "spread", partition, 20) == values


def test_kill_9_of_a_leader_then_of_the_controller(cluster: Cluster) -> None:
    controller, epoch = cluster.controller()
    assert controller is not None and epoch is not None
    # A partition led by a broker that is not the controller, replicated on all three.
    victim = next(b for b in range(3) if b != controller)
    replicas = [victim] + [b for b in range(3) if b != victim]
    cluster.create_topic("failover", {0: replicas})
    wait_for(lambda: led_by(cluster, "failover", 0) == victim, "first leader")
    cluster.brokers[victim].kill()
    took = wait_for(
        lambda: led_by(cluster, "failover", 0) not in (-1, victim), "a new leader", FAILOVER_BOUND_S
    )
    print(f"new leader {took:.1f} s after kill -9 of the leader (session timeout {SESSION_TIMEOUT_MS} ms)")
    new_leader = led_by(cluster, "failover", 0)
    assert new_leader == replicas[1]
    wait_for(lambda: metadata_leaders(cluster, "failover") == {0: new_leader}, "clients see the new leader")
    assert produce(cluster.bootstrap, "failover", 0, [b"after"], acks="1") == []

    cluster.brokers[controller].kill()
    took = wait_for(
        lambda: cluster.controller()[0] not in (None, controller), "a new controller", FAILOVER_BOUND_S
    )
    print(f"new controller {took:.1f} s after kill -9 of the controller")
    new_controller, new_epoch = cluster.controller()
    assert new_epoch == epoch + 1
    wait_for(lambda: cluster.admin().list_topics(timeout=5).controller_id == new_controller, "clients see it")


def test_sigterm_moves_leadership_first_and_producers_see_no_error(cluster: Cluster) -> None:
    controller, _ = cluster.controller()
    leaving = next(b for b in range(3) if b != controller)
    replicas = [leaving] + [b for b in range(3) if b != leaving]
    cluster.create_topic("bounce", {0: replicas})
    wait_for(lambda: metadata_leaders(cluster, "bounce") == {0: leaving}, "first leader")
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1", "message.timeout.ms": 30000})

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    stopped = time.monotonic()
    cluster.brokers[leaving].proc.send_signal(15)  # type: ignore[union-attr]
    sent = 0
    while cluster.brokers[leaving].alive() and time.monotonic() - stopped < 20:
        producer.produce("bounce", b"x", partition=0, on_delivery=delivered)
        sent += 1
        producer.poll(0.01)
    for _ in range(50):
        producer.produce("bounce", b"y", partition=0, on_delivery=delivered)
        sent += 1
    assert producer.flush(30) == 0
    assert cluster.brokers[leaving].proc.wait(5) == 0  # type: ignore[union-attr]
    assert errors == [] and sent > 50
    state = cluster.partition_state("bounce", 0)
    assert state is not None and state.leader == replicas[1] and leaving not in state.isr


def test_restarting_the_whole_cluster_keeps_its_metadata(cluster: Cluster) -> None:
    cluster.create_topic("kept", {0: [0, 1, 2], 1: [1, 2, 0]})
    wait_for(lambda: metadata_leaders(cluster, "kept") == {0: 0, 1: 1}, "leaders")
    # The leaders above may come from another broker than the one this admin asks: keep asking
    # until the answer has both partitions too.
    seen: list[Any] = []

    def full_metadata() -> bool:
        seen.append(cluster.admin().list_topics("kept", timeout=5).topics["kept"])
        return len(seen[-1].partitions) == 2

    wait_for(full_metadata, "metadata with both partitions")
    before = seen[-1]
    topic_id = zk_run(cluster.connect, lambda zk: zk.get_topic_assignment("kept"))
    cluster.stop()
    cluster.start()
    wait_for(
        lambda: (
            set(metadata_leaders(cluster, "kept")) == {0, 1}
            and -1 not in metadata_leaders(cluster, "kept").values()
        ),
        "leaders after restart",
    )
    after = cluster.admin().list_topics("kept", timeout=5).topics["kept"]
    assert {p: sorted(m.replicas) for p, m in after.partitions.items()} == {
        p: sorted(m.replicas) for p, m in before.partitions.items()
    }
    assert zk_run(cluster.connect, lambda zk: zk.get_topic_assignment("kept"))[0] == topic_id[0]  # type: ignore[index]
    metadata = cluster.admin().list_topics(timeout=5)
    assert sorted(metadata.brokers) == [0, 1, 2] and metadata.controller_id in (0, 1, 2)


def test_unreachable_zookeeper_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    broker = broker_process(
        tmp_path, f"127.0.0.1:{free_port()}", 0, **{"zookeeper.connection.timeout.ms": "1500"}
    )
    with pytest.raises(RuntimeError, match="broker exited with 1 during start") as failure:
        broker.start()
    assert "Timed out waiting for connection while in state: CONNECTING" in str(failure.value)
