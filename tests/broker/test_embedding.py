"""The embedding API: a real broker inside the test process, and what it leaves of the host."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import broker
from broker.admin_client import AdminError, KafkaAdmin
from broker.config import ConfigError
from broker.embedding import EmbeddedBroker, normalise_overrides
from broker.healthcheck import check
from protocol.error_codes import ErrorCode

TIMEOUT = 20.0



def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}

def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(TIMEOUT) == 0


def consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        for _ in range(200):
            if len(got) >= count:
                break
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                got.append(message.value() or b"")
        return got
    finally:
        consumer.close()


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """The first event loop of a process (libuv's one pipe) and the lazy imports happen once:
    the leak checks below compare after that."""
    with broker.embedded():
        pass


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    b = broker.embedded().start()
    try:
        yield b
    finally:
        b.stop()


def test_serves_on_a_loopback_port_and_removes_its_temporary_data() -> None:
    b = broker.embedded()
    assert not b.running
    with b:
        host, _, port = b.bootstrap_servers.rpartition(":")
        assert host == "127.0.0.1" and int(port) == b.port > 0
        assert check(host, b.port, timeout=TIMEOUT)
        data = b.data_dir
        assert (data / "meta.properties").exists()
    assert not b.running
    assert not data.exists()
    assert not check(host, int(port), timeout=1.0)


def test_given_log_dirs_are_kept(tmp_path: Path) -> None:
    with broker.embedded(log_dirs=tmp_path / "data") as b:
        assert b.data_dir == tmp_path / "data"
        KafkaAdmin(b.bootstrap_servers).create_topic("kept")
    assert (tmp_path / "data" / "kept-0").is_dir()
    assert (tmp_path / "data" / ".kafka_cleanshutdown").exists()


def test_keyword_and_dict_overrides_are_applied() -> None:
    with broker.embedded({"auto.create.topics.enable": False}, num_partitions=3) as b:
        assert b.config.get("num.partitions") == 3
        assert b.config.get("auto.create.topics.enable") is False
        with KafkaAdmin(b.bootstrap_servers) as admin:
            admin.create_topic("defaulted", partitions=-1, replication_factor=-1)
            assert admin.describe_topic("defaulted").partitions == 3
            with pytest.raises(AdminError) as missing:
                admin.describe_topic("never-created")
            assert missing.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize(
    ("overrides", "keywords", "name"),
    [
        ({}, {"num_partition": 3}, "num.partition"),
        ({"no.such.key": "1"}, {}, "no.such.key"),
        ({}, {"num_partitions": "three"}, "num.partitions"),
        ({}, {"num_partitions": 0}, "num.partitions"),
    ],
)
def test_unknown_or_invalid_keys_raise_config_error(
    overrides: dict[str, str], keywords: dict[str, object], name: str
) -> None:
    threads = threading.active_count()
    with pytest.raises(ConfigError) as error:
        broker.embedded(overrides, **keywords)  # type: ignore[arg-type]
    assert error.value.name == name
    assert threading.active_count() == threads


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}(_[a-z]{1,8}){0,3}", fullmatch=True),
        st.one_of(st.integers(), st.booleans(), st.text(max_size=10)),
        max_size=5,
    )
)
def test_keywords_read_underscores_as_dots(keywords: dict[str, object]) -> None:
    result = normalise_overrides(None, keywords)  # type: ignore[arg-type]
    assert set(result) == {k.replace("_", ".") for k in keywords}
    for key, value in keywords.items():
        expected = ("true" if value else "false") if isinstance(value, bool) else str(value)
        assert result[key.replace("_", ".")] == expected


def test_restart_keeps_data_and_port(kafka: EmbeddedBroker) -> None:
    port, data = kafka.port, kafka.data_dir
    KafkaAdmin(kafka.bootstrap_servers).create_topic("survives")
    produce(kafka.bootstrap_servers, "survives", [b"a", b"b"])
    kafka.restart()
    assert (kafka.port, kafka.data_dir) == (port, data)
    assert consume(kafka.bootstrap_servers, "survives", 2) == [b"a", b"b"]


def test_kill_leaves_an_unclean_log_that_the_next_start_recovers(kafka: EmbeddedBroker) -> None:
    data = kafka.data_dir
    KafkaAdmin(kafka.bootstrap_servers).create_topic("crashy")
    values = [f"v{i}".encode() for i in range(50)]
    produce(kafka.bootstrap_servers, "crashy", values)
    kafka.kill()
    assert not kafka.running
    assert not (data / ".kafka_cleanshutdown").exists()
    # No producer snapshot at the log end either: a clean close writes one.
    assert not list((data / "crashy-0").glob("*.snapshot"))
    kafka.start()
    assert kafka.data_dir == data
    assert consume(kafka.bootstrap_servers, "crashy", 50) == values


def test_a_stopped_broker_leaves_no_thread_descriptor_or_frozen_object() -> None:
    # Alive threads only: a worker of an earlier test may still be listed while it exits.
    threads, fds, frozen = live_threads(), open_fds(), gc.get_freeze_count()
    for _ in range(3):
        with broker.embedded() as b:
            KafkaAdmin(b.bootstrap_servers).create_topic("t")
            produce(b.bootstrap_servers, "t", [b"x"])
            b.restart()
            b.kill()
            b.start()
        assert not b.running
    gc.collect()  # the clients' sockets, if any are left to the collector
    # None of its own left (a disk worker of an earlier kill()ed broker may finish meanwhile).
    assert live_threads() <= threads
    assert open_fds() == fds
    assert gc.get_freeze_count() == frozen


def test_no_signal_handler_and_no_logging_configuration_in_the_host() -> None:
    signals = {
        s: signal.getsignal(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
    }
    root = logging.getLogger()
    before = (root.level, list(root.handlers), list(logging.getLogger("broker").handlers))
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    with broker.embedded():
        assert {s: signal.getsignal(s) for s in signals} == signals
        assert signal.set_wakeup_fd(wakeup) == wakeup
        assert (root.level, list(root.handlers), list(logging.getLogger("broker").handlers)) == before
    assert {s: signal.getsignal(s) for s in signals} == signals
    assert (root.level, list(root.handlers)) == before[:2]


def test_a_port_in_use_fails_the_start_and_leaves_nothing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        threads = set(threading.enumerate())
        b = broker.embedded(listeners=f"PLAINTEXT://127.0.0.1:{port}")
        with pytest.raises(OSError):
            b.start()
        assert not b.running
        assert set(threading.enumerate()) == threads
        with pytest.raises(RuntimeError, match="not started"):
            b.data_dir  # noqa: B018 - the temporary directory is gone


def test_start_twice_is_refused(kafka: EmbeddedBroker) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        kafka.start()


def test_asyncio_variant_serves_aiokafka_without_blocking_the_loop() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

    async def main() -> list[bytes]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        async with broker.embedded_async(num_partitions=1) as b:
            started_ticks = ticks
            producer = AIOKafkaProducer(bootstrap_servers=b.bootstrap_servers)
            await producer.start()
            try:
                await producer.send_and_wait("aio", b"one")
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(bootstrap_servers=b.bootstrap_servers, enable_auto_commit=False)
            await consumer.start()
            try:
                consumer.assign([TopicPartition("aio", 0)])
                consumer.seek(TopicPartition("aio", 0), 0)
                message = await asyncio.wait_for(consumer.getone(), TIMEOUT)
            finally:
                await consumer.stop()
            await b.arestart()
            assert b.running
        tick_task.cancel()
        # The caller's loop kept running while the broker started in its own thread.
        assert started_ticks > 0
        return [message.value]

    assert asyncio.run(main()) == [b"one"]


def test_admin_client_reports_kafka_errors(kafka: EmbeddedBroker) -> None:
    with KafkaAdmin(kafka.bootstrap_servers) as admin:
        admin.create_topic("twice", partitions=2, config={"retention.ms": 1000})
        assert admin.topic_config("twice")["retention.ms"] == "1000"
        assert "twice" in admin.list_topics()
        with pytest.raises(AdminError) as exists:
            admin.create_topic("twice")
        assert exists.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
        with pytest.raises(AdminError) as invalid:
            admin.create_topic("bad-config", config={"cleanup.policy": "sideways"})
        assert invalid.value.code == ErrorCode.INVALID_CONFIG
        admin.delete_topic("twice")
        assert "twice" not in admin.list_topics()
        with pytest.raises(AdminError) as unknown:
            admin.delete_topic("twice")
        assert unknown.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_config_names_the_real_data_directory_once_started(kafka: EmbeddedBroker) -> None:
    assert kafka.config.log_dirs == [kafka.data_dir]


def _fsyncs_during_start_and_topic_creation(monkeypatch: pytest.MonkeyPatch, b: EmbeddedBroker) -> int:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    with b, KafkaAdmin(b.bootstrap_servers) as admin:
        admin.create_topic("synced-or-not", partitions=2)
    monkeypatch.setattr(os, "fsync", real)
    return len(calls)


def test_temporary_data_is_never_fsynced(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _fsyncs_during_start_and_topic_creation(monkeypatch, broker.embedded()) == 0


def test_given_log_dirs_are_fsynced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # meta.properties, the topic's files and directories, the metadata document, the clean stop.
    b = broker.embedded(log_dirs=str(tmp_path / "data"))
    assert _fsyncs_during_start_and_topic_creation(monkeypatch, b) > 0
