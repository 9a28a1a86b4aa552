"""Requests the transaction tests send without a client library, through the generated protocol
classes: which broker coordinates a transactional id, and OffsetFetch with ``require_stable``."""

from __future__ import annotations

import socket
from typing import Any

from compat_tests.clients.raw import read_frame
from protocol import api as papi
from protocol.message import Message
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic

#: FindCoordinator key types (Kafka's CoordinatorType).
GROUP_KEY = 0
TRANSACTION_KEY = 1
UNSTABLE_OFFSET_COMMIT = 88


def call(bootstrap: str, body: Message, version: int, timeout: float = 10.0) -> Any:
    """Send one request to ``host:port`` (the first of a list) and return the decoded response body."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(papi.encode_request(body, version, 1, "brook-txn-tests"))
        frame = read_frame(sock)
    correlation_id, response = papi.decode_response(frame, body.API_KEY, version)
    assert correlation_id == 1, correlation_id
    return response


def find_coordinator(bootstrap: str, key: str, key_type: int) -> tuple[int, int]:
    """(error code, coordinator node id) from FindCoordinator v3 (one key, answered at top level)."""
    response = call(bootstrap, FindCoordinatorRequest(key=key, key_type=key_type), 3)
    return int(response.error_code), int(response.node_id)


def offset_fetch_stable(
    bootstrap: str, group: str, topic: str, partitions: list[int]
) -> dict[int, tuple[int, int]]:
    """OffsetFetch v7 with ``require_stable``, sent to ``bootstrap`` (the group's coordinator):
    {partition: (error code, committed offset)}; a top-level error is reported for each partition."""
    request = OffsetFetchRequest(
        group_id=group,
        topics=[OffsetFetchRequestTopic(name=topic, partition_indexes=partitions)],
        require_stable=True,
    )
    response = call(bootstrap, request, 7)
    if response.error_code:
        return {p: (int(response.error_code), -1) for p in partitions}
    return {
        part.partition_index: (int(part.error_code), int(part.committed_offset))
        for t in response.topics
        if t.name == topic
        for part in t.partitions
    }


def broker_address(bootstrap: str, node_id: int) -> str:
    """``host:port`` of broker ``node_id`` as Metadata (confluent-kafka's) names it."""
    from confluent_kafka.admin import AdminClient

    brokers = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15).brokers
    assert node_id in brokers, f"no broker {node_id} in Metadata: {sorted(brokers)}"
    return f"{brokers[node_id].host}:{brokers[node_id].port}"
