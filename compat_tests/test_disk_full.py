"""A log dir on a real filesystem that fills up: its partitions fail, the broker goes on.

One of the broker's two ``log.dirs`` is a 4 MiB tmpfs. confluent-kafka produces into a partition
there until the disk is full: the client gets KAFKA_STORAGE_ERROR (retries off, so the error is
not hidden behind a timeout), the broker process stays alive, the partition in the other dir
keeps taking and serving records, DescribeLogDirs (kafka-python) reports the full dir failed and
the broker log names it. Remounted larger and restarted, the dir is recovered with exactly the
acknowledged records. Mounting needs root (CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat_tests.harness import BrokerProcess

TOPIC = "diskfull"
SMALL_DISK = "4m"
VALUE = b"x" * 100_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as a log dir needs root (CI runs these tests as root)")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mount_point)],
        check=True,
        timeout=30,
    )
    try:
        yield mount_point
    finally:
        done = subprocess.run(["umount", str(mount_point)], timeout=30, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=True)


@pytest.fixture
def two_dir_broker(tmp_path: Path, small_disk: Path) -> Iterator[BrokerProcess]:
    big = tmp_path / "big"
    proc = BrokerProcess(big, {"log.dirs": f"{big},{small_disk}", "auto.create.topics.enable": "false"})
    try:
        yield proc.start()
    finally:
        proc.kill()  # before the fixture above unmounts the dir under it


def test_a_full_log_dir_fails_its_partitions_and_the_broker_serves_the_rest(
    two_dir_broker: BrokerProcess, small_disk: Path
) -> None:
    from confluent_kafka import KafkaError, Producer
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=two_dir_broker.bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(TOPIC, 2, 1)])
        on_small = [p for p in (0, 1) if (small_disk / f"{TOPIC}-{p}").is_dir()]
        assert len(on_small) == 1, f"one partition expected on the small disk, found {on_small}"
        full, healthy = on_small[0], 1 - on_small[0]

        producer = Producer(
            {
                "bootstrap.servers": two_dir_broker.bootstrap,
                "acks": "1",
                "retries": 0,
                "linger.ms": 0,
                "message.timeout.ms": 20000,
            }
        )
        outcomes: list[KafkaError | None] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            outcomes.append(err)

        # 4 MiB of tmpfs holds fewer than 60 records of 100 kB: 100 are more than enough.
        for _ in range(100):
            producer.produce(TOPIC, VALUE, partition=full, on_delivery=delivered)
            assert producer.flush(20) == 0, "a delivery report did not arrive in time"
            if outcomes[-1] is not None:
                break
        error = outcomes[-1]
        assert error is not None, "the small disk never filled up"
        assert error.code() == KafkaError.KAFKA_STORAGE_ERROR, error
        assert all(e is None for e in outcomes[:-1])
        assert two_dir_broker.alive(), two_dir_broker.log_tail()

        # The other log dir goes on: produce and consume on the same broker.
        marker = uuid.uuid4().hex.encode()
        healthy_outcomes: list[KafkaError | None] = []
        producer.produce(
            TOPIC, marker, partition=healthy, on_delivery=lambda err, _m: healthy_outcomes.append(err)
        )
        assert producer.flush(20) == 0
        assert healthy_outcomes == [None]
        consumer = KafkaConsumer(bootstrap_servers=two_dir_broker.bootstrap, consumer_timeout_ms=10000)
        try:
            consumer.assign([TopicPartition(TOPIC, healthy)])
            consumer.seek_to_beginning()
            assert marker in [m.value for m in consumer]
        finally:
            consumer.close()

        # The full dir's partition is offline: as Kafka once its only replica is offline, the
        # client's metadata shows it without a leader (so the client stops sending to it).
        meta = producer.list_topics(TOPIC, timeout=15).topics[TOPIC].partitions
        assert meta[full].leader == -1 and meta[full].error.code() == KafkaError.LEADER_NOT_AVAILABLE
        assert meta[healthy].leader >= 0 and meta[healthy].error is None

        dirs = {d["log_dir"]: d for d in admin.describe_log_dirs()[0]["log_dirs"]}
        failed = dirs[str(small_disk.resolve())]
        assert failed["error_code"] == KafkaError.KAFKA_STORAGE_ERROR and failed["topics"] == []
        assert dirs[str(two_dir_broker.data_dir.resolve())]["error_code"] == 0
    finally:
        admin.close()
    assert two_dir_broker.alive()
    text = two_dir_broker.log_text()
    assert any("ERROR" in line and str(small_disk) in line for line in text.splitlines()), text[-3000:]

    # With room again, a restart recovers the dir (the torn tail of the failed write is cut) and
    # the partition holds exactly the records that were acknowledged, and takes more.
    acknowledged = sum(1 for e in outcomes if e is None)
    assert two_dir_broker.stop() == 0, two_dir_broker.log_tail()
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True, timeout=30)
    two_dir_broker.start()
    after: list[KafkaError | None] = []
    producer.produce(TOPIC, b"after", partition=full, on_delivery=lambda err, _m: after.append(err))
    assert producer.flush(30) == 0
    assert after == [None]
    consumer = KafkaConsumer(bootstrap_servers=two_dir_broker.bootstrap, consumer_timeout_ms=10000)
    try:
        consumer.assign([TopicPartition(TOPIC, full)])
        consumer.seek_to_beginning()
        values = [m.value for m in consumer]
    finally:
        consumer.close()
    assert values == [VALUE] * acknowledged + [b"after"]
