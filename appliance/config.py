"""The appliance's configuration: one TOML file, validated by pydantic models.

Every section forbids unknown keys (a typo is an error, not a silently ignored setting) and
every field has a default that works, so an empty file is a valid configuration. Errors are
reported one per line with their dotted key path and the offending value, and a command that
fails on configuration exits with :data:`EX_CONFIG` (78) so systemd does not restart-loop.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from appliance.localzone import ZONE_HINT, ZoneError, named_zone, resolve_zone
from appliance.schedule import Schedule, ScheduleError, parse_closed, parse_rule

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

    def report(self) -> int:
        """Print each line to stderr, as a command that cannot use the configuration does.

        Returns:
            :data:`EX_CONFIG` (78), the exit status for it.
        """
        for line in self.lines:
            print(line, file=sys.stderr)
        return EX_CONFIG


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def unused_keys(self) -> dict[str, str]:
        """Keys whose values this section's other settings make unused, with the reason."""
        return {}

    def _given_non_default(self, key: str) -> bool:
        """True if ``key`` was given a value other than its default."""
        field = type(self).model_fields[key]
        return key in self.model_fields_set and getattr(self, key) != field.default


@dataclass(frozen=True)
class SourceSpec:
    """A camera source spelling, parsed (:func:`parse_source_spec`).

    Attributes:
        kind: ``"picamera2"``, ``"webcam"`` or ``"replay"``.
        index: The V4L2 device index of a webcam (``webcam:N``; 0 for ``webcam``).
        directory: The clip folder of a replay (``replay:DIR``).
    """

    kind: Literal["picamera2", "webcam", "replay"]
    index: int = 0
    directory: str = ""


def parse_source_spec(spec: str) -> SourceSpec:
    """Parse a camera source spelling: the one grammar for the config and the camera.

    ``picamera2``, ``webcam``, ``webcam:N`` with N a non-negative decimal V4L2 index, or
    ``replay:DIR`` with a non-empty DIR. Whether DIR exists is checked when the camera opens,
    not here.

    Raises:
        ValueError: Not a source spelling; the message is a short reason.
    """
    kind, sep, rest = spec.partition(":")
    if spec == "picamera2":
        return SourceSpec("picamera2")
    if kind == "webcam":
        if rest == "" or (rest.isascii() and rest.isdigit()):
            return SourceSpec("webcam", index=int(rest or 0))
        raise ValueError("webcam index must be a number, e.g. webcam:0")
    if kind == "replay" and sep and rest:
        return SourceSpec("replay", directory=rest)
    raise ValueError("expected 'picamera2', 'webcam', 'webcam:N' or 'replay:DIR'")


class CameraConfig(Section):
    """Where frames come from and how they are captured."""

    source: str = Field(
        "picamera2",
        description="Where frames come from: 'picamera2' (the Pi's camera module), 'webcam' or "
        "'webcam:N' (V4L2 device index N), or 'replay:DIR' (a folder of images played in name "
        "order, with an optional clip.toml giving fps).",
    )
    width: Annotated[int, Field(ge=64, le=4608)] = Field(
        1280, description="Capture width in pixels asked of the camera/ISP."
    )
    height: Annotated[int, Field(ge=48, le=3456)] = Field(
        720,
        description="Capture height in pixels asked of the camera/ISP (16:9, as Camera "
        "Module 3's sensor: the ISP then crops none of its width).",
    )
    fps: Annotated[float, Field(gt=0, le=120)] = Field(30.0, description="Capture rate, frames/s.")
    hfov_deg: Annotated[float, Field(gt=10, lt=180)] = Field(
        66.0,
        description="Horizontal field of view of the lens over the sensor's full width, "
        "degrees (Camera Module 3: 66, wide: 102); picamera2 narrows it to the ISP's crop.",
    )
    mirror: bool = Field(
        False,
        description="True if the camera's images are mirrored left-right (as a selfie view); "
        "the gaze unmirrors them before it works out where the visitor stands.",
    )
    offset_x_mm: float = Field(
        0.0,
        description="Camera position relative to the portrait's eyes, mm; + = visitor's right.",
    )
    offset_y_mm: float = Field(
        0.0, description="Camera position relative to the portrait's eyes, mm; + = above."
    )
    replay_speed: Literal["realtime", "max"] = Field(
        "realtime",
        description="A replay's pacing: 'realtime' at the clip's fps; 'max' as fast as the "
        "loop goes (the trace's times then follow the clip's clock; the run ends with the clip).",
    )
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = Field(
        0.5, description="First wait before reopening a failed camera, seconds."
    )
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0, description="Longest wait between camera reopen attempts, seconds."
    )
    stall_after_s: Annotated[float, Field(gt=0, le=600)] = Field(
        3.0,
        description="A camera read that takes this long is abandoned and the camera reopened "
        "in a fresh thread, seconds (picamera2 gives up on a frame after half of it).",
    )
    handover_after_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        60.0,
        description="No frame for this long despite reopening: the appliance exits 75 so that "
        "systemd restarts it with a fresh camera stack, seconds; more than stall_after_s.",
    )

    @model_validator(mode="after")
    def _handover_after_stall(self) -> CameraConfig:
        if self.handover_after_s <= self.stall_after_s:
            raise ValueError(
                f"handover_after_s ({self.handover_after_s}) must be greater than "
                f"stall_after_s ({self.stall_after_s})"
            )
        return self

    @field_validator("source")
    @classmethod
    def _source_grammar(cls, value: str) -> str:
        try:
            parse_source_spec(value)
        except ValueError as err:
            raise PydanticCustomError("camera_source", str(err)) from None
        return value


