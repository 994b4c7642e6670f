"""The status file the running appliance writes: its one definition, writer and reader.

The appliance writes ``/run/monalisa/status.json`` once a second (:class:`StatusWriter`,
atomically: a temporary file in the same directory, then :func:`os.replace`), holding figures
only — never an image. :class:`Status` is the file's layout: :mod:`appliance.app` builds one,
:class:`StatusWriter` dumps it, and :func:`read_status` (used by ``monalisa health``) validates
a file against it. Reading ignores keys it does not know, so a newer appliance can add keys
without breaking older checkers; a key it knows with a value of the wrong type is an error
(:class:`StatusError`, one line). Only ``written_at`` is required.

The Pi's own figures (SoC temperature, the firmware's throttling bits) are read here too
(:class:`SystemProbe`): the writer adds them to every status.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from appliance.config import format_validation_error

CPU_TEMP_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
"""Where Linux reports the SoC temperature in millidegrees Celsius."""

SCHEMA = 1
"""Version of the status file's layout, written as ``schema``."""


class _Record(BaseModel):
    """A part of the status file: never NaN or infinite; unknown keys ignored on read."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


# ---------------------------------------------------------------------------------------------
# What the Pi tells about its health


class Throttling(_Record):
    """The Raspberry Pi firmware's ``get_throttled`` bits, decoded.

    Read back from a status file, the bits are decoded again from ``raw`` (the booleans
    written next to it are for people reading the file); a ``raw`` that is not a number is
    an error.

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

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _from_raw(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw = data.get("raw")
        try:
            value = int(raw, 0) if isinstance(raw, str) else None
        except ValueError:
            value = None
        if value is None:
            raise ValueError(f"throttled = {data!r} has no valid 'raw' value")
        return _bits(value)

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


def _bits(value: int) -> dict[str, Any]:
    def bit(n: int) -> bool:
        return bool(value >> n & 1)

    return {
        "raw": hex(value),
        "under_voltage_now": bit(0),
        "freq_capped_now": bit(1),
        "throttled_now": bit(2),
        "soft_temp_limit_now": bit(3),
        "under_voltage_since_boot": bit(16),
        "freq_capped_since_boot": bit(17),
        "throttled_since_boot": bit(18),
        "soft_temp_limit_since_boot": bit(19),
    }


def decode_throttled(value: int) -> Throttling:
    """Decode the integer from ``vcgencmd get_throttled`` (see :class:`Throttling`)."""
    return Throttling.model_validate({"raw": hex(value)})


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


class CameraStatus(_Record):
    """The camera part of the status.

    Attributes:
        source: The source's name, e.g. ``"picamera2"`` or ``"replay:/path"``.
        state: ``"starting"``, ``"running"``, ``"failed"``, ``"ended"`` or ``"stopped"``.
        fps: Frames per second delivered over the last seconds.
        last_frame_age_s: Seconds since the newest frame arrived; None before the first.
        failed_for_s: Seconds the camera has been failing; None while it works.
        failures: Failures since start (opens or reads that failed, stalls).
        stalls: Reads abandoned since start because they took longer than ``stall_after_s``.
        reopens: Times the camera was opened again since start (after a failure, a stall or
            closed hours).
        stuck_reads: Abandoned reads whose thread is still blocked now.
        handed_over_at: When a process last exited for a fresh camera stack (the camera could
            not be recovered in it), Unix time in seconds; kept by the next processes until
            their camera delivers. None otherwise.
        last_error: The last camera error message, or None.
        sensor_width_fraction: Of the sensor's width the images show, 0 … 1; below 1 the
            field of view was narrowed.
        hfov_deg: The narrowed horizontal field of view, degrees; None while the images show
            the sensor's whole width (the lens's ``camera.hfov_deg``).
    """

    source: str = ""
    state: str = "starting"
    fps: float = 0.0
    last_frame_age_s: float | None = None
    failed_for_s: float | None = None
    failures: int = 0
    stalls: int = 0
    reopens: int = 0
    stuck_reads: int = 0
    handed_over_at: float | None = None
    last_error: str | None = None
    sensor_width_fraction: float = 1.0
    hfov_deg: float | None = None


class FinderStatus(_Record):
    """The head band the finder searches (band mode).

    Attributes:
        band: (top, bottom) as fractions of the image height, 0 … 1.
        band_source: ``"config"``, ``"geometry"`` (from ``camera_height_m``) or ``"learned"``.
    """

    band: list[float]
    band_source: str


class ScheduleStatus(_Record):
    """The opening hours part of the status (present when ``[schedule]`` sets any hours).

    Attributes:
        open: True while the gallery is open.
        until: The next change (closing if open, opening if closed), ISO 8601 local time
            with its UTC offset, e.g. ``"2026-12-08T10:00:00+01:00"``; None if never.
        text: The same in words, as of the status: ``"closed until Tue 10:00"``,
            ``"open until 18:00"``.
        screen: While closed, what the screen shows: ``"off"`` (monitor in standby over
            HDMI-CEC), ``"black"`` or ``"rest"`` (the portrait at rest); None while open.
        unseen_open_s: Seconds of opening hours (closed time not counted) since a viewer was
            last followed, or since start if never.
    """

    open: bool = True
    until: str | None = None
    text: str = "open"
    screen: str | None = None
    unseen_open_s: float | None = None


class ScreenWait(_Record):
    """The screen the appliance waits for (present only while it cannot open it).

    Attributes:
        driver: The display driver it tries: ``"kmsdrm"``, ``"window"``.
        waiting_s: Seconds since the first attempt failed.
        attempts: Attempts to open the screen so far (1 or more).
        last_error: Why the last attempt failed (one line).
    """

    driver: str = ""
    waiting_s: float = 0.0
    attempts: int = 0
    last_error: str | None = None


BEHIND_FRACTION = 0.9
"""The loop 'cannot keep up' while it processes fewer than this fraction of the camera's fps."""

BEHIND_WARNING_S = 60.0
"""``monalisa health`` warns once the loop has been behind the camera this long, seconds."""


class LoadStatus(_Record):
    """How much detector work the loop does, and whether it keeps up with the camera.

    Attributes:
        inferences_per_s: Detector runs per second over the last minute (or since start).
        detector_ms_per_s: Milliseconds spent in the finder per second over the same window
            (1000 = one core busy with detection alone).
        behind_for_s: Seconds the loop has been processing fewer than
            :data:`BEHIND_FRACTION` of the camera's frames without a break (newer frames
            replace the ones it had no time for); 0 when it keeps up.
    """

    inferences_per_s: float = 0.0
    detector_ms_per_s: float = 0.0
    behind_for_s: float = 0.0


class Status(_Record):
    """Everything the status file holds; figures only, never an image.

    Attributes:
        version: The appliance's version.
        pid: The appliance's process id.
        uptime_s: Seconds since the appliance started.
        config: The configuration file's path, or None for the built-in defaults.
        frames_dir: The frame set's directory.
        display: The display driver in use (the configured one until the screen is open).
        camera: See :class:`CameraStatus`.
        finder: See :class:`FinderStatus`; None until the loop runs.
        detector_ms: Median detector time per camera frame the detector ran on,
            milliseconds; None before any.
        load: See :class:`LoadStatus`; None until the loop runs.
        loop_fps: Camera frames processed per second by the main loop.
        display_fps: Portrait redraws per second.
        frame_index: The gaze asked for, 0 … frame_count - 1; None before the first.
        drawn_index: The gaze of the frame on screen for it (the nearest rendered frame's
            while the asked one's patch is not rendered yet); None before the first.
        frame_count: How many portrait frames the set has.
        gaze_state: ``"tracking"``, ``"holding"`` or ``"idle"`` (``"starting"`` before the
            first frame, ``"closed"`` outside opening hours).
        viewers_last_minute: Distinct viewers followed in the last 60 s.
        faces_frames_last_minute: Camera frames with at least one face in the last 60 s.
        last_viewer_age_s: Seconds since a viewer was last followed; None if never.
        frames: Camera frames processed since start.
        bad_frames: Camera frames skipped as unusable (wrong type, shape or size).
        errors: Errors since start (all kinds).
        last_error: The last error message, or None.
        cpu_temp_c: SoC temperature, °C; None where the system does not say.
        throttled: Decoded ``vcgencmd get_throttled`` (see :class:`Throttling`), or None.
        schedule: See :class:`ScheduleStatus`; None without opening hours.
        screen_wait: See :class:`ScreenWait`; None once the screen is open (or before the
            first attempt).
        written_at: When this status was written, seconds since the Unix epoch (the only key
            a file must have).
        schema: Layout version of this file (:data:`SCHEMA`).
    """

    version: str = ""
    pid: int = 0
    uptime_s: float = 0.0
    config: str | None = None
    frames_dir: str | None = None
    display: str | None = None
    camera: CameraStatus = Field(default_factory=CameraStatus)
    finder: FinderStatus | None = None
    detector_ms: float | None = None
    load: LoadStatus | None = None
    loop_fps: float = 0.0
    display_fps: float = 0.0
    frame_index: int | None = None
    drawn_index: int | None = None
    frame_count: int = 0
    gaze_state: str = "starting"
    viewers_last_minute: int = 0
    faces_frames_last_minute: int = 0
    last_viewer_age_s: float | None = None
    frames: int = 0
    bad_frames: int = 0
    errors: int = 0
    last_error: str | None = None
    cpu_temp_c: float | None = None
    throttled: Throttling | None = None
    schedule: ScheduleStatus | None = None
    screen_wait: ScreenWait | None = None
    written_at: float = 0.0
    schema_: int = Field(default=SCHEMA, alias="schema")

    model_config = ConfigDict(populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict, keyed as in the file."""
        return self.model_dump(mode="json", by_alias=True)


class StatusError(ValueError):
    """A status file that is not one; the message is one line (without the file's name)."""


def read_status(text: str) -> tuple[Status, dict[str, Any]]:
    """Validate a status file's text against :class:`Status`.

    Returns:
        The status, and the JSON object as read (unknown keys included).

    Raises:
        StatusError: Not JSON, not an object, ``written_at`` missing, or a known key with a
            value of the wrong type (the message names the key and value).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise StatusError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise StatusError("not a JSON object")
    if "written_at" not in data or data["written_at"] is None:
        raise StatusError("written_at is missing")
    if data.get("throttled") == {}:
        data = {**data, "throttled": None}
    try:
        return Status.model_validate(data, strict=True), data
    except ValidationError as err:
        raise StatusError(format_validation_error(None, data, err)[0]) from None


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
            ValueError: A figure is not finite.
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
            out["throttled"] = None if throttled is None else throttled.model_dump()
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
