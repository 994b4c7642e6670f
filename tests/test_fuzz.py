"""Fuzzing with hypothesis: whatever comes in, a clear one-line error or a result, never a crash.

* frame manifests (``frames.toml``): random text, TOML syntax errors, random keys, types and
  values, valid manifests cut short → :class:`FrameSetError` with one line, or a frame set;
* detector inputs: random shapes, dtypes, sizes from 1×1 to 8000×8000, non-contiguous views →
  a list of faces or a :class:`ValueError`;
* status files read by ``monalisa health``: random bytes, truncated or mistyped JSON → one
  Nagios line, exit 0-3 (UNKNOWN for a corrupt file), never a traceback;
* trace files read by ``monalisa trace plot``: truncated or corrupt → one-line error.

Config files are fuzzed in tests/test_config.py. Example counts are fixed (``derandomize``
is off, but ``max_examples`` bounds the time); the totals are printed with ``-s``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.config import HealthConfig
from appliance.frames import FrameSet, FrameSetError
from appliance.health import check

MONALISA = [sys.executable, "-m", "appliance.cli"]


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
    detect_or_clear_error(detector, image)


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
    from appliance.sim import CameraGeometry, Visitor, astronaut_photo, render_visitor_frame

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


@needs_trace_plot
@fuzz(60)
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
