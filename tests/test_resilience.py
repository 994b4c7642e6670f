"""The fault matrix: the real appliance, one injected fault per test.

Each test starts ``monalisa run`` as its own process, as systemd would: replay camera (a small
320×240 clip of a visitor walking in, standing and leaving), BlazeFace, gaze, the default frame
set, the headless display (``SDL_VIDEODRIVER=dummy``), a status file and a real ``NOTIFY_SOCKET``
(an ``AF_UNIX`` datagram socket bound by the test, with ``WATCHDOG_USEC`` set). It injects one
fault (``MONALISA_FAULT``, see tests/support/faults.py, or the environment: a signal, a missing
model, a full disk...) and checks the four things the "What happens when things go wrong"
table of docs/technician/health.md promises: what the visitor sees (trace index and state; the
portrait stays up), what ``monalisa health`` says (exit status and line), what the log says (one
line, no traceback) and how it ends (recovers, or exits with the documented status).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ImageGrab

from appliance.frames import FrameSet, default_frames_dir
from benchmarks.soak import make_clip
from tests.support.display import find_xvfb, free_display, start_xvfb, stop_xvfb
from tests.support.frames import write_v1
from tests.support.run import MONALISA, app_env, monalisa_for

CLIP_FRAMES_MIN = 100

CONFIG = """
[camera]
retry_initial_s = 0.2
retry_max_s = 1.0
stall_after_s = 2.0

[service]
status_interval_s = 0.25

