"""One driver per stock client, all with the same small interface, so that each data-plane test
runs unchanged against confluent-kafka, kafka-python, aiokafka, kcat and kafkajs.

``produce`` sends messages with the client's own defaults except what the test names (acks,
compression, idempotence, size limits) and returns what the client acknowledged.
``consume`` reads the given partitions from a start position (earliest, latest, an offset or a
timestamp) up to the end offsets the client sees when it starts, without a consumer group (assign),
and returns every record read. ``follow_latest`` starts a reader at the log end and hands out
records as they arrive. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Sequence
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from compat_tests.clients import kcat as kcat_runner
from compat_tests.clients.model import EARLIEST, LATEST, Ack, AtTimestamp, Msg, Rec, Start
from compat_tests.clients.node import run_kafkajs

#: What a test waits for at most when it reads.
READ_TIMEOUT = 60.0


class Unsupported(Exception):
    """The client cannot do this at all (e.g. kcat cannot set a record's timestamp)."""


class Driver:
    name = "?"
    #: The client has a way to read partitions without a consumer group.
    can_assign = True
    #: The producer can set a record's timestamp.
    sets_timestamps = True
    #: The partitioner used for keyed records without an explicit partition.
    partitioner = "murmur2"

    def version(self) -> str:
        raise NotImplementedError

    def produce(
        self,
        bootstrap: str,
        topic: str,
        msgs: Sequence[Msg],
        *,
        acks: str = "all",
        compression: str = "none",
        idempotent: bool = False,
        max_message_bytes: int | None = None,
    ) -> list[Ack | None]:
        raise NotImplementedError

    def consume(
        self, bootstrap: str, topic: str, partitions: Sequence[int], start: Start = EARLIEST
    ) -> list[Rec]:
        raise NotImplementedError

    def offset_for_time(self, bootstrap: str, topic: str, partition: int, ts: int) -> int | None:
        raise NotImplementedError

    def follow_latest(self, bootstrap: str, topic: str, partition: int) -> Follower:
        raise NotImplementedError


class Follower:
    """A reader started at the log end; :meth:`poll` returns what arrived since."""

    def poll(self, timeout: float) -> list[Rec]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _deadline_passed(deadline: float, what: str, got: int, detail: object = "") -> None:
    if time.monotonic() > deadline:
        raise AssertionError(f"timed out {what}: {got} records read so far {detail}")


# -- confluent-kafka ---------------------------------------------------------------------------


class Confluent(Driver):
    name = "confluent-kafka"
    partitioner = "crc32"

    def version(self) -> str:
        import confluent_kafka

        return f"{confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})"

    def produce(self, bootstrap, topic, msgs, *, acks="all", compression="none", idempotent=False,
                max_message_bytes=None):  # fmt: skip
        from confluent_kafka import KafkaException, Producer

        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "compression.type": compression,
            "enable.idempotence": idempotent,
            "linger.ms": 5,
            "message.timeout.ms": 30000,
        }
        if max_message_bytes:
            conf["message.max.bytes"] = max_message_bytes
        producer = Producer(conf)
        reports: list[Any] = [None] * len(msgs)

        def report(index: int) -> Any:
            def done(err: Any, msg: Any) -> None:
                reports[index] = (err, msg.partition(), msg.offset())

            return done

        for i, m in enumerate(msgs):
            kwargs: dict[str, Any] = {"value": m.value, "key": m.key, "on_delivery": report(i)}
            if m.headers:
                kwargs["headers"] = list(m.headers)
            if m.timestamp is not None:
                kwargs["timestamp"] = m.timestamp
            if m.partition is not None:
                kwargs["partition"] = m.partition
            while True:
                try:
                    producer.produce(topic, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        left = producer.flush(60)
        assert left == 0, f"{left} messages still undelivered after 60 s"
        acks_out: list[Ack | None] = []
        for i, r in enumerate(reports):
            assert r is not None, f"no delivery report for message {i}"
            err, partition, offset = r
            if err is not None:
                raise KafkaException(err)
            acks_out.append(Ack(partition, offset if offset is not None and offset >= 0 else None))
        return acks_out

    def _consumer(self, bootstrap: str) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            {
                "bootstrap.servers": bootstrap,
                # Needed by the client even with assign(); no group api is used.
                "group.id": f"brook-compat-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 100,
                "fetch.error.backoff.ms": 50,
            }
        )

    def _start_offsets(self, consumer: Any, topic: str, partitions: Sequence[int], start: Start) -> list[Any]:
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

        if isinstance(start, AtTimestamp):
            found = consumer.offsets_for_times([TopicPartition(topic, p, start.ms) for p in partitions], 15)
            return [TopicPartition(topic, tp.partition, tp.offset) for tp in found]
        offset = {EARLIEST: OFFSET_BEGINNING, LATEST: OFFSET_END}.get(start, start)  # type: ignore[call-overload]
        return [TopicPartition(topic, p, offset) for p in partitions]

    def consume(self, bootstrap, topic, partitions, start=EARLIEST):  # fmt: skip
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = self._consumer(bootstrap)
        try:
            marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 15) for p in partitions}
            ends = {p: high for p, (_, high) in marks.items()}
            assignment = self._start_offsets(consumer, topic, partitions, start)
            positions: dict[int, int] = {}
            for tp in assignment:
                if tp.offset >= 0:
                    positions[tp.partition] = tp.offset
                elif tp.offset == OFFSET_BEGINNING:
                    positions[tp.partition] = marks[tp.partition][0]
                else:  # OFFSET_END (latest, or no record at or after that time)
                    positions[tp.partition] = ends[tp.partition]
            consumer.assign(assignment)
            out: list[Rec] = []
            deadline = time.monotonic() + READ_TIMEOUT
            while any(positions.get(p, -1) < ends[p] for p in partitions):
                _deadline_passed(deadline, "reading with confluent-kafka", len(out), (positions, ends))
                for m in consumer.consume(10000, 0.2):
                    if m.error():
                        raise AssertionError(f"confluent-kafka consumer error: {m.error()}")
                    out.append(_confluent_rec(m))
                    positions[m.partition()] = m.offset() + 1
            return out
        finally:
            consumer.close()

    def offset_for_time(self, bootstrap, topic, partition, ts):  # fmt: skip
        from confluent_kafka import TopicPartition

        consumer = self._consumer(bootstrap)
        try:
            (found,) = consumer.offsets_for_times([TopicPartition(topic, partition, ts)], 15)
            if found.error:
                raise AssertionError(f"offsets_for_times failed: {found.error}")
            return found.offset if found.offset >= 0 else None
        finally:
            consumer.close()

    def follow_latest(self, bootstrap, topic, partition):  # fmt: skip
        from confluent_kafka import OFFSET_END, TopicPartition

        consumer = self._consumer(bootstrap)
        consumer.assign([TopicPartition(topic, partition, OFFSET_END)])
        return _ConfluentFollower(consumer)