class DetectorConfig(Section):
    """The face detector: BlazeFace on LiteRT, on the CPU."""

    model: str = Field(
        "full",
        description="The sweep's model: 'full' (full-range BlazeFace, 192x192 input, faces "
        "~0.5-5 m away), 'short' (short-range, 128x128, within ~2 m) or a path to a .tflite "
        "file of either.",
    )
    model_dir: str | None = Field(
        None,
        description="Folder searched first for the named models 'full' and 'short' (the "
        "follow crop's too); default: $MONALISA_MODEL_DIR, the source tree's models/, then "
        "/usr/share/monalisa/models.",
    )
    num_threads: Annotated[int, Field(ge=1, le=8)] = Field(
        2, description="Interpreter threads (Pi 4/5: 2 leaves cores for capture and display)."
    )
    score_threshold: Annotated[float | None, Field(gt=0.0, lt=1.0)] = Field(
        None,
        description="Minimum face score, strictly between 0 and 1; default 0.6 (full) / "
        "0.5 (short).",
    )


class FinderConfig(Section):
    """Where in a camera frame to run the detector (owned by appliance/finder.py).

    'band' mode searches the head band in tiles small enough for distant faces (round-robin,
    moving tiles first) and follows the viewer with one crop per frame sized from their face;
    with ``cadence = "room"`` the tiles are swept at ``idle_sweep_hz`` / ``track_sweep_hz``
    unless something moves, so an empty, still room costs a few inferences per second.
    """

    mode: Literal["whole", "band"] = Field(
        "band",
        description="'whole': one inference on the whole frame (close, small installs); "
        "'band': head-band tiles + follow crop (gallery rooms, visitors out to ~4.5 m).",
    )
    band_top: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.30,
        description="Top of the head band as a fraction of the image height, 0-1, above "
        "band_bottom (not with camera_height_m).",
    )
    band_bottom: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.90,
        description="Bottom of the head band as a fraction of the image height, 0-1 (not with "
        "camera_height_m).",
    )
    camera_height_m: Annotated[float, Field(gt=0.2, le=6.0)] | None = Field(
        None,
        description="Height of the camera's lens above the floor, metres; when set, the "
        "band is worked out from it at start (from the image size and the field of view the "
        "camera really shows) and band_top/band_bottom must not be given.",
    )
    camera_tilt_deg: Annotated[float, Field(ge=-45.0, le=80.0)] = Field(
        0.0,
        description="Downward tilt of the camera, degrees (0 = level, negative = up): for the "
        "head band (with camera_height_m) and for the vertical angle to a visitor's eyes that "
        "picks the row of a frame set with rows.",
    )
    visitor_eyes_m: tuple[
        Annotated[float, Field(ge=0.3, le=2.5)], Annotated[float, Field(ge=0.3, le=2.5)]
    ] = Field(
        (1.2, 1.95),
        description="Lowest and highest eyes to see, metres above the floor (children: 1.0).",
    )
    visitor_distance_m: tuple[
        Annotated[float, Field(gt=0.0, le=20.0)], Annotated[float, Field(gt=0.0, le=20.0)]
    ] = Field(
        (1.2, 5.0), description="Nearest and farthest visitors to cover, metres from the camera."
    )
    band_learn: bool = Field(
        False,
        description="Narrow/widen the band to where faces have been seen (in memory; "
        "starts from band_top/band_bottom after each start).",
    )
    band_learn_faces: Annotated[int, Field(ge=10, le=1_000_000)] = Field(
        200, description="Faces seen before the learned band replaces the configured one."
    )
    band_learn_margin: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        0.05, description="Margin added above and below the learned band, fraction of height."
    )
    tile_size: Annotated[float, Field(ge=0.05, le=1.0)] = Field(
        0.25,
        description="Tile side as a fraction of the image width (0.25 at 66° reaches ~4.5 m).",
    )
    tile_overlap: Annotated[float, Field(ge=0.0, le=0.75)] = Field(
        0.4,
        description="Overlap of neighbouring tiles, fraction of the tile side (>= the largest "
        "face the tiles must see whole).",
    )
    whole_pass: bool = Field(
        True,
        description="Also run the whole frame once per sweep, for visitors so close their "
        "face is bigger than the tile overlap.",
    )
    motion_first: bool = Field(
        True,
        description="Sweep first the tiles where the picture changed since the last frame "
        "(newcomers move); false = plain round-robin.",
    )
    inferences_per_frame: Annotated[int, Field(ge=1, le=16)] = Field(
        2,
        description="Detector runs per frame in 'band' mode: the follow crop (if any) plus "
        "sweep tiles (at least one).",
    )
    cadence: Literal["room", "frame"] = Field(
        "room",
        description="'room': sweep the band at idle_sweep_hz (nobody followed, nothing "
        "moving; motion wakes it at once) or track_sweep_hz (while following a viewer); "
        "'frame': inferences_per_frame every frame whatever the room (a steady cost, for "
        "comparison).",
    )
    idle_sweep_hz: Annotated[float, Field(gt=0.0, le=120.0)] = Field(
        3.0,
        description="Sweep inferences per second in a still room with nobody followed "
        "('room' cadence).",
    )
    track_sweep_hz: Annotated[float, Field(gt=0.0, le=120.0)] = Field(
        3.0,
        description="Sweep inferences per second besides the follow crop while a viewer is "
        "followed ('room' cadence); newcomers are found within about tiles / this seconds.",
    )
    follow_model: Literal["short", "full"] = Field(
        "short",
        description="Model for the follow crop: 'short' (short-range BlazeFace, 128 px input, "
        "about a third of the work; the crop is sized from the face, so it sees every "
        "distance) or 'full' (the sweep's full-range model).",
    )
    follow_found: bool = Field(
        True,
        description="Search around a face found in the last frame even before the gaze names "
        "it the viewer (a close face that tiles cut is not lost meanwhile).",
    )
    follow_crop: Annotated[float, Field(ge=1.5, le=12.0)] = Field(
        3.5, description="Side of the follow crop in face-box widths, 1.5-12."
    )
    follow_min_px: Annotated[int, Field(ge=32, le=4096)] = Field(
        96, description="Smallest follow crop side, pixels."
    )
    nms_iou: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.3, description="Overlap (IoU) above which detections from tiles are merged, 0-1."
    )

    def unused_keys(self) -> dict[str, str]:
        """band_top/band_bottom with camera_height_m; the visitors' ranges without it.

        ``camera_tilt_deg`` is always used: the gaze takes the vertical angle with it.
        """
        if self.camera_height_m is not None:
            why = "camera_height_m is set, and the band is worked out from it"
            return {"band_top": why, "band_bottom": why}
        why = "it describes the band worked out from camera_height_m, which is not set"
        return {k: why for k in ("visitor_eyes_m", "visitor_distance_m")}

    @model_validator(mode="after")
    def _band_order(self) -> FinderConfig:
        for key, why in self.unused_keys().items():
            if self._given_non_default(key):
                raise ValueError(f"{key} is not used: {why}")
        for key in ("visitor_eyes_m", "visitor_distance_m"):
            low, high = getattr(self, key)
            if low > high:
                raise ValueError(f"{key} = [{low}, {high}]: the first must not exceed the second")
        if self.band_top >= self.band_bottom:
            raise ValueError(
                f"band_top ({self.band_top}) must be above band_bottom ({self.band_bottom})"
            )
        return self


