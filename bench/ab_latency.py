"""Before / after on the cluster latency figure: two git refs, runs interleaved (A B A B ...).

    PYTHONPATH=. .venv/bin/python bench/ab_latency.py REF_A REF_B [--rounds 2] [--seconds 15]
        [--repeats 2] [--linger 0] [--kind latency]

On the shared 2-core machines one run of the 3-broker latency workload varies by ±1 ms at p99
from run to run and more from hour to hour, as much as most single changes move it. So each ref
is checked out in a worktree of its own (the compiled record scanner copied in), and the refs
take turns: each round starts, for A and then for B, ZooKeeper and three brokers of that ref
(RF 3, ``min.insync.replicas=2``, the rack-aware selector, as ``bench_cluster.py``) and runs
``bench/workloads.py``'s workload ``--repeats`` times at 5,000 msg/s. Printed per run: p50 /
p99 / p99.9, the brokers' CPU per message and how busy the machine was; then the median p99 of
each ref. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(repo: Path, seconds: float, repeats: int, linger: str, kind: str) -> None:
    """One cluster of the ref checked out at ``repo``; one JSON line per workload run."""
    sys.path.insert(0, str(repo))
    sys.path.insert(0, str(repo / "bench"))
    from bench_cluster import busy_since, create_topic, machine_jiffies, prepare_offsets_topic, wait_full_isr
    from run import cpu_seconds, workload

    from compat_tests.cluster import BrokerCluster
    from compat_tests.zookeeper import ZooKeeperServer

    with tempfile.TemporaryDirectory(prefix="ab-latency-") as tmp:
        root = Path(tmp)
        zookeeper = ZooKeeperServer(root / "zookeeper").start()
        cluster = BrokerCluster(
            zookeeper.connect_string,
            root / "cluster",
            3,
            overrides={
                "min.insync.replicas": "2",
                "default.replication.factor": "3",
                "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector",
            },
            session_timeout_ms=6000,
        )
        for broker_id, rack in zip(cluster.ids, "abc", strict=False):
            cluster.brokers[broker_id].overrides["broker.rack"] = rack
        try:
            cluster.start()
            create_topic(cluster.bootstrap, "warm-up", 3)
            prepare_offsets_topic(cluster, "warm-up")
            create_topic(cluster.bootstrap, "latency", 3, {"min.insync.replicas": "2"})
            wait_full_isr(cluster, "latency")
            pids = [b.proc.pid for b in cluster.brokers.values() if b.proc is not None]
            for _ in range(repeats):
                cpu, busy = sum(cpu_seconds(p) for p in pids), machine_jiffies()
                result = workload(kind, cluster.bootstrap, "latency", 5000, seconds, linger)
                result["cpu_us"] = (sum(cpu_seconds(p) for p in pids) - cpu) / max(1, result["sent"]) * 1e6
                result["busy"] = busy_since(busy)
                print(json.dumps(result), flush=True)
        finally:
            cluster.close()
            zookeeper.kill()


def worktree(ref: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "-f", "-q", "--detach", str(where), ref], check=True
    )
    for built in (REPO / "protocol" / "records").glob("*.so"):
        shutil.copy2(built, where / "protocol" / "records" / built.name)
    return where


def main(args: argparse.Namespace) -> None:
    p99s: dict[str, list[float]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="ab-refs-") as tmp:
        trees = {"A": worktree(args.ref_a, Path(tmp) / "a"), "B": worktree(args.ref_b, Path(tmp) / "b")}
        try:
            for _ in range(args.rounds):
                for side in ("A", "B"):
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            str(trees[side]),
                            "--seconds",
                            str(args.seconds),
                            "--repeats",
                            str(args.repeats),
                            "--linger",
                            args.linger,
                            "--kind",
                            args.kind,
                        ],
                        capture_output=True,
                        text=True,
                        timeout=600,
                        cwd=trees[side],
                    )
                    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                    if out.returncode != 0 or not lines:
                        raise SystemExit(f"{side} failed: {out.stderr[-2000:]}")
                    for line in lines:
                        r = json.loads(line)
                        p99 = r["p99_ms"]
                        p99s[side].append(p99)
                        print(
                            f"{side} p50 {r['p50_ms']:.2f} p99 {p99:.2f} ms "
                            f"(cpu {r['cpu_us']:.0f} us/msg, machine {r['busy']:.0f}% busy)",
                            flush=True,
                        )
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False
                )
    for side, ref in (("A", args.ref_a), ("B", args.ref_b)):
        print(
            f"{side} = {ref}: median p99 {statistics.median(p99s[side]):.2f} ms over {len(p99s[side])} runs"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref_a", nargs="?")
    parser.add_argument("ref_b", nargs="?")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--linger", default="0")
    parser.add_argument(
        "--kind", default="latency", help="bench/workloads.py workload: latency or replication-lag"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.child is not None:
        child(parsed.child, parsed.seconds, parsed.repeats, parsed.linger, parsed.kind)
    elif parsed.ref_a is None or parsed.ref_b is None:
        parser.error("two refs are needed")
    else:
        main(parsed)
