"""How long other clients stall while a broker does bulk disk work, and whether the recovery
point follows the rolls with Kafka's default flush settings.

    PYTHONPATH=$PWD python bench/bench_disk_stall.py create [--partitions 10000]
    PYTHONPATH=$PWD python bench/bench_disk_stall.py recovery

``create``: a broker process; one client sends CreateTopics for N partitions while another
sends ApiVersions every 10 ms (``--probe-interval-ms``); prints the creation time and the
probe's round trips during it (the longest one is how long every client was stalled).
``recovery``: a broker with default flush settings (checkpoint every second), a topic with
1 MiB segments, 3.5 segments produced, the recovery-point checkpoint read, kill -9, then the
log loaded again as the next start would: how many segments recovery had to re-validate.

Runs from any checkout (``PYTHONPATH`` picks the code), so main and a branch compare directly.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from broker.testing_ports import free_port
from protocol import api as papi
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.create_topics_request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch

TIMEOUT = 600.0


def start_broker(data: Path, port: int, *overrides: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "broker", "--no-env"]
    for item in (f"log.dirs={data}", f"listeners=PLAINTEXT://127.0.0.1:{port}", *overrides):
        args += ["--override", item]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the broker did not start")


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.correlation = 0

    def call(self, body: Any, version: int) -> Any:
        self.correlation += 1
        self.sock.sendall(papi.encode_request(body, version, self.correlation))
        size = struct.unpack(">i", self._exact(4))[0]
        return papi.decode_response(self._exact(size), body.API_KEY, version)[1]

    def _exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return bytes(data)


def bench_create(partitions: int, probe_interval_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        proc = start_broker(data, port)
        try:
            creator, prober = Client(port), Client(port)
            probe = ApiVersionsRequest()
            prober.call(probe, 0)
            rtts: list[tuple[float, float]] = []
            stop = threading.Event()

            def probe_loop() -> None:
                while not stop.is_set():
                    sent = time.perf_counter()
                    prober.call(probe, 0)
                    rtts.append((sent, time.perf_counter() - sent))
                    stop.wait(probe_interval_s)

            thread = threading.Thread(target=probe_loop)
            thread.start()
            time.sleep(0.5)
            started = time.perf_counter()
            answer = creator.call(CreateTopicsRequest(topics=[CreatableTopic("big", partitions, 1)]), 7)
            took = time.perf_counter() - started
            stop.set()
            thread.join(TIMEOUT)
            window = [(rtt, sent - started) for sent, rtt in rtts if started <= sent <= started + took]
            during = sorted(rtt for rtt, _ in window)
            worst_at = max(window)[1] if window else 0.0
            print(f"CreateTopics {partitions} partitions: error {answer.topics[0].error_code}, {took:.2f} s")
            if during:
                print(
                    f"probe ApiVersions during it: {len(during)} answered, "
                    f"median {during[len(during) // 2] * 1000:.1f} ms, "
                    f"p99 {during[int(len(during) * 0.99)] * 1000:.1f} ms, "
                    f"longest stall {during[-1] * 1000:.0f} ms (sent {worst_at:.1f} s into the creation)"
                )
            else:
                print("probe ApiVersions during it: none answered")
        finally:
            proc.kill()
            proc.wait()


def bench_recovery() -> None:
    from storage import LogConfig, LogManager

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        proc = start_broker(data, port, "log.flush.offset.checkpoint.interval.ms=1000")
        try:
            client = Client(port)
            segment = 1 << 20
            configs = [CreatableTopicConfig("segment.bytes", str(segment))]
            created = client.call(CreateTopicsRequest(topics=[CreatableTopic("r", 1, 1, [], configs)]), 7)
            assert created.topics[0].error_code == 0, created
            value = os.urandom(1000)
            written = 0
            while written < 3.5 * segment:
                records = [Record(i, i, None, value, []) for i in range(64)]
                request = ProduceRequest(
                    acks=1,
                    timeout_ms=5000,
                    topic_data=[
                        TopicProduceData(
                            "r",
                            [
                                PartitionProduceData(
                                    0, build_batch(records, base_timestamp=int(time.time() * 1000))
                                )
                            ],
                        )
                    ],
                )
                client.call(request, 9)
                written += 64 * 1000
            checkpoint = data / "recovery-point-offset-checkpoint"
            deadline = time.monotonic() + 10
            seen = ""
            while time.monotonic() < deadline:  # the checkpoint is written every second
                seen = checkpoint.read_text() if checkpoint.exists() else ""
                if "r 0 " in seen and not seen.rstrip().endswith("r 0 0"):
                    break
                time.sleep(0.2)
            print("recovery-point-offset-checkpoint before kill -9:", " | ".join(seen.split("\n")))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        manager = LogManager([data], LogConfig(segment_bytes=segment))
        log = manager.get_log("r", 0)
        assert log is not None
        result = log.load_result
        print(
            f"restart after kill -9: {log.segment_count} segments, log end {log.log_end_offset}, "
            f"recovery point {result.recovery_point}; recovered_segments={result.recovered_segments} "
            f"truncated_bytes={result.truncated_bytes} rebuilt_indexes={result.rebuilt_indexes}"
        )
        manager.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["create", "recovery"])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--probe-interval-ms", type=float, default=10.0, help="pause between probes")
    args = parser.parse_args()
    if args.what == "create":
        bench_create(args.partitions, args.probe_interval_ms / 1000)
    else:
        bench_recovery()


if __name__ == "__main__":
    main()
