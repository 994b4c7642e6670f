"""``monalisa health``: judge the status file the way a Nagios plugin does.

:func:`check` reads the status file (:mod:`appliance.status` defines and validates it) and
judges it: one summary line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with performance data
after ``|``::

    MONALISA OK - tracking, 29.8 fps, camera running, 54.2°C, 1 viewer in the last minute | ...

Each figure is judged by one small function (freshness, start-up, opening hours, camera,
frame rate, temperature, throttling, viewers); the verdict is the worst of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.config import HealthConfig
from appliance.status import BEHIND_FRACTION, BEHIND_WARNING_S, Status, StatusError, read_status

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


@dataclass(frozen=True)
class Check:
    """One judged figure.

    Attributes:
        name: Short key, e.g. ``"freshness"``, ``"fps"``.
        code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
        message: What was found, in words, e.g. ``"status is 12.0 s old"``.
        value: The figure judged (JSON-ready), or None.
    """

    name: str
    code: int
    message: str
    value: Any = None

    @property
    def state(self) -> str:
        """``"OK"``, ``"WARNING"``, ``"CRITICAL"`` or ``"UNKNOWN"``."""
        return STATE_NAMES[self.code]


@dataclass(frozen=True)
class HealthResult:
    """The verdict on one status file.

    Attributes:
        code: The exit status: the worst of the checks (0 OK, 1 WARNING, 2 CRITICAL,
            3 UNKNOWN; CRITICAL outranks UNKNOWN).
        summary: The text after ``MONALISA STATE - `` (problems first, then the headline).
        checks: Every check made.
        perfdata: Nagios performance data items, e.g. ``"fps=29.8;10;;0"``.
        status: The status as read, or None when it could not be read.
        path: The status file checked.
    """

    code: int
    summary: str
    checks: tuple[Check, ...]
    perfdata: tuple[str, ...]
    status: dict[str, Any] | None
    path: str

    @property
    def state(self) -> str:
        """``"OK"``, ``"WARNING"``, ``"CRITICAL"`` or ``"UNKNOWN"``."""
        return STATE_NAMES[self.code]

    @property
    def line(self) -> str:
        """The one Nagios line: ``MONALISA STATE - summary | perfdata``."""
        text = f"MONALISA {self.state} - {self.summary}"
        if self.perfdata:
            text += " | " + " ".join(self.perfdata)
        return text

    def to_json(self) -> dict[str, Any]:
        """The verdict, every check and the status as a JSON-ready dict."""
        return {
            "code": self.code,
            "state": self.state,
            "summary": self.summary,
            "line": self.line,
            "path": self.path,
            "checks": [
                {"name": c.name, "state": c.state, "code": c.code, "message": c.message}
                | ({"value": c.value} if c.value is not None else {})
                for c in self.checks
            ],
            "perfdata": list(self.perfdata),
            "status": self.status,
        }


def _worst(codes: list[int]) -> int:
    order = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}
    return max(codes, key=lambda c: order[c], default=OK)


def _pid_gone(pid: int) -> bool:
    """True if no process ``pid`` exists (a process of another user counts as existing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def check(
    path: str | Path,
    cfg: HealthConfig | None = None,
    now: float | None = None,
) -> HealthResult:
    """Judge the status file at ``path`` against the thresholds in ``cfg``.

    CRITICAL: the file is missing, older than ``stale_after_s``, its process is gone, the
    appliance has not shown the portrait within ``startup_grace_s`` (other than waiting for
    its screen), or the camera has failed for ``camera_failed_critical_s`` or longer.
    WARNING: the appliance waits for a screen it cannot open yet, the camera is failing
    (shorter), the
    frame rate is below ``min_fps_warning``, the SoC is at ``temp_warning_c`` or hotter, the
    Pi reports under-voltage or throttling, or nobody was seen for ``no_viewer_warning_s``
    of opening hours. While the gallery is closed (``[schedule]``) the stopped camera, the
    frame rate and the absence of viewers are not problems: OK ``closed until Tue 10:00``.
    UNKNOWN: the file cannot be read or is not a status file.

    Args:
        path: The status file.
        cfg: Thresholds; None for the defaults.
        now: Wall-clock time in seconds since the epoch; None for :func:`time.time`.

    Returns:
        The verdict; its ``code`` is the exit status.
    """
    cfg = HealthConfig() if cfg is None else cfg
    now = time.time() if now is None else now
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _single(
            p,
            CRITICAL,
            "freshness",
            f"no status file {p}: monalisa is not running (see: systemctl status monalisa)",
        )
    except (OSError, UnicodeDecodeError) as err:
        return _single(p, UNKNOWN, "read", f"cannot read {p}: {err}")
    try:
        status, data = read_status(text)
    except StatusError as err:
        return _single(p, UNKNOWN, "read", f"{p}: corrupt status file: {err}")
    return _judge(p, status, data, cfg, now)


def _single(p: Path, code: int, name: str, message: str) -> HealthResult:
    return HealthResult(
        code=code,
        summary=message,
        checks=(Check(name, code, message),),
        perfdata=(),
        status=None,
        path=str(p),
    )


@dataclass(frozen=True)
class _Seen:
    """What the checks judge: the status and figures derived from it."""

    status: Status
    age: float
    """Seconds since the status was written."""
    fps: float
    """Camera frames processed per second (the loop's rate)."""
    starting: bool
    """Still within ``startup_grace_s``."""

    @property
    def closed(self) -> bool:
        """The gallery is closed: the camera is stopped on purpose and nobody is expected."""
        hours = self.status.schedule
        return hours is not None and not hours.open


def _freshness(s: _Seen, cfg: HealthConfig) -> Check | None:
    if s.age > cfg.stale_after_s:
        msg = f"status is {s.age:.0f} s old (stale after {cfg.stale_after_s:g} s): not running"
        if s.status.last_error:
            msg += f"; last error: {s.status.last_error}"
        return Check("freshness", CRITICAL, msg, round(s.age, 1))
    pid = s.status.pid
    if pid and _pid_gone(pid):
        return Check("freshness", CRITICAL, f"monalisa (pid {pid}) is not running", pid)
    return Check("freshness", OK, f"status is {s.age:.1f} s old", round(s.age, 1))


def _startup(s: _Seen, cfg: HealthConfig) -> Check | None:
    if s.status.gaze_state != "starting" or s.status.screen_wait is not None:
        return None
    uptime = s.status.uptime_s
    if s.starting:
        return Check("startup", OK, f"starting ({uptime:.0f} s)", round(uptime, 1))
    msg = f"no portrait on screen {uptime:.0f} s after start"
    return Check("startup", CRITICAL, msg, round(uptime, 1))


def _screen(s: _Seen, cfg: HealthConfig) -> Check | None:
    wait = s.status.screen_wait
    if wait is None:
        return None
    why = f": {wait.last_error}" if wait.last_error else ""
    msg = (
        f"waiting for the {wait.driver} screen for {wait.waiting_s:.0f} s "
        f"({wait.attempts} attempts){why}"
    )
    return Check("screen", WARNING, msg, round(wait.waiting_s, 1))


LATE_OPENING_S = 120.0
"""Still closed this long after the opening time it announced: WARNING, seconds."""


def _hours(s: _Seen, cfg: HealthConfig) -> Check | None:
    hours = s.status.schedule
    if hours is None:
        return None
    if s.closed and hours.until is not None:
        try:
            late = s.status.written_at - datetime.fromisoformat(hours.until).timestamp()
        except ValueError:
            late = 0.0
        if late > LATE_OPENING_S:
            msg = f"still closed {late / 60:.0f} min after the opening time ({hours.until})"
            return Check("schedule", WARNING, msg, hours.open)
    return Check("schedule", OK, hours.text, hours.open)


def _camera(s: _Seen, cfg: HealthConfig) -> Check | None:
    cam = s.status.camera
    if s.closed:
        return Check("camera", OK, f"camera {cam.state} while closed", cam.state)
    if cam.state == "failed":
        failed_for = (cam.failed_for_s or 0.0) + s.age
        why = f": {cam.last_error}" if cam.last_error else ""
        code = CRITICAL if failed_for >= cfg.camera_failed_critical_s else WARNING
        msg = f"camera failed for {failed_for:.0f} s{why}"
        return Check("camera", code, msg, round(failed_for, 1))
    if cam.handed_over_at is not None and cam.state != "running":
        ago = max(0.0, s.status.written_at - cam.handed_over_at) + s.age
        msg = f"camera lost: restarted for a fresh camera stack {ago:.0f} s ago"
        return Check("camera", WARNING, msg, cam.state)
    if cam.state in ("stopped", "ended"):
        return Check("camera", CRITICAL, f"camera {cam.state}", cam.state)
    return Check("camera", OK, f"camera {cam.state}", cam.state)


def _fps(s: _Seen, cfg: HealthConfig) -> Check | None:
    running = s.status.camera.state == "running" and not s.closed
    if running and not s.starting and s.fps < cfg.min_fps_warning:
        msg = f"low frame rate: {s.fps:.1f} fps (warning below {cfg.min_fps_warning:g})"
        return Check("fps", WARNING, msg, s.fps)
    return Check("fps", OK, f"{s.fps:.1f} fps", s.fps)


def _load(s: _Seen, cfg: HealthConfig) -> Check | None:
    load = s.status.load
    if load is None:
        return None
    figures = (
        f"{load.inferences_per_s:.1f} inferences/s, detector {load.detector_ms_per_s:.0f} ms/s"
    )
    if load.behind_for_s >= BEHIND_WARNING_S:
        msg = (
            f"the loop has kept under {100 * BEHIND_FRACTION:.0f} % of the camera's "
            f"{s.status.camera.fps:.1f} fps for {load.behind_for_s:.0f} s ({figures})"
        )
        return Check("load", WARNING, msg, load.detector_ms_per_s)
    return Check("load", OK, figures, load.detector_ms_per_s)


def _temperature(s: _Seen, cfg: HealthConfig) -> Check | None:
    temp = s.status.cpu_temp_c
    if temp is None:
        return None
    if temp >= cfg.temp_warning_c:
        msg = f"CPU at {temp:.1f}°C (warning at {cfg.temp_warning_c:g}°C)"
        return Check("temperature", WARNING, msg, temp)
    return Check("temperature", OK, f"{temp:.1f}°C", temp)


def _throttling(s: _Seen, cfg: HealthConfig) -> Check | None:
    throttling = s.status.throttled
    if throttling is None:
        return None
    now_p, past_p = throttling.now_problems, throttling.past_problems
    if now_p:
        msg = f"power/thermal: {', '.join(now_p)} ({throttling.raw})"
        return Check("throttling", WARNING, msg, throttling.raw)
    if past_p and cfg.warn_on_past_throttling:
        msg = f"since boot: {', '.join(past_p)} ({throttling.raw})"
        return Check("throttling", WARNING, msg, throttling.raw)
    extra = f" (since boot: {', '.join(past_p)})" if past_p else ""
    return Check("throttling", OK, f"not throttled{extra}", throttling.raw)


def _viewers(s: _Seen, cfg: HealthConfig) -> Check | None:
    if s.closed:
        return Check("viewers", OK, "none expected while closed", 0)
    hours = s.status.schedule
    last = s.status.last_viewer_age_s
    unseen = last if last is not None else s.status.uptime_s
    of = ""
    if hours is not None and hours.unseen_open_s is not None:
        unseen, of = hours.unseen_open_s, " of opening hours"  # closed hours do not count
    if cfg.no_viewer_warning_s > 0 and unseen >= cfg.no_viewer_warning_s:
        msg = f"no viewer for {unseen / 3600.0:.1f} h{of}: is the camera covered or pointing away?"
        return Check("viewers", WARNING, msg, round(unseen, 1))
    n = s.status.viewers_last_minute
    return Check("viewers", OK, f"{n} in the last minute", n)


_CHECKS: tuple[Callable[[_Seen, HealthConfig], Check | None], ...] = (
    _freshness,
    _startup,
    _screen,
    _hours,
    _camera,
    _fps,
    _load,
    _temperature,
    _throttling,
    _viewers,
)
"""The checks, in the order their problems are listed (the first says whether it runs)."""


def _summary(s: _Seen, checks: list[Check]) -> str:
    st = s.status
    problems = [c.message for c in checks if c.code != OK]
    n = st.viewers_last_minute
    if s.closed and st.schedule is not None:
        headline = [st.schedule.text, f"camera {st.camera.state}"]
    else:
        headline = [st.gaze_state, f"{s.fps:.1f} fps", f"camera {st.camera.state}"]
    if st.cpu_temp_c is not None:
        headline.append(f"{st.cpu_temp_c:.1f}°C")
    if not s.closed:
        headline.append(f"{n} viewer{'' if n == 1 else 's'} in the last minute")
    head = ", ".join(headline)
    if checks[0].code != OK:  # not running: the rest is what it last reported
        head = "last status: " + head
    return "; ".join([*problems, head])


def _perfdata(s: _Seen, cfg: HealthConfig) -> list[str]:
    st = s.status
    perf = [
        f"age={s.age:.1f}s;;{cfg.stale_after_s:g};0",
        f"fps={s.fps:.1f};{cfg.min_fps_warning:g};;0",
    ]
    perf.append(f"display_fps={st.display_fps:.1f};;;0")
    if st.detector_ms is not None:
        perf.append(f"detector_ms={st.detector_ms:.1f};;;0")
    if st.load is not None:
        perf.append(f"inferences_per_s={st.load.inferences_per_s:.1f};;;0")
        perf.append(f"detector_ms_per_s={st.load.detector_ms_per_s:.0f};;;0")
    if st.cpu_temp_c is not None:
        perf.append(f"cpu_temp={st.cpu_temp_c:.1f};{cfg.temp_warning_c:g};;")
    perf.append(f"viewers={st.viewers_last_minute};;;0")
    perf.append(f"camera_failures={st.camera.failures}c;;;0")
    perf.append(f"uptime={st.uptime_s:.0f}s;;;0")
    if st.schedule is not None:
        perf.append(f"open={int(st.schedule.open)};;;0;1")
    return perf


def _judge(
    p: Path, status: Status, data: dict[str, Any], cfg: HealthConfig, now: float
) -> HealthResult:
    seen = _Seen(
        status=status,
        age=max(0.0, now - status.written_at),
        fps=status.loop_fps,
        starting=status.uptime_s < cfg.startup_grace_s,
    )
    checks = [c for judge in _CHECKS if (c := judge(seen, cfg)) is not None]
    return HealthResult(
        code=_worst([c.code for c in checks]),
        summary=_summary(seen, checks),
        checks=tuple(checks),
        perfdata=tuple(_perfdata(seen, cfg)),
        status=data,
        path=str(p),
    )
