"""appliance.rate: events per second over the last two seconds."""

from __future__ import annotations

import pytest

from appliance.rate import rate_per_s


def test_rate_counts_the_intervals_in_the_window():
    times = [10.0 + i / 30 for i in range(90)]  # 30 per second for 3 s
    assert rate_per_s(times, now=times[-1]) == pytest.approx(30.0, rel=0.02)
    # Only the last two seconds count: an old burst does not raise it.
    burst = [5.0 + i / 1000 for i in range(500)]
    assert rate_per_s(burst + times, now=times[-1]) == pytest.approx(30.0, rel=0.02)


def test_rate_is_zero_with_fewer_than_two_events_and_falls_after_a_stall():
    assert rate_per_s([], now=1.0) == 0.0
    assert rate_per_s([1.0], now=1.0) == 0.0
    times = [10.0 + i / 30 for i in range(60)]
    assert rate_per_s(times, now=times[-1] + 1.0) < 20.0  # no frame for a second
    assert rate_per_s(times, now=times[-1] + 5.0) == 0.0
