"""Blinks and the vertical choice: the blink clock, the rows, and the two together with a still
visitor (issue 25's "Done when": 3-30 blinks a minute, each 80-500 ms, at most one change of
frame over 40 s; the same visitor lower in the image looked at with a lower pitch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.config import CameraConfig, FinderConfig, GazeConfig
from appliance.gaze import Gaze
from appliance.gaze.blink import REFRACTORY_S, BlinkClock, lid_phase
from appliance.optics import CameraView
from appliance.types import Box, Face, Point

SIZE = (640, 480)
PITCHES = (-15.0, -7.5, 0.0, 7.5, 15.0)
ANGLES = tuple(float(a) for a in np.linspace(-30, 30, 33))


def face_at(x: float, y: float, eye_px: float = 20.0) -> Face:
    """A face whose eye midpoint is at ``(x, y)`` image pixels, eyes ``eye_px`` apart."""
    half = eye_px / 2
    box = Box(x - 2 * eye_px, y - eye_px, x + 2 * eye_px, y + 2 * eye_px)
    return Face(box, 0.9, (Point(x - half, y), Point(x + half, y), *[Point(x, y + 10)] * 4))  # type: ignore[arg-type]


def runs(values: list[float], fps: float) -> list[float]:
    """Lengths of the runs of non-zero values, seconds (a run lasts its frames / fps)."""
    out, n = [], 0
    for v in [*values, 0.0]:
        if v > 0:
            n += 1
        elif n:
            out.append(n / fps)
            n = 0
    return out


def still_visitor(y: float, seconds: float = 40.0, fps: float = 30.0, seed: int = 1) -> dict:
    """A visitor standing still at image height ``y`` (face detector noise of 0.5 px), shown
    a 33 × 5 × 4 set: per frame the gaze, row and lid phase value, as the trace has them."""
    rng = np.random.default_rng(seed)
    cfg = GazeConfig()
    g = Gaze(cfg, CameraConfig(), ANGLES, 16, pitches=PITCHES, rest_row=2)
    clock = BlinkClock(cfg, seed=seed)
    phases = (0.0, 1 / 3, 2 / 3, 1.0)
    index, pitch, lids = [], [], []
    for k in range(int(seconds * fps)):
        t = k / fps
        jitter = rng.normal(0.0, 0.5, 2)
        rec = g.update([face_at(400 + jitter[0], y + jitter[1])], t, SIZE)
        closed = clock.update(t, rec.state == "tracking", rec.angle)
        lid = lid_phase(closed, phases)
        index.append(rec.index)
        pitch.append(PITCHES[rec.row])
        lids.append(phases[lid])
    return {"index": index, "pitch": pitch, "lids": lids, "fps": fps, "seconds": seconds}


def test_a_still_visitor_for_40_s() -> None:
    run = still_visitor(240.0)
    blinks = runs(run["lids"], run["fps"])
    per_min = len(blinks) * 60.0 / run["seconds"]
    assert 3 <= per_min <= 30, per_min
    assert all(0.08 <= b <= 0.5 for b in blinks), blinks
    changes = sum(a != b for a, b in zip(run["index"][30:], run["index"][31:], strict=False))
    assert changes <= 1, changes  # after the first second: the blinks never move the gaze
    assert max(run["lids"]) == 1.0  # the lids do shut


def test_a_lower_visitor_is_looked_at_lower() -> None:
    level = np.mean(still_visitor(180.0)["pitch"])
    low = np.mean(still_visitor(400.0)["pitch"])
    assert low <= level - 2.0, (level, low)


def test_a_child_at_2_m_is_looked_down_at_and_a_tall_adult_level() -> None:
    """Camera level with the portrait's eyes at 1.6 m: a child's eyes at 1.1 m, 2 m away, are
    14° below; an adult's at 1.7 m about 3° above (the level row)."""
    g = Gaze(GazeConfig(), CameraConfig(), ANGLES, 16, pitches=PITCHES, rest_row=2)
    f = g.camera.focal_px(SIZE[0])
    e = f * 63.0 / 2000.0
    child = face_at(320, 240 + f * 500.0 / 2000.0, e)
    adult = face_at(320, 240 - f * 100.0 / 2000.0, e)
    assert g.pitch_of(child, SIZE) == pytest.approx(-math.degrees(math.atan(0.25)), abs=0.01)
    for face, row in ((child, 0), (adult, 2)):
        g = Gaze(GazeConfig(), CameraConfig(), ANGLES, 16, pitches=PITCHES, rest_row=2)
        rec = None
        for k in range(60):
            rec = g.update([face], k / 30, SIZE)
        assert rec is not None and rec.row == row


