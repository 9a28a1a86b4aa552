"""What the metrics cost the produce path: Brook from a base tree (before the metrics) against this
tree with ``brook.metrics.listener`` off and on (scraped every second), interleaved round by round.

    python bench/bench_metrics.py BASE_TREE [--rounds 5] [--messages 300000] [--seconds 5]

BASE_TREE is a checkout of the commit to compare with (e.g. ``git archive <commit> | tar -x -C
/tmp/base``). Workloads of bench/workloads.py: ``produce`` (100 B messages, acks=1, big batches)
and ``small`` (16 producers, one message per request: the per-request cost). Printed per variant:
the median and every round of the rate, and the broker's CPU per message or request (from /proc,
the least noisy figure on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import cpu_seconds, free_port, workload  # noqa: E402
from broker.healthcheck import check  # noqa: E402


class Variant:
    def __init__(self, name: str, tree: Path, metrics: bool) -> None:
        self.name, self.tree, self.metrics = name, tree, metrics


class Running:
    """One broker process of a variant, with a scraper thread when its metrics are on."""

    def __init__(self, variant: Variant, data: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "broker", "--no-env", "--override",
               f"listeners=PLAINTEXT://127.0.0.1:{self.port}", "--override", f"log.dirs={data}",
               "--override", "num.partitions=6"]  # fmt: skip
        self.metrics_port = free_port() if variant.metrics else 0
        if variant.metrics:
            cmd += ["--override", f"brook.metrics.listener=http://127.0.0.1:{self.metrics_port}"]
        self.proc = subprocess.Popen(
            cmd,
            cwd=variant.tree,
            env={**os.environ, "PYTHONPATH": str(variant.tree), "BROOK_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not check("127.0.0.1", self.port, 1.0):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{variant.name} did not start")
            time.sleep(0.1)
        self.scrapes = 0
        self._stop = threading.Event()
        self._scraper: threading.Thread | None = None
        if variant.metrics:
            self._scraper = threading.Thread(target=self._scrape, daemon=True)
            self._scraper.start()

    def _scrape(self) -> None:
        while not self._stop.wait(1.0):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
                r.read()
            self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        if self._scraper is not None:
            self._scraper.join(15)
        self.proc.terminate()
        self.proc.wait(30)


def run_round(variant: Variant, args: argparse.Namespace, r: int, base: Path) -> dict[str, float]:
    data = base / f"{variant.name}-{r}"
    broker = Running(variant, data)
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for topic in ("produce", "small"):
            for f in admin.create_topics([NewTopic(topic, 6, 1)], request_timeout=60).values():
                f.result(60)
        cpu = cpu_seconds(broker.proc.pid)
        produced: dict[str, Any] = workload("produce", broker.bootstrap, "produce", args.messages, "1")
        produce_cpu = cpu_seconds(broker.proc.pid) - cpu
        cpu = cpu_seconds(broker.proc.pid)
        small: dict[str, Any] = workload("small-requests", broker.bootstrap, "small", 16, args.seconds)
        small_cpu = cpu_seconds(broker.proc.pid) - cpu
        if variant.metrics:
            assert broker.scrapes > 0, "the scraper never got an answer"
        return {
            "produce_rate": produced["rate"],
            "produce_cpu_us_per_msg": produce_cpu / produced["msgs"] * 1e6,
            "small_rate": small["rate"],
            "small_cpu_us_per_req": small_cpu / max(small["requests"], 1) * 1e6,
        }
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base_tree", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    variants = [
        Variant("base", args.base_tree.resolve(), False),
        Variant("metrics-off", REPO, False),
        Variant("metrics-on", REPO, True),
    ]
    results: dict[str, list[dict[str, float]]] = {v.name: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="brook-bench-metrics-") as tmp:
        for r in range(args.rounds):
            # Interleaved, the order rotating each round: drift of the machine hits every variant.
            for variant in variants[r % 3 :] + variants[: r % 3]:
                results[variant.name].append(run_round(variant, args, r, Path(tmp)))
                print(f"round {r} {variant.name}: {results[variant.name][-1]}", flush=True)
    print()
    for key in ("produce_rate", "produce_cpu_us_per_msg", "small_rate", "small_cpu_us_per_req"):
        for name, rounds in results.items():
            values = [row[key] for row in rounds]
            print(
                f"{key:<24} {name:<12} median {statistics.median(values):>12,.2f}  "
                f"rounds {', '.join(f'{v:,.2f}' for v in values)}"
            )


if __name__ == "__main__":
    main()