class _ConfluentFollower(Follower):
    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def poll(self, timeout: float) -> list[Rec]:
        out = []
        for m in self.consumer.consume(1000, timeout):
            if m.error():
                raise AssertionError(f"confluent-kafka consumer error: {m.error()}")
            out.append(_confluent_rec(m))
        return out

    def close(self) -> None:
        self.consumer.close()


def _confluent_rec(m: Any) -> Rec:
    return Rec(
        partition=m.partition(),
        offset=m.offset(),
        key=m.key(),
        value=m.value(),
        headers=tuple((k, v) for k, v in (m.headers() or [])),
        timestamp=m.timestamp()[1],
    )


# -- kafka-python ------------------------------------------------------------------------------


class KafkaPython(Driver):
    name = "kafka-python"

    def version(self) -> str:
        return dist_version("kafka-python")

    def produce(self, bootstrap, topic, msgs, *, acks="all", compression="none", idempotent=False,
                max_message_bytes=None):  # fmt: skip
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks={"0": 0, "1": 1, "all": "all"}[acks],
            compression_type=None if compression == "none" else compression,
            enable_idempotence=idempotent,
            linger_ms=5,
            max_request_size=max_message_bytes or 1048576,
            request_timeout_ms=30000,
        )
        try:
            futures = [
                producer.send(
                    topic,
                    value=m.value,
                    key=m.key,
                    headers=list(m.headers),
                    timestamp_ms=m.timestamp,
                    partition=m.partition,
                )
                for m in msgs
            ]
            producer.flush(60)
            out: list[Ack | None] = []
            for f in futures:
                meta = f.get(timeout=30)
                # acks=0: kafka-python numbers records from -1 as if it knew; it does not.
                out.append(Ack(meta.partition, None if acks == "0" or meta.offset < 0 else meta.offset))
            return out
        finally:
            producer.close(timeout=10)

    def _consumer(self, bootstrap: str) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            consumer_timeout_ms=1000,
        )

    def consume(self, bootstrap, topic, partitions, start=EARLIEST):  # fmt: skip
        from kafka import TopicPartition

        consumer = self._consumer(bootstrap)
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            starts = _kafka_python_seek(consumer, tps, start, ends)
            positions = {tp.partition: starts[tp] for tp in tps}
            limits = {tp.partition: ends[tp] for tp in tps}
            out: list[Rec] = []
            deadline = time.monotonic() + READ_TIMEOUT
            while any(positions[p] < limits[p] for p in positions):
                _deadline_passed(deadline, "reading with kafka-python", len(out), (positions, limits))
                for records in consumer.poll(timeout_ms=200, max_records=100000).values():
                    for r in records:
                        out.append(_kafka_python_rec(r))
                        positions[r.partition] = r.offset + 1
            return out
        finally:
            consumer.close()

    def offset_for_time(self, bootstrap, topic, partition, ts):  # fmt: skip
        from kafka import TopicPartition

        consumer = self._consumer(bootstrap)
        try:
            tp = TopicPartition(topic, partition)
            found = consumer.offsets_for_times({tp: ts})[tp]
            return None if found is None else found.offset
        finally:
            consumer.close()

    def follow_latest(self, bootstrap, topic, partition):  # fmt: skip
        from kafka import TopicPartition

        consumer = self._consumer(bootstrap)
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        consumer.position(tp)  # resolve the end now, not at the first poll
        return _KafkaPythonFollower(consumer)


