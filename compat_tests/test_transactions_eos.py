"""Exactly-once consume-transform-produce across crashes (confluent-kafka, issue 14).

A worker process (compat_tests/txn_worker.py) copies an input topic to an output topic, one
transaction per batch of 20 records with its input positions sent by ``send_offsets_to_transaction``.
It is killed with SIGKILL while it holds a transaction open (records flushed to the output, offsets
pending in ``__consumer_offsets``), several times; each successor with the same transactional id
fences its predecessor and the broker aborts the open transaction. At the end the output, read
with read_committed, must hold every input record exactly once, while read_uncommitted shows the
aborted copies (proof the kills left something to abort).

In cluster mode (3 brokers, ZooKeeper, ``__transaction_state`` and ``__consumer_offsets`` at RF 3),
the broker coordinating the transactional id (FindCoordinator key type 1), chosen to coordinate the
group as well, is killed while the worker holds a transaction open; the worker then commits
through the new coordinator (or fails and is replaced), and the killed broker is restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compat_tests import txn_worker
from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.cluster import BrokerCluster, cluster_of
from compat_tests.cluster_clients import create_topic as create_replicated_topic
from compat_tests.eos import REPO, Worker, check_exactly_once, produce_input, read_all, run_until_consumed
from compat_tests.harness import BrokerProcess
from compat_tests.txn_raw import (
    GROUP_KEY,
    TRANSACTION_KEY,
    broker_address,
    find_coordinator,
    offset_fetch_stable,
)
from compat_tests.zookeeper import ZooKeeperServer

PARTITIONS = 3
PER_PARTITION = 100
WORKER_KILLS = 3

# -- the checker can fail ---------------------------------------------------------------------

values = st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=40)


@given(values)
def test_checker_passes_an_exact_copy_in_any_order(inputs: list[bytes]) -> None:
    report = check_exactly_once(inputs, list(reversed(inputs)))
    assert report.ok, report


@given(values, st.data())
def test_checker_catches_a_duplicated_record(inputs: list[bytes], data: st.DataObject) -> None:
    twice = data.draw(st.sampled_from(inputs))
    report = check_exactly_once(inputs, [*inputs, twice])
    assert not report.ok
    assert report.duplicated == {twice: 1} and not report.missing and not report.foreign, report


@given(values, st.data())
def test_checker_catches_a_missing_record(inputs: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(inputs) - 1))
    outputs = inputs[:index] + inputs[index + 1 :]
    report = check_exactly_once(inputs, outputs)
    assert not report.ok
    assert report.missing == {inputs[index]: 1} and not report.duplicated, report


def test_checker_catches_a_foreign_record() -> None:
    report = check_exactly_once([b"a", b"b"], [b"a", b"b", b"c"])
    assert not report.ok and report.foreign == {b"c": 1}


# -- the worker's guard against a client call that hangs ---------------------------------------


def test_a_bounded_call_that_returns_in_time_gives_its_result() -> None:
    assert txn_worker.bounded(5.0, max, 3, 4) == 4


def test_a_client_call_hanging_past_its_timeout_ends_the_worker() -> None:
    """librdkafka#5511: send_offsets_to_transaction() can block past its own timeout; the worker
    must then report and exit, for the test to start a successor."""
    code = (
        "import time; from compat_tests import txn_worker as w; "
        "w.HANG_MARGIN_S = 0.1; w.bounded(0.2, time.sleep, 60)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, cwd=REPO, env=env)
    assert proc.returncode == txn_worker.HUNG_EXIT, proc.stderr
    assert json.loads(proc.stdout) == {
        "ev": "failed",
        "error": "sleep did not return within 0.2 s",
        "kind": "hung",
    }


# -- one broker -------------------------------------------------------------------------------


@pytest.fixture
def eos_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data").start()
    try:
        yield proc
    finally:
        alive = proc.alive()
        proc.kill()
        assert alive, f"the broker died:\n{proc.log_tail()}"


def _config(bootstrap: str, topic_in: str, topic_out: str, **extra: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "bootstrap": bootstrap,
        "input": topic_in,
        "output": topic_out,
        "partitions": PARTITIONS,
        "group": f"eos-group-{suffix}",
        "transactional_id": f"eos-txn-{suffix}",
        "batch": 20,
        **extra,
    }


def _kill_while_holding(cfg: dict[str, Any], hold_at: int) -> None:
    worker = Worker(**cfg, hold_at=hold_at)
    try:
        event = worker.wait_event("holding", 45)
        assert event is not None, f"the worker ended before holding a transaction\n{worker.describe()}"
    finally:
        worker.kill()


def _verify(bootstrap: str, cfg: dict[str, Any], inputs: list[bytes]) -> None:
    committed = read_all(bootstrap, cfg["output"], PARTITIONS, "read_committed")
    report = check_exactly_once(inputs, committed)
    assert report.ok, report
    everything = read_all(bootstrap, cfg["output"], PARTITIONS, "read_uncommitted")
    assert len(everything) > len(committed), "no aborted copy in the output: the kills aborted nothing"
    assert set(everything) == set(inputs)
    # The group's offsets are the transactions' offsets, stable once every transaction ended.
    error, coordinator = find_coordinator(bootstrap, cfg["group"], GROUP_KEY)
    assert error == 0, error
    address = broker_address(bootstrap, coordinator)
    offsets = offset_fetch_stable(address, cfg["group"], cfg["input"], list(range(PARTITIONS)))
    assert offsets == {p: (0, PER_PARTITION) for p in range(PARTITIONS)}, offsets


def test_exactly_once_across_worker_kills(eos_broker: BrokerProcess) -> None:
    bootstrap = eos_broker.bootstrap
    topic_in = create_topic(bootstrap, unique_topic("eos-in"), PARTITIONS)
    topic_out = create_topic(bootstrap, unique_topic("eos-out"), PARTITIONS)
    inputs = produce_input(bootstrap, topic_in, PARTITIONS, PER_PARTITION)
    cfg = _config(bootstrap, topic_in, topic_out)

    for _ in range(WORKER_KILLS):
        _kill_while_holding(cfg, hold_at=2)
    worker, _restarts = run_until_consumed(cfg, dict.fromkeys(range(PARTITIONS), PER_PARTITION), 60)
    worker.stop()

    _verify(bootstrap, cfg, inputs)


def test_exactly_once_across_a_broker_crash(eos_broker: BrokerProcess) -> None:
    """kill -9 of the broker (and the worker) while a transaction is open: the restarted broker
    reloads the transaction from ``__transaction_state`` and the producer state (the open
    transaction, the LSO) from its log, and the successor's InitProducerId aborts it."""
    bootstrap = eos_broker.bootstrap
    topic_in = create_topic(bootstrap, unique_topic("eos-in"), PARTITIONS)
    topic_out = create_topic(bootstrap, unique_topic("eos-out"), PARTITIONS)
    inputs = produce_input(bootstrap, topic_in, PARTITIONS, PER_PARTITION)
    cfg = _config(bootstrap, topic_in, topic_out)

    worker = Worker(**cfg, hold_at=3)
    try:
        assert worker.wait_event("holding", 45) is not None, worker.describe()
        eos_broker.kill()
    finally:
        worker.kill()
    eos_broker.start()
    worker, _restarts = run_until_consumed(cfg, dict.fromkeys(range(PARTITIONS), PER_PARTITION), 60)
    worker.stop()

    _verify(bootstrap, cfg, inputs)


