"""The embedded broker as a test fixture: start, first round trip, stop, leaks; next to
librdkafka's mock cluster. Prints figures, asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_embedded.py [--runs 5] [--cycles 100] [--messages 10000]

1. **Cold**, in a fresh interpreter each run (what the first test of a session pays): from the
   ``embedded()`` call, Brook's imports included, to the first successful produce + consume round
   trip with confluent-kafka (topic created with Brook's admin client, one record produced with
   acks=1, read back by an assigned consumer); then the stop time (clients closed).
2. **Warm**, in one process (every later broker of a session, e.g. a per-test broker): the same.
3. **Child process**, the alternative design: ``python -m broker`` on port 0 (the bound port read
   from its log), the same round trip, then SIGTERM and wait.
4. **First consumer group**: subscribe() instead of assign(): FindCoordinator creates
   ``__consumer_offsets`` (1 partition in the embedded defaults), then JoinGroup / SyncGroup.
5. **Leaks**: ``--cycles`` start / create topic / produce (Brook's codec) / stop cycles in one
   process: threads, file descriptors and RSS before and after (after one warm-up cycle: what is
   loaded at first use stays loaded).
6. **librdkafka's mock cluster** (``test.mock.num.brokers=1``) in the same run: start (client
   creation to the first delivered record) and a workload (``--messages`` records of 100 bytes
   produced, then consumed) with confluent-kafka against the mock and against a warm embedded
   Brook broker.
7. **Embedded cluster** (``--cluster-runs``, 0 skips it; needs an installed ZooKeeper):
   ``broker.embedded_cluster(brokers=3)`` started on one ZooKeeper server (started once, outside
   the figures), a topic of replication factor 3 created, its leader killed and the new leaders
   awaited (``wait_for_leaders``), then the stop.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def round_trip(bootstrap: str, topic: str, *, group: bool = False, create: bool = True) -> float:
    """Create ``topic`` (Brook's admin client), produce one record, read it back; returns the
    perf_counter time at which the record was read (the clients' close comes after it)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    if create:
        from broker.admin_client import KafkaAdmin

        with KafkaAdmin(bootstrap) as admin:
            admin.create_topic(topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    producer.produce(topic, b"ping", partition=0)
    if producer.flush(TIMEOUT) != 0:
        raise RuntimeError("produce did not complete")
    settings = {"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "auto.offset.reset": "earliest"}
    consumer = Consumer(settings)
    try:
        if group:
            consumer.subscribe([topic])
        else:
            consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                return time.perf_counter()
        raise RuntimeError("consume timed out")
    finally:
        # librdkafka's close waits for the fetch in flight (fetch.wait.max.ms): not the broker's.
        consumer.close()
        del producer


# -- in-process ------------------------------------------------------------------------------------


def cold_child() -> None:
    """Run in a fresh interpreter: one embedded broker, measured from the first import of Brook."""
    started = time.perf_counter()
    import broker

    b = broker.embedded()
    b.start()
    serving = time.perf_counter()
    read = round_trip(b.bootstrap_servers, "cold")
    done = time.perf_counter()
    b.stop()
    stopped = time.perf_counter()
    print(
        json.dumps(
            {"start": serving - started, "round_trip": read - started, "stop": stopped - done},
        )
    )


def cold(runs: int, pycache: Path | None = None) -> dict[str, list[float]]:
    """``pycache``: with bytecode caching there (warmed by one unmeasured run), as a normal
    install has; None: the environment as it is (PYTHONDONTWRITEBYTECODE=1 compiles every
    module from source at every start)."""
    results: dict[str, list[float]] = {"start": [], "round_trip": [], "stop": []}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        subprocess.run([sys.executable, __file__, "--cold-child"], env=env, capture_output=True, timeout=120)
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--cold-child"], env=env, capture_output=True, timeout=120, check=True
        )
        figures = json.loads(out.stdout.decode().strip().splitlines()[-1])
        for key, value in figures.items():
            results[key].append(value)
    return results


def warm(runs: int, *, group: bool = False) -> dict[str, list[float]]:
    import broker

    with broker.embedded():  # imports and the process's first loop, outside the figures
        pass
    results: dict[str, list[float]] = {"start": [], "round_trip": [], "stop": []}
    for i in range(runs):
        t0 = time.perf_counter()
        b = broker.embedded().start()
        t1 = time.perf_counter()
        read = round_trip(b.bootstrap_servers, f"warm-{i}", group=group)
        t2 = time.perf_counter()
        b.stop()
        t3 = time.perf_counter()
        results["start"].append(t1 - t0)
        results["round_trip"].append(read - t0)
        results["stop"].append(t3 - t2)
    return results


# -- child process -----------------------------------------------------------------------------------


def child_process(runs: int, tmp: Path, pycache: Path | None = None) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"start": [], "round_trip": [], "stop": []}
    env = {**os.environ, "PYTHONPATH": str(REPO), "BROOK_LOG_LEVEL": "INFO"}
    if pycache is not None:  # warmed by cold() before
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    for _ in range(runs):
        data = Path(tempfile.mkdtemp(prefix="child-", dir=tmp))
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker",
                "--no-env",
                "--override",
                "listeners=PLAINTEXT://127.0.0.1:0",
                "--override",
                f"log.dirs={data}",
                "--override",
                "group.initial.rebalance.delay.ms=0",
                "--override",
                "offsets.topic.replication.factor=1",
            ],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert proc.stderr is not None
        port = None
        for raw in proc.stderr:
            match = re.search(rb"listening on PLAINTEXT://[\d.]+:(\d+)", raw)
            if match:
                port = int(match.group(1))
                break
        if port is None:
            raise RuntimeError("the child broker did not report its port")
        # Keep draining its log so that it never blocks on a full pipe.
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        t1 = time.perf_counter()
        read = round_trip(f"127.0.0.1:{port}", "child")
        t2 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)
        t3 = time.perf_counter()
        drain.join(TIMEOUT)
        results["start"].append(t1 - t0)
        results["round_trip"].append(read - t0)
        results["stop"].append(t3 - t2)
    return results


