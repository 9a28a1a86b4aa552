"""Disk errors: a failing log dir answers KAFKA_STORAGE_ERROR and goes offline, the rest goes on.

The broker runs with two log dirs over :class:`FaultyDiskFileSystem`; requests go over a real
loopback socket, so a connection closed by an escaping exception is seen as the client sees it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from broker.config import load_config
from broker.types import TopicPartition
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.describe_log_dirs_request import DescribeLogDirsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch
from tests.broker.test_network import Running, read_frame
from tests.storage.faults import FaultyDiskFileSystem

TOPIC = "disk"


@dataclass
class Disks:
    running: Running
    fs: FaultyDiskFileSystem
    sock: socket.socket
    correlation: int = 0

    @property
    def broker(self) -> Broker:
        return self.running.broker

    def call(self, request: Any, version: int) -> Any:
        self.correlation += 1
        self.sock.sendall(papi.encode_request(request, version, self.correlation))
        correlation, body = papi.decode_response(read_frame(self.sock), request.API_KEY, version)
        assert correlation == self.correlation
        return body

    def produce(self, *partitions: int, records: int = 1) -> dict[int, int]:
        batch = build_batch([Record(i, i, b"k", b"v" * 100) for i in range(records)], base_timestamp=1)
        data = [PartitionProduceData(p, batch) for p in partitions]
        request = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[TopicProduceData(TOPIC, data)])
        response = self.call(request, 9)
        return {p.index: p.error_code for p in response.responses[0].partition_responses}

    def log_dir(self, partition: int) -> Path:
        found = self.broker.log_manager.get_log(TOPIC, partition)
        assert found is not None
        return found.directory.parent


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[Disks]:
    fs = FaultyDiskFileSystem()
    dirs = f"{tmp_path / 'a'},{tmp_path / 'b'}"
    settings = {"log.dirs": dirs, "listeners": "PLAINTEXT://127.0.0.1:0"}
    broker = Broker(load_config(None, [f"{k}={v}" for k, v in settings.items()]), fs=fs)
    running = Running(broker)
    sock = running.connect()
    d = Disks(running, fs, sock)
    try:
        created = d.call(CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 2, 1)], timeout_ms=5000), 5)
        assert created.topics[0].error_code == 0
        assert d.log_dir(0) != d.log_dir(1), "the two partitions must lie in different log dirs"
        yield d
    finally:
        sock.close()
        running.stop()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_write_error_fails_only_its_partition_and_takes_the_dir_offline(disks: Disks, code: int) -> None:
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.NONE}
    failed = disks.log_dir(1)
    disks.fs.fail_writes(failed, code)

    # Both partitions in one request: the healthy one is appended, the other reports the disk.
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.KAFKA_STORAGE_ERROR}
    assert disks.fs.failures == 1
    assert disks.broker.log_manager.offline_dirs.keys() == {failed}

    # The same connection goes on; the dir's partition stays out of service, the other serves.
    assert disks.produce(1) == {1: ErrorCode.KAFKA_STORAGE_ERROR}
    assert disks.produce(0) == {0: ErrorCode.NONE}
    assert disks.fs.failures == 1, "an offline dir is not written again"

    fetch = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=TOPIC,
                partitions=[FetchPartition(partition=p, partition_max_bytes=1 << 20) for p in (0, 1)],
            )
        ],
    )
    fetched = {p.partition_index: p for p in disks.call(fetch, 12).responses[0].partitions}
    assert fetched[1].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert fetched[0].error_code == ErrorCode.NONE and fetched[0].high_watermark == 3

    list_offsets = ListOffsetsRequest(
        replica_id=-1,
        topics=[
            ListOffsetsTopic(TOPIC, [ListOffsetsPartition(partition_index=p, timestamp=-1) for p in (0, 1)])
        ],
    )
    offsets = {p.partition_index: p for p in disks.call(list_offsets, 7).topics[0].partitions}
    assert offsets[1].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert (offsets[0].error_code, offsets[0].offset) == (ErrorCode.NONE, 3)

    described = {r.log_dir: r for r in disks.call(DescribeLogDirsRequest(topics=None), 4).results}
    bad, good = described[str(failed.resolve())], described[str(disks.log_dir(0).resolve())]
    assert (bad.error_code, bad.topics) == (ErrorCode.KAFKA_STORAGE_ERROR, [])
    assert good.error_code == ErrorCode.NONE
    assert [p.partition_index for t in good.topics if t.name == TOPIC for p in t.partitions] == [0]

    metadata = disks.call(MetadataRequest(topics=[MetadataRequestTopic(name=TOPIC)]), 12)
    parts = {p.partition_index: p for p in metadata.topics[0].partitions}
    node = disks.broker.node_id
    assert (parts[1].error_code, parts[1].leader_id, parts[1].offline_replicas) == (
        ErrorCode.LEADER_NOT_AVAILABLE,
        -1,
        [node],
    )
    assert (parts[0].error_code, parts[0].leader_id, parts[0].offline_replicas) == (ErrorCode.NONE, node, [])


def test_a_raising_fetch_waiter_is_removed_and_does_not_fail_the_append(disks: Disks) -> None:
    partition = disks.broker.replica_manager.get(TopicPartition(TOPIC, 0))
    assert partition is not None
    calls: list[int] = []

    def broken_waiter() -> None:
        calls.append(1)
        raise RuntimeError("waiter bug")

    partition.add_listener(broken_waiter)
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.NONE}
    assert disks.produce(0) == {0: ErrorCode.NONE}
    assert calls == [1], "the raising waiter is called once, then removed"
    assert partition.log_end_offset == 2


def test_an_fsync_failure_in_the_background_flush_takes_the_dir_offline(disks: Disks) -> None:
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.NONE}
    failed = disks.log_dir(0)
    disks.fs.fail_fsyncs(failed, errno.EIO)
    for log_ in disks.broker.log_manager.all_logs():
        log_.roll()  # a rolled segment is due for a flush
    # The flush task itself, as the broker's timer runs it; it must not raise.
    disks.broker.log_manager.flush_due()
    assert disks.fs.failures >= 1
    assert disks.broker.log_manager.offline_dirs.keys() == {failed}
    assert disks.produce(0, 1) == {0: ErrorCode.KAFKA_STORAGE_ERROR, 1: ErrorCode.NONE}
    # The checkpoint task skips the failed dir and writes the healthy one.
    disks.broker.log_manager.checkpoint()
    assert (disks.log_dir(1) / "recovery-point-offset-checkpoint").exists()


def test_a_write_error_on_the_offsets_topic_answers_the_commit_and_the_coordinator_moves(
    disks: Disks,
) -> None:
    from protocol.messages.find_coordinator_request import FindCoordinatorRequest
    from protocol.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )

    group = "disk-group"
    assert disks.call(FindCoordinatorRequest(key=group), 3).error_code == ErrorCode.NONE
    store = disks.broker.group_coordinator.store
    offsets_log = disks.broker.log_manager.get_log("__consumer_offsets", store.partition_for(group))
    assert offsets_log is not None
    disks.fs.fail_writes(offsets_log.directory.parent, errno.ENOSPC)

    commit = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=[OffsetCommitRequestTopic(TOPIC, [OffsetCommitRequestPartition(0, 1)])],
    )
    answered = disks.call(commit, 8).topics[0].partitions[0]
    # Kafka's commit error for a KAFKA_STORAGE_ERROR append: the client looks for the coordinator.
    assert answered.error_code == ErrorCode.NOT_COORDINATOR
    assert disks.call(FindCoordinatorRequest(key=group), 3).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE


def test_with_every_log_dir_offline_the_broker_still_answers(disks: Disks) -> None:
    # Only the partition directories fail: the metadata document (in the first log dir) stays
    # writable, as it would on a disk whose failure is a full partition directory's file system.
    for p in (0, 1):
        disks.fs.fail_writes(disks.log_dir(p) / f"{TOPIC}-{p}", errno.EIO)
    assert disks.produce(0, 1) == {0: ErrorCode.KAFKA_STORAGE_ERROR, 1: ErrorCode.KAFKA_STORAGE_ERROR}
    assert disks.broker.log_manager.online_dirs() == []

    # Unlike Kafka (which halts), the process goes on: a new topic is created in the metadata,
    # its replica is offline (no dir to hold it), and its partition answers KAFKA_STORAGE_ERROR.
    created = disks.call(CreateTopicsRequest(topics=[CreatableTopic("later", 1, 1)], timeout_ms=5000), 5)
    assert created.topics[0].error_code == ErrorCode.NONE
    request = ProduceRequest(
        acks=1,
        timeout_ms=1000,
        topic_data=[
            TopicProduceData(
                "later", [PartitionProduceData(0, build_batch([Record(0, 0, None, b"v")], base_timestamp=1))]
            )
        ],
    )
    assert (
        disks.call(request, 9).responses[0].partition_responses[0].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    )
    metadata = disks.call(MetadataRequest(topics=[MetadataRequestTopic(name="later")]), 12)
    assert metadata.topics[0].partitions[0].error_code == ErrorCode.LEADER_NOT_AVAILABLE
    described = disks.call(DescribeLogDirsRequest(topics=None), 4).results
    assert [r.error_code for r in described] == [ErrorCode.KAFKA_STORAGE_ERROR] * 2


def test_an_unexpected_append_failure_fails_only_its_partition(disks: Disks) -> None:
    partition = disks.broker.replica_manager.get(TopicPartition(TOPIC, 1))
    assert partition is not None

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug below the produce handler")

    partition.append_as_leader = broken  # type: ignore[method-assign]
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.UNKNOWN_SERVER_ERROR}
    assert disks.produce(0) == {0: ErrorCode.NONE}  # the connection is still open
    assert disks.broker.log_manager.offline_dirs == {}


def test_a_read_error_fails_the_fetch_of_its_partition_and_takes_the_dir_offline(disks: Disks) -> None:
    for _ in range(3):
        assert disks.produce(0, 1, records=2) == {0: ErrorCode.NONE, 1: ErrorCode.NONE}
    failed = disks.log_dir(1)
    disks.fs.fail_reads(failed, errno.EIO)
    fetch = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=TOPIC,
                partitions=[
                    # Inside the first batch: found by reading the segment (where a recent batch
                    # starts is known without a read).
                    FetchPartition(partition=p, fetch_offset=1, partition_max_bytes=1 << 20)
                    for p in (0, 1)
                ],
            )
        ],
    )
    fetched = {p.partition_index: p for p in disks.call(fetch, 12).responses[0].partitions}
    assert (fetched[1].error_code, fetched[1].high_watermark) == (ErrorCode.KAFKA_STORAGE_ERROR, -1)
    assert (fetched[0].error_code, fetched[0].high_watermark) == (ErrorCode.NONE, 6)
    assert disks.fs.failures >= 1
    assert disks.broker.log_manager.offline_dirs.keys() == {failed}
    assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.KAFKA_STORAGE_ERROR}


def test_a_log_found_corrupt_at_start_up_is_an_offline_replica_not_a_dead_broker(tmp_path: Path) -> None:
    from tests.broker.conftest import Caller, make_broker

    first = make_broker(tmp_path / "data")
    call = Caller(first)
    created = call(CreateTopicsRequest(topics=[CreatableTopic(TOPIC, 2, 1)], timeout_ms=5000), 5)
    assert created.topics[0].error_code == 0
    batch = build_batch([Record(0, 0, b"k", b"v" * 200)], base_timestamp=1)
    for _ in range(5):
        request = ProduceRequest(
            acks=1, timeout_ms=1000, topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(0, batch)])]
        )
        assert call(request, 9).responses[0].partition_responses[0].error_code == 0
    log_ = first.log_manager.get_log(TOPIC, 0)
    assert log_ is not None
    log_.flush()
    first.log_manager.checkpoint()  # the records are below the recovery point now
    segment = log_.directory / "00000000000000000000.log"
    data = bytearray(segment.read_bytes())
    data[300] ^= 0xFF
    segment.write_bytes(bytes(data))
    # No clean shutdown (a crash): the next start validates the log and finds the corruption.

    second = make_broker(tmp_path / "data")
    try:
        call = Caller(second)
        request = ProduceRequest(
            acks=1,
            timeout_ms=1000,
            topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(p, batch) for p in (0, 1)])],
        )
        answered = {p.index: p.error_code for p in call(request, 9).responses[0].partition_responses}
        assert answered == {0: ErrorCode.KAFKA_STORAGE_ERROR, 1: ErrorCode.NONE}
        metadata = call(MetadataRequest(topics=[MetadataRequestTopic(name=TOPIC)]), 12)
        assert metadata.topics[0].partitions[0].leader_id == -1
    finally:
        second.log_manager.close()


def test_a_read_error_while_listing_offsets_by_time_fails_that_partition(disks: Disks) -> None:
    for _ in range(3):
        assert disks.produce(0, 1) == {0: ErrorCode.NONE, 1: ErrorCode.NONE}
    disks.fs.fail_reads(disks.log_dir(1), errno.EIO)
    by_time = ListOffsetsRequest(
        replica_id=-1,
        topics=[
            ListOffsetsTopic(TOPIC, [ListOffsetsPartition(partition_index=p, timestamp=1) for p in (0, 1)])
        ],
    )
    offsets = {p.partition_index: p for p in disks.call(by_time, 7).topics[0].partitions}
    assert (offsets[0].error_code, offsets[0].offset) == (ErrorCode.NONE, 0)
    assert offsets[1].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert disks.broker.log_manager.offline_dirs.keys() == {disks.log_dir(1)}


def test_a_disk_that_cannot_report_its_size_fails_only_its_describe_log_dirs_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker.handlers import describe_log_dirs
    from tests.broker.conftest import Caller

    dirs = [tmp_path / "a", tmp_path / "b"]
    config = load_config(None, [f"log.dirs={dirs[0]},{dirs[1]}", "listeners=PLAINTEXT://127.0.0.1:0"])
    broker = Broker(config)
    real_statvfs = describe_log_dirs.os.statvfs

    def statvfs(path: str) -> object:
        if path == str(dirs[1].resolve()):
            raise OSError(errno.EIO, "Input/output error")
        return real_statvfs(path)

    monkeypatch.setattr(describe_log_dirs.os, "statvfs", statvfs)
    try:
        results = Caller(broker)(DescribeLogDirsRequest(topics=None), 4).results
        assert [(r.log_dir, r.error_code) for r in results] == [
            (str(dirs[0].resolve()), ErrorCode.NONE),
            (str(dirs[1].resolve()), ErrorCode.UNKNOWN_SERVER_ERROR),
        ]
    finally:
        broker.log_manager.close()
