"""Gaze: geometry and sign conventions, filters, hysteresis, viewer choice, idle behaviour.

Faces are built through the pinhole model (``face_at``) at 3-D positions, with Gaussian
jitter on every keypoint and box edge where the issue asks for it. Everything runs on the
clip clock (``t`` passed in), so nothing depends on the machine's speed.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import CameraConfig, ConfigError, GazeConfig, dump_config, parse_config
from appliance.finder import UsableFaces, usable_faces
from appliance.gaze import Gaze, GazeRecord
from appliance.gaze.filters import ExpFilter, NoFilter, OneEuroFilter, make_filter
from appliance.gaze.geometry import (
    Camera,
    angle_at,
    even_angles,
    face_at,
    hysteresis_index,
    linear_angle,
    locate,
    nearest_index,
)
from appliance.gaze.idle import Glancer, smoothstep
from appliance.optics import CameraView
from appliance.types import Box, Face, Follow, Point
from tests.support.sim import CameraGeometry

W, H = 640, 480
SIZE = (W, H)
FPS = 30.0
ANGLES = even_angles(33, 30.0)  # 1.875° apart
STEP = ANGLES[1] - ANGLES[0]
MIDDLE = 16

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def gaze(cam: CameraConfig | None = None, **cfg: object) -> Gaze:
    return Gaze(GazeConfig(**cfg), cam or CameraConfig(), ANGLES, MIDDLE)


def at_angle(angle_deg: float, z_mm: float) -> float:
    """The lateral position (mm, + = visitor's right) seen at ``angle_deg`` from the portrait."""
    return z_mm * math.tan(math.radians(angle_deg))


def jitter(face: Face, rng: random.Random, sigma: float = 2.0) -> Face:
    """Gaussian pixel noise (``sigma`` px) on every keypoint and box edge, independently."""
    kps = tuple(Point(p.x + rng.gauss(0, sigma), p.y + rng.gauss(0, sigma)) for p in face.keypoints)
    b = face.box
    box = Box(*(v + rng.gauss(0, sigma) for v in (b.x0, b.y0, b.x1, b.y1)))
    return Face(box, face.score, kps)  # type: ignore[arg-type]


def run(g: Gaze, faces_at, t0: float, t1: float, rng: random.Random | None = None):
    """Feed ``faces_at(t)`` at 30 fps from t0 (inclusive) to t1 (exclusive); return records."""
    out: list[GazeRecord] = []
    n0, n1 = round(t0 * FPS), round(t1 * FPS)
    for i in range(n0, n1):
        t = i / FPS
        faces = faces_at(t)
        if rng is not None:
            faces = [jitter(f, rng) for f in faces]
        out.append(g.update(faces, t, SIZE))
    return out


def index_changes(records: list[GazeRecord]) -> int:
    return sum(a.index != b.index for a, b in itertools.pairwise(records))


# -- geometry and sign conventions ----------------------------------------------------------
def test_face_at_agrees_with_the_simulators_pinhole():
    # tests.support.sim places visitors with its own pinhole model; x there is + = image right,
    # i.e. the visitor's LEFT for an unmirrored camera facing the room.
    geo = CameraGeometry(width=W, height=H, hfov_deg=66.0, height_m=1.6, tilt_deg=0.0)
    cam = Camera(hfov_deg=66.0)
    for x_m, z_m in [(0.0, 2.0), (0.5, 2.0), (-1.2, 3.5), (0.3, 1.0)]:
        u, v, _ = geo.project(x_m, 1.6, z_m)
        f = face_at(-x_m * 1000, z_m * 1000, SIZE, cam)
        assert f.eye_mid.x == pytest.approx(u, abs=1e-6)
        assert f.eye_mid.y == pytest.approx(v, abs=1e-6)
        assert f.eye_distance == pytest.approx(geo.focal_px * 0.063 / z_m, rel=1e-9)
        # The subject's right eye is on the image left in an unmirrored image.
        assert f.right_eye.x < f.left_eye.x


def test_distance_from_eye_spacing_by_hand():
    # f = 320 / tan(33°) = 492.77 px; eyes 15.52 px apart -> 492.77 * 63 / 15.52 = 2000 mm.
    f_px = 320 / math.tan(math.radians(33))
    e = f_px * 63 / 2000
    face = Face(
        Box(300, 200, 340, 240),
        0.9,
        (Point(320 - e / 2, 240), Point(320 + e / 2, 240), *[Point(320, 250)] * 4),  # type: ignore[arg-type]
    )
    pos = locate(face, SIZE, Camera())
    assert pos.z_mm == pytest.approx(2000.0, rel=1e-9)
    assert pos.x_mm == pytest.approx(0.0, abs=1e-9)
    assert pos.angle_deg == pytest.approx(0.0, abs=1e-9)


def test_the_views_tilt_levels_the_pitch_without_a_camera_height():
    """Eyes at the camera's height, 2 m out, seen by a camera tilted 10° down (``[finder]
    camera_tilt_deg = 10``, no ``camera_height_m``): the image shows them ``f·tan 10°`` above
    its centre. The gaze, given the view the runner builds, reports them level (pitch 0), a
    level camera's gaze 10° up; a new crop of the same view keeps the tilt."""
    config = parse_config(
        {"camera": {"source": "webcam", "width": W, "height": H}, "finder": {"camera_tilt_deg": 10}}
    )
    view = CameraView.expected(config.camera, config.finder)  # as the runner builds it
    assert config.finder.camera_height_m is None and view.tilt_deg == 10.0
    tilt = math.radians(10.0)
    f = view.focal_px
    v = H / 2 - f * math.tan(tilt)
    e = f * 63.0 / (2000.0 * math.cos(tilt))  # 2 m out is 2 m·cos 10° along the lens's axis
    below = Point(W / 2, v + e)  # nose, mouth and ears: not used here
    eyes = (Point(W / 2 - e / 2, v), Point(W / 2 + e / 2, v))
    face = Face(Box(W / 2 - e, v - e, W / 2 + e, v + e), 0.9, (*eyes, below, below, below, below))

    def tilted(view: CameraView | None) -> Gaze:
        rows = (-10.0, 0.0, 10.0)
        return Gaze(config.gaze, config.camera, ANGLES, MIDDLE, pitches=rows, rest_row=1, view=view)

    g = tilted(view)
    recs = [g.update([face], k / FPS, SIZE) for k in range(30)]  # until it is the viewer
    assert recs[-1].state == "tracking" and recs[-1].pitch_raw == pytest.approx(0.0, abs=1e-9)
    assert tilted(None).pitch_of(face, SIZE) == pytest.approx(10.0, abs=1e-9)
    g.set_view(view.seen(width_fraction=0.75))  # the camera reported another crop
    assert g.camera.tilt_deg == 10.0 and g.camera.hfov_deg == pytest.approx(51.93, abs=0.01)
    assert CameraView(W, H, 66.0).tilt_deg == 0.0  # no [finder] settings: a level camera


def test_a_cropped_sensor_narrows_the_field_of_view_and_angles():
    # Camera Module 3 (66° over 4608 px) giving a 4:3 stream shows 3456 px: 75 % of the width.
    g = gaze(CameraConfig(hfov_deg=66.0))
    cam52 = Camera(hfov_deg=2 * math.degrees(math.atan(0.75 * math.tan(math.radians(33)))))
    # A visitor 1 m to the side at 3 m, as the narrower 52° camera really sees them.
    face = face_at(1000.0, 3000.0, SIZE, cam52)
    wrong = g.angle_of(face, SIZE)  # believing the lens's 66°
    view = CameraView.expected(CameraConfig(hfov_deg=66.0), sensor=None)
    g.set_view(view.seen(width_fraction=0.75))
    assert g.camera.hfov_deg == pytest.approx(51.93, abs=0.01)
    assert g.camera.hfov_deg == pytest.approx(cam52.hfov_deg)
    right = g.angle_of(face, SIZE)
    assert right == pytest.approx(math.degrees(math.atan2(1000.0, 3000.0)), abs=0.05)
    assert abs(wrong) > abs(right) + 5  # 66° would over-turn the eyes: 24° for 18.4°
    # Back to the full width, and nonsense counts as the full width.
    for whole in (1.0, float("nan"), 1.5):
        g.set_view(view.seen(width_fraction=0.75))
        g.set_view(view.seen(width_fraction=whole))
        assert g.camera.hfov_deg == pytest.approx(66.0)


def test_right_half_of_unmirrored_image_is_visitors_left_low_index():
    cam = Camera()
    f = face_at(0, 2000, SIZE, cam)
    right_half = f.translated(150, 0)  # further right in the image
    pos = locate(right_half, SIZE, cam)
    assert pos.x_mm < 0 and pos.angle_deg < 0  # the visitor's left
    g = gaze()
    rec = run(g, lambda t: [right_half], 0, 3)[-1]
    assert rec.index < MIDDLE
    # ... and a mirrored camera sees that visitor on the other side.
    gm = gaze(CameraConfig(mirror=True))
    assert locate(right_half, SIZE, gm.camera).angle_deg > 0
    assert run(gm, lambda t: [right_half], 0, 3)[-1].index > MIDDLE


def test_visitor_on_the_visitors_left_gets_index_below_rest_and_extremes_clamp():
    g = gaze()
    far_left = face_at(at_angle(-60, 1500), 1500, SIZE, g.camera)
    assert run(g, lambda t: [far_left], 0, 3)[-1].index == 0
    g = gaze()
    far_right = face_at(at_angle(60, 1500), 1500, SIZE, g.camera)
    assert run(g, lambda t: [far_right], 0, 3)[-1].index == len(ANGLES) - 1


def test_camera_offset_300mm_visitor_straight_ahead_gets_the_middle_frame():
    cam = CameraConfig(offset_x_mm=300.0)
    g = gaze(cam)
    face = face_at(0.0, 2000.0, SIZE, g.camera)
    # The camera, 300 mm to the visitor's right, sees the visitor 8.5° to its left ...
    naive = Camera()
    assert locate(face, SIZE, naive).angle_deg == pytest.approx(-math.degrees(math.atan(0.15)))
    assert abs(locate(face, SIZE, naive).angle_deg) > 8.5
    # ... but the portrait looks straight ahead: the middle frame.
    assert locate(face, SIZE, g.camera).angle_deg == pytest.approx(0.0, abs=1e-9)
    recs = run(g, lambda t: [face], 0, 3, random.Random(3))
    assert recs[-1].index == MIDDLE
    assert abs(recs[-1].angle) < 0.5
    # Ignoring the offset would have turned the eyes 4-5 frames off.
    g0 = gaze()
    assert run(g0, lambda t: [face], 0, 3)[-1].index in (11, 12)


def test_vertical_offset_does_not_change_the_horizontal_angle():
    cam = Camera(offset_y_mm=250.0)
    face = face_at(400.0, 2000.0, SIZE, cam, y_mm=-100.0)
    pos = locate(face, SIZE, cam)
    assert pos.y_mm == pytest.approx(-100.0)
    assert pos.angle_deg == pytest.approx(math.degrees(math.atan2(400, 2000)))


@SETTINGS
@given(
    x=st.floats(-3000, 3000),
    z=st.floats(500, 6000),
    y=st.floats(-500, 500),
    hfov=st.sampled_from([66.0, 102.0, 50.0]),
    mirror=st.booleans(),
    ox=st.floats(-500, 500),
    oy=st.floats(-500, 500),
)
def test_locate_inverts_the_pinhole(x, z, y, hfov, mirror, ox, oy):
    cam = Camera(hfov_deg=hfov, mirror=mirror, offset_x_mm=ox, offset_y_mm=oy)
    pos = locate(face_at(x, z, SIZE, cam, y_mm=y), SIZE, cam)
    assert pos.x_mm == pytest.approx(x, abs=1e-6)
    assert pos.y_mm == pytest.approx(y, abs=1e-6)
    assert pos.z_mm == pytest.approx(z, rel=1e-9)


def test_linear_mode_maps_image_width_to_index():
    cam = Camera()
    f = face_at(0, 2000, SIZE, cam)

    def at_u(u: float) -> Face:
        return f.translated(u - f.eye_mid.x, 0)

    assert linear_angle(at_u(W), W, cam, ANGLES) == ANGLES[0]  # image right -> index 0
    assert linear_angle(at_u(0), W, cam, ANGLES) == ANGLES[-1]
    assert linear_angle(at_u(W / 2), W, cam, ANGLES) == pytest.approx(0.0)
    assert linear_angle(at_u(W / 4), W, Camera(mirror=True), ANGLES) == pytest.approx(-15.0)
    # Through Gaze: linear mode ignores the camera offset (like the original).
    g = gaze(CameraConfig(offset_x_mm=300.0), mode="linear", filter="none", hysteresis=0.0)
    assert run(g, lambda t: [at_u(W * 0.75)], 0, 1)[-1].index == 8


def test_frame_set_without_angles_spreads_them_over_the_range():
    assert even_angles(5, 20.0) == (-20.0, -10.0, 0.0, 10.0, 20.0)
    g = Gaze(GazeConfig(angle_range_deg=20.0), CameraConfig(), 5, 2)
    assert g.angles == (-20.0, -10.0, 0.0, 10.0, 20.0)
    assert angle_at(g.angles, 1.5) == -5.0
    with pytest.raises(ValueError):
        Gaze(GazeConfig(), CameraConfig(), [0.0, 0.0, 1.0], 0)
    with pytest.raises(ValueError):
        Gaze(GazeConfig(), CameraConfig(), ANGLES, 33)
    with pytest.raises(ValueError):
        Gaze(GazeConfig(), CameraConfig(), [1.0], 0)


# -- hysteresis -----------------------------------------------------------------------------
@SETTINGS
@given(cur=st.integers(0, 32), angle=st.floats(-40, 40))
def test_hysteresis_without_margin_is_nearest(cur, angle):
    assert hysteresis_index(ANGLES, cur, angle, 0.0, "fraction") == nearest_index(ANGLES, angle)


@SETTINGS
@given(cur=st.integers(0, 32), angle=st.floats(-40, 40), margin=st.floats(0, 0.45))
def test_hysteresis_moves_only_past_the_margin(cur, angle, margin):
    new = hysteresis_index(ANGLES, cur, angle, margin, "fraction")
    near = nearest_index(ANGLES, angle)
    assert 0 <= new <= 32
    assert abs(new - near) <= 1  # never more than one frame from the nearest
    if new != cur:  # a change lands on the nearest frame or next to it, toward it
        assert (new - cur) * (near - cur) > 0
    if new != near:  # kept away from the nearest only within the margin of a midpoint
        mid = (ANGLES[new] + ANGLES[near]) / 2
        assert abs(angle - mid) < margin * STEP + 1e-9


def test_hysteresis_every_frame_reachable_and_degrees_unit():
    for k, a in enumerate(ANGLES):
        assert hysteresis_index(ANGLES, 0, a, 0.45, "fraction") == k
        assert hysteresis_index(ANGLES, 32, a, 5.0, "deg") == k  # capped at 0.45 spacing
    mid = (ANGLES[3] + ANGLES[4]) / 2
    assert hysteresis_index(ANGLES, 3, mid + 0.4, 0.5, "deg") == 3
    assert hysteresis_index(ANGLES, 3, mid + 0.6, 0.5, "deg") == 4


# -- filters --------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [10.0, 30.0, 90.0])
def test_exp_filter_is_independent_of_frame_rate(fps):
    f = ExpFilter(0.1)
    f.update(0.0, 0.0)
    n = round(0.2 * fps)
    y = 0.0
    for i in range(1, n + 1):
        y = f.update(i / fps, 10.0)
    assert y == pytest.approx(10.0 * (1 - math.exp(-0.2 / 0.1)), rel=1e-9)


def test_one_euro_is_calm_when_still_and_quick_on_moves():
    rng = random.Random(1)
    calm, raw = OneEuroFilter(1.0, 0.05, 1.0), []
    out = []
    for i in range(300):
        x = rng.gauss(0.0, 0.5)
        raw.append(x)
        out.append(calm.update(i / 30, x))
    sd_raw = (sum(v * v for v in raw[60:]) / 240) ** 0.5
    sd_out = (sum(v * v for v in out[60:]) / 240) ** 0.5
    assert sd_out < 0.45 * sd_raw
    # A 20° move: the One Euro filter is within 0.5° after 150 ms; a plain low-pass at
    # min_cutoff (what it is when still) is still far behind.
    quick, slow = OneEuroFilter(1.0, 0.05, 1.0), ExpFilter(1 / (2 * math.pi * 1.0))
    quick.update(0.0, 0.0)
    slow.update(0.0, 0.0)
    for i in range(1, 6):
        q, s = quick.update(i / 30, 20.0), slow.update(i / 30, 20.0)
    assert q > 19.5 and s < 13.5
    assert q <= 20.0  # no overshoot


def test_filters_survive_time_going_backwards_and_gaps():
    for f in (
        make_filter("exp", tau_s=0.1, min_cutoff=1, beta=0.05, d_cutoff=1),
        make_filter("one_euro", tau_s=0.1, min_cutoff=1, beta=0.05, d_cutoff=1),
        NoFilter(),
    ):
        f.update(5.0, 1.0)
        assert math.isfinite(f.update(4.0, 2.0))  # clock went back: no blow-up
        v = f.update(100.0, 3.0)  # a long gap is integrated as at most 0.25 s
        assert 1.0 <= v <= 3.0
    with pytest.raises(ValueError):
        make_filter("median", tau_s=0.1, min_cutoff=1, beta=0.05, d_cutoff=1)


# -- the behaviour tests ------------------------------------------------------------
@SETTINGS
@given(
    faces=st.lists(
        st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(0.0, 500.0)),
        max_size=4,
    ),
    times=st.lists(st.floats(-1e3, 1e5) | st.just(math.nan), min_size=1, max_size=8),
    policy=st.sampled_from(["sticky", "nearest", "central"]),
    mode=st.sampled_from(["geometry", "linear"]),
)
def test_index_always_in_range(faces, times, policy, mode):
    g = gaze(policy=policy, mode=mode, glance=True)
    for t in times:
        fs = [
            Face(
                Box(u - s, v - s, u + s, v + s),
                0.9,
                (Point(u - s / 3, v), Point(u + s / 3, v), *[Point(u, v + s / 2)] * 4),  # type: ignore[arg-type]
            )
            for u, v, s in faces
        ]
        rec = g.update(fs, t, SIZE)
        assert 0 <= rec.index < len(ANGLES)
        assert ANGLES[0] <= rec.angle <= ANGLES[-1]
        assert rec.state in ("tracking", "holding", "idle")


