"""Replication throttles (Kafka's ReplicationQuotaManager, what ``kafka-reassign-partitions
--throttle`` sets): the leader leaves throttled partitions out of an out-of-sync follower's answer
while over ``leader.replication.throttled.rate``; a follower leaves them out of its fetch while
over ``follower.replication.throttled.rate`` unless it has caught up; moves between log dirs wait
for ``replica.alter.log.dirs.io.max.bytes.per.second``. Quota clocks are driven by the tests, so
nothing depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.app import Broker
from broker.replica.fetcher import ReplicaFetcherManager
from broker.replica.replication_quota import (
    ALL_REPLICAS,
    UNBOUNDED,
    ReplicationQuota,
    ReplicationQuotas,
    throttled_partitions,
)
from broker.types import TopicPartition
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ReplicaState
from tests.broker.conftest import Caller, make_broker
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    update_metadata,
)
from tests.broker.test_data_plane import batch, produce
from tests.broker.test_replica_fetcher import Pair, caught_up, until

T_ID = uuid.UUID("0c5e2f7a-1d3b-4e6f-8a9b-c0d1e2f3a4b5")
NODES = [Node(LOCAL, "127.0.0.1", 9092), Node(OTHER, "127.0.0.1", 9093)]


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


def throttle(quota: ReplicationQuota, bound: int, replicas: str | None = None) -> Clock:
    """Bound ``quota`` (topic t's throttled replicas set to ``replicas``) on a test clock."""
    clock = Clock()
    quota.clock_ms = clock
    quota.update(bound, 11, 1000)
    if replicas is not None:
        key = quota.replicas_key
        assert key is not None
        quota.overrides_of = lambda topic: {key: replicas} if topic == "t" else {}
    return clock


# -- the quota -------------------------------------------------------------------------------------


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5)), max_size=12),
    st.integers(0, 5),
    st.sampled_from(["", " "]),
)
def test_throttled_replicas_are_the_pairs_naming_this_broker(
    pairs: list[tuple[int, int]], broker_id: int, space: str
) -> None:
    value = ("," + space).join(f"{p}:{b}" for p, b in pairs)
    assert throttled_partitions(value, broker_id) == {p for p, b in pairs if b == broker_id}
    assert throttled_partitions(" * ", broker_id) is ALL_REPLICAS


@given(st.lists(st.tuples(st.integers(1, 100_000), st.integers(0, 3_000)), min_size=1, max_size=30))
def test_a_quota_is_exceeded_exactly_when_its_simple_rate_is_above_the_bound(
    events: list[tuple[int, int]],
) -> None:
    quota = ReplicationQuota(None, 1, lambda topic: {})
    clock = throttle(quota, 10_000)
    for size, pause_ms in events:
        quota.record(size)
        clock.now_ms += pause_ms
        rate = quota.rate()
        assert quota.is_exceeded() == (rate > 10_000)
        delay = quota.delay_ms()
        assert (delay > 0) == quota.is_exceeded()
        assert delay <= 11 * 1000  # by then every sample has expired
        # Waiting the delay and looking again (a throttled move's loop) ends under the bound:
        # at once, or after a sample expired meanwhile (which can raise the rate).
        start, rounds = clock.now_ms, 0
        while (wait := quota.delay_ms()) > 0:
            clock.now_ms += wait
            rounds += 1
            assert rounds <= 11
        assert not quota.is_exceeded() and quota.rate() <= 10_000
        clock.now_ms = start


def test_an_unbounded_quota_throttles_and_records_nothing() -> None:
    quota = ReplicationQuota("leader.replication.throttled.replicas", 1, lambda topic: {})
    quota.record(10**9)
    assert not quota.active and not quota.is_exceeded() and quota.rate() == 0.0
    assert not quota.is_throttled(TopicPartition("t", 0))


def test_bounds_come_from_the_dynamic_broker_config(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d")
    try:
        quotas = broker.replica_manager.replication_quotas
        assert (quotas.leader.bound, quotas.follower.bound, quotas.alter_log_dirs.bound) == (UNBOUNDED,) * 3
        config = broker.config.with_dynamic(
            per_broker={
                "leader.replication.throttled.rate": "1000",
                "follower.replication.throttled.rate": "2000",
                "replica.alter.log.dirs.io.max.bytes.per.second": "3000",
            }
        )
        broker.reconfigure(config)
        assert (quotas.leader.bound, quotas.follower.bound, quotas.alter_log_dirs.bound) == (1000, 2000, 3000)
        broker.reconfigure(config.with_dynamic(per_broker={}))
        assert not quotas.leader.active and not quotas.follower.active
    finally:
        broker.log_manager.close()


def test_throttled_replicas_are_read_from_the_topic_overrides() -> None:
    overrides = {
        "t": {
            "leader.replication.throttled.replicas": "0:1,1:2",
            "follower.replication.throttled.replicas": "*",
        }
    }
    quotas = ReplicationQuotas(1, lambda topic: overrides.get(topic, {}))
    assert quotas.leader.is_throttled(TopicPartition("t", 0))
    assert not quotas.leader.is_throttled(TopicPartition("t", 1))  # throttled on broker 2
    assert quotas.follower.is_throttled(TopicPartition("t", 7))
    assert not quotas.leader.is_throttled(TopicPartition("u", 0))
    overrides["t"] = {"leader.replication.throttled.replicas": "1:1"}  # a config change applies at once
    assert not quotas.leader.is_throttled(TopicPartition("t", 0))
    assert quotas.leader.is_throttled(TopicPartition("t", 1))


# -- the leader ------------------------------------------------------------------------------------


def leader_with(tmp_path: Path, isr: list[int]) -> tuple[Broker, Caller]:
    broker = cluster_broker(tmp_path / "leader")
    call = Caller(broker)
    state = PState("t", 0, LOCAL, 3, [LOCAL, OTHER], isr=isr)
    assert call(update_metadata(8, NODES, [state], topic_ids={"t": T_ID}), 8).error_code == 0
    assert call(leader_and_isr(7, [state], topic_ids={"t": T_ID}), 7).error_code == 0
    for i in range(4):
        assert produce(call, "t", 0, batch([b"v%d" % i * 50]), acks=1).error_code == 0
    return broker, call


@pytest.fixture(params=[[LOCAL], [LOCAL, OTHER]], ids=["out-of-sync", "in-sync"])
def leader(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Broker, Caller, bool]]:
    broker, call = leader_with(tmp_path, request.param)
    try:
        yield broker, call, OTHER in request.param
    finally:
        broker.log_manager.close()


