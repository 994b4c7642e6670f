"""The status file the running appliance writes, and the ``monalisa health`` check that reads it.

The appliance writes ``/run/monalisa/status.json`` once a second (:class:`StatusWriter`,
atomically: a temporary file in the same directory, then :func:`os.replace`), holding figures
only — never an image. :func:`check` reads it and judges it the way a Nagios plugin does: one
summary line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with performance data after ``|``::

    MONALISA OK - tracking, 29.8 fps, camera running, 54.2°C, 1 viewer in the last minute | ...

The status is a JSON object. :class:`Status` documents every key; the checker reads the keys it
knows and ignores the rest, so a newer appliance can add keys without breaking older checkers.
Only ``written_at`` is required.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import HealthConfig

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

CPU_TEMP_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
"""Where Linux reports the SoC temperature in millidegrees Celsius."""

SCHEMA = 1
"""Version of the status file's layout, written as ``schema``."""


# ---------------------------------------------------------------------------------------------
# What the Pi tells about its health


@dataclass(frozen=True)
class Throttling:
    """The Raspberry Pi firmware's ``get_throttled`` bits, decoded.

    Attributes:
        raw: The value as the firmware printed it, e.g. ``"0x50005"``.
        under_voltage_now: Bit 0: the supply is below 4.63 V now.
        freq_capped_now: Bit 1: the ARM frequency is capped now.
        throttled_now: Bit 2: the CPU is throttled now.
        soft_temp_limit_now: Bit 3: the soft temperature limit is active now.
        under_voltage_since_boot: Bit 16: under-voltage has happened since boot.
        freq_capped_since_boot: Bit 17: frequency capping has happened since boot.
        throttled_since_boot: Bit 18: throttling has happened since boot.
        soft_temp_limit_since_boot: Bit 19: the soft temperature limit was hit since boot.
    """

    raw: str
    under_voltage_now: bool
    freq_capped_now: bool
    throttled_now: bool
    soft_temp_limit_now: bool
    under_voltage_since_boot: bool
    freq_capped_since_boot: bool
    throttled_since_boot: bool
    soft_temp_limit_since_boot: bool

    @property
    def now_problems(self) -> list[str]:
        """Human names of the conditions active now."""
        return [
            name
            for flag, name in (
                (self.under_voltage_now, "under-voltage"),
                (self.throttled_now, "throttled"),
                (self.freq_capped_now, "frequency capped"),
                (self.soft_temp_limit_now, "soft temperature limit"),
            )
            if flag
        ]

    @property
    def past_problems(self) -> list[str]:
        """Human names of the conditions that happened since boot."""
        return [
            name
            for flag, name in (
                (self.under_voltage_since_boot, "under-voltage"),
                (self.throttled_since_boot, "throttled"),
                (self.freq_capped_since_boot, "frequency capped"),
                (self.soft_temp_limit_since_boot, "soft temperature limit"),
            )
            if flag
        ]


def decode_throttled(value: int) -> Throttling:
    """Decode the integer from ``vcgencmd get_throttled`` (see :class:`Throttling`)."""

    def bit(n: int) -> bool:
        return bool(value >> n & 1)

    return Throttling(
        raw=hex(value),
        under_voltage_now=bit(0),
        freq_capped_now=bit(1),
        throttled_now=bit(2),
        soft_temp_limit_now=bit(3),
        under_voltage_since_boot=bit(16),
        freq_capped_since_boot=bit(17),
        throttled_since_boot=bit(18),
        soft_temp_limit_since_boot=bit(19),
    )


_THROTTLED_RE = re.compile(r"throttled=(0x[0-9a-fA-F]+|\d+)")


def parse_get_throttled(text: str) -> Throttling | None:
    """Parse ``vcgencmd get_throttled`` output (``throttled=0x50005``); None if unrecognised."""
    m = _THROTTLED_RE.search(text)
    if m is None:
        return None
    return decode_throttled(int(m.group(1), 0))


