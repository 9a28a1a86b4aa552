"""What Kafka 3.9 stores in each znode, as typed values with encoders and decoders.

The reference is core/src/main/scala/kafka/zk/ZkData.scala on Kafka's 3.9 branch; each encoder
names the object it follows. The bytes are Jackson's compact JSON (no spaces, non-ASCII as UTF-8,
control characters escaped) with the keys in the iteration order of the JVM map Kafka builds
(``jvm_order``), so that a Brook cluster's ZooKeeper reads exactly like a Kafka cluster's.

Decoders accept what Kafka accepts (extra keys, any key order, older versions where Kafka reads
them) and raise ``ZkDataError`` with the offending bytes otherwise: a bad znode is an error for
the caller to report, never a crash.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from broker.cluster.zk.jvm_order import (
    java_hash_order,
    scala_immutable_order,
    scala_mutable_order,
)
from storage import CheckpointFormatError
from storage.checkpoint import decode_topic_id, encode_topic_id
from storage.fast_dataclass import dataclass, field

T = TypeVar("T")

# ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
PRODUCER_ID_BLOCK_SIZE = 1000
LEADER_RECOVERED = 0
LEADER_RECOVERING = 1
NO_LEADER = -1


class ZkDataError(ValueError):
    """A znode's bytes are not what Kafka writes there."""


# A \u escape that is not itself an escaped backslash followed by "u" (an even run of backslashes).
_UNICODE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})")


def _dumps(value: Any) -> bytes:
    # Jackson's defaults: compact, UTF-8, only '"', '\\' and control characters escaped, the
    # latter as \u00XX in upper-case hex where Python writes lower case. Jackson's UTF-8 writer
    # (before 2.18's COMBINE_UNICODE_SURROGATES_IN_UTF8; Kafka 3.9 has 2.16) escapes characters
    # beyond the BMP as their surrogate pair.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = _UNICODE_ESCAPE.sub(lambda m: f"{m.group(1)}\\u{m.group(2).upper()}", text)
    text = _ASTRAL.sub(_surrogate_escape, text)
    return text.encode("utf-8", "surrogatepass")


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _surrogate_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0)) - 0x10000
    return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"


def _ordered(pairs: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    return {k: pairs[k] for k in order}


def _parse(data: bytes | None, what: str) -> dict[str, Any]:
    if not data:
        raise ZkDataError(f"{what}: empty znode")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZkDataError(f"{what}: not JSON: {data[:200]!r}") from exc
    if not isinstance(value, dict):
        raise ZkDataError(f"{what}: not a JSON object: {data[:200]!r}")
    return value


def _get(obj: Mapping[str, Any], key: str, kind: Callable[[Any], T], what: str) -> T:
    if key not in obj:
        raise ZkDataError(f"{what}: missing {key!r} in {obj!r}")
    try:
        return _convert(obj[key], kind)
    except (TypeError, ValueError) as exc:
        raise ZkDataError(f"{what}: bad {key!r}: {obj[key]!r}") from exc


def _convert(value: Any, kind: Callable[[Any], T]) -> T:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"not an integer: {value!r}")
    if kind is str and not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return kind(value)


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ZkDataError(f"{what}: not a list of integers: {value!r}")
    return list(value)


# ---------------------------------------------------------------------------------------------
# /cluster/id: ClusterIdZNode.toJson, Map("version" -> "1", "id" -> id) (version is a string).


def encode_cluster_id(cluster_id: str) -> bytes:
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes | None) -> str:
    return _get(_parse(data, "/cluster/id"), "id", str, "/cluster/id")


# ---------------------------------------------------------------------------------------------
# /controller: ControllerZNode.encode, a 4-entry immutable Map (insertion order), version 2.


@dataclass(frozen=True)
class ControllerRegistration:
    broker_id: int
    timestamp_ms: int
    kraft_controller_epoch: int = -1  # -1: a ZooKeeper-mode controller


def encode_controller(reg: ControllerRegistration) -> bytes:
    return _dumps(
        {
            "version": 2,
            "brokerid": reg.broker_id,
            "timestamp": str(reg.timestamp_ms),
            "kraftControllerEpoch": reg.kraft_controller_epoch,
        }
    )


