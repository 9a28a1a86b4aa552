"""Quota rates of idle clients expire after an hour (Kafka's InactiveSensorExpirationTimeSeconds),
so short-lived client ids do not accumulate; an active client keeps its rate and its throttle."""

from __future__ import annotations

from broker.quotas.entity import DEFAULT, QuotaEntity
from broker.quotas.manager import (
    EXPIRY_CHECK_INTERVAL_MS,
    INACTIVE_EXPIRY_MS,
    RESOLVED_CACHE_LIMIT,
    TypeQuotas,
)

HOUR = INACTIVE_EXPIRY_MS


def per_client_default() -> TypeQuotas:
    quotas = TypeQuotas("producer_byte_rate", 11, 1000, None)
    quotas.set(QuotaEntity(None, DEFAULT), 1000.0)  # every client id gets a rate of its own
    return quotas


def test_idle_client_rates_expire_and_active_ones_stay() -> None:
    quotas = per_client_default()
    for i in range(100):
        quotas.record("", f"short-lived-{i}", 10, now_ms=0)
    quotas.throttled(5, "", "short-lived-0")
    assert len(quotas.rates) == 100 and ("", "short-lived-0") in quotas.throttles
    # The steady client records every minute for two hours: it is never idle for an hour.
    now = 0
    while now < 2 * HOUR:
        now += EXPIRY_CHECK_INTERVAL_MS
        quotas.record("", "steady", 10, now)
    quotas.record("", "newcomer", 10, now)  # a new rate: the expiry check runs
    assert set(quotas.rates) == {("", "steady"), ("", "newcomer")}
    assert not quotas.throttles  # the idle client's throttle counts went with its rate


def test_a_client_idle_for_less_than_an_hour_keeps_its_rate() -> None:
    quotas = per_client_default()
    quotas.record("", "a", 5000, now_ms=0)
    quotas.record("", "b", 10, now_ms=HOUR - 1)  # expiry check: "a" idle for just under an hour
    assert ("", "a") in quotas.rates
    # The next check (a minute later, when another new client comes) finds it idle for an hour.
    quotas.record("", "c", 10, now_ms=HOUR - 2 + EXPIRY_CHECK_INTERVAL_MS)
    assert ("", "a") in quotas.rates  # no check yet: within a minute of the last one
    quotas.record("", "d", 10, now_ms=HOUR - 1 + EXPIRY_CHECK_INTERVAL_MS)
    assert ("", "a") not in quotas.rates


def test_measuring_a_rate_does_not_keep_it_alive() -> None:
    quotas = per_client_default()
    quotas.record("", "scraped", 10, now_ms=0)
    quotas.rates[("", "scraped")].measure(HOUR)  # a metrics scrape resets its old samples
    quotas.record("", "other", 10, now_ms=HOUR + 1)
    assert ("", "scraped") not in quotas.rates


def test_the_resolution_cache_stays_bounded_without_quotas_matching() -> None:
    quotas = TypeQuotas("producer_byte_rate", 11, 1000, None)
    quotas.set(QuotaEntity("alice", None), 1000.0)  # only alice has a quota
    for i in range(3 * RESOLVED_CACHE_LIMIT):
        assert quotas.quota_for("bob", f"client-{i}") is None
    assert len(quotas._resolved) <= RESOLVED_CACHE_LIMIT
    assert quotas.quota_for("alice", "x") == 1000.0
