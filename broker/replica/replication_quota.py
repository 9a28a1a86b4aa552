"""Replication throttles (Kafka's ReplicationQuotaManager): the bytes a reassignment may move.

Three quotas, each a byte rate that is unbounded unless set as a dynamic broker config (what
``kafka-reassign-partitions --throttle`` writes):

- ``leader.replication.throttled.rate``: a leader leaves the records of a throttled partition out
  of a follower's fetch answer while the rate is over it and that follower is not in the ISR
  (Kafka's ReplicaManager.shouldLeaderThrottle); the bytes of throttled partitions it answers are
  recorded, in-sync followers' too, so the total stays under the bound;
- ``follower.replication.throttled.rate``: a follower leaves a throttled partition out of its
  fetch while over the rate, unless it has caught up with the leader's high watermark (Kafka's
  RemoteLeaderEndPoint.shouldFollowerThrottle, which avoids ISR thrashing); every byte fetched
  for a throttled partition is recorded;
- ``replica.alter.log.dirs.io.max.bytes.per.second``: moves between log dirs wait before a copy
  step while over the rate; every byte copied is recorded.

Which partitions are throttled is per topic: ``leader.replication.throttled.replicas`` and
``follower.replication.throttled.replicas`` list ``partition:broker`` pairs, of which this broker
takes those naming itself, or ``*`` for every partition (Kafka's
QuotaConfigHandler.parseThrottledPartitions). The lists are read from the topic's overrides when
asked, so a change applies at the next fetch. Rates are Kafka's SimpleRate over
``replication.quota.window.num`` windows of ``replication.quota.window.size.seconds`` (the
``alter.log.dirs.`` ones for moves). Unbounded, a quota costs one comparison per fetch and
nothing else is built.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from broker.types import TopicPartition

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.quotas.rate import Rate

#: Kafka's Long.MaxValue: no throttle.
UNBOUNDED = 2**63 - 1
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
ALTER_LOG_DIRS_RATE = "replica.alter.log.dirs.io.max.bytes.per.second"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"


class _All:
    """Every partition of the topic (``*``)."""

    def __contains__(self, partition: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "*"


ALL_REPLICAS = _All()
Throttled = frozenset[int] | _All


def throttled_partitions(value: str, broker_id: int) -> Throttled:
    """The partitions of a ``*.replication.throttled.replicas`` value throttled on ``broker_id``
    (entries that do not parse are skipped; the config was validated when it was set)."""
    value = value.strip()
    if value == "*":
        return ALL_REPLICAS
    partitions: set[int] = set()
    for entry in value.split(","):
        partition, _, broker = entry.strip().partition(":")
        try:
            if int(broker) == broker_id:
                partitions.add(int(partition))
        except ValueError:
            continue
    return frozenset(partitions)


class ReplicationQuota:
    """One throttle: a byte-rate bound and which partitions it applies to."""

    def __init__(
        self,
        replicas_key: str | None,
        broker_id: int,
        overrides_of: Callable[[str], Mapping[str, str]],
        samples: int = 11,
        window_ms: int = 1000,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        #: The topic config listing throttled replicas; None: every partition (log-dir moves).
        self.replicas_key = replicas_key
        self.broker_id = broker_id
        self.overrides_of = overrides_of
        self.samples = samples
        self.window_ms = window_ms
        self.clock_ms = clock_ms or (lambda: int(time.monotonic() * 1000))
        self.bound = UNBOUNDED
        self._rate: Rate | None = None
        self._parsed: dict[str, tuple[str, Throttled]] = {}

    @property
    def active(self) -> bool:
        """Whether a bound is set (otherwise nothing is throttled or measured)."""
        return self.bound < UNBOUNDED

    def update(self, bound: int, samples: int, window_ms: int) -> None:
        """A new bound (UNBOUNDED removes the throttle); the rate measured so far is kept while
        the windows stay the same."""
        if (samples, window_ms) != (self.samples, self.window_ms):
            self._rate = None
        self.bound, self.samples, self.window_ms = bound, samples, window_ms

    def is_throttled(self, tp: TopicPartition) -> bool:
        if self.replicas_key is None:
            return True
        raw = self.overrides_of(tp.topic).get(self.replicas_key, "")
        if not raw:
            return False
        cached = self._parsed.get(tp.topic)
        if cached is None or cached[0] != raw:
            cached = self._parsed[tp.topic] = (raw, throttled_partitions(raw, self.broker_id))
        return tp.partition in cached[1]

    def rate(self) -> float:
        """Bytes per second recorded (0 when unbounded: nothing is recorded then)."""
        return 0.0 if self._rate is None else self._rate.measure(self.clock_ms())

    def is_exceeded(self) -> bool:
        """Kafka's isQuotaExceeded: the measured rate is above the bound."""
        return self._rate is not None and self.active and self.rate() > self.bound

    def record(self, size: int) -> None:
        if not self.active or size <= 0:
            return
        if self._rate is None:
            from broker.quotas.rate import Rate

            self._rate = Rate(self.samples, self.window_ms, simple=True)
        self._rate.record(size, self.clock_ms())

    def delay_ms(self) -> int:
        """How long until the rate falls to the bound with nothing more recorded (0 if it is not
        above it): the wait of a throttled log-dir move."""
        if not self.is_exceeded() or self._rate is None:
            return 0
        if self.bound <= 0:
            return self.window_ms
        # SimpleRate is total / max(elapsed, window): it falls to the bound once elapsed reaches
        # total / bound (sooner if old samples expire first; the caller looks again).
        total, elapsed = self._rate.total_and_elapsed(self.clock_ms())
        # Never past the time when every sample has expired.
        return min(max(math.ceil(total * 1000 / self.bound) - elapsed, 1), self.samples * self.window_ms)


class ReplicationQuotas:
    """The leader, follower and log-dir-move throttles of one broker."""

    def __init__(
        self, broker_id: int, overrides_of: Callable[[str], Mapping[str, str]] | None = None
    ) -> None:
        lookup = overrides_of or _no_overrides
        self.leader = ReplicationQuota(LEADER_REPLICAS, broker_id, lookup)
        self.follower = ReplicationQuota(FOLLOWER_REPLICAS, broker_id, lookup)
        self.alter_log_dirs = ReplicationQuota(None, broker_id, lookup)

    def configure(self, config: BrokerConfig) -> None:
        """The bounds and windows from the (dynamic) broker config."""
        samples = int(config.get("replication.quota.window.num"))  # type: ignore[arg-type]
        window_ms = int(config.get("replication.quota.window.size.seconds")) * 1000  # type: ignore[arg-type]
        move_samples = int(config.get("alter.log.dirs.replication.quota.window.num"))  # type: ignore[arg-type]
        move_window_ms = (
            int(config.get("alter.log.dirs.replication.quota.window.size.seconds")) * 1000  # type: ignore[arg-type]
        )
        self.leader.update(_bound(config, LEADER_RATE), samples, window_ms)
        self.follower.update(_bound(config, FOLLOWER_RATE), samples, window_ms)
        self.alter_log_dirs.update(_bound(config, ALTER_LOG_DIRS_RATE), move_samples, move_window_ms)


def _no_overrides(topic: str) -> Mapping[str, str]:
    return {}


def _bound(config: BrokerConfig, name: str) -> int:
    # Dynamic-only keys exist in the config once set (AlterConfigs or /config/brokers).
    return int(config.get(name)) if name in config else UNBOUNDED  # type: ignore[arg-type]
