"""Events per second over a short window: the one rate the status file and STATUS= report."""

from __future__ import annotations

from collections.abc import Iterable

WINDOW_S = 2.0
"""The window, seconds: long enough to smooth single frames, short enough to show a stall."""


def rate_per_s(times: Iterable[float], now: float, window_s: float = WINDOW_S) -> float:
    """Events per second among ``times`` (monotonic seconds) within ``window_s`` before ``now``.

    Counts the intervals between the events in the window, over the time from the first of
    them to ``now``; 0 with fewer than two events.
    """
    recent = [t for t in times if now - t <= window_s]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(now - recent[0], 1e-6)
