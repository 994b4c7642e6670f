"""Opening hours through the real loop: replay camera, headless display, a systemd socket.

The wall clock is scripted (:class:`ScriptedClock`): a few seconds of run time stand for an
evening, a night and a morning, so closing and opening happen without waiting for them.
The finder and gaze are the counting stand-ins of tests/test_app.py (the detector is not
what is tested here; its calls are counted to show it stops).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from appliance.app import App, RunOptions
from appliance.camera import Capture, ReplaySource
from appliance.config import DisplayConfig
from appliance.display import Display
from appliance.frames import FrameSet
from appliance.hours import Hours
from appliance.schedule import Schedule, Watch
from appliance.screenpower import ScreenPower
from appliance.service import Notifier
from tests.support.run import write_astronaut_clip
from tests.test_app import FakeFinder, FakeGaze
from tests.test_service import Listener

PARIS = ZoneInfo("Europe/Paris")
W, H = 80, 60


def paris(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=PARIS)


class ScriptedClock:
    """Wall time that jumps at set moments of the loop's run time and runs on between them.

    Args:
        phases: (seconds of run time, wall time then), in order; the first at 0.
    """

    def __init__(self, phases: list[tuple[float, datetime]]) -> None:
        self.phases = phases
        self.t0: float | None = None

    def elapsed(self) -> float:
        if self.t0 is None:
            self.t0 = time.monotonic()
        return time.monotonic() - self.t0

    def __call__(self) -> datetime:
        e = self.elapsed()
        at, wall = next((a, w) for a, w in reversed(self.phases) if a <= e)
        return (wall + timedelta(seconds=e - at)).astimezone(UTC)


class CountingReplay(ReplaySource):
    """The replay camera, noting when each frame is read and each open/close."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "realtime")
        self.reads: list[float] = []
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        super().open()

    def read(self) -> tuple[np.ndarray, float]:
        got = super().read()
        self.reads.append(time.monotonic())
        return got


@dataclass
class Seen:
    """One status as the loop wrote it, with what was on screen and the camera thread."""

    elapsed: float
    status: dict[str, Any]
    screen_max: int
    shown: int | None
    thread_alive: bool
    finder_calls: int


