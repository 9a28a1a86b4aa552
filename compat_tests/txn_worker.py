"""A consume-transform-produce worker in its own process, for the exactly-once tests that kill it.

``python -m compat_tests.txn_worker '<json config>'`` runs confluent-kafka's exactly-once loop:
a read_committed consumer assigned every partition of ``input`` (assign(), no group membership,
so a killed worker's successor need not wait for a session timeout), a transactional producer
with ``transactional_id``, and one transaction per batch of at most ``batch`` records: each
record is copied (same key, value and partition) to ``output`` and the consumer's positions are
sent with ``send_offsets_to_transaction`` for ``group``.

It reports on stdout, one JSON object a line:

* ``{"ev": "ready", "positions": {partition: committed offset}}`` once ``init_transactions`` has
  fenced any predecessor and the partitions are assigned;
* ``{"ev": "holding", "txn": n}`` when it holds transaction ``n`` open (records flushed, offsets
  sent, not committed) because ``hold_at`` is ``n``; it commits after reading ``go`` on stdin;
* ``{"ev": "begun", "txn": n, "records": {partition: count}}`` when transaction ``n`` begins;
* ``{"ev": "commit_retry", "txn": n, "error": ...}`` when a commit failed with a retriable error;
* ``{"ev": "committed", "txn": n, "positions": {partition: next offset}}`` after each commit;
* ``{"ev": "stats", "partitions": {...}}`` every second: librdkafka's fetch state, leader and
  offsets of each input partition (for the failure messages);
* ``{"ev": "failed", "error": ..., "kind": ...}`` before exiting non-zero on an error, or when a
  client call hangs past its timeout (kind ``hung``, see :func:`bounded`): the test
  starts a successor, which fences this producer and aborts its open transaction, as an
  application's supervisor would.

Config keys: bootstrap, input, output, partitions, group, transactional_id, batch (default 20),
hold_at (default none), transaction_timeout_ms (default 10000).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()


def emit(**event: Any) -> None:
    with _lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


#: Exit code of a worker whose client call outlived its own timeout (see :func:`bounded`).
HUNG_EXIT = 4
#: How much longer than the call's own timeout a client call may take before the worker gives up.
HANG_MARGIN_S = 5.0


def bounded(timeout: float, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, which was given ``timeout``; should it not return by then (plus a margin), the
    worker reports ``{"ev": "failed", "kind": "hung"}`` and exits, for the test to start a
    successor, as a supervisor would. librdkafka 2.16's send_offsets_to_transaction() can block
    forever, past its timeout, when the group coordinator it cached was decommissioned (its
    broker left the Metadata while it was down: confluentinc/librdkafka#5511)."""

    def give_up() -> None:
        what = getattr(call, "__name__", "a client call")
        emit(ev="failed", error=f"{what} did not return within {timeout} s", kind="hung")
        os._exit(HUNG_EXIT)

    watchdog = threading.Timer(timeout + HANG_MARGIN_S, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        return call(*args)
    finally:
        watchdog.cancel()


def _wait_for_go() -> None:
    for line in sys.stdin:
        if line.strip() == "go":
            return
    raise SystemExit(0)  # the test went away


def _kind(exc: Any) -> str:
    err = exc.args[0] if exc.args else None
    if err is None or not hasattr(err, "fatal"):
        return "other"
    if err.fatal():
        return "fatal"
    if err.txn_requires_abort():
        return "abortable"
    return "retriable" if err.retriable() else "other"


def _committed(consumer: Any, partitions: list[Any], timeout: float) -> list[Any]:
    """The group's committed offsets, retried while the group's coordinator moves or loads (as
    after the offsets topic was just created): librdkafka's committed() does not retry those."""
    from confluent_kafka import KafkaError, KafkaException

    moving = {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            return list(consumer.committed(partitions, timeout))
        except KafkaException as exc:
            if exc.args[0].code() not in moving or time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # back-off before asking again, as a client's retry would


def _report_stats(raw: str, topic: str) -> None:
    stats = json.loads(raw)
    keys = ("fetch_state", "leader", "hi_offset", "ls_offset", "app_offset", "committed_offset", "fetchq_cnt")
    partitions = stats.get("topics", {}).get(topic, {}).get("partitions", {})
    emit(
        ev="stats",
        at=time.time(),  # stats are served by consume(): old ones mean a blocked main thread
        partitions={p: {k: v.get(k) for k in keys} for p, v in partitions.items() if p != "-1"},
    )


def _count(messages: list[Any]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for msg in messages:
        counts[msg.partition()] = counts.get(msg.partition(), 0) + 1
    return counts


def run(cfg: dict[str, Any]) -> int:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    timeout = 30.0
    # EOS_WORKER_DEBUG=<dir>: librdkafka's debug log, written by its own threads as it happens
    # (a Python logger would only see it at the next poll), to a file per worker.
    debug: dict[str, Any] = {}
    debug_dir = os.environ.get("EOS_WORKER_DEBUG")
    if debug_dir:
        log = os.open(os.path.join(debug_dir, f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.dup2(log, 2)
        os.close(log)
        debug = {"debug": "fetch,cgrp,eos,topic,metadata,broker,protocol"}
    producer = Producer(
        {
            "bootstrap.servers": cfg["bootstrap"],
            "transactional.id": cfg["transactional_id"],
            "transaction.timeout.ms": cfg.get("transaction_timeout_ms", 10000),
            "client.id": "txn-worker",
            **debug,
        }
    )
    consumer = Consumer(
        {
            "bootstrap.servers": cfg["bootstrap"],
            "group.id": cfg["group"],
            "client.id": "txn-worker",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
            # librdkafka's view of each input partition, reported when a test fails.
            "statistics.interval.ms": 1000,
            "stats_cb": lambda raw: _report_stats(raw, cfg["input"]),
            **debug,
        }
    )
    try:
        producer.init_transactions(timeout)
        partitions = [TopicPartition(cfg["input"], p) for p in range(cfg["partitions"])]
        # No offset given: librdkafka fetches the committed ones (require_stable, as it is
        # read_committed), i.e. after the predecessor's pending offsets were aborted.
        consumer.assign(partitions)
        # Every transaction sends the positions of all partitions, starting from the committed ones.
        positions = {
            tp.partition: tp.offset for tp in _committed(consumer, partitions, timeout) if tp.offset >= 0
        }
        emit(ev="ready", positions={str(p): o for p, o in positions.items()})
        txn = 0
        while True:
            messages = [m for m in consumer.consume(cfg.get("batch", 20), timeout=0.3) if not m.error()]
            if not messages:
                continue
            txn += 1
            producer.begin_transaction()
            emit(ev="begun", txn=txn, records={str(p): n for p, n in _count(messages).items()})
            for msg in messages:
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                producer.produce(cfg["output"], value=msg.value(), key=msg.key(), partition=partition)
                positions[partition] = offset + 1
            offsets = [TopicPartition(cfg["input"], p, o) for p, o in sorted(positions.items())]
            group = consumer.consumer_group_metadata()
            bounded(timeout, producer.send_offsets_to_transaction, offsets, group, timeout)
            if cfg.get("hold_at") == txn:
                producer.flush(timeout)
                emit(ev="holding", txn=txn)
                _wait_for_go()
            while True:
                try:
                    bounded(timeout, producer.commit_transaction, timeout)
                    break
                except KafkaException as exc:
                    if _kind(exc) != "retriable":
                        raise
                    emit(ev="commit_retry", txn=txn, error=str(exc))
            emit(ev="committed", txn=txn, positions={str(p): o for p, o in positions.items()})
    except KafkaException as exc:
        emit(ev="failed", error=str(exc), kind=_kind(exc))
        return 3


def main() -> None:
    cfg = json.loads(sys.argv[1])
    sys.exit(run(cfg))


if __name__ == "__main__":
    main()
