"""The appliance's configuration: one TOML file, validated by pydantic models.

Every section forbids unknown keys (a typo is an error, not a silently ignored setting) and
every field has a default that works, so an empty file is a valid configuration. Errors are
reported one per line with their dotted key path and the offending value, and a command that
fails on configuration exits with :data:`EX_CONFIG` (78) so systemd does not restart-loop.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EX_CONFIG = 78
"""Exit status for a configuration error (sysexits.h ``EX_CONFIG``)."""

DEFAULT_CONFIG_PATH = Path("/etc/monalisa/config.toml")
"""Where the service reads its configuration."""


class ConfigError(ValueError):
    """A configuration that cannot be used.

    Attributes:
        lines: One human-readable line per problem, each naming the file, key path and value.
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class CameraConfig(Section):
    """Where frames come from and how they are captured."""

    source: str = Field(
        "picamera2",
        description="'picamera2', 'webcam' or 'webcam:N' (V4L2 index), or 'replay:DIR'.",
    )
    width: Annotated[int, Field(ge=64, le=4608)] = Field(
        1280, description="Capture width in pixels asked of the camera/ISP."
    )
    height: Annotated[int, Field(ge=48, le=3456)] = Field(
        960, description="Capture height in pixels asked of the camera/ISP."
    )
    fps: Annotated[float, Field(gt=0, le=120)] = Field(30.0, description="Capture rate, frames/s.")
    hfov_deg: Annotated[float, Field(gt=10, lt=180)] = Field(
        66.0, description="Horizontal field of view in degrees (Camera Module 3: 66, wide: 102)."
    )
    mirror: bool = Field(False, description="True if the images are mirrored left-right.")
    offset_x_mm: float = Field(
        0.0,
        description="Camera position relative to the portrait's eyes, mm; + = visitor's right.",
    )
    offset_y_mm: float = Field(
        0.0, description="Camera position relative to the portrait's eyes, mm; + = above."
    )
    replay_speed: Literal["realtime", "max"] = Field(
        "realtime", description="Replay pacing: the clip's fps, or as fast as possible."
    )
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = Field(
        0.5, description="First wait before reopening a failed camera, seconds."
    )
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0, description="Longest wait between camera reopen attempts, seconds."
    )
    stall_after_s: Annotated[float, Field(gt=0, le=600)] = Field(
        3.0, description="No frame for this long counts as a camera failure, seconds."
    )


class DetectorConfig(Section):
    """BlazeFace settings."""

    model: str = Field(
        "full", description="'full' (192x192, 1-5 m), 'short' (128x128, < 2 m) or a .tflite path."
    )
    num_threads: Annotated[int, Field(ge=1, le=8)] = Field(
        2, description="Interpreter threads (Pi 4/5: 2 leaves cores for capture and display)."
    )
    score_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = Field(
        None, description="Minimum face score in [0, 1]; default 0.6 (full) / 0.5 (short)."
    )


class FinderConfig(Section):
    """Where in a camera frame to run the detector (owned by appliance/finder.py)."""

    mode: Literal["whole", "band"] = Field(
        "whole", description="'whole': one inference on the whole frame; 'band': tiles + follow."
    )


class GazeConfig(Section):
    """Viewer choice, geometry, smoothing, hysteresis and idle behaviour (see gaze.py)."""

    mode: Literal["geometry", "linear"] = Field(
        "geometry", description="'geometry': true angles; 'linear': x across width -> index."
    )


class DisplayConfig(Section):
    """How the portrait is drawn."""

    driver: Literal["auto", "kmsdrm", "window", "headless"] = Field(
        "auto", description="'auto': kmsdrm without a desktop, a window with one."
    )
    rotation: Literal[0, 90, 180, 270] = Field(
        0, description="Clockwise rotation of the picture in degrees, for portrait monitors."
    )
    fit: Literal["fit", "fill"] = Field(
        "fit", description="'fit': whole portrait with borders; 'fill': cover the screen, crop."
    )
    background: tuple[int, int, int] = Field(
        (0, 0, 0), description="Border colour, RGB 0-255."
    )
    crossfade_ms: Annotated[int, Field(ge=0, le=1000)] = Field(
        0, description="Cross-fade between neighbouring frames in ms; 0 = cut."
    )
    window_size: tuple[int, int] = Field(
        (540, 800), description="Window size in pixels (width, height) for the 'window' driver."
    )
    max_fps: Annotated[float, Field(gt=0, le=240)] = Field(
        60.0, description="Upper bound on redraws per second."
    )


class FramesConfig(Section):
    """Which frame set is shown."""

    directory: str = Field(
        "", description="Folder with frames.toml; empty = the repository's default set."
    )


class ServiceConfig(Section):
    """Running under systemd."""

    status_file: str = Field(
        "/run/monalisa/status.json", description="Where the status JSON is written once a second."
    )
    status_interval_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="Seconds between status file writes and STATUS= updates."
    )


class HealthConfig(Section):
    """Thresholds for `monalisa health` (owned by appliance/health.py)."""

    stale_after_s: Annotated[float, Field(gt=0)] = Field(
        5.0, description="Status older than this is CRITICAL, seconds."
    )


class Config(Section):
    """The whole configuration file."""

    camera: CameraConfig = Field(default_factory=CameraConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    finder: FinderConfig = Field(default_factory=FinderConfig)
    gaze: GazeConfig = Field(default_factory=GazeConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    frames: FramesConfig = Field(default_factory=FramesConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    return ".".join(parts) or "(top level)"


def _lookup(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    cur = data
    for item in loc:
        try:
            cur = cur[item]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, cur


def format_validation_error(source: str, data: Any, err: ValidationError) -> list[str]:
    """Turn a pydantic error into one line per problem, naming file, key path and value.

    Args:
        source: The file name (or other source label) to prefix every line with.
        data: The raw parsed data, to quote the offending value.
        err: The pydantic error.

    Returns:
        Lines like ``config.toml: gaze.tau_s = -1: Input should be greater than 0``.
    """
    lines = []
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        path = _key_path(loc)
        found, value = _lookup(data, loc)
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown key"
        if found:
            lines.append(f"{source}: {path} = {value!r}: {msg}")
        else:
            lines.append(f"{source}: {path}: {msg}")
    return lines


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate already-parsed TOML data.

    Args:
        data: The parsed TOML document.
        source: A label for error messages (usually the file path).

    Raises:
        ConfigError: With one line per problem.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, data, err)) from None


def load_config(path: str | Path | None) -> Config:
    """Load and validate a TOML config file; ``None`` gives the defaults.

    Args:
        path: The file to read, or None for the built-in defaults.

    Raises:
        ConfigError: The file is missing, unreadable, not TOML, or has invalid values; each
            line names the file and, where known, the key and value.
    """
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{p}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{p}: cannot read: {err}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{p}: not valid TOML: {err}"]) from None
    return parse_config(data, str(p))


def dump_config(config: Config) -> str:
    """Render a config as TOML text (the effective settings, every key written out)."""
    out: list[str] = []
    for name, section in config:
        out.append(f"[{name}]")
        for key, value in section:
            if value is None:
                out.append(f"# {key} is unset (the built-in default applies)")
            else:
                out.append(f"{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {value!r} as TOML")
