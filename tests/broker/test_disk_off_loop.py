"""No blocking disk work on the event loop: every fsync, directory creation and rename made
while serving runs in the broker's disk workers, and the loop answers other clients meanwhile.

The broker runs on its own loop thread behind a real socket; its injected FileSystem records
the thread of each blocking call (and can hold one until the test releases it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.types import TopicPartition
from protocol import api as papi
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.create_partitions_request import CreatePartitionsRequest, CreatePartitionsTopic
from protocol.messages.create_topics_request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from protocol.messages.delete_topics_request import DeleteTopicsRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from storage import FileSystem
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch
from tests.broker.test_network import Running, read_frame

TIMEOUT = 10.0


class ThreadRecordingFileSystem(FileSystem):
    """Records ``(call, thread)`` of every blocking call. ``hold`` makes calls wait for
    ``release``: ``"fsync"`` every fsync, else the partition.metadata write of a log whose
    directory name starts with it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, threading.Thread]] = []
        self.hold: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def _record(self, call: str) -> None:
        self.calls.append((call, threading.current_thread()))

    def fsync(self, fd: int) -> None:
        self._record("fsync")
        if self.hold == "fsync":
            self._wait_for_release()
        super().fsync(fd)

    def _wait_for_release(self) -> None:
        self.held.set()
        if not self.release.wait(3 * TIMEOUT):  # longer than a client waits for an answer
            raise TimeoutError("the test never released the held call")

    def fsync_dir(self, path: Path) -> None:
        self._record("fsync_dir")
        super().fsync_dir(path)

    def mkdir(self, path: Path) -> None:
        self._record("mkdir")
        super().mkdir(path)

    def replace(self, src: Path, dst: Path) -> None:
        # The producer snapshot a roll writes (no fsync: the rolled segment's background flush
        # syncs it) is renamed into place on the appending thread, as Kafka takes it under the
        # log lock; like the new segment's files it is page-cache work, not a blocking call.
        self._record("snapshot-rename" if dst.name.endswith(".snapshot") else "rename")
        super().replace(src, dst)

    def write_file_atomically(self, path: Path, data: bytes) -> None:
        if self.hold is not None and path.parent.name.startswith(self.hold):
            self._wait_for_release()
        super().write_file_atomically(path, data)

    def on_thread(self, thread: threading.Thread) -> list[str]:
        return [call for call, t in self.calls if t is thread and call != "snapshot-rename"]


class Client:
    def __init__(self, running: Running) -> None:
        self.sock = running.connect()
        self.sock.settimeout(TIMEOUT)
        self.correlation = 0

    def send(self, body: Any, version: int) -> int:
        self.correlation += 1
        self.sock.sendall(papi.encode_request(body, version, self.correlation))
        return self.correlation

    def receive(self, body_type: Any, version: int) -> Any:
        _, response = papi.decode_response(read_frame(self.sock), body_type.API_KEY, version)
        return response

    def call(self, body: Any, version: int) -> Any:
        self.send(body, version)
        return self.receive(body, version)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[Running, ThreadRecordingFileSystem]]:
    fs = ThreadRecordingFileSystem()
    running = Running(make_broker(tmp_path / "data", fs, **{"offsets.topic.num.partitions": "5"}))
    try:
        yield running, fs
    finally:
        fs.release.set()
        running.stop()


def _produce(client: Client, topic: str, partition: int, values: list[bytes]) -> int:
    request = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, batch(values))])],
    )
    answer = client.call(request, 9).responses[0].partition_responses[0]
    assert answer.error_code == 0, answer
    return int(answer.base_offset)