def read_cpu_temp_c(path: Path = CPU_TEMP_PATH) -> float | None:
    """The SoC temperature in °C from ``thermal_zone0`` (millidegrees), or None if unavailable."""
    try:
        text = path.read_text(encoding="ascii").strip()
        return round(int(text) / 1000.0, 1)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def read_throttled(vcgencmd: str | None = None, timeout_s: float = 1.0) -> Throttling | None:
    """Run ``vcgencmd get_throttled``; None where there is no such tool or it fails.

    Args:
        vcgencmd: Path of the tool; default: found on ``$PATH``.
        timeout_s: Longest wait for the tool, seconds.
    """
    exe = vcgencmd or shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "get_throttled"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return parse_get_throttled(out.stdout)


class SystemProbe:
    """Reads the CPU temperature each call and the throttling bits every ``throttle_every_s``.

    ``vcgencmd`` is a process start, so its answer is cached; the temperature is a file read.

    Args:
        temp_path: The thermal zone file (millidegrees Celsius).
        vcgencmd: Path of ``vcgencmd``; default: found on ``$PATH``; ``""`` disables it.
        throttle_every_s: Seconds between two ``vcgencmd`` runs.
        clock: Monotonic clock in seconds.
    """

    def __init__(
        self,
        temp_path: Path = CPU_TEMP_PATH,
        vcgencmd: str | None = None,
        throttle_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.temp_path = temp_path
        self.vcgencmd = shutil.which("vcgencmd") if vcgencmd is None else (vcgencmd or None)
        self.throttle_every_s = throttle_every_s
        self._clock = clock
        self._throttled: Throttling | None = None
        self._checked_at: float | None = None

    def cpu_temp_c(self) -> float | None:
        """The SoC temperature in °C, or None."""
        return read_cpu_temp_c(self.temp_path)

    def throttled(self) -> Throttling | None:
        """The throttling bits (cached for ``throttle_every_s``), or None."""
        if self.vcgencmd is None:
            return None
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self.throttle_every_s:
            self._checked_at = now
            self._throttled = read_throttled(self.vcgencmd)
        return self._throttled


# ---------------------------------------------------------------------------------------------
# The status file


@dataclass
class CameraStatus:
    """The camera part of the status.

    Attributes:
        source: The source's name, e.g. ``"picamera2"`` or ``"replay:/path"``.
        state: ``"starting"``, ``"running"``, ``"failed"``, ``"ended"`` or ``"stopped"``.
        fps: Frames per second delivered over the last seconds.
        last_frame_age_s: Seconds since the newest frame arrived; None before the first.
        failed_for_s: Seconds the camera has been failing; None while it works.
        failures: Failures since start (opens or reads that failed, stalls).
        last_error: The last camera error message, or None.
    """

    source: str = ""
    state: str = "starting"
    fps: float = 0.0
    last_frame_age_s: float | None = None
    failed_for_s: float | None = None
    failures: int = 0
    last_error: str | None = None


@dataclass
class Status:
    """Everything the status file holds; figures only, never an image.

    Attributes:
        version: The appliance's version.
        pid: The appliance's process id.
        uptime_s: Seconds since the appliance started.
        config: The configuration file's path, or None for the built-in defaults.
        camera: See :class:`CameraStatus`.
        detector_ms: Median detector time per camera frame, milliseconds; None before any.
        loop_fps: Camera frames processed per second by the main loop.
        display_fps: Portrait redraws per second.
        frame_index: The portrait frame on screen, 0 … frame_count - 1; None before the first.
        frame_count: How many portrait frames the set has.
        gaze_state: ``"tracking"``, ``"holding"`` or ``"idle"`` (``"starting"`` before the
            first frame).
        viewers_last_minute: Distinct viewers followed in the last 60 s.
        faces_frames_last_minute: Camera frames with at least one face in the last 60 s.
        last_viewer_age_s: Seconds since a viewer was last followed; None if never.
        frames: Camera frames processed since start.
        errors: Errors since start (all kinds).
        last_error: The last error message, or None.
        cpu_temp_c: SoC temperature, °C; None where the system does not say.
        throttled: Decoded ``vcgencmd get_throttled`` (see :class:`Throttling`), or None.
        written_at: When this status was written, seconds since the Unix epoch.
        schema: Layout version of this file (:data:`SCHEMA`).
    """

    version: str = ""
    pid: int = 0
    uptime_s: float = 0.0
    config: str | None = None
    camera: CameraStatus = field(default_factory=CameraStatus)
    detector_ms: float | None = None
    loop_fps: float = 0.0
    display_fps: float = 0.0
    frame_index: int | None = None
    frame_count: int = 0
    gaze_state: str = "starting"
    viewers_last_minute: int = 0
    faces_frames_last_minute: int = 0
    last_viewer_age_s: float | None = None
    frames: int = 0
    errors: int = 0
    last_error: str | None = None
    cpu_temp_c: float | None = None
    throttled: Throttling | None = None
    written_at: float = 0.0
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        return asdict(self)


class StatusWriter:
    """Writes the status file atomically (readers never see a half-written file).

    Each write goes to a temporary file in the same directory, is made world-readable (so
    ``monalisa health`` needs no privileges beyond reading it) and replaces the old file with
    :func:`os.replace`. The directory is created if missing. Errors are raised to the caller,
    who logs them rate-limited and carries on.

    Args:
        path: The status file, e.g. ``/run/monalisa/status.json``.
        probe: Fills ``cpu_temp_c`` and ``throttled`` when a written dict lacks them; None
            for a default :class:`SystemProbe`.
        clock: Wall clock in seconds since the epoch, for ``written_at``.
    """

    def __init__(
        self,
        path: str | Path,
        probe: SystemProbe | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.probe = SystemProbe() if probe is None else probe
        self._clock = clock

    def write(self, status: Status) -> None:
        """Write a :class:`Status` (``written_at`` is set to now).

        Raises:
            OSError: The directory cannot be created or the file cannot be written.
        """
        self.write_dict(status.to_dict())

    def write_dict(self, data: Mapping[str, Any]) -> None:
        """Write a JSON-ready mapping, adding ``written_at``, ``schema`` and the system probes.

        Keys already present win, except ``written_at`` which is always now.

        Raises:
            OSError: The directory cannot be created or the file cannot be written.
            TypeError: A value is not JSON-serialisable.
        """
        out: dict[str, Any] = dict(data)
        out.setdefault("schema", SCHEMA)
        if out.get("cpu_temp_c") is None:
            out["cpu_temp_c"] = self.probe.cpu_temp_c()
        if out.get("throttled") is None:
            throttled = self.probe.throttled()
            out["throttled"] = None if throttled is None else asdict(throttled)
        out["written_at"] = round(self._clock(), 3)
        text = json.dumps(out, indent=1, sort_keys=True, allow_nan=False) + "\n"
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# ---------------------------------------------------------------------------------------------
# The check


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


class _Corrupt(ValueError):
    pass


def _num(data: Mapping[str, Any], key: str, *, required: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _Corrupt(f"{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Corrupt(f"{key} = {value!r} is not a number")
    return float(value)


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Corrupt(f"{key} = {value!r} is not a string")
    return value


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Corrupt(f"{key} = {value!r} is not an object")
    return value


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


def _fmt(v: float, digits: int = 1) -> str:
    return f"{v:.{digits}f}"


def check(
    path: str | Path,
    cfg: HealthConfig | None = None,
    now: float | None = None,
) -> HealthResult:
    """Judge the status file at ``path`` against the thresholds in ``cfg``.

    CRITICAL: the file is missing, older than ``stale_after_s``, its process is gone, the
    appliance has not shown the portrait within ``startup_grace_s``, or the camera has failed
    for ``camera_failed_critical_s`` or longer. WARNING: the camera is failing (shorter), the
    frame rate is below ``min_fps_warning``, the SoC is at ``temp_warning_c`` or hotter, the
    Pi reports under-voltage or throttling, or nobody was seen for ``no_viewer_warning_s``.
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
        data = json.loads(text)
        if not isinstance(data, dict):
            raise _Corrupt("not a JSON object")
        return _judge(p, data, cfg, now)
    except json.JSONDecodeError as err:
        return _single(p, UNKNOWN, "read", f"{p}: corrupt status file: not JSON: {err}")
    except _Corrupt as err:
        return _single(p, UNKNOWN, "read", f"{p}: corrupt status file: {err}")


def _single(p: Path, code: int, name: str, message: str) -> HealthResult:
    return HealthResult(
        code=code,
        summary=message,
        checks=(Check(name, code, message),),
        perfdata=(),
        status=None,
        path=str(p),
    )


def _judge(p: Path, data: dict[str, Any], cfg: HealthConfig, now: float) -> HealthResult:
    written_at = _num(data, "written_at", required=True)
    assert written_at is not None
    age = max(0.0, now - written_at)
    uptime = _num(data, "uptime_s") or 0.0
    pid = _num(data, "pid")
    loop_fps = _num(data, "loop_fps")
    display_fps = _num(data, "display_fps")
    detector_ms = _num(data, "detector_ms")
    temp = _num(data, "cpu_temp_c")
    viewers = _num(data, "viewers_last_minute")
    last_viewer_age = _num(data, "last_viewer_age_s")
    gaze_state = _str(data, "gaze_state") or "unknown"
    last_error = _str(data, "last_error")
    camera = _obj(data, "camera")
    cam_state = _str(camera, "state") or "unknown"
    cam_fps = _num(camera, "fps")
    cam_failed_for = _num(camera, "failed_for_s")
    cam_failures = _num(camera, "failures")
    cam_error = _str(camera, "last_error")
    throttled_raw = _obj(data, "throttled")
    fps = loop_fps if loop_fps is not None else cam_fps

    checks: list[Check] = []

    # Is it alive?
    if age > cfg.stale_after_s:
        msg = f"status is {age:.0f} s old (stale after {cfg.stale_after_s:g} s): not running"
        if last_error:
            msg += f"; last error: {last_error}"
        checks.append(Check("freshness", CRITICAL, msg, round(age, 1)))
    elif pid is not None and _pid_gone(int(pid)):
        checks.append(
            Check("freshness", CRITICAL, f"monalisa (pid {int(pid)}) is not running", int(pid))
        )
    else:
        checks.append(Check("freshness", OK, f"status is {age:.1f} s old", round(age, 1)))

    starting = uptime < cfg.startup_grace_s
    if gaze_state == "starting":
        if starting:
            checks.append(Check("startup", OK, f"starting ({uptime:.0f} s)", round(uptime, 1)))
        else:
            checks.append(
                Check(
                    "startup",
                    CRITICAL,
                    f"no portrait on screen {uptime:.0f} s after start",
                    round(uptime, 1),
                )
            )

    # The camera.
    if cam_state == "failed":
        failed_for = (cam_failed_for or 0.0) + age
        why = f": {cam_error}" if cam_error else ""
        code = CRITICAL if failed_for >= cfg.camera_failed_critical_s else WARNING
        checks.append(
            Check(
                "camera",
                code,
                f"camera failed for {failed_for:.0f} s{why}",
                round(failed_for, 1),
            )
        )
    elif cam_state in ("stopped", "ended"):
        checks.append(Check("camera", CRITICAL, f"camera {cam_state}", cam_state))
    else:
        checks.append(Check("camera", OK, f"camera {cam_state}", cam_state))

    # Speed.
    if fps is not None:
        if cam_state == "running" and not starting and fps < cfg.min_fps_warning:
            checks.append(
                Check(
                    "fps",
                    WARNING,
                    f"low frame rate: {fps:.1f} fps (warning below {cfg.min_fps_warning:g})",
                    fps,
                )
            )
        else:
            checks.append(Check("fps", OK, f"{fps:.1f} fps", fps))

    # The board.
    if temp is not None:
        if temp >= cfg.temp_warning_c:
            checks.append(
                Check(
                    "temperature",
                    WARNING,
                    f"CPU at {temp:.1f}°C (warning at {cfg.temp_warning_c:g}°C)",
                    temp,
                )
            )
        else:
            checks.append(Check("temperature", OK, f"{temp:.1f}°C", temp))
    if throttled_raw:
        throttling = _throttling_from(throttled_raw)
        now_p, past_p = throttling.now_problems, throttling.past_problems
        if now_p:
            checks.append(
                Check(
                    "throttling",
                    WARNING,
                    f"power/thermal: {', '.join(now_p)} ({throttling.raw})",
                    throttling.raw,
                )
            )
        elif past_p and cfg.warn_on_past_throttling:
            checks.append(
                Check(
                    "throttling",
                    WARNING,
                    f"since boot: {', '.join(past_p)} ({throttling.raw})",
                    throttling.raw,
                )
            )
        else:
            extra = f" (since boot: {', '.join(past_p)})" if past_p else ""
            checks.append(
                Check("throttling", OK, f"not throttled{extra}", throttling.raw),
            )

    # Visitors.
    unseen = last_viewer_age if last_viewer_age is not None else uptime
    if cfg.no_viewer_warning_s > 0 and unseen >= cfg.no_viewer_warning_s:
        hours = unseen / 3600.0
        checks.append(
            Check(
                "viewers",
                WARNING,
                f"no viewer for {hours:.1f} h: is the camera covered or pointing away?",
                round(unseen, 1),
            )
        )
    elif viewers is not None:
        checks.append(
            Check("viewers", OK, f"{int(viewers)} in the last minute", int(viewers)),
        )

    code = _worst([c.code for c in checks])
    problems = [c.message for c in checks if c.code != OK]
    headline = [gaze_state]
    if fps is not None:
        headline.append(f"{fps:.1f} fps")
    headline.append(f"camera {cam_state}")
    if temp is not None:
        headline.append(f"{temp:.1f}°C")
    if viewers is not None:
        n = int(viewers)
        headline.append(f"{n} viewer{'' if n == 1 else 's'} in the last minute")
    head = ", ".join(headline)
    if checks[0].code != OK:  # not running: the rest is what it last reported
        head = "last status: " + head
    summary = "; ".join([*problems, head])

    perf = [f"age={age:.1f}s;;{cfg.stale_after_s:g};0"]
    if fps is not None:
        perf.append(f"fps={fps:.1f};{cfg.min_fps_warning:g};;0")
    if display_fps is not None:
        perf.append(f"display_fps={display_fps:.1f};;;0")
    if detector_ms is not None:
        perf.append(f"detector_ms={detector_ms:.1f};;;0")
    if temp is not None:
        perf.append(f"cpu_temp={temp:.1f};{cfg.temp_warning_c:g};;")
    if viewers is not None:
        perf.append(f"viewers={int(viewers)};;;0")
    if cam_failures is not None:
        perf.append(f"camera_failures={int(cam_failures)}c;;;0")
    perf.append(f"uptime={uptime:.0f}s;;;0")
    return HealthResult(
        code=code,
        summary=summary,
        checks=tuple(checks),
        perfdata=tuple(perf),
        status=data,
        path=str(p),
    )


def _throttling_from(data: Mapping[str, Any]) -> Throttling:
    raw = data.get("raw")
    if isinstance(raw, str):
        try:
            return decode_throttled(int(raw, 0))
        except ValueError:
            pass
    raise _Corrupt(f"throttled = {dict(data)!r} has no valid 'raw' value")
