"""The data plane with each stock client, unchanged, against a real broker process.

Every test runs once per client (confluent-kafka, kafka-python, aiokafka, kcat, kafkajs): produce
and consume with acks 0/1/all; keys land on the partition the client's own partitioner chooses
(computed here independently); headers and timestamps round-trip; gzip, snappy, lz4 and zstd
(checked in the segment files too); a message close to 1 MB; consuming from earliest, latest and
by timestamp. kafkajs has no assign(), so what it writes is read back with confluent-kafka here;
its own reading is tested through a consumer group in test_kafkajs_groups.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from compat_tests.clients.admin import create_topic, unique_topic, wait_for_total
from compat_tests.clients.drivers import ALL_DRIVERS, REFERENCE, Driver, Unsupported
from compat_tests.clients.logfiles import batches
from compat_tests.clients.model import EARLIEST, AtTimestamp, Msg, Rec
from compat_tests.clients.partitioners import java_partition, librdkafka_partition
from compat_tests.clients.raw import FIND_COORDINATOR, advertises
from compat_tests.harness import BrokerProcess

DRIVERS = [pytest.param(d, id=d.name) for d in ALL_DRIVERS]
CODECS = ["gzip", "snappy", "lz4", "zstd"]
#: A little under the broker's max.message.bytes (1048588): the batch around it must fit too.
NEAR_1MB = 1_040_000


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


def read_back(
    driver: Driver, bootstrap: str, topic: str, partitions: int, start: object = EARLIEST
) -> list[Rec]:
    """Read with the client itself, or with the reference reader when it cannot assign."""
    reader = driver if driver.can_assign else REFERENCE
    return reader.consume(bootstrap, topic, list(range(partitions)), start)  # type: ignore[arg-type]


def values(records: list[Rec]) -> list[bytes | None]:
    return [r.value for r in records]


# -- acks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("acks", ["0", "1", "all"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_produce_and_consume_with_acks(driver: Driver, acks: str, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic(f"acks{acks}"), partitions=2)
    msgs = [Msg(f"{driver.name}/acks={acks}/{i}".encode(), key=f"k{i}".encode()) for i in range(20)]
    reported = driver.produce(bootstrap, topic, msgs, acks=acks)
    wait_for_total(bootstrap, topic, 2, len(msgs))
    records = read_back(driver, bootstrap, topic, 2)

    assert Counter(values(records)) == Counter(m.value for m in msgs), "each message exactly once"
    by_value = {r.value: r for r in records}
    for msg, ack in zip(msgs, reported, strict=True):
        if ack is not None and ack.offset is not None:
            assert acks != "0", "acks=0 cannot report an offset"
            where = by_value[msg.value]
            assert (where.partition, where.offset) == (ack.partition, ack.offset)
    for p in range(2):
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == sorted(offsets) == list(range(len(offsets))), f"partition {p}: gap or disorder"


def test_acks_all_needs_min_insync_replicas(bootstrap: str) -> None:
    """min.insync.replicas=2 with one replica: acks=all is refused (NOT_ENOUGH_REPLICAS), acks=1
    is not, as in Kafka."""
    from confluent_kafka import KafkaError, Producer

    topic = create_topic(bootstrap, unique_topic("misr"), partitions=1, configs={"min.insync.replicas": "2"})
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "message.timeout.ms": 5000}
    )
    reports: list[object] = []
    producer.produce(topic, b"x", on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(10) == 0
    (err,) = reports
    assert isinstance(err, KafkaError) and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    (ack,) = REFERENCE.produce(bootstrap, topic, [Msg(b"y", partition=0)], acks="1")
    assert ack is not None and ack.offset == 0
    assert [r.value for r in REFERENCE.consume(bootstrap, topic, [0])] == [b"y"]


# -- partitioner ---------------------------------------------------------------------------------


def test_partitioners_disagree() -> None:
    """The key test below can tell the two partitioners apart (and a broker that moved records)."""
    keys = [f"key-{i}".encode() for i in range(40)]
    assert sum(java_partition(k, 6) != librdkafka_partition(k, 6) for k in keys) > 20


@pytest.mark.parametrize("driver", DRIVERS)
def test_keys_land_on_the_clients_partition(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("keys"), partitions=6)
    keys = [f"key-{i}".encode() for i in range(40)]
    msgs = [Msg(b"value-of-" + k, key=k) for k in keys]
    driver.produce(bootstrap, topic, msgs, acks="all")
    wait_for_total(bootstrap, topic, 6, len(msgs))
    records = read_back(driver, bootstrap, topic, 6)

    choose = java_partition if driver.partitioner == "murmur2" else librdkafka_partition
    found: dict[bytes, list[int]] = {}
    for r in records:
        assert r.key is not None
        found.setdefault(r.key, []).append(r.partition)
    assert sorted(found) == sorted(keys)
    wrong = {k: (p, choose(k, 6)) for k, p in found.items() if p != [choose(k, 6)]}
    assert not wrong, f"key -> (partitions found, expected by {driver.partitioner}): {wrong}"
    assert len({p for ps in found.values() for p in ps}) == 6, "40 keys should cover all 6 partitions"


# -- headers and timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_headers_and_timestamps_round_trip(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("hdr"), partitions=1)
    base = 1_600_000_000_000
    msgs = [
        Msg(
            f"m{i}".encode(),
            key=f"k{i}".encode(),
            headers=(("trace-id", f"t-{i}".encode()), ("origin", driver.name.encode())),
            # Not monotonic: a broker must keep CreateTime as the client set it.
            timestamp=(base + (i * 7919) % 10_000) if driver.sets_timestamps else None,
            partition=0,
        )
        for i in range(8)
    ]
    before = int(time.time() * 1000)
    driver.produce(bootstrap, topic, msgs, acks="all")
    after = int(time.time() * 1000)
    records = read_back(driver, bootstrap, topic, 1)

    assert [r.value for r in records] == [m.value for m in msgs]
    for msg, rec in zip(msgs, records, strict=True):
        assert rec.key == msg.key
        assert rec.headers == msg.headers, f"headers of {msg.value!r}"
        if msg.timestamp is not None:
            assert rec.timestamp == msg.timestamp
        else:  # the client stamps the record itself (CreateTime)
            assert before - 1000 <= rec.timestamp <= after + 1000
    # A second reader sees the same headers (nothing depends on the writer's own decoder).
    if driver is not REFERENCE:
        again = REFERENCE.consume(bootstrap, topic, [0])
        assert [(r.headers, r.timestamp) for r in again] == [(r.headers, r.timestamp) for r in records]


@pytest.mark.parametrize("driver", [pytest.param(d, id=d.name) for d in ALL_DRIVERS if d.sets_timestamps])
def test_log_append_time_replaces_the_clients_timestamp(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(
        bootstrap, unique_topic("lat"), partitions=1, configs={"message.timestamp.type": "LogAppendTime"}
    )
    before = int(time.time() * 1000)
    driver.produce(bootstrap, topic, [Msg(b"x", timestamp=1_000_000_000_000, partition=0)], acks="all")
    after = int(time.time() * 1000)
    (rec,) = read_back(driver, bootstrap, topic, 1)
    assert before - 1000 <= rec.timestamp <= after + 1000, rec.timestamp


# -- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("driver", DRIVERS)
def test_compression(driver: Driver, codec: str, broker: BrokerProcess, bootstrap: str) -> None:
    if codec == "lz4" and driver.partitioner == "crc32" and not advertises(bootstrap, FIND_COORDINATOR):
        # librdkafka's LZ4 feature depends on FindCoordinator v0 (rdkafka_feature.c: "GroupCoordinator
        # was released in 0.8.2"); without it librdkafka silently sends lz4 batches uncompressed.
        pytest.skip("librdkafka uses lz4 only when the broker advertises FindCoordinator (not yet)")
    topic = create_topic(bootstrap, unique_topic(codec), partitions=1)
    # Compressible values, large enough that no client falls back to sending them uncompressed.
    msgs = [Msg((f"{codec} record {i} " * 40).encode(), key=f"k{i}".encode(), partition=0) for i in range(50)]
    driver.produce(bootstrap, topic, msgs, acks="all", compression=codec)
    wait_for_total(bootstrap, topic, 1, len(msgs))
    records = read_back(driver, bootstrap, topic, 1)
    assert values(records) == [m.value for m in msgs]

    stored = batches(broker.data_dir / f"{topic}-0")
    assert stored, "no batch in the segment files"
    assert {b.compression for b in stored} == {codec}, f"stored batches: {stored}"
    assert sum(b.count for b in stored) == len(msgs)
    # Another client decodes what this one compressed.
    if driver is not REFERENCE:
        assert values(REFERENCE.consume(bootstrap, topic, [0])) == [m.value for m in msgs]


# -- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_message_close_to_1mb(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("big"), partitions=1)
    # kafkajs gets it as a repeat count rather than 1 MB of JSON.
    big = b"z" * NEAR_1MB if driver.name == "kafkajs" else os.urandom(NEAR_1MB // 2).hex().encode()
    msgs = [
        Msg(b"small-before", partition=0),
        Msg(big, key=b"big", partition=0),
        Msg(b"small-after", partition=0),
    ]
    driver.produce(bootstrap, topic, msgs, acks="all", max_message_bytes=1048588)
    records = read_back(driver, bootstrap, topic, 1)
    assert [r.offset for r in records] == [0, 1, 2]
    assert records[0].value == b"small-before" and records[2].value == b"small-after"
    assert records[1].value is not None and len(records[1].value) == NEAR_1MB
    assert hashlib.sha256(records[1].value).digest() == hashlib.sha256(big).digest()


def test_message_over_max_message_bytes_is_refused(bootstrap: str) -> None:
    """The broker, not only the client, enforces max.message.bytes (MESSAGE_TOO_LARGE)."""
    from confluent_kafka import KafkaError, KafkaException

    topic = create_topic(
        bootstrap, unique_topic("toobig"), partitions=1, configs={"max.message.bytes": "20000"}
    )
    with pytest.raises(KafkaException) as info:
        REFERENCE.produce(bootstrap, topic, [Msg(os.urandom(30000), partition=0)], acks="all")
    assert info.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert REFERENCE.consume(bootstrap, topic, [0]) == []


# -- where reading starts ------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_consume_from_earliest_latest_and_timestamp(driver: Driver, bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_topic("pos"), partitions=1)
    t0 = 1_650_000_000_000
    old = [Msg(f"old-{i}".encode(), timestamp=t0 + i * 1000, partition=0) for i in range(10)]
    REFERENCE.produce(bootstrap, topic, old, acks="all")

    # By timestamp: the first record at or after the time.
    assert driver.offset_for_time(bootstrap, topic, 0, t0 + 4500) == 5
    assert driver.offset_for_time(bootstrap, topic, 0, t0) == 0
    after_all = driver.offset_for_time(bootstrap, topic, 0, t0 + 60_000)
    # Kafka answers -1 (no such record); kafkajs turns that into the log end offset itself.
    assert after_all == (10 if driver.name == "kafkajs" else None)
    if not driver.can_assign:
        return  # earliest/latest through a consumer group: test_kafkajs_groups.py
    assert values(driver.consume(bootstrap, topic, [0], AtTimestamp(t0 + 4500))) == [m.value for m in old[5:]]

    # Earliest.
    assert values(driver.consume(bootstrap, topic, [0], EARLIEST)) == [m.value for m in old]

    # Latest: nothing old arrives; records produced after the reader started do, in order.
    follower = driver.follow_latest(bootstrap, topic, 0)
    got: list[Rec] = []
    sent = 0
    try:
        deadline = time.monotonic() + 30
        while len(got) < 3:
            assert time.monotonic() < deadline, f"nothing new read from latest; got {got}"
            REFERENCE.produce(bootstrap, topic, [Msg(f"new-{sent}".encode(), partition=0)], acks="all")
            sent += 1
            got += follower.poll(0.5)
        got += follower.poll(0.2)
    finally:
        follower.close()
    names = [r.value.decode() for r in got if r.value is not None]
    assert all(n.startswith("new-") for n in names), names
    first = int(names[0].split("-")[1])
    assert names == [f"new-{i}" for i in range(first, first + len(names))], "in order, no gap"
    assert got[0].offset == 10 + first


def test_unsupported_cases_are_declared() -> None:
    """Capability flags match the drivers (so no test silently does less than it says)."""
    kcat = next(d for d in ALL_DRIVERS if d.name == "kcat")
    with pytest.raises(Unsupported):
        kcat.produce("127.0.0.1:1", "t", [Msg(b"x", timestamp=1)])
    kafkajs = next(d for d in ALL_DRIVERS if d.name == "kafkajs")
    assert not kafkajs.can_assign


# -- long poll -----------------------------------------------------------------------------------


def test_waiting_fetch_is_answered_when_data_arrives(bootstrap: str) -> None:
    """Consumers that wait up to 10 s in Fetch (fetch.wait.max.ms / fetch_max_wait_ms) get a
    record well before that: the append wakes the long poll."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    topic = create_topic(bootstrap, unique_topic("poll"), partitions=1)
    confluent = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic("poll"),
            "fetch.wait.max.ms": 10000,
            "fetch.min.bytes": 1,
            "enable.auto.commit": False,
        }
    )
    kafka_python = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=10000)
    try:
        confluent.assign([TopicPartition(topic, 0, 0)])
        kafka_python.assign([KTopicPartition(topic, 0)])
        kafka_python.seek(KTopicPartition(topic, 0), 0)
        # Both are now parked in a Fetch that the broker holds for up to 10 s.
        assert confluent.poll(1.0) is None
        assert kafka_python.poll(timeout_ms=1000) == {}
        REFERENCE.produce(bootstrap, topic, [Msg(b"wake up", partition=0)], acks="all")
        sent = time.monotonic()
        message = confluent.poll(8.0)
        assert message is not None and message.error() is None and message.value() == b"wake up"
        assert time.monotonic() - sent < 5, "confluent-kafka's fetch was not woken by the append"
        got = kafka_python.poll(timeout_ms=8000)
        assert [r.value for rs in got.values() for r in rs] == [b"wake up"]
        assert time.monotonic() - sent < 5, "kafka-python's fetch was not woken by the append"
    finally:
        confluent.close()
        kafka_python.close()
