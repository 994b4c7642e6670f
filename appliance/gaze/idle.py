"""Nobody there: ease back to the rest frame, and optionally glance around now and then.

The return is a smooth-step ease (zero speed at both ends) from wherever the eyes were to the
rest angle over ``idle_return_s``. Once at rest, glances - like the autonomous eyes of
Adafruit's Pi_Eyes - are saccades to a random angle within ``glance_range_deg`` of rest, held
for a random time, then back to rest, separated by random pauses.
"""

from __future__ import annotations

import random


def smoothstep(p: float) -> float:
    """``3p² - 2p³`` for ``p`` clamped to [0, 1]: 0 -> 0, 1 -> 1, zero slope at both ends."""
    p = min(max(p, 0.0), 1.0)
    return p * p * (3.0 - 2.0 * p)


def ease(start: float, end: float, t0: float, duration_s: float, t: float) -> float:
    """Value at time ``t`` of a smooth-step move from ``start`` (at ``t0``) to ``end``.

    Args:
        start: Value at ``t0``.
        end: Value from ``t0 + duration_s`` on.
        t0: Start of the move, seconds.
        duration_s: Length of the move, seconds (0 = jump).
        t: Time, seconds.
    """
    if duration_s <= 0:
        return end if t >= t0 else start
    return start + (end - start) * smoothstep((t - t0) / duration_s)


class Glancer:
    """Random glances around a rest angle, deterministic for a given seed.

    Args:
        rest: The rest angle, degrees.
        low: Lowest reachable angle, degrees (the first frame's).
        high: Highest reachable angle, degrees (the last frame's).
        interval_s: ``(min, max)`` pause at rest between glances, seconds.
        hold_s: ``(min, max)`` time a glance stays away from rest, seconds.
        range_deg: Largest glance either side of rest, degrees.
        move_s: Duration of each saccade, seconds.
        seed: Seed of the random generator.
    """

    def __init__(
        self,
        rest: float,
        low: float,
        high: float,
        interval_s: tuple[float, float],
        hold_s: tuple[float, float],
        range_deg: float,
        move_s: float,
        seed: int = 0,
    ) -> None:
        self.rest, self.low, self.high = rest, low, high
        self.interval_s, self.hold_s = interval_s, hold_s
        self.range_deg, self.move_s = range_deg, move_s
        self._rng = random.Random(seed)
        self._start: float | None = None
        self._target = rest
        self._hold = 0.0

    def restart(self, t: float) -> None:
        """The eyes arrived at rest at ``t``: schedule the next glance from then."""
        self._start = t + self._rng.uniform(*self.interval_s)
        lo = max(self.low, self.rest - self.range_deg)
        hi = min(self.high, self.rest + self.range_deg)
        self._target = self._rng.uniform(lo, hi)
        self._hold = self._rng.uniform(*self.hold_s)

    def angle(self, t: float) -> float:
        """The glance angle at time ``t`` (the rest angle between glances), degrees."""
        if self._start is None:
            self.restart(t)
        assert self._start is not None
        t0 = self._start
        if t < t0:
            return self.rest
        back = t0 + self.move_s + self._hold
        if t < back:
            return ease(self.rest, self._target, t0, self.move_s, t)
        if t < back + self.move_s:
            return ease(self._target, self.rest, back, self.move_s, t)
        self.restart(back + self.move_s)
        return self.rest
