"""Every file format's errors in the one formatter's plain words (config.format_validation_error).

One table per format: bad data, read through the format's own reader, and the one line it must
give. Together they cover each of pydantic's error types the formatter words plainly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from pydantic import BaseModel, ValidationError, field_validator

from appliance.camera import CameraError, ClipFile
from appliance.config import _PLAIN, ConfigError, format_validation_error, parse_config
from appliance.fleetvars import validate
from appliance.frames import FrameSetError, validate_manifest
from appliance.status import StatusError, read_status
from appliance.trace import TraceLineError, parse_line


def _kind(err: BaseException) -> str:
    """The type of the first pydantic error behind a reader's own error."""
    cause = err.__context__
    assert isinstance(cause, ValidationError), cause
    return cause.errors()[0]["type"]


CONFIG = [
    ({"camera": {"fps": "fast"}}, "float_parsing", "camera.fps = 'fast': not a number"),
    ({"camera": {"fps": [30]}}, "float_type", "camera.fps = [30]: not a number"),
    ({"camera": {"width": "wide"}}, "int_parsing", "camera.width = 'wide': not a whole number"),
    ({"camera": {"width": 640.5}}, "int_from_float", "camera.width = 640.5: not a whole number"),
    ({"camera": {"width": [640]}}, "int_type", "camera.width = [640]: not a whole number"),
    ({"camera": {"mirror": 3}}, "bool_parsing", "camera.mirror = 3: not true or false"),
    ({"camera": {"mirror": [True]}}, "bool_type", "camera.mirror = [True]: not true or false"),
    ({"camera": 5}, "model_type", "camera = 5: not a table"),
    ({"camera": {"source": 5}}, "string_type", "camera.source = 5: not a string"),
    ({"camera": {"fps": -3}}, "greater_than", "camera.fps = -3: must be greater than 0"),
    ({"camera": {"fps": 500}}, "less_than_equal", "camera.fps = 500: must be at most 120"),
    ({"camera": {"hfov_deg": 500}}, "less_than", "camera.hfov_deg = 500: must be less than 180"),
    ({"gaze": {"tau_s": 0}}, "greater_than", "gaze.tau_s = 0: must be greater than 0"),
    (
        {"schedule": {"screen": "dark"}},
        "literal_error",
        "schedule.screen = 'dark': must be 'off', 'black' or 'rest'",
    ),
    ({"schedule": {"open": "daily"}}, "list_type", "schedule.open = 'daily': not a list"),
    ({"camera": {"zoom": 2}}, "extra_forbidden", "camera.zoom = 2: unknown key"),
    (
        {"gaze": {"hysteresis_unit": "fraction", "hysteresis": 0.5}},
        "value_error",
        "gaze: hysteresis = 0.5 is more than 0.45 of the frame spacing; "
        "the eyes could never reach some frames",
    ),
]


@pytest.mark.parametrize(("data", "kind", "line"), CONFIG, ids=[c[1] for c in CONFIG])
def test_config_toml(data: dict[str, Any], kind: str, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "c.toml")
    assert err.value.lines == [f"c.toml: {line}"]
    assert _kind(err.value) == kind


def test_fleet_variables_name_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        validate("p", {"monalisa_camera_fps": "fast", "monalisa_camera_mirror": 3})
    assert err.value.lines == [
        "p: monalisa_camera_fps = 'fast': not a number",
        "p: monalisa_camera_mirror = 3: not true or false",
    ]


CLIP = [
    ({"fps": "fast"}, "float_parsing", "fps = 'fast': not a number"),
    ({"fps": 0}, "greater_than", "fps = 0: must be greater than 0"),
    ({"fps": 2000}, "less_than_equal", "fps = 2000: must be at most 1000"),
    ({"frames": -1}, "greater_than_equal", "frames = -1: must be at least 0"),
    ({"frames": 1.5}, "int_from_float", "frames = 1.5: not a whole number"),
    ({"loop": "yes"}, "bool_type", "loop = 'yes': not true or false"),
    ({"truth": 5}, "model_type", "truth = 5: not a table"),
    ({"truth": {"points": "px"}}, "missing", "missing key 'truth.file'"),
    ({"speed": 2}, "extra_forbidden", "speed = 2: unknown key"),
]


@pytest.mark.parametrize(("data", "kind", "line"), CLIP, ids=[c[1] for c in CLIP])
def test_clip_toml(tmp_path: Path, data: dict[str, Any], kind: str, line: str) -> None:
    path = tmp_path / "clip.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(CameraError) as err:
        ClipFile.read(path)
    assert str(err.value) == f"{path}: {line}"
    assert _kind(err.value) == kind


def _manifest(**frame: Any) -> dict[str, Any]:
    frames: list[dict[str, Any]] = [{"angle": -10.0}, {"angle": 10.0}]
    frames[1].update(frame)
    return {"version": 2, "count": 2, "size": [64, 64], "head_box": [0, 0, 8, 8], "frames": frames}