def decode_controller(data: bytes | None) -> ControllerRegistration:
    obj = _parse(data, "/controller")
    timestamp = obj.get("timestamp", "0")
    try:
        ts = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise ZkDataError(f"/controller: bad timestamp {timestamp!r}") from exc
    kraft = obj.get("kraftControllerEpoch", -1)
    return ControllerRegistration(
        _get(obj, "brokerid", int, "/controller"),
        ts,
        kraft if isinstance(kraft, int) and not isinstance(kraft, bool) else -1,
    )


# /controller_epoch: ControllerEpochZNode, the decimal epoch as text.


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode("ascii")


def decode_controller_epoch(data: bytes | None) -> int:
    try:
        return int((data or b"").decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ZkDataError(f"/controller_epoch: not an integer: {data!r}") from exc


# ---------------------------------------------------------------------------------------------
# /brokers/ids/<id>: BrokerIdZNode.encode (version 5, Kafka 3.9 with IBP >= 2.7).


@dataclass(frozen=True)
class Endpoint:
    listener: str
    host: str | None
    port: int
    security_protocol: str

    def connection_string(self) -> str:
        # EndPoint.connectionString with Utils.formatAddress: IPv6 hosts in brackets.
        if self.host is None:
            return f"{self.listener}://:{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.listener}://{host}:{self.port}"


@dataclass(frozen=True)
class BrokerRegistration:
    broker_id: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None = None
    jmx_port: int = -1
    timestamp_ms: int = 0
    version: int = 5
    # Supported features: name -> (min_version, max_version). A 3.9 ZooKeeper-mode broker
    # registers none (KafkaServer: BrokerFeatures.createEmpty()), so this is {} in practice.
    features: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def endpoint(self, listener: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.listener == listener), None)


def encode_broker(reg: BrokerRegistration) -> bytes:
    # The top-level host/port are the first PLAINTEXT endpoint, or null/-1 (BrokerIdZNode.encode).
    plaintext = next((e for e in reg.endpoints if e.security_protocol == "PLAINTEXT"), None)
    pairs: dict[str, Any] = {
        "version": reg.version,
        "host": plaintext.host if plaintext else None,
        "port": plaintext.port if plaintext else -1,
        "endpoints": [e.connection_string() for e in reg.endpoints],
        "jmx_port": reg.jmx_port,
        "timestamp": str(reg.timestamp_ms),
    }
    keys = list(pairs)
    if reg.rack is not None and reg.version >= 3:
        pairs["rack"] = reg.rack
        keys.append("rack")
    if reg.version >= 4:
        # advertisedEndpoints.map(l -> protocol).toMap: an immutable Map keyed by listener.
        protocols = {e.listener: e.security_protocol for e in reg.endpoints}
        order = scala_immutable_order([e.listener for e in reg.endpoints])
        pairs["listener_security_protocol_map"] = _ordered(protocols, order)
        keys.append("listener_security_protocol_map")
    if reg.version >= 5:
        # Features.toMap: a java.util.HashMap of {"min_version", "max_version"} (Utils.mkMap).
        ranges = {name: {"min_version": lo, "max_version": hi} for name, (lo, hi) in reg.features.items()}
        pairs["features"] = _ordered(ranges, java_hash_order(list(ranges)))
        keys.append("features")
    # jsonMap is mutable.Map(6 pairs) then += the optional keys.
    return _dumps(_ordered(pairs, scala_mutable_order(keys, known_size=6)))


def _split_endpoint(text: str, protocols: Mapping[str, str], what: str) -> Endpoint:
    listener, sep, rest = text.partition("://")
    if not sep or not listener:
        raise ZkDataError(f"{what}: bad endpoint {text!r}")
    host_part, colon, port_text = rest.rpartition(":")
    if not colon:
        raise ZkDataError(f"{what}: endpoint without port {text!r}")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise ZkDataError(f"{what}: bad port in {text!r}") from exc
    if host_part.startswith("[") and host_part.endswith("]"):
        host_part = host_part[1:-1]
    protocol = protocols.get(listener, listener)
    return Endpoint(listener, host_part or None, port, protocol)


