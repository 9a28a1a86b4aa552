"""AlterReplicaLogDirs (api 34) on one broker with two log dirs: the errors, a move while a
producer writes (DescribeLogDirs showing the future replica on the way), and a move cancelled by
another request."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from broker.replica.replication_quota import UNBOUNDED
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_replica_log_dirs_request import (
    AlterReplicaLogDir,
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirTopic,
)
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from storage.log_mover import copy_step
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch, create, fetch_records, produce

TP = TopicPartition("t", 0)


@pytest.fixture
def two_dirs(tmp_path: Path) -> Iterator[tuple[Broker, Caller, Path, Path]]:
    a, b = tmp_path / "a", tmp_path / "b"
    # 256 bytes a step: a move takes many steps, so the producer's appends land in the middle.
    broker = make_broker(a, **{"log.dirs": f"{a},{b}", "replica.fetch.max.bytes": "256"})
    call = Caller(broker)
    broker.log_manager.preferred_dirs[TP] = a
    create(call, "t")
    try:
        yield broker, call, a, b
    finally:
        broker.log_manager.close()


def alter(path: str, partitions: list[int], topic: str = "t") -> AlterReplicaLogDirsRequest:
    return AlterReplicaLogDirsRequest(
        dirs=[AlterReplicaLogDir(path, [AlterReplicaLogDirTopic(topic, partitions)])]
    )


def codes(response: Any) -> dict[tuple[str, int], int]:
    return {(t.topic_name, p.partition_index): p.error_code for t in response.results for p in t.partitions}


async def call_async(call: Caller, request: Any, version: int) -> Any:
    result = call.start(request, version)
    return await result if inspect.isawaitable(result) else result


def described(call: Caller) -> dict[tuple[str, bool], tuple[int, int]]:
    """(log dir, is future) -> (partition size, offset lag) of t-0, from DescribeLogDirs v4."""
    response = call(DescribeLogDirsRequest(topics=None), 4)
    found = {}
    for result in response.results:
        for topic in result.topics:
            for p in topic.partitions:
                found[(result.log_dir, p.is_future_key)] = (p.partition_size, p.offset_lag)
    return found


@pytest.mark.parametrize("version", [0, 1, 2])
def test_errors_as_kafkas(two_dirs: tuple[Broker, Caller, Path, Path], version: int) -> None:
    broker, call, a, b = two_dirs
    assert codes(call(alter("/no/such/dir", [0]), version)) == {("t", 0): ErrorCode.LOG_DIR_NOT_FOUND}
    assert codes(call(alter("relative/dir", [0]), version)) == {("t", 0): ErrorCode.LOG_DIR_NOT_FOUND}
    # Not hosted: REPLICA_NOT_AVAILABLE, and the dir is where the replica will be created.
    assert codes(call(alter(str(b), [0], topic="later"), version)) == {
        ("later", 0): ErrorCode.REPLICA_NOT_AVAILABLE
    }
    assert broker.log_manager.preferred_dirs[TopicPartition("later", 0)] == b
    create(call, "later")
    assert broker.log_manager.log_dir_of("later", 0) == b
    # Its own dir: nothing to do.
    assert codes(call(alter(str(a), [0]), version)) == {("t", 0): ErrorCode.NONE}
    assert broker.log_manager.future_log("t", 0) is None


def test_a_move_while_producing_reads_back_everything(two_dirs: tuple[Broker, Caller, Path, Path]) -> None:
    broker, call, _, b = two_dirs
    for i in range(40):
        assert produce(call, "t", 0, batch([b"before-%d" % i]), acks=1).error_code == 0

    async def move_while_producing() -> list[tuple[str, bool]]:
        seen: list[tuple[str, bool]] = []
        response = await call_async(call, alter(str(b), [0]), 2)
        assert codes(response) == {("t", 0): ErrorCode.NONE}
        mover = broker.replica_manager.log_dir_mover
        assert mover is not None and mover.moving(TP)
        for i in range(200):
            answer = await call_async(call, _produce_request(b"during-%d" % i), 9)
            assert answer.responses[0].partition_responses[0].error_code == 0
            seen.extend(described(call))
            await asyncio.sleep(0)  # let the mover's steps interleave with the appends
            if not mover.moving(TP):
                break
        task = mover._tasks.get(TP)
        if task is not None:
            await asyncio.wait_for(task, 30)
        return seen

    seen = asyncio.run(asyncio.wait_for(move_while_producing(), 60))
    assert (str(b.resolve()), True) in seen, "DescribeLogDirs never showed the future replica"
    assert broker.log_manager.log_dir_of("t", 0) == b
    assert broker.replica_manager.get(TP).log.directory == b / "t-0"  # type: ignore[union-attr]
    assert broker.log_manager.future_log("t", 0) is None
    after = described(call)
    assert list(after) == [(str(b.resolve()), False)]
    assert produce(call, "t", 0, batch([b"after"]), acks=1).error_code == 0
    values = fetch_records(call, "t", 0, 0)
    during = [v for v in values if v.startswith(b"during-")]
    assert values[:40] == [b"before-%d" % i for i in range(40)]
    assert during == [b"during-%d" % i for i in range(len(during))] and during
    assert values[-1] == b"after" and len(values) == 40 + len(during) + 1


def test_another_dir_cancels_the_move_in_flight(
    two_dirs: tuple[Broker, Caller, Path, Path], tmp_path: Path
) -> None:
    broker, call, a, b = two_dirs
    for i in range(20):
        produce(call, "t", 0, batch([b"v%d" % i]), acks=1)

    async def redirect() -> None:
        # The first request's move never gets a loop turn before the second one cancels it.
        assert codes(await call_async(call, alter(str(b), [0]), 2)) == {("t", 0): 0}
        future = broker.log_manager.future_log("t", 0)
        assert future is not None
        assert codes(await call_async(call, alter(str(a), [0]), 2)) == {("t", 0): 0}
        assert broker.log_manager.future_log("t", 0) is None
        assert not future.directory.exists() or future.directory.name.endswith("-delete")

    asyncio.run(asyncio.wait_for(redirect(), 30))
    assert broker.log_manager.log_dir_of("t", 0) == a


def _produce_request(value: bytes) -> Any:
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData

    return ProduceRequest(
        acks=1, timeout_ms=1000, topic_data=[TopicProduceData("t", [PartitionProduceData(0, batch([value]))])]
    )


def test_a_move_interrupted_by_a_crash_completes_after_the_restart(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    settings = {"log.dirs": f"{a},{b}", "replica.fetch.max.bytes": "256"}
    broker = make_broker(a, **settings)
    call = Caller(broker)
    broker.log_manager.preferred_dirs[TP] = a
    create(call, "t")
    for i in range(40):
        assert produce(call, "t", 0, batch([b"v%d" % i]), acks=1).error_code == 0
    # The request's loop ends before the mover's first turn; three steps by hand, then a crash.
    assert codes(call(alter(str(b), [0]), 2)) == {("t", 0): 0}
    current, future = broker.log_manager.get_log("t", 0), broker.log_manager.future_log("t", 0)
    assert current is not None and future is not None
    for _ in range(3):
        copy_step(current, future, 256)
    assert 0 < future.log_end_offset < current.log_end_offset == 40
    broker.log_manager.checkpoint()
    broker.log_manager.abandon()  # as kill -9: nothing flushed or closed

    again = make_broker(a, **settings)
    resumed = again.log_manager.future_log("t", 0)
    assert resumed is not None and resumed.directory.parent == b

    async def restart() -> None:
        await again.start(freeze_gc=False)
        try:
            mover = again.replica_manager.log_dir_mover
            assert mover is not None and mover.moving(TP)
            await asyncio.wait_for(mover._tasks[TP], 30)
            assert mover.completed == [(TP, str(b))]
        finally:
            await again.stop()

    asyncio.run(asyncio.wait_for(restart(), 60))
    third = make_broker(a, **settings)
    try:
        assert third.log_manager.log_dir_of("t", 0) == b and third.log_manager.future_log("t", 0) is None
        assert fetch_records(Caller(third), "t", 0, 0) == [b"v%d" % i for i in range(40)]
        assert not (a / "t-0").exists()
    finally:
        third.log_manager.close()


def test_an_offline_dir_is_a_storage_error(two_dirs: tuple[Broker, Caller, Path, Path]) -> None:
    broker, call, a, b = two_dirs
    broker.log_manager.mark_dir_offline(b, "a test", OSError(5, "Input/output error"))
    assert codes(call(alter(str(b), [0]), 2)) == {("t", 0): ErrorCode.KAFKA_STORAGE_ERROR}
    assert codes(call(alter(str(a), [0]), 2)) == {("t", 0): ErrorCode.NONE}  # its own dir: nothing to do
    # The partition's own dir offline: its replica is offline.
    broker.log_manager.mark_dir_offline(a, "a test", OSError(5, "Input/output error"))
    assert codes(call(alter(str(a), [0]), 2)) == {("t", 0): ErrorCode.KAFKA_STORAGE_ERROR}


class _WatchedLock:
    """A log's lock that reports when a thread other than its holder starts waiting for it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.holder: int | None = None
        self.contended = threading.Event()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.holder is not None and self.holder != threading.get_ident():
            self.contended.set()
        acquired: bool = self.inner.acquire(blocking, timeout)
        if acquired:
            self.holder = threading.get_ident()
        return acquired

    def release(self) -> None:
        self.inner.release()
        if not self.inner._is_owned():
            self.holder = None


