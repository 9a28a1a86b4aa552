"""Znode JSON: golden bytes as Kafka 3.9 writes them, and round trips over generated values.

The golden strings are derived from core/src/main/scala/kafka/zk/ZkData.scala (branch 3.9; the
line of each encoder is cited) and the JVM map order of the collection it builds.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.zk import data
from broker.cluster.zk.jvm_order import (
    java_hash_order,
    java_string_hash,
    scala_immutable_order,
    scala_mutable_order,
)

TOPIC_ID = uuid.UUID("8b4c1a36-0d4c-4f0b-9a5e-2f3f1c6c7d01")


# -- golden bytes ------------------------------------------------------------------------------


def test_cluster_id_golden() -> None:
    # ZkData.scala:800 Map("version" -> "1", "id" -> id): a Map2, the version a string.
    assert data.encode_cluster_id("5ZrGrAQGQ8W3l3RgN0Xjtg") == (
        b'{"version":"1","id":"5ZrGrAQGQ8W3l3RgN0Xjtg"}'
    )
    assert data.decode_cluster_id(b'{"version":"1","id":"abc"}') == "abc"


def test_controller_golden() -> None:
    # ZkData.scala:61 a Map4 (insertion order), timestamp as a string.
    reg = data.ControllerRegistration(2, 1700000000123)
    assert data.encode_controller(reg) == (
        b'{"version":2,"brokerid":2,"timestamp":"1700000000123","kraftControllerEpoch":-1}'
    )
    # Kafka 2.x wrote version 1 without kraftControllerEpoch: still readable.
    old = data.decode_controller(b'{"version":1,"brokerid":101,"timestamp":"1614570663255"}')
    assert old == data.ControllerRegistration(101, 1614570663255, -1)


def test_controller_epoch_golden() -> None:
    # ZkData.scala:87 the epoch as decimal text.
    assert data.encode_controller_epoch(17) == b"17"
    assert data.decode_controller_epoch(b"17") == 17
    with pytest.raises(data.ZkDataError):
        data.decode_controller_epoch(b"x")


def test_broker_golden_single_plaintext_listener() -> None:
    # ZkData.scala:155 mutable.Map of 6 (a 16-bucket HashMap), then listener map and features.
    reg = data.BrokerRegistration(
        0,
        (data.Endpoint("PLAINTEXT", "localhost", 9092, "PLAINTEXT"),),
        timestamp_ms=1700000000000,
    )
    assert data.encode_broker(reg) == (
        b'{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},'
        b'"endpoints":["PLAINTEXT://localhost:9092"],"jmx_port":-1,"port":9092,'
        b'"host":"localhost","version":5,"timestamp":"1700000000000"}'
    )


def test_broker_golden_two_listeners_rack_ipv6() -> None:
    reg = data.BrokerRegistration(
        3,
        (
            data.Endpoint("INTERNAL", "10.0.0.3", 9093, "PLAINTEXT"),
            data.Endpoint("EXTERNAL", "::1", 9094, "SSL"),
        ),
        rack="rack-a",
        timestamp_ms=1,
    )
    assert data.encode_broker(reg) == (
        b'{"features":{},"listener_security_protocol_map":{"INTERNAL":"PLAINTEXT",'
        b'"EXTERNAL":"SSL"},"endpoints":["INTERNAL://10.0.0.3:9093","EXTERNAL://[::1]:9094"],'
        b'"rack":"rack-a","jmx_port":-1,"port":9093,"host":"10.0.0.3","version":5,'
        b'"timestamp":"1"}'
    )


def test_broker_without_plaintext_has_null_host() -> None:
    # BrokerIdZNode.encode(brokerInfo): no PLAINTEXT endpoint -> EndPoint(null, -1, ...)
    reg = data.BrokerRegistration(1, (data.Endpoint("SECURE", "h", 9093, "SSL"),), timestamp_ms=5)
    obj = json.loads(data.encode_broker(reg))
    assert obj["host"] is None and obj["port"] == -1


def test_broker_decodes_kafka_v4_registration() -> None:
    # A Kafka 2.x registration (version 4, Scala 2.12 key order) read as Kafka does.
    raw = (
        b'{"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":'
        b'["PLAINTEXT://zjj101:9092"],"jmx_port":-1,"host":"zjj101","timestamp":"1614570663881",'
        b'"port":9092,"version":4}'
    )
    reg = data.decode_broker(101, raw)
    assert reg.endpoints == (data.Endpoint("PLAINTEXT", "zjj101", 9092, "PLAINTEXT"),)
    assert reg.version == 4 and reg.timestamp_ms == 1614570663881 and reg.rack is None


def test_topic_golden() -> None:
    # ZkData.scala:315 mutable.Map of 4 (8 buckets) += topic_id; partition maps built with +=.
    assignment = data.TopicAssignment(TOPIC_ID, {0: [1, 2, 3], 1: [2, 3, 1]})
    assert data.encode_topic(assignment) == (
        b'{"partitions":{"0":[1,2,3],"1":[2,3,1]},"topic_id":"i0waNg1MTwuaXi8_HGx9AQ",'
        b'"adding_replicas":{},"removing_replicas":{},"version":3}'
    )


def test_topic_golden_partition_order_past_a_resize() -> None:
    # By hand: "0".."9" hash to 48..57, "10" to 1567, "11" to 1568 (h ^ h>>>16 changes nothing).
    # The twelfth put grows the 16-bucket map to 32: buckets "11"->0, "0".."9"->16..25, "10"->31.
    assignment = data.TopicAssignment(None, {p: [0] for p in range(12)})
    partitions = json.loads(data.encode_topic(assignment))["partitions"]
    assert list(partitions) == ["11", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    # Eleven stay in 16 buckets: "0".."9" -> 0..9, "10" -> 15.
    assignment = data.TopicAssignment(None, {p: [0] for p in range(11)})
    partitions = json.loads(data.encode_topic(assignment))["partitions"]
    assert list(partitions) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]


def test_topic_with_reassignment_in_progress() -> None:
    assignment = data.TopicAssignment(
        None, {0: [1, 2, 4]}, adding_replicas={0: [4]}, removing_replicas={0: [3], 1: []}
    )
    assert data.encode_topic(assignment) == (
        b'{"partitions":{"0":[1,2,4]},"adding_replicas":{"0":[4]},"removing_replicas":{"0":[3]},"version":3}'
    )


def test_partition_state_golden() -> None:
    # ZkData.scala:382 an immutable Map of 5 (a CHAMP trie): the order every Kafka dump shows.
    state = data.PartitionState(leader=1, leader_epoch=0, isr=(1, 2, 3), controller_epoch=1)
    assert data.encode_partition_state(state) == (
        b'{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2,3]}'
    )
    recovering = data.PartitionState(2, 5, (2,), 3, data.LEADER_RECOVERING)
    assert data.encode_partition_state(recovering) == (
        b'{"controller_epoch":3,"leader":2,"version":1,"leader_recovery_state":1,"leader_epoch":5,"isr":[2]}'
    )


def test_config_golden() -> None:
    # ZkData.scala:424 Map2 with a Properties (a ConcurrentHashMap inside, since Java 9).
    assert data.encode_config({"retention.ms": "1000", "cleanup.policy": "compact"}) == (
        b'{"version":1,"config":{"cleanup.policy":"compact","retention.ms":"1000"}}'
    )
    assert data.decode_config(b'{"version":1,"config":{}}') == {}
    assert data.decode_config(b"") == {}


def test_config_change_golden() -> None:
    # ZkData.scala:446
    assert data.encode_config_change("topics/t1") == b'{"version":2,"entity_path":"topics/t1"}'
    assert data.decode_config_change(b'{"version":2,"entity_path":"brokers/<default>"}') == (
        "brokers/<default>"
    )
    assert data.decode_config_change(b'{"version":1,"entity_type":"topics","entity_name":"t"}') == "topics/t"


def test_isr_change_and_preferred_election_golden() -> None:
    # ZkData.scala:457 and :551
    expected = b'{"version":1,"partitions":[{"topic":"t","partition":0}]}'
    assert data.encode_isr_change([("t", 0)]) == expected
    assert data.encode_preferred_replica_election([("t", 0)]) == expected
    assert data.decode_isr_change(expected) == {("t", 0)}


def test_reassignment_golden() -> None:
    # ZkData.scala:532 LegacyPartitionAssignment beans, in declaration order.
    raw = data.encode_reassignment({("t", 1): [3, 1]})
    assert raw == b'{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[3,1]}]}'
    # kafka-reassign-partitions' files carry log_dirs too: read, ignored.
    with_dirs = (
        b'{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[3,1],"log_dirs":["any","any"]}]}'
    )
    assert data.decode_reassignment(with_dirs) == {("t", 1): [3, 1]}


def test_log_dir_event_golden() -> None:
    # ZkData.scala:484
    assert data.encode_log_dir_event(4) == b'{"version":1,"broker":4,"event":1}'
    assert data.decode_log_dir_event(b'{"version":1,"broker":4,"event":1}') == 4


def test_producer_id_block_golden() -> None:
    # ZkData.scala:820 ids as strings; a block of 1000.
    block = data.ProducerIdBlock(1, 2000)
    assert data.encode_producer_id_block(block) == (
        b'{"version":1,"broker":1,"block_start":"2000","block_end":"2999"}'
    )
    assert data.decode_producer_id_block(data.encode_producer_id_block(block)) == block


def test_feature_golden() -> None:
    # ZkData.scala:960 mutable.Map of 3 (8 buckets).
    assert data.encode_feature(data.FeatureZNode(True)) == b'{"features":{},"version":2,"status":1}'
    node = data.FeatureZNode(True, {"metadata.version": 7})
    assert data.decode_feature(data.encode_feature(node)) == node


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"leader":"x","leader_epoch":0,"isr":[],"controller_epoch":1}',
        b'{"leader":1,"leader_epoch":0,"isr":[true],"controller_epoch":1}',
        b'{"leader":1,"leader_epoch":0,"isr":[1],"controller_epoch":1,"leader_recovery_state":7}',
        b"\xff\xfe",
    ],
)
def test_bad_partition_state_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(data.ZkDataError):
        data.decode_partition_state(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"version":5}',
        b'{"version":5,"jmx_port":-1,"endpoints":["nope"]}',
        b'{"version":5,"jmx_port":-1,"endpoints":["PLAINTEXT://h:port"]}',
        b'{"version":0,"jmx_port":-1}',
    ],
)
def test_bad_broker_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(data.ZkDataError):
        data.decode_broker(1, raw)


# -- JVM order ---------------------------------------------------------------------------------


def test_java_string_hash_matches_java() -> None:
    # Values of String.hashCode from the JDK documentation's formula, checked by hand.
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -2147483648
    assert java_string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00  # two UTF-16 code units


names = st.text(min_size=0, max_size=12)


@given(st.lists(names, max_size=40))
def test_orders_are_permutations(keys: list[str]) -> None:
    unique = list(dict.fromkeys(keys))
    for order in (
        scala_mutable_order(unique),
        scala_mutable_order(unique, known_size=max(1, len(unique))),
        scala_immutable_order(unique),
        java_hash_order(unique),
        java_hash_order(unique, concurrent=True),
    ):
        assert sorted(order) == sorted(unique)


@given(st.lists(names, max_size=30, unique=True))
def test_hash_orders_do_not_depend_on_insertion_order_without_collisions(keys: list[str]) -> None:
    hashes = [java_string_hash(k) for k in keys]
    if len(set(hashes)) != len(hashes):
        return
    assert scala_mutable_order(keys) == scala_mutable_order(list(reversed(keys)))
    if len(keys) > 4:
        assert scala_immutable_order(keys) == scala_immutable_order(list(reversed(keys)))


# -- round trips -------------------------------------------------------------------------------

ints = st.integers(min_value=-1, max_value=2**31 - 1)
broker_ids = st.integers(min_value=0, max_value=2**31 - 1)
texts = st.text(min_size=1, max_size=20)
hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.just("::1"),
    st.just("fe80::1"),
)
listener_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True)
replica_lists = st.lists(broker_ids, max_size=5)


@st.composite
def broker_registrations(draw: st.DrawFn) -> data.BrokerRegistration:
    listeners = draw(st.lists(listener_names, min_size=1, max_size=6, unique=True))
    endpoints = tuple(
        data.Endpoint(
            name,
            draw(hosts),
            draw(st.integers(0, 65535)),
            draw(st.sampled_from(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])),
        )
        for name in listeners
    )
    return data.BrokerRegistration(
        draw(broker_ids),
        endpoints,
        draw(st.one_of(st.none(), texts)),
        draw(ints),
        draw(st.integers(0, 2**62)),
        5,
        draw(
            st.dictionaries(
                texts,
                st.tuples(st.integers(0, 32767), st.integers(0, 32767)),
                max_size=4,
            )
        ),
    )


@given(broker_registrations())
def test_broker_round_trip(reg: data.BrokerRegistration) -> None:
    assert data.decode_broker(reg.broker_id, data.encode_broker(reg)) == reg


@given(
    st.one_of(st.none(), st.uuids()),
    st.dictionaries(st.integers(0, 5000), replica_lists, max_size=40),
    st.dictionaries(st.integers(0, 5000), st.lists(broker_ids, min_size=1, max_size=3), max_size=5),
)
def test_topic_round_trip(
    topic_id: uuid.UUID | None, partitions: dict[int, list[int]], adding: dict[int, list[int]]
) -> None:
    assignment = data.TopicAssignment(topic_id, partitions, adding, {})
    assert data.decode_topic("t", data.encode_topic(assignment)) == assignment


@given(ints, ints, st.lists(broker_ids, max_size=6).map(tuple), ints, st.sampled_from([0, 1]))
def test_partition_state_round_trip(
    leader: int, epoch: int, isr: tuple[int, ...], controller_epoch: int, recovery: int
) -> None:
    state = data.PartitionState(leader, epoch, isr, controller_epoch, recovery, 0)
    assert data.decode_partition_state(data.encode_partition_state(state)) == state


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=30), max_size=30))
def test_config_round_trip(config: dict[str, str]) -> None:
    assert data.decode_config(data.encode_config(config)) == config


@given(texts)
def test_cluster_id_and_config_change_round_trip(text: str) -> None:
    assert data.decode_cluster_id(data.encode_cluster_id(text)) == text
    assert data.decode_config_change(data.encode_config_change(text)) == text


@given(st.lists(st.tuples(texts, st.integers(0, 10000)), max_size=20))
def test_partition_lists_round_trip(partitions: list[tuple[str, int]]) -> None:
    assert data.decode_isr_change(data.encode_isr_change(partitions)) == set(partitions)
    assert data.decode_preferred_replica_election(data.encode_preferred_replica_election(partitions)) == set(
        partitions
    )


@given(st.dictionaries(st.tuples(texts, st.integers(0, 10000)), replica_lists, max_size=20))
def test_reassignment_round_trip(reassignment: dict[tuple[str, int], list[int]]) -> None:
    assert data.decode_reassignment(data.encode_reassignment(reassignment)) == reassignment


@given(broker_ids, st.integers(0, 2**62), st.integers(0, 2**62))
def test_controller_and_producer_block_round_trip(broker: int, ts: int, first: int) -> None:
    reg = data.ControllerRegistration(broker, ts)
    assert data.decode_controller(data.encode_controller(reg)) == reg
    block = data.ProducerIdBlock(broker, first)
    assert data.decode_producer_id_block(data.encode_producer_id_block(block)) == block
    assert data.decode_log_dir_event(data.encode_log_dir_event(broker)) == broker
    assert data.decode_controller_epoch(data.encode_controller_epoch(broker)) == broker


@given(st.booleans(), st.dictionaries(texts, st.integers(0, 32767), max_size=6), st.sampled_from([1, 2]))
def test_feature_round_trip(enabled: bool, features: dict[str, int], version: int) -> None:
    node = data.FeatureZNode(enabled, features, version)
    assert data.decode_feature(data.encode_feature(node)) == node


@given(st.binary(max_size=200))
def test_decoders_never_crash_on_garbage(raw: bytes) -> None:
    decoders = [
        lambda b: data.decode_broker(1, b),
        lambda b: data.decode_topic("t", b),
        data.decode_partition_state,
        data.decode_controller,
        data.decode_cluster_id,
        data.decode_config,
        data.decode_config_change,
        data.decode_isr_change,
        data.decode_reassignment,
        data.decode_producer_id_block,
        data.decode_feature,
        data.decode_log_dir_event,
    ]
    for decode in decoders:
        with contextlib.suppress(data.ZkDataError):
            decode(raw)