_Seconds = Annotated[float, Field(ge=0.0, le=600.0)]


class GazeConfig(Section):
    """Viewer choice, geometry, smoothing, hysteresis and idle behaviour (see appliance/gaze).

    Camera geometry (field of view, mirroring, offset from the portrait's eyes) is in
    :class:`CameraConfig`. Angles are degrees, negative = toward the visitor's left.
    """

    mode: Literal["geometry", "linear"] = Field(
        "geometry",
        description="'geometry': the true angle from the portrait's eyes to the visitor's "
        "(field of view, offset, distance from eye spacing); 'linear': the eye midpoint across "
        "the image width mapped straight to the frame range (for comparison; ignores the "
        "offset and the distance).",
    )
    policy: Literal["sticky", "nearest", "central"] = Field(
        "sticky",
        description="Which visitor to follow: 'sticky' keeps the current one while seen; "
        "'nearest' the closest (largest face); 'central' the one most straight ahead.",
    )
    lost_after_s: _Seconds = Field(
        1.0,
        description="A viewer unseen this long is dropped and another visitor may be followed, "
        "seconds (0-600).",
    )
    switch_margin: Annotated[float, Field(ge=0.0, le=5.0)] = Field(
        0.3,
        description="'sticky'/'nearest': another face must be this fraction larger (closer) "
        "than the viewer's to take over, 0-5 (0.3 = 30 %).",
    )
    switch_angle_deg: Annotated[float, Field(ge=0.0, le=90.0)] = Field(
        5.0,
        description="'central': another visitor must be this many degrees nearer straight "
        "ahead to take over, 0-90.",
    )
    switch_time_s: _Seconds = Field(
        2.0,
        description="'sticky'/'central': the other visitor must stay ahead by the margin this "
        "long before the eyes switch, seconds (0-600). 'nearest' switches at once.",
    )
    ipd_mm: Annotated[float, Field(ge=40.0, le=90.0)] = Field(
        63.0,
        description="Visitors' interpupillary distance used to estimate their distance, mm "
        "(adult mean 63; 40-90).",
    )
    angle_range_deg: Annotated[float, Field(gt=0.0, le=90.0)] = Field(
        30.0,
        description="For a frame set without angles: frames spread evenly over -this..+this "
        "degrees (0-90).",
    )
    filter: Literal["exp", "one_euro", "none"] = Field(
        "one_euro",
        description="Smoothing of the angle: 'exp' exponential (tau_s), 'one_euro' adaptive "
        "(min_cutoff, beta, d_cutoff; calm when still, quick on moves), 'none'.",
    )
    tau_s: Annotated[float, Field(gt=0.0, le=10.0)] = Field(
        0.08,
        description="'exp': time constant in seconds; alpha = 1 - exp(-dt / tau_s) (0-10].",
    )
    min_cutoff: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        1.0, description="'one_euro': cutoff frequency when still, Hz (0-100]; lower = calmer."
    )
    beta: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        0.05,
        description="'one_euro': cutoff increase per degree/s of movement, Hz per °/s (0-10); "
        "higher = less lag on moves.",
    )
    d_cutoff: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        1.0, description="'one_euro': cutoff of the speed estimate, Hz (0-100]."
    )
    hysteresis: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        0.25,
        description="Change frame only once the smoothed angle is this far past the midpoint "
        "between two frames; in hysteresis_unit (a fraction is capped at 0.45, degrees at "
        "0.45 of the frame spacing).",
    )
    hysteresis_unit: Literal["fraction", "deg"] = Field(
        "fraction",
        description="'fraction': of the spacing between the two frames (0-0.45); 'deg': degrees.",
    )
    hold_s: _Seconds = Field(
        0.5,
        description="A viewer missed for less than this is still reported (and the finder "
        "keeps looking there); the gaze holds meanwhile, seconds (0-600).",
    )
    idle_after_s: _Seconds = Field(
        3.0, description="No viewer for this long: the eyes return to rest, seconds (0-600)."
    )
    idle_return_s: _Seconds = Field(
        1.5, description="How long the eyes take to ease back to the rest frame, seconds."
    )
    glance: bool = Field(
        False, description="When idle, glance around now and then (saccades with random holds)."
    )
    glance_interval_s: tuple[_Seconds, _Seconds] = Field(
        (4.0, 12.0), description="(min, max) time at rest between glances, seconds (random)."
    )
    glance_hold_s: tuple[_Seconds, _Seconds] = Field(
        (0.4, 1.5), description="(min, max) time a glance stays away from rest, seconds."
    )
    glance_range_deg: Annotated[float, Field(ge=0.0, le=90.0)] = Field(
        15.0, description="Glances go up to this many degrees either side of rest (0-90)."
    )
    glance_move_s: Annotated[float, Field(ge=0.0, le=5.0)] = Field(
        0.12, description="Duration of one glance movement (a saccade), seconds (0-5)."
    )
    gain: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        1.0,
        description="Fraction of the angle (and pitch) to the visitor the eyes turn, 0-1: 1 "
        "looks at the visitor's true direction; less keeps the gaze nearer frontal, which reads "
        "as eye contact from further to the side (docs/technician/gaze.md).",
    )
    style: Literal["follow", "contact"] = Field(
        "follow",
        description="'follow': the eyes stay on the visitor (times gain); 'contact': they follow "
        "a visitor's movement, then, once the visitor stands still for contact_after_s, ease "
        "toward a frontal gaze over contact_ease_s, so the visitor sits inside the narrow cone "
        "of felt eye contact (docs/technician/gaze.md).",
    )
    contact_after_s: _Seconds = Field(
        1.5, description="'contact': a visitor still this long is looked at frontally, seconds."
    )
    contact_ease_s: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        1.0, description="'contact': how long the eyes take to ease to frontal, seconds (0-10)."
    )
    contact_move_deg: Annotated[float, Field(gt=0.0, le=45.0)] = Field(
        3.0,
        description="'contact': a visitor whose angle moves this far from where they stood is "
        "followed again, degrees.",
    )
    blink: bool = Field(
        True,
        description="Blink now and then (a frame set with lid phases only; see "
        "appliance/gaze/blink.py). Never delays the choice of gaze.",
    )
    blink_rate_per_min: Annotated[float, Field(ge=0.0, le=60.0)] = Field(
        15.0, description="Mean blinks a minute with nobody followed (people: 10-20), 0-60."
    )
    blink_rate_attending_per_min: Annotated[float, Field(ge=0.0, le=60.0)] = Field(
        8.0, description="Mean blinks a minute while a visitor is followed (fewer), 0-60."
    )
    blink_duration_s: tuple[
        Annotated[float, Field(ge=0.05, le=1.0)], Annotated[float, Field(ge=0.05, le=1.0)]
    ] = Field((0.1, 0.3), description="(min, max) length of one blink, seconds (random).")
    blink_with_shift: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.5,
        description="Chance of a blink when the gaze jumps by blink_shift_deg or more, 0-1.",
    )
    blink_shift_deg: Annotated[float, Field(gt=0.0, le=90.0)] = Field(
        10.0, description="A gaze jump at least this large between updates is a large shift."
    )

    @model_validator(mode="after")
    def _ranges(self) -> GazeConfig:
        for name in ("glance_interval_s", "glance_hold_s", "blink_duration_s"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: min ({lo}) is greater than max ({hi})")
        if self.hysteresis_unit == "fraction" and self.hysteresis > 0.45:
            raise ValueError(
                f"hysteresis = {self.hysteresis} is more than 0.45 of the frame spacing; "
                "the eyes could never reach some frames"
            )
        return self


_Channel = Annotated[int, Field(ge=0, le=255)]

DisplayDriver = Literal["auto", "kmsdrm", "window", "headless"]
"""The display drivers: ``auto`` picks ``window`` or ``kmsdrm``; ``headless`` draws offscreen."""
DISPLAY_DRIVERS: tuple[str, ...] = get_args(DisplayDriver)
"""The same names as a tuple, for command-line choices."""
_Pixels = Annotated[int, Field(ge=16, le=16384)]


class DisplayConfig(Section):
    """How the portrait is drawn (pygame-ce: KMS/DRM on the Pi, a window, or offscreen)."""

    driver: DisplayDriver = Field(
        "auto",
        description="'kmsdrm': fullscreen at the monitor's native mode, no desktop (the Pi); "
        "'window': a resizable window (X11 or Wayland); 'headless': offscreen, window_size "
        "(tests, servers); 'auto': window when DISPLAY or WAYLAND_DISPLAY is set, else kmsdrm "
        "when /dev/dri exists, else headless.",
    )
    rotation: Literal[0, 90, 180, 270] = Field(
        0,
        description="Clockwise turn of the picture, degrees, for a monitor hung on its side: "
        "right edge at the top 90, left edge at the top 270, upside down 180.",
    )
    fit: Literal["fit", "fill"] = Field(
        "fit",
        description="'fit': the whole portrait, the rest of the screen in the background "
        "colour; 'fill': cover the whole screen, cropping the overflow equally on both sides.",
    )
    background: tuple[_Channel, _Channel, _Channel] = Field(
        (0, 0, 0), description="Colour of the bands beside a 'fit' portrait, [R, G, B] 0-255."
    )
    crossfade_ms: Annotated[int, Field(ge=0, le=1000)] = Field(
        0, description="Cross-fade between neighbouring frames in ms; 0 = cut."
    )
    window_size: tuple[_Pixels, _Pixels] = Field(
        (540, 800),
        description="(width, height) in pixels of the 'window' and of the 'headless' surface.",
    )
    max_fps: Annotated[float, Field(gt=0, le=240)] = Field(
        60.0, description="Upper bound on redraws per second."
    )
    debug_overlay: bool = Field(
        False, description="Start with the debug overlay (fps, faces, viewer, index) shown."
    )


class FramesConfig(Section):
    """Which frame set is shown (`monalisa frames build` makes one)."""

    directory: str = Field(
        "",
        description="Folder holding the frame set's frames.toml; empty = the default set: "
        "frames/ of the source tree in a clone, else /usr/share/monalisa/frames.",
    )


class ServiceConfig(Section):
    """Running under systemd: the status file and the log."""

    status_file: str = Field(
        "/run/monalisa/status.json",
        description="Where the status JSON (figures only, never an image) is written every "
        "status_interval_s; `monalisa health` reads it.",
    )
    status_interval_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0,
        description="Seconds between status file writes and STATUS= updates (less than "
        "[health] stale_after_s).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="Least important log lines kept: 'debug', 'info' (start, stop, "
        "recoveries), 'warning', 'error'; `monalisa run --verbose` logs at debug whatever it "
        "says.",
    )


class HealthConfig(Section):
    """Thresholds for `monalisa health` (owned by appliance/health.py)."""

    stale_after_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0,
        description="Status older than this is CRITICAL (the appliance is not running), s; "
        "must be more than [service] status_interval_s.",
    )
    startup_grace_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        30.0,
        description="Seconds after start before a missing portrait is CRITICAL and low fps warns.",
    )
    camera_failed_critical_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        60.0,
        description="A camera failing this long is CRITICAL (shorter: WARNING), seconds.",
    )
    min_fps_warning: Annotated[float, Field(ge=0, le=240)] = Field(
        10.0, description="Camera frames processed per second below this is a WARNING."
    )
    temp_warning_c: Annotated[float, Field(gt=0, le=120)] = Field(
        75.0, description="SoC temperature at or above this is a WARNING, °C (Pi caps at 80)."
    )
    warn_on_past_throttling: bool = Field(
        False,
        description="Also WARN when under-voltage/throttling happened earlier since boot.",
    )
    no_viewer_warning_s: Annotated[float, Field(ge=0)] = Field(
        86400.0,
        description="No viewer followed for this long is a WARNING, seconds (with [schedule] "
        "hours, opening hours only); 0 disables.",
    )