@SETTINGS
@given(
    a=st.floats(-40, 40),
    b=st.floats(-40, 40),
    z=st.floats(800, 5000),
    offset=st.floats(-400, 400),
    mirror=st.booleans(),
)
def test_index_monotonic_in_visitor_position(a, b, z, offset, mirror):
    cam = CameraConfig(offset_x_mm=offset, mirror=mirror)
    lo, hi = sorted((at_angle(a, z), at_angle(b, z)))
    got = []
    for x in (lo, hi):
        g = gaze(cam)
        face = face_at(x, z, SIZE, g.camera)
        if not (0 <= face.eye_mid.x <= W):
            return  # out of the camera's view
        got.append(run(g, lambda t, face=face: [face], 0, 2)[-1].index)
    assert got[0] <= got[1]


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(
    angle=st.floats(-28, 28),
    z=st.floats(1000, 4500),
    seed=st.integers(0, 10_000),
    on_midpoint=st.booleans(),
)
@pytest.mark.parametrize("filt", ["one_euro", "exp"])
def test_still_visitor_with_2px_jitter_at_most_one_index_change_in_10s(
    filt, angle, z, seed, on_midpoint
):
    if on_midpoint:  # the hardest place: right on the boundary between two frames
        k = nearest_index(ANGLES, angle)
        angle = (ANGLES[k] + ANGLES[min(k + 1, 32)]) / 2
    g = gaze(filter=filt)
    face = face_at(at_angle(angle, z), z, SIZE, g.camera)
    recs = run(g, lambda t: [face], 0, 13, random.Random(seed))
    settled = recs[round(3 * FPS) :]
    assert all(r.state == "tracking" for r in settled)
    assert index_changes(settled) <= 1
    assert abs(settled[-1].index - nearest_index(ANGLES, angle)) <= 1


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    k0=st.integers(0, 32),
    k1=st.integers(0, 32),
    d0=st.floats(-0.2, 0.2),
    d1=st.floats(-0.2, 0.2),
    z=st.floats(1200, 4000),
    seed=st.integers(0, 10_000),
)
def test_step_reaches_the_right_frame_within_300ms_without_overshoot(k0, k1, d0, d1, z, seed):
    g = gaze()
    a0, a1 = ANGLES[k0] + d0 * STEP, ANGLES[k1] + d1 * STEP
    f0 = face_at(at_angle(a0, z), z, SIZE, g.camera)
    f1 = face_at(at_angle(a1, z), z, SIZE, g.camera)
    rng = random.Random(seed)
    before = run(g, lambda t: [f0], 0, 3, rng)
    assert before[-1].index == k0
    after = run(g, lambda t: [f1], 3, 4, rng)
    reached = [r.t - 3.0 for r in after if r.index == k1]
    assert reached and reached[0] <= 0.300 + 1e-9
    direction = (k1 > k0) - (k1 < k0)
    for r in after:  # never past the target, in the direction of the step
        assert (r.index - k1) * direction <= 0
    assert all(r.index == k1 for r in after if r.t - 3.0 >= reached[0])
    # The same visitor throughout (the first frame only starts the track).
    assert len({r.viewer for r in before[1:] + after}) == 1


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(
    a=st.floats(-25, 25),
    b=st.floats(-25, 25),
    za=st.floats(1200, 4000),
    zb=st.floats(1200, 4000),
    seed=st.integers(0, 10_000),
)
@pytest.mark.parametrize("policy", ["sticky", "nearest", "central"])
def test_two_still_visitors_at_most_one_viewer_switch_in_30s(policy, a, b, za, zb, seed):
    g = gaze(policy=policy)
    fa = face_at(at_angle(a, za), za, SIZE, g.camera)
    fb = face_at(at_angle(b, zb), zb, SIZE, g.camera)
    if fa.box.iou(fb.box) > 0 or abs(fa.eye_mid.x - fb.eye_mid.x) < fa.box.width:
        return  # one hides the other: not two visitors the camera can tell apart
    order = random.Random(seed).random() < 0.5
    recs = run(g, lambda t: [fa, fb] if order else [fb, fa], 0, 30, random.Random(seed))
    viewers = [r.viewer for r in recs if r.viewer is not None]
    assert viewers, "nobody was followed"
    switches = sum(x != y for x, y in itertools.pairwise(viewers))
    assert switches <= 1
    assert g.switches == switches


