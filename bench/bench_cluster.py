"""Replication at RF 3 (issue 13's "Performance"): a three-broker Brook cluster on a real ZooKeeper
next to one Brook broker, in one run. Prints figures and their targets; asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_cluster.py [--messages 1000000] [--rounds 1]

Needs Debian's zookeeper package and java (as the cluster tests do) and confluent-kafka.

- **Produce**: the produce workload of ``bench/run.py`` (librdkafka, 100 B, ``linger.ms=5``,
  ``batch.size=1000000``, default partitioner, 6 partitions): acks=1 to the single broker
  (RF 1) and acks=all to the cluster (RF 3, ``min.insync.replicas=2``), rounds interleaved.
  Printed: both rates, their ratio (target >= 0.6), the brokers' CPU per message.
- **Consume** from earliest, from the leaders (``bench/run.py``'s consume workload), then the
  same with ``client.rack=b``: the brokers are in racks a, b and c with
  ``replica.selector.class=RackAwareReplicaSelector`` (KIP-392), so that consumer reads every
  partition from broker 2, as a follower where broker 2 does not lead.
- ``--fetch-session-slots 0`` declines fetch sessions (KIP-227) on the cluster, for a before /
  after comparison of leader-side sessions (Kafka's default, 1000, otherwise).
- **End-to-end latency** at 5,000 msg/s on the cluster (``bench/run.py``'s latency workload:
  librdkafka's default acks=all and ``fetch.wait.max.ms``): p50 / p99 (target p99 <= 10 ms), once
  with ``linger.ms=0`` and once with librdkafka's default linger (5 ms, what a stock client runs),
  with the brokers' CPU per message; and the linger.ms=0 workload on the single broker in the same
  run: the floor the machine allows.
- **Replication lag**, steady state, at 5,000 msg/s: records produced with acks=1 (acknowledged
  after the leader's own append), read by a consumer on the leader, which only sees records below
  the high watermark: below the HW means every ISR member has fetched the record *and* the leader
  has learnt it from their next fetch. Lag = the consumer's receipt minus the producer's
  acknowledgement, so it is the replication lag plus one consumer fetch turn (the consumer's long
  poll is woken when the HW moves): an upper bound, measured from outside with stock clients only.
  Once with ``linger.ms=0`` and once with librdkafka's default linger, as the latency figure. The
  acknowledgements are served by a thread of their own (timed when they arrive); the sender
  sleeps between records. Target p99 <= 10 ms.
- Each latency and lag figure also shows how busy the whole machine was: the three brokers,
  ZooKeeper and the client share its cores.
- **Unavailability** of one partition (led by a broker that is not the controller) while a
  producer (acks=all, ``linger.ms=0``, librdkafka's default retries and backoff) sends one record
  every 2 ms: the longest time without an acknowledgement, from the fault until the old leader
  has exited and the new one acknowledges (a SIGTERMed leader acknowledges on during its
  controlled shutdown, so the gap can come after the fault).
  Faults: kill -9 of the leader (bounded below by ``zookeeper.session.timeout.ms``, here
  ``--session-timeout-ms``, as in Kafka: the controller learns of the death from ZooKeeper), and,
  after the killed broker is back in the ISR, SIGTERM of the partition's leader (a controlled
  shutdown: the controller moves the leaderships first; target <= 1 s).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import cpu_seconds, workload  # noqa: E402

from compat_tests.cluster import BrokerCluster  # noqa: E402
from compat_tests.harness import BrokerProcess, free_port  # noqa: E402
from compat_tests.zookeeper import ZooKeeperServer  # noqa: E402

PARTITIONS = 6
TIMEOUT = 60.0
SEND_INTERVAL = 0.002
#: What ``--only`` may name ("consume" reads what "produce" wrote, so it runs the produce rounds too).
FIGURES = frozenset({"produce", "consume", "latency", "lag", "failover"})


def create_topic(bootstrap: str, topic: str, replication: int, configs: dict[str, str] | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, PARTITIONS, replication, config=configs or {})
    for future in admin.create_topics([new], operation_timeout=TIMEOUT, request_timeout=TIMEOUT).values():
        future.result(TIMEOUT)


def wait_full_isr(cluster: BrokerCluster, topic: str) -> None:
    """Every partition of ``topic`` has a leader and all three replicas in its ISR, as the
    brokers' Metadata says (ZooKeeper alone does not tell that the clients see it)."""

    def whole(view: Any) -> bool:
        parts = view.topics.get(topic, {})
        full = (leader >= 0 and len(isr) == 3 for leader, _, isr in parts.values())
        return len(parts) == PARTITIONS and all(full)

    cluster.wait_view(whole, TIMEOUT, f"{topic}: a leader and a full ISR everywhere")


