"""The controller's check of an AlterPartition (api 56) proposal, as Kafka 3.9's ZooKeeper-mode
``processAlterPartition``: a pure function of the controller's state and the live brokers.

The order of the checks is Kafka's; it matters (an idempotent retry is recognised before the
partition-epoch fence, so that a leader whose answer was lost gets its state back).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from broker.cluster.controller.context import LeaderAndIsr, LeaderRecoveryState
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode

log = logging.getLogger(__name__)


def validate_alter_partition(
    partition: TopicPartition,
    current: LeaderAndIsr | None,
    proposed: LeaderAndIsr,
    live_broker_ids: Collection[BrokerId],
    version: int,
) -> ErrorCode | LeaderAndIsr | None:
    """An error; the current state when it already is what is asked (answer it, write nothing);
    or None: write ``proposed``."""
    if current is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if proposed.partition_epoch > current.partition_epoch or proposed.leader_epoch > current.leader_epoch:
        # The leader knows a newer state than ours: we are probably no longer the controller.
        return ErrorCode.NOT_CONTROLLER
    if proposed.leader_epoch < current.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH
    if proposed.equals_allow_stale_partition_epoch(current):
        return current
    if proposed.partition_epoch < current.partition_epoch:
        return ErrorCode.INVALID_UPDATE_VERSION
    if proposed.leader_recovery_state is LeaderRecoveryState.RECOVERING and len(proposed.isr) > 1:
        return ErrorCode.INVALID_REQUEST
    if (
        current.leader_recovery_state is LeaderRecoveryState.RECOVERED
        and proposed.leader_recovery_state is LeaderRecoveryState.RECOVERING
    ):
        return ErrorCode.INVALID_REQUEST
    # KIP-841: only live (and not shutting-down) brokers may join the ISR.
    ineligible = set(proposed.isr) - set(live_broker_ids)
    if ineligible:
        log.info(
            "Rejecting AlterPartition for %s: ineligible replicas %s in the new ISR %s",
            partition,
            sorted(ineligible),
            list(proposed.isr),
        )
        return ErrorCode.INELIGIBLE_REPLICA if version > 1 else ErrorCode.OPERATION_NOT_ATTEMPTED
    return None
