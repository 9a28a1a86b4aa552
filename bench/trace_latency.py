"""Where a record's end-to-end time goes on a three-broker cluster: a tracing harness.

    PYTHONPATH=. .venv/bin/python bench/trace_latency.py [--rate 5000] [--seconds 5] [--request-log]

Starts ZooKeeper and three Brook brokers (RF 3, ``min.insync.replicas=2``, 6 partitions), runs
``bench/workloads.py``'s latency workload (acks=all producer, consumer with librdkafka's defaults)
and prints its percentiles. With ``--request-log`` every broker's ``kafka.request.logger`` is set
to DEBUG first (BROKER_LOGGER, as ``kafka-configs --entity-type broker-loggers`` would) and the
brokers' request lines are summarised per kind: the leader's produce time (acks=all: the wait for
the high watermark), follower fetches (time in the leader's long poll, and the follower's turn
between an answer and its next fetch: its append and request building), consumer fetches. The
request log costs CPU, so its figures are for *where* the time goes, not for the totals.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_cluster import PARTITIONS, create_topic, prepare_offsets_topic, wait_full_isr  # noqa: E402
from run import cpu_seconds, workload  # noqa: E402

from compat_tests.cluster import BrokerCluster  # noqa: E402
from compat_tests.zookeeper import ZooKeeperServer  # noqa: E402

BROKER_LOGGER = 8  # ConfigResource.Type.BROKER_LOGGER
LINE = re.compile(r"^\[(\S+ \S+)\] DEBUG Completed request:(\{.*\}) \(kafka\.request\.logger\)$")


def runqueue_wait(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def enable_request_log(cluster: BrokerCluster) -> None:
    from broker.cli.client import KafkaClient
    from protocol.messages.incremental_alter_configs_request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )

    with KafkaClient(cluster.bootstrap) as client:
        for broker_id in cluster.ids:
            resource = AlterConfigsResource(
                BROKER_LOGGER, str(broker_id), [AlterableConfig("kafka.request.logger", 0, "DEBUG")]
            )
            answer = client.node(broker_id).call(IncrementalAlterConfigsRequest([resource], False))
            code = answer.responses[0].error_code
            if code:
                raise RuntimeError(f"broker {broker_id}: BROKER_LOGGER alter failed with {code}")


def parse(log_path: Path) -> list[tuple[float, dict[str, Any]]]:
    """(completion time in epoch seconds, request line) of every request the broker logged."""
    out = []
    for text in log_path.read_text(errors="replace").splitlines():
        m = LINE.match(text)
        if m:
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, json.loads(m.group(2))))
    return out


def pcts(values: list[float]) -> str:
    if not values:
        return "none"
    v = sorted(values)

    def at(p: float) -> float:
        return v[min(len(v) - 1, int(p * len(v)))]

    return (
        f"n={len(v)} p50 {at(0.5):.1f} p90 {at(0.9):.1f} p99 {at(0.99):.1f} max {v[-1]:.1f} "
        f"mean {statistics.fmean(v):.1f} ms"
    )


def summarise(broker_id: int, lines: list[tuple[float, dict[str, Any]]]) -> None:
    by_kind: dict[str, list[float]] = defaultdict(list)
    # The follower's turn: from a data-carrying answer to its next fetch's arrival (log times: ms).
    last_answer: dict[str, float] = {}
    turns: dict[str, list[float]] = defaultdict(list)
    for when, entry in lines:
        api = entry["requestHeader"]["requestApiKeyName"]
        total = entry["totalTimeMs"]
        if api == "FETCH":
            request = entry["request"]
            replica = request.get("replicaState", {}).get("replicaId", request.get("replicaId", -1))
            records = sum(
                p.get("recordsSizeInBytes", 0)
                for t in entry["response"]["responses"]
                for p in t["partitions"]
            )
            kind = f"fetch from follower {replica}" if replica >= 0 else "fetch from consumer"
            kind += " (with records)" if records else " (empty)"
            by_kind[kind].append(total)
            if replica >= 0:
                arrival = when - total / 1000
                previous = last_answer.get(str(replica))
                if previous is not None:
                    turns[str(replica)].append((arrival - previous) * 1000)
                last_answer[str(replica)] = when
        else:
            acks = entry["request"].get("acks") if api == "PRODUCE" else None
            by_kind[api if acks is None else f"PRODUCE acks={acks}"].append(total)
    print(f"broker {broker_id}: request time (arrival to answer handed to the socket)")
    for kind, values in sorted(by_kind.items()):
        print(f"  {kind}: {pcts(values)}")
    for replica, values in sorted(turns.items()):
        print(
            f"  follower {replica}'s turn (answer sent -> next fetch arrives, ms resolution): {pcts(values)}"
        )


def profile_brokers(cluster: BrokerCluster, directory: Path) -> None:
    """Run every broker under cProfile (CPU time), its profile written at its clean exit."""
    directory.mkdir(parents=True, exist_ok=True)
    for broker_id, broker in cluster.brokers.items():
        plain = broker.command

        def command(plain: Any = plain, out: Path = directory / f"broker-{broker_id}.prof") -> list[str]:
            python, _, _, *rest = plain()  # python -m broker ...
            return [python, str(REPO / "bench" / "profiled_broker.py"), str(out), *rest]

        broker.command = command  # type: ignore[method-assign]


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="trace-latency-") as tmp:
        root = Path(tmp)
        rf, min_isr = min(3, args.brokers), min(2, args.brokers)
        zookeeper = ZooKeeperServer(root / "zookeeper").start()
        cluster = BrokerCluster(
            zookeeper.connect_string,
            root / "cluster",
            args.brokers,
            overrides={"min.insync.replicas": str(min_isr), "default.replication.factor": str(rf)},
        )
        if args.profile:
            profile_brokers(cluster, Path(args.profile))
        try:
            cluster.start()
            create_topic(cluster.bootstrap, "latency", rf, {"min.insync.replicas": str(min_isr)})
            if rf == 3:
                wait_full_isr(cluster, "latency")
            # __consumer_offsets (50 x 3 replicas) is created by the first consumer's group
            # lookup: before the measurement, not in its middle.
            for attempt in range(5):
                try:
                    prepare_offsets_topic(cluster, "latency")
                    break
                except Exception as exc:  # NOT_COORDINATOR while the new topic's leaders load
                    print(f"__consumer_offsets not ready ({exc}); again", file=sys.stderr)
                    if attempt == 4:
                        raise
            if args.request_log:
                enable_request_log(cluster)
            pids = {b: cluster.brokers[b].proc.pid for b in cluster.ids}  # type: ignore[union-attr]
            before = {b: cpu_seconds(pid) for b, pid in pids.items()}
            waited_before = {b: runqueue_wait(pid) for b, pid in pids.items()}
            result = workload("latency", cluster.bootstrap, "latency", args.rate, args.seconds)
            cpu = {b: cpu_seconds(pid) - before[b] for b, pid in pids.items()}
            waited = {b: runqueue_wait(pid) - waited_before[b] for b, pid in pids.items()}
            # The workload also connects, waits 1 s at the start and drains: an upper bound per second.
            print(
                "broker CPU during the workload: "
                + ", ".join(f"broker {b} {s:.2f} s" for b, s in cpu.items())
                + f" (sending lasts {args.seconds} s)"
            )
            # Runnable but not running: the machine's other load (the event loop's thread only).
            print(
                "event loops waiting for a CPU while runnable: "
                + ", ".join(f"broker {b} {s:.2f} s" for b, s in waited.items())
            )
            print(
                f"end-to-end at {args.rate} msg/s, {PARTITIONS} partitions: p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, p99.9 {result['p999_ms']:.1f} ms, "
                f"mean {result['mean_ms']:.1f} ms "
                f"({result['msgs']} of {result['sent']})"
            )
            if args.request_log:
                for broker_id, broker in cluster.brokers.items():
                    summarise(broker_id, parse(broker.log_path))
            if args.keep_logs:
                for broker_id, broker in cluster.brokers.items():
                    target = Path(args.keep_logs) / f"broker-{broker_id}.log"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(broker.log_path.read_bytes())
            if args.profile:
                for broker_id in cluster.ids:  # a clean exit writes the profile
                    cluster.stop(broker_id)
        finally:
            cluster.close()
            zookeeper.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--brokers", type=int, default=3, help="cluster size (RF min(3, size))")
    parser.add_argument("--request-log", action="store_true")
    parser.add_argument(
        "--profile", default="", help="run the brokers under cProfile, profiles in this directory"
    )
    parser.add_argument("--keep-logs", default="", help="copy the brokers' logs into this directory")
    main(parser.parse_args())