def prepare_offsets_topic(cluster: BrokerCluster, topic: str) -> None:
    """Have ``__consumer_offsets`` created and fully replicated before anything is measured: the
    first consumer with a ``group.id`` (librdkafka looks its coordinator up even when assigning
    partitions itself) creates it, 50 partitions x 3 replicas, which would load the brokers in
    the middle of a measurement."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "bench-warm-up"})
    try:
        consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT)
    finally:
        consumer.close()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = admin.list_topics(timeout=10).topics.get("__consumer_offsets")
        parts = found.partitions.values() if found is not None else []
        if parts and all(p.leader >= 0 and len(p.isrs) == len(p.replicas) for p in parts):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("__consumer_offsets not created and fully replicated")
        time.sleep(0.2)  # the brokers' Metadata: polled, bounded


def non_controller_partition(cluster: BrokerCluster, topic: str) -> tuple[int, int]:
    """(partition, leader) of a partition whose leader is not the controller."""
    controller = cluster.controller_id()
    for p in range(PARTITIONS):
        leader = cluster.leader_of(topic, p)
        if leader is not None and leader >= 0 and leader != controller:
            return p, leader
    raise RuntimeError(f"every partition of {topic} is led by the controller {controller}")


def request_counts(metrics_ports: list[int]) -> dict[str, int]:
    """Requests answered so far per api (Fetch split into FetchFollower / FetchConsumer), summed
    over the brokers, from their ``/metrics`` endpoints (``brook.metrics.listener``)."""
    import urllib.request

    counts: dict[str, int] = {}
    for port in metrics_ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            if line.startswith("kafka_network_requestmetrics_requests_total{"):
                labels, value = line.rsplit(" ", 1)
                name = labels.split('request="', 1)[1].split('"', 1)[0]
                counts[name] = counts.get(name, 0) + int(float(value))
    return counts


def requests_per_message(before: dict[str, int], after: dict[str, int], messages: int) -> dict[str, float]:
    if not after:
        return {}  # --no-metrics: nothing counted
    names = ("Produce", "FetchFollower", "FetchConsumer")
    return {name: (after.get(name, 0) - before.get(name, 0)) / max(1, messages) for name in names}


def paced(
    args: argparse.Namespace,
    cluster: BrokerCluster,
    metrics_ports: list[int],
    kind: str,
    topic: str,
    linger: str,
) -> dict[str, Any]:
    """The ``latency`` or ``replication-lag`` workload at ``--rate`` on the cluster, with the
    brokers' CPU, how busy the machine was, and the requests per message by kind."""
    before, counted, busy = cluster_cpu(cluster), request_counts(metrics_ports), machine_jiffies()
    result = workload(kind, cluster.bootstrap, topic, args.rate, args.seconds, linger)
    result["broker_cpu_s"] = cluster_cpu(cluster) - before
    result["machine_busy"] = busy_since(busy)
    result["requests"] = requests_per_message(counted, request_counts(metrics_ports), result["sent"])
    return result


def cluster_cpu(cluster: BrokerCluster) -> float:
    return sum(cpu_seconds(b.proc.pid) for b in cluster.brokers.values() if b.proc is not None and b.alive())


def produce_round(single: BrokerProcess, cluster: BrokerCluster, messages: int, index: int) -> dict[str, Any]:
    """One round: acks=1 to the single broker, then acks=all to the cluster, each on a new topic."""
    one, three = f"rf1-{index}", f"rf3-{index}"
    create_topic(single.bootstrap, one, 1)
    create_topic(cluster.bootstrap, three, 3, {"min.insync.replicas": "2"})
    wait_full_isr(cluster, three)
    assert single.proc is not None
    before = cpu_seconds(single.proc.pid)
    single_result = workload("produce", single.bootstrap, one, messages, "1")
    single_result["broker_cpu_s"] = cpu_seconds(single.proc.pid) - before
    before = cluster_cpu(cluster)
    cluster_result = workload("produce", cluster.bootstrap, three, messages, "all")
    cluster_result["broker_cpu_s"] = cluster_cpu(cluster) - before
    return {"single": single_result, "cluster": cluster_result, "topics": (one, three)}


