"""The exactly-once tests' pieces: the checker, the worker process seen from the test, and the
reads and writes around it (confluent-kafka).

The checker compares multisets: every input value must be in the output exactly once (a record
read twice is a duplicate, one never read is missing, a value that was never input is foreign).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class EosReport:
    inputs: int
    outputs: int
    missing: dict[bytes, int] = field(default_factory=dict)
    duplicated: dict[bytes, int] = field(default_factory=dict)
    foreign: dict[bytes, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.foreign)

    def __str__(self) -> str:
        def few(d: dict[bytes, int]) -> str:
            return f"{len(d)} {dict(list(d.items())[:5])}"

        return (
            f"{self.inputs} input / {self.outputs} output records; missing {few(self.missing)}; "
            f"duplicated {few(self.duplicated)}; foreign {few(self.foreign)}"
        )


def check_exactly_once(inputs: Iterable[bytes], outputs: Iterable[bytes]) -> EosReport:
    """Every input value in the output exactly as often as it was input, and nothing else."""
    want = Counter(inputs)
    got = Counter(outputs)
    report = EosReport(sum(want.values()), sum(got.values()))
    for value, n in want.items():
        if got[value] < n:
            report.missing[value] = n - got[value]
        elif got[value] > n:
            report.duplicated[value] = got[value] - n
    report.foreign = {v: n for v, n in got.items() if v not in want}
    return report


# -- the topics -------------------------------------------------------------------------------


def produce_input(bootstrap: str, topic: str, partitions: int, per_partition: int) -> list[bytes]:
    """Write ``per_partition`` distinct values to each partition (idempotent, acks=all)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    values: list[bytes] = []
    failures: list[str] = []

    def done(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for p in range(partitions):
        for i in range(per_partition):
            value = f"eos-{p}-{i:05d}".encode()
            producer.produce(topic, value=value, key=f"k{i}".encode(), partition=p, on_delivery=done)
            values.append(value)
    assert producer.flush(30) == 0, "input not delivered in 30 s"
    assert not failures, failures
    return values


def read_all(
    bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = 30.0
) -> list[bytes]:
    """Every record value of ``topic`` visible at ``isolation``, from the start up to the end each
    partition has when the read begins (partition EOF: the LSO for read_committed)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"eos-check-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        values: list[bytes] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{isolation} read of {topic} did not reach the end of partitions "
                    f"{sorted(set(range(partitions)) - at_end)} in {timeout} s ({len(values)} records)"
                )
            for msg in consumer.consume(500, timeout=0.5):
                err = msg.error()
                value, partition = msg.value(), msg.partition()
                if err is None:
                    assert value is not None, "a record without a value"
                    values.append(value)
                elif err.code() == KafkaError._PARTITION_EOF and partition is not None:
                    at_end.add(partition)
                else:
                    raise AssertionError(f"reading {topic}: {err}")
        return values
    finally:
        consumer.close()


# -- the worker process -----------------------------------------------------------------------


def _age(stats: dict[str, Any] | None) -> str:
    if stats is None or "at" not in stats:
        return "none"
    return f"{time.time() - stats['at']:.1f} s old"


class Worker:
    """One ``compat_tests.txn_worker`` process: its events and bounded waits on them."""

    def __init__(self, **cfg: Any) -> None:
        self.cfg = cfg
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "compat_tests.txn_worker", json.dumps(cfg)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._stdout_closed = False
        self._cond = threading.Condition()
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
        with self._cond:
            self._stdout_closed = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace"))
            del self._stderr[:-40]

    def describe(self) -> str:
        with self._cond:
            events = [e for e in self.events if e["ev"] != "stats"][-12:]
            stats = next((e for e in reversed(self.events) if e["ev"] == "stats"), None)
        return (
            f"worker {self.cfg.get('transactional_id')} alive={self.proc.poll() is None} "
            f"exit={self.proc.returncode}\nlast events: {events}\n"
            f"last input partition stats ({_age(stats)}): {stats}\n"
            f"stderr:\n{''.join(self._stderr[-15:])}"
        )

    def wait_event(self, ev: str, timeout: float, min_txn: int = 0) -> dict[str, Any] | None:
        """The first event named ``ev`` (of a transaction numbered ``min_txn`` or later); None if the
        process ended without one. Fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event["ev"] == ev and event.get("txn", 0) >= min_txn:
                        return event
                if self._stdout_closed:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {ev}\n{self.describe()}")
                self._cond.wait(min(left, 0.5))

    def positions(self) -> dict[int, int]:
        """The input positions of the last commit this worker reported (or found when it started)."""
        with self._cond:
            for event in reversed(self.events):
                if event["ev"] in ("committed", "ready"):
                    return {int(p): o for p, o in event["positions"].items()}
        return {}

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def run_until_consumed(
    cfg: dict[str, Any],
    ends: dict[int, int],
    timeout: float,
    max_restarts: int = 5,
    worker: Worker | None = None,
) -> tuple[Worker, int]:
    """Run workers (``worker`` first if given; a successor for one that exits on an error) until
    a commit covers ``ends``. Returns the last worker (still running) and how many restarts it took."""
    deadline = time.monotonic() + timeout
    restarts = 0
    worker = worker or Worker(**cfg)
    while True:
        if worker.positions() == ends:
            return worker, restarts
        if worker.proc.poll() is not None:
            restarts += 1
            assert restarts <= max_restarts, f"worker failed {restarts} times\n{worker.describe()}"
            worker = Worker(**cfg)
        if time.monotonic() > deadline:
            worker.stop()
            raise AssertionError(f"input not consumed to {ends} in {timeout} s\n{worker.describe()}")
        with worker._cond:
            worker._cond.wait(0.2)