def _kafka_python_seek(consumer: Any, tps: list[Any], start: Start, ends: dict[Any, int]) -> dict[Any, int]:
    """Seek to explicit offsets and return them."""
    if start == EARLIEST:
        starts = dict(consumer.beginning_offsets(tps))
    elif start == LATEST:
        starts = dict(ends)
    elif isinstance(start, AtTimestamp):
        found = consumer.offsets_for_times({tp: start.ms for tp in tps})
        starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}
    else:
        starts = {tp: int(start) for tp in tps}  # type: ignore[arg-type]
    for tp in tps:
        consumer.seek(tp, starts[tp])
    return starts


class _KafkaPythonFollower(Follower):
    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def poll(self, timeout: float) -> list[Rec]:
        out = []
        for records in self.consumer.poll(timeout_ms=int(timeout * 1000)).values():
            out.extend(_kafka_python_rec(r) for r in records)
        return out

    def close(self) -> None:
        self.consumer.close()


def _kafka_python_rec(r: Any) -> Rec:
    return Rec(r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp)


# -- aiokafka ----------------------------------------------------------------------------------


class Aiokafka(Driver):
    name = "aiokafka"

    def version(self) -> str:
        return dist_version("aiokafka")

    @staticmethod
    def _run(coro: Any) -> Any:
        return asyncio.run(asyncio.wait_for(coro, READ_TIMEOUT + 30))

    def produce(self, bootstrap, topic, msgs, *, acks="all", compression="none", idempotent=False,
                max_message_bytes=None):  # fmt: skip
        from aiokafka import AIOKafkaProducer

        async def go() -> list[Ack | None]:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                acks={"0": 0, "1": 1, "all": "all"}[acks],
                compression_type=None if compression == "none" else compression,
                enable_idempotence=idempotent,
                linger_ms=5,
                max_request_size=max_message_bytes or 1048576,
                request_timeout_ms=30000,
            )
            await producer.start()
            try:
                futures = [
                    await producer.send(
                        topic,
                        value=m.value,
                        key=m.key,
                        headers=list(m.headers),
                        timestamp_ms=m.timestamp,
                        partition=m.partition,
                    )
                    for m in msgs
                ]
                out: list[Ack | None] = []
                for f in futures:
                    meta = await f
                    # acks=0: aiokafka resolves with None (nothing is known).
                    out.append(None if meta is None else Ack(meta.partition, meta.offset))
                return out
            finally:
                await producer.stop()

        return self._run(go())  # type: ignore[no-any-return]

    def consume(self, bootstrap, topic, partitions, start=EARLIEST):  # fmt: skip
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def go() -> list[Rec]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
            )
            await consumer.start()
            try:
                tps = [TopicPartition(topic, p) for p in partitions]
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)
                # Explicit offsets: position() runs ahead of what getmany() returned (prefetching),
                # so progress is counted from the records handed out.
                if start == EARLIEST:
                    first = await consumer.beginning_offsets(tps)
                    starts = {tp: first[tp] for tp in tps}
                elif start == LATEST:
                    starts = dict(ends)
                elif isinstance(start, AtTimestamp):
                    found = await consumer.offsets_for_times({tp: start.ms for tp in tps})
                    starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}
                else:
                    starts = {tp: int(start) for tp in tps}
                for tp in tps:
                    consumer.seek(tp, starts[tp])
                positions = {tp.partition: starts[tp] for tp in tps}
                limits = {tp.partition: ends[tp] for tp in tps}
                out: list[Rec] = []
                deadline = time.monotonic() + READ_TIMEOUT
                while any(positions[p] < limits[p] for p in positions):
                    _deadline_passed(deadline, "reading with aiokafka", len(out), (positions, limits))
                    batch = await consumer.getmany(timeout_ms=200, max_records=100000)
                    for records in batch.values():
                        for r in records:
                            out.append(_aiokafka_rec(r))
                            positions[r.partition] = r.offset + 1
                return out
            finally:
                await consumer.stop()

        return self._run(go())  # type: ignore[no-any-return]

    def offset_for_time(self, bootstrap, topic, partition, ts):  # fmt: skip
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def go() -> int | None:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
            await consumer.start()
            try:
                tp = TopicPartition(topic, partition)
                found = (await consumer.offsets_for_times({tp: ts}))[tp]
                return None if found is None else found.offset
            finally:
                await consumer.stop()

        return self._run(go())  # type: ignore[no-any-return]

    def follow_latest(self, bootstrap, topic, partition):  # fmt: skip
        return _AiokafkaFollower(bootstrap, topic, partition)