class SteadyWriter:
    """One record every ``SEND_INTERVAL`` to one partition, acks=all; every acknowledgement timed."""

    def __init__(self, bootstrap: str, topic: str, partition: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "message.timeout.ms": 60_000}
        )
        self.topic = topic
        self.partition = partition
        self.acks: list[tuple[float, float]] = []  # (sent, acknowledged), perf_counter seconds
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_send = time.perf_counter()
        while not self.stop.is_set():
            now = time.perf_counter()
            if now >= next_send:
                sent = now

                def done(err: Any, _msg: Any, sent: float = sent) -> None:
                    if err is None:
                        self.acks.append((sent, time.perf_counter()))
                    else:
                        self.errors.append(str(err))

                self.producer.produce(self.topic, b"z" * 100, partition=self.partition, on_delivery=done)
                next_send += SEND_INTERVAL
            self.producer.poll(max(0.0, min(SEND_INTERVAL, next_send - time.perf_counter())))
        self.producer.flush(TIMEOUT)

    def start(self) -> SteadyWriter:
        self.thread.start()
        return self

    def first_ack_sent_after(self, t0: float, timeout: float) -> float:
        """Seconds from ``t0`` to the first acknowledgement of a record sent after ``t0``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [acked for sent, acked in list(self.acks) if sent >= t0]
            if later:
                return min(later) - t0
            time.sleep(0.01)  # the acknowledgements arrive on another thread: polled, bounded
        raise TimeoutError(f"no acknowledgement within {timeout} s of the fault; errors: {self.errors[:3]}")

    def longest_silence(self, t0: float) -> float:
        """The longest time from ``t0`` on without an acknowledgement (gaps between consecutive
        acknowledgements, the first one measured from ``t0``)."""
        times = sorted(acked for _, acked in list(self.acks) if acked >= t0)
        points = [t0, *times]
        return max(b - a for a, b in itertools.pairwise(points)) if times else float("inf")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)


def unavailability(
    cluster: BrokerCluster, topic: str, fault: Callable[[int], None]
) -> tuple[float, int, int, list[str]]:
    """(seconds unavailable, partition, its old leader, delivery errors) for ``fault(leader)``.

    Unavailable = the longest time without any acknowledgement from the fault until the old
    leader's process has exited and a record sent after that has been acknowledged (by the new
    leader). A SIGTERMed leader goes on acknowledging during its controlled shutdown, so "the
    first acknowledgement after the fault" would not see the gap; the longest silence does."""
    partition, leader = non_controller_partition(cluster, topic)
    writer = SteadyWriter(cluster.bootstrap, topic, partition).start()
    old = cluster.brokers[leader].proc
    assert old is not None
    try:
        warm = time.perf_counter()
        writer.first_ack_sent_after(warm, TIMEOUT)  # the writer runs: its metadata and connections are up
        time.sleep(0.5)  # a steady state before the fault
        t0 = time.perf_counter()
        fault(leader)
        old.wait(TIMEOUT)
        writer.first_ack_sent_after(time.perf_counter(), TIMEOUT)
        time.sleep(0.2)  # acknowledgements of what was sent meanwhile
        seconds = writer.longest_silence(t0)
    finally:
        writer.close()
    return seconds, partition, leader, writer.errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        zookeeper = ZooKeeperServer(root / "zookeeper").start()
        single = BrokerProcess(root / "single" / "data", {"num.partitions": str(PARTITIONS)})
        cluster = BrokerCluster(
            zookeeper.connect_string,
            root / "cluster",
            3,
            overrides={
                "min.insync.replicas": "2",
                "default.replication.factor": "3",
                "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector",
                "max.incremental.fetch.session.cache.slots": str(args.fetch_session_slots),
            },
            session_timeout_ms=args.session_timeout_ms,
        )
        metrics_ports: list[int] = []
        for broker_id, rack in zip(cluster.ids, "abc", strict=False):
            cluster.brokers[broker_id].overrides["broker.rack"] = rack
            if args.no_metrics:
                continue
            # Request counts per api (printed with the latency and lag figures).
            metrics_ports.append(free_port())
            cluster.brokers[broker_id].overrides["brook.metrics.listener"] = (
                f"http://127.0.0.1:{metrics_ports[-1]}"
            )
        try:
            single.start()
            cluster.start()
            create_topic(cluster.bootstrap, "warm-up", 3)
            prepare_offsets_topic(cluster, "warm-up")
            only = set(args.only.split(","))
            unknown = only - FIGURES
            if unknown:
                raise SystemExit(f"--only: unknown figures {sorted(unknown)}; known: {sorted(FIGURES)}")
            results: dict[str, Any] = {}
            if "produce" in only or "consume" in only:
                rounds = [produce_round(single, cluster, args.messages, i) for i in range(args.rounds)]
                results["rounds"] = rounds
            if "consume" in only:
                last_rf1, last_rf3 = rounds[-1]["topics"]
                results["consumed"] = {
                    "single": workload("consume", single.bootstrap, last_rf1, args.messages),
                    "cluster": workload("consume", cluster.bootstrap, last_rf3, args.messages),
                    "rack": workload("consume", cluster.bootstrap, last_rf3, args.messages, "b"),
                }
            if "latency" in only:
                create_topic(cluster.bootstrap, "latency", 3, {"min.insync.replicas": "2"})
                wait_full_isr(cluster, "latency")
                # linger.ms=0 (one request per message or so) and librdkafka's default (5 ms).
                for linger in ("0", "default"):
                    results[f"latency_{linger}"] = paced(
                        args, cluster, metrics_ports, "latency", "latency", linger
                    )
                # The same workload on the single broker, in the same run: the machine's floor.
                create_topic(single.bootstrap, "latency", 1)
                assert single.proc is not None
                before = cpu_seconds(single.proc.pid)
                results["single_latency"] = workload(
                    "latency", single.bootstrap, "latency", args.rate, args.seconds, "0"
                )
                results["single_latency"]["broker_cpu_s"] = cpu_seconds(single.proc.pid) - before
            if "lag" in only:
                create_topic(cluster.bootstrap, "lag", 3, {"min.insync.replicas": "2"})
                wait_full_isr(cluster, "lag")
                for linger in ("0", "default"):
                    results[f"lag_{linger}"] = paced(
                        args, cluster, metrics_ports, "replication-lag", "lag", linger
                    )
            if "failover" in only:
                create_topic(cluster.bootstrap, "failover", 3, {"min.insync.replicas": "2"})
                wait_full_isr(cluster, "failover")
                killed = unavailability(cluster, "failover", lambda b: cluster.brokers[b].proc.kill())  # type: ignore[union-attr]
                cluster.restart(killed[2], hard=True)
                wait_full_isr(cluster, "failover")
                terminated = unavailability(
                    cluster,
                    "failover",
                    lambda b: cluster.brokers[b].proc.terminate(),  # type: ignore[union-attr]
                )
                exit_code = cluster.brokers[terminated[2]].proc.returncode  # type: ignore[union-attr]
                results["failover"] = (killed, terminated, exit_code)
        finally:
            cluster.close()
            single.kill()
            zookeeper.kill()

    print(
        f"three Brook brokers + ZooKeeper, RF 3, min.insync.replicas=2, {PARTITIONS} partitions, "
        f"fetch session slots {args.fetch_session_slots}"
    )
    if "rounds" in results:
        print_produce(args, results["rounds"])
    if "consumed" in results:
        print_consume(results["consumed"])
    if "latency_0" in results:
        print_latency(args, results["latency_0"], results["latency_default"], results["single_latency"])
    if "lag_0" in results:
        print_lag(args, results["lag_0"], results["lag_default"])
    if "failover" in results:
        print_failover(args, *results["failover"])


