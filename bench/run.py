"""Brook next to librdkafka's mock cluster (a C in-memory broker), same workloads, one run.

    python bench/run.py [--rounds 3] [--messages 1000000] [--only produce,consume,...] [--data DIR]

Starts a Brook broker (data on disk) and the mock cluster of confluent-kafka, then runs each
librdkafka workload against both, interleaved round by round, and prints medians, the ratio
Brook/mock and Brook's CPU seconds per message (from /proc, the least noisy figure on a shared
machine). Workloads: produce 100 B messages (acks=1 and acks=all), consume them from earliest,
end-to-end latency at 5,000 msg/s with the consumer's default fetch.wait.max.ms, the same
produce/consume with kafka-python, small requests (16 producers, one message per request), and
Brook-only scale checks (10,000 partitions: Metadata time, produce over 1,000 partitions, idle
connections and long polls, RSS). The mock auto-creates topics with 4 partitions (it has no
CreateTopics); Brook's topics get 6.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from broker.healthcheck import check  # noqa: E402
from broker.testing_ports import free_port  # noqa: E402
from protocol import api as papi  # noqa: E402

WORKLOADS = REPO / "bench" / "workloads.py"
MOCK = (
    "import sys, time\n"
    "from confluent_kafka import Producer\n"
    "p = Producer({'test.mock.num.brokers': 1, 'bootstrap.servers': ''})\n"
    "b = list(p.list_topics(timeout=10).brokers.values())[0]\n"
    "print(f'{b.host}:{b.port}', flush=True)\n"
    "sys.stdin.read()\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Target:
    name: str
    bootstrap: str
    pid: int

    def create_topic(self, topic: str, partitions: int) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class Brook(Target):
    name = "brook"

    def __init__(self, data: Path) -> None:
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = open(data.parent / "brook-bench.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker",
                "--override",
                f"listeners=PLAINTEXT://127.0.0.1:{port}",
                "--override",
                f"log.dirs={data}",
                "--override",
                "num.partitions=6",
            ],
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

    def create_topic(self, topic: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=300).values():
            future.result(300)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


class Mock(Target):
    name = "mock"

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MOCK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.bootstrap = self.proc.stdout.readline().strip()
        self.pid = self.proc.pid

    def create_topic(self, topic: str, partitions: int) -> None:
        """The mock auto-creates topics (4 partitions) on first use: touch the topic."""
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap})
        producer.produce(topic, b"")
        producer.flush(30)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.kill()
        self.proc.wait(10)


def workload(*args: Any, timeout: float = 600) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(WORKLOADS), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"workload {args[0]} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measured(target: Target, *args: Any) -> dict[str, Any]:
    before = cpu_seconds(target.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = workload(*args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["broker_cpu_s"] = cpu_seconds(target.pid) - before
    result["client_cpu_s"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def compare(
    title: str, results: dict[str, list[dict[str, Any]]], key: str, unit: str, higher_is_better: bool = True
) -> None:
    brook = median([r[key] for r in results["brook"]])
    mock = median([r[key] for r in results["mock"]])
    ratio = brook / mock if mock else float("nan")
    print(
        f"{title:<34} brook {brook:>12,.1f} {unit:<6} mock {mock:>12,.1f} {unit:<6} ratio {ratio:5.2f}"
        f"{'' if higher_is_better else ' (lower is better)'}"
    )


def per_message_cpu(title: str, results: list[dict[str, Any]]) -> None:
    values = [r["broker_cpu_s"] / max(r["msgs"], 1) * 1e6 for r in results]
    print(
        f"{title:<34} brook CPU {median(values):.3f} us/msg (rounds: {', '.join(f'{v:.3f}' for v in values)})"
    )


# -- Brook-only scale checks ----------------------------------------------------------------------


def metadata_time(bootstrap: str, repeats: int = 15) -> float:
    from protocol.messages.metadata_request import MetadataRequest

    host, port = bootstrap.split(":")
    times = []
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        for i in range(repeats):
            frame = papi.encode_request(MetadataRequest(topics=None), 12, i)
            start = time.perf_counter()
            sock.sendall(frame)
            size = struct.unpack(">i", _exact(sock, 4))[0]
            _exact(sock, size)
            times.append(time.perf_counter() - start)
    return median(times) * 1000


def _exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


def idle_cost(target: Brook, topic: str, connections: int, polls: int, seconds: float) -> float:
    """Percent of one core the broker uses with idle connections and idle long-polling fetches."""
    from protocol.messages.api_versions_request import ApiVersionsRequest
    from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

    host, port = target.bootstrap.split(":")
    idle = []
    for i in range(connections):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(papi.encode_request(ApiVersionsRequest(), 0, i))
        idle.append(s)
    for s in idle:
        size = struct.unpack(">i", _exact(s, 4))[0]
        _exact(s, size)
    pollers = []
    for _ in range(polls):
        s = socket.create_connection((host, int(port)), timeout=10)
        pollers.append(s)
    request = FetchRequest(
        max_wait_ms=500,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=topic,
                partitions=[FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)],
            )
        ],
    )

    def fetch_at_end(s: socket.socket, correlation: int, offset: int) -> None:
        request.topics[0].partitions[0].fetch_offset = offset
        s.sendall(papi.encode_request(request, 11, correlation))

    # Fetch from the log end so every poll waits its full max_wait: a consumer with nothing to read.
    end = _log_end(target, topic)
    for i, s in enumerate(pollers):
        fetch_at_end(s, i, end)
    start_cpu = cpu_seconds(target.pid)
    start = time.monotonic()
    deadline = start + seconds
    import selectors

    selector = selectors.DefaultSelector()
    for s in pollers:
        selector.register(s, selectors.EVENT_READ)
    buffers = {s: bytearray() for s in pollers}
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            chunk = s.recv(1 << 16)
            if not chunk:
                raise RuntimeError("poller closed")
            buf = buffers[s]
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from(">i", buf)[0]:
                del buf[: 4 + struct.unpack_from(">i", buf)[0]]
                fetch_at_end(s, 1, end)
    used = cpu_seconds(target.pid) - start_cpu
    elapsed = time.monotonic() - start
    for s in idle + pollers:
        s.close()
    return used / elapsed * 100


def _log_end(target: Brook, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": target.bootstrap, "group.id": "bench-end"})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    return int(high)


def scale(brook: Brook, six_partition_rate: float, gigabytes: float) -> None:
    print("\n== scale (Brook only)")
    start = time.perf_counter()
    brook.create_topic("wide", 10_000)
    print(f"create a topic of 10,000 partitions: {time.perf_counter() - start:.1f} s")
    print(
        f"full Metadata response, 10,000 partitions: {metadata_time(brook.bootstrap):.1f} ms (median of 15)"
    )
    brook.create_topic("spread1k", 1000)
    result = workload("spread", brook.bootstrap, "spread1k", 500_000)
    ratio = result["rate"] / six_partition_rate if six_partition_rate else float("nan")
    print(f"produce over 1,000 partitions: {result['rate']:,.0f} msg/s = {ratio:.2f} x the 6-partition rate")
    cost = idle_cost(brook, "spread1k", 1000, 200, 10.0)
    print(f"1,000 idle connections + 200 idle long polls: {cost:.2f} % of a core")
    if gigabytes > 0:
        messages = int(gigabytes * 1e9 / 100)
        workload("spread", brook.bootstrap, "wide", messages, timeout=3600)
        print(f"RSS with 10,000 partitions and {gigabytes:g} GB of data: {rss_mb(brook.pid):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--kp-messages", type=int, default=200_000)
    parser.add_argument("--only", default="produce,consume,latency,kafka-python,small,scale")
    parser.add_argument("--scale-gb", type=float, default=1.0)
    parser.add_argument(
        "--data", type=Path, default=None, help="directory for Brook's data (default: a temp dir)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))

    root = Path(tempfile.mkdtemp(prefix="brook-bench-", dir=args.data))
    brook = Brook(root / "data")
    mock = Mock()
    targets: list[Target] = [brook, mock]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def record(name: str, target: Target, result: dict[str, Any]) -> None:
        results.setdefault(name, {"brook": [], "mock": []})[target.name].append(result)

    try:
        for r in range(args.rounds):
            for target in targets:
                if {"produce", "consume"} & only:
                    topic = f"p1-{r}"
                    target.create_topic(topic, 6)
                    record(
                        "produce acks=1",
                        target,
                        measured(target, "produce", target.bootstrap, topic, args.messages, "1"),
                    )
                    if "consume" in only:
                        record(
                            "consume",
                            target,
                            measured(target, "consume", target.bootstrap, topic, args.messages),
                        )
                    topic = f"pa-{r}"
                    target.create_topic(topic, 6)
                    record(
                        "produce acks=all",
                        target,
                        measured(target, "produce", target.bootstrap, topic, args.messages, "all"),
                    )
                if "latency" in only:
                    topic = f"lat-{r}"
                    target.create_topic(topic, 6)
                    record("latency", target, measured(target, "latency", target.bootstrap, topic, 5000, 10))
                if "kafka-python" in only and target.name == "brook":
                    # kafka-python 3 cannot talk to the mock: it answers ApiVersions v3 with an error
                    # body kafka-python fails to decode. Brook alone, with client and broker CPU.
                    topic = f"kp-{r}"
                    target.create_topic(topic, 6)
                    record(
                        "kafka-python produce",
                        target,
                        measured(target, "kp-produce", target.bootstrap, topic, args.kp_messages),
                    )
                    record(
                        "kafka-python consume",
                        target,
                        measured(target, "kp-consume", target.bootstrap, topic, args.kp_messages),
                    )
                if "small" in only:
                    topic = f"small-{r}"
                    target.create_topic(topic, 6)
                    record(
                        "small requests",
                        target,
                        measured(target, "small-requests", target.bootstrap, topic, 16, 10),
                    )
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

        print(f"\n== Brook vs librdkafka mock, medians of {args.rounds} interleaved rounds")
        for name in ("produce acks=1", "produce acks=all", "consume"):
            if name in results:
                compare(name, results[name], "rate", "msg/s")
        for name in ("kafka-python produce", "kafka-python consume"):
            if name in results:
                runs = results[name]["brook"]
                rate = median([r["rate"] for r in runs])
                client = median([r["client_cpu_s"] / r["seconds"] * 100 for r in runs])
                broker_cpu = median([r["broker_cpu_s"] / r["seconds"] * 100 for r in runs])
                print(
                    f"{name:<34} brook {rate:>12,.1f} msg/s  "
                    f"client CPU {client:5.1f} %  broker CPU {broker_cpu:5.1f} %"
                )
        if "small requests" in results:
            compare("small requests (16 producers)", results["small requests"], "rate", "req/s")
        if "latency" in results:
            for key in ("p50_ms", "p99_ms", "p999_ms"):
                compare(f"e2e latency {key}", results["latency"], key, "ms", higher_is_better=False)
        for name in ("produce acks=1", "produce acks=all", "consume"):
            if name in results:
                per_message_cpu(name, results[name]["brook"])
        if "scale" in only:
            six = median([r["rate"] for r in results.get("produce acks=1", {}).get("brook", [])]) or 0.0
            scale(brook, six, args.scale_gb)
    finally:
        for target in targets:
            target.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