# -- a cluster, with the transaction coordinator killed ------------------------------------------


@pytest.fixture
def eos_cluster(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[BrokerCluster]:
    yield from cluster_of(
        zookeeper.connect_string,
        tmp_path / "cluster",
        overrides={
            "default.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "offsets.topic.replication.factor": "3",
        },
    )


def _kill_the_coordinator_mid_transaction(cluster: BrokerCluster, cfg: dict[str, Any]) -> None:
    """A worker holds a transaction open; its coordinator's broker is killed; the worker commits
    (or fails and is replaced); the broker is restarted; the workers finish the input."""
    bootstrap = cluster.bootstrap
    workers = [Worker(**cfg, hold_at=2)]
    try:
        assert workers[-1].wait_event("holding", 45) is not None, workers[-1].describe()
        error, coordinator = find_coordinator(bootstrap, cfg["transactional_id"], TRANSACTION_KEY)
        assert error == 0 and coordinator in cluster.ids, (error, coordinator)
        cluster.kill(coordinator)
        workers[-1].go()

        # The held transaction commits through the new coordinator; should the client give up on
        # it instead (an abortable error), its successor must still get going on the survivors.
        if workers[-1].wait_event("committed", 60, min_txn=2) is None:
            print(f"the held transaction failed: {workers[-1].describe()}")
            workers.append(Worker(**cfg))
            assert workers[-1].wait_event("committed", 60) is not None, workers[-1].describe()
        survivors = ",".join(cluster.bootstrap_of(i) for i in cluster.ids if i != coordinator)
        error, moved_to = find_coordinator(survivors, cfg["transactional_id"], TRANSACTION_KEY)
        assert error == 0 and moved_to != coordinator, (error, moved_to)

        cluster.restart(coordinator)
        # Time for a successor, should the worker's client hang (see txn_worker.bounded).
        last, _restarts = run_until_consumed(
            cfg, dict.fromkeys(range(PARTITIONS), PER_PARTITION), 120, worker=workers[-1]
        )
        workers.append(last)
    finally:
        for worker in workers:
            worker.stop()


def _coordinator(bootstrap: str, key: str, key_type: int, timeout: float = 60.0) -> int:
    """The coordinator of ``key``, asked until there is one (the first question creates the
    internal topic)."""
    deadline = time.monotonic() + timeout
    while True:
        error, node = find_coordinator(bootstrap, key, key_type)
        if error == 0:
            return node
        assert time.monotonic() < deadline, f"no coordinator for {key} in {timeout} s: error {error}"
        time.sleep(0.2)  # the internal topic is being created: ask again, as a client would


def _config_with_one_coordinator(
    bootstrap: str, topic_in: str, topic_out: str, **extra: Any
) -> dict[str, Any]:
    """A config whose group and transactional id have the same coordinator, so that killing it
    moves both (the harder case, and the one the flaky failure needed)."""
    for _ in range(200):
        cfg = _config(bootstrap, topic_in, topic_out, **extra)
        if _coordinator(bootstrap, cfg["group"], GROUP_KEY) == _coordinator(
            bootstrap, cfg["transactional_id"], TRANSACTION_KEY
        ):
            return cfg
    raise AssertionError("no group and transactional id with one coordinator in 200 tries")


def test_exactly_once_across_coordinator_kill_in_a_cluster(eos_cluster: BrokerCluster) -> None:
    cluster = eos_cluster
    bootstrap = cluster.bootstrap
    topic_in = create_replicated_topic(bootstrap, "eos-in", PARTITIONS)
    topic_out = create_replicated_topic(bootstrap, "eos-out", PARTITIONS)
    inputs = produce_input(bootstrap, topic_in, PARTITIONS, PER_PARTITION)
    # A long transaction timeout: the held transaction must outlive the fail-over, not time out.
    cfg = _config_with_one_coordinator(bootstrap, topic_in, topic_out, transaction_timeout_ms=60000)

    _kill_while_holding(cfg, hold_at=2)

    state = cluster.topic_znode("__transaction_state")
    assert state is not None, "no __transaction_state topic after a transactional producer ran"
    assert {len(r) for r in state["partitions"].values()} == {3}, state

    try:
        _kill_the_coordinator_mid_transaction(cluster, cfg)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs(40)}") from None
    _verify(bootstrap, cfg, inputs)
