"""Events per second over a short window: the one rate the status file and STATUS= report."""

from __future__ import annotations

from collections.abc import Iterable

WINDOW_S = 2.0
"""The window, seconds: long enough to smooth single frames, short enough to show a stall."""


def rate_per_s(times: Iterable[float], now: float, window_s: float = WINDOW_S) -> float:
    """Events per second among ``times`` (monotonic seconds, oldest first) near ``now``.

    The ``n`` events within ``window_s`` before ``now`` and the last event before them span
    ``n`` intervals: the rate is ``n`` over the time from that earlier event to ``now``. So a
    steady stream reads its true rate, a stall makes it fall (0 once nothing is left in the
    window), and a burst after a long gap (two frames a millisecond apart after a slow one)
    cannot read thousands per second. With no earlier event (the stream's first
    ``window_s``) the intervals between the events in the window count instead; 0 with fewer
    than two events.
    """
    before: float | None = None
    recent: list[float] = []
    for t in times:
        if now - t <= window_s:
            recent.append(t)
        elif not recent:
            before = t
    if before is not None:
        return len(recent) / max(now - before, 1e-6)
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(now - recent[0], 1e-6)
