"""Protocol codec figures, Brook against kio on the same run and the same content.

Prints (no assertions):

- decode of a Produce request v9 (6 partitions x 16 KiB record batches), header included, per second;
- encode of a Metadata response v12 (1,000 topics x 6 partitions, 3 replicas and 3 ISR each, topic
  ids, 3 brokers), header and size prefix included, in milliseconds.

Both libraries decode the very same frame bytes and encode the very same content (the kio value is
built by decoding Brook's encoding with kio, and the two encodings are checked to be identical
before timing). Each figure is the median of several rounds.

Targets (issue "Protocol codec"): Produce decode >= kio's rate; Metadata encode >= 2x faster than kio.

Run: .venv/bin/python bench/bench_protocol.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kio.index import load_request_schema, load_response_schema
from kio.schema.request_header.v2.header import RequestHeader as KioRequestHeader
from kio.schema.response_header.v1.header import ResponseHeader as KioResponseHeader
from kio.serial import entity_reader, entity_writer

from protocol.api import decode_request, encode_request, encode_response
from protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch

PRODUCE_VERSION = 9
METADATA_VERSION = 12
_SIZE = struct.Struct(">i")


def rates(fns: list[Callable[[], object]], rounds: int, seconds: float) -> list[list[float]]:
    """Calls per second of each function, one figure per round of about ``seconds``; the rounds
    of the functions alternate so that a noisy neighbour affects them alike."""
    for fn in fns:
        fn()
    figures: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, figures, strict=True):
            n = 0
            start = time.perf_counter()
            deadline = start + seconds
            while True:
                fn()
                n += 1
                now = time.perf_counter()
                if now >= deadline:
                    break
            out.append(n / (now - start))
    return figures


def produce_frame(kib: int = 16) -> bytes:
    """A Produce v9 request frame body (header + body, no size prefix): 6 partitions, each a
    record batch of ``kib`` KiB (uncompressed records of 1,000 random bytes)."""
    partitions = []
    for p in range(6):
        records = [Record(i, i, b"key-%d" % i, os.urandom(1000)) for i in range(kib)]
        batch = build_batch(records, base_timestamp=1_700_000_000_000)
        partitions.append(PartitionProduceData(p, batch))
    body = ProduceRequest(None, -1, 30_000, [TopicProduceData("bench-topic", partitions)])
    frame = encode_request(body, PRODUCE_VERSION, correlation_id=7, client_id="bench-producer")
    return frame[4:]


def metadata_response() -> MetadataResponse:
    brokers = [MetadataResponseBroker(i, f"broker-{i}.example.com", 9092, f"rack-{i}") for i in range(3)]
    topics = []
    for t in range(1000):
        partitions = [
            MetadataResponsePartition(0, p, (t + p) % 3, 5, replicas, list(replicas), [])
            for p in range(6)
            for replicas in [[(t + p + r) % 3 for r in range(3)]]
        ]
        topics.append(
            MetadataResponseTopic(0, f"topic-{t:04d}", uuid.UUID(int=t + 1), False, partitions, -2147483648)
        )
    return MetadataResponse(0, brokers, "bench-cluster-id", 1, topics, -2147483648)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round")
    parser.add_argument("--partition-kib", type=int, default=16, help="record batch size per partition")
    args = parser.parse_args()

    # ---- Produce v9 decode, request header included -------------------------------------------
    frame = produce_frame(args.partition_kib)
    kio_produce = load_request_schema(0, PRODUCE_VERSION)
    read_kio_header = entity_reader(KioRequestHeader)
    read_kio_produce = entity_reader(kio_produce)

    def brook_decode() -> object:
        return decode_request(frame)

    def kio_decode() -> object:
        header, pos = read_kio_header(frame, 0)
        body, _ = read_kio_produce(frame, pos)
        return header, body

    ours = brook_decode()
    kio_header, kio_body = kio_decode()
    if ours.body.topic_data[0].partition_data[5].records != kio_body.topic_data[0].partition_data[5].records:
        raise SystemExit("kio and brook decode the Produce request differently; the comparison is void")
    assert kio_header.correlation_id == ours.header.correlation_id == 7

    brook_rates, kio_rates = rates([brook_decode, kio_decode], args.rounds, args.seconds)
    b, k = statistics.median(brook_rates), statistics.median(kio_rates)
    kib = args.partition_kib
    print(f"Produce v{PRODUCE_VERSION} request decode, header included (6 x {kib} KiB, {len(frame):,} B):")
    print(f"  brook {b:12,.0f} /s")
    print(f"  kio   {k:12,.0f} /s")
    print(f"  brook/kio = {b / k:.2f}x   (target >= 1.00x)")

    # ---- Metadata v12 encode, header and size prefix included ---------------------------------
    response = metadata_response()
    encoded = encode_response(3, METADATA_VERSION, 11, response)
    kio_metadata = load_response_schema(3, METADATA_VERSION)
    kio_value, _ = entity_reader(kio_metadata)(encoded, 4 + 5)  # size prefix + response header v1
    write_kio_header = entity_writer(KioResponseHeader)
    write_kio_metadata = entity_writer(kio_metadata)
    kio_header_value = KioResponseHeader(correlation_id=11)  # type: ignore[arg-type]

    def brook_encode() -> bytes:
        return encode_response(3, METADATA_VERSION, 11, response)

    def kio_encode() -> bytes:
        out = io.BytesIO()
        write_kio_header(out, kio_header_value)
        write_kio_metadata(out, kio_value)
        payload = out.getvalue()
        return _SIZE.pack(len(payload)) + payload

    if kio_encode() != encoded:
        raise SystemExit("kio and brook encode the Metadata response differently; the comparison is void")

    brook_rates, kio_rates = rates([brook_encode, kio_encode], args.rounds, args.seconds)
    brook_ms = [1000 / r for r in brook_rates]
    kio_ms = [1000 / r for r in kio_rates]
    b, k = statistics.median(brook_ms), statistics.median(kio_ms)
    print(f"Metadata v{METADATA_VERSION} response encode (1,000 topics x 6 partitions, {len(encoded):,} B):")
    print(f"  brook {b:8.2f} ms")
    print(f"  kio   {k:8.2f} ms")
    print(f"  kio/brook = {k / b:.2f}x   (target >= 2.00x)")
    print(f"(median of {args.rounds} rounds of {args.seconds} s; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
