"""The opening hours as the running loop follows them: schedule, clock, monitor power.

:class:`Hours` asks the :class:`~appliance.schedule.Watch` about the wall clock (injectable,
so tests drive a closing, an opening, a clock change without waiting for them), puts the
monitor to sleep on closing and wakes it on opening (:class:`~appliance.screenpower.ScreenPower`,
retried with backoff while it fails: 5 s, then twice as long each time, at most a minute), and
adds up the time spent closed so "no viewer for 24 h" counts opening hours only. The loop
(:mod:`appliance.app`) stops and restarts the camera; nothing here touches the camera or the
screen's pixels.

The monitor's commands (``cec-ctl``, up to 5 s each) run on a
:class:`~appliance.worker.Worker` of their own, in order; :meth:`Hours.poll` never waits for
them and picks up their results on a later poll. While the monitor has not yet confirmed its
standby, the screen is drawn black (what 'off' draws as well).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from appliance.schedule import State, Watch, describe
from appliance.screenpower import ClosedLook, ScreenPower
from appliance.status import ScheduleStatus
from appliance.worker import Worker

log = logging.getLogger(__name__)

WAKE_RETRY_FIRST_S = 5.0
"""Seconds before the first new attempt to wake a monitor that did not answer."""

WAKE_RETRY_S = 60.0
"""The longest wait between two attempts to wake a monitor that did not answer, seconds."""

Change = Literal["open", "close"]


def utc_now() -> datetime:
    """The wall clock, time-zone aware (UTC)."""
    return datetime.now(UTC)


class Hours:
    """Follows the opening hours for the main loop.

    Args:
        watch: The schedule to follow.
        screen: The monitor's power while closed.
        wall_clock: The current wall-clock time, aware; injected by tests.
        wake_retry_s: The longest wait between two attempts to wake a monitor that did not
            answer, seconds.
        wake_retry_first_s: The first such wait, seconds; each failure doubles it.
    """

    def __init__(
        self,
        watch: Watch,
        screen: ScreenPower,
        wall_clock: Callable[[], datetime] = utc_now,
        wake_retry_s: float = WAKE_RETRY_S,
        wake_retry_first_s: float = WAKE_RETRY_FIRST_S,
    ) -> None:
        self.watch = watch
        self.screen = screen
        self.wall_clock = wall_clock
        self.wake_retry_s = wake_retry_s
        self.wake_retry_first_s = wake_retry_first_s
        self.look: ClosedLook | None = None
        """While closed, what the screen shows ('off', 'black', 'rest'); None while open."""
        self._closed_since: float | None = None
        self._closed: deque[tuple[float, float]] = deque(maxlen=64)
        self._wake_at: float | None = None
        self._wake_delay = wake_retry_first_s
        self.power = Worker("monalisa-screen")
        """Runs the monitor's cec-ctl commands, one after the other, off the render loop."""

    @property
    def is_open(self) -> bool:
        """True while open (also before the first :meth:`poll`)."""
        state = self.watch.state
        return state is None or state.open

    @property
    def state(self) -> State | None:
        """The state at the last :meth:`poll`; None before the first."""
        return self.watch.state

    def poll(self, now: float) -> Change | None:
        """Look at the wall clock; say whether the gallery just opened or closed.

        The first poll says "close" if closed and nothing if open (the monitor is asked to
        wake then, in case a run that stopped while closed left it in standby). Never waits
        for the monitor: its commands run on :attr:`power`.

        Args:
            now: The loop's monotonic clock, seconds (for the closed-time account).
        """
        self._collect(now)
        first = self.watch.state is None
        changed = self.watch.poll(self.wall_clock())
        if changed is None:
            self._retry_wake(now)
            return None
        if not changed.open:
            self._closed_since = now
            self._wake_at = None
            self.look = self._sleep()
            return "close"
        if first:
            self.power.submit("wake", self.screen.wake_at_start)
            return None
        if self._closed_since is not None:
            self._closed.append((self._closed_since, now))
        self._closed_since = None
        self.look = None
        self._wake_at = now
        self._wake_delay = self.wake_retry_first_s
        self._retry_wake(now)
        return "open"

    def _sleep(self) -> ClosedLook:
        """Ask the monitor to sleep if configured; what to draw until it answers."""
        if self.screen.mode != "off":
            return self.screen.mode
        self.power.submit("sleep", self.screen.sleep)
        return "black"

    def _retry_wake(self, now: float) -> None:
        if self._wake_at is None or now < self._wake_at or self.power.busy("wake"):
            return
        self._wake_at = None  # due again if this attempt fails (see _collect)
        self.power.submit("wake", self.screen.wake)

    def _collect(self, now: float) -> None:
        """Take in what the monitor answered since the last poll."""
        for done in self.power.done():
            if done.key == "sleep":
                if self.look is not None:  # still closed: draw what the monitor allows
                    self.look = done.value if done.error is None else "black"
            elif done.error is None and done.value:
                self._wake_delay = self.wake_retry_first_s
            elif self.is_open:
                self._wake_at = now + self._wake_delay
                self._wake_delay = min(2 * self._wake_delay, self.wake_retry_s)

    def close(self) -> None:
        """Stop the monitor's worker (a command still running is left to its timeout)."""
        self.power.close()

    def closed_between(self, start: float, end: float) -> float:
        """Seconds closed between two instants of the loop's monotonic clock."""
        spans = list(self._closed)
        if self._closed_since is not None:
            spans.append((self._closed_since, end))
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)

    def status(self, now: float, unseen_since: float) -> ScheduleStatus:
        """The schedule part of the status.

        Args:
            now: The loop's monotonic clock, seconds.
            unseen_since: When a viewer was last followed (or the loop started), same clock.
        """
        state = self.watch.state
        wall = self.wall_clock()
        unseen = max(0.0, now - unseen_since - self.closed_between(unseen_since, now))
        if state is None:
            return ScheduleStatus(unseen_open_s=round(unseen, 1))
        return ScheduleStatus(
            open=state.open,
            until=None if state.until is None else state.until.isoformat(),
            text=describe(state, wall),
            screen=self.look,
            unseen_open_s=round(unseen, 1),
        )