def test_an_append_waiting_for_the_swap_lands_in_the_new_log(
    two_dirs: tuple[Broker, Caller, Path, Path],
) -> None:
    """The interleaving CI caught: a produce reads the partition's log, the swap (in a disk worker,
    holding that log's lock) renames it for deletion, then the produce gets the lock. It must
    append to the new log (Kafka swaps under the partition's write lock), not fail with
    KAFKA_STORAGE_ERROR."""
    broker, call, _, b = two_dirs
    for i in range(5):
        assert produce(call, "t", 0, batch([b"before-%d" % i]), acks=1).error_code == 0
    partition = broker.replica_manager.get(TP)
    assert partition is not None
    old = partition.log
    future = broker.log_manager.create_future_log("t", 0, b)
    while copy_step(old, future, 1 << 20).copied:
        pass
    watched = _WatchedLock(old._lock)
    old._lock = watched  # type: ignore[assignment]
    outcome: list[Any] = []

    def append() -> None:
        try:
            outcome.append(partition.append_as_leader(memoryview(bytearray(batch([b"during"]))), None))
        except Exception as exc:
            outcome.append(exc)

    appender = threading.Thread(target=append)

    def catch_up() -> None:
        # Under the old log's lock: let the appender reach that lock, then finish the swap.
        appender.start()
        assert watched.contended.wait(10), "the append never waited for the swap's lock"

    def adopt(new: Any) -> None:
        partition.log = new

    new = broker.log_manager.replace_current_with_future("t", 0, adopt, catch_up)
    appender.join(10)
    assert new is not None and partition.log is new and new.directory == b / "t-0"
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert outcome[0].error == ErrorCode.NONE and outcome[0].base_offset == 5
    assert fetch_records(call, "t", 0, 0) == [b"before-%d" % i for i in range(5)] + [b"during"]


