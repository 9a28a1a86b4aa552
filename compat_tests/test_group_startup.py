"""Four kafka-python consumers started together in one group reach one stable assignment; a
consumer that joins after the only member left during the initial delay is let in.

This is kafka-python's own routine integration scenario (its test/integration/
test_consumer_group.py ``test_group``): consumers in threads of one process, each polling every
200 ms, until all of them are in the same generation, none is rejoining, and their assignments
split the topic's partitions exactly once. The broker keeps Kafka's default
``group.initial.rebalance.delay.ms`` (3 s, so the first join phase waits for the others); only
``group.min.session.timeout.ms`` is lowered for the scenario's 3 s session timeout: with Kafka's
default (6 s) both Kafka and Brook refuse it with INVALID_SESSION_TIMEOUT, fatal in kafka-python
(kafka-python's own test broker sets 1 s).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.harness import BrokerProcess, wait_until

PARTITIONS = 4
CONSUMERS = 4
#: The join phase takes two initial delays (6 s) when members keep arriving; Kafka's own test
#: gives the group 15 s. A generous deadline, not a timing assertion.
DEADLINE = 30.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    overrides = {"group.initial.rebalance.delay.ms": "3000", "group.min.session.timeout.ms": "3000"}
    proc = BrokerProcess(Path(tmp_path_factory.mktemp("startup")) / "data", overrides).start()
    try:
        yield proc
        assert proc.alive(), f"the broker died during the test:\n{proc.log_tail()}"
    finally:
        proc.stop() if proc.alive() else proc.kill()


class Consumers:
    """kafka-python consumers, each polling in its own thread until stopped."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.consumers: dict[int, Any] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), name=f"consumer-{i}", daemon=True)
            for i in range(CONSUMERS)
        ]

    def _run(self, i: int) -> None:
        from kafka import KafkaConsumer

        try:
            consumer = KafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                client_id=f"startup-{i}",
                session_timeout_ms=3000,
                heartbeat_interval_ms=500,
                request_timeout_ms=4000,
                auto_offset_reset="earliest",
            )
        except Exception as exc:  # reported by the test, not lost in a thread
            self.errors.append(f"consumer {i}: {exc!r}")
            return
        self.consumers[i] = consumer
        try:
            while not self.stop.is_set():
                consumer.poll(timeout_ms=200)
        except Exception as exc:
            self.errors.append(f"consumer {i}: {exc!r}")
        finally:
            consumer.close(timeout_ms=500)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def stable(self) -> bool:
        """kafka-python's test condition: everyone assigned, one generation, nobody rejoining,
        every partition owned exactly once."""
        if self.errors:
            raise AssertionError(f"a consumer failed: {self.errors}")
        consumers = list(self.consumers.values())
        if len(consumers) < CONSUMERS:
            return False
        assignments = [c.assignment() for c in consumers]
        if not all(assignments):
            return False
        generations = {c._coordinator._generation.generation_id for c in consumers}
        if len(generations) != 1 or any(c._coordinator.rejoining for c in consumers):
            return False
        owned = [tp.partition for assignment in assignments for tp in assignment]
        return sorted(owned) == list(range(PARTITIONS))

    def describe(self) -> str:
        return "; ".join(
            f"{i}: generation {c._coordinator._generation.generation_id}, rejoining "
            f"{c._coordinator.rejoining}, {sorted(tp.partition for tp in c.assignment())}"
            for i, c in sorted(self.consumers.items())
        )


def test_four_kafka_python_consumers_started_together_reach_a_stable_assignment(
    broker: BrokerProcess,
) -> None:
    topic = create_topic(broker.bootstrap, unique_topic("startup"), PARTITIONS)
    group = Consumers(broker.bootstrap, f"startup-{uuid.uuid4().hex[:6]}", topic)
    group.start()
    try:
        try:
            wait_until(group.stable, DEADLINE, interval=0.1, message="a stable assignment of all four")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {group.describe()}\nbroker log:\n{broker.log_tail(40)}") from None
    finally:
        group.close()


def test_consumer_joins_after_the_only_member_left_during_the_initial_delay(broker: BrokerProcess) -> None:
    """A kafka-python consumer closes while its JoinGroup waits out the initial delay (its
    LeaveGroup empties the group, which stays in PreparingRebalance until the delay ends); the
    next consumer must be let in (Kafka's supportsProtocols with no member), not fail with a
    fatal INCONSISTENT_GROUP_PROTOCOL."""
    from kafka import KafkaConsumer
    from kafka.coordinator.base import MemberState

    topic = create_topic(broker.bootstrap, unique_topic("startup-left"), PARTITIONS)
    group = f"startup-left-{uuid.uuid4().hex[:6]}"
    settings: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap,
        "group_id": group,
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 500,
        "request_timeout_ms": 4000,
    }
    first = KafkaConsumer(topic, client_id="startup-first", **settings)
    try:

        def joining() -> bool:
            first.poll(timeout_ms=100)
            coordinator = first._coordinator
            return bool(coordinator._generation.member_id) and coordinator.state is MemberState.REBALANCING

        wait_until(joining, DEADLINE, interval=0, message="the first consumer waiting in its JoinGroup")
    finally:
        first.close(timeout_ms=2000)
    second = KafkaConsumer(topic, client_id="startup-second", **settings)
    try:

        def assigned_everything() -> bool:
            second.poll(timeout_ms=100)
            return {tp.partition for tp in second.assignment()} == set(range(PARTITIONS))

        wait_until(
            assigned_everything, DEADLINE, interval=0, message="the second consumer owning every partition"
        )
    finally:
        second.close(timeout_ms=500)