# -- leaks ---------------------------------------------------------------------------------------------


def leaks(cycles: int) -> dict[str, Any]:
    import broker
    from broker.admin_client import KafkaAdmin
    from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
    from protocol.records import Record, build_batch

    record = Record(offset_delta=0, timestamp_delta=0, key=None, value=b"x")
    batch = bytes(build_batch([record], base_timestamp=int(time.time() * 1000)))

    def cycle() -> None:
        with broker.embedded() as b, KafkaAdmin(b.bootstrap_servers) as admin:
            admin.create_topic("leak")
            request = ProduceRequest(
                acks=1,
                timeout_ms=5000,
                topic_data=[TopicProduceData("leak", [PartitionProduceData(0, batch)])],
            )
            response = admin._call(request, 8)
            assert response.responses[0].partition_responses[0].error_code == 0

    cycle()
    gc.collect()
    before = {"threads": threading.active_count(), "fds": fds(), "rss_mib": rss_mib()}
    t0 = time.perf_counter()
    for _ in range(cycles):
        cycle()
    elapsed = time.perf_counter() - t0
    gc.collect()
    after = {"threads": threading.active_count(), "fds": fds(), "rss_mib": rss_mib()}
    return {"before": before, "after": after, "per_cycle_ms": elapsed / cycles * 1000}


# -- librdkafka's mock cluster ---------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def mock_start() -> tuple[Any, str, float]:
    """A producer owning a mock cluster; its bootstrap address; seconds to the first delivery."""
    from confluent_kafka import Producer

    capture = _Capture()
    logger = logging.getLogger(f"bench.rdkafka.{time.monotonic_ns()}")
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)  # the address comes at NOTICE level
    logger.propagate = False
    t0 = time.perf_counter()
    owner = Producer(
        {"bootstrap.servers": "ignored:9092", "test.mock.num.brokers": 1, "logger": logger, "linger.ms": 0}
    )
    owner.produce("first", b"ping")
    owner.flush(TIMEOUT)
    elapsed = time.perf_counter() - t0
    for message in capture.messages:
        match = re.search(r"replaced with (\S+)", message)
        if match:
            return owner, match.group(1), elapsed
    raise RuntimeError("the mock cluster did not log its address")


