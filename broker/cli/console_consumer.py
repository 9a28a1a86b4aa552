"""``brook console-consumer``: kafka-console-consumer.sh — a topic's records to stdout.

Without ``--group`` it assigns itself every partition of the topic (or ``--partition``). With
``--group`` it is a classic group member (:mod:`broker.cli.group_member`): the group assigns its
partitions (range), it starts from the group's committed offsets, and commits the offsets of the
records it printed when the group rebalances and when it stops. Fetches go to each leader (Fetch v12
at most: topics by name). ``--isolation-level read_committed`` reads to the last stable offset and
leaves out aborted records. Records are printed as Kafka's DefaultMessageFormatter prints them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from typing import Any, BinaryIO

from broker.cli.client import CliError, KafkaClient, KafkaError, retriable
from broker.cli.common import add_connection_options, client_from, parse_key_values
from broker.cli.group_member import GroupMember
from broker.cli.lines import FormatterConfig, format_record
from broker.cli.offsets import (
    EARLIEST,
    LATEST,
    READ_COMMITTED,
    READ_UNCOMMITTED,
    TopicPartition,
    fetch_committed,
    list_offsets,
)
from protocol.error_codes import ErrorCode
from protocol.exceptions import CorruptRecordError
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.records.batch import TIMESTAMP_TYPE_MASK, iter_batches
from protocol.records.record import decode_batch, parse_control_key

FETCH_MAX_WAIT_MS = 200
PARTITION_MAX_BYTES = 1 << 20
ABORT_MARKER = 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("console-consumer", help="Print a topic's records.")
    add_connection_options(parser)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partition", type=int)
    parser.add_argument("--offset", default=None, help="earliest, latest or an offset (needs --partition)")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--max-messages", type=int)
    parser.add_argument("--timeout-ms", type=int, help="Exit when no message arrived for this long.")
    parser.add_argument("--group")
    parser.add_argument("--property", action="append", default=[])
    parser.add_argument("--consumer-property", action="append", default=[])
    parser.add_argument(
        "--isolation-level", choices=("read_committed", "read_uncommitted"), default="read_uncommitted"
    )
    parser.add_argument("--skip-message-on-error", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    consumer_props = parse_key_values(args.consumer_property)
    if args.offset is not None and args.partition is None:
        raise CliError("The partition is required when offset is specified.")
    if args.offset is not None and args.group:
        raise CliError("Options group and offset cannot be specified together.")
    if args.partition is not None and args.group:
        raise CliError("Options group and partition cannot be specified together.")
    formatter = FormatterConfig.from_properties(parse_key_values(args.property))
    isolation = (
        READ_COMMITTED
        if (consumer_props.get("isolation.level") or args.isolation_level) == "read_committed"
        else READ_UNCOMMITTED
    )
    group = args.group or consumer_props.get("group.id")
    reset = consumer_props.get("auto.offset.reset", "earliest" if args.from_beginning else "latest")
    with client_from(
        args, {k: v for k, v in consumer_props.items() if k.startswith(("security.", "ssl.", "sasl."))}
    ) as client:
        consumer = SimpleConsumer(
            client, args.topic, isolation=isolation, group=group, skip_corrupt=args.skip_message_on_error
        )
        consumer.assign(args.partition, args.offset, reset)
        count = consumer.consume(sys.stdout.buffer, formatter, args.max_messages, args.timeout_ms)
    print(f"Processed a total of {count} messages", file=sys.stderr)
    return 0


class SimpleConsumer:
    """Fetches the assigned partitions from their leaders, in order, from tracked positions."""

    def __init__(
        self,
        client: KafkaClient,
        topic: str,
        *,
        isolation: int,
        group: str | None,
        skip_corrupt: bool = False,
    ) -> None:
        self.client = client
        self.skip_corrupt = skip_corrupt
        self.topic = topic
        self.isolation = isolation
        self.group = group
        self.positions: dict[TopicPartition, int] = {}
        #: The position after the last record printed, per partition: what a commit stores.
        self.consumed: dict[TopicPartition, int] = {}
        self._reset = "latest"
        self.member: GroupMember | None = None

    def assign(self, partition: int | None, offset: str | None, reset: str) -> None:
        """Take ``partition`` (or every partition, or with a group what the group assigns) and set
        the start positions: ``offset``, else the group's committed offsets, else ``reset``."""
        if reset not in ("earliest", "latest"):
            raise CliError(f"Invalid value {reset} for configuration auto.offset.reset")
        self._reset = reset
        if self.group:
            self.member = GroupMember(self.client, self.group, [self.topic])
            self._start(self.member.join())
            return
        leaders = self.client.leaders([self.topic])
        if partition is not None and (self.topic, partition) not in leaders:
            raise CliError(f"Partition {self.topic}-{partition} does not exist")
        partitions = sorted(leaders) if partition is None else [(self.topic, partition)]
        if offset is not None and offset not in ("earliest", "latest"):
            try:
                self.positions = {tp: int(offset) for tp in partitions}
            except ValueError:
                raise CliError(
                    f"The provided offset value '{offset}' is incorrect. Valid values are "
                    "'earliest', 'latest', or a non-negative long."
                ) from None
            self.consumed = dict(self.positions)
            return
        if offset is not None:
            self._reset = offset
        self._start(partitions)

    def _start(self, partitions: list[TopicPartition]) -> None:
        """Positions for ``partitions``. After a rebalance, a partition this member keeps keeps
        its position (as Kafka's SubscriptionState): looking it up again would skip, with
        ``latest``, whatever was written since, should the commit before the rejoin have failed."""
        kept = {tp: self.positions[tp] for tp in partitions if tp in self.positions}
        new = [tp for tp in partitions if tp not in kept]
        committed: dict[TopicPartition, int] = {}
        if self.member is not None and new:
            member = self.member
            committed = self.client.retrying(lambda: fetch_committed(member.coordinator, member.group, new))
        start = EARLIEST if self._reset == "earliest" else LATEST
        missing = [tp for tp in new if tp not in committed]
        reset_to = list_offsets(self.client, missing, start, self.isolation) if missing else {}
        consumed = {tp: self.consumed.get(tp, position) for tp, position in kept.items()}
        self.positions = {**reset_to, **committed, **kept}
        self.consumed = {**reset_to, **committed, **consumed}

    def consume(
        self, out: BinaryIO, formatter: FormatterConfig, max_messages: int | None, timeout_ms: int | None
    ) -> int:
        """Print records until ``max_messages`` or ``timeout_ms`` without one; the count."""
        count = 0
        last_message = time.monotonic()
        try:
            while max_messages is None or count < max_messages:
                self._keep_membership()
                for record in self._poll():
                    out.write(format_record(formatter, **record))
                    self.consumed[(self.topic, record["partition"])] = record["offset"] + 1
                    count += 1
                    last_message = time.monotonic()
                    if max_messages is not None and count >= max_messages:
                        break
                out.flush()
                if timeout_ms is not None and (time.monotonic() - last_message) * 1000 >= timeout_ms:
                    print(
                        "ERROR Error processing message, terminating consumer process: "
                        "org.apache.kafka.common.errors.TimeoutException",
                        file=sys.stderr,
                    )
                    break
        except KeyboardInterrupt:  # Ctrl-C ends the session as Kafka's does: commit, then the count
            pass
        finally:
            self.close()
        return count

    def _keep_membership(self) -> None:
        """Heartbeat; when the group rebalances, commit what was printed and join again."""
        if self.member is not None and self.member.heartbeat_due():
            self._commit()
            self._start(self.member.join())

    def _commit(self) -> None:
        if self.member is not None:
            try:
                self.member.commit(self.consumed)
            except KafkaError as exc:  # the group moved on: the next owner starts from the last commit
                print(f"WARN Offset commit failed for group {self.member.group}: {exc}", file=sys.stderr)

    def close(self) -> None:
        """Commit the offsets of the records printed, then leave the group."""
        if self.member is not None:
            self._commit()
            self.member.leave()

    def _poll(self) -> list[dict[str, Any]]:
        """One fetch round to every leader; the records in partition order, positions moved past them."""
        if not self.positions:  # a group member with no partition: wait as a fetch would
            time.sleep(FETCH_MAX_WAIT_MS / 1000)
            return []
        leaders = self.client.leaders([self.topic])
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in sorted(self.positions):
            by_leader[leaders.get(tp, -1)].append(tp)
        records: list[dict[str, Any]] = []
        for leader, tps in by_leader.items():
            if leader < 0:
                continue
            request = FetchRequest(
                max_wait_ms=FETCH_MAX_WAIT_MS,
                min_bytes=1,
                isolation_level=self.isolation,
                topics=[
                    FetchTopic(
                        topic=self.topic,
                        partitions=[
                            FetchPartition(
                                partition=p,
                                fetch_offset=self.positions[(t, p)],
                                partition_max_bytes=PARTITION_MAX_BYTES,
                            )
                            for t, p in tps
                        ],
                    )
                ],
            )
            response = self.client.node(leader).call(request)
            if response.error_code:
                raise KafkaError(response.error_code, None, "Fetch")
            for topic in response.responses:
                for data in topic.partitions:
                    records += self._partition_records(topic.topic, data)
        return records

    def _partition_records(self, topic: str, data: Any) -> list[dict[str, Any]]:
        tp = (topic, data.partition_index)
        if data.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
            start = EARLIEST if self._reset == "earliest" else LATEST
            self.positions[tp] = list_offsets(self.client, [tp], start, self.isolation)[tp]
            return []
        if data.error_code:
            if retriable(data.error_code):
                return []
            raise KafkaError(data.error_code, None, f"Fetch of {topic}-{data.partition_index}")
        buf = bytes(data.records or b"")
        aborted = sorted((a.first_offset, a.producer_id) for a in (data.aborted_transactions or []))
        try:
            return self._decode(tp, buf, aborted)
        except CorruptRecordError as exc:  # a batch header that does not parse: nothing to skip to
            raise CliError(f"Error processing message, terminating consumer process: {topic}: {exc}") from exc

    def _decode(self, tp: TopicPartition, buf: bytes, aborted: list[tuple[int, int]]) -> list[dict[str, Any]]:
        position = self.positions[tp]
        records: list[dict[str, Any]] = []
        aborting: set[int] = set()
        for pos, header in iter_batches(buf):
            while aborted and aborted[0][0] <= header.last_offset:
                aborting.add(aborted.pop(0)[1])
            if header.last_offset < position:
                continue
            try:
                _, batch = decode_batch(buf, pos)
            except CorruptRecordError as exc:
                if not self.skip_corrupt:
                    raise CliError(
                        f"Error processing message, terminating consumer process: CorruptRecordException: "
                        f"{tp[0]}-{tp[1]} at offset {header.base_offset}: {exc}"
                    ) from exc
                where = f"{tp[0]}-{tp[1]} at offset {header.base_offset}"
                print(f"ERROR Skipping a corrupt batch of {where}: {exc}", file=sys.stderr)
                position = header.next_offset
                continue
            if header.is_control:
                if batch and parse_control_key(batch[0].key) == ABORT_MARKER:
                    aborting.discard(header.producer_id)
                position = header.next_offset
                continue
            if (
                self.isolation == READ_COMMITTED
                and header.is_transactional
                and header.producer_id in aborting
            ):
                position = header.next_offset
                continue
            for record in batch:
                offset = header.base_offset + record.offset_delta
                if offset < position:
                    continue
                log_append = bool(header.attributes & TIMESTAMP_TYPE_MASK)
                records.append(
                    {
                        "timestamp_type": 1 if log_append else 0,
                        "timestamp": header.max_timestamp
                        if log_append
                        else header.base_timestamp + record.timestamp_delta,
                        "partition": tp[1],
                        "offset": offset,
                        "headers": record.headers,
                        "key": record.key,
                        "value": record.value,
                    }
                )
            position = header.next_offset
        self.positions[tp] = position
        return records