def decode_broker(broker_id: int, data: bytes | None) -> BrokerRegistration:
    what = f"/brokers/ids/{broker_id}"
    obj = _parse(data, what)
    version = _get(obj, "version", int, what)
    jmx_port = _get(obj, "jmx_port", int, what)
    if version < 1:
        raise ZkDataError(f"Unsupported version of broker registration: {data!r}")
    if version == 1:
        endpoints: tuple[Endpoint, ...] = (
            Endpoint("PLAINTEXT", _get(obj, "host", str, what), _get(obj, "port", int, what), "PLAINTEXT"),
        )
    else:
        raw_map = obj.get("listener_security_protocol_map") or {}
        if not isinstance(raw_map, dict):
            raise ZkDataError(f"{what}: bad listener_security_protocol_map {raw_map!r}")
        protocols = {str(k): str(v) for k, v in raw_map.items()}
        raw_endpoints = obj.get("endpoints")
        if not isinstance(raw_endpoints, list) or not all(isinstance(e, str) for e in raw_endpoints):
            raise ZkDataError(f"{what}: bad endpoints {raw_endpoints!r}")
        endpoints = tuple(_split_endpoint(e, protocols, what) for e in raw_endpoints)
    rack = obj.get("rack")
    if rack is not None and not isinstance(rack, str):
        raise ZkDataError(f"{what}: bad rack {rack!r}")
    timestamp = obj.get("timestamp", "0")
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        ts = 0
    features: dict[str, tuple[int, int]] = {}
    raw_features = obj.get("features") or {}
    if isinstance(raw_features, dict):
        for name, rng in raw_features.items():
            if isinstance(rng, dict):
                features[name] = (int(rng.get("min_version", 0)), int(rng.get("max_version", 0)))
    return BrokerRegistration(broker_id, endpoints, rack, jmx_port, ts, version, features)


# ---------------------------------------------------------------------------------------------
# /brokers/topics/<topic>: TopicZNode.encode, version 3.


@dataclass(frozen=True)
class TopicAssignment:
    topic_id: uuid.UUID | None
    partitions: Mapping[int, Sequence[int]]
    adding_replicas: Mapping[int, Sequence[int]] = field(default_factory=dict)
    removing_replicas: Mapping[int, Sequence[int]] = field(default_factory=dict)


def _partition_map(replicas: Mapping[int, Sequence[int]]) -> dict[str, list[int]]:
    # mutable.Map[String, util.List[Int]]() filled with +=: an empty-built mutable HashMap.
    as_text = {str(p): list(r) for p, r in replicas.items()}
    return _ordered(as_text, scala_mutable_order(list(as_text)))


def encode_topic(assignment: TopicAssignment) -> bytes:
    pairs: dict[str, Any] = {
        "version": 3,
        "partitions": _partition_map(assignment.partitions),
        "adding_replicas": _partition_map({p: r for p, r in assignment.adding_replicas.items() if r}),
        "removing_replicas": _partition_map({p: r for p, r in assignment.removing_replicas.items() if r}),
    }
    keys = list(pairs)
    if assignment.topic_id is not None:
        pairs["topic_id"] = encode_topic_id(assignment.topic_id)
        keys.append("topic_id")
    return _dumps(_ordered(pairs, scala_mutable_order(keys, known_size=4)))


