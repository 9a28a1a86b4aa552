"""Kafka's sampled Rate and the throttle time it implies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.quotas.entity import QuotaEntity
from broker.quotas.manager import TypeQuotas
from broker.quotas.rate import Rate, throttle_time_ms


def test_a_fresh_rate_counts_at_least_samples_minus_one_windows() -> None:
    rate = Rate(11, 1000)
    rate.record(1000, 0)
    assert rate.window_size_ms(0) == 10_000
    assert rate.measure(0) == pytest.approx(100.0)
    # Half a window later: still the minimum span (Kafka's numFullWindows < minFullWindows).
    assert rate.window_size_ms(500) == 10_500


def test_a_steady_rate_is_measured_as_it_is() -> None:
    rate = Rate(11, 1000)
    now = 0
    for _ in range(300):  # 30 s of 100 ms steps at 5,000 units/s
        rate.record(500, now)
        now += 100
    assert rate.measure(now) == pytest.approx(5000, rel=0.1)


def test_windows_with_no_events_for_the_whole_span_are_forgotten() -> None:
    rate = Rate(11, 1000)
    rate.record(10_000, 0)
    assert rate.measure(5_000) > 0
    assert rate.measure(11_000) == 0


def test_throttle_time_is_kafkas_formula() -> None:
    # O = 150, T = 100, W = 10 s: X = (150 - 100) / 100 * 10 s = 5 s.
    assert throttle_time_ms(150.0, 100.0, 10_000) == 5000
    assert throttle_time_ms(100.0, 100.0, 10_000) == 0
    assert throttle_time_ms(100.5, 100.0, 1_000) == 5  # 4.999.. rounds half up
    assert throttle_time_ms(1.0, 0.0, 1_000) == 1_000  # a zero quota waits a window


@settings(max_examples=60, deadline=None)
@given(
    observed=st.floats(min_value=1.0, max_value=1e9),
    bound=st.floats(min_value=1.0, max_value=1e9),
    window=st.integers(min_value=1, max_value=100_000),
)
def test_waiting_the_throttle_time_brings_the_rate_to_the_quota(
    observed: float, bound: float, window: int
) -> None:
    """O * W / (W + X) = T: the total over the longer span is the quota, within rounding."""
    delay = throttle_time_ms(observed, bound, window)
    if observed <= bound:
        assert delay <= 0
        return
    assert observed * window / (window + delay) == pytest.approx(
        bound, rel=1e-3, abs=observed / (window + delay)
    )


def simulate(quota: float, size: int, seconds: int, gap_ms: int = 5) -> float:
    """A client that waits out every throttle time, sending ``size`` units per request as fast as
    allowed: its long-run rate."""
    quotas = TypeQuotas("producer_byte_rate", 11, 1000, None)
    quotas.set(QuotaEntity(None, "app"), quota)
    now = sent = 0
    end = seconds * 1000
    while now < end:
        throttle = quotas.record("ANONYMOUS", "app", size, now)
        sent += size
        now += throttle + gap_ms
    return sent / (now / 1000)


@settings(max_examples=30, deadline=None)
@given(
    quota=st.integers(min_value=10_000, max_value=10_000_000),
    fraction=st.floats(min_value=0.02, max_value=0.5),
)
def test_a_client_that_honours_throttling_runs_at_its_quota(quota: int, fraction: float) -> None:
    # Requests of 2-50 % of the quota every 5 ms: unthrottled, the client would send 4-100x it.
    size = max(1, int(quota * fraction))
    # Long enough for the first windows' allowance (10 windows of the quota) to wear off.
    rate = simulate(quota, size, seconds=120)
    assert 0.85 * quota <= rate <= 1.15 * quota, (rate, quota, size)


def test_request_time_throttle_is_capped_at_one_window() -> None:
    quotas = TypeQuotas("request_percentage", 11, 1000, 1000)
    quotas.set(QuotaEntity("ANONYMOUS", None), 1.0)
    assert quotas.record("ANONYMOUS", "x", 1000.0, 0) == 1000


def test_unrecord_takes_back_a_value() -> None:
    quotas = TypeQuotas("consumer_byte_rate", 11, 1000, None)
    quotas.set(QuotaEntity(None, "c"), 100.0)
    assert quotas.record("U", "c", 5000, 0) > 0
    quotas.unrecord("U", "c", 5000, 0)
    assert quotas.record("U", "c", 10, 1) == 0


def test_no_quota_for_the_client_records_nothing() -> None:
    quotas = TypeQuotas("producer_byte_rate", 11, 1000, None)
    quotas.set(QuotaEntity(None, "other"), 1.0)
    assert quotas.record("U", "mine", 10**9, 0) == 0
    assert quotas.rates == {}
