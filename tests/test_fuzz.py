"""Fuzzing with hypothesis: whatever comes in, a clear one-line error or a result, never a crash.

* frame manifests (``frames.toml``): random text, TOML syntax errors, random keys, types and
  values, valid manifests cut short → :class:`FrameSetError` with one line, or a frame set;
* config files through ``monalisa config check`` (in-process ``cli.main``): random sections,
  keys, types and values, TOML syntax errors → exit 78 with one stderr line per problem, each
  naming the file, or exit 0 for a valid file; never a traceback;
* detector inputs: random shapes, dtypes, sizes from 1×1 to 8000×8000, non-contiguous views →
  a list of faces for a usable image, a one-line :class:`ValueError` for anything else;
* status files read by ``monalisa health``: random bytes, truncated or mistyped JSON → one
  Nagios line, exit 0-3 (UNKNOWN for a corrupt file), never a traceback;
* trace files read by ``monalisa trace plot``: truncated or corrupt → one-line error.

Parsed config documents are also fuzzed in-process in tests/test_config.py. Example counts are
bounded by ``max_examples`` (``derandomize`` is off); ``--hypothesis-show-statistics`` prints
how many each test ran.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.config import Config, HealthConfig
from appliance.frames import FrameSet, FrameSetError
from appliance.health import check
from tests.support.run import MONALISA


def fuzz(max_examples: int) -> settings:
    """Hypothesis settings for these fuzzers: no deadline, no example database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


