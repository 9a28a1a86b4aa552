"""Moving a partition between the log dirs of one broker (AlterReplicaLogDirs, KIP-113) with stock
clients: kafka-python's admin ``alter_replica_log_dirs`` and ``describe_log_dirs`` against a
broker process with two ``log.dirs``, while a confluent-kafka producer goes on writing. The move
ends with the partition in the other dir (on disk and in DescribeLogDirs), and a consumer reads
back every acknowledged record, in order, before and after a restart. A broker killed (SIGKILL)
in the middle of a move resumes it at start and completes it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.cluster_clients import SteadyProducer, new_consumer, read_from
from compat_tests.harness import BrokerProcess

TIMEOUT = 30.0


@pytest.fixture
def two_dirs(tmp_path: Path) -> Iterator[tuple[BrokerProcess, Path, Path]]:
    a, b = tmp_path / "a", tmp_path / "b"
    # Small copy steps: the move takes many of them, with the producer's appends in between.
    proc = BrokerProcess(a, {"log.dirs": f"{a},{b}", "replica.fetch.max.bytes": "1024"})
    try:
        yield proc.start(), a.resolve(), b.resolve()
    finally:
        proc.kill()


def _where(admin: Any, topic: str) -> dict[tuple[str, bool], int]:
    """(log dir, is future) -> offset lag of ``topic``-0, from kafka-python's describe_log_dirs."""
    found: dict[tuple[str, bool], int] = {}
    for answer in admin.describe_log_dirs():
        for log_dir in answer["log_dirs"]:
            for t in log_dir["topics"]:
                if t["name"] != topic:
                    continue
                for p in t["partitions"]:
                    found[(log_dir["log_dir"], p["is_future_key"])] = p["offset_lag"]
    return found


def test_kafka_python_moves_a_partition_while_confluent_kafka_writes(
    two_dirs: tuple[BrokerProcess, Path, Path],
) -> None:
    from kafka import KafkaAdminClient, TopicPartitionReplica
    from kafka.admin import NewTopic
    from kafka.errors import NoError

    proc, a, b = two_dirs
    topic = f"moving-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=proc.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    # Small batches: a copy step moves at least one whole batch.
    producer = SteadyProducer(proc.bootstrap, **{"batch.size": 512})
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        before = [b"before-%05d-" % i + bytes(200) for i in range(5000)]
        assert [r.error for r in producer.send_and_wait(topic, before, 0)] == [None] * len(before)
        [(source, _)] = list(_where(admin, topic))
        dest = str(b) if source == str(a) else str(a)
        broker_id = admin.describe_cluster()["brokers"][0]["broker_id"]

        replica = TopicPartitionReplica(topic, 0, broker_id)
        assert admin.alter_replica_log_dirs({replica: dest}) == {replica: NoError}
        during: list[bytes] = []
        seen: list[dict[tuple[str, bool], int]] = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = b"during-%05d" % len(during)
            producer.send(topic, value, 0)
            during.append(value)
            where = _where(admin, topic)
            seen.append(where)
            if list(where) == [(dest, False)]:
                break
            assert time.monotonic() < deadline, f"the move did not complete: {where}\n{proc.log_tail()}"
        producer.poll_until(len(before) + len(during), TIMEOUT)
        assert not producer.errors()
        after = [b"after-%03d" % i for i in range(50)]
        assert [r.error for r in producer.send_and_wait(topic, after, 0)] == [None] * len(after)
    finally:
        producer.close()
        admin.close()
    print(f"ALTER_REPLICA_LOG_DIRS moved while {len(during)} records were written; views seen: {len(seen)}")
    lags = [view[(dest, True)] for view in seen if (dest, True) in view]
    assert lags and lags[0] > 0, f"DescribeLogDirs never showed the future replica lagging: {seen[:3]}"
    expected = before + during + after
    assert (Path(dest) / f"{topic}-0").is_dir()
    assert not (Path(source) / f"{topic}-0").exists()

    def read_all() -> list[bytes]:
        consumer = new_consumer(proc.bootstrap)
        try:
            return [m.value() for m in read_from(consumer, topic, 0, 0, len(expected))]
        finally:
            consumer.close()

    assert read_all() == expected
    proc.restart()
    assert read_all() == expected
    assert (Path(dest) / f"{topic}-0").is_dir() and not (Path(source) / f"{topic}-0").exists()


def test_a_move_survives_kill_9_and_completes_after_the_restart(
    two_dirs: tuple[BrokerProcess, Path, Path],
) -> None:
    from kafka import KafkaAdminClient, TopicPartitionReplica
    from kafka.admin import NewTopic
    from kafka.errors import NoError

    proc, a, b = two_dirs
    topic = f"killed-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=proc.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    producer = SteadyProducer(proc.bootstrap, **{"batch.size": 512})
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        values = [b"v-%05d-" % i + bytes(200) for i in range(5000)]
        assert [r.error for r in producer.send_and_wait(topic, values, 0)] == [None] * len(values)
        [(source, _)] = list(_where(admin, topic))
        dest = str(b) if source == str(a) else str(a)
        broker_id = admin.describe_cluster()["brokers"][0]["broker_id"]
        replica = TopicPartitionReplica(topic, 0, broker_id)
        assert admin.alter_replica_log_dirs({replica: dest}) == {replica: NoError}
        deadline = time.monotonic() + TIMEOUT
        while (lag := _where(admin, topic).get((dest, True), 0)) == 0:
            assert time.monotonic() < deadline, "the future replica never showed"
    finally:
        producer.close()
        admin.close()
    proc.kill()  # SIGKILL mid-move: the future dir stays, half filled
    futures = [
        p for p in Path(dest).iterdir() if p.name.startswith(f"{topic}-0.") and p.name.endswith("-future")
    ]
    assert len(futures) == 1 and lag > 0

    proc.start()
    admin = KafkaAdminClient(bootstrap_servers=proc.bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        deadline = time.monotonic() + TIMEOUT
        while list(_where(admin, topic)) != [(dest, False)]:
            assert time.monotonic() < deadline, f"the move did not resume: {_where(admin, topic)}"
            time.sleep(0.05)  # polling another process's state: no event to await
    finally:
        admin.close()
    print(f"ALTER_REPLICA_LOG_DIRS killed with an offset lag of {lag}, resumed and completed")
    assert "resuming the move" in proc.log_text()
    consumer = new_consumer(proc.bootstrap)
    try:
        assert [m.value() for m in read_from(consumer, topic, 0, 0, len(values))] == values
    finally:
        consumer.close()
    assert not (Path(source) / f"{topic}-0").exists() and not futures[0].exists()
