"""Consume throughput and broker CPU per message over TLS, next to PLAINTEXT on the same broker.

    python bench/bench_tls.py [--rounds 3] [--messages 1000000] [--large 20000]

One Brook process with a PLAINTEXT and an SSL listener (certificates made for the run) holds two
topics: ``--messages`` records of 100 B and ``--large`` records of 10 KB, six partitions each.
confluent-kafka (in a subprocess) then reads each topic from earliest to end over one listener
and the other, alternating, ``--rounds`` times. Printed: medians of msgs/s, MB/s and the broker's
CPU microseconds per message (from /proc, the least noisy figure on a shared machine).
PLAINTEXT sends fetch data with sendfile; SSL reads it with preadv and encrypts it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import cpu_seconds, free_port  # noqa: E402
from broker.healthcheck import check  # noqa: E402
from tests.security.certs import KEY_PASSWORD, make_pki  # noqa: E402

CONSUME = """
import json, sys, time
from confluent_kafka import Consumer, KafkaError, TopicPartition
bootstrap, topic, ca = sys.argv[1:4]
settings = {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
            "fetch.max.bytes": 52428800, "enable.partition.eof": True}
if ca:
    settings.update({"security.protocol": "SSL", "ssl.ca.location": ca})
consumer = Consumer(settings)
partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
parts = [TopicPartition(topic, p, -2) for p in partitions]
consumer.assign(parts)
received = size = 0
at_end = set()
start = time.perf_counter()
while len(at_end) < len(parts) and time.perf_counter() < start + 300:
    for m in consumer.consume(num_messages=10000, timeout=1.0):
        if m.error() is None:
            received += 1
            size += len(m.value())
        elif m.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(m.partition())
elapsed = time.perf_counter() - start
consumer.close()
print(json.dumps({"msgs": received, "bytes": size, "seconds": elapsed}))
"""

PRODUCE = """
import sys
from confluent_kafka import Producer
bootstrap, topic, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1000000, "acks": 1})
value = b"x" * size
for i in range(count):
    while True:
        try:
            p.produce(topic, value)
            break
        except BufferError:
            p.poll(0.01)
assert p.flush(300) == 0
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="brook-bench-tls-"))
    pki = make_pki(work / "pki")
    plain_port, ssl_port = free_port(), free_port()
    settings = {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SSL://127.0.0.1:{ssl_port}",
        "log.dirs": str(work / "data"),
        "num.partitions": "6",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server.keystore),
        "ssl.key.password": KEY_PASSWORD,
    }
    command = [sys.executable, "-m", "broker", "--no-env"]
    for key, value in settings.items():
        command += ["--override", f"{key}={value}"]
    log = open(work / "broker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "BROOK_LOG_LEVEL": "WARNING"},
    )
    try:
        deadline = time.monotonic() + 30
        while not check("127.0.0.1", plain_port, 1.0):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("Brook did not start")
            time.sleep(0.1)
        plain, tls = f"127.0.0.1:{plain_port}", f"127.0.0.1:{ssl_port}"
        topics = {"small": (args.messages, 100), "large": (args.large, 10_000)}
        for topic, (count, size) in topics.items():
            subprocess.run([sys.executable, "-c", PRODUCE, plain, topic, str(count), str(size)], check=True)
        for topic in topics:
            results: dict[str, list[dict[str, float]]] = {"PLAINTEXT": [], "SSL": []}
            for _ in range(args.rounds):
                for name, bootstrap, ca in (("PLAINTEXT", plain, ""), ("SSL", tls, str(pki.ca))):
                    before = cpu_seconds(proc.pid)
                    out = subprocess.run(
                        [sys.executable, "-c", CONSUME, bootstrap, topic, ca],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    result["cpu"] = cpu_seconds(proc.pid) - before
                    results[name].append(result)
            for name, rounds in results.items():
                rate = statistics.median(r["msgs"] / r["seconds"] for r in rounds)
                mbps = statistics.median(r["bytes"] / r["seconds"] / 1e6 for r in rounds)
                cpu = statistics.median(r["cpu"] / max(r["msgs"], 1) * 1e6 for r in rounds)
                print(
                    f"consume {topic:<5} ({topics[topic][1]:>6} B) {name:<9} {rate:>12,.0f} msg/s "
                    f"{mbps:>8,.1f} MB/s broker CPU {cpu:.3f} us/msg"
                )
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


if __name__ == "__main__":
    main()