# -- frame manifests ---------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict[str, Any]) -> str:
    """A tiny TOML writer: top-level keys, then ``[[frames]]`` tables."""
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if k != "frames"]
    frames = doc.get("frames")
    if isinstance(frames, list) and all(isinstance(f, dict) for f in frames):
        for f in frames:
            lines.append("[[frames]]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in f.items()]
    elif "frames" in doc:
        lines.insert(0, f"frames = {_toml_value(frames)}")
    return "\n".join(lines) + "\n"


scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["frame_00.png", "frame_01.png", "../etc/passwd", "/abs.png", "", "x.png"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
SMALL_INTS = st.integers(-3, 40)


def valid_manifest(count: int = 2) -> dict[str, Any]:
    return {
        "count": count,
        "size": [8, 6],
        "rest_index": 0,
        "head_box": [1, 1, 6, 5],
        "frames": [{"file": f"frame_{i:02d}.png", "angle": -10.0 + 20.0 * i} for i in range(count)],
    }


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid manifest with some keys dropped, retyped or set to odd values."""
    doc = valid_manifest(draw(st.integers(1, 3)))
    for key in draw(st.lists(st.sampled_from([*doc, "extra"]), max_size=3)):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            doc.pop(key, None)
        elif choice == 1:
            doc[key] = draw(values)
        elif choice == 2:
            doc[key] = draw(SMALL_INTS)
        else:
            doc[key] = draw(st.lists(SMALL_INTS, max_size=5))
    if isinstance(doc.get("frames"), list) and doc["frames"] and draw(st.booleans()):
        i = draw(st.integers(0, len(doc["frames"]) - 1))
        if isinstance(doc["frames"][i], dict):
            doc["frames"][i][draw(st.sampled_from(["file", "angle", "other"]))] = draw(values)
    return doc


@pytest.fixture(scope="module")
def frame_dir() -> Any:
    with tempfile.TemporaryDirectory(prefix="fuzz-frames-") as d:
        path = Path(d)
        for i in range(3):
            img = np.full((6, 8, 3), 40, np.uint8)
            img[2:4, 2 + i : 4 + i] = 200
            Image.fromarray(img).save(path / f"frame_{i:02d}.png")
        yield path


def load_or_clear_error(directory: Path) -> FrameSet | None:
    try:
        return FrameSet.load(directory)
    except FrameSetError as err:
        message = str(err)
        assert "\n" not in message and message.strip(), repr(message)
        assert str(directory) in message, message
        return None


def test_valid_manifest_loads(frame_dir):
    (frame_dir / "frames.toml").write_text(to_toml(valid_manifest(3)))
    fs = load_or_clear_error(frame_dir)
    assert fs is not None and fs.count == 3


@fuzz(300)
@given(doc=manifests())
def test_fuzz_manifest_values(frame_dir, doc):
    (frame_dir / "frames.toml").write_text(to_toml(doc))
    load_or_clear_error(frame_dir)


@fuzz(200)
@given(text=st.text(max_size=300))
@example(text="count = ")
@example(text='count = 2\nsize = [8, 6]\n[[frames]]\nfile = "frame_00.png"\nangle = ')
@example(text="\x00\x01\x02")
def test_fuzz_manifest_text(frame_dir, text):
    (frame_dir / "frames.toml").write_text(text)
    load_or_clear_error(frame_dir)


@fuzz(150)
@given(cut=st.integers(0, 400), junk=st.binary(max_size=8))
def test_fuzz_manifest_cut_short(frame_dir, cut, junk):
    data = to_toml(valid_manifest(3)).encode()
    (frame_dir / "frames.toml").write_bytes(data[: cut % (len(data) + 1)] + junk)
    load_or_clear_error(frame_dir)


# -- config files through `monalisa config check` ----------------------------------------------
DEFAULTS: dict[str, dict[str, Any]] = Config().model_dump()
SCALAR_FIELDS = [
    (section, key)
    for section, fields in DEFAULTS.items()
    for key, value in fields.items()
    if isinstance(value, bool | int | float | str)
]
ALL_KEYS = {key for fields in DEFAULTS.values() for key in fields}
GOOD_VALUES = [  # valid on their own, whatever else is at its default
    ("detector", "num_threads", 1),
    ("camera", "mirror", True),
    ("camera", "fps", 15),
    ("service", "log_level", "debug"),
    ("finder", "mode", "whole"),
    ("health", "stale_after_s", 10.0),
]
BAD_VALUES = [  # invalid whatever else is in the file
    ("detector", "num_threads", 0),
    ("detector", "num_threads", 99),
    ("camera", "width", 10),
    ("camera", "fps", -1.0),
    ("camera", "fps", "fast"),
    ("camera", "mirror", "maybe"),
    ("camera", "replay_speed", "slow"),
    ("finder", "mode", "dia\ngonal"),
    ("service", "log_level", "x\r\ny"),
    ("health", "stale_after_s", 0.0),
]
BROKEN_TOML = [  # appended to a document, each makes it invalid TOML
    '\nbroken = "unterminated\n',
    "\n[unclosed\n",
    "\n= 3\n",
    "\nkey =\n",
    "\n[camera]\n[camera]\n",
    "\nx = 1\nx = 2\n",
    "\n[[service]]\n",
]
no_surrogates = st.characters(codec="utf-8")  # anything a UTF-8 file can hold
text_no_surrogates = st.text(no_surrogates, max_size=40)
odd_keys = st.text(no_surrogates, min_size=1, max_size=8).filter(lambda k: k not in ALL_KEYS)


@st.composite
def config_files(draw: st.DrawFn) -> tuple[str, int | None]:
    """TOML text for ``monalisa config check`` and its exit status (None: either 0 or 78).

    Starts from a valid file (some keys at their defaults or other valid values) and applies
    random changes, each known to keep it valid, make it invalid, or either (a random value).
    """
    doc: dict[str, dict[str, tuple[str, str]]] = {}  # section -> key -> (TOML value, verdict)
    top: dict[str, tuple[str, str]] = {}  # top-level keys (a section that is not a table)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(
                [
                    *("default", "good", "good", "bad", "random"),
                    *("unknown key", "unknown section", "table", "array", "not a table"),
                ]
            )
        )
        section, key = draw(st.sampled_from(SCALAR_FIELDS))
        if kind == "default":
            entry = (_toml_value(DEFAULTS[section][key]), "valid")
        elif kind == "good":
            section, key, good = draw(st.sampled_from(GOOD_VALUES))
            entry = (_toml_value(good), "valid")
        elif kind == "bad":
            section, key, bad = draw(st.sampled_from(BAD_VALUES))
            entry = (_toml_value(bad), "invalid")
        elif kind == "random":
            entry = (_toml_value(draw(values)), "either")
        elif kind == "unknown key":
            key = draw(odd_keys)
            entry = (_toml_value(draw(values)), "invalid")
        elif kind == "unknown section":
            section = draw(odd_keys.filter(lambda k: k not in DEFAULTS))
            entry = (_toml_value(draw(values)), "invalid")
        elif kind == "table":
            entry = ("{x = 1}", "invalid")
        elif kind == "array":
            entry = (_toml_value(draw(st.lists(SMALL_INTS, max_size=3))), "invalid")
        else:
            top[section] = (_toml_value(draw(scalars)), "invalid")
            continue
        doc.setdefault(section, {})[key] = entry
    lines = [f"{json.dumps(k)} = {v}" for k, (v, _) in top.items()]
    for section, entries in doc.items():
        lines.append(f"[{json.dumps(section)}]")
        lines += [f"{json.dumps(k)} = {v}" for k, (v, _) in entries.items()]
    text = "\n".join(lines) + "\n"
    verdicts = {v for _, v in top.values()} | {v for e in doc.values() for _, v in e.values()}
    syntax = draw(st.sampled_from(["fine", "fine", "broken", "cut", "junk", "random text"]))
    if syntax == "broken":
        text += draw(st.sampled_from(BROKEN_TOML))
        verdicts.add("invalid")
    elif syntax == "cut":  # may cut off the bad part, or leave a broken line
        text = text[: draw(st.integers(0, len(text)))]
        verdicts = {"either"}
    elif syntax == "junk":  # may break it, or comment out the bad part
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(text_no_surrogates) + text[at:]
        verdicts = {"either"}
    elif syntax == "random text":
        text = draw(text_no_surrogates)
        verdicts = {"either"}
    if "invalid" in verdicts:
        return text, 78
    return text, None if "either" in verdicts else 0


def config_check(capsys: Any, path: Path) -> tuple[int, str, str]:
    """``monalisa config check PATH`` in-process: (exit status, stdout, stderr)."""
    from appliance.cli import main

    capsys.readouterr()
    try:
        code = main(["config", "check", str(path)])
    except SystemExit as e:  # argparse; not expected here
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_config_check_sees_a_bad_value(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[service]\nlog_level = "x\\ny"\n', encoding="utf-8")
    code, out, err = config_check(capsys, path)
    assert code == 78 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"{path}: ") and "log_level" in err, err


@fuzz(200)
@given(case=config_files())
@example(case=("", 0))
@example(case=("[camera]\nfps = 15\n[detector]\nnum_threads = 1\n", 0))
@example(case=('[camera]\nfps = "fast"\n[bogus]\nx = 1\n', 78))
@example(case=("[camera]\nfps = \n", 78))
@example(case=('["camera"]\n"source" = "picamera2"\n"\\n" = 0\n', 78))  # a quoted key: CI
def test_fuzz_config_check_cli(tmp_path, capsys, case):
    text, expected = case
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err = config_check(capsys, path)
    event(f"expected {'0 or 78' if expected is None else expected}, exit {code}")
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert code in (0, 78), (code, err)
    if expected is not None:
        assert code == expected, (text, err)
    if code == 0:
        assert out == f"{path}: OK\n" and err == "", (out, err)
        assert isinstance(tomllib.loads(text), dict)
    else:
        assert out == "" and err.endswith("\n"), (out, err)
        # One journal line per problem (journald splits on \n), each naming the file.
        for line in err[:-1].split("\n"):
            assert line.startswith(f"{path}: ") and len(line) > len(f"{path}: "), err


# -- detector inputs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector() -> Any:
    from appliance.detector import Detector

    return Detector("full", num_threads=1)


DTYPES = [np.uint8, np.uint8, np.uint8, np.int8, np.uint16, np.float32, np.float64, np.bool_]


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    """Arrays of every shape and dtype, mostly small, some non-contiguous."""
    ndim = draw(st.sampled_from([0, 1, 2, 3, 3, 3, 3, 4]))
    dims = [draw(st.integers(0, 96)) for _ in range(ndim)]
    if ndim == 3 and draw(st.booleans()):
        dims[2] = draw(st.sampled_from([1, 3, 4]))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    arr = (rng.random(dims) * 255).astype(dtype) if dims else np.array(7, dtype)
    view = draw(st.sampled_from(["as is", "step", "flip", "transpose", "fortran"]))
    if view == "step" and arr.ndim >= 2:
        arr = arr[::2, ::3]
    elif view == "flip" and arr.ndim >= 2:
        arr = arr[:, ::-1]
    elif view == "transpose" and arr.ndim >= 2:
        arr = arr.swapaxes(0, 1)
    elif view == "fortran":
        arr = np.asfortranarray(arr)
    return arr


def usable(image: Any) -> bool:
    """What the detector promises to take: non-empty uint8 H×W, H×W×1, H×W×3 or H×W×4."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4)))
        and image.shape[0] >= 1
        and image.shape[1] >= 1
    )


def detect_or_clear_error(detector: Any, image: Any) -> list[Any] | None:
    try:
        faces = detector.detect(image)
    except ValueError as err:
        assert str(err).strip() and "\n" not in str(err)
        return None
    assert isinstance(faces, list)
    for f in faces:
        assert 0.0 <= f.score <= 1.0 and math.isfinite(f.box.x0) and math.isfinite(f.box.y1)
    return faces


@fuzz(250)
@given(image=images())
def test_fuzz_detector_inputs(detector, image):
    faces = detect_or_clear_error(detector, image)
    assert (faces is not None) == usable(image), (image.shape, image.dtype)


LARGE_PIXELS = 8000 * 64
"""At most this many pixels per large fuzzed image (one side up to 8000 px)."""


def _filled(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An array of ``shape``: a random 32×32 block tiled over it (cheap for big shapes)."""
    block = (rng.random((32, 32, *shape[2:])) * 255).astype(dtype)
    reps = (-(-shape[0] // 32), -(-shape[1] // 32), *([1] * (len(shape) - 2)))
    return np.ascontiguousarray(np.tile(block, reps)[: shape[0], : shape[1]])


def _view(draw: st.DrawFn, arr: np.ndarray) -> np.ndarray:
    """``arr`` as is, or as one of the non-contiguous views a caller might pass."""
    view = draw(
        st.sampled_from(
            ["as is", "step", "flip", "transpose", "fortran", "crop", "broadcast", "channels"]
        )
    )
    if view == "step":
        return arr[::2, ::3]
    if view == "flip":
        return arr[::-1, ::-1]
    if view == "transpose":
        return arr.swapaxes(0, 1)
    if view == "fortran":
        return np.asfortranarray(arr)
    if view == "crop" and arr.shape[0] > 2 and arr.shape[1] > 2:
        return arr[1:-1, 1:-1]
    if view == "broadcast":  # zero strides: one row repeated (read-only)
        return np.broadcast_to(arr[:1], arr.shape)
    if view == "channels" and arr.ndim == 3:
        return arr[..., ::-1]
    return arr


@st.composite
def large_images(draw: st.DrawFn) -> np.ndarray:
    """Long, thin arrays: one side 97-8000 px, at most :data:`LARGE_PIXELS` pixels in all."""
    long_side = draw(st.integers(97, 8000))
    short_side = draw(st.integers(1, LARGE_PIXELS // long_side))
    h, w = (long_side, short_side) if draw(st.booleans()) else (short_side, long_side)
    channels = draw(st.sampled_from([None, 1, 2, 3, 3, 3, 4, 5]))
    shape = (h, w) if channels is None else (h, w, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _view(draw, _filled(rng, shape, draw(st.sampled_from(DTYPES))))


@fuzz(80)
@given(image=large_images())
@example(image=np.zeros((8000, 64, 3), np.uint8))
@example(image=np.zeros((1, 8000), np.uint8)[:, ::-1])
def test_fuzz_detector_large_inputs(detector, image):
    faces = detect_or_clear_error(detector, image)
    assert (faces is not None) == usable(image), (image.shape, image.dtype, image.strides)


@st.composite
def huge_images(draw: st.DrawFn) -> np.ndarray:
    """A few big pictures, 2000-8000 px on both sides (up to 8000×8000×3), uint8 or not."""
    h, w = draw(st.integers(2000, 8000)), draw(st.integers(2000, 8000))
    channels = draw(st.sampled_from([3, 3, 4, 2]))
    dtype = draw(st.sampled_from([np.uint8, np.uint8, np.uint8, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _view(draw, _filled(rng, (h, w, channels), dtype))


@fuzz(6)
@given(image=huge_images())
def test_fuzz_detector_huge_inputs(detector, image):
    faces = detect_or_clear_error(detector, image)
    assert (faces is not None) == usable(image), (image.shape, image.dtype, image.strides)


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 3), (1, 8000, 3), (8000, 1), (8000, 8000, 3), (4000, 3000, 4), (2, 2, 2)],
)
def test_detector_extreme_sizes(detector, shape):
    image = np.zeros(shape, np.uint8)
    image[..., :1] = 90
    faces = detect_or_clear_error(detector, image)
    if shape[-1] == 2:
        assert faces is None  # two channels: a clear ValueError
    else:
        assert faces == []  # a flat picture has nobody in it


def test_detector_non_contiguous_matches_contiguous(detector):
    from tests.support.sim import CameraGeometry, Visitor, astronaut_photo, render_visitor_frame

    frame = render_visitor_frame(
        astronaut_photo(),
        [Visitor(x_m=0.0, distance_m=1.0, eye_height_m=1.62)],
        geometry=CameraGeometry(width=320, height=240),
    )
    padded = np.zeros((240, 640, 3), np.uint8)
    padded[:, ::2] = frame
    view = padded[:, ::2]
    assert not view.flags.c_contiguous
    a, b = detector.detect(frame), detector.detect(view)
    assert len(a) == len(b) >= 1
    assert a[0].box.as_list() == pytest.approx(b[0].box.as_list(), abs=1e-3)


# -- status files for `monalisa health` --------------------------------------------------------
GOOD_STATUS: dict[str, Any] = {
    "schema": 1,
    "version": "0.1.0",
    "pid": 1,
    "uptime_s": 100.0,
    "camera": {"source": "replay:x", "state": "running", "fps": 30.0, "failed_for_s": None},
    "detector_ms": 8.0,
    "loop_fps": 29.0,
    "display_fps": 2.0,
    "frame_index": 16,
    "frame_count": 33,
    "gaze_state": "idle",
    "viewers_last_minute": 0,
    "last_viewer_age_s": 10.0,
    "cpu_temp_c": 50.0,
    "throttled": None,
    "written_at": 0.0,
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)


@st.composite
def status_documents(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(GOOD_STATUS))
    doc["written_at"] = draw(st.sampled_from([0.0, 1e12, -5.0, 1.7e9]))
    for key in draw(st.lists(st.sampled_from([*doc, "camera.state", "camera.fps"]), max_size=4)):
        value = draw(json_values)
        if key.startswith("camera.") and isinstance(doc.get("camera"), dict):
            doc["camera"][key.split(".")[1]] = value
        elif draw(st.booleans()):
            doc[key] = value
        else:
            doc.pop(key, None)
    data = json.dumps(doc).encode()
    how = draw(st.sampled_from(["whole", "cut", "junk", "nan"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "junk":
        data = draw(st.binary(max_size=64)) + data[draw(st.integers(0, len(data))) :]
    elif how == "nan":
        data = data.replace(b"29.0", b"NaN").replace(b"50.0", b"Infinity")
    return data


def assert_nagios(result: Any, path: Path) -> None:
    assert result.code in (0, 1, 2, 3)
    line = result.line
    assert "\n" not in line and line.startswith("MONALISA "), line


@fuzz(400)
@given(data=status_documents())
def test_fuzz_status_file(tmp_path, data):
    path = tmp_path / "status.json"
    path.write_bytes(data)
    result = check(path, HealthConfig())
    assert_nagios(result, path)
    try:
        ok = isinstance(json.loads(data), dict)
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        assert result.code == 3 and "UNKNOWN" in result.line, result.line


@fuzz(200)
@given(data=st.binary(max_size=200))
def test_fuzz_status_file_bytes(tmp_path, data):
    path = tmp_path / "status.json"
    path.write_bytes(data)
    assert_nagios(check(path, HealthConfig()), path)


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"written_at": "soon"}', b"\xff\xfe\x00", b"[1, 2]", b'{"written_at": 1e400}'],
)
def test_health_cli_on_corrupt_status(tmp_path, content):
    path = tmp_path / "status.json"
    path.write_bytes(content)
    res = subprocess.run(
        [*MONALISA, "health", "--status-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 3, res.stdout + res.stderr
    assert len(res.stdout.splitlines()) == 1 and res.stdout.startswith("MONALISA UNKNOWN")
    assert res.stderr == ""


# -- trace files for `monalisa trace plot` -----------------------------------------------------
def _trace_plot_available() -> bool:
    res = subprocess.run(
        [*MONALISA, "trace", "plot", "--help"], capture_output=True, text=True, timeout=30
    )
    return res.returncode == 0


GOOD_ROW = {
    "t": 0.0,
    "seq": 0,
    "faces": [{"box": [1, 2, 30, 40], "score": 0.9, "eyes": [[10, 12], [20, 12]]}],
    "viewer": 1,
    "angle_raw": 3.0,
    "angle": 2.5,
    "index": 17,
    "frame_count": 33,
    "state": "tracking",
    "ms": {"capture": 1.0, "detect": 5.0, "gaze": 0.1, "draw": 0.5},
}

needs_trace_plot = pytest.mark.skipif(
    not _trace_plot_available(), reason="`monalisa trace plot` is not installed"
)


@st.composite
def trace_texts(draw: st.DrawFn) -> bytes:
    rows = []
    for i in range(draw(st.integers(0, 30))):
        row = json.loads(json.dumps(GOOD_ROW))
        row.update(seq=i, t=i / 30, index=draw(st.integers(0, 32)))
        for key in draw(st.lists(st.sampled_from(list(GOOD_ROW)), max_size=2)):
            if draw(st.booleans()):
                row[key] = draw(json_values)
            else:
                row.pop(key, None)
        rows.append(json.dumps(row))
    data = ("\n".join(rows) + "\n").encode()
    how = draw(st.sampled_from(["whole", "cut", "junk", "garbage line"]))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "junk":
        data += draw(st.binary(max_size=40))
    elif how == "garbage line":
        data = b'{"t": NaN, "seq": \n' + data
    return data


def run_trace_plot(capsys, trace: Path, out: Path) -> tuple[int, str]:
    from appliance.cli import main

    try:
        code = main(["trace", "plot", str(trace), "-o", str(out)])
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.err


@fuzz(60)
@given(data=trace_texts())
def test_fuzz_trace_reading(tmp_path, data):
    """The reader `trace plot` uses: every usable line kept, or one line naming the file."""
    from appliance.traceplot import TraceError, load_trace

    trace = tmp_path / "t.jsonl"
    trace.write_bytes(data)
    try:
        read = load_trace(trace)
    except TraceError as err:
        assert "\n" not in str(err) and str(trace) in str(err), err
    else:
        assert read.t and all(map(math.isfinite, read.t))


# Drawing takes about half a second a trace: fewer examples through the whole command (the
# reader is fuzzed above with more).
@needs_trace_plot
@fuzz(15)
@given(data=trace_texts())
def test_fuzz_trace_plot(tmp_path, capsys, data):
    trace, out = tmp_path / "t.jsonl", tmp_path / "plot.png"
    trace.write_bytes(data)
    out.unlink(missing_ok=True)
    code, err = run_trace_plot(capsys, trace, out)
    assert "Traceback" not in err
    if code == 0:
        assert out.is_file() and out.stat().st_size > 0
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(trace) in lines[0], err


@needs_trace_plot
@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"[]\n", b'{"seq": 0}\n'])
def test_trace_plot_cli_on_corrupt_trace(tmp_path, content):
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(content)
    res = subprocess.run(
        [*MONALISA, "trace", "plot", str(trace), "-o", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in res.stderr
    if res.returncode != 0:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