def follower_fetch_bytes(call: Caller, offset: int) -> int:
    request = FetchRequest(
        replica_id=-1,
        replica_state=ReplicaState(OTHER, 1),
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[FetchTopic("t", T_ID, [FetchPartition(0, 3, offset, -1, -1, 200)])],
    )
    data = call(request, 15).responses[0].partitions[0]
    assert data.error_code == 0
    return len(data.records or b"")


def test_the_leader_throttles_an_out_of_sync_follower_only(leader: tuple[Broker, Caller, bool]) -> None:
    broker, call, in_sync = leader
    quota = broker.replica_manager.replication_quotas.leader
    clock = throttle(quota, 100, f"0:{LOCAL}")
    first = follower_fetch_bytes(call, 0)
    assert first > 100 and quota.is_exceeded()  # recorded: over 100 B/s now
    # Over the rate: an out-of-sync follower gets no records; an in-sync one is never held back.
    assert (follower_fetch_bytes(call, 1) > 0) == in_sync
    clock.now_ms += 60_000  # the samples age out: under the rate again
    assert follower_fetch_bytes(call, 1) > 0


def test_the_leader_does_not_throttle_partitions_not_listed(tmp_path: Path) -> None:
    broker, call = leader_with(tmp_path, [LOCAL])
    try:
        quota = broker.replica_manager.replication_quotas.leader
        throttle(quota, 100, f"0:{OTHER}")  # partition 0 is throttled on broker 2, not here
        for offset in range(3):
            assert follower_fetch_bytes(call, offset) > 0
        assert quota.rate() == 0.0  # and its bytes do not count
    finally:
        broker.log_manager.close()


# -- the follower and the leader over real fetches -------------------------------------------------


async def turns(pair: Pair, broker_id: int, count: int) -> None:
    fetchers = pair.brokers[broker_id].replica_manager.control.fetchers
    assert isinstance(fetchers, ReplicaFetcherManager)
    (fetcher,) = fetchers.fetchers.values()
    for _ in range(count):
        await asyncio.wait_for(fetcher.next_turn(), 10)


@pytest.mark.parametrize("side", ["follower", "leader"])
def test_a_throttled_reassignment_stalls_over_the_rate_and_resumes_under_it(
    tmp_path: Path, side: str
) -> None:
    """Broker 2 is a new, out-of-sync replica of a partition with 20 batches (a reassignment's
    catch-up). Over the rate, it stops after its first fetch; once the samples age out it fetches
    again; with the throttle removed it catches up."""

    async def scenario() -> None:
        pair = Pair(tmp_path, **{"replica.fetch.max.bytes": "100"})
        try:
            await pair.start(1)
            await pair.start(2)
            state = PState("t", 0, 1, 1, [1, 2], isr=[1])
            await pair.tell(1, state)
            await pair.produce(1, 20, b"a")
            end = pair.partition(1).log_end_offset
            if side == "follower":
                quota = pair.brokers[2].replica_manager.replication_quotas.follower
                clock = throttle(quota, 50, "0:2")
            else:
                quota = pair.brokers[1].replica_manager.replication_quotas.leader
                clock = throttle(quota, 50, "0:1")
            await pair.tell(2, state)
            follower = pair.partition(2)
            await until(follower, lambda: follower.log_end_offset > 0)
            stalled_at = follower.log_end_offset
            assert quota.is_exceeded()
            await turns(pair, 2, 4)
            assert follower.log_end_offset == stalled_at < end
            clock.now_ms += 60_000
            await until(follower, lambda: follower.log_end_offset > stalled_at)
            quota.update(UNBOUNDED, 11, 1000)
            await until(follower, caught_up(pair, 1, 2))
            assert pair.segment_bytes(2) == pair.segment_bytes(1)
        finally:
            await pair.stop_all()

    asyncio.run(scenario())


def test_a_caught_up_follower_is_not_throttled(tmp_path: Path) -> None:
    """Kafka's isReplicaInSync exemption: once the follower reached the leader's high watermark,
    its throttled partition is fetched even over the rate (no ISR thrashing)."""

    async def scenario() -> None:
        pair = Pair(tmp_path)
        try:
            await pair.start(1)
            await pair.start(2)
            state = PState("t", 0, 1, 1, [1, 2], isr=[1, 2])
            await pair.tell(1, state)
            await pair.tell(2, state)
            await pair.produce(1, 3, b"a")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            quota = pair.brokers[2].replica_manager.replication_quotas.follower
            throttle(quota, 50, "0:2")
            quota.record(10_000)
            assert quota.is_exceeded()
            await pair.produce(1, 3, b"b")
            await until(pair.partition(2), caught_up(pair, 1, 2))
            assert pair.partition(2).log_end_offset == 18
        finally:
            await pair.stop_all()

    asyncio.run(scenario())