def _replica_map(value: Any, what: str) -> dict[int, list[int]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ZkDataError(f"{what}: not an object: {value!r}")
    out: dict[int, list[int]] = {}
    for key, replicas in value.items():
        try:
            partition = int(key)
        except ValueError as exc:
            raise ZkDataError(f"{what}: bad partition {key!r}") from exc
        out[partition] = _int_list(replicas, what)
    return out


def decode_topic(topic: str, data: bytes | None) -> TopicAssignment:
    what = f"/brokers/topics/{topic}"
    obj = _parse(data, what)
    topic_id = None
    if obj.get("topic_id") is not None:
        try:
            topic_id = decode_topic_id(_get(obj, "topic_id", str, what))
        except CheckpointFormatError as exc:
            raise ZkDataError(f"{what}: bad topic_id {obj['topic_id']!r}") from exc
    return TopicAssignment(
        topic_id,
        _replica_map(obj.get("partitions"), what),
        _replica_map(obj.get("adding_replicas"), what),
        _replica_map(obj.get("removing_replicas"), what),
    )


# ---------------------------------------------------------------------------------------------
# /brokers/topics/<t>/partitions/<p>/state: TopicPartitionStateZNode.encode, an immutable Map.


@dataclass(frozen=True)
class PartitionState:
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    leader_recovery_state: int = LEADER_RECOVERED
    zk_version: int = 0  # the znode's version (stat), not part of the JSON


def encode_partition_state(state: PartitionState) -> bytes:
    pairs: dict[str, Any] = {
        "version": 1,
        "leader": state.leader,
        "leader_epoch": state.leader_epoch,
        "controller_epoch": state.controller_epoch,
        "isr": list(state.isr),
    }
    if state.leader_recovery_state != LEADER_RECOVERED:
        pairs["leader_recovery_state"] = state.leader_recovery_state
    return _dumps(_ordered(pairs, scala_immutable_order(list(pairs))))


def decode_partition_state(data: bytes | None, zk_version: int = 0) -> PartitionState:
    what = "partition state"
    obj = _parse(data, what)
    recovery = obj.get("leader_recovery_state", LEADER_RECOVERED)
    if recovery not in (LEADER_RECOVERED, LEADER_RECOVERING):
        raise ZkDataError(f"{what}: bad leader_recovery_state {recovery!r}")
    return PartitionState(
        _get(obj, "leader", int, what),
        _get(obj, "leader_epoch", int, what),
        tuple(_int_list(obj.get("isr"), what)),
        _get(obj, "controller_epoch", int, what),
        recovery,
        zk_version,
    )


# ---------------------------------------------------------------------------------------------
# /config/<type>/<name>: ConfigEntityZNode.encode, Map("version" -> 1, "config" -> Properties).


def encode_config(config: Mapping[str, str]) -> bytes:
    # java.util.Properties iterates its ConcurrentHashMap.
    ordered = _ordered(dict(config), java_hash_order(list(config), concurrent=True))
    return _dumps({"version": 1, "config": ordered})


def decode_config(data: bytes | None) -> dict[str, str]:
    # ConfigEntityZNode.decode: an absent or config-less znode is an empty config.
    if not data:
        return {}
    obj = _parse(data, "config")
    config = obj.get("config")
    if not isinstance(config, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in config.items():
        if not isinstance(value, str):
            raise ZkDataError(f"config: value of {key!r} is not a string: {value!r}")
        out[key] = value
    return out


# /config/changes/config_change_<seq>: ConfigEntityChangeNotificationSequenceZNode, version 2.


def encode_config_change(entity_path: str) -> bytes:
    return _dumps({"version": 2, "entity_path": entity_path})


def decode_config_change(data: bytes | None) -> str:
    """The changed entity as ``<type>/<name>`` (version 2; version 1 carried entity_type/name)."""
    obj = _parse(data, "config change")
    version = obj.get("version")
    if version == 1:
        entity_type = _get(obj, "entity_type", str, "config change")
        return f"{entity_type}/{_get(obj, 'entity_name', str, 'config change')}"
    return _get(obj, "entity_path", str, "config change")


# ---------------------------------------------------------------------------------------------
# Partition lists: /isr_change_notification/isr_change_<seq> (IsrChangeNotificationSequenceZNode,
# version IsrChangeNotificationHandler.Version = 1) and /admin/preferred_replica_election (version 1).
# Both are Map("version", "partitions" -> [{"topic", "partition"}]); the list is a Scala Set.


def _encode_partition_list(partitions: Sequence[tuple[str, int]]) -> bytes:
    unique = list(dict.fromkeys((t, p) for t, p in partitions))
    return _dumps({"version": 1, "partitions": [{"topic": t, "partition": p} for t, p in unique]})


def _decode_partition_list(data: bytes | None, what: str) -> set[tuple[str, int]]:
    obj = _parse(data, what)
    items = obj.get("partitions")
    if not isinstance(items, list):
        raise ZkDataError(f"{what}: bad partitions {items!r}")
    out: set[tuple[str, int]] = set()
    for item in items:
        if not isinstance(item, dict):
            raise ZkDataError(f"{what}: bad partition {item!r}")
        out.add((_get(item, "topic", str, what), _get(item, "partition", int, what)))
    return out


def encode_isr_change(partitions: Sequence[tuple[str, int]]) -> bytes:
    return _encode_partition_list(partitions)


def decode_isr_change(data: bytes | None) -> set[tuple[str, int]]:
    return _decode_partition_list(data, "isr change notification")


def encode_preferred_replica_election(partitions: Sequence[tuple[str, int]]) -> bytes:
    return _encode_partition_list(partitions)


def decode_preferred_replica_election(data: bytes | None) -> set[tuple[str, int]]:
    return _decode_partition_list(data, "/admin/preferred_replica_election")


# /admin/reassign_partitions: ReassignPartitionsZNode, Jackson beans in declaration order:
# {"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}.


def encode_reassignment(reassignment: Mapping[tuple[str, int], Sequence[int]]) -> bytes:
    return _dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": list(r)} for (t, p), r in reassignment.items()
            ],
        }
    )