def _schedule_check(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A validator of one ``[schedule]`` list entry: the parser's message, without a prefix."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ScheduleError as err:
            raise PydanticCustomError("schedule", str(err)) from None
        return value

    return check


class ScheduleConfig(Section):
    """Opening hours: when the portrait runs, and what the screen shows while closed.

    The grammar of ``open`` and ``closed`` and the handling of clock changes are in
    :mod:`appliance.schedule`; `monalisa schedule` prints the coming week.
    """

    open: list[Annotated[str, AfterValidator(_schedule_check(parse_rule))]] = Field(
        [],
        description="Weekly opening hours, 'DAYS HH:MM-HH:MM[, HH:MM-HH:MM]': days 'Tue-Sun', "
        "'Sat-Mon', 'Mon,Wed' or 'daily'; an end before the start runs past midnight. Empty = "
        "open around the clock.",
    )
    closed: list[Annotated[str, AfterValidator(_schedule_check(parse_closed))]] = Field(
        [],
        description="Whole days closed, local midnight to midnight: 'YYYY-MM-DD' or "
        "'YYYY-MM-DD..YYYY-MM-DD' (both days included).",
    )
    timezone: str = Field(
        "",
        description="IANA time zone of the hours and dates, e.g. 'Europe/Paris'; empty = the "
        "system's (TZ, else /etc/localtime).",
    )
    screen: Literal["off", "black", "rest"] = Field(
        "off",
        description="While closed: 'off' puts the monitor to standby over HDMI-CEC (cec-ctl, "
        "/dev/cec*; without them a black screen); 'black' a black screen, monitor on; 'rest' "
        "the portrait at rest. The camera and detector stop in all three.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                named_zone(value)
            except ZoneError:
                raise PydanticCustomError("timezone", f"unknown time zone ({ZONE_HINT})") from None
        return value

    def to_schedule(self) -> Schedule:
        """The :class:`~appliance.schedule.Schedule` these settings describe.

        An empty ``timezone`` reads the system's zone now (see :mod:`appliance.localzone`).
        """
        zone, _ = resolve_zone(self.timezone)
        return Schedule.parse(self.open, self.closed, zone)


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
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    @model_validator(mode="after")
    def _stale_after_status_interval(self) -> Config:
        stale, interval = self.health.stale_after_s, self.service.status_interval_s
        if stale <= interval:
            raise PydanticCustomError(
                "stale_after_status_interval",
                "health.stale_after_s = {stale} must be greater than service.status_interval_s "
                "= {interval}: every status would count as stale",
                {"stale": stale, "interval": interval},
            )
        return self

    @model_validator(mode="after")
    def _band_from_camera_height(self) -> Config:
        finder, cam = self.finder, self.camera
        if finder.camera_height_m is None:
            return self
        from appliance.optics import CameraView

        view = CameraView.expected(cam, finder)
        try:
            view.head_band()
        except ValueError as err:
            raise PydanticCustomError(
                "band_geometry",
                "finder.camera_height_m = {height}, camera_tilt_deg = {tilt}: {err} "
                "(camera {w}x{h} at {hfov}°)",
                {
                    "height": finder.camera_height_m,
                    "tilt": finder.camera_tilt_deg,
                    "err": str(err).removeprefix("band: "),
                    "w": cam.width,
                    "h": cam.height,
                    "hfov": f"{view.hfov_deg:.1f}",
                },
            ) from None
        return self


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(loc: tuple[int | str, ...]) -> str:
    r"""A key's place as TOML writes it, e.g. ``gaze.tau_s``, ``finder."a b"``, ``open[2]``.

    A key that TOML cannot write bare is quoted with its control characters escaped
    (``camera."\n"``), so an error stays one line, naming the key as it is typed.
    """
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif _BARE_KEY.fullmatch(item):
            parts.append(item)
        else:
            quoted = json.dumps(item, ensure_ascii=False)
            parts.append("".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in quoted))
    return ".".join(parts) or "(top level)"


def _lookup(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    cur = data
    for item in loc:
        try:
            cur = cur[item]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, cur


KeyName = Callable[[tuple[int | str, ...]], str]
"""How an error line names a key, from its place in the data (default: the TOML key path)."""


_PLAIN: dict[str, str] = {
    "float_parsing": "not a number",
    "float_type": "not a number",
    "int_parsing": "not a whole number",
    "int_type": "not a whole number",
    "int_from_float": "not a whole number",
    "bool_parsing": "not true or false",
    "bool_type": "not true or false",
    "finite_number": "not a finite number",
    "dict_type": "not a table",
    "model_type": "not a table",
    "model_attributes_type": "not a table",
    "string_type": "not a string",
    "list_type": "not a list",
    "tuple_type": "not a list",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "too_short": "needs at least {min_length} items",
    "too_long": "takes at most {max_length} items",
    "string_too_short": "needs at least {min_length} characters",
    "string_too_long": "takes at most {max_length} characters",
    "extra_forbidden": "unknown key",
}
"""Pydantic's error types in plain words, with the error's ``ctx`` filled in (``{le}``)."""

_VALIDATOR_TYPES = ("value_error", "assertion_error")
"""A validator's own error: its message is the text after pydantic's "Value error, "."""


def _number(value: Any) -> Any:
    """A bound as a person writes it: ``1`` for pydantic's ``1.0``."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _plain_message(e: Mapping[str, Any], names: tuple[str, ...], value: Any) -> str:
    """One error's message in plain words, on one line, without repeating the key before it.

    Args:
        e: One of pydantic's ``errors()``.
        names: The ways the key may be named (its path, its last part): a validator's message
            that starts ``key = value`` loses that start.
        value: The offending value, as quoted before the message.
    """
    kind, ctx = e.get("type", ""), e.get("ctx") or {}
    if kind in _PLAIN:
        try:
            return _PLAIN[kind].format(**{k: _number(v) for k, v in ctx.items()})
        except (KeyError, IndexError):
            return str(e.get("msg", "invalid"))
    text = ctx["error"] if kind in _VALIDATOR_TYPES and "error" in ctx else e.get("msg")
    lines = str(text or "").splitlines()
    msg = "; ".join(line.strip() for line in lines if line.strip()) or "invalid"
    for name in names:
        for said in (f"{name} = {value!r}", f"{name} = {value}"):
            rest = msg.removeprefix(said)
            if rest != msg and rest[:1] in (" ", ":", ";") and rest.strip(" :;"):
                return rest.lstrip(" :;")
    return msg


def format_validation_error(
    source: str | None, data: Any, err: ValidationError, key_name: KeyName | None = None
) -> list[str]:
    """Turn a pydantic error into one line per problem, naming file, key path and value.

    The one formatter of every file format's model: the configuration, ``clip.toml``,
    ``frames.toml``, the fleet's variables, the status file and the trace's lines. Pydantic's
    wording is replaced by a short plain one (``not a number``, ``must be at most 1``,
    ``unknown key``); a validator's own message is kept as it is, without pydantic's
    ``Value error,`` and without the key and value it would repeat. A validator's error on a
    whole table (a section, a ``[[frames]]`` table) names the table, not its contents.

    Args:
        source: The file name (or other source label) to prefix every line with; None: no
            prefix (the caller names the file, e.g. a trace's line number).
        data: The raw parsed data, to quote the offending value.
        err: The pydantic error.
        key_name: Names a key from its place in ``data``; default: its TOML key path
            (``gaze.tau_s``). The fleet check names the inventory variable instead.

    Returns:
        Lines like ``config.toml: gaze.tau_s = -1: must be greater than 0``.
    """
    lines = []
    prefix = "" if source is None else f"{source}: "
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        path = (key_name or key_path)(loc)
        found, value = _lookup(data, loc)
        names = (path, str(loc[-1])) if loc else ()
        msg = _plain_message(e, names, value)
        typed = e.get("type") in _PLAIN
        if e.get("type") == "missing":
            lines.append(f"{prefix}missing key {path!r}")
        elif not loc:  # a check across sections: its message names the keys and values
            lines.append(f"{prefix}{msg}")
        elif found and (typed or not isinstance(value, dict | list)):
            lines.append(f"{prefix}{path} = {value!r}: {msg}")
        else:  # not there, or a check of a whole table: its message names what is wrong
            lines.append(f"{prefix}{path}: {msg}")
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
    """Render a config as TOML text (the effective settings, every key written out).

    Every value is written by :func:`toml_value`; a key that is unset or that other settings
    make unused is written as a comment saying so. Read back, the text gives an equal config.
    """
    out: list[str] = []
    for name, section in config:
        out.append(tomli_w.dumps({name: {}}).rstrip("\n"))
        unused = section.unused_keys()
        for key, value in section:
            if value is None:
                out.append(f"# {key} is unset (the built-in default applies)")
            elif key in unused:
                out.append(f"# {key} = {toml_value(value)} is not used: {unused[key]}")
            else:
                out.append(f"{key} = {toml_value(value)}")
        out.append("")
    return "\n".join(out)


def toml_value(value: Any) -> str:
    """One value as TOML spells it, on one line: tomli-w writes each scalar, arrays stay inline.

    Raises:
        TypeError: A value TOML cannot hold inline (None, a table, another type).
    """
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        raise TypeError(f"cannot render {value!r} as an inline TOML value")
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")
