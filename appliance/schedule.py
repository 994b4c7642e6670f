"""Opening hours: when the gallery is open, worked out from weekly hours and closed dates.

Pure: no file, clock or environment is read here (the system's time zone is found by
:mod:`appliance.localzone`). Every instant given or returned is a time-zone-aware
``datetime``; answers are in the schedule's zone.

Grammar of one ``open`` entry: ``DAYS TIME-TIME[, TIME-TIME ...]``

- ``DAYS``: ``Mon`` … ``Sun`` (any case), ranges ``Tue-Sun`` (a range may wrap: ``Sat-Mon`` is
  Sat, Sun, Mon), lists ``Mon,Wed,Fri-Sun``, or ``daily``.
- ``TIME``: ``HH:MM`` on a 24-hour clock; an end may be ``24:00``. An end earlier than the
  start runs past midnight into the next day (``Fri 20:00-02:00`` ends Saturday 02:00). A
  start equal to its end is refused (use ``00:00-24:00`` for a whole day).

Periods that overlap or touch are merged (``Tue-Sun 10:00-18:00`` plus ``Thu 18:00-21:00``
is Thursday 10:00-21:00). A ``closed`` entry, ``YYYY-MM-DD`` or ``YYYY-MM-DD..YYYY-MM-DD``
(both days included), closes those whole local days, midnight to midnight, cutting any
period that reaches into them. No ``open`` entry means open around the clock (closed dates
still apply); neither means always open.

Clock changes: hours are local wall-clock times, so ``10:00`` is 10:00 on the day of a
change too. A time that does not exist (skipped when the clocks go forward, e.g. 02:30 in
Europe/Paris on the last Sunday of March) is taken as the instant the clock would show had
it not jumped, i.e. one gap later (02:30 -> 03:30 summer time), so ``02:15-02:45`` is
03:15-03:45 that day and ``02:30-03:00``, which would end before it starts, does not happen
that day. A time that happens twice (when the
clocks go back) is its first occurrence, the earlier instant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TypeVar

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Day abbreviations, Monday first (``datetime.weekday()`` order)."""

LOOKAHEAD_DAYS = 800
"""How far :meth:`Schedule.next_change` looks ahead, days (longer than any closed range)."""

_T = TypeVar("_T")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ScheduleError(ValueError):
    """An ``open`` or ``closed`` entry, or a time zone, that cannot be read.

    The message is one line naming the bad part, e.g. ``unknown day 'Sunday' (days: Mon Tue
    Wed Thu Fri Sat Sun, ranges like Tue-Sun, lists like Mon,Wed, or daily)``; the caller
    prefixes the key (``schedule.open[1]``).
    """


@dataclass(frozen=True)
class Span:
    """One daily opening: from ``start`` to ``end`` local time, past midnight if ``overnight``.

    Attributes:
        start: Opening time of day.
        end: Closing time of day; ``time(0)`` with ``overnight`` for ``24:00``.
        overnight: The closing time is on the next day.
    """

    start: time
    end: time
    overnight: bool


