"""Produce throughput with the ACL authorizer on and off (two Brook processes, same workloads).

    python bench/bench_acls.py [--rounds 3] [--messages 1000000] [--acls 1000] [--seconds 5]

``off``: no ``authorizer.class.name``. ``on``: the AclAuthorizer with ``--acls`` literal and
prefixed ACLs on other topics plus the one that lets the producer (ANONYMOUS on PLAINTEXT, not a
super user, so every check runs) write its topic through a PREFIXED pattern. Workloads from
bench/workloads.py, interleaved round by round: produce 100 B messages (acks=1, large batches:
one check per partition per request), and small requests (16 producers, linger.ms=0: the most
requests, so the most checks, per message). Printed: medians of msgs/s (requests/s) and the
broker's CPU microseconds per message (from /proc, the least noisy figure on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import cpu_seconds, free_port, workload  # noqa: E402
from broker.healthcheck import check  # noqa: E402

AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"


class Broker:
    def __init__(self, data: Path, authorizer: bool) -> None:
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        overrides = [f"listeners=PLAINTEXT://127.0.0.1:{port}", f"log.dirs={data}", "num.partitions=6"]
        if authorizer:
            # The admin writes ACLs as a super user during set-up; see _grant.
            overrides += [f"authorizer.class.name={AUTHORIZER}", "super.users=User:ANONYMOUS"]
        self.log = open(data.parent / f"brook-acls-{authorizer}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "broker"]
        for override in overrides:
            cmd += ["--override", override]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BROOK_LOG_LEVEL": "WARNING"},
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while not check("127.0.0.1", port, 1.0):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Brook did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def _setup(broker: Broker, topics: list[str], acls: int, authorizer: bool) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(t, 6, 1) for t in topics], request_timeout=120).values():
        future.result(120)
    if not authorizer:
        return
    bindings = [
        AclBinding(
            ResourceType.TOPIC,
            f"other-{i}" + ("-" if i % 2 else ""),
            ResourcePatternType.PREFIXED if i % 2 else ResourcePatternType.LITERAL,
            f"User:user-{i}",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        for i in range(acls)
    ]
    bindings.append(
        AclBinding(
            ResourceType.TOPIC,
            "bench-",
            ResourcePatternType.PREFIXED,
            "User:producer",
            "*",
            AclOperation.WRITE,
            AclPermissionType.ALLOW,
        )
    )
    for future in admin.create_acls(bindings).values():
        future.result(120)


def _restart_without_super_user(broker: Broker, data: Path) -> Broker:
    """The ACLs are in place: run again with no super user and ANONYMOUS allowed to write through
    a PREFIXED ACL (the producer of the workloads is ANONYMOUS on PLAINTEXT)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    grants = [
        AclBinding(
            ResourceType.TOPIC,
            "bench-",
            ResourcePatternType.PREFIXED,
            "User:ANONYMOUS",
            "*",
            op,
            AclPermissionType.ALLOW,
        )
        for op in (AclOperation.WRITE, AclOperation.CREATE)
    ]
    for future in admin.create_acls(grants).values():
        future.result(60)
    broker.stop()
    port = broker.bootstrap.rsplit(":", 1)[1]
    restarted = Broker.__new__(Broker)
    restarted.bootstrap = broker.bootstrap
    restarted.log = open(data.parent / "brook-acls-on.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "broker"]
    for override in (
        f"listeners=PLAINTEXT://127.0.0.1:{port}",
        f"log.dirs={data}",
        "num.partitions=6",
        f"authorizer.class.name={AUTHORIZER}",
    ):
        cmd += ["--override", override]
    restarted.proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=restarted.log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "BROOK_LOG_LEVEL": "WARNING"},
    )
    restarted.pid = restarted.proc.pid
    deadline = time.monotonic() + 30
    while not check("127.0.0.1", int(port), 1.0):
        if time.monotonic() > deadline or restarted.proc.poll() is not None:
            raise RuntimeError("Brook did not restart")
        time.sleep(0.1)
    return restarted


def measured(broker: Broker, *args: Any) -> dict[str, Any]:
    before = cpu_seconds(broker.pid)
    result = workload(*args)
    result["broker_cpu_s"] = cpu_seconds(broker.pid) - before
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--acls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="brook-bench-acls-"))
    brokers: dict[str, Broker] = {}
    topics = [f"bench-{kind}-{r}" for kind in ("produce", "small") for r in range(args.rounds)]
    try:
        for name, on in (("off", False), ("on", True)):
            data = root / name
            data.mkdir()
            brokers[name] = Broker(data, on)
            _setup(brokers[name], topics, args.acls, on)
            if on:
                brokers[name] = _restart_without_super_user(brokers[name], data)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            n: {"produce": [], "small": []} for n in brokers
        }
        for r in range(args.rounds):
            for name, broker in brokers.items():
                produced = measured(
                    broker, "produce", broker.bootstrap, f"bench-produce-{r}", args.messages, "1"
                )
                if produced["failed"]:
                    raise RuntimeError(f"{name}: {produced['failed']} messages failed")
                results[name]["produce"].append(produced)
                results[name]["small"].append(
                    measured(broker, "small-requests", broker.bootstrap, f"bench-small-{r}", 16, args.seconds)
                )
        print(f"ACL authorizer off vs on ({args.acls} other ACLs), medians of {args.rounds} rounds")
        for name, runs in results.items():
            produce = runs["produce"]
            small = runs["small"]
            rate = statistics.median(p["rate"] for p in produce)
            cpu = statistics.median(p["broker_cpu_s"] / p["msgs"] * 1e6 for p in produce)
            requests = statistics.median(s["rate"] for s in small)
            small_cpu = statistics.median(s["broker_cpu_s"] / max(s["messages"], 1) * 1e6 for s in small)
            print(
                f"  {name:>3}: produce {rate:,.0f} msgs/s, {cpu:.2f} us CPU/msg | "
                f"small requests {requests:,.0f} req/s, {small_cpu:.2f} us CPU/msg"
            )
    finally:
        for broker in brokers.values():
            broker.stop()
        import shutil

        if os.environ.get("KEEP_BENCH_DATA") is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"data and logs kept in {root}")


if __name__ == "__main__":
    main()
