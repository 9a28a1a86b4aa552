"""``brook console-producer``: kafka-console-producer.sh — stdin lines into a topic.

Lines are parsed as Kafka's LineMessageReader does (``--property parse.key=true`` and friends) and
sent as v2 batches built with :func:`protocol.records.record.build_batch`, one Produce per leader.
Keyed records go where Kafka's default partitioner puts them (murmur2); unkeyed ones round-robin.
Input is sent whenever stdin has no more lines ready, so an interactive session sends each line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, BinaryIO

from broker.cli.client import CliError, KafkaClient, KafkaError, retriable
from broker.cli.common import add_connection_options, client_from, parse_key_values
from broker.cli.lines import LineReaderConfig, ParsedLine, parse_line, partition_for_key
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records.record import Record, build_batch

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
MAX_BATCH_RECORDS = 1000
RETRIES = 5
RETRY_BACKOFF_S = 0.1
CHUNK = 1 << 16
PROGRESS_EVERY = 100_000


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("console-producer", help="Send stdin lines to a topic.")
    add_connection_options(parser, required=False)
    parser.add_argument("--broker-list", help="Deprecated alias of --bootstrap-server.")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--property", action="append", default=[], help="Line reader property key=value.")
    parser.add_argument("--producer-property", action="append", default=[])
    parser.add_argument("--producer.config", dest="producer_config")
    parser.add_argument("--request-required-acks", default=None)
    parser.add_argument("--compression-codec", nargs="?", const="gzip", default=None, choices=sorted(CODECS))
    parser.add_argument(
        "--timeout", type=int, default=1000, help="Linger in ms (accepted for compatibility)."
    )
    parser.add_argument("--request-timeout-ms", type=int, default=1500)
    parser.add_argument("--sync", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    args.bootstrap_server = args.bootstrap_server or args.broker_list
    if not args.bootstrap_server:
        raise CliError('Missing required argument "[bootstrap-server]"')
    producer_props = {}
    if args.producer_config:
        from broker.cli.common import read_properties

        producer_props.update(read_properties(args.producer_config))
    producer_props.update(parse_key_values(args.producer_property))
    reader = LineReaderConfig.from_properties(parse_key_values(args.property))
    acks = _acks(args.request_required_acks or producer_props.get("acks", "-1"))
    codec = CODECS[args.compression_codec or producer_props.get("compression.type", "none")]
    with client_from(
        args, {k: v for k, v in producer_props.items() if k.startswith(("security.", "ssl.", "sasl."))}
    ) as client:
        producer = LineProducer(
            client, args.topic, acks=acks, compression=codec, timeout_ms=args.request_timeout_ms
        )
        producer.run(sys.stdin.buffer, reader)
    return 0


def _acks(text: str) -> int:
    value = text.strip().lower()
    if value == "all":
        return -1
    if value in ("-1", "0", "1"):
        return int(value)
    raise CliError(f"Invalid value {text} for configuration acks: String must be one of: all, -1, 0, 1")


class LineProducer:
    """Parses lines and produces them in batches, one Produce request per leader."""

    def __init__(
        self, client: KafkaClient, topic: str, *, acks: int, compression: int, timeout_ms: int
    ) -> None:
        self.client = client
        self.topic = topic
        self.acks = acks
        self.compression = compression
        self.timeout_ms = max(timeout_ms, 1500)
        self.partitions = self._partition_count()
        self._next_partition = 0
        self.sent = 0
        self._next_report = PROGRESS_EVERY

    def _partition_count(self) -> int:
        response = self.client.metadata([self.topic])
        topic = response.topics[0]
        if topic.error_code:
            raise KafkaError(topic.error_code, f"Topic {self.topic} not present in metadata")
        return len(topic.partitions)

    def run(self, stream: BinaryIO, reader: LineReaderConfig) -> int:
        """Produce every line of ``stream``; what one read returns is sent before the next read
        waits, so an interactive session sends each line as it is typed."""
        line_number = 0
        partial = b""
        for chunk in _chunks(stream):
            *complete, partial = (partial + chunk).split(b"\n")
            parsed = []
            for raw in complete:
                line_number += 1
                parsed.append(parse_line(_text(raw), reader, line_number))
            for i in range(0, len(parsed), MAX_BATCH_RECORDS):
                self.send(parsed[i : i + MAX_BATCH_RECORDS])
            self._progress()
        if partial:
            self.send([parse_line(_text(partial), reader, line_number + 1)])
        return self.sent

    def _progress(self) -> None:
        """A running count on a terminal's stderr for long inputs (never in pipes: Kafka prints none)."""
        if self.sent >= self._next_report and sys.stderr.isatty():
            print(f"\r{self.sent} records sent to {self.topic}", end="", file=sys.stderr, flush=True)
            self._next_report = self.sent + PROGRESS_EVERY

    def send(self, lines: list[ParsedLine]) -> None:
        if not lines:
            return
        by_partition: dict[int, list[ParsedLine]] = defaultdict(list)
        for line in lines:
            by_partition[self._partition(line)].append(line)
        pending = dict(by_partition)
        for attempt in range(RETRIES):
            if not pending:
                break
            if attempt:
                time.sleep(RETRY_BACKOFF_S * attempt)  # Kafka's retry.backoff.ms: a leader is moving
            pending = self._send_once(pending)
        if pending:
            raise CliError(
                f"Could not produce to partitions {sorted(pending)} of {self.topic}: no leader answered"
            )
        self.sent += len(lines)

    def _partition(self, line: ParsedLine) -> int:
        if line.key is not None:
            return partition_for_key(line.key, self.partitions)
        partition = self._next_partition
        self._next_partition = (partition + 1) % self.partitions
        return partition

    def _send_once(self, batches: dict[int, list[ParsedLine]]) -> dict[int, list[ParsedLine]]:
        leaders = self.client.leaders([self.topic])
        by_leader: dict[int, list[int]] = defaultdict(list)
        retry: dict[int, list[ParsedLine]] = {}
        for partition in batches:
            leader = leaders.get((self.topic, partition), -1)
            if leader < 0:
                retry[partition] = batches[partition]
            else:
                by_leader[leader].append(partition)
        now = int(time.time() * 1000)
        for leader, partitions in by_leader.items():
            data = [
                PartitionProduceData(index=p, records=_batch(batches[p], now, self.compression))
                for p in partitions
            ]
            request = ProduceRequest(
                acks=self.acks, timeout_ms=self.timeout_ms, topic_data=[TopicProduceData(self.topic, data)]
            )
            conn = self.client.node(leader)
            if self.acks == 0:
                conn.send_only(request)
                continue
            response = conn.call(request)
            for topic in response.responses:
                for p in topic.partition_responses:
                    if p.error_code == 0:
                        continue
                    if retriable(p.error_code):
                        retry[p.index] = batches[p.index]
                        continue
                    raise KafkaError(p.error_code, p.error_message, f"Produce to {self.topic}-{p.index}")
        return retry


def _batch(lines: list[ParsedLine], now: int, compression: int) -> bytes:
    records = [Record(i, 0, line.key, line.value, list(line.headers)) for i, line in enumerate(lines)]
    return build_batch(records, base_timestamp=now, compression=compression)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").removesuffix("\r")


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """What the input has ready, read by read; os.read returns as soon as anything is there."""
    try:
        fd = stream.fileno()
    except (OSError, AttributeError, ValueError):
        fd = -1
    while True:
        chunk = os.read(fd, CHUNK) if fd >= 0 else stream.read(CHUNK)
        if not chunk:
            return
        yield chunk
