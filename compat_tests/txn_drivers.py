"""Each stock client's transactional API, behind one interface, for compat_tests/test_transactions.py.

A driver runs transactions on partition 0 of a topic (``end`` "commit", "abort", or "open": left
open and abandoned, for the broker's timeout to abort), plays the zombie scenario (a producer
fenced by a successor with the same transactional id, whose next send or commit must fail), and
reads a partition from the start with its own consumer at either isolation level, until a given
value.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from compat_tests.clients.node import run_kafkajs

READ_TIMEOUT = 30.0
#: Kept alive until the test ends: an abandoned producer must not be closed (a closing Java-like
#: client aborts its open transaction itself, which would hide whether the broker's timeout did).
ABANDONED: list[Any] = []


def release_abandoned() -> list[str]:
    """Once the test is over, stop the abandoned producers that run threads of their own; the
    names of the producer threads still running after that (none expected).

    A kafka-python producer's I/O thread outlives its test otherwise (until a garbage collection
    finds the producer): once the broker is gone it keeps reconnecting, drawing its backoff
    jitter from the global ``random``, under whatever runs next; Hypothesis then warns about
    ``random`` used inside strategies in an unrelated property test. confluent-kafka's threads
    are librdkafka's and use no Python ``random``; an aiokafka producer runs nothing once the
    event loop of its test has ended."""
    from kafka import KafkaProducer

    for producer in ABANDONED:
        if isinstance(producer, KafkaProducer):
            producer.close(timeout=10)
    # Looked at while the producers are still referenced (a collection cannot have ended them).
    left = [t.name for t in threading.enumerate() if t.name.startswith("kafka-python-producer")]
    ABANDONED.clear()
    return left


@dataclass(frozen=True)
class Txn:
    values: Sequence[bytes]
    end: str  # "commit" | "abort" | "open"


class TxnDriver:
    name = ""

    def run(
        self, bootstrap: str, topic: str, txn_id: str, txns: Sequence[Txn], timeout_ms: int = 60000
    ) -> None:
        raise NotImplementedError

    def fence(
        self, bootstrap: str, topic: str, txn_id: str, zombie: list[bytes], successor: list[bytes]
    ) -> str:
        """The zombie's error (class name and text), or "" if it was not fenced."""
        raise NotImplementedError

    def read(self, bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
        raise NotImplementedError


def _until_deadline(deadline: float, got: list[bytes], topic: str, isolation: str) -> None:
    if time.monotonic() > deadline:
        raise AssertionError(
            f"{isolation} read of {topic} did not reach its end record in {READ_TIMEOUT} s: {got}"
        )


class ConfluentTxn(TxnDriver):
    name = "confluent-kafka"

    def _producer(self, bootstrap: str, txn_id: str, timeout_ms: int = 60000) -> Any:
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": timeout_ms}
        )
        producer.init_transactions(30)
        return producer

    def _send(self, producer: Any, topic: str, values: Sequence[bytes]) -> None:
        for value in values:
            producer.produce(topic, value=value, partition=0)
        assert producer.flush(30) == 0

    def run(
        self, bootstrap: str, topic: str, txn_id: str, txns: Sequence[Txn], timeout_ms: int = 60000
    ) -> None:
        producer = self._producer(bootstrap, txn_id, timeout_ms)
        for txn in txns:
            producer.begin_transaction()
            self._send(producer, topic, txn.values)
            if txn.end == "commit":
                producer.commit_transaction(30)
            elif txn.end == "abort":
                producer.abort_transaction(30)
            else:
                ABANDONED.append(producer)
                return

    def fence(
        self, bootstrap: str, topic: str, txn_id: str, zombie: list[bytes], successor: list[bytes]
    ) -> str:
        from confluent_kafka import KafkaException

        old = self._producer(bootstrap, txn_id)
        old.begin_transaction()
        self._send(old, topic, zombie)
        new = self._producer(bootstrap, txn_id)
        new.begin_transaction()
        self._send(new, topic, successor)
        new.commit_transaction(30)
        try:
            for value in zombie:
                old.produce(topic, value=value, partition=0)
            old.flush(10)
            old.commit_transaction(30)
        except KafkaException as exc:
            err = exc.args[0]
            return f"{err.name()}: {err.str()} (fatal={err.fatal()})"
        return ""

    def read(self, bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"txn-read-{uuid.uuid4().hex[:8]}",
                "isolation.level": isolation,
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            }
        )
        try:
            consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            got: list[bytes] = []
            deadline = time.monotonic() + READ_TIMEOUT
            while not got or got[-1] != until:
                _until_deadline(deadline, got, topic, isolation)
                for msg in consumer.consume(100, timeout=0.3):
                    value = msg.value()
                    if msg.error() is None and value is not None:
                        got.append(value)
            return got
        finally:
            consumer.close()


