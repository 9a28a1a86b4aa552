"""Kafka's sampled ``Rate`` (``SampledStat`` of ``WindowedSum`` samples) and the throttle time of a
violation (``QuotaUtils.throttleTime``), as pure code on millisecond timestamps.

A rate keeps ``samples + 1`` windows of ``window_ms``; a window that had no event for
``samples * window_ms`` is reset. The rate is the sum of the windows over the elapsed time since
the oldest window began, counted as at least ``samples - 1`` full windows (so a fresh rate is not
inflated by a tiny elapsed time).
"""

from __future__ import annotations

import math


class _Sample:
    __slots__ = ("event_count", "last_event_ms", "start_ms", "value")

    def __init__(self, now_ms: int) -> None:
        self.value = 0.0
        self.event_count = 0
        self.start_ms = now_ms
        self.last_event_ms = now_ms

    def reset(self, now_ms: int) -> None:
        self.value = 0.0
        self.event_count = 0
        self.start_ms = now_ms
        self.last_event_ms = now_ms


class Rate:
    """A per-second rate over ``samples`` windows of ``window_ms`` (Kafka's Rate with
    ``quota.window.num`` and ``quota.window.size.seconds``)."""

    __slots__ = ("_current", "_samples", "last_record_ms", "samples", "simple", "window_ms")

    def __init__(self, samples: int, window_ms: int, *, simple: bool = False) -> None:
        if samples < 1 or window_ms < 1:
            raise ValueError("a rate needs at least one sample of at least 1 ms")
        self.samples = samples
        self.window_ms = window_ms
        #: Kafka's SimpleRate (replication quotas): the span is the time since the oldest window
        #: began, at least one window, instead of at least ``samples - 1`` windows.
        self.simple = simple
        self._samples: list[_Sample] = []
        self._current = 0
        #: When a value was last recorded (measuring resets old samples, so it is kept apart).
        self.last_record_ms = -1

    def record(self, value: float, now_ms: int) -> None:
        sample = self._current_sample(now_ms)
        if now_ms - sample.start_ms >= self.window_ms:
            sample = self._advance(now_ms)
        sample.value += value
        sample.event_count += 1
        sample.last_event_ms = now_ms
        self.last_record_ms = now_ms

    def _current_sample(self, now_ms: int) -> _Sample:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        return self._samples[self._current]

    def _advance(self, now_ms: int) -> _Sample:
        # One window more than measured: the oldest may overlap the start of the measured span.
        self._current = (self._current + 1) % (self.samples + 1)
        if self._current >= len(self._samples):
            sample = _Sample(now_ms)
            self._samples.append(sample)
            return sample
        sample = self._samples[self._current]
        sample.reset(now_ms)
        return sample

    def window_size_ms(self, now_ms: int) -> int:
        """Kafka's Rate.windowSize: the span the rate divides by, at least ``samples - 1``
        windows, at least 1 ms (windows with no event for the whole span are reset first)."""
        return self.total_and_window(now_ms)[1]

    def total_and_window(self, now_ms: int) -> tuple[float, int]:
        """The sum of the samples and the window size, in one pass (the request path's cost)."""
        total, elapsed = self.total_and_elapsed(now_ms)
        if self.simple:
            return total, max(elapsed, self.window_ms)
        full_windows = elapsed // self.window_ms
        if full_windows < self.samples - 1:
            elapsed += (self.samples - 1 - full_windows) * self.window_ms
        return total, max(elapsed, 1)

    def total_and_elapsed(self, now_ms: int) -> tuple[float, int]:
        """The sum of the live samples and the time since the oldest began (no floor)."""
        expire_age = self.samples * self.window_ms
        total = 0.0
        oldest = now_ms
        for sample in self._samples:
            if now_ms - sample.last_event_ms >= expire_age:
                sample.reset(now_ms)
            else:
                total += sample.value
            if sample.start_ms < oldest:
                oldest = sample.start_ms
        return total, now_ms - oldest

    def measure(self, now_ms: int) -> float:
        """Units per second."""
        total, window = self.total_and_window(now_ms)
        return total / (window / 1000.0)


def throttle_time_ms(observed: float, bound: float, window_ms: int) -> int:
    """How long to wait for ``observed`` to fall to ``bound`` with nothing more recorded:
    O * W / (W + X) = T, so X = (O - T) / T * W (QuotaUtils.throttleTime, rounded half up as
    Java's Math.round)."""
    if bound <= 0:
        # A zero quota: every request waits the longest a window allows.
        return window_ms
    return math.floor((observed - bound) / bound * window_ms + 0.5)
