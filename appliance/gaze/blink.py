"""When the portrait blinks: a clock of random blinks at human rates, and blinks with big moves.

People blink some 10-20 times a minute at rest and less while they attend to something, each
blink lasting 100-300 ms, and often together with a large gaze shift. :class:`BlinkClock`
draws the time to the next blink from a gamma distribution of shape :data:`SHAPE` whose mean is
one over the configured rate (never sooner than :data:`REFRACTORY_S` after the last one), and
starts a blink
with probability ``[gaze] blink_with_shift`` when the gaze angle jumps by ``blink_shift_deg``
or more between two updates. The lids close in the first :data:`CLOSING` of a blink and open in
the rest (real lids fall faster than they rise).

The clock only says how closed the lids are: it never changes which gaze is chosen.
Pure logic (no camera or display); deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from appliance.config import GazeConfig

SHAPE = 3.0
"""Shape of the gamma distribution of the intervals between blinks: irregular, as people's
are, but without the long gaps of an exponential one (shape 1, a Poisson process), which left a
still visitor 40 s with fewer than two blinks about once in 30 (at 8 a minute)."""

REFRACTORY_S = 1.0
"""Least time between the starts of two blinks, seconds."""

JUMP_S = 5.0
"""A clock that jumps back or forward by more than this (seconds) restarts the intervals: the
first camera frame's time after start-up, a replay clip started again, closed hours. (Smaller
steps back are the usual jitter between a frame's capture time and the time between frames.)"""

CLOSING = 0.4
"""Fraction of a blink the lids take to close (the rest they take to open)."""


def lid_phase(closed: float, phases: Sequence[float]) -> int:
    """The lid phase to show for lids ``closed`` (0 open .. 1 shut): the first as closed.

    So a blink shows for its whole length (even a short one, between two screen frames,
    shows a closing lid).

    Args:
        closed: How closed the lids are, 0..1.
        phases: The set's lid phases, increasing, the first 0 (open).
    """
    for k, v in enumerate(phases):
        if v >= closed - 1e-9:
            return k
    return len(phases) - 1


class BlinkClock:
    """Random blinks at human rates (see the module's text).

    Args:
        config: The ``[gaze]`` settings (``blink``, ``blink_rate_per_min``,
            ``blink_rate_attending_per_min``, ``blink_duration_s``, ``blink_with_shift``,
            ``blink_shift_deg``).
        enabled: False for a set without lid phases: :meth:`update` then always returns 0.
        seed: Seed of the random intervals.
    """

    def __init__(self, config: GazeConfig, enabled: bool = True, seed: int = 0) -> None:
        self.config = config
        self.enabled = enabled and config.blink
        self.rng = random.Random(seed)
        self.start: float | None = None  # the current or last blink's start, seconds
        self.duration = 0.0
        self.next: float | None = None
        self.count = 0
        self._angle: float | None = None
        self._t: float | None = None

    def _interval(self, attending: bool) -> float:
        cfg = self.config
        rate = cfg.blink_rate_attending_per_min if attending else cfg.blink_rate_per_min
        if rate <= 0:
            return math.inf
        return max(REFRACTORY_S, self.rng.gammavariate(SHAPE, 60.0 / rate / SHAPE))

    def _begin(self, t: float, attending: bool) -> None:
        lo, hi = self.config.blink_duration_s
        self.start, self.duration = t, self.rng.uniform(lo, hi)
        self.next = t + self._interval(attending)
        self.count += 1

    def update(self, t: float, attending: bool, angle: float) -> float:
        """Advance to time ``t``; return how closed the lids are, 0 open .. 1 shut.

        Args:
            t: Time, seconds (the caller's clock, e.g. the camera frames'; see :data:`JUMP_S`).
            attending: True while a visitor is followed (the lower rate applies).
            angle: The gaze angle now, degrees (a jump of ``blink_shift_deg`` or more since
                the last update may start a blink).
        """
        if not self.enabled or not math.isfinite(t):
            return 0.0
        cfg = self.config
        if self._t is not None and abs(t - self._t) > JUMP_S:
            self.start, self.next = None, None  # a blink under way ends: the lids open
        self._t = t
        if self.next is None:
            self.next = t + self._interval(attending)
        jump = self._angle is not None and abs(angle - self._angle) >= cfg.blink_shift_deg
        self._angle = angle
        free = self.start is None or t - self.start >= REFRACTORY_S
        if free and (t >= self.next or (jump and self.rng.random() < cfg.blink_with_shift)):
            self._begin(t, attending)
        if self.start is None or self.duration <= 0:
            return 0.0
        x = (t - self.start) / self.duration
        if not 0.0 <= x < 1.0:
            return 0.0
        return x / CLOSING if x < CLOSING else (1.0 - x) / (1.0 - CLOSING)