def print_produce(args: argparse.Namespace, rounds: list[dict[str, Any]]) -> None:
    def median(side: str, key: str) -> float:
        return float(statistics.median(r[side][key] for r in rounds))

    single_rate, cluster_rate = median("single", "rate"), median("cluster", "rate")
    ratio = cluster_rate / single_rate
    print(f"{args.messages:,} x 100 B, {args.rounds} round(s), medians")
    for index, r in enumerate(rounds):
        print(
            f"  round {index + 1}: single acks=1 {r['single']['rate']:,.0f} msg/s, "
            f"cluster acks=all {r['cluster']['rate']:,.0f} msg/s "
            f"(failed {r['single']['failed']} / {r['cluster']['failed']})"
        )
    mark = "✓" if ratio >= 0.6 else "✗"
    print(
        f"produce: cluster RF 3 acks=all {cluster_rate:,.0f} msg/s / single broker acks=1 "
        f"{single_rate:,.0f} msg/s = {ratio:.2f} (target >= 0.6 {mark})"
    )
    cpu_single = statistics.median(r["single"]["broker_cpu_s"] / args.messages * 1e6 for r in rounds)
    cpu_cluster = statistics.median(r["cluster"]["broker_cpu_s"] / args.messages * 1e6 for r in rounds)
    print(
        f"broker CPU per message: single {cpu_single:.2f} us, "
        f"cluster (three brokers together) {cpu_cluster:.2f} us"
    )