@dataclass(frozen=True)
class Rule:
    """One ``open`` entry: the weekdays (0 = Monday) it applies to and its daily spans."""

    days: frozenset[int]
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Period:
    """An interval of time, aware datetimes in the schedule's zone; ``start`` < ``end``."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class State:
    """Whether the gallery is open at an instant and until when.

    Attributes:
        open: True while open.
        until: The next change (closing if open, opening if closed), in the schedule's
            zone; None if nothing ever changes (always open).
    """

    open: bool
    until: datetime | None


def _day(name: str) -> int:
    for i, day in enumerate(DAY_NAMES):
        if name.lower() == day.lower():
            return i
    raise ScheduleError(
        f"unknown day {name!r} (days: {' '.join(DAY_NAMES)}, ranges like "
        "Tue-Sun, lists like Mon,Wed, or daily)"
    )


def parse_days(text: str) -> frozenset[int]:
    """Weekdays (0 = Monday) named by ``Tue-Sun``, ``Sat-Mon``, ``Mon,Wed,Fri-Sun`` or ``daily``.

    Args:
        text: The days part of an ``open`` entry.

    Raises:
        ScheduleError: An unknown day name or an empty list item.
    """
    if text.lower() == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for item in text.split(","):
        first, sep, last = item.strip().partition("-")
        if not first or (sep and not last):
            raise ScheduleError(f"empty day in {text!r}")
        a = _day(first)
        b = _day(last) if sep else a
        days.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    return frozenset(days)


def _clock(text: str, *, end: bool) -> time:
    m = _TIME.match(text)
    hour, minute = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    if end and (hour, minute) == (24, 0):
        return time(0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        upto = "24:00" if end else "23:59"
        raise ScheduleError(f"bad time {text!r} (HH:MM, 00:00 to {upto})")
    return time(hour, minute)


def parse_span(text: str) -> Span:
    """A ``HH:MM-HH:MM`` span; an end at or before the start (but not equal) is overnight.

    Raises:
        ScheduleError: Not two times joined by ``-``, a bad time, or an empty span.
    """
    start_text, sep, end_text = text.strip().partition("-")
    if not sep:
        raise ScheduleError(f"expected HH:MM-HH:MM, got {text.strip()!r}")
    start = _clock(start_text.strip(), end=False)
    end = _clock(end_text.strip(), end=True)
    is_24 = end_text.strip() == "24:00"
    if start == end and not is_24:
        raise ScheduleError(f"{text.strip()!r} is empty (for a whole day write 00:00-24:00)")
    return Span(start, end, overnight=is_24 or end < start)


def parse_rule(entry: str) -> Rule:
    """One ``open`` entry, e.g. ``Tue-Sun 10:00-18:00`` or ``Sat 10:00-13:00, 14:00-18:00``.

    Raises:
        ScheduleError: One line naming the bad part of ``entry``.
    """
    days_text, _, spans_text = entry.strip().partition(" ")
    if not days_text or not spans_text.strip():
        raise ScheduleError(
            f"expected 'DAYS HH:MM-HH:MM', e.g. 'Tue-Sun 10:00-18:00', got {entry!r}"
        )
    days = parse_days(days_text)
    spans = tuple(parse_span(s) for s in spans_text.split(","))
    return Rule(days, spans)


def _date(text: str) -> date:
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ScheduleError(f"bad date {text!r} (YYYY-MM-DD, a day that exists)")


def parse_closed(entry: str) -> tuple[date, date]:
    """A closed day ``YYYY-MM-DD`` or range ``YYYY-MM-DD..YYYY-MM-DD`` (both included).

    Returns:
        The first and last closed day.

    Raises:
        ScheduleError: A bad date, or a range that ends before it starts.
    """
    first_text, sep, last_text = entry.strip().partition("..")
    first = _date(first_text.strip())
    last = _date(last_text.strip()) if sep else first
    if last < first:
        raise ScheduleError(f"{last_text.strip()!r} is before {first_text.strip()!r}")
    return first, last


def _at(day: date, clock: time, zone: tzinfo) -> datetime:
    """The UTC instant of local ``day`` ``clock`` (gaps: one gap later; repeats: the first)."""
    return datetime.combine(day, clock, zone).astimezone(UTC)


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(
    intervals: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out = intervals
    for h0, h1 in holes:
        cut: list[tuple[datetime, datetime]] = []
        for s, e in out:
            if e <= h0 or s >= h1:
                cut.append((s, e))
                continue
            if s < h0:
                cut.append((s, h0))
            if e > h1:
                cut.append((h1, e))
        out = cut
    return out


def _parse_each(key: str, entries: Sequence[str], parse: Callable[[str], _T]) -> list[_T]:
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(parse(entry))
        except ScheduleError as err:
            raise ScheduleError(f"{key}[{i}]: {err}") from None
    return out


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t.isoformat()} has no time zone: give an aware datetime")
    return t.astimezone(UTC)


class Schedule:
    """Weekly opening hours minus closed dates, in one time zone.

    Attributes:
        rules: The parsed ``open`` entries; empty = open around the clock.
        closed: (first, last) closed days, both included.
        zone: The zone the hours and dates are local to.
    """

    def __init__(
        self, rules: Sequence[Rule], closed: Sequence[tuple[date, date]], zone: tzinfo
    ) -> None:
        self.rules = tuple(rules)
        self.closed = tuple(closed)
        self.zone = zone

    @classmethod
    def parse(cls, open_: Sequence[str], closed: Sequence[str], zone: tzinfo) -> Schedule:
        """Build a schedule from the config's strings.

        Raises:
            ScheduleError: The first bad entry, its message prefixed with ``open[i]: `` or
                ``closed[i]: `` (0-based, as the config's key paths).
        """
        rules = _parse_each("open", open_, parse_rule)
        days = _parse_each("closed", closed, parse_closed)
        return cls(rules, days, zone)

    @property
    def always_open(self) -> bool:
        """True when there are neither opening hours nor closed dates."""
        return not self.rules and not self.closed

    def _local_day(self, t: datetime) -> date:
        return t.astimezone(self.zone).date()

    def _open_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """UTC intervals of the openings that start on local ``day`` (before closed dates)."""
        if not self.rules:
            return [(_at(day, time(0), self.zone), _at(day + timedelta(1), time(0), self.zone))]
        out = []
        for rule in self.rules:
            if day.weekday() not in rule.days:
                continue
            for span in rule.spans:
                end_day = day + timedelta(1) if span.overnight else day
                start, end = _at(day, span.start, self.zone), _at(end_day, span.end, self.zone)
                if start < end:  # 02:30-03:00 on the day 02:30 is moved to 03:30
                    out.append((start, end))
        return out

    def _closed_between(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        holes = []
        for c0, c1 in self.closed:
            a, b = max(c0, first), min(c1, last)
            if a <= b:
                holes.append(
                    (_at(a, time(0), self.zone), _at(b + timedelta(1), time(0), self.zone))
                )
        return holes

    def periods(self, start: datetime, end: datetime) -> list[Period]:
        """The open periods overlapping [start, end), merged, cut to it, oldest first."""
        s, e = _utc(start), _utc(end)
        first, last = self._local_day(s) - timedelta(1), self._local_day(e) + timedelta(1)
        opened: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            opened.extend(self._open_on(day))
            day += timedelta(1)
        kept = _subtract(_merge(opened), self._closed_between(first, last + timedelta(1)))
        return [
            Period(max(a, s).astimezone(self.zone), min(b, e).astimezone(self.zone))
            for a, b in kept
            if b > s and a < e
        ]

    def state_at(self, t: datetime) -> State:
        """Open or closed at ``t``, and until when (None: never changes).

        Looks up to :data:`LOOKAHEAD_DAYS` ahead; the answer does not change before
        ``until``, so a caller ticking once a second need ask again only then.
        """
        u = _utc(t)
        if self.always_open:
            return State(True, None)
        window_start, horizon = u, u + timedelta(days=LOOKAHEAD_DAYS)
        is_open: bool | None = None
        while window_start < horizon:
            window_end = window_start + timedelta(days=7)
            found = self.periods(window_start, window_end)
            if is_open is None:
                is_open = bool(found) and _utc(found[0].start) <= u
            if not is_open and found:
                return State(False, found[0].start)
            if is_open and (not found or _utc(found[0].start) > window_start):
                return State(True, window_start.astimezone(self.zone))
            if is_open and _utc(found[0].end) < window_end:
                return State(True, found[0].end)
            window_start = window_end
        return State(bool(is_open), None)

    def is_open(self, t: datetime) -> bool:
        """True if the gallery is open at ``t``."""
        return self.state_at(t).open

    def next_change(self, t: datetime) -> datetime | None:
        """The next opening or closing after ``t``, None if none within the look-ahead."""
        return self.state_at(t).until


def format_until(until: datetime | None, now: datetime) -> str:
    """A short local form of ``until`` for a status line, as seen at ``now``.

    ``18:00`` the same day, ``Tue 10:00`` within the coming week, ``2027-01-02 10:00``
    further away, ``never`` for None. ``until`` is shown in its own zone.
    """
    if until is None:
        return "never"
    local_now = now.astimezone(until.tzinfo)
    days = (until.date() - local_now.date()).days
    if days == 0:
        return until.strftime("%H:%M")
    if 0 < days < 7:
        return f"{DAY_NAMES[until.weekday()]} {until:%H:%M}"
    return until.strftime("%Y-%m-%d %H:%M")


def week_lines(schedule: Schedule, first: date, days: int = 7) -> list[str]:
    """One line per local day from ``first``: its open times, or ``closed``.

    A period running past midnight shows on both days (``20:00-24:00``, then
    ``00:00-02:00``); a closed date says so.

    Args:
        schedule: The schedule to show.
        first: The first local day.
        days: How many days, >= 1.

    Returns:
        Lines like ``Thu 2026-12-10  10:00-21:00`` or ``Fri 2026-12-25  closed (closed date)``.
    """
    lines = []
    zone = schedule.zone
    for k in range(days):
        day = first + timedelta(k)
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(1), time(0), zone)
        spans = []
        for p in schedule.periods(start, end):
            until = "24:00" if p.end.date() > day else f"{p.end:%H:%M}"
            spans.append(f"{p.start:%H:%M}-{until}")
        if spans:
            what = ", ".join(spans)
        elif any(c0 <= day <= c1 for c0, c1 in schedule.closed):
            what = "closed (closed date)"
        else:
            what = "closed"
        lines.append(f"{DAY_NAMES[day.weekday()]} {day.isoformat()}  {what}")
    return lines


def describe(state: State, now: datetime) -> str:
    """``open until 18:00``, ``closed until Tue 10:00`` or ``open`` (always open), at ``now``."""
    word = "open" if state.open else "closed"
    if state.until is None:
        return word
    return f"{word} until {format_until(state.until, now)}"


class Watch:
    """Follows a schedule for a loop that ticks at any rate, asking it only at changes.

    Between changes :meth:`poll` costs one comparison. The clock may jump (NTP setting a Pi's
    clock after boot, a technician's ``date``): a jump past the next change is a change, and a
    jump backwards asks the schedule again.

    Args:
        schedule: The opening hours to follow.
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.state: State | None = None
        """The state at the last poll; None before the first."""
        self._last: datetime | None = None

    def poll(self, now: datetime) -> State | None:
        """The new state if open/closed changed since the last poll, else None.

        The first poll always returns the state.

        Args:
            now: The current time, aware (``datetime.now(UTC)``).
        """
        u = _utc(now)
        last, self._last = self._last, u
        current = self.state
        steady = last is not None and u >= last
        if current is not None and steady and (current.until is None or u < _utc(current.until)):
            return None
        new = self.schedule.state_at(u)
        self.state = new
        if current is None or new.open != current.open:
            return new
        return None