def test_sticky_switches_once_to_a_markedly_closer_visitor_after_switch_time():
    g = gaze(policy="sticky", switch_time_s=2.0)
    far = face_at(at_angle(-15, 3500), 3500, SIZE, g.camera)
    near = face_at(at_angle(15, 1200), 1200, SIZE, g.camera)
    first = run(g, lambda t: [far], 0, 2, random.Random(0))
    v_far = first[-1].viewer
    both = run(g, lambda t: [far, near], 2, 12, random.Random(1))
    switched = [r.t for r in both if r.viewer != v_far]
    assert switched, "never switched to the much closer visitor"
    assert 4.0 <= switched[0] <= 4.6  # switch_time_s after the newcomer was confirmed
    assert all(r.viewer != v_far for r in both if r.t >= switched[0])
    assert both[-1].index > MIDDLE  # now looking at the near visitor, on the visitor's right
    # A similar-sized newcomer never takes over.
    g = gaze(policy="sticky")
    other = face_at(at_angle(15, 3400), 3400, SIZE, g.camera)
    run(g, lambda t: [far], 0, 2)
    recs = run(g, lambda t: [other, far], 2, 20, random.Random(2))
    assert {r.viewer for r in recs} == {v_far}


def test_nearest_and_central_policies_pick_their_visitor():
    near = lambda g: face_at(at_angle(ANGLES[27], 1200), 1200, SIZE, g.camera)  # noqa: E731
    central = lambda g: face_at(at_angle(ANGLES[15], 3000), 3000, SIZE, g.camera)  # noqa: E731
    g = gaze(policy="nearest")
    assert run(g, lambda t: [central(g), near(g)], 0, 2)[-1].index == 27
    g = gaze(policy="central")
    assert run(g, lambda t: [near(g), central(g)], 0, 2)[-1].index == 15