@dataclass
class Run:
    app: App
    clock: ScriptedClock
    source: CountingReplay
    finder: FakeFinder
    seen: list[Seen] = field(default_factory=list)

    def closed(self) -> list[Seen]:
        return [s for s in self.seen if s.status["gaze_state"] == "closed"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> FrameSet:
    d = tmp_path_factory.mktemp("frames")
    lines = [f"count = 5\nsize = [{W}, {H}]\nrest_index = 2\nhead_box = [20, 20, 60, 40]\n"]
    for i in range(5):
        img = np.full((H, W, 3), 120, np.uint8)
        img[25:35, 20 + i * 8 : 28 + i * 8] = 10
        Image.fromarray(img).save(d / f"f{i}.png")
        lines.append(f'[[frames]]\nfile = "f{i}.png"\nangle = {(i - 2) * 10.0}\n')
    (d / "frames.toml").write_text("\n".join(lines))
    return FrameSet.load(d)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_astronaut_clip(tmp_path_factory.mktemp("clip"), n=8)


class Socket:
    """systemd's notify socket, read on a thread as messages come (its queue is short)."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.env_value = listener.env_value
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            msg = self.listener.recv(0.05)
            if msg is not None:
                self.received.append((time.monotonic(), msg))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def messages(self) -> list[str]:
        return [m for _, m in self.received]


@pytest.fixture
def notify() -> Iterator[Socket]:
    d = tempfile.mkdtemp(prefix="ml-", dir="/tmp")  # short: AF_UNIX paths are <= 107 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "notify"))
    reader = Socket(Listener(sock, os.path.join(d, "notify")))
    try:
        yield reader
    finally:
        reader.close()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def run_app(
    frames: FrameSet,
    clip: Path,
    notify: Socket,
    schedule: Schedule,
    phases: list[tuple[float, datetime]],
    duration_s: float,
    screen: ScreenPower,
) -> Run:
    clock = ScriptedClock(phases)
    source = CountingReplay(clip)
    finder = FakeFinder()
    display = Display(DisplayConfig(window_size=(W, H), background=(0, 0, 255)), frames, "headless")
    notifier = Notifier(environ={"NOTIFY_SOCKET": notify.env_value, "WATCHDOG_USEC": "1000000"})
    hours = Hours(Watch(schedule), screen, wall_clock=clock)
    result: list[Seen] = []

    def sink(status: Any) -> None:
        pixels = display.pixels()
        result.append(
            Seen(
                clock.elapsed(),
                status.to_dict(),
                int(pixels.max()),
                display.shown_index,
                bool(capture.threads()),
                finder.calls,
            )
        )

    capture = Capture(source, retry_initial_s=0.05, retry_max_s=0.1)
    app = App(
        capture=capture,
        finder=finder,
        gaze=FakeGaze(),
        display=display,
        notifier=notifier,
        rest_index=frames.rest_index,
        frame_count=frames.count,
        options=RunOptions(duration_s=duration_s, status_interval_s=0.1),
        status_sink=sink,
        hours=hours,
    )
    clock.elapsed()  # run time starts now
    try:
        assert app.run() == 0
    finally:
        notifier.close()
    return Run(app, clock, source, finder, result)


def assert_watchdog_fed(notify: Socket, at_least: int) -> None:
    """WATCHDOG_USEC is 1 s: at least a ping a second all through the run, closed too."""
    pings = [t for t, m in notify.received if m == "WATCHDOG=1"]
    assert len(pings) >= at_least
    assert max(b - a for a, b in itertools.pairwise(pings)) < 1.0


def between(run: Run, start: float, end: float) -> list[Seen]:
    return [s for s in run.seen if start <= s.elapsed < end]


DAILY = Schedule.parse(["Tue-Sun 10:00-18:00"], [], PARIS)
# Mon 2026-12-07 is closed all day; Tue 2026-12-08 opens at 10:00.


def test_open_closed_open_stops_the_camera_and_blacks_the_screen(frames, clip, notify):
    run = run_app(
        frames,
        clip,
        notify,
        DAILY,
        [
            (0.0, paris(2026, 12, 6, 17, 59, 0)),  # Sunday, open
            (1.5, paris(2026, 12, 6, 18, 0, 1)),  # closes
            (4.0, paris(2026, 12, 8, 10, 0, 0)),  # Tuesday morning: opens
        ],
        duration_s=5.5,
        screen=ScreenPower("black"),
    )
    before, closed, after = between(run, 0.3, 1.4), between(run, 2.0, 3.9), between(run, 4.8, 9)
    assert before and closed and after
    for s in before:
        assert s.status["schedule"]["open"] is True
        assert s.status["schedule"]["text"] == "open until 18:00"
    assert before[-1].status["camera"]["state"] == "running"
    assert before[-1].finder_calls > 0
    for s in closed:
        assert s.status["gaze_state"] == "closed"
        assert s.status["camera"]["state"] == "stopped"
        assert s.status["schedule"] == {
            "open": False,
            "until": "2026-12-08T10:00:00+01:00",
            "text": "closed until Tue 10:00",
            "screen": "black",
            "unseen_open_s": s.status["schedule"]["unseen_open_s"],
        }
        assert s.screen_max == 0  # black
        assert not s.thread_alive  # the capture thread is gone, not just ignored
        assert s.finder_calls == closed[0].finder_calls  # no inference
    t0 = run.clock.t0 or 0.0
    reads_closed = [t for t in run.source.reads if closed[0].elapsed <= t - t0 < 3.9]
    assert reads_closed == []  # no frame grabbed
    assert after[-1].status["camera"]["state"] == "running"
    assert after[-1].status["schedule"]["text"] == "open until 18:00"
    assert after[-1].finder_calls > closed[-1].finder_calls
    assert after[-1].screen_max > 0 and after[-1].shown is not None
    assert run.source.opens == 2
    # The evening's follow memory is forgotten: on opening, and at the camera's new opening.
    assert run.finder.resets == 2
    assert after[-1].status["camera"]["reopens"] == 1
    messages = notify.messages()
    assert "READY=1" in messages
    assert "STATUS=closed until Tue 10:00, screen black, camera stopped" in messages
    assert_watchdog_fed(notify, 8)


def test_closed_at_start_never_starts_the_camera(frames, clip, notify):
    run = run_app(
        frames,
        clip,
        notify,
        DAILY,
        [(0.0, paris(2026, 12, 7, 12, 0))],  # Monday: closed all day
        duration_s=2.5,
        screen=ScreenPower("black"),
    )
    assert run.source.opens == 0 and run.finder.calls == 0
    assert run.seen and all(s.status["gaze_state"] == "closed" for s in run.seen)
    assert_watchdog_fed(notify, 4)


def test_rest_shows_the_portrait_at_rest_with_the_camera_stopped(frames, clip, notify):
    run = run_app(
        frames,
        clip,
        notify,
        DAILY,
        [(0.0, paris(2026, 12, 6, 17, 59, 59)), (1.0, paris(2026, 12, 6, 18, 0, 1))],
        duration_s=2.5,
        screen=ScreenPower("rest"),
    )
    closed = between(run, 1.8, 9)
    assert closed
    for s in closed:
        assert s.status["schedule"]["screen"] == "rest"
        assert s.shown == frames.rest_index and s.screen_max > 0
        assert s.status["camera"]["state"] == "stopped" and not s.thread_alive


def test_dst_change_opens_at_10_local_not_10_summer_time(frames, clip, notify):
    # Sunday 2026-10-25 the clocks go back at 03:00 CEST: 10:00 CET is 09:00 UTC.
    daily = Schedule.parse(["daily 10:00-18:00"], [], PARIS)
    run = run_app(
        frames,
        clip,
        notify,
        daily,
        [
            (0.0, datetime(2026, 10, 25, 8, 30, tzinfo=UTC)),  # 09:30 CET: closed
            (1.5, datetime(2026, 10, 25, 8, 59, 59, tzinfo=UTC)),
            (2.5, datetime(2026, 10, 25, 9, 0, 1, tzinfo=UTC)),  # 10:00:01 CET: open
        ],
        duration_s=3.5,
        screen=ScreenPower("black"),
    )
    closed, after = between(run, 0.2, 2.4), between(run, 3.0, 9)
    for s in closed:
        assert s.status["schedule"]["until"] == "2026-10-25T10:00:00+01:00"
        assert s.status["schedule"]["text"] == "closed until 10:00"
        assert s.status["camera"]["state"] == "stopped"
    assert after and after[-1].status["schedule"]["text"] == "open until 18:00"
    assert run.source.opens == 1


def test_a_closed_date_keeps_the_portrait_asleep_through_its_hours(frames, clip, notify):
    schedule = Schedule.parse(["daily 10:00-18:00"], ["2026-12-08"], PARIS)
    run = run_app(
        frames,
        clip,
        notify,
        schedule,
        [
            (0.0, paris(2026, 12, 7, 17, 59, 59)),  # Monday: open
            (1.0, paris(2026, 12, 7, 18, 0, 1)),  # closes: Tuesday is a closed date
            (2.0, paris(2026, 12, 8, 12, 0)),  # Tuesday noon: still closed
        ],
        duration_s=3.0,
        screen=ScreenPower("black"),
    )
    closed = between(run, 1.3, 9)
    assert closed
    for s in closed:
        assert s.status["schedule"]["text"] == "closed until Wed 10:00"
        assert s.status["camera"]["state"] == "stopped"
    assert run.source.opens == 1


def cec_stand_in(tmp: Path, exit_code: int = 0, fifo: Path | None = None) -> tuple[Path, Path]:
    """A cec-ctl on PATH that logs its arguments; and a fake /dev/cec0 to find.

    With ``fifo``, each call first reads a line from it while it exists (a real blocking
    system call: a TV that does not answer).
    """
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    log_file = tmp / "cec.log"
    prog = bin_dir / "cec-ctl"
    wait = f"if [ -p {fifo} ]; then read x < {fifo}; fi\n" if fifo else ""
    prog.write_text(f'#!/bin/sh\necho "$@" >> {log_file}\n{wait}exit {exit_code}\n')
    prog.chmod(0o755)
    (tmp / "dev").mkdir()
    (tmp / "dev" / "cec0").touch()
    return bin_dir, log_file


CLOSE_AND_OPEN = [
    (0.0, paris(2026, 12, 6, 17, 59, 59)),
    (1.0, paris(2026, 12, 6, 18, 0, 1)),
    (2.5, paris(2026, 12, 8, 10, 0, 1)),
]


def test_off_sleeps_then_wakes_the_monitor_over_cec(frames, clip, notify, tmp_path, monkeypatch):
    bin_dir, log_file = cec_stand_in(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    screen = ScreenPower("off", devices=str(tmp_path / "dev" / "cec*"))
    run = run_app(frames, clip, notify, DAILY, CLOSE_AND_OPEN, duration_s=3.5, screen=screen)
    dev = tmp_path / "dev" / "cec0"
    assert log_file.read_text().splitlines() == [
        f"-d {dev} --playback --to 0 --image-view-on",  # at start: a stopped run may have slept it
        f"-d {dev} --playback --to 0 --standby",
        f"-d {dev} --playback --to 0 --image-view-on",
    ]
    closed = between(run, 1.5, 2.4)
    assert closed and all(s.status["schedule"]["screen"] == "off" for s in closed)
    assert all(s.screen_max == 0 for s in closed)


@pytest.mark.parametrize("failing", [True, False], ids=["cec-fails", "no-cec-device"])
def test_off_without_working_cec_is_black_with_one_warning(
    frames, clip, notify, tmp_path, monkeypatch, caplog, failing
):
    bin_dir, _ = cec_stand_in(tmp_path, exit_code=1)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    devices = str(tmp_path / "dev" / ("cec*" if failing else "nothing*"))
    phases = [*CLOSE_AND_OPEN, (3.0, paris(2026, 12, 8, 18, 0, 1))]  # closes twice
    with caplog.at_level(logging.INFO, logger="appliance"):
        run = run_app(
            frames,
            clip,
            notify,
            DAILY,
            phases,
            duration_s=4.0,
            screen=ScreenPower("off", devices=devices),
        )
    closed = run.closed()
    assert closed and all(s.status["schedule"]["screen"] == "black" for s in closed)
    assert all(s.screen_max == 0 for s in closed)
    warnings = [
        r
        for r in caplog.records
        if r.name == "appliance.screenpower" and r.levelno >= logging.WARNING
    ]
    # Each kind of problem once (CEC is tried at each closing and the wake is retried).
    black = [r for r in warnings if "black instead of off" in r.getMessage()]
    assert len(black) == 1, [r.getMessage() for r in warnings]
    wake = [r for r in warnings if "cannot wake" in r.getMessage()]
    assert len(wake) == (1 if failing else 0), [r.getMessage() for r in warnings]
    assert len(warnings) == len(black) + len(wake)


class FlakyScreen(ScreenPower):
    """'off' whose CEC works for standby and fails the first ``fail`` wakes."""

    def __init__(self, fail: int) -> None:
        super().__init__("off")
        self.fail = fail
        self.wakes: list[float] = []
        self.now = 0.0

    def wake_at_start(self) -> bool:
        return True

    def sleep(self) -> str:  # type: ignore[override]
        self.asleep = True
        return "off"

    def wake(self) -> bool:
        if not self.asleep:
            return True
        self.wakes.append(self.now)
        if len(self.wakes) <= self.fail:
            return False
        self.asleep = False
        return True


def look(hours: Hours) -> str | None:
    """What the screen shows while closed (a call: mypy keeps no narrowing across polls)."""
    return hours.look


def settle(hours: Hours, screen: FlakyScreen, now: float) -> str | None:
    """Poll at ``now``, let the monitor's worker finish, and poll again to take its answer."""
    screen.now = now
    change = hours.poll(now)
    assert hours.power.wait_idle(30.0)
    assert hours.poll(now) is None
    return change


def test_hours_count_closed_time_and_retry_a_failed_wake_with_backoff():
    wall = [paris(2026, 12, 6, 17, 0)]
    screen = FlakyScreen(fail=6)
    hours = Hours(Watch(DAILY), screen, wall_clock=lambda: wall[0])
    assert settle(hours, screen, 0.0) is None and hours.is_open
    wall[0] = paris(2026, 12, 6, 18, 0)
    assert hours.poll(100.0) == "close"
    assert hours.look == "black"  # until the monitor confirms its standby
    assert settle(hours, screen, 100.0) is None and look(hours) == "off"
    assert hours.status(150.0, 0.0).unseen_open_s == 100.0  # closed time does not count
    wall[0] = paris(2026, 12, 8, 10, 0)
    assert settle(hours, screen, 1000.0) == "open" and screen.wakes == [1000.0]
    for t in range(1001, 1400):  # a poll a second: retried after 5, 10, 20, 40, 60, 60 s
        settle(hours, screen, float(t))
    assert screen.wakes == [1000.0, 1005.0, 1015.0, 1035.0, 1075.0, 1135.0, 1195.0]
    assert not screen.asleep
    assert hours.closed_between(0.0, 1200.0) == 900.0
    status = hours.status(1200.0, 0.0)
    assert status.open and status.text == "open until 18:00" and status.unseen_open_s == 300.0


def test_a_monitor_that_does_not_answer_never_holds_the_loop(tmp_path, monkeypatch):
    fifo = tmp_path / "tv"
    os.mkfifo(fifo)
    bin_dir, log_file = cec_stand_in(tmp_path, fifo=fifo)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    screen = ScreenPower("off", devices=str(tmp_path / "dev" / "cec*"), timeout_s=600.0)
    wall = [paris(2026, 12, 6, 17, 0)]
    hours = Hours(Watch(DAILY), screen, wall_clock=lambda: wall[0])
    # The wake at start blocks in cec-ctl's open(2) of the FIFO: poll returns all the same.
    assert hours.poll(0.0) is None and hours.power.busy("wake")
    wall[0] = paris(2026, 12, 6, 18, 0)
    assert hours.poll(1.0) == "close" and hours.look == "black"
    assert hours.poll(2.0) is None and hours.power.busy()  # standby queued behind the wake
    with open(fifo, "w", encoding="utf-8") as tv:  # the TV answers at last
        tv.write("ok\n")
    fifo.unlink()
    assert hours.power.wait_idle(60.0)
    assert hours.poll(3.0) is None and look(hours) == "off"
    assert [line.split()[-1] for line in log_file.read_text().splitlines()] == [
        "--image-view-on",
        "--standby",
    ]
    hours.close()
