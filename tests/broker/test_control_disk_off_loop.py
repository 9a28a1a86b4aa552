"""The controller's requests do their disk work (log creation, leader-epoch checkpoints, log
deletion) in the broker's disk workers, never on the event loop (see test_disk_off_loop.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.broker.control_kit import (
    LOCAL,
    OTHER,
    Node,
    PState,
    cluster_broker,
    leader_and_isr,
    stop_replica,
    update_metadata,
)
from tests.broker.test_data_plane import batch
from tests.broker.test_disk_off_loop import Client, ThreadRecordingFileSystem
from tests.broker.test_network import Running

T_ID = uuid.UUID("7e2d4c6b-1a3f-4e5d-9c8b-6a7f5e4d3c2b")


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[Running, ThreadRecordingFileSystem]]:
    fs = ThreadRecordingFileSystem()
    running = Running(cluster_broker(tmp_path / "cluster-data", fs=fs))
    try:
        yield running, fs
    finally:
        running.stop()


def test_control_requests_do_no_disk_work_on_the_event_loop(
    recording: tuple[Running, ThreadRecordingFileSystem],
) -> None:
    running, fs = recording
    fs.calls.clear()
    client = Client(running)
    nodes = [Node(LOCAL, "127.0.0.1", running.port), Node(OTHER, "127.0.0.1", 1)]
    leaders = [
        PState("t", i, LOCAL if i % 2 == 0 else OTHER, 1, [LOCAL, OTHER], isr=[LOCAL]) for i in range(16)
    ]
    try:
        assert client.call(update_metadata(8, nodes, leaders, topic_ids={"t": T_ID}), 8).error_code == 0
        answer = client.call(leader_and_isr(7, leaders, topic_ids={"t": T_ID}), 7)
        assert {e.error_code for t in answer.topics for e in t.partition_errors} == {0}
        request = ProduceRequest(
            acks=1,
            timeout_ms=1000,
            topic_data=[TopicProduceData("t", [PartitionProduceData(0, batch([b"a"]))])],
        )
        assert client.call(request, 9).responses[0].partition_responses[0].error_code == 0
        # Leadership flips: new epochs are checkpointed where this broker becomes leader.
        flipped = [
            PState("t", i, OTHER if i % 2 == 0 else LOCAL, 2, [LOCAL, OTHER], isr=[LOCAL]) for i in range(16)
        ]
        answer = client.call(leader_and_isr(7, flipped, topic_ids={"t": T_ID}), 7)
        assert {e.error_code for t in answer.topics for e in t.partition_errors} == {0}
        stopped = client.call(stop_replica(3, [("t", i) for i in range(16)], delete=True, leader_epoch=2), 3)
        assert {p.error_code for p in stopped.partition_errors} == {0}
    finally:
        client.close()
    assert fs.on_thread(running.thread) == []
    assert {"fsync", "fsync_dir", "mkdir", "rename"} <= {call for call, _ in fs.calls}
