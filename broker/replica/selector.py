"""Which replica a consumer should read from (KIP-392), as Kafka's ``replica.selector.class``.

Kafka loads a ``ReplicaSelector`` plugin by class name; Brook knows the one class Kafka ships,
``org.apache.kafka.common.replica.RackAwareReplicaSelector``. Unset (Kafka's default) means no
selector: consumers read from the leader. Any other name is a configuration error, as Kafka fails
to start on a class it cannot load.

The leader offers the selector its own view and those of the followers in the committed ISR whose
logs cover the fetch offset (Kafka's ReplicaManager.findPreferredReadReplica); a choice other than
the leader is answered as ``preferred_read_replica`` with no records. Pure: no I/O, no broker state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from storage.fast_dataclass import dataclass

RACK_AWARE_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One candidate replica (Kafka's ReplicaView): its broker, rack, log end offset and how long
    ago it was last caught up (0 for the leader)."""

    broker_id: int
    rack: str | None
    log_end_offset: int
    time_since_caught_up_ms: int


class ReplicaSelector(Protocol):
    #: Whether a consumer naming no rack is always sent to the leader (then nothing is asked).
    picks_leader_without_rack: bool

    def select(
        self, client_rack: str, replicas: Iterable[ReplicaView], leader: ReplicaView
    ) -> ReplicaView: ...


class RackAwareReplicaSelector:
    """Kafka's RackAwareReplicaSelector: with a client rack, the leader if it is in that rack, else
    the most caught-up replica there (highest log end offset, then most recently caught up, then
    highest broker id, as Kafka's ReplicaView.comparator); the leader when no replica is there or
    the client names no rack."""

    picks_leader_without_rack = True

    def select(self, client_rack: str, replicas: Iterable[ReplicaView], leader: ReplicaView) -> ReplicaView:
        if not client_rack:
            return leader
        same_rack = [r for r in replicas if r.rack == client_rack]
        if not same_rack or leader in same_rack:
            return leader
        return max(same_rack, key=lambda r: (r.log_end_offset, -r.time_since_caught_up_ms, r.broker_id))


def selector_from_config(class_name: str | None) -> ReplicaSelector | None:
    """The selector that ``replica.selector.class`` names (None when unset: the leader serves)."""
    if class_name is None or not class_name.strip():
        return None
    if class_name.strip() == RACK_AWARE_SELECTOR:
        return RackAwareReplicaSelector()
    raise ValueError(
        f"replica.selector.class: cannot load {class_name!r}; Brook knows only {RACK_AWARE_SELECTOR}"
    )


def preferred_read_replica(
    selector: ReplicaSelector,
    client_rack: str,
    leader: ReplicaView,
    followers: Iterable[ReplicaView],
) -> int:
    """The broker a consumer should read from instead of the leader, or -1 (read here). The
    leader is never named, even when chosen (Kafka excludes it from the response)."""
    candidates = [leader, *followers]
    chosen = selector.select(client_rack, candidates, leader)
    return -1 if chosen == leader else chosen.broker_id
