"""kafkajs reading: it has no assign(), so every read goes through a consumer group.

Skipped (only) while the broker does not advertise JoinGroup, which ApiVersions tells at run time.
What kafkajs writes is checked with the other clients in test_clients.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import BY_NAME
from compat_tests.clients.model import Msg
from compat_tests.clients.node import run_kafkajs
from compat_tests.clients.partitioners import java_partition
from compat_tests.clients.raw import JOIN_GROUP, advertises
from compat_tests.clients.tools import require_kafkajs
from compat_tests.harness import BrokerProcess

KAFKAJS = BY_NAME["kafkajs"]


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    require_kafkajs()
    if not advertises(broker.bootstrap, JOIN_GROUP):
        pytest.skip("kafkajs reads only through consumer groups and this broker does not advertise JoinGroup")
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


def group() -> str:
    return f"kafkajs-{uuid.uuid4().hex[:8]}"


def test_kafkajs_reads_from_earliest_every_codec(bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("js-read"), partitions=3)
    sent: list[Msg] = []
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        batch = [
            Msg(
                (f"{codec}-{i} " * 30).encode(),
                key=f"{codec}-key-{i}".encode(),
                headers=(("codec", codec.encode()),),
                timestamp=1_600_000_000_000 + len(sent) + i,
            )
            for i in range(12)
        ]
        KAFKAJS.produce(bootstrap, topic, batch, acks="all", compression=codec)
        sent += batch

    result = run_kafkajs(
        {
            "op": "consume",
            "brokers": [bootstrap],
            "topic": topic,
            "groupId": group(),
            "fromBeginning": True,
            "count": len(sent),
            "timeoutMs": 30000,
        }
    )
    got = result["messages"]
    assert len(got) == len(sent), f"read {len(got)} of {len(sent)}"
    by_key = {m["key"]: m for m in got}
    assert len(by_key) == len(sent), "a record was read twice"
    for msg in sent:
        assert msg.key is not None
        rec = by_key[msg.key.decode()]
        assert rec["value"].encode() == msg.value
        assert rec["headers"] == {k: v.decode() for k, v in msg.headers}
        assert int(rec["timestamp"]) == msg.timestamp
        assert rec["partition"] == java_partition(msg.key, 3)
    for p in range(3):
        offsets = [int(m["offset"]) for m in got if m["partition"] == p]
        assert offsets == list(range(len(offsets))), f"partition {p} out of order"


def test_kafkajs_reads_from_latest(bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("js-latest"), partitions=1)
    KAFKAJS.produce(bootstrap, topic, [Msg(f"old-{i}".encode(), partition=0) for i in range(5)], acks="all")
    result = run_kafkajs(
        {
            "op": "consume",
            "brokers": [bootstrap],
            "topic": topic,
            "groupId": group(),
            "fromBeginning": False,
            "count": 3,
            "timeoutMs": 30000,
            "produceWhileWaiting": {"prefix": "new", "partition": 0},
        }
    )
    values = [m["value"] for m in result["messages"]]
    assert len(values) >= 3, values
    assert all(v.startswith("new-") for v in values), values
    first = int(values[0].split("-")[1])
    assert values == [f"new-{i}" for i in range(first, first + len(values))]