def test_missed_detections_hold_then_viewer_lost_then_handover():
    g = gaze(hold_s=0.5, lost_after_s=1.0, idle_after_s=3.0)
    a = face_at(at_angle(-20, 2000), 2000, SIZE, g.camera)
    b = face_at(at_angle(ANGLES[27], 2100), 2100, SIZE, g.camera)
    recs = run(g, lambda t: [a], 0, 2)
    v, idx = recs[-1].viewer, recs[-1].index
    assert v is not None and recs[-1].state == "tracking"
    # Two missed frames: holding, same viewer and index.
    gap = run(g, lambda t: [], 2, 2 + 2 / FPS)
    assert all(r.state == "holding" and r.viewer == v and r.index == idx for r in gap)
    assert all(r.angle_raw is None and r.viewer_box is not None for r in gap)
    back = run(g, lambda t: [a], 2 + 2 / FPS, 3)
    assert back[0].state == "tracking" and back[0].viewer == v
    # Another visitor arrives (similar size: no take-over) ...
    both = run(g, lambda t: [a, b], 3, 4)
    assert all(r.viewer == v for r in both)
    # ... the viewer leaves: the eyes hold until lost_after_s, then follow b.
    recs = run(g, lambda t: [b], 4, 6)
    early = [r for r in recs if r.t < 4 + 1.0 - 2 / FPS]
    assert all(r.state == "holding" and r.index == idx for r in early)
    assert all(r.viewer is None for r in early if r.t >= 4 + 0.5)  # past hold_s
    late = [r for r in recs if r.t >= 4 + 1.0 + 0.1]
    assert late and all(r.state == "tracking" and r.viewer not in (None, v) for r in late)
    assert late[-1].index == 27