def decode_reassignment(data: bytes | None) -> dict[tuple[str, int], list[int]]:
    what = "/admin/reassign_partitions"
    obj = _parse(data, what)
    items = obj.get("partitions")
    if not isinstance(items, list):
        raise ZkDataError(f"{what}: bad partitions {items!r}")
    out: dict[tuple[str, int], list[int]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ZkDataError(f"{what}: bad entry {item!r}")
        key = (_get(item, "topic", str, what), _get(item, "partition", int, what))
        out[key] = _int_list(item.get("replicas"), what)
    return out


# ---------------------------------------------------------------------------------------------
# /log_dir_event_notification/log_dir_event_<seq>: LogDirEventNotificationSequenceZNode.encode,
# Map("version" -> 1, "broker" -> id, "event" -> 1 (LogDirFailureEvent)).


def encode_log_dir_event(broker_id: int) -> bytes:
    return _dumps({"version": 1, "broker": broker_id, "event": 1})


def decode_log_dir_event(data: bytes | None) -> int:
    return _get(_parse(data, "log dir event"), "broker", int, "log dir event")


# ---------------------------------------------------------------------------------------------
# /latest_producer_id_block: ProducerIdBlockZNode.generateProducerIdBlockJson, version 1 with the
# ids as strings.


@dataclass(frozen=True)
class ProducerIdBlock:
    broker_id: int
    first_id: int
    size: int = PRODUCER_ID_BLOCK_SIZE

    @property
    def last_id(self) -> int:
        return self.first_id + self.size - 1


def encode_producer_id_block(block: ProducerIdBlock) -> bytes:
    return _dumps(
        {
            "version": 1,
            "broker": block.broker_id,
            "block_start": str(block.first_id),
            "block_end": str(block.last_id),
        }
    )


def decode_producer_id_block(data: bytes | None) -> ProducerIdBlock:
    what = "/latest_producer_id_block"
    obj = _parse(data, what)
    try:
        start = int(_get(obj, "block_start", str, what))
        end = int(_get(obj, "block_end", str, what))
    except ValueError as exc:
        raise ZkDataError(f"{what}: bad block bounds in {data!r}") from exc
    if end < start:
        raise ZkDataError(f"{what}: block_end before block_start in {data!r}")
    return ProducerIdBlock(_get(obj, "broker", int, what), start, end - start + 1)


# ---------------------------------------------------------------------------------------------
# /feature: FeatureZNode.encode (version 2 from IBP 3.3; status 1 enabled, 0 disabled), a
# mutable.Map of three; features map name -> {"max_version_level": v}.


@dataclass(frozen=True)
class FeatureZNode:
    enabled: bool
    features: Mapping[str, int] = field(default_factory=dict)
    version: int = 2


def encode_feature(node: FeatureZNode) -> bytes:
    features: dict[str, dict[str, int]] = {}
    for name, level in node.features.items():
        if node.version == 1:
            features[name] = {"max_version_level": level, "min_version_level": level}
        else:
            features[name] = {"max_version_level": level}
    # asJavaMap of a Scala immutable Map (names) of immutable Maps (levels).
    ordered = _ordered(features, scala_immutable_order(list(features)))
    pairs: dict[str, Any] = {"version": node.version, "status": int(node.enabled), "features": ordered}
    return _dumps(_ordered(pairs, scala_mutable_order(list(pairs), known_size=3)))


def decode_feature(data: bytes | None) -> FeatureZNode:
    obj = _parse(data, "/feature")
    version = _get(obj, "version", int, "/feature")
    if version not in (1, 2):
        raise ZkDataError(f"Unsupported version: {version} of feature information: {data!r}")
    status = _get(obj, "status", int, "/feature")
    if status not in (0, 1):
        raise ZkDataError(f"/feature: bad status {status}")
    features: dict[str, int] = {}
    raw = obj.get("features") or {}
    if not isinstance(raw, dict):
        raise ZkDataError(f"/feature: bad features {raw!r}")
    for name, levels in raw.items():
        if not isinstance(levels, dict) or "max_version_level" not in levels:
            raise ZkDataError(f"/feature: bad feature {name!r}: {levels!r}")
        features[name] = _convert(levels["max_version_level"], int)
    return FeatureZNode(bool(status), features, version)
