"""A member of a classic group, and what the coordinator answers to its join and sync."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from broker.group.timers import TimerHandle
from protocol.error_codes import ErrorCode
from storage.fast_dataclass import dataclass, field

#: (protocol name, member metadata for it), in the member's order of preference.
Protocols = list[tuple[str, bytes]]


@dataclass(slots=True)
class JoinMember:
    """One member as the leader sees it in the JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(slots=True)
class JoinResult:
    member_id: str
    error: ErrorCode
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    members: Sequence[JoinMember] = ()


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


JoinCallback = Callable[[JoinResult], None]
SyncCallback = Callable[[SyncResult], None]


@dataclass(eq=False, slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    awaiting_join: JoinCallback | None = None
    awaiting_sync: SyncCallback | None = None
    #: Joined but not yet through a completed join phase: its timer is the new-member timeout.
    is_new: bool = False
    heartbeat_timer: TimerHandle | None = field(default=None, repr=False)

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def is_awaiting_join(self) -> bool:
        return self.awaiting_join is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.awaiting_sync is not None

    @property
    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}

    def metadata(self, protocol: str) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        raise KeyError(f"member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, in the same order, with the same metadata."""
        return protocols == self.protocols

    def vote(self, candidates: set[str]) -> str:
        """This member's most preferred protocol among ``candidates``."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def satisfied_heartbeat_at_expiry(self) -> bool:
        """Whether a heartbeat timer firing now should spare the member (Kafka's
        ``hasSatisfiedHeartbeat`` when nothing completed the timer first): members waiting in a
        join or a sync are alive by definition, except new members, whose join may be abandoned."""
        if self.is_new:
            return False
        return self.is_awaiting_join or self.is_awaiting_sync

    def cancel_timer(self) -> None:
        if self.heartbeat_timer is not None:
            self.heartbeat_timer.cancel()
            self.heartbeat_timer = None


def client_host(peer: str) -> str:
    """A member's host as Kafka reports it (Java's ``InetAddress.toString``): ``/<address>``."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    return "/" + host.strip("[]")