def test_single_false_detection_does_not_move_the_eyes():
    g = gaze()
    ghost = face_at(at_angle(25, 2000), 2000, SIZE, g.camera)
    recs = run(g, lambda t: [ghost] if t < 1 / FPS else [], 0, 5)
    assert all(r.index == MIDDLE and r.viewer is None for r in recs)


@pytest.mark.parametrize("filt", ["one_euro", "exp", "none"])
@pytest.mark.parametrize("idle_after_s,idle_return_s", [(3.0, 1.5), (1.0, 0.5), (0.0, 0.0)])
def test_nobody_rest_frame_reached_within_idle_after_plus_return(filt, idle_after_s, idle_return_s):
    g = gaze(filter=filt, idle_after_s=idle_after_s, idle_return_s=idle_return_s)
    face = face_at(at_angle(-27, 2000), 2000, SIZE, g.camera)
    recs = run(g, lambda t: [face], 0, 2)
    assert recs[-1].index <= 2
    left = recs[-1].t  # last seen
    gone = run(g, lambda t: [], 2, 8)
    at_rest = [r.t for r in gone if r.index == MIDDLE and r.state == "idle"]
    # (at the camera's frame resolution: the first update after the deadline)
    assert at_rest and at_rest[0] - left <= idle_after_s + idle_return_s + 1 / FPS + 1e-9
    assert all(r.index == MIDDLE for r in gone if r.t >= at_rest[0])
    assert all(r.state == "holding" for r in gone if r.t - left < idle_after_s - 1e-9)
    # The return is gradual: the index never jumps by more than 3 frames in one update.
    idx = [recs[-1].index] + [r.index for r in gone]
    if idle_return_s > 0:
        assert max(abs(x - y) for x, y in itertools.pairwise(idx)) <= 3


