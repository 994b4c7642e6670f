from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.camera import CameraError
from appliance.faults import FaultySource, bad_frame, nan_face, parse


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
    assert plan.touches_camera


def test_empty_spec_is_no_fault():
    plan = parse(None)
    assert not plan.touches_camera and plan.hang_after is None
    assert not parse("").touches_camera


@pytest.mark.parametrize("spec", ["explode", "hang_after", "hang_after:x", "camera_fail_for:1"])
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
