"""Cost of following the opening hours: one ``Watch.poll`` and one ``Schedule.state_at``, µs.

The running loop polls once per tick; ``Watch`` asks the schedule only at a change or a clock
jump, so a tick costs a comparison. The peer, measured in the same run, is
``Schedule.state_at`` itself (what a loop asking every tick would pay): the ratio is what the
watch saves. The schedule is a realistic one (Tue-Sun 10-18, a late Thursday, a Saturday
night past midnight, three closed dates) in Europe/Paris; the clock steps 1 s per poll from a
Monday, so most polls fall in a closed stretch.

Run: ``.venv/bin/python benchmarks/schedule.py [--polls N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.schedule import Schedule, Watch

SCHEDULE = Schedule.parse(
    ["Tue-Sun 10:00-18:00", "Thu 18:00-21:00", "Sat 20:00-01:00"],
    ["2026-12-25", "2027-01-01", "2026-12-31..2027-01-02"],
    ZoneInfo("Europe/Paris"),
)
START = datetime(2026, 12, 21, 9, tzinfo=ZoneInfo("Europe/Paris"))


def per_call_us(call: Callable[[datetime], object], polls: int, repeats: int) -> float:
    """Median over ``repeats`` runs of the mean µs per call over ``polls`` one-second steps."""
    runs = []
    for _ in range(repeats):
        times = [START + timedelta(seconds=k) for k in range(polls)]
        t0 = time.perf_counter_ns()
        for t in times:
            call(t)
        runs.append((time.perf_counter_ns() - t0) / polls / 1000)
    return statistics.median(runs)


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20_000, help="polls per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the median is printed")
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, Python {platform.python_version()}, {args.polls} polls x "
        f"{args.repeats} runs, 1 s apart"
    )
    watch_us = per_call_us(Watch(SCHEDULE).poll, args.polls, args.repeats)
    direct_us = per_call_us(SCHEDULE.state_at, min(args.polls, 2000), args.repeats)
    print(f"Watch.poll            {watch_us:10.2f} µs/poll")
    print(f"Schedule.state_at     {direct_us:10.2f} µs/call (peer)")
    print(f"ratio state_at/poll   {direct_us / watch_us:10.0f}x")
    print(f"one poll a second: {watch_us / 1e6 * 100:.6f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
