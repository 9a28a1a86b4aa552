"""A consumer-group member in its own process, for tests that must kill a consumer.

``python -m compat_tests.group_worker '<json config>'`` subscribes one stock client
(confluent-kafka, kafka-python or aiokafka) to a topic in a group and reports on stdout, one
JSON object a line:

* ``{"ev": "assigned", "partitions": [...], "all": [...]}`` / ``{"ev": "revoked", ...}`` from the
  client's rebalance callbacks (``partitions``: what the callback got; ``all``: the assignment
  after it);
* ``{"ev": "record", "p": partition, "o": offset}`` for every record it reads;
* ``{"ev": "committed", "offsets": {partition: offset}}`` after a commit the broker acknowledged;
* ``{"ev": "closed"}`` when it leaves after reading ``close`` on stdin.

Config keys: client, bootstrap, group, topic, assignor (client-specific name or "default"),
instance_id, session_ms, heartbeat_ms, commit ("sync" after every poll that read records,
"auto", or "none"), client_id.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

_lock = threading.Lock()


def emit(**event: Any) -> None:
    with _lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Stdin:
    """Watches stdin for the ``close`` command."""

    def __init__(self) -> None:
        self.closing = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if line.strip() == "close":
                self.closing.set()
                return
        self.closing.set()  # the test went away


def run_confluent(cfg: dict[str, Any], stdin: Stdin) -> None:
    from confluent_kafka import Consumer, KafkaException

    settings: dict[str, Any] = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "client.id": cfg.get("client_id", "worker"),
        "auto.offset.reset": "earliest",
        "session.timeout.ms": cfg.get("session_ms", 6000),
        "heartbeat.interval.ms": cfg.get("heartbeat_ms", 500),
        "enable.auto.commit": cfg.get("commit") == "auto",
        "auto.commit.interval.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    if cfg.get("assignor", "default") != "default":
        settings["partition.assignment.strategy"] = cfg["assignor"]
    if cfg.get("instance_id"):
        settings["group.instance.id"] = cfg["instance_id"]
    consumer = Consumer(settings)
    cooperative = cfg.get("assignor") == "cooperative-sticky"

    def current() -> list[int]:
        return sorted(tp.partition for tp in consumer.assignment())

    def on_assign(c: Any, partitions: list[Any]) -> None:
        if cooperative:
            c.incremental_assign(partitions)
        else:
            c.assign(partitions)
        emit(ev="assigned", partitions=sorted(p.partition for p in partitions), all=current())

    def on_revoke(c: Any, partitions: list[Any]) -> None:
        if cooperative:
            c.incremental_unassign(partitions)
        else:
            c.unassign()
        emit(ev="revoked", partitions=sorted(p.partition for p in partitions), all=current())

    consumer.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke)
    while not stdin.closing.is_set():
        messages = consumer.consume(100, timeout=0.2)
        read = False
        for msg in messages:
            if msg.error():
                continue
            emit(ev="record", p=msg.partition(), o=msg.offset())
            read = True
        if read and cfg.get("commit") == "sync":
            try:
                done = consumer.commit(asynchronous=False)
            except KafkaException as exc:  # e.g. a rebalance started: the next poll rejoins
                emit(ev="commit_failed", error=str(exc))
            else:
                emit(ev="committed", offsets={str(tp.partition): tp.offset for tp in done or []})
    consumer.close()
    emit(ev="closed")


def run_kafka_python(cfg: dict[str, Any], stdin: Stdin) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from kafka.errors import KafkaError

    assignors = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "sticky": StickyPartitionAssignor,
        "cooperative-sticky": CooperativeStickyAssignor,
    }
    kwargs: dict[str, Any] = {
        "bootstrap_servers": cfg["bootstrap"],
        "group_id": cfg["group"],
        "client_id": cfg.get("client_id", "worker"),
        "auto_offset_reset": "earliest",
        "session_timeout_ms": cfg.get("session_ms", 6000),
        "heartbeat_interval_ms": cfg.get("heartbeat_ms", 500),
        "enable_auto_commit": cfg.get("commit") == "auto",
        "auto_commit_interval_ms": 200,
        "metadata_max_age_ms": 1000,
    }
    if cfg.get("assignor", "default") != "default":
        kwargs["partition_assignment_strategy"] = [assignors[cfg["assignor"]]]
    if cfg.get("instance_id"):
        kwargs["group_instance_id"] = cfg["instance_id"]
    consumer = KafkaConsumer(**kwargs)

    def current() -> list[int]:
        return sorted(tp.partition for tp in consumer.assignment())

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            emit(ev="revoked", partitions=sorted(tp.partition for tp in revoked), all=current())

        def on_partitions_assigned(self, assigned: Any) -> None:
            emit(ev="assigned", partitions=sorted(tp.partition for tp in assigned), all=current())

    # kafka-python 3.0.12 can lose a SyncGroup answer that lands after poll()'s timeout when it
    # rejoins at once, which it does when its first assignment was made before it knew the topic's
    # partitions (Kafka's default 3 s initial rebalance delay hides this; the harness sets 0).
    # Knowing the partitions before joining keeps the first assignment complete.
    consumer.partitions_for_topic(cfg["topic"])
    consumer.subscribe([cfg["topic"]], listener=Listener())
    while not stdin.closing.is_set():
        batches = consumer.poll(timeout_ms=200)
        read = False
        for records in batches.values():
            for record in records:
                emit(ev="record", p=record.partition, o=record.offset)
                read = True
        if read and cfg.get("commit") == "sync":
            try:
                consumer.commit()
            except KafkaError as exc:
                emit(ev="commit_failed", error=str(exc))
            else:
                emit(ev="committed", offsets={})
    consumer.close()
    emit(ev="closed")


def run_aiokafka(cfg: dict[str, Any], stdin: Stdin) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.errors import KafkaError

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg["bootstrap"],
            group_id=cfg["group"],
            client_id=cfg.get("client_id", "worker"),
            auto_offset_reset="earliest",
            session_timeout_ms=cfg.get("session_ms", 6000),
            heartbeat_interval_ms=cfg.get("heartbeat_ms", 500),
            enable_auto_commit=cfg.get("commit") == "auto",
            auto_commit_interval_ms=200,
            metadata_max_age_ms=1000,
        )

        def current() -> list[int]:
            return sorted(tp.partition for tp in consumer.assignment())

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                emit(ev="revoked", partitions=sorted(tp.partition for tp in revoked), all=current())

            def on_partitions_assigned(self, assigned: Any) -> None:
                emit(ev="assigned", partitions=sorted(tp.partition for tp in assigned), all=current())

        consumer.subscribe([cfg["topic"]], listener=Listener())
        await consumer.start()
        try:
            while not stdin.closing.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                read = False
                for records in batches.values():
                    for record in records:
                        emit(ev="record", p=record.partition, o=record.offset)
                        read = True
                if read and cfg.get("commit") == "sync":
                    try:
                        await consumer.commit()
                    except KafkaError as exc:
                        emit(ev="commit_failed", error=str(exc))
                    else:
                        emit(ev="committed", offsets={})
        finally:
            await consumer.stop()
        emit(ev="closed")

    asyncio.run(main())


RUNNERS = {"confluent": run_confluent, "kafka-python": run_kafka_python, "aiokafka": run_aiokafka}


# -- the test's side -----------------------------------------------------------------------------


class Member:
    """A worker process seen from the test: its events, and bounded waits on them."""

    def __init__(self, client: str, **cfg: Any) -> None:
        import os
        import subprocess
        from pathlib import Path

        repo = Path(__file__).resolve().parents[1]
        self.client = client
        self.cfg = {"client": client, **cfg}
        config = json.dumps(self.cfg)
        if client == "kafkajs":
            from compat_tests.clients.tools import NODE_DIR, require_kafkajs

            cmd = [require_kafkajs(), str(NODE_DIR / "group_member.js"), config]
        else:
            cmd = [sys.executable, "-m", "compat_tests.group_worker", config]
        env = dict(os.environ, PYTHONPATH=str(repo), KAFKAJS_NO_PARTITIONER_WARNING="1")
        self.proc = subprocess.Popen(
            cmd, cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace"))
            del self._stderr[:-40]

    # -- views --------------------------------------------------------------------------------

    def assignment(self) -> set[int]:
        with self._cond:
            for event in reversed(self.events):
                if event["ev"] in ("assigned", "revoked"):
                    return set(event["all"])
        return set()

    def records(self) -> set[tuple[int, int]]:
        with self._cond:
            return {(e["p"], e["o"]) for e in self.events if e["ev"] == "record"}

    def rebalance_events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["ev"] in ("assigned", "revoked")]

    def describe(self) -> str:
        return (
            f"{self.client} member {self.cfg.get('client_id')}: assignment {sorted(self.assignment())}, "
            f"{len(self.records())} records, alive={self.proc.poll() is None}\n"
            f"last events: {self.events[-8:]}\nstderr:\n{''.join(self._stderr[-15:])}"
        )

    # -- control ------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Leave the group the client's normal way (close/stop/disconnect) and exit."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"close\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no commit; the coordinator notices by the session timeout."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_for(predicate: Any, timeout: float, what: str, members: list[Member] | None = None) -> None:
    """Poll ``predicate`` every 50 ms; fail with the members' state after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    details = "\n".join(m.describe() for m in members or [])
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{details}")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    RUNNERS[cfg["client"]](cfg, Stdin())


if __name__ == "__main__":
    main()
