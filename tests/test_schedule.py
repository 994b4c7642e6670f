"""Opening hours: parsing, transitions, closed dates, wrapping days, clock changes, errors.

The clock is whatever instant a test passes in: nothing sleeps and nothing reads the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.schedule import (
    DAY_NAMES,
    LOOKAHEAD_DAYS,
    Period,
    Schedule,
    ScheduleError,
    State,
    Watch,
    describe,
    format_until,
    parse_closed,
    parse_days,
    parse_rule,
    week_lines,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def at(
    y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0, zone: ZoneInfo = PARIS
) -> datetime:
    return datetime(y, mo, d, h, mi, sec, tzinfo=zone)


def walk(schedule: Schedule, start: datetime, steps: int) -> list[tuple[bool, datetime]]:
    """Follow the transitions from ``start``: (open, until) at each change."""
    out = []
    t = start
    for _ in range(steps):
        state = schedule.state_at(t)
        assert state.until is not None
        out.append((state.open, state.until))
        t = state.until
    return out


GALLERY = Schedule.parse(["Tue-Sun 10:00-18:00", "Thu 18:00-21:00"], ["2026-12-25"], PARIS)


def test_open_closed_open_over_a_week():
    # Sunday 2026-12-06, 03:00: closed; opens Sunday 10:00; closed Monday; late Thursday.
    assert walk(GALLERY, at(2026, 12, 6, 3), 8) == [
        (False, at(2026, 12, 6, 10)),
        (True, at(2026, 12, 6, 18)),
        (False, at(2026, 12, 8, 10)),
        (True, at(2026, 12, 8, 18)),
        (False, at(2026, 12, 9, 10)),
        (True, at(2026, 12, 9, 18)),
        (False, at(2026, 12, 10, 10)),
        (True, at(2026, 12, 10, 21)),  # Tue-Sun and the late Thursday merge
    ]


def test_state_at_the_edges():
    assert GALLERY.state_at(at(2026, 12, 8, 10)) == State(True, at(2026, 12, 8, 18))
    assert GALLERY.state_at(at(2026, 12, 8, 9, 59, 59)) == State(False, at(2026, 12, 8, 10))
    assert GALLERY.state_at(at(2026, 12, 8, 18)) == State(False, at(2026, 12, 9, 10))
    assert GALLERY.is_open(at(2026, 12, 8, 17, 59))
    assert not GALLERY.is_open(at(2026, 12, 7, 12))  # Monday
    assert GALLERY.next_change(at(2026, 12, 7, 12)) == at(2026, 12, 8, 10)


def test_the_answer_holds_until_its_change():
    t = at(2026, 12, 6, 3)
    state = GALLERY.state_at(t)
    assert state.until is not None
    while t < state.until:
        assert GALLERY.state_at(t).open == state.open
        t += timedelta(minutes=37)


def test_any_zone_of_the_caller_gives_the_same_answer():
    utc = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)  # 10:30 in Paris
    tokyo = utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert GALLERY.state_at(utc) == GALLERY.state_at(tokyo) == State(True, at(2026, 12, 8, 18))
    assert GALLERY.state_at(utc).until.tzinfo is PARIS  # type: ignore[union-attr]


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        GALLERY.state_at(datetime(2026, 12, 8, 12))


def test_closed_date_closes_the_whole_day():
    # Christmas is a Friday: it would be open 10-18; Thursday 24th late opening still holds.
    assert GALLERY.state_at(at(2026, 12, 24, 20)) == State(True, at(2026, 12, 24, 21))
    assert GALLERY.state_at(at(2026, 12, 24, 21)) == State(False, at(2026, 12, 26, 10))
    assert not GALLERY.is_open(at(2026, 12, 25, 12))


def test_closed_range_cuts_a_period_running_into_it():
    s = Schedule.parse(["Fri 20:00-02:00"], ["2027-01-02..2027-01-03"], PARIS)
    # Friday 1 January 20:00 to Saturday 02:00: Saturday is closed, so it ends at midnight.
    assert s.periods(at(2027, 1, 1), at(2027, 1, 3)) == [Period(at(2027, 1, 1, 20), at(2027, 1, 2))]
    assert s.state_at(at(2027, 1, 1, 23)) == State(True, at(2027, 1, 2))


def test_overnight_period_ends_next_day():
    s = Schedule.parse(["Fri 20:00-02:00"], [], PARIS)
    assert s.state_at(at(2026, 12, 11, 21)) == State(True, at(2026, 12, 12, 2))
    assert s.is_open(at(2026, 12, 12, 1, 59))
    assert not s.is_open(at(2026, 12, 12, 2))
    assert s.state_at(at(2026, 12, 12, 2)) == State(False, at(2026, 12, 18, 20))


def test_whole_days_merge_across_midnight():
    s = Schedule.parse(["Sat-Sun 00:00-24:00"], [], PARIS)
    assert s.state_at(at(2026, 12, 12, 5)) == State(True, at(2026, 12, 14))
    assert s.state_at(at(2026, 12, 14)) == State(False, at(2026, 12, 19))


def test_wrapping_day_range_and_lists():
    assert parse_days("Sat-Mon") == {5, 6, 0}
    assert parse_days("Fri-Tue") == {4, 5, 6, 0, 1}
    assert parse_days("Mon,Wed") == {0, 2}
    assert parse_days("mon,Wed-Thu,SUN") == {0, 2, 3, 6}
    assert parse_days("daily") == set(range(7))
    assert parse_days("Tue-Tue") == {1}
    s = Schedule.parse(["Sat-Mon 10:00-12:00"], [], PARIS)
    opens = [s.is_open(at(2026, 12, d, 11)) for d in range(7, 14)]  # Mon 7 .. Sun 13
    assert opens == [True, False, False, False, False, True, True]


def test_several_spans_a_day():
    rule = parse_rule("Sat 10:00-13:00, 14:00-18:00")
    assert [(sp.start, sp.end) for sp in rule.spans] == [
        (time(10), time(13)),
        (time(14), time(18)),
    ]
    s = Schedule.parse(["Sat 10:00-13:00, 14:00-18:00"], [], PARIS)
    assert s.state_at(at(2026, 12, 12, 12)) == State(True, at(2026, 12, 12, 13))
    assert s.state_at(at(2026, 12, 12, 13)) == State(False, at(2026, 12, 12, 14))


def test_no_hours_means_around_the_clock_and_no_settings_always_open():
    always = Schedule.parse([], [], PARIS)
    assert always.always_open
    assert always.state_at(at(2026, 12, 25, 3)) == State(True, None)
    holidays = Schedule.parse([], ["2026-12-25"], PARIS)
    assert not holidays.always_open
    assert holidays.state_at(at(2026, 12, 24, 12)) == State(True, at(2026, 12, 25))
    assert holidays.state_at(at(2026, 12, 25, 12)) == State(False, at(2026, 12, 26))


def test_closed_longer_than_the_lookahead_says_never():
    far = date(2026, 12, 1) + timedelta(days=LOOKAHEAD_DAYS + 10)
    s = Schedule.parse(["daily 10:00-18:00"], [f"2026-12-01..{far.isoformat()}"], PARIS)
    assert s.state_at(at(2026, 12, 6, 12)) == State(False, None)


# --- Clock changes -----------------------------------------------------------------------


def test_spring_forward_opens_at_local_ten_both_days():
    s = Schedule.parse(["daily 10:00-18:00"], [], PARIS)
    # 2026-03-29: Paris goes from UTC+1 to UTC+2 at 02:00 local.
    sat = s.state_at(datetime(2026, 3, 28, 5, tzinfo=UTC))
    sun = s.state_at(datetime(2026, 3, 29, 5, tzinfo=UTC))
    assert sat.until is not None and sun.until is not None
    assert sat.until.astimezone(UTC) == datetime(2026, 3, 28, 9, tzinfo=UTC)
    assert sun.until.astimezone(UTC) == datetime(2026, 3, 29, 8, tzinfo=UTC)
    assert (sat.until.hour, sun.until.hour) == (10, 10)


def test_fall_back_closes_at_local_six():
    s = Schedule.parse(["daily 10:00-18:00"], [], NEW_YORK)
    # 2026-11-01: New York goes from UTC-4 to UTC-5 at 02:00 local.
    sun = s.state_at(datetime(2026, 11, 1, 16, tzinfo=UTC))  # 11:00 EST
    assert sun == State(True, at(2026, 11, 1, 18, zone=NEW_YORK))
    assert sun.until is not None
    assert sun.until.astimezone(UTC) == datetime(2026, 11, 1, 23, tzinfo=UTC)


def test_nonexistent_time_is_one_gap_later():
    s = Schedule.parse(["Sun 02:30-04:00"], [], PARIS)
    (p,) = s.periods(at(2026, 3, 29), at(2026, 3, 30))
    assert p.start.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert (p.start.hour, p.start.minute) == (3, 30)
    assert p.end.astimezone(UTC) == datetime(2026, 3, 29, 2, tzinfo=UTC)  # 04:00 CEST


def test_span_from_the_skipped_hour_to_its_end_does_not_happen():
    s = Schedule.parse(["Sun 02:30-03:00"], [], PARIS)
    # 02:30 becomes 03:30, after 03:00: nothing that Sunday, the next Sunday as usual.
    assert s.periods(at(2026, 3, 29), at(2026, 3, 30)) == []
    assert s.state_at(at(2026, 3, 28, 12)) == State(False, at(2026, 4, 5, 2, 30))
    inside = Schedule.parse(["Sun 02:15-02:45"], [], PARIS)
    assert inside.periods(at(2026, 3, 29), at(2026, 3, 30)) == [
        Period(at(2026, 3, 29, 3, 15), at(2026, 3, 29, 3, 45))
    ]


def test_repeated_time_is_the_first():
    s = Schedule.parse(["Sun 01:00-02:30"], [], PARIS)
    (p,) = s.periods(at(2026, 10, 25), at(2026, 10, 26))
    # 02:30 happens at 00:30 UTC (summer time) and 01:30 UTC: the first is taken.
    assert p.end.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert p.start.astimezone(UTC) == datetime(2026, 10, 24, 23, tzinfo=UTC)


def test_closed_day_on_a_short_day_is_23_hours():
    s = Schedule.parse([], ["2026-03-29"], PARIS)
    state = s.state_at(at(2026, 3, 29, 0))
    assert state == State(False, at(2026, 3, 30))
    assert state.until is not None
    # Aware datetimes of one zone subtract as wall times: compare in UTC.
    closed_for = state.until.astimezone(UTC) - at(2026, 3, 29).astimezone(UTC)
    assert closed_for == timedelta(hours=23)


# --- Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("Tue-Sun", "expected 'DAYS HH:MM-HH:MM', e.g. 'Tue-Sun 10:00-18:00', got 'Tue-Sun'"),
        ("", "expected 'DAYS HH:MM-HH:MM', e.g. 'Tue-Sun 10:00-18:00', got ''"),
        (
            "Sunday 10:00-18:00",
            "unknown day 'Sunday' (days: Mon Tue Wed Thu Fri Sat Sun, ranges like Tue-Sun, "
            "lists like Mon,Wed, or daily)",
        ),
        ("Mon,,Tue 10:00-18:00", "empty day in 'Mon,,Tue'"),
        ("Mon- 10:00-18:00", "empty day in 'Mon-'"),
        ("Mon 10:00", "expected HH:MM-HH:MM, got '10:00'"),
        ("Mon 10-18", "bad time '10' (HH:MM, 00:00 to 23:59)"),
        ("Mon 24:00-18:00", "bad time '24:00' (HH:MM, 00:00 to 23:59)"),
        ("Mon 10:00-18:60", "bad time '18:60' (HH:MM, 00:00 to 24:00)"),
        ("Mon 10:00-24:01", "bad time '24:01' (HH:MM, 00:00 to 24:00)"),
        ("Mon 10:00-10:00", "'10:00-10:00' is empty (for a whole day write 00:00-24:00)"),
        ("Mon 10:00-18:00,", "expected HH:MM-HH:MM, got ''"),
        ("2026-02-30", "bad date '2026-02-30' (YYYY-MM-DD, a day that exists)"),
        ("25/12/2026", "bad date '25/12/2026' (YYYY-MM-DD, a day that exists)"),
        ("2026-12-24..", "bad date '' (YYYY-MM-DD, a day that exists)"),
        ("2026-12-26..2026-12-24", "'2026-12-24' is before '2026-12-26'"),
    ],
)
def test_entry_errors(entry, message):
    parse = parse_closed if entry[:1].isdigit() else parse_rule
    with pytest.raises(ScheduleError) as info:
        parse(entry)
    assert str(info.value) == message


def test_parse_names_the_entry():
    with pytest.raises(ScheduleError, match=r"^open\[1\]: bad time '9' "):
        Schedule.parse(["Tue 10:00-18:00", "Wed 9-18:00"], [], PARIS)
    with pytest.raises(ScheduleError, match=r"^closed\[0\]: bad date 'xmas' "):
        Schedule.parse(["Tue 10:00-18:00"], ["xmas"], PARIS)


def test_closed_range_parses_both_ends():
    assert parse_closed("2026-12-24..2027-01-01") == (date(2026, 12, 24), date(2027, 1, 1))
    assert parse_closed(" 2026-12-25 ") == (date(2026, 12, 25), date(2026, 12, 25))


# --- Showing it ----------------------------------------------------------------------------


def test_format_until():
    now = at(2026, 12, 6, 9)  # a Sunday
    assert format_until(at(2026, 12, 6, 18), now) == "18:00"
    assert format_until(at(2026, 12, 8, 10), now) == "Tue 10:00"
    assert format_until(at(2026, 12, 13, 10), now) == "2026-12-13 10:00"
    assert format_until(None, now) == "never"


# Tue-Sun, a late Thursday, a Saturday night past midnight and Christmas, from Monday 21st.
WEEK_HOURS = ["Tue-Sun 10:00-18:00", "Thu 18:00-21:00", "Sat 20:00-01:00"]
WEEK_LINES = [
    "Mon 2026-12-21  closed",
    "Tue 2026-12-22  10:00-18:00",
    "Wed 2026-12-23  10:00-18:00",
    "Thu 2026-12-24  10:00-21:00",
    "Fri 2026-12-25  closed (closed date)",
    "Sat 2026-12-26  10:00-18:00, 20:00-24:00",
    "Sun 2026-12-27  00:00-01:00, 10:00-18:00",
]


def test_week_lines():
    s = Schedule.parse(WEEK_HOURS, ["2026-12-25"], PARIS)
    assert week_lines(s, date(2026, 12, 21)) == WEEK_LINES
    assert len(week_lines(s, date(2026, 12, 21), 1)) == 1


# --- `monalisa schedule` (the console script, in a subprocess) -----------------------------

MONALISA = str(Path(sys.executable).with_name("monalisa"))


def run_schedule(
    tmp_path: Path, config: str, *args: str, env: dict[str, str] | None = None
) -> tuple[Path, subprocess.CompletedProcess]:
    """Write ``config`` to a file and run `monalisa schedule --config FILE ARGS` on it."""
    p = tmp_path / "c.toml"
    p.write_text(config)
    return p, subprocess.run(
        [MONALISA, "schedule", "--config", str(p), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_prints_the_week(tmp_path):
    config = f'[schedule]\nopen = {json.dumps(WEEK_HOURS)}\nclosed = ["2026-12-25"]\n'
    config += 'timezone = "Europe/Paris"\n'
    p, done = run_schedule(tmp_path, config, "--from", "2026-12-21T09:00")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{p}: time zone Europe/Paris, screen while closed: off",
        "Mon 2026-12-21 09:00 CET: closed, opens Tue 10:00",
        *WEEK_LINES,
    ]


def test_cli_from_with_an_offset_and_days(tmp_path):
    config = '[schedule]\nopen = ["daily 10:00-18:00"]\ntimezone = "America/New_York"\n'
    _, done = run_schedule(tmp_path, config, "--from", "2026-11-01T16:00+00:00", "--days", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "Sun 2026-11-01 11:00 EST: open, closes 18:00",
        "Sun 2026-11-01  10:00-18:00",
        "Mon 2026-11-02  10:00-18:00",
    ]


def test_cli_system_zone_and_always_open(tmp_path):
    p, done = run_schedule(tmp_path, "", env={"TZ": "Asia/Tokyo"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{p}: time zone Asia/Tokyo, screen while closed: off",
        "always open: [schedule] sets no opening hours and no closed dates",
    ]


def test_cli_bad_config_exits_78_naming_the_entry(tmp_path):
    config = '[schedule]\nopen = ["Tue-Sun 10:00-18:00", "Mon 9-17"]\n'
    p, done = run_schedule(tmp_path, config)
    assert done.returncode == 78
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{p}: schedule.open[1] = 'Mon 9-17': bad time '9' (HH:MM, 00:00 to 23:59)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "monalisa schedule: --days 0: give 1 to 366"),
        (["--from", "Tuesday"], "monalisa schedule: --from 'Tuesday': not an ISO date/time"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, args, message):
    _, done = run_schedule(tmp_path, '[schedule]\nopen = ["daily 10:00-18:00"]\n', *args)
    assert done.returncode == 2
    assert done.stderr.strip() == message


# --- Following it in a loop ----------------------------------------------------------------


def test_describe():
    now = at(2026, 12, 6, 9)  # Sunday
    assert describe(State(False, at(2026, 12, 6, 10)), now) == "closed until 10:00"
    assert describe(State(False, at(2026, 12, 8, 10)), now) == "closed until Tue 10:00"
    assert describe(State(True, at(2026, 12, 6, 18)), now) == "open until 18:00"
    assert describe(State(True, None), now) == "open"


def test_watch_reports_each_change_once_over_a_week():
    watch = Watch(GALLERY)
    t = at(2026, 12, 6, 3)  # Sunday night
    changes = []
    while t < at(2026, 12, 13, 3):
        new = watch.poll(t)
        if new is not None:
            changes.append((t, new.open))
        t += timedelta(seconds=30)
    assert changes == [
        (at(2026, 12, 6, 3), False),  # the first poll
        (at(2026, 12, 6, 10), True),
        (at(2026, 12, 6, 18), False),
        *[(at(2026, 12, d, h), h == 10) for d in range(8, 13) for h in (10, 21 if d == 10 else 18)],
    ]


def test_watch_follows_clock_jumps():
    watch = Watch(GALLERY)
    assert watch.poll(at(2026, 12, 8, 12)) == State(True, at(2026, 12, 8, 18))
    assert watch.poll(at(2026, 12, 8, 12, 1)) is None
    # NTP sets the clock back to the night before: closed, asked again at once.
    assert watch.poll(at(2026, 12, 7, 23)) == State(False, at(2026, 12, 8, 10))
    # ... and forward past two changes (open, then closed again): no change to report.
    assert watch.poll(at(2026, 12, 8, 19)) is None
    assert watch.state == State(False, at(2026, 12, 9, 10))


def test_watch_of_an_always_open_schedule():
    watch = Watch(Schedule.parse([], [], PARIS))
    assert watch.poll(at(2026, 12, 8, 12)) == State(True, None)
    assert watch.poll(at(2027, 12, 8, 12)) is None


# --- Property: state_at agrees with periods -------------------------------------------------

ZONES = [PARIS, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")]  # Lord Howe: 30 min


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        a, b = draw(st.sampled_from(DAY_NAMES)), draw(st.sampled_from(DAY_NAMES))
        h0, h1 = draw(st.integers(0, 23)), draw(st.integers(0, 24))
        m0, m1 = draw(st.sampled_from([0, 30, 59])), 0 if h1 == 24 else draw(st.integers(0, 59))
        if (h0, m0) == (h1, m1):
            continue
        entries.append(f"{a}-{b} {h0:02d}:{m0:02d}-{h1:02d}:{m1:02d}")
    closed = [
        f"2026-{draw(st.integers(1, 12)):02d}-{draw(st.integers(1, 28)):02d}"
        for _ in range(draw(st.integers(0, 5)))
    ]
    return Schedule.parse(entries, closed, draw(st.sampled_from(ZONES)))


@settings(max_examples=300, deadline=None)
@given(schedules(), st.integers(0, 365 * 24 * 60))
def test_state_at_agrees_with_periods(schedule, minutes):
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, seconds=17)
    window_end = t + timedelta(days=40)
    found = schedule.periods(t - timedelta(days=10), window_end)
    state = schedule.state_at(t)
    inside = [p for p in found if p.start <= t < p.end]
    assert state.open == bool(inside)
    if inside:
        if inside[0].end < window_end:
            assert state.until == inside[0].end
    else:
        later = [p.start for p in found if p.start > t]
        if later:
            assert state.until == later[0]
    if state.until is not None:
        assert state.until > t