def test_starts_idle_at_rest_and_glances_when_asked():
    g = gaze()
    assert g.update([], 0.0, SIZE).state == "idle" and g.index == MIDDLE
    g = Gaze(
        GazeConfig(glance=True, glance_interval_s=(1.0, 2.0), glance_hold_s=(0.3, 0.6)),
        CameraConfig(),
        ANGLES,
        MIDDLE,
        seed=7,
    )
    recs = run(g, lambda t: [], 0, 30)
    assert all(r.state == "idle" for r in recs)
    away = [r for r in recs if r.index != MIDDLE]
    assert away, "never glanced"
    assert all(abs(r.angle) <= 15.0 + 1e-9 for r in recs)
    assert recs[-1].index == MIDDLE or any(r.index == MIDDLE for r in recs[-60:])
    # Glances are separated by rests of at least glance_interval_s[0].
    starts = [b.t for a, b in itertools.pairwise(recs) if a.angle == 0 and b.angle != 0]
    assert len(starts) >= 5
    assert min(y - x for x, y in itertools.pairwise(starts)) >= 1.0 + 0.3
    # Same seed, same glances.
    g2 = Gaze(g.config, CameraConfig(), ANGLES, MIDDLE, seed=7)
    assert [r.index for r in run(g2, lambda t: [], 0, 30)] == [r.index for r in recs]