def test_no_fsync_mkdir_or_rename_on_the_event_loop(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    fs.calls.clear()  # start-up runs before the loop serves anything
    client = Client(running)
    try:
        configs = [CreatableTopicConfig("flush.messages", "1"), CreatableTopicConfig("segment.bytes", "300")]
        created = client.call(CreateTopicsRequest(topics=[CreatableTopic("many", 64, 1, [], configs)]), 7)
        assert created.topics[0].error_code == 0
        for i in range(12):  # flush.messages=1 on every append; segments roll every few batches
            assert _produce(client, "many", 0, [b"value-%d" % i * 8]) == i
        more = client.call(CreatePartitionsRequest(topics=[CreatePartitionsTopic("many", 80, None)]), 3)
        assert more.results[0].error_code == 0
        assert _produce(client, "many", 79, [b"x"]) == 0
        trimmed = client.call(
            DeleteRecordsRequest(topics=[DeleteRecordsTopic("many", [DeleteRecordsPartition(0, 10)])]), 2
        )
        assert trimmed.topics[0].partitions[0].error_code == 0
        altered = client.call(
            IncrementalAlterConfigsRequest(
                resources=[AlterConfigsResource(2, "many", [AlterableConfig("retention.ms", 0, "1000")])]
            ),
            1,
        )
        assert altered.responses[0].error_code == 0
        assert client.call(InitProducerIdRequest(transactional_id=None), 4).error_code == 0
        assert client.call(FindCoordinatorRequest(key="g"), 3).error_code == 0
        committed = client.call(
            OffsetCommitRequest(
                group_id="g",
                generation_id_or_member_epoch=-1,
                topics=[OffsetCommitRequestTopic("many", [OffsetCommitRequestPartition(0, 5)])],
            ),
            8,
        )
        assert committed.topics[0].partitions[0].error_code == 0
        auto = client.call(MetadataRequest(topics=[MetadataRequestTopic(name="auto")]), 9)
        assert auto.topics[0].error_code == 0
        deleted = client.call(DeleteTopicsRequest(topic_names=["many"]), 4)
        assert deleted.responses[0].error_code == 0
    finally:
        client.close()
    # The workload reached the disk (the guard sees it), never from the loop's thread.
    assert fs.on_thread(running.thread) == []
    assert {"fsync", "fsync_dir", "mkdir", "rename"} <= {call for call, _ in fs.calls}


def test_the_loop_answers_others_while_a_large_create_topics_writes(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    fs.hold = "big-"
    creator, other = Client(running), Client(running)
    try:
        creator.send(CreateTopicsRequest(topics=[CreatableTopic("big", 40, 1)]), 7)
        assert fs.held.wait(TIMEOUT), "the creation never reached its logs"
        # The creation is stuck in the disk: another client is served meanwhile, and the topic is
        # not visible before its logs exist.
        assert other.call(ApiVersionsRequest("brook-test", "1.0"), 3).error_code == 0
        early = other.call(
            MetadataRequest(topics=[MetadataRequestTopic(name="big")], allow_auto_topic_creation=False), 9
        )
        assert early.topics[0].error_code != 0
        again = other.call(CreateTopicsRequest(topics=[CreatableTopic("big", 1, 1)]), 7)
        assert again.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS, as while Kafka creates it
        fs.release.set()
        answer = creator.receive(CreateTopicsRequest, 7)
        assert answer.topics[0].error_code == 0
        late = other.call(MetadataRequest(topics=[MetadataRequestTopic(name="big")]), 9)
        assert late.topics[0].error_code == 0 and len(late.topics[0].partitions) == 40
    finally:
        fs.release.set()
        creator.close()
        other.close()


def test_flush_messages_fsyncs_off_the_loop_and_answers_after_it(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    producer, other = Client(running), Client(running)
    try:
        configs = [CreatableTopicConfig("flush.messages", "1")]
        created = producer.call(CreateTopicsRequest(topics=[CreatableTopic("durable", 1, 1, [], configs)]), 7)
        assert created.topics[0].error_code == 0
        fs.hold = "fsync"
        request = ProduceRequest(
            acks=1,
            timeout_ms=1000,
            topic_data=[TopicProduceData("durable", [PartitionProduceData(0, batch([b"v"]))])],
        )
        producer.send(request, 9)
        assert fs.held.wait(TIMEOUT), "flush.messages=1 never fsync'd"
        # The fsync is in progress: another client is answered meanwhile, the producer is not.
        assert other.call(ApiVersionsRequest("brook-test", "1.0"), 3).error_code == 0
        producer.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            producer.sock.recv(1)
        producer.sock.settimeout(TIMEOUT)
        fs.release.set()
        answer = producer.receive(ProduceRequest, 9).responses[0].partition_responses[0]
        assert answer.error_code == 0 and answer.base_offset == 0
        log = running.broker.log_manager.get_log("durable", 0)
        assert log is not None and log.recovery_point == 1
    finally:
        fs.release.set()
        producer.close()
        other.close()


class FailingMkdir(FileSystem):
    def __init__(self, doomed: str) -> None:
        self.doomed: str | None = doomed

    def mkdir(self, path: Path) -> None:
        if path.name == self.doomed:
            raise OSError(5, "Input/output error", str(path))
        super().mkdir(path)


def test_a_creation_the_disk_refuses_creates_the_topic_with_its_replicas_offline(tmp_path: Path) -> None:
    # As Kafka: the topic is created (metadata); a replica whose log cannot be created on a failing
    # disk is offline and takes its log dir with it (KAFKA_STORAGE_ERROR), the broker answers on.
    fs = FailingMkdir("half-27")
    broker = make_broker(tmp_path / "data", fs)
    call = Caller(broker)
    try:
        created = call(CreateTopicsRequest(topics=[CreatableTopic("half", 40, 1)]), 7)
        assert created.topics[0].error_code == 0
        assert broker.metadata.topic("half") is not None
        assert broker.replica_manager.is_offline(TopicPartition("half", 27))
        assert broker.log_manager.online_dirs() == []
        leader, code = broker.replica_manager.leader_for("half", 27)
        assert leader is None and code == 56  # KAFKA_STORAGE_ERROR
    finally:
        broker.log_manager.close()


def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_creation_whose_client_disconnects_still_completes(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    # librdkafka drops its bootstrap connection while FindCoordinator creates __consumer_offsets:
    # the request is cancelled, but the half-created topic must still be finished.
    running, fs = recording
    server = running.broker.server
    assert server is not None
    fs.hold = "gone-"
    leaver, other = Client(running), Client(running)
    try:
        leaver.send(CreateTopicsRequest(topics=[CreatableTopic("gone", 40, 1)]), 7)
        assert fs.held.wait(TIMEOUT), "the creation never reached its logs"
        leaver.close()
        assert _eventually(lambda: len(server.connections) == 1), "the broker never saw the disconnect"
        fs.release.set()
        done = asyncio.run_coroutine_threadsafe(running.broker.topics.created("gone"), running.loop)
        info = done.result(TIMEOUT)
        assert info is not None and len(info.partitions) == 40
        found = other.call(MetadataRequest(topics=[MetadataRequestTopic(name="gone")]), 9)
        assert found.topics[0].error_code == 0 and len(found.topics[0].partitions) == 40
    finally:
        fs.release.set()
        other.close()


def test_the_offsets_topic_is_taken_over_even_if_its_first_finder_disconnects(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    server = running.broker.server
    assert server is not None
    fs.hold = "__consumer_offsets-"
    leaver, other = Client(running), Client(running)
    try:
        leaver.send(FindCoordinatorRequest(key="g"), 3)
        assert fs.held.wait(TIMEOUT), "the offsets topic was never created"
        leaver.close()
        assert _eventually(lambda: len(server.connections) == 1), "the broker never saw the disconnect"
        fs.release.set()
        store = running.broker.group_coordinator.store
        asyncio.run_coroutine_threadsafe(store.ensure_topic(), running.loop).result(TIMEOUT)
        assert other.call(FindCoordinatorRequest(key="g"), 3).error_code == 0
        created = other.call(CreateTopicsRequest(topics=[CreatableTopic("t", 1, 1)]), 7)
        assert created.topics[0].error_code == 0
        committed = other.call(
            OffsetCommitRequest(
                group_id="g",
                generation_id_or_member_epoch=-1,
                topics=[OffsetCommitRequestTopic("t", [OffsetCommitRequestPartition(0, 5)])],
            ),
            8,
        )
        assert committed.topics[0].partitions[0].error_code == 0
    finally:
        fs.release.set()
        other.close()


def test_a_name_colliding_with_a_creation_in_progress_is_refused(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    fs.hold = "a.b-"
    first, second = Client(running), Client(running)
    try:
        first.send(CreateTopicsRequest(topics=[CreatableTopic("a.b", 2, 1)]), 7)
        assert fs.held.wait(TIMEOUT), "the creation never reached its logs"
        colliding = second.call(CreateTopicsRequest(topics=[CreatableTopic("a_b", 2, 1)]), 7)
        assert colliding.topics[0].error_code == 17  # INVALID_TOPIC_EXCEPTION, as once it exists
        fs.release.set()
        assert first.receive(CreateTopicsRequest, 7).topics[0].error_code == 0
    finally:
        fs.release.set()
        first.close()
        second.close()
