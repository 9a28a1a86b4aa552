"""100,000 messages over 6 partitions, produced and consumed back by each client: complete, in
order per partition, without duplicates (idempotent producers, acks=all)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import ALL_DRIVERS, REFERENCE, Driver
from compat_tests.clients.model import Msg, Rec
from compat_tests.clients.node import run_kafkajs
from compat_tests.harness import BrokerProcess

TOTAL = 100_000
PARTITIONS = 6


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


def messages(interleaved: bool) -> list[Msg]:
    """Value "<partition>:<sequence>" on partition ``i % 6``; interleaved across partitions, or
    partition after partition (kcat runs once per partition)."""
    msgs = [
        Msg(f"{i % PARTITIONS}:{i // PARTITIONS}".encode(), partition=i % PARTITIONS) for i in range(TOTAL)
    ]
    if not interleaved:
        msgs.sort(key=lambda m: m.partition or 0)
    return msgs


def check_complete_and_ordered(records: list[Rec | dict[str, object]]) -> None:
    per_partition: dict[int, list[tuple[int, str]]] = {p: [] for p in range(PARTITIONS)}
    for r in records:
        if isinstance(r, Rec):
            assert r.value is not None
            per_partition[r.partition].append((r.offset, r.value.decode()))
        else:
            per_partition[int(r["partition"])].append((int(str(r["offset"])), str(r["value"])))  # type: ignore[call-overload]
    assert sum(len(v) for v in per_partition.values()) == TOTAL, {p: len(v) for p, v in per_partition.items()}
    for p, items in per_partition.items():
        expected_count = TOTAL // PARTITIONS + (1 if p < TOTAL % PARTITIONS else 0)
        offsets = [o for o, _ in items]
        assert offsets == list(range(expected_count)), f"partition {p}: offsets not 0..{expected_count - 1}"
        seqs = [v for _, v in items]
        expected = [f"{p}:{s}" for s in range(expected_count)]
        if seqs != expected:
            first = next(i for i, (a, b) in enumerate(zip(seqs, expected, strict=True)) if a != b)
            raise AssertionError(
                f"partition {p}: at offset {first} read {seqs[first]!r}, expected {expected[first]!r}"
            )


@pytest.mark.parametrize("driver", [pytest.param(d, id=d.name) for d in ALL_DRIVERS])
def test_100k_messages_over_6_partitions(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("bulk"), partitions=PARTITIONS)
    started = time.monotonic()
    driver.produce(bootstrap, topic, messages(interleaved=driver.name != "kcat"), acks="all", idempotent=True)
    produced = time.monotonic()
    reader = driver if driver.can_assign else REFERENCE
    check_complete_and_ordered(reader.consume(bootstrap, topic, list(range(PARTITIONS))))  # type: ignore[arg-type]
    print(
        f"{driver.name}: produced {TOTAL} in {produced - started:.1f} s, "
        f"read back in {time.monotonic() - produced:.1f} s"
    )
    if driver.name == "kafkajs":
        # kafkajs reads only through a consumer group (test_kafkajs_consume.py skips without one).
        from compat_tests.clients.raw import JOIN_GROUP, advertises

        if advertises(bootstrap, JOIN_GROUP):
            result = run_kafkajs(
                {
                    "op": "consume",
                    "brokers": [bootstrap],
                    "topic": topic,
                    "groupId": f"bulk-{topic}",
                    "fromBeginning": True,
                    "count": TOTAL,
                    "timeoutMs": 60000,
                },
                timeout=120,
            )
            check_complete_and_ordered(result["messages"])