def test_glancer_and_smoothstep():
    assert smoothstep(-1) == 0 and smoothstep(0.5) == 0.5 and smoothstep(2) == 1
    gl = Glancer(0.0, -30, 30, (1.0, 1.0), (0.5, 0.5), 10.0, 0.1, seed=1)
    gl.restart(0.0)
    assert gl.angle(0.5) == 0.0
    assert gl.angle(1.1) != 0.0 and abs(gl.angle(1.1)) <= 10.0
    assert gl.angle(1.75) == 0.0


def test_bad_input_never_raises():
    g = gaze()
    nan = float("nan")
    good = face_at(0, 2000, SIZE, g.camera)
    bad = [
        Face(Box(nan, 0, 10, 10), 0.9, good.keypoints),
        Face(Box(0, 0, 0, 0), 0.9, good.keypoints),
        Face(good.box, 0.9, (Point(nan, 1), *good.keypoints[1:])),
        Face(good.box, 0.9, tuple(Point(300, 200) for _ in range(6))),  # type: ignore[arg-type]
    ]
    for t in (0.0, nan, float("inf"), 0.1, -5.0, 0.2):
        rec = g.update(bad, t, SIZE)
        assert 0 <= rec.index < 33 and math.isfinite(rec.angle)
    assert g.update([good], 1.0, (0, 0)).viewer is None  # unknown image size: no faces


