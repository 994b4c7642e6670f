from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.camera import CameraError
from appliance.config import FinderConfig
from appliance.finder import Finder
from appliance.types import Box, Face, Point
from tests.support.faults import (
    FaultyDetector,
    FaultySource,
    bad_frame,
    nan_face,
    parse,
    wrap_detector,
)
from tests.support.run import MONALISA, MONALISA_WITH_FAULTS, app_env


def test_parse_full_spec():
    plan = parse(
        "camera_raise_at:3, camera_fail_for:5:1.5,camera_stall_at:7:2,camera_bad_at:9:black,"
        "detector_raise_at:4,detector_nan_at:6,hang_after:20"
    )
    assert plan.camera_raise_at == {3}
    assert plan.camera_fail == (5, 1.5)
    assert plan.camera_stall == (7, 2.0)
    assert plan.camera_bad == {9: "black"}
    assert plan.detector_raise_at == {4}
    assert plan.detector_nan_at == {6}
    assert plan.hang_after == 20
    assert plan.touches_camera and plan.touches_detector


def test_empty_spec_is_no_fault():
    plan = parse(None)
    assert not plan.touches_camera and plan.hang_after is None
    assert not plan.touches_detector and not parse("detector_raise_at:3").touches_detector
    assert not parse("").touches_camera


def test_parse_camera_hangs():
    plan = parse("camera_hang_at:5,camera_hang_every:180:10,camera_hang_while:/tmp/a:b")
    assert plan.camera_hang_at == 5 and plan.camera_hang_every == (180.0, 10.0)
    assert plan.camera_hang_while == "/tmp/a:b" and plan.touches_camera


@pytest.mark.parametrize(
    "spec",
    [
        "explode",
        "hang_after",
        "hang_after:x",
        "camera_fail_for:1",
        "camera_hang_every:10:10",  # a hang as long as the period never ends
        "camera_hang_while:",
    ],
)
def test_bad_spec_names_the_item(spec):
    with pytest.raises(ValueError, match="MONALISA_FAULT"):
        parse(spec)


def test_bad_frames():
    img = np.full((10, 12, 3), 100, np.uint8)
    assert bad_frame(img, "black").max() == 0
    assert bad_frame(img, "white").min() == 255
    assert bad_frame(img, "shape").shape == (10, 12)
    assert bad_frame(img, "tiny").shape == (1, 1, 3)
    assert bad_frame(img, "truncated").shape == (5, 12, 3)
    assert bad_frame(img, "float").dtype == np.float64
    with pytest.raises(ValueError):
        bad_frame(img, "purple")


class Counter:
    name = "count"
    lossless = True

    def __init__(self):
        self.n = 0

    def open(self):
        pass

    def read(self):
        self.n += 1
        return np.full((4, 4, 3), self.n, np.uint8), self.n / 30

    def fresh(self):
        new = Counter()
        new.n = self.n
        return new

    def close(self):
        pass


def test_faulty_source_raises_once_and_replaces_frames():
    src = FaultySource(Counter(), parse("camera_raise_at:1,camera_bad_at:2:white"))
    src.open()
    first, _ = src.read()
    assert int(first[0, 0, 0]) == 1
    with pytest.raises(CameraError, match="injected"):
        src.read()
    white, _ = src.read()
    assert int(white.min()) == 255
    again, _ = src.read()
    assert int(again[0, 0, 0]) == 3


def test_a_fresh_faulty_source_counts_on_and_hangs_in_a_real_read():
    """A fresh copy (a new capture thread's) goes on at the next frame number, so a fault at
    frame N happens once; camera_hang_every blocks in os.read until its timer writes."""
    src = FaultySource(Counter(), parse("camera_raise_at:1,camera_hang_every:0.2:0.05"))
    src.open()
    assert int(src.read()[0][0, 0, 0]) == 1
    again = src.fresh()
    assert again is not None and again is not src and again.inner is not src.inner
    with pytest.raises(CameraError, match="frame 1"):
        again.read()
    time.sleep(0.25)
    began = time.monotonic()
    src.read()  # the hang: blocked in read(2) until the timer wrote
    assert time.monotonic() - began >= 0.04
    assert not parse("camera_hang_at:3").camera_hang_every


def test_faulty_source_failure_window_blocks_open():
    src = FaultySource(Counter(), parse("camera_fail_for:0:30"))
    src.open()
    with pytest.raises(CameraError):
        src.read()
    with pytest.raises(CameraError, match="open"):
        src.open()


def test_nan_face_is_all_nan():
    f = nan_face()
    assert math.isnan(f.score) and all(math.isnan(p.x) for p in f.keypoints)


def test_leak_fault_keeps_memory_per_frame():
    plan = parse("leak_per_frame:1000")
    assert plan.leak_per_frame == 1000 and plan.touches_camera
    src = FaultySource(Counter(), plan)
    src.open()
    for _ in range(5):
        src.read()
    assert sum(len(b) for b in src._leaked) == 5000
    with pytest.raises(ValueError, match="MONALISA_FAULT"):
        parse("leak_per_frame:-1")


