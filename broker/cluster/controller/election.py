"""Kafka 3.9's partition leader election algorithms (``PartitionLeaderElectionAlgorithms`` and
``Election``), as pure functions of the assignment, the ISR and the live brokers.

Every election that finds a leader bumps the leader epoch; the partition epoch (the znode
version) is bumped by the write that stores the result, not here.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence

from broker.cluster.controller.context import LeaderAndIsr
from broker.types import BrokerId, TopicPartition
from storage.fast_dataclass import dataclass


class ElectionStrategy(enum.Enum):
    OFFLINE = "OfflinePartitionLeaderElectionStrategy"
    OFFLINE_ALLOW_UNCLEAN = "OfflinePartitionLeaderElectionStrategy(allowUnclean)"
    REASSIGN = "ReassignPartitionLeaderElectionStrategy"
    PREFERRED = "PreferredReplicaPartitionLeaderElectionStrategy"
    CONTROLLED_SHUTDOWN = "ControlledShutdownPartitionLeaderElectionStrategy"

    def __str__(self) -> str:
        return self.value


# -- the algorithms: who leads ----------------------------------------------------------------


def offline_partition_leader(
    assignment: Sequence[BrokerId],
    isr: Collection[BrokerId],
    live: Collection[BrokerId],
    unclean_enabled: bool,
) -> BrokerId | None:
    """The first live ISR member in assignment order; failing that, with unclean election on,
    the first live assigned replica."""
    clean = next((r for r in assignment if r in live and r in isr), None)
    if clean is not None or not unclean_enabled:
        return clean
    return next((r for r in assignment if r in live), None)


def reassign_partition_leader(
    target_replicas: Sequence[BrokerId], isr: Collection[BrokerId], live: Collection[BrokerId]
) -> BrokerId | None:
    return next((r for r in target_replicas if r in live and r in isr), None)


def preferred_replica_leader(
    assignment: Sequence[BrokerId], isr: Collection[BrokerId], live: Collection[BrokerId]
) -> BrokerId | None:
    """Only the first assigned replica, and only if it is live and in the ISR."""
    if assignment and assignment[0] in live and assignment[0] in isr:
        return assignment[0]
    return None


def controlled_shutdown_leader(
    assignment: Sequence[BrokerId],
    isr: Collection[BrokerId],
    live: Collection[BrokerId],
    shutting_down: Collection[BrokerId],
) -> BrokerId | None:
    return next((r for r in assignment if r in live and r in isr and r not in shutting_down), None)


# -- elections: the new leadership -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElectionResult:
    partition: TopicPartition
    #: The new leadership, or None when no replica can lead.
    leader_and_isr: LeaderAndIsr | None
    #: The brokers that get the LeaderAndIsr for the new leadership.
    recipients: tuple[BrokerId, ...]


def elect_for_offline(
    partition: TopicPartition,
    current: LeaderAndIsr,
    assignment: Sequence[BrokerId],
    live: Collection[BrokerId],
    unclean_enabled: bool,
    leader_recovery_supported: bool,
) -> ElectionResult:
    """Offline (or new-but-written) partition: clean election keeps the live part of the ISR;
    an unclean one makes the ISR the new leader alone, RECOVERING when the IBP has KIP-704."""
    live_replicas = tuple(r for r in assignment if r in live)
    isr = current.isr
    leader = offline_partition_leader(assignment, isr, live_replicas, unclean_enabled)
    if leader is None:
        return ElectionResult(partition, None, live_replicas)
    if leader in isr:
        return ElectionResult(
            partition, current.new_leader_and_isr(leader, [r for r in isr if r in live]), live_replicas
        )
    if leader_recovery_supported:
        return ElectionResult(
            partition, current.new_recovering_leader_and_isr(leader, [leader]), live_replicas
        )
    return ElectionResult(partition, current.new_leader_and_isr(leader, [leader]), live_replicas)


def elect_for_reassign(
    partition: TopicPartition,
    current: LeaderAndIsr,
    target_replicas: Sequence[BrokerId],
    live: Collection[BrokerId],
) -> ElectionResult:
    live_targets = tuple(r for r in target_replicas if r in live)
    leader = reassign_partition_leader(target_replicas, current.isr, live_targets)
    return ElectionResult(
        partition, None if leader is None else current.new_leader(leader), tuple(target_replicas)
    )


def elect_preferred(
    partition: TopicPartition,
    current: LeaderAndIsr,
    assignment: Sequence[BrokerId],
    live: Collection[BrokerId],
) -> ElectionResult:
    live_replicas = tuple(r for r in assignment if r in live)
    leader = preferred_replica_leader(assignment, current.isr, live_replicas)
    return ElectionResult(
        partition, None if leader is None else current.new_leader(leader), tuple(assignment)
    )


def elect_for_controlled_shutdown(
    partition: TopicPartition,
    current: LeaderAndIsr,
    assignment: Sequence[BrokerId],
    live_or_shutting_down: Collection[BrokerId],
    shutting_down: Collection[BrokerId],
) -> ElectionResult:
    """A leader outside the shutting-down brokers, which also leave the ISR."""
    candidates = tuple(r for r in assignment if r in live_or_shutting_down)
    leader = controlled_shutdown_leader(assignment, current.isr, candidates, shutting_down)
    new_isr = [r for r in current.isr if r not in shutting_down]
    return ElectionResult(
        partition, None if leader is None else current.new_leader_and_isr(leader, new_isr), candidates
    )
