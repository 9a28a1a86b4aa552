"""The writer and the reader of the fault-injection tests.

``Workload`` is one idempotent confluent-kafka producer (acks=all) on a thread of its own, writing
sequence-numbered values (:func:`~compat_tests.replication_checker.make_value`) round-robin over a
topic's partitions without pause until stopped, and keeping every acknowledged
``(partition, offset, value)``. ``read_back`` reads every partition from its earliest offset to its
high watermark with a fresh consumer. Both are bounded by deadlines.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from compat_tests.replication_checker import Acked, Report, check, make_value

TIMEOUT = 30.0


class Workload:
    def __init__(self, bootstrap: str, topic: str, partitions: int, **overrides: Any) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.partitions = partitions
        self.run = uuid.uuid4().hex[:8]
        self._lock = threading.Condition()
        self.fatal: str | None = None
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": 45000,
                "request.timeout.ms": 10000,
                "retry.backoff.ms": 50,
                "topic.metadata.refresh.interval.ms": 1000,
                "log_level": 2,  # not every refused connection to a dead broker
                "error_cb": self._on_error,
                **overrides,
            }
        )
        self.acked: list[Acked] = []
        self.errors: list[str] = []
        self.sent = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._write, name=f"workload-{self.run}", daemon=True)

    def start(self) -> Workload:
        self._thread.start()
        return self

    def _on_error(self, err: Any) -> None:
        """Client-level errors; a fatal one (the idempotent producer gave up) is kept, not raised."""
        if err.fatal():
            with self._lock:
                self.fatal = str(err)
                self._lock.notify_all()

    def _on_delivery(self, err: Any, msg: Any) -> None:
        with self._lock:
            if err is None:
                self.acked.append(Acked(msg.partition(), msg.offset(), msg.value()))
            else:
                self.errors.append(str(err))
            self._lock.notify_all()

    def _write(self) -> None:
        from confluent_kafka import KafkaException

        sequences = [0] * self.partitions
        partition = 0
        while not self._stopping.is_set() and self.fatal is None:
            value = make_value(self.run, partition, sequences[partition])
            try:
                self.producer.produce(
                    self.topic, value=value, partition=partition, on_delivery=self._on_delivery
                )
            except BufferError:
                self.producer.poll(0.1)
                continue
            except KafkaException as exc:  # a fatal idempotence error: nothing more can be sent
                self.fatal = str(exc)
                return
            with self._lock:
                self.sent += 1
                self._lock.notify_all()
            sequences[partition] += 1
            partition = (partition + 1) % self.partitions
            try:
                # a steady few hundred messages a second: two cores are shared with the brokers
                self.producer.poll(0.003)
            except KafkaException as exc:
                self.fatal = str(exc)
                return

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_acked(self, more_than: int, timeout: float = TIMEOUT) -> int:
        """Wait until more than ``more_than`` writes are acknowledged (the workload makes progress)."""
        with self._lock:
            if not self._lock.wait_for(
                lambda: len(self.acked) > more_than or self.fatal is not None, timeout
            ):
                raise AssertionError(
                    f"no acknowledgement beyond {more_than} in {timeout} s (errors: {self.errors[-3:]})"
                )
            assert self.fatal is None, self.fatal
            return len(self.acked)

    def wait_sent(self, more_than: int, timeout: float = TIMEOUT) -> int:
        with self._lock:
            assert self._lock.wait_for(lambda: self.sent > more_than, timeout), "the workload stopped sending"
            return self.sent

    def stop(self) -> None:
        """Stop writing, wait for every delivery report, destroy the client."""
        from confluent_kafka import KafkaException

        self._stopping.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the workload's thread did not stop"
        try:
            left = self.producer.flush(60)
        except (KafkaException, SystemError) as exc:
            # a fatal error surfacing from the client's queue: the reports so far are what counts
            self.fatal = self.fatal or str(exc)
        else:
            assert left == 0, f"{left} messages without a delivery report"
        self.producer.close()


def read_back(
    bootstrap: str, topic: str, partitions: int, acked: list[Acked], timeout: float = TIMEOUT
) -> dict[int, list[tuple[int, bytes | None]]]:
    """Every record of every partition from the earliest offset to the high watermark.

    The high watermark is first awaited past the highest acknowledged offset (a new leader learns
    it from its followers' fetches); if it never gets there the read stops where it is, and the
    checker reports what is missing."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"readback-{uuid.uuid4().hex[:8]}",  # required; offsets are assigned
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 2,
        }
    )
    deadline = time.monotonic() + timeout / 2
    wanted = {p: max((a.offset + 1 for a in acked if a.partition == p), default=0) for p in range(partitions)}
    try:
        high: dict[int, int] = {}
        for p in range(partitions):
            while True:
                try:
                    _, high[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
                except Exception:  # a leader moving: ask again
                    high[p] = -1
                if high[p] >= wanted[p] or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)  # nothing announces a high watermark move to a client
        read: dict[int, list[tuple[int, bytes | None]]] = {p: [] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        position = {p: -1 for p in range(partitions)}
        deadline = time.monotonic() + timeout
        while any(position[p] + 1 < high[p] for p in range(partitions)) and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.5):
                if m.error():
                    continue  # transient (a leader moving); the client retries
                partition, offset = m.partition(), m.offset()
                assert partition is not None and offset is not None
                read[partition].append((offset, m.value()))
                position[partition] = offset
        return read
    finally:
        consumer.close()


def verify(workload: Workload, bootstrap: str, what: str) -> Report:
    """Read back, check, print the counts (``FAULTS <what>: ...``) and return the report."""
    read = read_back(bootstrap, workload.topic, workload.partitions, workload.acked)
    report = check(workload.run, workload.acked, read)
    print(f"\nFAULTS {what}: {report.counts()} send_errors={len(workload.errors)}")
    return report