class CentreFace:
    """A stand-in detector: one face in the middle of whatever crop it is given (or none)."""

    input_size = 192

    def __init__(self, empty: bool = False) -> None:
        self.empty = empty
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        if self.empty:
            return []
        h, w = image.shape[:2]
        cx, cy, s = w / 2, h / 2, min(w, h) / 8
        right, left, mid = (
            Point(cx - s / 2, cy - s / 4),
            Point(cx + s / 2, cy - s / 4),
            Point(cx, cy),
        )
        return [Face(Box(cx - s, cy - s, cx + s, cy + s), 0.9, (right, left, mid, mid, mid, mid))]


def _finite(face: Face) -> bool:
    vals = [face.score, *face.box.as_list(), *(c for p in face.keypoints for c in (p.x, p.y))]
    return all(math.isfinite(v) for v in vals)


def test_wrap_detector_only_with_detector_faults():
    inner = CentreFace()
    assert wrap_detector(inner, parse("camera_raise_at:1,detector_raise_at:2")) is inner
    wrapped = wrap_detector(inner, parse("detector_nan_at:2"))
    assert isinstance(wrapped, FaultyDetector) and wrapped.inner is inner
    assert wrapped.input_size == 192  # everything else is the inner detector's


def test_faulty_detector_adds_one_nan_face_on_the_fault_frame_only():
    plan = parse("detector_nan_at:2")
    det = FaultyDetector(CentreFace(), plan)
    image = np.zeros((64, 64, 3), np.uint8)
    counts: dict[int, list[int]] = {}
    for frame in range(4):
        plan.frame = frame
        for _ in range(3):  # several crops per frame, as the finder asks
            faces = det.detect(image)
            assert _finite(faces[0])
            counts.setdefault(frame, []).append(len(faces))
    assert counts == {0: [1, 1, 1], 1: [1, 1, 1], 2: [2, 1, 1], 3: [1, 1, 1]}
    assert det.injected == [2]


def test_faulty_detector_only_adds_to_a_real_detection():
    plan = parse("detector_nan_at:0")
    plan.frame = 0
    det = FaultyDetector(CentreFace(empty=True), plan)
    assert det.detect(np.zeros((32, 32, 3), np.uint8)) == []
    assert det.injected == []


def test_nan_face_goes_through_the_finder():
    """The NaN face from below reaches the finder's merge; the real face comes out intact."""
    plan = parse("detector_nan_at:5")
    plan.frame = 5
    inner = CentreFace()
    finder = Finder(FinderConfig(mode="band"), FaultyDetector(inner, plan))
    frame = np.zeros((240, 320, 3), np.uint8)
    result = finder.find(frame)
    assert inner.calls >= 1 and plan.frame in finder.detector.injected  # type: ignore[attr-defined]
    real = [f for f in result.faces if _finite(f)]
    assert len(real) >= 1 and all(0.0 <= f.score <= 1.0 for f in real)


def run_with_fault(command: list[str], spec: str, clip: Path, tmp: Path, duration_s: float = 3):
    args = ["run", "--camera", f"replay:{clip}", "--display", "headless"]
    args += ["--replay-speed", "max", "--duration", str(duration_s)]
    args += ["--status-file", str(tmp / "s.json")]
    return subprocess.run(
        [*command, *args],
        cwd=tmp,
        env=app_env(MONALISA_FAULT=spec),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_monalisa_ignores_monalisa_fault(astronaut_clip, tmp_path):
    """Only the test entry point injects: ``monalisa`` itself runs clean under any spec."""
    faulty = run_with_fault(MONALISA_WITH_FAULTS, "camera_raise_at:3", astronaut_clip, tmp_path)
    assert faulty.returncode == 0, faulty.stderr
    assert "injected read error at frame 3" in faulty.stderr
    plain = run_with_fault(MONALISA, "camera_raise_at:3", astronaut_clip, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "injected" not in plain.stderr and "fault" not in plain.stderr
    bogus = run_with_fault(MONALISA_WITH_FAULTS, "no_such_fault:1", astronaut_clip, tmp_path)
    assert bogus.returncode == 2
    assert bogus.stderr.strip() == "monalisa: MONALISA_FAULT: cannot understand 'no_such_fault:1'"
    plain = run_with_fault(MONALISA, "no_such_fault:1", astronaut_clip, tmp_path, duration_s=1)
    assert plain.returncode == 0, plain.stderr  # it runs (a second is enough to tell)


def test_no_module_of_the_package_reads_monalisa_fault():
    package = Path(__file__).resolve().parents[1] / "appliance"
    readers = [p for p in package.rglob("*.py") if "MONALISA_FAULT" in p.read_text("utf-8")]
    assert readers == []
