"""Tests for tests.support.sim: geometry, the astronaut cut-out, walks and clip files."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.types import Point
from tests.support import sim
from tests.support.run import REPO
from tests.support.sim import CameraGeometry, Renderer, Visitor


@pytest.fixture(scope="module")
def photo() -> sim.FacePhoto:
    return sim.astronaut_photo()


@pytest.fixture(scope="module")
def renderer(photo: sim.FacePhoto) -> Renderer:
    return Renderer(photo, CameraGeometry(), seed=1)


def test_module_does_not_import_skimage() -> None:
    code = "import sys, tests.support.sim; sys.exit('skimage' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO).returncode == 0


def test_focal_length_matches_camera_module_3() -> None:
    assert CameraGeometry(640, 480).focal_px == pytest.approx(492.8, abs=0.1)
    assert CameraGeometry(1280, 960).focal_px == pytest.approx(985.6, abs=0.1)


def test_projection_level_and_tilted() -> None:
    g = CameraGeometry(1280, 960, height_m=1.75)
    u, v, depth = g.project(0.5, 1.75, 2.0)
    assert (u, v, depth) == pytest.approx((640 + g.focal_px * 0.25, 480, 2.0))
    u, v, _ = g.project(0.0, 1.55, 2.0)
    assert v == pytest.approx(480 + g.focal_px * 0.1)
    # A camera tilted down by atan(0.2/2) sees a point 0.2 m lower at 2 m on its axis.
    tilted = CameraGeometry(1280, 960, height_m=1.75, tilt_deg=math.degrees(math.atan(0.1)))
    assert tilted.project(0.0, 1.55, 2.0)[1] == pytest.approx(480, abs=1e-6)


@pytest.mark.parametrize(("distance", "x"), [(1.5, -0.6), (2.5, 0.3), (4.5, 1.2)])
def test_eyes_follow_camera_geometry(renderer: Renderer, distance: float, x: float) -> None:
    g = renderer.geometry
    t = renderer.eyes(Visitor(x_m=x, distance_m=distance, eye_height_m=1.6))
    assert t.eye_px == pytest.approx(g.focal_px * 0.063 / distance, rel=0.02)
    assert t.eye_mid.x == pytest.approx(640 + g.focal_px * x / distance, abs=0.6)
    assert t.eye_mid.y == pytest.approx(480 + g.focal_px * 0.15 / distance, abs=1.5)
    assert t.right_eye.x < t.left_eye.x  # the subject's right eye is on the image left
    assert t.in_view


def _dark_at(frame: np.ndarray, p: Point, r: int) -> float:
    x, y = round(p.x - 0.5), round(p.y - 0.5)
    return float(frame[y - r : y + r + 1, x - r : x + r + 1].mean())


@pytest.mark.parametrize("roll", [0.0, 12.0])
def test_truth_eyes_are_on_the_pupils(photo: sim.FacePhoto, roll: float) -> None:
    # Close up (eyes ~130 px apart) the pupils are clearly darker than the skin between and
    # below them; a wrong eye constant or scale/offset bug moves the truth off the pupils.
    r = Renderer(photo, CameraGeometry(), seed=2, noise_sigma=0.0)
    frame, (t,) = r.render([Visitor(x_m=0.0, distance_m=0.5, roll_deg=roll)])
    assert t.eye_px == pytest.approx(985.6 * 0.063 / 0.5, rel=0.03)
    rad = 2
    for eye in (t.right_eye, t.left_eye):
        below = Point(eye.x, eye.y + 0.35 * t.eye_px)  # cheek
        assert _dark_at(frame, eye, rad) < _dark_at(frame, below, rad) - 60
    assert _dark_at(frame, t.eye_mid, rad) > _dark_at(frame, t.right_eye, rad) + 40
    if roll:
        angle = math.degrees(math.atan2(t.left_eye.y - t.right_eye.y, t.left_eye.x - t.right_eye.x))
        flat = r.eyes(Visitor(x_m=0.0, distance_m=0.5))
        flat_angle = math.degrees(
            math.atan2(flat.left_eye.y - flat.right_eye.y, flat.left_eye.x - flat.right_eye.x)
        )
        assert angle - flat_angle == pytest.approx(roll, abs=0.5)


def test_render_is_deterministic_and_seeded(photo: sim.FacePhoto) -> None:
    v = [Visitor(0.2, 2.0)]
    a = sim.render_visitor_frame(photo, v, seed=5)
    b = sim.render_visitor_frame(photo, v, seed=5)
    c = sim.render_visitor_frame(photo, v, seed=6)
    assert a.shape == (960, 1280, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.mean(np.abs(a.astype(int) - c.astype(int))) > 3


def test_empty_room_is_background_plus_noise(renderer: Renderer) -> None:
    frame, truths = renderer.render([])
    assert truths == []
    assert renderer.background is not None
    diff = frame.astype(np.float32) - renderer.background.astype(np.float32)
    assert abs(float(diff.mean())) < 0.2
    assert float(diff.std()) == pytest.approx(renderer.noise_sigma, rel=0.15)


def test_visitor_changes_only_their_region(renderer: Renderer) -> None:
    frame, (t,) = renderer.render([Visitor(x_m=-0.5, distance_m=2.5)])
    assert renderer.background is not None
    changed = np.abs(frame.astype(int) - renderer.background.astype(int)).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    # Head and body are within ~0.3 m of the eye midpoint sideways.
    ppm = t.eye_px / 0.063
    assert xs.min() > t.eye_mid.x - 0.3 * ppm and xs.max() < t.eye_mid.x + 0.3 * ppm
    assert ys.min() > t.eye_mid.y - 0.2 * ppm  # nothing above the hair


def test_background_size_mismatch_is_an_error(photo: sim.FacePhoto) -> None:
    with pytest.raises(ValueError, match="640x480"):
        Renderer(photo, CameraGeometry(), background=np.zeros((480, 640, 3), np.uint8))


def test_walk_crosses_stands_and_leaves() -> None:
    g = CameraGeometry()
    poses = sim.walk(g, 3.5, fps=30, speed_mps=1.2, stand_s=1.0, stand_x_m=0.4, leave_s=0.5)
    assert poses[-15:] == [None] * 15
    people = [p for p in poses if p is not None]
    xs = [p.x_m for p in people]
    assert all(b >= a for a, b in itertools.pairwise(xs))  # left to right
    half = g.half_width_m(3.5)
    assert xs[0] == pytest.approx(-half + 0.126) and xs[-1] > half - 0.2
    assert sum(1 for x in xs if x == 0.4) == 30  # one second standing
    steps = np.diff(xs)
    assert steps.max() == pytest.approx(1.2 / 30, rel=0.01)
    r2l = sim.walk(g, 2.0, direction=-1, stand_s=0.0)
    assert r2l[0] is not None and r2l[-1] is not None and r2l[0].x_m > r2l[-1].x_m
    with pytest.raises(ValueError):
        sim.walk(g, 0.1)


def test_every_walk_frame_shows_the_whole_head(renderer: Renderer) -> None:
    poses = sim.walk(renderer.geometry, 1.5, stand_s=0.0, speed_mps=3.0)
    assert all(p is not None and renderer.eyes(p).in_view for p in poses)
    assert not renderer.eyes(Visitor(x_m=-1.2, distance_m=1.5)).in_view


def test_write_clip_round_trips_through_replay(tmp_path: Path, photo: sim.FacePhoto) -> None:
    from appliance.camera import ReplaySource

    g = CameraGeometry(320, 240)
    r = Renderer(photo, g, seed=0)
    poses = sim.walk(g, 1.0, fps=10, speed_mps=2.0, stand_s=0.2, leave_s=0.2)
    n = sim.write_clip(tmp_path, sim.render_walk(r, poses), fps=10)
    assert n == len(poses)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[1] == "frame_00000.png" and "clip.toml" in files and sim.TRUTH_FILE in files
    truth = sim.read_truth(tmp_path)
    assert len(truth) == n
    assert truth[-1] == [] and len(truth[0]) == 1
    first = poses[0]
    assert first is not None
    assert truth[0][0].eye_mid.x == pytest.approx(r.eyes(first).eye_mid.x, abs=1e-3)
    src = ReplaySource(str(tmp_path), "max")
    src.open()
    assert src.fps == 10.0
    img, t = src.read()
    _, t2 = src.read()
    assert img.shape == (240, 320, 3) and t == 0.0 and t2 == pytest.approx(0.1)
    # PNG is lossless: the replayed frame is exactly the rendered one.
    again = Renderer(photo, g, seed=0)
    assert np.array_equal(img, again.render([first])[0])


def test_write_clip_plain_frames_and_jpeg(tmp_path: Path) -> None:
    frames = [np.full((48, 64, 3), i * 40, np.uint8) for i in range(3)]
    assert sim.write_clip(tmp_path, frames, fps=25, image_format="jpg") == 3
    assert (tmp_path / "frame_00002.jpg").exists()
    assert not (tmp_path / sim.TRUTH_FILE).exists()
    assert "fps = 25.0" in (tmp_path / "clip.toml").read_text()
    with pytest.raises(ValueError, match="no \\[truth\\]"):
        sim.read_truth(tmp_path)
    with pytest.raises(ValueError, match="fps"):
        sim.write_clip(tmp_path, frames, fps=0)


def test_bad_truth_line_names_file_and_line(tmp_path: Path) -> None:
    sim.write_clip(tmp_path, [(np.zeros((8, 8, 3), np.uint8), [])], fps=30)
    (tmp_path / sim.TRUTH_FILE).write_text('{"frame": 0, "visitors": [{"x": 1}]}\n')
    with pytest.raises(ValueError, match=r"truth.jsonl:1: bad truth line"):
        sim.read_truth(tmp_path)


def test_detector_finds_the_synthetic_visitor(renderer: Renderer) -> None:
    detector_mod = pytest.importorskip("appliance.detector")
    det = detector_mod.Detector("full")
    frame, (t,) = renderer.render([Visitor(x_m=0.3, distance_m=1.0)])
    faces = det.detect(frame)
    assert faces, "no face found at 1 m"
    best = min(faces, key=lambda f: math.dist(f.eye_mid.as_list(), t.eye_mid.as_list()))
    assert math.dist(best.eye_mid.as_list(), t.eye_mid.as_list()) < 0.15 * t.eye_px
    empty, _ = renderer.render([])
    assert det.detect(empty) == []