@pytest.mark.parametrize(
    ("tilt", "offset_y"), [(0.0, 0.0), (12.0, 0.0), (-8.0, 0.0), (12.0, 300.0)]
)
def test_the_row_comes_from_the_camera_geometry(tilt: float, offset_y: float) -> None:
    """A child's eyes 50 cm below the portrait's, 2 m out, are 14° down, and an adult's 10 cm
    above about 3° up, wherever the camera hangs (``offset_y_mm``) and however it is tilted
    (``[finder] camera_tilt_deg``, which the gaze reads off its view): the same visitors land
    elsewhere in the image, the row is the same. Taking the tilted camera as level would be off
    by the tilt."""
    from appliance.gaze.geometry import face_at as place

    camera = CameraConfig(offset_y_mm=offset_y)
    view = CameraView.expected(camera, FinderConfig(camera_tilt_deg=tilt), sensor=None)
    cases = ((-500.0, -math.degrees(math.atan(0.25)), 0), (100.0, math.degrees(math.atan(0.05)), 2))
    for y_mm, pitch, row in cases:
        g = Gaze(GazeConfig(), camera, ANGLES, 16, pitches=PITCHES, rest_row=2, view=view)
        face = place(300.0, 2000.0, SIZE, g.camera, y_mm=y_mm)
        assert g.pitch_of(face, SIZE) == pytest.approx(pitch, abs=0.01)
        level = Gaze(GazeConfig(), camera, ANGLES, 16, pitches=PITCHES, rest_row=2)
        assert abs(level.pitch_of(face, SIZE) - pitch) == pytest.approx(abs(tilt), abs=1.5)
        rec = None
        for k in range(60):
            rec = g.update([face], k / 30, SIZE)
        assert rec is not None and rec.row == row and rec.angle_raw is not None
        assert rec.angle_raw == pytest.approx(math.degrees(math.atan(0.15)), abs=0.01)


def test_blinks_while_idle_and_with_large_shifts() -> None:
    cfg = GazeConfig(blink_with_shift=1.0)
    clock = BlinkClock(cfg, seed=3)
    values = [clock.update(k / 30, False, 0.0) for k in range(30 * 60)]
    assert 5 <= len(runs(values, 30)) <= 30  # about 15 a minute with nobody there
    # A jump of 20° starts a blink at once (past the refractory time).
    t = 60.0 + REFRACTORY_S
    clock.update(t, True, 0.0)
    later = [clock.update(t + k / 30, True, 20.0) for k in range(1, 6)]
    assert max(later) > 0


def test_blink_intervals_keep_the_rate_and_a_jumping_clock_restarts_them() -> None:
    """The mean interval is one over the rate (here 8 a minute: 7.5 s), few are under 2 s or
    over 20 s; a clock that jumps (the first camera frame's time, a clip started again) starts
    no blink by itself and ends one under way."""
    clock = BlinkClock(GazeConfig(), seed=7)
    gaps = [clock._interval(True) for _ in range(4000)]
    assert np.mean(gaps) == pytest.approx(7.5, rel=0.05)
    assert np.mean(np.array(gaps) < 2.0) < 0.05 and np.mean(np.array(gaps) > 20.0) < 0.03
    clock = BlinkClock(GazeConfig(), seed=7)
    values = [clock.update(k / 30, False, 0.0) for k in range(30 * 30)]
    assert max(values) > 0
    assert clock.start is not None
    assert clock.update(5000.0, False, 0.0) == 0.0 and clock.start is None
    assert clock.next is not None and clock.next >= 5000.0 + REFRACTORY_S


def test_no_blinks_when_off_or_without_lid_frames() -> None:
    for clock in (BlinkClock(GazeConfig(blink=False)), BlinkClock(GazeConfig(), enabled=False)):
        assert all(clock.update(k / 30, False, 0.0) == 0.0 for k in range(30 * 60))


def test_gain_scales_the_turn() -> None:
    """A visitor about 20° to the side: gain 1 turns the eyes there, gain 0.5 half as far."""
    face = face_at(150.0, 240.0)
    settled = {}
    for gain in (1.0, 0.5):
        g = Gaze(GazeConfig(gain=gain), CameraConfig(), ANGLES, 16, pitches=PITCHES, rest_row=2)
        rec = None
        for k in range(90):
            rec = g.update([face], k / 30, SIZE)
        assert rec is not None and rec.angle_raw is not None
        settled[gain] = (rec.angle, rec.angle_raw)
    full, raw = settled[1.0]
    assert abs(raw) > 15 and full == pytest.approx(raw, abs=0.5)
    assert settled[0.5][0] == pytest.approx(0.5 * raw, abs=0.5)


def test_contact_style_follows_a_move_then_eases_to_frontal() -> None:
    """'contact': a visitor stepping to about 20° is followed there; standing still, the eyes
    ease to frontal (within 1°) after contact_after_s + contact_ease_s; a new step is followed
    again."""
    cfg = GazeConfig(style="contact", contact_after_s=1.0, contact_ease_s=1.0)
    g = Gaze(cfg, CameraConfig(), ANGLES, 16, pitches=PITCHES, rest_row=2)
    fps = 30
    angles = []
    for k in range(6 * fps):
        x = 150.0 if k < 4 * fps else 500.0  # steps to the other side after 4 s
        rec = g.update([face_at(x, 240.0)], k / fps, SIZE)
        angles.append((rec.angle, rec.angle_raw))
    early, raw = angles[int(0.8 * fps)]
    assert raw is not None and abs(raw) > 15 and abs(early) > 0.8 * abs(raw)  # followed
    assert abs(angles[int(3.5 * fps)][0]) < 1.0  # still: frontal
    after_step, raw2 = angles[int(4.5 * fps)]
    assert raw2 is not None and raw2 * raw < 0 and abs(after_step) > 0.5 * abs(raw2)