# -- config ---------------------------------------------------------------------------------
def test_gaze_config_defaults_validation_and_toml():
    cfg = parse_config(
        {"gaze": {"policy": "central", "glance_interval_s": [2, 3], "filter": "exp"}}
    )
    assert cfg.gaze.policy == "central" and cfg.gaze.glance_interval_s == (2.0, 3.0)
    assert "glance_hold_s = [0.4, 1.5]" in dump_config(cfg)
    for bad in (
        {"glance_interval_s": [5, 1]},
        {"hysteresis": 0.6},
        {"policy": "loudest"},
        {"tau_s": 0},
        {"ipd_mm": 10},
    ):
        with pytest.raises(ConfigError) as err:
            parse_config({"gaze": bad})
        assert all(line.startswith("<config>: gaze") for line in err.value.lines)
    assert GazeConfig(hysteresis=2.0, hysteresis_unit="deg").hysteresis == 2.0


def test_lone_face_continues_a_missed_viewer_only_if_about_as_large():
    g = gaze()
    a = face_at(at_angle(-20, 2000), 2000, SIZE, g.camera)
    v = run(g, lambda t: [a], 0, 1)[-1].viewer
    # The viewer jumps (a quick step between two frames): still the same visitor.
    jumped = face_at(at_angle(10, 2100), 2100, SIZE, g.camera)
    rec = g.update([jumped], 1.0, SIZE)
    assert rec.viewer == v and rec.state == "tracking"
    # A much closer newcomer in a frame where the viewer is missed is not taken for them.
    g = gaze()
    run(g, lambda t: [a], 0, 1)
    newcomer = face_at(at_angle(10, 800), 800, SIZE, g.camera)
    rec = g.update([newcomer], 1.0, SIZE)
    assert rec.viewer == v and rec.state == "holding" and rec.angle_raw is None


def test_hold_idle_and_lost_timers_run_on_time_not_on_frames():
    # With the finder's room cadence most frames of an empty room get no inference: the app
    # still updates the gaze (no faces) each frame, but it must not matter how many such
    # updates there are: a gaze told "nobody" at 3 Hz is where one told so at 30 Hz is.
    every, sparse = gaze(hold_s=0.5, idle_after_s=1.0), gaze(hold_s=0.5, idle_after_s=1.0)
    face = face_at(at_angle(-20, 2000), 2000, SIZE, every.camera)
    for g in (every, sparse):
        run(g, lambda t: [face], 0, 1)
    dense = {round(r.t * FPS): r for r in run(every, lambda t: [], 1, 5)}
    for i in range(30, 150, 10):  # every tenth camera frame only
        r = sparse.update([], i / FPS, SIZE)
        d = dense[i]
        assert (r.state, r.index, r.viewer) == (d.state, d.index, d.viewer), i / FPS
        assert r.angle == pytest.approx(d.angle, abs=1e-6)
    assert dense[149].state == "idle" and dense[149].index == MIDDLE


# -- the one memory of the visitors: the finder's follow target --------------------------------
def test_the_viewer_tracks_give_the_follow_crop_its_face_and_last_step():
    g = gaze()
    face = face_at(0, 2000, SIZE, g.camera)
    moved = face.translated(20.0, -4.0)
    first = g.update([face], 0.0, SIZE)
    # Seen once: not the viewer yet, but the face the finder searches around (follow_found).
    assert first.viewer is None and first.follow == Follow(face.box, (0.0, 0.0), viewer=False)
    second = g.update([moved], 1 / FPS, SIZE)
    assert second.viewer is not None and second.follow is not None
    assert second.follow.viewer and second.follow.box == moved.box
    assert second.follow.step == pytest.approx((20.0, -4.0))  # consecutive frames: a step
    missed = g.update([], 2 / FPS, SIZE)  # held, not seen: the crop stays, no step
    assert missed.follow == Follow(moved.box)
    back = g.update([moved.translated(20.0, 0.0)], 3 / FPS, SIZE)
    assert back.follow is not None and back.follow.step == (0.0, 0.0)  # not consecutive
    gone = g.update([], 10.0, SIZE)
    assert gone.viewer is None and gone.follow is None


def test_faces_from_the_finder_are_not_checked_again():
    nan = float("nan")
    good = face_at(0, 2000, SIZE, Camera())
    bad = Face(Box(nan, 0, 10, 10), 0.9, good.keypoints)
    checked, dropped = usable_faces([good, bad, Face(Box(0, 0, 0, 0), 0.9, good.keypoints)])
    assert checked == [good] and dropped == 2 and isinstance(checked, UsableFaces)
    assert usable_faces(checked) == (checked, 0)  # passed through, as the gaze takes them