class _AiokafkaFollower(Follower):
    def __init__(self, bootstrap: str, topic: str, partition: int) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self.loop = asyncio.new_event_loop()
        self.tp = TopicPartition(topic, partition)

        async def start() -> Any:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
            )
            await consumer.start()
            consumer.assign([self.tp])
            await consumer.seek_to_end(self.tp)
            await consumer.position(self.tp)
            return consumer

        self.consumer = self.loop.run_until_complete(asyncio.wait_for(start(), 30))

    def poll(self, timeout: float) -> list[Rec]:
        batch = self.loop.run_until_complete(self.consumer.getmany(timeout_ms=int(timeout * 1000)))
        return [_aiokafka_rec(r) for records in batch.values() for r in records]

    def close(self) -> None:
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.consumer.stop(), 15))
        finally:
            self.loop.close()


def _aiokafka_rec(r: Any) -> Rec:
    return Rec(r.partition, r.offset, r.key, r.value, tuple((k, v) for k, v in r.headers), r.timestamp)


# -- kcat --------------------------------------------------------------------------------------


class Kcat(Driver):
    name = "kcat"
    sets_timestamps = False
    partitioner = "crc32"

    def version(self) -> str:
        import subprocess

        out = subprocess.run(
            [kcat_runner.require_kcat(), "-V"], capture_output=True, timeout=10, check=False
        ).stdout.decode()
        # "Version 1.7.1 (JSON, ..., librdkafka 2.0.2 builtin.features=...)"
        line = next((x for x in out.splitlines() if x.startswith("Version")), "Version ? (librdkafka ?)")
        kcat_version = line.split()[1]
        librdkafka = line.split("librdkafka", 1)[1].split()[0]
        return f"{kcat_version} (librdkafka {librdkafka})"

    def produce(self, bootstrap, topic, msgs, *, acks="all", compression="none", idempotent=False,
                max_message_bytes=None):  # fmt: skip
        if any(m.timestamp is not None for m in msgs):
            raise Unsupported("kcat cannot set a record's timestamp")
        config = ["enable.idempotence=true"] if idempotent else []
        if max_message_bytes:
            config.append(f"message.max.bytes={max_message_bytes}")
        # kcat's -H applies to every message of a run: one run per (headers, partition) group,
        # in the order given.
        groups: list[tuple[tuple[tuple[str, bytes], ...], int | None, list[Msg]]] = []
        for m in msgs:
            if groups and groups[-1][0] == m.headers and groups[-1][1] == m.partition:
                groups[-1][2].append(m)
            else:
                groups.append((m.headers, m.partition, [m]))
        for headers, partition, group in groups:
            text_headers = [(k, v.decode()) for k, v in headers]
            if len(group) == 1 and len(group[0].value) > 64 * 1024:
                self._produce_large(bootstrap, topic, group[0], acks, partition, config)
                continue
            kcat_runner.produce(
                bootstrap,
                topic,
                [(m.key, m.value) for m in group],
                acks=acks,
                compression=compression,
                partition=partition,
                headers=text_headers,
                config=config,
            )
        return [None] * len(msgs)

    @staticmethod
    def _produce_large(
        bootstrap: str, topic: str, m: Msg, acks: str, partition: int | None, config: list[str]
    ) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "value"
            path.write_bytes(m.value)
            kcat_runner.produce_file(
                bootstrap,
                topic,
                path,
                key=None if m.key is None else m.key.decode(),
                acks=acks,
                partition=partition,
                config=config,
            )

    def consume(self, bootstrap, topic, partitions, start=EARLIEST):  # fmt: skip
        if start == EARLIEST:
            offset = "beginning"
        elif start == LATEST:
            offset = "end"
        elif isinstance(start, AtTimestamp):
            offset = f"s@{start.ms}"
        else:
            offset = str(start)
        out: list[Rec] = []
        for p in partitions:
            out += kcat_runner.consume(bootstrap, topic, offset=offset, partition=p, timeout=READ_TIMEOUT)
        return out

    def offset_for_time(self, bootstrap, topic, partition, ts):  # fmt: skip
        found = kcat_runner.query_offset(bootstrap, topic, partition, ts)
        return found if found >= 0 else None

    def follow_latest(self, bootstrap, topic, partition):  # fmt: skip
        follower = kcat_runner.Follower(bootstrap, topic, offset="end", partition=partition, count=1000)
        return _KcatFollower(follower)


