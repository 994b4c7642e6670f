"""Smoothing of the gaze angle, independent of the frame rate.

Every filter takes samples ``(t, x)`` with ``t`` in seconds and ``x`` in degrees and returns
the smoothed value. The time step ``dt`` between samples is capped at :data:`MAX_DT_S` so a
long gap (the viewer was missed for a while) does not make the eyes snap; a step of 0 or less
(a repeated or earlier timestamp) leaves the value unchanged.
"""

from __future__ import annotations

import math
from typing import Protocol

MAX_DT_S = 0.25
"""Longest time step a filter integrates at once, seconds."""


class AngleFilter(Protocol):
    """A one-dimensional smoothing filter."""

    value: float | None

    def update(self, t: float, x: float) -> float:
        """Feed a sample at time ``t`` seconds; return the smoothed value."""

    def reset(self, t: float, x: float) -> None:
        """Set the state to ``x`` at time ``t`` without smoothing (e.g. after idling)."""


def _alpha_tau(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-dt / tau)


def _alpha_cutoff(dt: float, cutoff_hz: float) -> float:
    return 1.0 - math.exp(-2.0 * math.pi * cutoff_hz * dt)


class _Base:
    def __init__(self) -> None:
        self.value: float | None = None
        self._t: float | None = None

    def _dt(self, t: float) -> float:
        prev = self._t
        if prev is None:
            return 0.0
        return min(max(t - prev, 0.0), MAX_DT_S)

    def reset(self, t: float, x: float) -> None:
        """Set the state to ``x`` at time ``t`` without smoothing."""
        self.value = x
        self._t = t


class NoFilter(_Base):
    """Passes every sample through unchanged."""

    def update(self, t: float, x: float) -> float:
        """Return ``x``."""
        self.reset(t, x)
        return x


class ExpFilter(_Base):
    """Exponential smoothing: ``y += alpha * (x - y)`` with ``alpha = 1 - exp(-dt / tau)``.

    Args:
        tau_s: Time constant in seconds (> 0): after a step the output has covered 63 % of it
            in ``tau_s``, 95 % in ``3 * tau_s``.
    """

    def __init__(self, tau_s: float) -> None:
        super().__init__()
        if not tau_s > 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.tau_s = tau_s

    def update(self, t: float, x: float) -> float:
        """Feed a sample; return the smoothed value in the sample's units."""
        if self.value is None:
            self.reset(t, x)
            return x
        dt = self._dt(t)
        self.value += _alpha_tau(dt, self.tau_s) * (x - self.value)
        self._t = t
        return self.value


class OneEuroFilter(_Base):
    """The One Euro filter (Casiez, Roussel and Vogel, CHI 2012).

    An exponential filter whose cutoff rises with the speed of the signal: calm (cutoff
    ``min_cutoff``) when the visitor stands still, little lag when they move. The speed is
    itself smoothed with cutoff ``d_cutoff``. Alphas use ``1 - exp(-2 pi fc dt)``, the exact
    discretisation of a first-order low-pass, so the response does not depend on the rate.

    Args:
        min_cutoff: Cutoff when still, Hz (> 0).
        beta: Cutoff increase per unit/s of speed, Hz per (degree/s) (>= 0).
        d_cutoff: Cutoff of the speed estimate, Hz (> 0).
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        super().__init__()
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.speed = 0.0

    def reset(self, t: float, x: float) -> None:
        """Set the state to ``x`` at rest at time ``t``."""
        super().reset(t, x)
        self.speed = 0.0

    def update(self, t: float, x: float) -> float:
        """Feed a sample; return the smoothed value in the sample's units."""
        if self.value is None:
            self.reset(t, x)
            return x
        dt = self._dt(t)
        self._t = t
        if dt <= 0:
            return self.value
        raw_speed = (x - self.value) / dt
        self.speed += _alpha_cutoff(dt, self.d_cutoff) * (raw_speed - self.speed)
        cutoff = self.min_cutoff + self.beta * abs(self.speed)
        self.value += _alpha_cutoff(dt, cutoff) * (x - self.value)
        return self.value


def make_filter(
    kind: str, *, tau_s: float, min_cutoff: float, beta: float, d_cutoff: float
) -> AngleFilter:
    """Build the filter named by ``[gaze] filter``: ``exp``, ``one_euro`` or ``none``."""
    if kind == "exp":
        return ExpFilter(tau_s)
    if kind == "one_euro":
        return OneEuroFilter(min_cutoff, beta, d_cutoff)
    if kind == "none":
        return NoFilter()
    raise ValueError(f"unknown filter {kind!r}; expected 'exp', 'one_euro' or 'none'")