def workload(bootstrap: str, topic: str, messages: int) -> tuple[float, float]:
    """Seconds to produce ``messages`` records of 100 bytes, and to consume them all."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    value = b"v" * 100
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "1"})
    t0 = time.perf_counter()
    for _ in range(messages):
        while True:
            try:
                producer.produce(topic, value, partition=0)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(TIMEOUT)
    produced = time.perf_counter() - t0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-load"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    t1 = time.perf_counter()
    got = 0
    deadline = time.monotonic() + TIMEOUT * 4
    while got < messages and time.monotonic() < deadline:
        batch = consumer.consume(1000, 0.1)
        got += sum(1 for m in batch if m.error() is None)
    consumed = time.perf_counter() - t1
    consumer.close()
    if got < messages:
        raise RuntimeError(f"consumed {got} of {messages}")
    return produced, consumed


def versus_mock(runs: int, messages: int) -> dict[str, Any]:
    import broker

    mock_starts, mock_rt = [], []
    for _ in range(runs):
        owner, bootstrap, started = mock_start()
        t0 = time.perf_counter()
        read = round_trip(bootstrap, "rt", create=False)
        mock_rt.append(started + read - t0)
        mock_starts.append(started)
        del owner
    owner, bootstrap, _ = mock_start()
    mock_load = workload(bootstrap, "load", messages)
    del owner
    with broker.embedded() as b:
        from broker.admin_client import KafkaAdmin

        with KafkaAdmin(b.bootstrap_servers) as admin:
            admin.create_topic("load")
        brook_load = workload(b.bootstrap_servers, "load", messages)
    return {
        "mock_start": mock_starts,
        "mock_round_trip": mock_rt,
        "mock_load": mock_load,
        "brook_load": brook_load,
    }


# -- embedded cluster ------------------------------------------------------------------------------------


def cluster(runs: int) -> dict[str, list[float]]:
    import broker
    from broker.testing_zookeeper import ZooKeeperServer

    results: dict[str, list[float]] = {"start": [], "create": [], "failover": [], "stop": []}
    with tempfile.TemporaryDirectory(prefix="brook-bench-zk-") as tmp:
        zookeeper = ZooKeeperServer(Path(tmp)).start()
        try:
            for _ in range(runs):
                t0 = time.perf_counter()
                c = broker.embedded_cluster(3, zookeeper.connect_string).start()
                t1 = time.perf_counter()
                c.create_topic("bench", partitions=3, replication_factor=3)
                t2 = time.perf_counter()
                c.brokers[c.leader_of("bench", 0)].kill()
                c.wait_for_leaders("bench")
                t3 = time.perf_counter()
                c.stop()
                t4 = time.perf_counter()
                for key, value in zip(results, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    results[key].append(value)
        finally:
            zookeeper.kill()
    return results


# -- report ----------------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"median {statistics.median(values) * 1000:7.1f} ms  (min {low:.1f}, max {high:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=100, help="0 skips the leak cycles")
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--cluster-runs", type=int, default=3)
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child()
        return

    import confluent_kafka

    print(
        f"python {sys.version.split()[0]}, confluent-kafka {confluent_kafka.version()[0]}, "
        f"librdkafka {confluent_kafka.libversion()[0]}, {os.cpu_count()} cpus, runs={args.runs}"
    )
    bytecode = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    with tempfile.TemporaryDirectory(prefix="brook-bench-") as tmp:
        rows = [
            (f"embedded, cold process (imports included, bytecode cache {bytecode})", cold(args.runs)),
            ("embedded, cold process (imports included, bytecode cache on)", cold(args.runs, Path(tmp))),
            ("embedded, warm process", warm(args.runs)),
            (
                f"child process (python -m broker), bytecode cache {bytecode}",
                child_process(args.runs, Path(tmp)),
            ),
            (
                "child process (python -m broker), bytecode cache on",
                child_process(args.runs, Path(tmp), Path(tmp)),
            ),
        ]
    for name, figures in rows:
        print(f"\n{name}")
        print(f"  embedded()/spawn -> serving       {ms(figures['start'])}")
        print(f"  embedded()/spawn -> round trip    {ms(figures['round_trip'])}")
        print(f"  stop                              {ms(figures['stop'])}")
    group = warm(args.runs, group=True)
    print("\nembedded, warm, first consumer group (subscribe: __consumer_offsets created, join, sync)")
    print(f"  embedded() -> round trip          {ms(group['round_trip'])}")
    print(f"  stop                              {ms(group['stop'])}")
    if args.cycles:
        leak = leaks(args.cycles)
        each = leak["per_cycle_ms"]
        print(f"\n{args.cycles} start/create/produce/stop cycles in one process ({each:.1f} ms each)")
        for key in ("threads", "fds", "rss_mib"):
            print(f"  {key:8} before {leak['before'][key]:8.1f}   after {leak['after'][key]:8.1f}")
    if args.cluster_runs:
        figures = cluster(args.cluster_runs)
        print("\nembedded cluster of 3 brokers on one ZooKeeper (topic of replication factor 3)")
        print(f"  embedded_cluster() -> formed      {ms(figures['start'])}")
        print(f"  create_topic (leaders everywhere) {ms(figures['create'])}")
        print(f"  leader killed -> new leaders      {ms(figures['failover'])}")
        print(f"  stop                              {ms(figures['stop'])}")
    mock = versus_mock(args.runs, args.messages)
    print("\nlibrdkafka mock cluster (test.mock.num.brokers=1), same confluent-kafka client")
    print(f"  client creation -> first delivery {ms(mock['mock_start'])}")
    print(f"  ... -> round trip (assign)        {ms(mock['mock_round_trip'])}")
    for name, (produced, consumed) in (("mock", mock["mock_load"]), ("brook", mock["brook_load"])):
        print(
            f"  workload {name:5}: {args.messages} x 100 B produced in {produced * 1000:7.1f} ms, "
            f"consumed in {consumed * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    main()