class _KcatFollower(Follower):
    def __init__(self, follower: kcat_runner.Follower) -> None:
        self.follower = follower

    def poll(self, timeout: float) -> list[Rec]:
        first = self.follower.get(timeout)
        if first is None:
            return []
        out = [first]
        while (more := self.follower.get(0.05)) is not None:
            out.append(more)
        return out

    def close(self) -> None:
        self.follower.close()


# -- kafkajs -----------------------------------------------------------------------------------


class Kafkajs(Driver):
    name = "kafkajs"
    #: kafkajs has no assign(): every read goes through a consumer group.
    can_assign = False

    def version(self) -> str:
        import json

        from compat_tests.clients.tools import NODE_DIR

        package = NODE_DIR / "node_modules" / "kafkajs" / "package.json"
        with contextlib.suppress(OSError):
            return str(json.loads(package.read_text())["version"])
        return "not installed"

    def produce(self, bootstrap, topic, msgs, *, acks="all", compression="none", idempotent=False,
                max_message_bytes=None):  # fmt: skip
        batch = []
        for m in msgs:
            item: dict[str, Any] = {"key": None if m.key is None else m.key.decode()}
            value = m.value.decode()
            if len(value) > 64 * 1024 and value == value[0] * len(value):
                item["valueRepeat"] = [value[0], len(value)]
            else:
                item["value"] = value
            if m.headers:
                item["headers"] = {k: v.decode() for k, v in m.headers}
            if m.timestamp is not None:
                item["timestamp"] = str(m.timestamp)
            if m.partition is not None:
                item["partition"] = m.partition
            batch.append(item)
        result = run_kafkajs(
            {
                "op": "produce",
                "brokers": bootstrap.split(","),
                "topic": topic,
                "acks": {"0": 0, "1": 1, "all": -1}[acks],
                "compression": compression,
                "idempotent": idempotent,
                "batches": [batch],
            }
        )
        for partition_result in result["results"][0]:
            assert partition_result["errorCode"] == 0, partition_result
        return [None] * len(msgs)

    def consume(self, bootstrap, topic, partitions, start=EARLIEST):  # fmt: skip
        raise Unsupported("kafkajs has no assign(): it reads only through a consumer group")

    def offset_for_time(self, bootstrap, topic, partition, ts):  # fmt: skip
        result = run_kafkajs(
            {
                "op": "admin",
                "brokers": bootstrap.split(","),
                "actions": [{"fetchTopicOffsetsByTimestamp": [topic, ts]}],
            }
        )
        for entry in result["results"][0]:
            if entry["partition"] == partition:
                return int(entry["offset"])
        raise AssertionError(f"partition {partition} missing from {result}")

    def follow_latest(self, bootstrap, topic, partition):  # fmt: skip
        raise Unsupported("kafkajs has no assign(): it reads only through a consumer group")


ALL_DRIVERS: list[Driver] = [Confluent(), KafkaPython(), Aiokafka(), Kcat(), Kafkajs()]
BY_NAME = {d.name: d for d in ALL_DRIVERS}
#: The reader used to check what a client that cannot assign (kafkajs) wrote.
REFERENCE = BY_NAME["confluent-kafka"]
