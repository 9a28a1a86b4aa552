"""Replica assignment, as Kafka 3.9's ``AdminUtils.assignReplicasToBrokers`` and
``AdminZkClient.createNewPartitionsAssignment``.

Kafka's guarantees: the leaders of successive partitions go round the brokers from a random
start, the followers are shifted so that replicas spread evenly, and with racks the brokers are
taken in rack-alternating order so that a partition's replicas land on as many racks as possible.
The randomness comes from an injectable ``random.Random``; ``fixed_start_index`` >= 0 removes it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from broker.types import BrokerId
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass


@dataclass(frozen=True, slots=True)
class BrokerPlacement:
    """What placement needs of a broker: its id and its ``broker.rack``."""

    id: BrokerId
    rack: str | None = None


@dataclass(slots=True)
class AssignmentError(Exception):
    """An assignment Kafka refuses, with the error code and message its admin apis report."""

    code: ErrorCode
    message: str

    def __str__(self) -> str:
        return self.message


#: Kafka's AdminOperationException for mixed racks; CreateTopics answers it as an unknown error.
MIXED_RACKS_MESSAGE = "Not all brokers have rack information for replica rack aware assignment."


def assign_replicas_to_brokers(
    brokers: Iterable[BrokerPlacement],
    partitions: int,
    replication_factor: int,
    *,
    fixed_start_index: int = -1,
    start_partition_id: int = -1,
    rng: random.Random | None = None,
) -> dict[int, list[BrokerId]]:
    """Partition id -> replicas, first replica the preferred leader. Brokers are taken by id.

    Rack-aware as soon as one broker has a rack; then every broker needs one.
    """
    placements = sorted(brokers, key=lambda b: b.id)
    if partitions <= 0:
        raise AssignmentError(ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise AssignmentError(
            ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
        )
    if replication_factor > len(placements):
        raise AssignmentError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Replication factor: {replication_factor} larger than available brokers: {len(placements)}.",
        )
    rng = rng or random.Random()
    if all(b.rack is None for b in placements):
        return _rack_unaware(
            [b.id for b in placements],
            partitions,
            replication_factor,
            fixed_start_index,
            start_partition_id,
            rng,
        )
    if any(b.rack is None for b in placements):
        raise AssignmentError(ErrorCode.UNKNOWN_SERVER_ERROR, MIXED_RACKS_MESSAGE)
    racks = {b.id: b.rack for b in placements if b.rack is not None}
    return _rack_aware(racks, partitions, replication_factor, fixed_start_index, start_partition_id, rng)


def new_partitions_assignment(
    existing: Mapping[int, Sequence[BrokerId]],
    brokers: Iterable[BrokerPlacement],
    total_partitions: int,
    *,
    rng: random.Random | None = None,
) -> dict[int, list[BrokerId]]:
    """CreatePartitions: replicas for partitions ``len(existing)`` .. ``total_partitions - 1``,
    continuing the round from partition 0's first replica, at partition 0's replication factor."""
    topic_partition0 = existing.get(0)
    if topic_partition0 is None or not topic_partition0:
        raise AssignmentError(
            ErrorCode.UNKNOWN_SERVER_ERROR,
            "Unexpected existing replica assignment, partition id 0 is missing. "
            f"Assignment: {dict(existing)}",
        )
    to_add = total_partitions - len(existing)
    if to_add <= 0:
        raise AssignmentError(
            ErrorCode.INVALID_PARTITIONS,
            f"The number of partitions for a topic can only be increased. Topic currently has "
            f"{len(existing)} partitions, {total_partitions} would not be an increase.",
        )
    placements = sorted(brokers, key=lambda b: b.id)
    first = topic_partition0[0]
    start_index = next((i for i, b in enumerate(placements) if b.id >= first), -1)
    return assign_replicas_to_brokers(
        placements,
        to_add,
        len(topic_partition0),
        fixed_start_index=max(0, start_index),
        start_partition_id=len(existing),
        rng=rng,
    )


def _replica_index(
    first_replica_index: int, second_replica_shift: int, replica_index: int, n_brokers: int
) -> int:
    shift = 1 + (second_replica_shift + replica_index) % (n_brokers - 1)
    return (first_replica_index + shift) % n_brokers


def _start(fixed_start_index: int, n: int, rng: random.Random) -> tuple[int, int]:
    """Kafka draws the start index, then the replica shift, unless both are fixed."""
    if fixed_start_index >= 0:
        return fixed_start_index, fixed_start_index
    start_index = rng.randrange(n)
    return start_index, rng.randrange(n)


def _rack_unaware(
    broker_ids: list[BrokerId],
    partitions: int,
    replication_factor: int,
    fixed_start_index: int,
    start_partition_id: int,
    rng: random.Random,
) -> dict[int, list[BrokerId]]:
    n = len(broker_ids)
    start_index, shift = _start(fixed_start_index, n, rng)
    partition_id = max(0, start_partition_id)
    result: dict[int, list[BrokerId]] = {}
    for _ in range(partitions):
        if partition_id > 0 and partition_id % n == 0:
            shift += 1
        first = (partition_id + start_index) % n
        replicas = [broker_ids[first]]
        replicas.extend(broker_ids[_replica_index(first, shift, j, n)] for j in range(replication_factor - 1))
        result[partition_id] = replicas
        partition_id += 1
    return result


def rack_alternated_brokers(racks: Mapping[BrokerId, str]) -> list[BrokerId]:
    """Brokers ordered rack by rack in turn (racks sorted, brokers by id within a rack)."""
    by_rack: dict[str, list[BrokerId]] = {}
    for broker, rack in racks.items():
        by_rack.setdefault(rack, []).append(broker)
    queues = [sorted(by_rack[rack]) for rack in sorted(by_rack)]
    result: list[BrokerId] = []
    depth = 0
    while len(result) < len(racks):
        result.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return result


def _rack_aware(
    racks: Mapping[BrokerId, str],
    partitions: int,
    replication_factor: int,
    fixed_start_index: int,
    start_partition_id: int,
    rng: random.Random,
) -> dict[int, list[BrokerId]]:
    num_racks = len(set(racks.values()))
    arranged = rack_alternated_brokers(racks)
    n = len(arranged)
    start_index, shift = _start(fixed_start_index, n, rng)
    partition_id = max(0, start_partition_id)
    result: dict[int, list[BrokerId]] = {}
    for _ in range(partitions):
        if partition_id > 0 and partition_id % n == 0:
            shift += 1
        first = (partition_id + start_index) % n
        leader = arranged[first]
        replicas = [leader]
        racks_used = {racks[leader]}
        brokers_used = {leader}
        k = 0
        for _j in range(replication_factor - 1):
            while True:
                broker = arranged[_replica_index(first, shift * num_racks, k, n)]
                rack = racks[broker]
                k += 1
                # Skip a broker whose rack already has a replica while some rack has none, and a
                # broker that already has one while some broker has none.
                if (rack not in racks_used or len(racks_used) == num_racks) and (
                    broker not in brokers_used or len(brokers_used) == n
                ):
                    replicas.append(broker)
                    racks_used.add(rack)
                    brokers_used.add(broker)
                    break
        result[partition_id] = replicas
        partition_id += 1
    return result
