"""``ClientQuotas``: the quota configs of a broker and the rates its clients' requests count
against (Kafka's ClientQuotaManager for produce and fetch, ClientRequestQuotaManager for
request time), and what a response needs from them.

What is recorded, as KafkaApis does:

- Produce: the request's size in bytes against ``producer_byte_rate``, and (unless acks=0) its
  handling time against ``request_percentage``; the longer throttle wins;
- consumer Fetch: the response's size against ``consumer_byte_rate``, and its handling time; a
  throttled fetch is answered empty (its bytes unrecorded), as Kafka's getThrottledResponse;
- every other api: its handling time against ``request_percentage``;
- exempt, as Kafka's cluster actions: follower fetches and the controller-to-broker apis.

Request time is what a request costs the event loop, Brook's one request thread: the synchronous
part of its handler plus the encoding of its response, measured with ``time.perf_counter``, as a
percentage of one second (Kafka: request-thread nanoseconds * 100 / 1e9). Work that an
asynchronous handler does after it first yields (a long poll's wake-up, disk work in a worker
thread) is not counted.

Throttle time is QuotaUtils.throttleTime over the rate's own window; for request time it is
capped at one window (``quota.window.size.seconds``), as ClientRequestQuotaManager does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from broker.quotas.entity import (
    CONSUMER_BYTE_RATE,
    CONTROLLER_MUTATION_RATE,
    PRODUCER_BYTE_RATE,
    QUOTA_KEYS,
    REQUEST_PERCENTAGE,
    QuotaEntity,
    metric_tags,
    quota_limit,
    sanitize,
)
from broker.quotas.rate import Rate, throttle_time_ms

log = logging.getLogger(__name__)

PRODUCE_KEY = 0
FETCH_KEY = 1
#: Kafka's cluster actions and the SASL exchange: never throttled for request time.
EXEMPT_APIS = frozenset({4, 5, 6, 7, 17, 27, 36, 56})
#: Request time in seconds -> percent of one second (Kafka: nanoseconds * 100 / 1e9).
_SECONDS_TO_PERCENT = 100.0


@lru_cache(maxsize=4096)
def _sanitized(name: str) -> str:
    return sanitize(name)


#: Kafka's ClientQuotaManager.InactiveSensorExpirationTimeSeconds.
INACTIVE_EXPIRY_MS = 3_600_000
EXPIRY_CHECK_INTERVAL_MS = 60_000
RESOLVED_CACHE_LIMIT = 10_000


class QuotaTicket:
    """What a request carries from dispatch to its response: who sent it, its size, and the
    event-loop time spent on it so far."""

    __slots__ = ("client_id", "loop_seconds", "request_size", "throttle_ms", "user")

    def __init__(self, user: str, client_id: str, request_size: int) -> None:
        self.user = user
        self.client_id = client_id
        self.request_size = request_size
        self.loop_seconds = 0.0
        #: The throttle decided at dispatch, for the response's ``throttle_time_ms``.
        self.throttle_ms = 0


class TypeQuotas:
    """The quotas of one kind (one config key) and the rates they are measured on."""

    def __init__(self, key: str, samples: int, window_ms: int, max_throttle_ms: int | None) -> None:
        self.key = key
        self.samples = samples
        self.window_ms = window_ms
        self.max_throttle_ms = max_throttle_ms
        #: Configured entity -> quota.
        self.quotas: dict[QuotaEntity, float] = {}
        #: Metric tags (user, client id; "" for any) -> rate.
        self.rates: dict[tuple[str, str], Rate] = {}
        self._resolved: dict[tuple[str, str], tuple[tuple[str, str], float | None]] = {}
        #: For the metrics: throttle decisions and their total time, in all and per rate.
        self.throttle_count = 0
        self.throttle_ms_total = 0
        self.throttles: dict[tuple[str, str], tuple[int, int]] = {}
        self._next_expiry_ms = 0

    def set(self, entity: QuotaEntity, quota: float | None) -> None:
        if quota is None:
            self.quotas.pop(entity, None)
        else:
            self.quotas[entity] = quota
        # Which rate a client counts against may change (Kafka recomputes its metric tags).
        self._resolved.clear()

    def resolve(self, user: str, client_id: str) -> tuple[tuple[str, str], float | None]:
        key = (user, client_id)
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) >= RESOLVED_CACHE_LIMIT:
                self._resolved.clear()  # many client ids with no rate of their own
            tags = metric_tags(self.quotas, user, client_id)
            found = (tags, quota_limit(self.quotas, tags))
            self._resolved[key] = found
        return found

    def quota_for(self, user: str, client_id: str) -> float | None:
        return self.resolve(user, client_id)[1]

    def record(self, user: str, client_id: str, value: float, now_ms: int) -> int:
        """Record ``value`` and return the throttle time it earns (0 within the quota)."""
        if not self.quotas:
            return 0
        tags, bound = self.resolve(user, client_id)
        if bound is None:
            return 0
        rate = self.rates.get(tags)
        if rate is None:
            if now_ms >= self._next_expiry_ms:
                self.expire_inactive(now_ms)
            rate = self.rates[tags] = Rate(self.samples, self.window_ms)
        rate.record(value, now_ms)
        total, window = rate.total_and_window(now_ms)
        observed = total / (window / 1000.0)
        if observed <= bound:
            return 0
        throttle = throttle_time_ms(observed, bound, window)
        if self.max_throttle_ms is not None:
            throttle = min(throttle, self.max_throttle_ms)
        return max(throttle, 0)

    def expire_inactive(self, now_ms: int) -> None:
        """Forget the rates (and their throttle counts) of clients idle for an hour, and the
        cache of who counts against which rate: Kafka expires a client's quota sensors after
        ``InactiveSensorExpirationTimeSeconds`` (3600 s), so short-lived client ids do not
        accumulate. Runs at most once a minute, when a new rate is about to be made."""
        self._next_expiry_ms = now_ms + EXPIRY_CHECK_INTERVAL_MS
        idle = [
            tags for tags, rate in self.rates.items() if now_ms - rate.last_record_ms >= INACTIVE_EXPIRY_MS
        ]
        for tags in idle:
            del self.rates[tags]
            self.throttles.pop(tags, None)
        # A cache only: whoever sends again resolves again.
        self._resolved.clear()

    def unrecord(self, user: str, client_id: str, value: float, now_ms: int) -> None:
        """Take back a recorded value (Kafka's unrecordQuotaSensor, for an emptied fetch)."""
        tags, bound = self.resolve(user, client_id)
        rate = self.rates.get(tags)
        if rate is not None and bound is not None:
            rate.record(-value, now_ms)

    def throttled(self, throttle_ms: int, user: str, client_id: str) -> None:
        self.throttle_count += 1
        self.throttle_ms_total += throttle_ms
        tags = self.resolve(user, client_id)[0]
        count, total = self.throttles.get(tags, (0, 0))
        self.throttles[tags] = (count + 1, total + throttle_ms)


def parse_quota_values(config: Mapping[str, str]) -> dict[str, float]:
    """The quota keys of a stored entity config as numbers; other keys (a user's SCRAM
    credentials) are skipped, and so is a value that is not a number (logged)."""
    values: dict[str, float] = {}
    for key, text in config.items():
        if key not in QUOTA_KEYS:
            continue
        try:
            values[key] = float(text)
        except ValueError:
            log.error("ignoring the quota %s=%r: not a number", key, text)
    return values


class ClientQuotas:
    """A broker's client quotas: the configs (by entity) and the three rate families."""

    def __init__(
        self,
        samples: int = 11,
        window_seconds: int = 1,
        *,
        now_ms: Callable[[], int] = lambda: int(time.monotonic() * 1000),
    ) -> None:
        window_ms = window_seconds * 1000
        self.now_ms = now_ms
        self.produce = TypeQuotas(PRODUCER_BYTE_RATE, samples, window_ms, None)
        self.fetch = TypeQuotas(CONSUMER_BYTE_RATE, samples, window_ms, None)
        self.request = TypeQuotas(REQUEST_PERCENTAGE, samples, window_ms, window_ms)
        self._by_key = {t.key: t for t in (self.produce, self.fetch, self.request)}
        #: Every configured entity's quota values, as stored (controller_mutation_rate included,
        #: which Brook stores and describes but does not enforce).
        self.configs: dict[QuotaEntity, dict[str, float]] = {}

    @property
    def enabled(self) -> bool:
        """Any quota that the request path enforces is configured."""
        return bool(self.produce.quotas or self.fetch.quotas or self.request.quotas)

    def set_entity(self, entity: QuotaEntity, values: Mapping[str, float]) -> None:
        """Make ``values`` the quotas of ``entity`` (an empty map removes them)."""
        old = self.configs.get(entity, {})
        if dict(values) == old:
            return
        if values:
            self.configs[entity] = dict(values)
        else:
            self.configs.pop(entity, None)
        for key, quotas in self._by_key.items():
            quotas.set(entity, values.get(key))
        ignored = CONTROLLER_MUTATION_RATE in values
        log.info(
            "client quotas of %s: %s%s",
            entity.path,
            dict(values) or "none",
            " (controller_mutation_rate is not enforced by Brook)" if ignored else "",
        )

    def apply_stored(self, entity: QuotaEntity, config: Mapping[str, str]) -> None:
        """An entity's stored config (a znode or the file): its quota keys become its quotas."""
        self.set_entity(entity, parse_quota_values(config))

    # -- the request path --------------------------------------------------------------------------

    def max_fetch_bytes(self, principal_name: str, client_id: str | None) -> int:
        """Kafka's getMaxValueInQuotaWindow for a consumer fetch: its consumer_byte_rate times
        ``samples - 1`` windows (a larger response would be throttled whatever came before)."""
        if not self.fetch.quotas:
            return 2**31 - 1
        bound = self.fetch.quota_for(_sanitized(principal_name), client_id or "")
        if bound is None:
            return 2**31 - 1
        return max(1, min(2**31 - 1, int(bound * (self.fetch.samples - 1) * self.fetch.window_ms / 1000)))

    def ticket(self, principal_name: str, client_id: str | None, request_size: int) -> QuotaTicket:
        return QuotaTicket(_sanitized(principal_name), client_id or "", request_size)

    def request_throttle(self, api_key: int, version: int, ticket: QuotaTicket, request: Any) -> int:
        """Once the handler has returned: the throttle time of a request, recorded now; 0 for a
        fetch (a consumer's is decided on its response, :meth:`fetch_throttle`; a follower's is
        exempt)."""
        if api_key == FETCH_KEY:
            return 0
        now = self.now_ms()
        user, client_id = ticket.user, ticket.client_id
        if api_key == PRODUCE_KEY:
            by_bytes = self.produce.record(user, client_id, ticket.request_size, now)
            by_time = 0
            if request is None or getattr(request, "acks", 1) != 0:
                by_time = self._record_time(ticket, now)
            if by_bytes > by_time:
                self.produce.throttled(by_bytes, user, client_id)
                return by_bytes
            if by_time:
                self.request.throttled(by_time, user, client_id)
            return by_time
        if api_key in EXEMPT_APIS:
            return 0
        by_time = self._record_time(ticket, now)
        if by_time:
            self.request.throttled(by_time, user, client_id)
        return by_time

    def fetch_throttle(self, ticket: QuotaTicket, response_size: int) -> int:
        """A consumer fetch: its response bytes and time; when either throttles, the bytes are
        taken back (the response will be sent empty)."""
        now = self.now_ms()
        user, client_id = ticket.user, ticket.client_id
        by_bytes = self.fetch.record(user, client_id, response_size, now)
        by_time = self._record_time(ticket, now)
        throttle = max(by_bytes, by_time)
        if throttle:
            self.fetch.unrecord(user, client_id, response_size, now)
            (self.fetch if by_bytes > by_time else self.request).throttled(throttle, user, client_id)
        return throttle

    def _record_time(self, ticket: QuotaTicket, now: int) -> int:
        if not self.request.quotas:
            return 0
        percent = ticket.loop_seconds * _SECONDS_TO_PERCENT
        return self.request.record(ticket.user, ticket.client_id, percent, now)