MANIFEST = [
    ({**_manifest(), "count": "two"}, "int_type", "count = 'two': not a whole number"),
    ({**_manifest(), "size": "big"}, "list_type", "size = 'big': not a list"),
    ({**_manifest(), "size": [64]}, "too_short", "size = [64]: needs at least 2 items"),
    (_manifest(angle="x"), "float_type", "frames[1].angle = 'x': not a number"),
    (_manifest(angle=float("inf")), "finite_number", "frames[1].angle = inf: not a finite number"),
    (_manifest(lids=2.0), "less_than_equal", "frames[1].lids = 2.0: must be at most 1"),
    (_manifest(lids=-1.0), "greater_than_equal", "frames[1].lids = -1.0: must be at least 0"),
    (_manifest(patch=5), "string_type", "frames[1].patch = 5: not a string"),
    (_manifest(angel=3.0), "extra_forbidden", "frames[1].angel = 3.0: unknown key"),
    ({**_manifest(), "frames": [1, {"angle": 10.0}]}, "model_type", "frames[0] = 1: not a table"),
]


@pytest.mark.parametrize(("data", "kind", "line"), MANIFEST, ids=[m[1] for m in MANIFEST])
def test_frames_toml(data: dict[str, Any], kind: str, line: str) -> None:
    with pytest.raises(FrameSetError) as err:
        validate_manifest(data, "frames.toml")
    assert str(err.value) == f"frames.toml: {line}"
    assert _kind(err.value) == kind


STATUS = [
    ({"camera": {"fps": "30"}}, "float_type", "camera.fps = '30': not a number"),
    ({"camera": 5}, "model_type", "camera = 5: not a table"),
    ({"frames": 1.5}, "int_type", "frames = 1.5: not a whole number"),
    ({"version": 2}, "string_type", "version = 2: not a string"),
    ({"camera": {"fps": 1e400}}, "finite_number", "camera.fps = inf: not a finite number"),
    ({"throttled": {"raw": "hot"}}, "value_error", "throttled: has no valid 'raw' value"),
]


@pytest.mark.parametrize(("data", "kind", "line"), STATUS, ids=[s[1] for s in STATUS])
def test_status_file(data: dict[str, Any], kind: str, line: str) -> None:
    with pytest.raises(StatusError) as err:
        read_status(json.dumps({"written_at": 1.0, **data}))
    assert str(err.value) == line
    assert _kind(err.value) == kind


TRACE = [
    ({"angle": "left"}, "float_type", "angle = 'left': not a number"),
    ({"angle": 1e400}, "finite_number", "angle = inf: not a finite number"),
    ({"seq": 1.5}, "int_type", "seq = 1.5: not a whole number"),
    ({"state": 1}, "string_type", "state = 1: not a string"),
    ({"faces": {}}, "list_type", "faces = {}: not a list"),
    ({"ms": 3}, "model_type", "ms = 3: not a table"),
]


@pytest.mark.parametrize(("data", "kind", "line"), TRACE, ids=[t[1] for t in TRACE])
def test_trace_line(data: dict[str, Any], kind: str, line: str) -> None:
    with pytest.raises(TraceLineError) as err:
        parse_line(json.loads(json.dumps({"t": 1.0, **data})))
    assert str(err.value) == line
    assert _kind(err.value) == kind


def test_the_tables_cover_every_plain_wording() -> None:
    """Each wording of the formatter's table is met by some format above (or is a twin)."""
    met = {kind for table in (CONFIG, CLIP, MANIFEST, STATUS, TRACE) for _, kind, _ in table}
    twins = {"dict_type", "model_attributes_type", "tuple_type", "enum", "too_long"}
    twins |= {"string_too_short", "string_too_long"}
    assert set(_PLAIN) - met <= twins


class _Checked(BaseModel):
    """A model whose validators word their own errors, as the formats' validators do."""

    gain: float = 0.5
    level: int = 0

    @field_validator("gain")
    @classmethod
    def _gain(cls, value: float) -> float:
        if value == 1:  # a message that names another value: kept whole
            raise ValueError("gain = 10 is what it was; no prefix of its own")
        if value > 1:
            more = "\ntwice as much" if value == 2 else ""  # a message of two lines
            raise ValueError(f"gain = {value} is more than the whole signal{more}")
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: int) -> int:
        if value % 2:
            raise AssertionError("an even number of steps")
        return value


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"gain": 1.5}, "x.toml: gain = 1.5: is more than the whole signal"),
        ({"level": 3}, "x.toml: level = 3: an even number of steps"),
        ({"gain": 2.0}, "x.toml: gain = 2.0: is more than the whole signal; twice as much"),
        ({"gain": 1}, "x.toml: gain = 1: gain = 10 is what it was; no prefix of its own"),
    ],
)
def test_a_validators_message_is_kept_without_pydantics_prefix_or_its_key(
    data: dict[str, Any], line: str
) -> None:
    with pytest.raises(ValidationError) as err:
        _Checked.model_validate(data)
    assert format_validation_error("x.toml", data, err.value) == [line]