def print_consume(consumed: dict[str, dict[str, Any]]) -> None:
    print(
        f"consume from earliest, from the leaders: cluster {consumed['cluster']['rate']:,.0f} msg/s "
        f"({consumed['cluster']['msgs']:,} of {consumed['cluster']['expected']:,}), single broker "
        f"{consumed['single']['rate']:,.0f} msg/s"
    )
    rack = consumed["rack"]
    print(
        f"consume from earliest with client.rack=b (KIP-392: all from broker 2, leader or follower): "
        f"{rack['rate']:,.0f} msg/s ({rack['msgs']:,} of {rack['expected']:,})"
    )


def cpu_per_message(result: dict[str, Any]) -> str:
    """The brokers' CPU (from /proc) per message sent, over the workload's whole run, the
    requests the cluster answered per message by kind when they were counted, and how busy the
    whole machine was (brokers, ZooKeeper and the client share its cores)."""
    text = f"{result['broker_cpu_s'] / max(1, result['sent']) * 1e6:.0f} us"
    if result.get("requests"):
        text += " and requests " + ", ".join(f"{k} {v:.2f}" for k, v in result["requests"].items())
    text += " per message"
    if "machine_busy" in result:
        text += f"; machine {result['machine_busy']:.0f}% busy"
    return text


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def busy_since(start: tuple[int, int]) -> float:
    busy, total = machine_jiffies()
    return 100.0 * (busy - start[0]) / max(1, total - start[1])


def by_linger(
    linger0: dict[str, Any], linger_default: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(label, result, target mark) of a paced workload with linger.ms=0, then librdkafka's default."""
    for label, result in (("linger.ms=0", linger0), ("librdkafka's default linger.ms (5)", linger_default)):
        yield label, result, "✓" if result["p99_ms"] <= 10 else "✗"


def print_latency(
    args: argparse.Namespace, linger0: dict[str, Any], linger_default: dict[str, Any], single: dict[str, Any]
) -> None:
    for label, latency, mark in by_linger(linger0, linger_default):
        print(
            f"end-to-end latency at {args.rate:,} msg/s on the cluster (acks=all, {label}, default "
            f"fetch.wait.max.ms): p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms, "
            f"p99.9 {latency['p999_ms']:.1f} ms ({latency['msgs']:,} of {latency['sent']:,}; brokers' CPU "
            f"{cpu_per_message(latency)}) (target p99 <= 10 ms {mark})"
        )
    print(
        f"  the same on the single broker (no replication, linger.ms=0), same run: "
        f"p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms, p99.9 {single['p999_ms']:.1f} ms "
        f"(CPU {cpu_per_message(single)})"
    )


def print_lag(args: argparse.Namespace, linger0: dict[str, Any], linger_default: dict[str, Any]) -> None:
    for label, lag, mark in by_linger(linger0, linger_default):
        print(
            f"replication lag at {args.rate:,} msg/s ({label}; acks=1 acknowledgement -> below the HW, seen "
            f"by a consumer on the leader): p50 {lag['p50_ms']:.1f} ms, p99 {lag['p99_ms']:.1f} ms, "
            f"max {lag['max_ms']:.1f} ms ({lag['msgs']:,} of {lag['sent']:,}; brokers' CPU "
            f"{cpu_per_message(lag)}) (target p99 <= 10 ms {mark})"
        )


def print_failover(
    args: argparse.Namespace,
    killed: tuple[float, int, int, list[str]],
    terminated: tuple[float, int, int, list[str]],
    exit_code: int | None,
) -> None:
    print(
        f"unavailability after kill -9 of the leader of failover-{killed[1]} (broker {killed[2]}): "
        f"{killed[0]:.2f} s (zookeeper.session.timeout.ms={args.session_timeout_ms}; "
        f"{len(killed[3])} delivery errors)"
    )
    mark = "✓" if terminated[0] <= 1.0 else "✗"
    print(
        f"unavailability after SIGTERM (controlled shutdown) of the leader of failover-{terminated[1]} "
        f"(broker {terminated[2]}, exit {exit_code}): {terminated[0]:.2f} s "
        f"({len(terminated[3])} delivery errors) (target <= 1 s {mark})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--fetch-session-slots", type=int, default=1000)
    parser.add_argument(
        "--no-metrics",
        action="store_true",
        help="brokers without the Prometheus listener (no request counts): what the metrics cost",
    )
    parser.add_argument(
        "--only",
        default=",".join(sorted(FIGURES)),
        help="comma-separated figures to measure: " + ", ".join(sorted(FIGURES)) + " (default: all)",
    )
    main(parser.parse_args())
