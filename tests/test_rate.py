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


def test_a_burst_after_a_slow_frame_reads_a_sane_rate():
    # Under emulation a frame takes ~2 s; two then come 0.1 ms apart just before the status
    # is written. Counting only from the first of those two read 8712 fps in a health line.
    times = [0.0, 2.0, 4.0, 6.0, 6.0001]
    assert rate_per_s(times, now=6.0002) == pytest.approx(2 / 2.0002)
    # A stream's first events: the intervals between them.
    assert rate_per_s([1.0, 1.5, 2.0], now=2.0) == pytest.approx(2.0)
    # Nothing in the window but earlier events: 0.
    assert rate_per_s([1.0, 2.0], now=10.0) == 0.0