[health]
stale_after_s = 3.0
"""


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """``once``: the clip played once; ``loop``: the same frames with ``loop = true``."""
    root = tmp_path_factory.mktemp("clips")
    loop = make_clip(root / "loop")
    once = root / "once"
    shutil.copytree(loop, once)
    toml = once / "clip.toml"
    toml.write_text(toml.read_text().replace("loop = true\n", ""))
    return {"once": once, "loop": loop}


@pytest.fixture(scope="module")
def rest_index() -> int:
    """The rest gaze (the trace's and status's index: a gaze, the rest row's frame shown)."""
    return FrameSet.load(default_frames_dir()).grid.rest_gaze


class Notify:
    """A systemd stand-in: a bound AF_UNIX datagram socket recording what it is told."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode().splitlines():
                self.messages.append((now, line))

    def times(self, name: str) -> list[float]:
        """Arrival times (monotonic s) of messages starting with ``name``."""
        return [t for t, m in list(self.messages) if m.startswith(name)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


class Appliance:
    """One ``monalisa run`` process with its notify socket, status file, trace and log."""

    def __init__(
        self,
        tmp: Path,
        clip: Path,
        *,
        fault: str = "",
        speed: str = "max",
        extra_args: list[str] | None = None,
        config: str = CONFIG,
        env: dict[str, str] | None = None,
        status_file: Path | None = None,
        trace: Path | None = None,
        display: str = "headless",
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.tmp = tmp
        self.sockdir = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))  # short AF_UNIX path
        self.notify = Notify(self.sockdir)
        self.config = tmp / "config.toml"
        self.config.write_text(config)
        self.status_file = status_file or tmp / "status.json"
        self.trace_file = trace or tmp / "trace.jsonl"
        self.log_file = tmp / "log.txt"
        e = app_env(
            NOTIFY_SOCKET=str(self.notify.path),
            WATCHDOG_USEC="1000000",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if fault:
            e["MONALISA_FAULT"] = fault
        e.update(env or {})
        args = [
            "run",
            "--config",
            str(self.config),
            "--camera",
            f"replay:{clip}",
            "--display",
            display,
            "--replay-speed",
            speed,
            "--status-file",
            str(self.status_file),
            "--trace",
            str(self.trace_file),
            *(extra_args or []),
        ]
        self._log = self.log_file.open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*monalisa_for(e), *args],
            cwd=tmp,
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            preexec_fn=preexec,
        )

    # -- control
    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Send ``sig``; return how long the process took to exit, seconds."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - sent

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.notify.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def wait_for(self, what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            if self.proc.poll() is not None:
                value = cond()
                if value:
                    return value
                raise AssertionError(f"exited ({self.proc.returncode}) before {what}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for("READY=1", lambda: self.notify.times("READY=1"), timeout)

    # -- observations
    def status(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def camera_state(self) -> str | None:
        s = self.status()
        return None if s is None else s["camera"]["state"]

    def health(self) -> tuple[int, str]:
        res = subprocess.run(
            [
                *MONALISA,
                "health",
                "--status-file",
                str(self.status_file),
                "--config",
                str(self.config),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "Traceback" not in res.stderr, res.stderr
        lines = res.stdout.splitlines()
        assert len(lines) == 1, res.stdout
        return res.returncode, lines[0]

    def trace(self) -> list[dict[str, Any]]:
        text = self.trace_file.read_text()
        return [json.loads(line, parse_constant=_no_nan) for line in text.splitlines()]

    @property
    def log(self) -> str:
        self._log.flush()
        return self.log_file.read_text()

    def log_lines(self, *words: str) -> list[str]:
        return [ln for ln in self.log.splitlines() if all(w in ln for w in words)]

    def warnings(self) -> list[str]:
        return [ln for ln in self.log.splitlines() if "WARNING" in ln or "ERROR" in ln]


def _no_nan(token: str) -> Any:
    raise ValueError(f"trace holds {token}")


@pytest.fixture
def start(tmp_path) -> Iterator[Callable[..., Appliance]]:
    made: list[Appliance] = []

    def _start(clip: Path, **kw: Any) -> Appliance:
        a = Appliance(tmp_path, clip, **kw)
        made.append(a)
        return a

    yield _start
    for a in made:
        a.close()


def assert_clean_log(app: Appliance, max_warnings: int = 1) -> None:
    log = app.log
    assert "Traceback" not in log, log
    assert len(app.warnings()) <= max_warnings, log


def assert_complete_trace(app: Appliance, frame_count: int | None = None) -> list[dict]:
    rows = app.trace()
    assert [r["seq"] for r in rows] == list(range(len(rows)))
    assert app.trace_file.read_text().endswith("\n")
    for r in rows:
        assert 0 <= r["index"] < r["frame_count"]
    if frame_count is not None:
        assert len(rows) == frame_count
    return rows


def clip_len(clip: Path) -> int:
    return len(list(clip.glob("frame_*.jpg")))


def pings_between(app: Appliance, t0: float, t1: float) -> int:
    return sum(1 for t in app.notify.times("WATCHDOG=1") if t0 <= t <= t1)


def traced(app: Appliance) -> int:
    """Complete trace lines so far (the trace is flushed with every status write)."""
    try:
        return app.trace_file.read_text().count("\n")
    except OSError:
        return 0


def run_past(app: Appliance, frames: int) -> dict[str, Any]:
    """Wait until the (still running) appliance has traced ``frames`` frames; its next status.

    The status's own ``frames`` (camera frames processed) then counts at least those; the
    frame set's folder is ``frames_dir``.
    """
    app.wait_for(f"{frames} frames", lambda: traced(app) >= frames)
    # The status is taken on the loop and written on a worker thread, a moment later: wait for
    # one taken after the trace got there (its uptime is counted from a start later than the
    # spawn), so that it holds everything those frames did.
    uptime_then = time.monotonic() - app.started

    def fresh() -> dict[str, Any] | None:
        s = app.status()
        return s if s is not None and s.get("uptime_s", 0.0) >= uptime_then else None

    status: dict[str, Any] = app.wait_for("a status written after those frames", fresh)
    assert status["frames"] >= frames, (status["frames"], frames)
    assert Path(status["frames_dir"]).is_dir()
    return status


def assert_health_ok(app: Appliance) -> str:
    """``monalisa health`` on the running appliance: exit 0, one ``MONALISA OK`` line."""
    assert app.proc.poll() is None, app.log
    code, line = app.health()
    assert code == 0 and line.startswith("MONALISA OK"), line
    return line


def assert_health_not_running(app: Appliance) -> str:
    """``monalisa health`` after the appliance exited: exit 2, CRITICAL ``… not running``."""
    assert app.proc.poll() is not None
    code, line = app.health()
    assert code == 2 and line.startswith("MONALISA CRITICAL") and "not running" in line, line
    return line


# -- camera ------------------------------------------------------------------------------------
def test_clip_has_a_visitor_and_an_empty_room(clips):
    assert clip_len(clips["once"]) >= CLIP_FRAMES_MIN
    assert "loop" not in (clips["once"] / "clip.toml").read_text()


def test_camera_raises_once(clips, start):
    app = start(clips["loop"], fault="camera_raise_at:15", speed="realtime")
    app.wait_ready()
    s = app.wait_for(
        "the camera to recover",
        lambda: (
            (st := app.status())
            and st["camera"]["failures"] == 1
            and st["camera"]["state"] == "running"
            and st
        ),
    )
    assert "injected read error at frame 15" in s["camera"]["last_error"]
    code, line = app.health()
    assert code == 0 and line.startswith("MONALISA OK"), line
    assert app.stop() < 2.0
    assert app.proc.returncode == 0
    rows = assert_complete_trace(app)
    assert rows[-1]["camera"] == "running"
    assert len(app.log_lines("WARNING", "injected read error at frame 15")) == 1
    assert len(app.log_lines("delivering frames again")) == 1
    assert_clean_log(app)


def test_camera_fails_for_10s_then_recovers(clips, start, rest_index):
    app = start(clips["loop"], fault="camera_fail_for:15:10", speed="realtime")
    app.wait_ready()
    app.wait_for("the camera to fail", lambda: app.camera_state() == "failed")
    failed_at = time.monotonic()
    code, line = app.health()
    assert code == 1 and line.startswith("MONALISA WARNING") and "camera failed" in line, line
    # The portrait stays up and the eyes ease back to rest (gaze idle_after_s 3 s + idle_return_s
    # 1.5 s by default) while the camera is away.
    s = app.wait_for(
        "the gaze to come to rest",
        lambda: (
            (st := app.status())
            and st["gaze_state"] == "idle"
            and st["frame_index"] == rest_index
            and st
        ),
        timeout=9.0,
    )
    assert s["camera"]["state"] == "failed"
    # The loop is alive throughout: the watchdog is fed.
    time.sleep(max(0.0, failed_at + 4.0 - time.monotonic()))
    assert pings_between(app, failed_at, failed_at + 4.0) >= 4
    s = app.wait_for(
        "the camera to recover", lambda: (st := app.status()) and st["camera"]["state"] == "running"
    )
    recovered_after = time.monotonic() - failed_at
    assert 8.0 < recovered_after < 14.0
    code, line = app.health()
    assert code == 0, line
    assert app.stop() < 2.0 and app.proc.returncode == 0
    assert_complete_trace(app)
    # One line when the camera went, one when it came back; the retries are at DEBUG.
    assert len(app.log_lines("WARNING", "camera")) == 1, app.log
    assert len(app.log_lines("delivering frames again")) == 1
    assert_clean_log(app)


# Why check_frame rejects each unusable kind (the rest are valid pictures and are processed).
IGNORED_FRAME = {"shape": "expected H×W×3", "tiny": "too small", "float": "dtype float64"}


@pytest.mark.parametrize("kind", ["black", "white", "shape", "tiny", "float", "truncated"])
def test_bad_frame(kind, clips, start):
    n = clip_len(clips["loop"])
    app = start(clips["loop"], fault=f"camera_bad_at:40:{kind}")
    # Once round the clip (the fault is at frame 40 of the first pass only), still running.
    status = run_past(app, n)
    assert_health_ok(app)
    assert app.stop() < 2.0 and app.proc.returncode == 0
    rows = assert_complete_trace(app)
    assert len(rows) >= n
    if kind in ("black", "white"):
        assert rows[40]["faces"] == []  # an empty picture: nobody there
    if kind in IGNORED_FRAME:
        assert rows[40]["faces"] == [] and status["bad_frames"] == 1
        lines = app.log_lines("WARNING", "camera frame 40 ignored", IGNORED_FRAME[kind])
        assert len(lines) == 1, app.log
    else:
        assert status["bad_frames"] == 0
    # The portrait does not jump on one bad frame.
    assert abs(rows[40]["index"] - rows[39]["index"]) <= 2
    assert "tracking" in {r["state"] for r in rows[41:]} or "tracking" not in {
        r["state"] for r in rows[:40]
    }
    assert_clean_log(app)


def truncated_clip(clips, tmp_path: Path) -> Path:
    """A copy of the "once" clip whose frame 40 is cut to half its bytes."""
    clip = tmp_path / "clip"
    shutil.copytree(clips["once"], clip)
    victim = clip / "frame_00040.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    return clip


def test_truncated_image_file(clips, start, tmp_path):
    clip = truncated_clip(clips, tmp_path)
    app = start(clip)
    assert app.wait() == 0, app.log
    assert_complete_trace(app, clip_len(clip) - 1)  # only the broken image is missing
    assert len(app.log_lines("WARNING", "frame_00040.jpg")) == 1
    status = app.status()
    assert status is not None and status["camera"]["failures"] == 1
    assert_clean_log(app)


def test_truncated_image_file_health(clips, start, tmp_path):
    """While it runs past the broken image, ``monalisa health`` says OK (the camera reopened)."""
    clip = truncated_clip(clips, tmp_path)
    app = start(clip, speed="realtime")  # realtime: still running well after frame 40
    app.wait_ready()
    app.wait_for(
        "the camera to reopen",
        lambda: (
            (st := app.status())
            and st["camera"]["failures"] == 1
            and st["camera"]["state"] == "running"
            and traced(app) >= 45
        ),
    )
    line = assert_health_ok(app)
    assert "camera_failures=1c" in line
    assert app.stop() < 2.0 and app.proc.returncode == 0
    rows = assert_complete_trace(app)
    broken_t = round(40 / 15.0, 4)  # make_clip's 15 fps clip clock
    assert broken_t not in {r["t"] for r in rows} and rows[-1]["t"] > broken_t
    assert len(app.log_lines("WARNING", "frame_00040.jpg")) == 1
    assert_clean_log(app)


def test_camera_stalls_5s(clips, start):
    """A read that takes 5 s is abandoned after stall_after_s (2 s) and the camera goes on from
    a fresh source in a fresh thread, before the stalled read returns."""
    app = start(clips["loop"], fault="camera_stall_at:15:5", speed="realtime")
    app.wait_ready()
    ready = time.monotonic()
    # (Failed for only the 0.2 s backoff: too short to be sure to see it in the status.)
    s = app.wait_for(
        "the camera to come back",
        lambda: (
            (st := app.status())
            and st["camera"]["stalls"] == 1
            and st["camera"]["state"] == "running"
            and st
        ),
    )
    back = time.monotonic()
    assert s["camera"]["reopens"] == 1 and "no frame for" in s["camera"]["last_error"]
    assert pings_between(app, ready, back) >= 2 * int(back - ready)
    assert app.health()[0] == 0
    # The stalled read returns (5 s after it began) and its thread ends: nothing stuck.
    app.wait_for("the stalled read to end", lambda: app.status()["camera"]["stuck_reads"] == 0)
    assert app.stop() < 2.0 and app.proc.returncode == 0
    rows = assert_complete_trace(app)
    ts = [r["t"] for r in rows]
    assert ts == sorted(ts)  # the fresh replay went on where the stalled one was
    assert len(app.log_lines("WARNING", "no frame for", "read abandoned")) == 1
    assert len(app.log_lines("delivering frames again")) == 1
    assert_clean_log(app)


def test_camera_read_blocked_for_good_is_recovered_in_the_process(clips, start):
    """A read blocked in read(2) for good: abandoned, a fresh source delivers, health is
    WARNING while it is away and OK once it is back; the blocked thread is counted."""
    slow_reopen = CONFIG.replace("retry_initial_s = 0.2", "retry_initial_s = 3.0").replace(
        "retry_max_s = 1.0", "retry_max_s = 6.0"
    )  # time to ask health while the camera is away
    app = start(clips["loop"], fault="camera_hang_at:15", speed="realtime", config=slow_reopen)
    app.wait_ready()
    app.wait_for("the hang", lambda: app.log_lines("hangs for good"))
    app.wait_for("the stall to be noticed", lambda: app.camera_state() == "failed")
    code, line = app.health()
    assert code == 1 and "no frame for" in line, line
    s = app.wait_for(
        "the camera to come back",
        lambda: (st := app.status()) and st["camera"]["state"] == "running" and st,
    )
    assert s["camera"]["stalls"] == 1 and s["camera"]["stuck_reads"] == 1
    run_past(app, traced(app) + 15)  # tracking again on the fresh source
    assert_health_ok(app)
    assert app.stop() < 2.0 and app.proc.returncode == 0  # the blocked thread does not hold it
    assert_complete_trace(app)
    assert len(app.log_lines("WARNING", "read abandoned")) == 1
    assert len(app.log_lines("delivering frames again")) == 1
    assert_clean_log(app, max_warnings=2)  # and the fault injection's own line


def test_camera_that_hangs_in_every_read_hands_over_to_systemd(clips, start, tmp_path):
    """Once the camera hangs in open(2) on a FIFO nobody writes to, every fresh source hangs
    too: the appliance exits 75 (not 78: systemd restarts it), well within 90 s of the last
    frame, feeding the watchdog until then; health never says OK meanwhile."""
    fifo = tmp_path / "camera.fifo"
    app = start(clips["loop"], fault=f"camera_hang_while:{fifo}", speed="realtime")
    app.wait_ready()
    run_past(app, 15)
    os.mkfifo(fifo)
    hung = time.monotonic()
    said: list[str] = []
    while app.proc.poll() is None and time.monotonic() - hung < 120:
        code, line = app.health()
        if app.proc.poll() is None:
            said.append(line)
            assert code != 0 or "camera running" in line, line
        time.sleep(0.5)
    code = app.wait(30)
    gone = time.monotonic()
    assert code == 75, app.log
    assert gone - hung < 90
    # Health was WARNING (or CRITICAL) from the stall on, never OK after it.
    failed = [i for i, ln in enumerate(said) if "camera failed" in ln]
    assert failed and all(not ln.startswith("MONALISA OK") for ln in said[failed[0] :]), said
    # The watchdog was fed until the hand-over (a gap of at most a few seconds, not a freeze).
    pings = [t for t in app.notify.times("WATCHDOG=1") if t >= hung]
    assert pings and max(b - a for a, b in itertools.pairwise([hung, *pings])) < 5.0
    lines = app.log_lines("ERROR", "exiting so that systemd restarts the appliance")
    assert len(lines) == 1 and "abandoned reads are still blocked" in lines[0], app.log
    assert len(app.notify.times("STOPPING=1")) == 1
    assert "Traceback" not in app.log
    assert_health_not_running(app)
    # The next process (systemd's restart) keeps saying so until its camera delivers.
    assert app.status()["camera"]["handed_over_at"] is not None


# -- detector ----------------------------------------------------------------------------------
def test_detector_raises_on_a_frame(clips, start):
    n = clip_len(clips["loop"])
    app = start(clips["loop"], fault="detector_raise_at:40")
    status = run_past(app, n)
    assert_health_ok(app)
    assert status["errors"] == 1 and "detector failed on frame 40" in status["last_error"]
    assert app.stop() < 2.0 and app.proc.returncode == 0
    rows = assert_complete_trace(app)
    assert len(rows) >= n
    assert rows[40]["faces"] == []
    assert abs(rows[40]["index"] - rows[39]["index"]) <= 2
    assert len(app.log_lines("WARNING", "detector failed on frame 40")) == 1
    assert_clean_log(app)


def test_detector_nan_scores(clips, start):
    """A NaN face from the model, below the finder: dropped, the real face still comes through.

    faults.FaultyDetector adds the NaN face to the first detector result of frame 40 that holds
    a real face, so it goes through the finder's mapping, merge and weighted NMS.
    """
    n = clip_len(clips["loop"])
    app = start(clips["loop"], fault="detector_nan_at:40")
    status = run_past(app, n)
    assert_health_ok(app)
    assert app.stop() < 2.0 and app.proc.returncode == 0
    rows = assert_complete_trace(app)  # parse_constant: no NaN anywhere in the trace
    assert len(rows) >= n
    assert not app.log_lines("detector failed"), app.log
    # The NaN was injected (it only is next to a real face) and dropped with one line ...
    assert len(app.log_lines("WARNING", "detector returned 1 bad faces")) == 1, app.log
    assert status["errors"] == 1
    # ... and the visitor on that frame still reaches the trace, with finite values.
    faces = rows[40]["faces"]
    assert len(faces) == 1, rows[40]
    f = faces[0]
    assert 0.5 <= f["score"] <= 1.0
    assert all(math.isfinite(v) for v in [*f["box"], *f["eyes"][0], *f["eyes"][1]])
    assert rows[40]["state"] == "tracking"
    assert_clean_log(app)


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_model_missing_or_corrupt_exits_78(how, clips, start, tmp_path):
    model = tmp_path / "blazeface.tflite"
    if how == "corrupt":
        model.write_bytes(os.urandom(4096))
    app = start(clips["once"], config=CONFIG + f'\n[detector]\nmodel = "{model}"\n')
    assert app.wait() == 78
    lines = app.log.strip().splitlines()
    assert len(lines) == 1 and str(model) in lines[0], app.log
    assert not app.notify.times("READY=1")
    code, line = app.health()
    assert code == 2 and "CRITICAL" in line


# -- display -----------------------------------------------------------------------------------
def test_a_window_without_any_display_exits_69(clips, start):
    # Nothing to wait for: no DISPLAY and no WAYLAND_DISPLAY in the environment.
    app = start(
        clips["once"],
        display="window",
        env={"DISPLAY": "", "WAYLAND_DISPLAY": "", "SDL_VIDEODRIVER": ""},
    )
    assert app.wait() == 69
    lines = app.log.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in app.log, app.log
    assert "neither DISPLAY nor WAYLAND_DISPLAY" in lines[0]
    assert not app.notify.times("READY=1")
    assert_health_not_running(app)


def assert_waiting_for_the_screen(app: Appliance, driver: str, attempts: int) -> None:
    """The appliance waits for its screen: alive to systemd, WARNING in health, one log line."""
    wait = app.wait_for(
        f"{attempts} attempts to open the screen",
        lambda: (s := app.status()) and (w := s.get("screen_wait")) and w["attempts"] >= attempts,
        timeout=60,
    )
    assert wait is True
    assert app.notify.times("READY=1")  # up: systemd's start timeout does not kill it
    pings = app.notify.times("WATCHDOG=1")
    assert len(pings) >= 4 and max(b - a for a, b in itertools.pairwise(pings)) < 1.0
    texts = [m for _, m in list(app.notify.messages) if m.startswith("STATUS=")]
    assert any(f"waiting for the {driver} screen" in t for t in texts), texts
    code, line = app.health()
    assert code == 1 and f"waiting for the {driver} screen" in line, line
    assert len(app.log_lines("WARNING", "waiting for the screen")) == 1, app.log
    assert app.proc.poll() is None


def test_a_kmsdrm_screen_that_cannot_be_opened_is_waited_for(clips, start):
    # SDL's real KMSDRM driver, which fails here (no /dev/dri, or no monitor on it).
    if Path("/dev/dri").is_dir():
        pytest.skip("this machine has a KMS device: SDL's KMSDRM driver might open it")
    app = start(clips["loop"], display="kmsdrm", env={"SDL_VIDEODRIVER": ""})
    assert_waiting_for_the_screen(app, "kmsdrm", attempts=3)
    assert app.stop() < 10 and app.proc.returncode == 0, app.log
    assert "Traceback" not in app.log


def test_a_screen_that_comes_20_s_late_gets_the_portrait(clips, start):
    exe = find_xvfb()
    if exe is None:
        pytest.skip("Xvfb is not installed and cannot be installed here")
    display = free_display()
    app = start(
        clips["loop"],
        display="window",
        speed="realtime",
        env={"DISPLAY": display, "WAYLAND_DISPLAY": "", "SDL_VIDEODRIVER": ""},
    )
    assert_waiting_for_the_screen(app, "window", attempts=2)
    time.sleep(max(0.0, app.started + 20.0 - time.monotonic()))  # the X server comes 20 s late
    server, _ = start_xvfb(exe, display)
    try:
        status = app.wait_for(
            "the portrait on the late screen",
            lambda: (s := app.status()) and s.get("screen_wait") is None and s.get("finder") and s,
            timeout=60,
        )
        assert status["display"] == "window" and status["frame_index"] is not None
        shot = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
        assert shot.max() > 0  # the root is black (-br): the portrait's window is drawn
        # The screen warning is gone (a loaded machine may still warn of a low frame rate).
        _, line = app.wait_for(
            "health without the screen warning",
            lambda: (h := app.health()) and h[0] in (0, 1) and "waiting for the" not in h[1] and h,
            timeout=60,
        )
        assert line.startswith("MONALISA OK") or "low frame rate" in line, line
        assert app.log_lines("INFO", "the screen is there"), app.log
        assert app.proc.poll() is None  # the same process all along
        assert app.stop() < 10 and app.proc.returncode == 0, app.log
    finally:
        stop_xvfb(server)
    assert "Traceback" not in app.log


def test_screenshot_path_cannot_be_written(clips, start, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    app = start(clips["once"], extra_args=["--screenshot", str(blocker / "shot.png")])
    assert app.wait() == 0, app.log
    assert_complete_trace(app, clip_len(clips["once"]))
    errors = app.log_lines("ERROR", "cannot save the screenshot", str(blocker / "shot.png"))
    assert len(errors) == 1, app.log
    assert_clean_log(app)
    # The screenshot is taken as the run ends: health reports the ended run, nothing more.
    assert_health_not_running(app)


# -- status file -------------------------------------------------------------------------------
def test_status_directory_disappears(clips, start, tmp_path):
    run_dir = tmp_path / "run" / "monalisa"
    app = start(clips["loop"], speed="realtime", status_file=run_dir / "status.json")
    app.wait_ready()
    app.wait_for("a status", app.status)
    shutil.rmtree(tmp_path / "run")
    # Recreated by the next write.
    app.wait_for("the status to come back", app.status, timeout=3.0)
    assert app.health()[0] == 0
    # A file where the folder should be: writes fail, the loop goes on, one line in the log.
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "run").write_text("")
    t0 = time.monotonic()
    app.wait_for("the write error", lambda: app.log_lines("cannot write the status"), 5)
    code, line = app.health()
    assert code == 3 and "UNKNOWN" in line, line
    time.sleep(1.0)
    assert pings_between(app, t0, time.monotonic()) >= 2
    (tmp_path / "run").unlink()
    app.wait_for("the status to come back", app.status, timeout=3.0)
    assert app.health()[0] == 0
    assert app.stop() < 2.0 and app.proc.returncode == 0
    assert len(app.log_lines("cannot write the status")) == 1
    assert_clean_log(app)


@contextlib.contextmanager
def tiny_disk(path: Path) -> Iterator[Callable[[], None] | None]:
    """A 256 KiB tmpfs at ``path`` (needs root), or None where mounting is not allowed."""
    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
        capture_output=True,
    )
    if res.returncode != 0:
        yield None
        return
    try:

        def fill() -> None:
            with contextlib.suppress(OSError), (path / "filler").open("wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()

        yield fill
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_disk_full(clips, start, tmp_path):
    """Status file and trace on a full disk: the portrait goes on, the log says so once."""
    with tiny_disk(tmp_path / "disk") as fill:
        if fill is None:
            # No mount here: each file may grow to 64 KiB only (RLIMIT_FSIZE, EFBIG).
            app = start(clips["loop"], speed="max", preexec=_limit_file_size)
            app.wait_ready()
            app.wait_for("the trace to be cut", lambda: app.log_lines("trace"), 30)
        else:
            disk = tmp_path / "disk"
            app = start(
                clips["loop"],
                speed="realtime",
                status_file=disk / "status.json",
                trace=disk / "trace.jsonl",
            )
            app.wait_ready()
            app.wait_for("a status", app.status)
            fill()
            t0 = time.monotonic()
            app.wait_for("the write errors", lambda: len(app.warnings()) >= 2, 10)
            time.sleep(4.0)  # the status goes stale: health says so
            code, line = app.health()
            assert code == 2 and "old" in line, line
            assert pings_between(app, t0, time.monotonic()) >= 6
            (disk / "filler").unlink()
            app.wait_for("a fresh status", lambda: app.health()[0] == 0, 5)
        assert app.proc.poll() is None, app.log
        assert app.stop() < 2.0 and app.proc.returncode == 0
        assert len(app.log_lines("trace")) == 1, app.log
        assert len(app.log_lines("cannot write the status")) <= 1, app.log
        assert_clean_log(app, max_warnings=2)


# -- signals -----------------------------------------------------------------------------------
def test_sigterm_during_startup(clips, start, tmp_path):
    # The default set as version 1 (33 full frames decoded): a start-up long enough to stop
    # in, as every start was before format version 2.
    v1 = write_v1(FrameSet.load(default_frames_dir()), tmp_path / "v1")
    app = start(clips["loop"], speed="realtime", extra_args=["--frames", str(v1)])
    time.sleep(0.5)
    assert not app.notify.times("READY=1"), "started too fast to test start-up"
    took = app.stop(signal.SIGTERM)
    assert took < 2.0
    assert app.proc.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in app.log
    code, _line = app.health()
    assert code == 2


def test_sigterm_twice(clips, start):
    app = start(clips["loop"], speed="realtime")
    app.wait_ready()
    time.sleep(1.0)
    sent = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        app.proc.send_signal(signal.SIGTERM)
    assert app.wait(10) == 0
    assert time.monotonic() - sent < 2.0
    assert len(app.notify.times("STOPPING=1")) == 1
    assert len(app.log_lines("stopping: SIGTERM")) == 1
    assert_complete_trace(app)
    assert_clean_log(app, max_warnings=0)
    line = assert_health_not_running(app)
    assert "camera stopped" in line


def test_sighup_is_logged_and_ignored(clips, start):
    app = start(clips["loop"], speed="realtime")
    app.wait_ready()
    app.proc.send_signal(signal.SIGHUP)
    app.wait_for("the SIGHUP line", lambda: app.log_lines("SIGHUP"), 5)
    before = app.status()
    t0 = time.monotonic()
    time.sleep(1.5)
    assert app.proc.poll() is None
    after = app.status()
    assert before and after and after["written_at"] > before["written_at"]
    assert pings_between(app, t0, time.monotonic()) >= 2
    assert app.health()[0] == 0
    assert app.stop() < 2.0 and app.proc.returncode == 0
    assert len(app.log_lines("SIGHUP")) == 1
    assert_clean_log(app, max_warnings=0)


def test_sigint_stops_cleanly(clips, start):
    app = start(clips["loop"], speed="realtime")
    app.wait_ready()
    time.sleep(0.5)
    assert app.stop(signal.SIGINT) < 2.0
    assert app.proc.returncode == 0
    assert len(app.notify.times("STOPPING=1")) == 1
    assert len(app.log_lines("stopping: SIGINT")) == 1
    assert_complete_trace(app)
    assert_clean_log(app, max_warnings=0)
    line = assert_health_not_running(app)
    assert "camera stopped" in line


# -- the loop ----------------------------------------------------------------------------------
def test_hung_loop_stops_watchdog_pings(clips, start):
    app = start(clips["loop"], speed="realtime", fault="hang_after:30")
    app.wait_ready()
    app.wait_for("the hang", lambda: app.log_lines("main loop now hangs"), 10)
    hung = time.monotonic()
    before = [t for t in app.notify.times("WATCHDOG=1") if t < hung]
    assert len(before) >= 2  # pinging while healthy
    time.sleep(4.0)
    # Pings stop (one may be in flight when the hang starts); systemd would now kill it.
    assert pings_between(app, hung + 0.6, time.monotonic()) == 0
    code, line = app.health()
    assert code == 2 and "old" in line, line
    assert app.stop() < 2.0 and app.proc.returncode == 0
    assert len(app.log_lines("main loop now hangs")) == 1