def test_a_throttled_move_waits_for_its_rate(two_dirs: tuple[Broker, Caller, Path, Path]) -> None:
    """``replica.alter.log.dirs.io.max.bytes.per.second``: over the rate, the copy stops (the
    quota's clock is frozen here, so it cannot fall); without the throttle it completes."""
    from tests.broker.test_replication_throttle import throttle

    broker, call, _, b = two_dirs
    for i in range(40):
        assert produce(call, "t", 0, batch([b"before-%d" % i]), acks=1).error_code == 0
    quota = broker.replica_manager.replication_quotas.alter_log_dirs
    throttle(quota, 100)

    async def move() -> None:
        assert codes(await call_async(call, alter(str(b), [0]), 2)) == {("t", 0): ErrorCode.NONE}
        future = broker.log_manager.future_log("t", 0)
        assert future is not None
        async with asyncio.timeout(10):
            while future.log_end_offset == 0:
                await asyncio.sleep(0.01)
        copied = future.log_end_offset
        assert quota.is_exceeded() and copied < 40
        await asyncio.sleep(1.5)  # at least one more look by the mover (it waits at most 1 s)
        assert future.log_end_offset == copied
        mover = broker.replica_manager.log_dir_mover
        assert mover is not None and mover.moving(TP)
        quota.update(UNBOUNDED, 11, 1000)
        task = mover._tasks.get(TP)
        if task is not None:
            await asyncio.wait_for(task, 30)

    asyncio.run(asyncio.wait_for(move(), 60))
    assert broker.log_manager.log_dir_of("t", 0) == b
    assert fetch_records(call, "t", 0, 0) == [b"before-%d" % i for i in range(40)]