class KafkaPythonTxn(TxnDriver):
    name = "kafka-python"

    def _producer(self, bootstrap: str, txn_id: str, timeout_ms: int = 60000) -> Any:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=txn_id, transaction_timeout_ms=timeout_ms
        )
        producer.init_transactions()
        return producer

    def _send(self, producer: Any, topic: str, values: Sequence[bytes]) -> None:
        futures = [producer.send(topic, value=value, partition=0) for value in values]
        producer.flush(30)
        for future in futures:
            future.get(timeout=30)

    def run(
        self, bootstrap: str, topic: str, txn_id: str, txns: Sequence[Txn], timeout_ms: int = 60000
    ) -> None:
        producer = self._producer(bootstrap, txn_id, timeout_ms)
        for txn in txns:
            producer.begin_transaction()
            self._send(producer, topic, txn.values)
            if txn.end == "commit":
                producer.commit_transaction()
            elif txn.end == "abort":
                producer.abort_transaction()
            else:
                ABANDONED.append(producer)
                return
        producer.close(timeout=10)

    def fence(
        self, bootstrap: str, topic: str, txn_id: str, zombie: list[bytes], successor: list[bytes]
    ) -> str:
        from kafka.errors import KafkaError

        old = self._producer(bootstrap, txn_id)
        old.begin_transaction()
        self._send(old, topic, zombie)
        new = self._producer(bootstrap, txn_id)
        new.begin_transaction()
        self._send(new, topic, successor)
        new.commit_transaction()
        new.close(timeout=10)
        try:
            self._send(old, topic, zombie)
            old.commit_transaction()
        except KafkaError as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            ABANDONED.append(old)
        return ""

    def read(self, bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            got: list[bytes] = []
            deadline = time.monotonic() + READ_TIMEOUT
            while not got or got[-1] != until:
                _until_deadline(deadline, got, topic, isolation)
                for records in consumer.poll(timeout_ms=300).values():
                    got += [r.value for r in records]
            return got
        finally:
            consumer.close()


class AiokafkaTxn(TxnDriver):
    name = "aiokafka"

    @staticmethod
    async def _producer(bootstrap: str, txn_id: str, timeout_ms: int = 60000) -> Any:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=txn_id, transaction_timeout_ms=timeout_ms
        )
        await producer.start()
        return producer

    @staticmethod
    async def _send(producer: Any, topic: str, values: Sequence[bytes]) -> None:
        for value in values:
            await producer.send_and_wait(topic, value=value, partition=0)

    def run(
        self, bootstrap: str, topic: str, txn_id: str, txns: Sequence[Txn], timeout_ms: int = 60000
    ) -> None:
        async def go() -> None:
            producer = await self._producer(bootstrap, txn_id, timeout_ms)
            for txn in txns:
                if txn.end == "commit":
                    async with producer.transaction():  # commits on a clean exit
                        await self._send(producer, topic, txn.values)
                elif txn.end == "abort":
                    await producer.begin_transaction()
                    await self._send(producer, topic, txn.values)
                    await producer.abort_transaction()
                else:
                    await producer.begin_transaction()
                    await self._send(producer, topic, txn.values)
                    ABANDONED.append(producer)  # the loop ends under it: no abort is sent
                    return
            await producer.stop()

        asyncio.run(go())

    def fence(
        self, bootstrap: str, topic: str, txn_id: str, zombie: list[bytes], successor: list[bytes]
    ) -> str:
        from aiokafka.errors import KafkaError

        async def go() -> str:
            old = await self._producer(bootstrap, txn_id)
            await old.begin_transaction()
            await self._send(old, topic, zombie)
            new = await self._producer(bootstrap, txn_id)
            async with new.transaction():
                await self._send(new, topic, successor)
            await new.stop()
            try:
                await asyncio.wait_for(self._zombie_goes_on(old, topic, zombie), 30)
            except KafkaError as exc:
                return f"{type(exc).__name__}: {exc}"
            finally:
                ABANDONED.append(old)
            return ""

        return asyncio.run(go())

    async def _zombie_goes_on(self, old: Any, topic: str, zombie: Sequence[bytes]) -> None:
        await self._send(old, topic, zombie)
        await old.commit_transaction()

    def read(self, bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def go() -> list[bytes]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                isolation_level=isolation,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
            )
            await consumer.start()
            try:
                tp = TopicPartition(topic, 0)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                got: list[bytes] = []
                deadline = time.monotonic() + READ_TIMEOUT
                while not got or got[-1] != until:
                    _until_deadline(deadline, got, topic, isolation)
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        got += [r.value for r in records]
                return got
            finally:
                await consumer.stop()

        return asyncio.run(go())


class KafkajsTxn(TxnDriver):
    name = "kafkajs"

    def run(
        self, bootstrap: str, topic: str, txn_id: str, txns: Sequence[Txn], timeout_ms: int = 60000
    ) -> None:
        run_kafkajs(
            {
                "op": "transactions",
                "brokers": [bootstrap],
                "topic": topic,
                "transactionalId": txn_id,
                "transactionTimeout": timeout_ms,
                "transactions": [
                    {"messages": [{"value": v.decode(), "partition": 0} for v in t.values], "end": t.end}
                    for t in txns
                ],
            }
        )

    def fence(
        self, bootstrap: str, topic: str, txn_id: str, zombie: list[bytes], successor: list[bytes]
    ) -> str:
        result = run_kafkajs(
            {
                "op": "fence",
                "brokers": [bootstrap],
                "topic": topic,
                "transactionalId": txn_id,
                "zombie": [{"value": v.decode(), "partition": 0} for v in zombie],
                "successor": [{"value": v.decode(), "partition": 0} for v in successor],
            }
        )
        error = result["zombieError"]
        return "" if error is None else f"{error['name']} {error['type']}: {error['message']}"

    def read(self, bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
        result = run_kafkajs(
            {
                "op": "consume",
                "brokers": [bootstrap],
                "topic": topic,
                "groupId": f"txn-read-{uuid.uuid4().hex[:8]}",
                "fromBeginning": True,
                "readUncommitted": isolation == "read_uncommitted",
                "untilValue": until.decode(),
                "count": 1_000_000,
                "timeoutMs": int(READ_TIMEOUT * 1000),
            }
        )
        got = [m["value"].encode() for m in result["messages"]]
        if not got or got[-1] != until:
            raise AssertionError(f"kafkajs {isolation} read of {topic} did not reach its end record: {got}")
        return got


DRIVERS: list[TxnDriver] = [ConfluentTxn(), KafkaPythonTxn(), AiokafkaTxn(), KafkajsTxn()]
