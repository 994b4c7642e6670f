"""Tests for appliance.finder: tiling, sweep and follow scheduling, merging, and range.

Logic tests use a small stand-in detector that reports a face wherever a (synthetic) marker
is in the crop it is given; the range tests run the real BlazeFace detector on synthetic
visitors (tests.support.sim) at 1.5-4.5 m, on short clips.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from appliance.config import CameraConfig, ConfigError, FinderConfig, GazeConfig, parse_config
from appliance.finder import Finder, FindResult, tile_grid, usable_face
from appliance.gaze import Gaze
from appliance.optics import CameraView, band_from_geometry
from appliance.types import Box, Face, Follow, Point
from benchmarks.range import Runner, match
from tests.support.sim import CameraGeometry, Renderer, Visitor, astronaut_photo, walk

W, H = 1280, 960


def _face_at(cx: float, cy: float, eye: float, score: float = 0.9) -> Face:
    """A BlazeFace-shaped face: box 2.4 eye distances wide, eyes a third of the way down."""
    half = 1.2 * eye
    kps = (
        Point(cx - eye / 2, cy),
        Point(cx + eye / 2, cy),
        Point(cx, cy + 0.5 * eye),
        Point(cx, cy + eye),
        Point(cx - 1.1 * eye, cy + 0.2 * eye),
        Point(cx + 1.1 * eye, cy + 0.2 * eye),
    )
    return Face(Box(cx - half, cy - 0.8 * eye, cx + half, cy + 1.6 * eye), score, kps)


@dataclass
class MarkerDetector:
    """Stand-in detector: 'sees' each marked pixel (value 255 in channel 0) of the crop.

    A marker at (x, y) stands for a face with its eye midpoint there and eyes ``eye`` px apart;
    the face box is reported even where it extends past the crop (as BlazeFace does).
    """

    eye: float = 20.0
    input_size: int = 192
    calls: list[tuple[int, int, bool]] = field(default_factory=list)
    frame: np.ndarray | None = None

    def detect(self, image: np.ndarray) -> list[Face]:
        shares = self.frame is not None and np.shares_memory(image, self.frame)
        self.calls.append((image.shape[1], image.shape[0], shares))
        ys, xs = np.nonzero((image if image.ndim == 2 else image[:, :, 0]) == 255)
        return [_face_at(x + 0.5, y + 0.5, self.eye) for x, y in zip(xs, ys, strict=True)]


def _frame(*points: tuple[int, int]) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for x, y in points:
        img[y, x, 0] = 255
    return img


def _band(**kw: object) -> FinderConfig:
    """The band finder with the gallery band's pixel rows in these 1280×960 frames."""
    return FinderConfig(**{"mode": "band", "band_top": 0.35, "band_bottom": 0.80, **kw})


# ---- configuration -----------------------------------------------------------------------


def test_camera_height_replaces_the_band_and_bad_geometry_is_named() -> None:
    cfg = parse_config({"finder": {"camera_height_m": 2.2, "camera_tilt_deg": 8}}).finder
    assert cfg.camera_height_m == 2.2 and cfg.visitor_eyes_m == (1.2, 1.95)

    def error(finder: dict[str, object], camera: dict[str, object] | None = None) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config({"finder": finder, "camera": camera or {}}, "x.toml")
        (line,) = info.value.lines
        return line

    assert "band_top is not used: camera_height_m is set" in error(
        {"camera_height_m": 1.75, "band_top": 0.2}
    )
    assert "visitor_eyes_m is not used: " in error({"visitor_eyes_m": [1.0, 1.9]})
    # The tilt alone is used: the gaze levels the camera with it to choose the row.
    assert parse_config({"finder": {"camera_tilt_deg": 10}}).finder.camera_tilt_deg == 10.0
    assert "visitor_eyes_m = [1.9, 1.2]: the first must not exceed" in error(
        {"camera_height_m": 1.75, "visitor_eyes_m": [1.9, 1.2]}
    )
    assert error({"camera_height_m": 1.75, "visitor_distance_m": [0, 4]}).startswith(
        "x.toml: finder.visitor_distance_m[0] = 0: "
    )
    assert error({"camera_height_m": 1.75, "camera_tilt_deg": 80}) == (
        "x.toml: finder.camera_height_m = 1.75, camera_tilt_deg = 80.0: the camera is tilted "
        "so far that it does not see visitors (camera 1280x720 at 66.0°)"
    )
    # The geometry is checked for the field of view the camera will show. Tilted 50° down,
    # a 4:3 picamera2 stream (52° across, ±20° up and down) sees only below the nearest chins
    # (29° down); a 4:3 webcam with the whole 66° (±26°) still sees them.
    tilted: dict[str, object] = {"camera_height_m": 1.75, "camera_tilt_deg": 50}
    assert error(tilted, {"width": 640, "height": 480}).endswith(
        "camera_tilt_deg = 50.0: no visitor's face would be in the picture (camera 640x480 at "
        "51.9°)"
    )
    webcam = {"width": 640, "height": 480, "source": "webcam"}
    assert parse_config({"finder": tilted, "camera": webcam}).finder.camera_tilt_deg == 50
    # Defaults written out (as `config show` does) are not "given".
    parse_config({"finder": {"camera_height_m": 1.75, "band_top": 0.30, "band_bottom": 0.90}})


def test_defaults_are_valid_and_band_order_is_checked() -> None:
    cfg = parse_config({}).finder
    assert cfg.mode in ("whole", "band") and cfg.band_top < cfg.band_bottom
    with pytest.raises(ConfigError, match=r"x.toml: finder.*band_top \(0.7\) must be above"):
        parse_config({"finder": {"band_top": 0.7, "band_bottom": 0.6}}, "x.toml")
    with pytest.raises(ConfigError, match=r"finder.tile_sise.*unknown key"):
        parse_config({"finder": {"tile_sise": 0.3}}, "x.toml")
    with pytest.raises(ConfigError, match=r"finder.inferences_per_frame = 0"):
        parse_config({"finder": {"inferences_per_frame": 0}}, "x.toml")


# ---- tiling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "top", "bottom", "tile", "overlap"),
    [
        (1280, 960, 0.35, 0.8, 320, 128),
        (640, 480, 0.2, 0.9, 160, 64),
        (1280, 960, 0.45, 0.6, 320, 32),
    ],
)
def test_tiles_cover_the_band_and_hold_every_small_face_whole(
    width: int, height: int, top: float, bottom: float, tile: int, overlap: int
) -> None:
    band = Box(0, round(top * height), width, round(bottom * height))
    tiles = tile_grid(width, height, band, tile, overlap)
    assert all(t.x0 >= 0 and t.y0 >= 0 and t.x1 <= width and t.y1 <= height for t in tiles)
    assert all(t.width == tile and t.height == tile for t in tiles)
    assert all(float(v).is_integer() for t in tiles for v in t.as_list())
    rng = random.Random(1)
    size = overlap - 1  # positions are rounded to whole pixels
    for _ in range(2000):  # any face no bigger than the overlap, inside the band, fits a tile
        x = rng.uniform(0, width - size)
        y = rng.uniform(band.y0, max(band.y0, band.y1 - size))
        assert any(
            t.x0 <= x and x + size <= t.x1 and t.y0 <= y and y + size <= t.y1 for t in tiles
        ), (x, y)


def test_default_gallery_layout_is_small() -> None:
    f = Finder(_band(), MarkerDetector())
    lay = f.layout(W, H)
    assert lay.tile_px == 320
    assert len(lay.tiles) == 12  # 6 columns x 2 rows across the 0.35-0.80 band
    assert lay.schedule[0] == Box(0, 0, W, H)  # the whole-frame pass
    assert lay.band == Box(0, 336, W, 768)


# ---- scheduling --------------------------------------------------------------------------


def test_whole_mode_runs_once_on_the_whole_frame() -> None:
    det = MarkerDetector()
    frame = _frame((700, 500))
    det.frame = frame
    res = Finder(FinderConfig(mode="whole"), det).find(frame, follow=Box(0, 0, 50, 50))
    assert res.inferences == 1 and res.regions == [Box(0, 0, W, H)] and res.band is None
    assert [f.eye_mid for f in res.faces] == [Point(700.5, 500.5)]


def test_sweep_visits_every_region_round_robin_two_per_frame() -> None:
    det = MarkerDetector()
    f = Finder(_band(), det)
    frame = _frame()
    schedule = f.layout(W, H).schedule
    seen: list[Box] = []
    for _ in range(math.ceil(len(schedule) / 2)):
        res = f.find(frame)
        assert res.inferences == 2 == len(res.regions)
        seen += res.regions
    assert set(seen) == set(schedule)


def test_sweep_goes_first_where_the_picture_changed() -> None:
    still = np.full((H, W, 3), 90, np.uint8)
    moved = still.copy()
    moved[560:620, 1000:1040] = 200  # someone walks in at the right

    def first_regions(motion_first: bool) -> list[Box]:
        f = Finder(_band(whole_pass=False, motion_first=motion_first), MarkerDetector())
        f.find(still)  # the sweep starts on the left
        return f.find(moved).regions

    for r in first_regions(True):
        assert r.x0 <= 1000 and r.x1 >= 1040 and r.y0 <= 560 and r.y1 >= 620
    assert all(r.x1 <= 1000 for r in first_regions(False))  # plain order: still on the left


def test_follow_crop_plus_one_sweep_tile_per_frame() -> None:
    det = MarkerDetector()
    f = Finder(_band(), det)
    frame = _frame()
    viewer = Box(600, 500, 648, 560)
    sweep: list[Box] = []
    for _ in range(len(f.layout(W, H).schedule)):
        res = f.find(frame, follow=viewer)
        assert res.inferences == 2
        crop = res.regions[0]
        assert crop.x0 <= viewer.x0 and crop.x1 >= viewer.x1
        assert crop.y0 <= viewer.y0 and crop.y1 >= viewer.y1
        assert crop.width == crop.height == pytest.approx(3.5 * 48, rel=0.1)
        sweep.append(res.regions[1])
    assert set(sweep) == set(f.layout(W, H).schedule)  # newcomers are still searched for


def test_follow_crop_leads_a_moving_viewer_and_stays_inside() -> None:
    f = Finder(_band(), MarkerDetector())
    f.find(_frame(), follow=Box(600, 500, 640, 540))
    crop = f.find(_frame(), follow=Follow(Box(620, 500, 660, 540), (20.0, 0.0))).regions[0]
    assert crop.center.x == pytest.approx(660, abs=2)  # moved one more step of 20 px
    # A jump (more than two face widths) is not a step: the crop stays on the face.
    jump = f.find(_frame(), follow=Follow(Box(620, 500, 660, 540), (200.0, 0.0))).regions[0]
    assert jump.center.x == pytest.approx(640, abs=2)
    edge = f.find(_frame(), follow=Box(1250, 900, 1280, 960)).regions[0]
    assert edge.x1 == W and edge.y1 == H and edge.width == edge.height
    huge = f.find(_frame(), follow=Box(100, 0, 1100, 960)).regions[0]
    assert huge.height == H and huge.width == H


def test_crops_are_views_of_the_frame() -> None:
    det = MarkerDetector()
    frame = _frame((650, 520))
    det.frame = frame
    f = Finder(_band(), det)
    for _ in range(4):
        f.find(frame, follow=Box(630, 500, 670, 540))
    assert det.calls and all(shares for _, _, shares in det.calls)


def test_gray_frames_size_changes_and_odd_follow_boxes() -> None:
    det = MarkerDetector(eye=10.0)
    f = Finder(_band(), det)
    rgb = _frame((650, 520))
    for _ in range(7):
        f.find(rgb)
    gray = np.ascontiguousarray(rgb[:480, :640, 0])  # the camera reopened at 640x480, gray
    gray[300, 100] = 255
    seen = set()
    for _ in range(7):
        res = f.find(gray, follow=Box(1200, 900, 1260, 950))  # a stale box from the old size
        assert all(r.x0 >= 0 and r.x1 <= 640 and r.y0 >= 0 and r.y1 <= 480 for r in res.regions)
        seen |= {(round(x.eye_mid.x), round(x.eye_mid.y)) for x in res.faces}
    assert (100, 300) in seen or (101, 301) in seen
    nan = Box(float("nan"), 0, 10, 10)
    assert f.find(gray, follow=nan).inferences == 2  # ignored: two sweep regions


def test_bad_frame_is_a_clear_error() -> None:
    f = Finder(_band(), MarkerDetector())
    with pytest.raises(ValueError, match="finder: expected an H×W"):
        f.find(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        f.find(np.zeros(10, np.uint8))


# ---- mapping and merging -----------------------------------------------------------------


def test_faces_are_mapped_to_frame_pixels_and_merged_across_tiles() -> None:
    det = MarkerDetector(eye=10.0)
    # (650, 520) lies in the overlap of two columns and both rows: several tiles see it whole.
    f = Finder(_band(whole_pass=False, inferences_per_frame=16), det)
    res = f.find(_frame((650, 520)))
    assert res.inferences == 12
    assert len(res.faces) == 1
    assert res.faces[0].eye_mid.as_list(6) == [650.5, 520.5]


def test_faces_cut_by_an_inner_tile_edge_are_dropped() -> None:
    det = MarkerDetector(eye=40.0)
    f = Finder(_band(whole_pass=False, inferences_per_frame=1, follow_found=False), det)
    tile = f.layout(W, H).tiles[1]  # second column: inner edges on both sides
    frame = _frame((int(tile.x0) + 5, int(tile.center.y)))  # box pokes 43 px out to the left
    res = f.find(frame)
    assert res.regions == [f.layout(W, H).tiles[0]]
    assert len(res.faces) == 1  # whole in the first tile
    res = f.find(frame)
    assert res.regions == [tile] and res.faces == []  # cut in the second: dropped
    # At the frame edge nothing is cut: a face half outside the picture is still reported.
    f2 = Finder(FinderConfig(mode="whole"), det)
    assert len(f2.find(_frame((3, 500))).faces) == 1


@dataclass
class ScaledDetector:
    """Stand-in: one face at a fixed frame position whose eye points depend on the crop size.

    Crops seen at the best model scale report the true eyes; others are off by ``bias`` px,
    like BlazeFace on faces too small (or too large) in its input.
    """

    truth: Point
    eye: float
    bias: float = 6.0
    input_size: int = 192
    offsets: Iterator[tuple[int, int]] = field(default_factory=lambda: iter(()))

    def detect(self, image: np.ndarray) -> list[Face]:
        ox, oy = next(self.offsets)
        side = max(image.shape[:2])
        model_eye = self.eye * 192 / side
        err = 0.0 if 15 <= model_eye <= 35 else self.bias
        return [_face_at(self.truth.x - ox + err, self.truth.y - oy, self.eye)]


def test_the_best_scaled_view_wins_over_a_coarse_one() -> None:
    f = Finder(_band(), MarkerDetector())
    viewer = Box(600, 480, 648, 540)
    lay = f.layout(W, H)
    assert lay.schedule[0] == Box(0, 0, W, H)
    crop = f.follow_crop(viewer, W, H)
    det = ScaledDetector(Point(624, 500), eye=20.0)
    det.offsets = iter([(int(crop.x0), int(crop.y0)), (0, 0)])
    f.detector = det
    res = f.find(_frame(), follow=viewer)
    assert res.regions == [crop, Box(0, 0, W, H)]
    assert len(res.faces) == 1
    assert res.faces[0].eye_mid.x == pytest.approx(624)  # not averaged with the whole frame


# ---- learned band ------------------------------------------------------------------------


def test_band_is_learned_from_where_faces_are_seen() -> None:
    det = MarkerDetector(eye=20.0)
    cfg = _band(band_learn=True, band_learn_faces=50, band_learn_margin=0.02)
    cfg.inferences_per_frame = 16  # every region every frame: two faces per frame
    f = Finder(cfg, det)
    frame = _frame((300, 500), (900, 560))
    for _ in range(24):
        assert len(f.find(frame).faces) == 2
    assert f.band_fraction == (0.35, 0.80)  # 48 faces: not enough yet
    f.find(frame)
    top, bottom = f.band_fraction
    # Faces span rows 484..592 (0.504..0.617 of the height); plus the 2 % margin.
    assert 0.47 <= top <= 0.49 and 0.63 <= bottom <= 0.65
    assert f.layout(W, H).band == Box(0, round(top * H), W, round(bottom * H))
    assert len(f.layout(W, H).tiles) == 6  # one row now


def band(**kw: float) -> tuple[float, float]:
    """band_from_geometry with a level camera, eyes 1.1-1.95 m, visitors 1-5 m, unless given."""
    place = {"tilt_deg": 0.0, "eye_min_m": 1.1, "eye_max_m": 1.95, "near_m": 1.0, "far_m": 5.0}
    return band_from_geometry(**{**place, **kw})  # type: ignore[arg-type]


def test_band_from_camera_geometry() -> None:
    g = CameraGeometry(W, H, 66.0, height_m=1.75)
    top, bottom = band(
        width=W, height=H, hfov_deg=66.0, camera_height_m=1.75, eye_min_m=1.4, near_m=1.5, far_m=4.5
    )
    assert (top, bottom) == (0.32, 0.82)
    for eye_h in (1.4, 1.95):
        for d in (1.5, 2.5, 4.5):
            v = g.project(0.0, eye_h, d)[1]
            assert top * H < v < bottom * H
    # Tilting the camera down moves the band up the picture.
    level = band(width=W, height=H, hfov_deg=66.0, camera_height_m=2.2)
    tilted = band(width=W, height=H, hfov_deg=66.0, camera_height_m=2.2, tilt_deg=10)
    assert tilted[0] < level[0] and tilted[1] <= level[1]
    with pytest.raises(ValueError, match="near"):
        band(width=W, height=H, hfov_deg=66.0, camera_height_m=1.7, near_m=0.0)


def test_band_command_prints_a_config_snippet(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    from appliance.cli import main

    status = main(["band", "--camera-height", "1.75", "--eye-min", "1.4", "--near", "1.5"])
    assert status == 0
    out = capsys.readouterr().out
    data = tomllib.loads(out)
    assert data["finder"]["mode"] == "band" and data["finder"]["band_bottom"] > 0.8
    assert parse_config(data).finder.band_top == data["finder"]["band_top"]
    assert "tiles of 320 px" in out


def test_band_command_reads_the_installed_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    import appliance.config
    from appliance.cli import main

    installed = tmp_path / "config.toml"  # stands in for /etc/monalisa/config.toml
    monkeypatch.setattr(appliance.config, "DEFAULT_CONFIG_PATH", installed)
    assert main(["band"]) == 2  # nothing installed: no height to work from
    assert "camera_height_m" in capsys.readouterr().err
    installed.write_text("[camera]\nwidth = 1280\nheight = 960\n[finder]\ncamera_height_m = 1.75\n")
    assert main(["band"]) == 0
    out = capsys.readouterr().out
    assert "camera 1280x960" in out and "1.75 m high" in out
    assert "the configuration sets camera_height_m" in out
    band = tomllib.loads(out)["finder"]
    # The same band as with the file given by --config.
    assert main(["band", "--config", str(installed)]) == 0
    assert tomllib.loads(capsys.readouterr().out)["finder"] == band
    installed.write_text("[finder]\ncamera_height_m = -1\n")
    assert main(["band"]) == 78
    assert str(installed) in capsys.readouterr().err


# ---- the real detector on synthetic visitors --------------------------------------------


@pytest.fixture(scope="module")
def detector() -> object:
    from appliance.detector import Detector

    return Detector("full")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(astronaut_photo(), CameraGeometry(W, H, 66.0, height_m=1.75), seed=11)


@pytest.mark.parametrize(
    ("distance", "need", "direction"),
    [(1.5, 0.95, 1), (2.5, 0.95, -1), (3.5, 0.95, 1), (4.5, 0.9, -1)],
)
def test_finds_visitors_across_the_room(
    renderer: Renderer, detector: object, distance: float, need: float, direction: Literal[1, -1]
) -> None:
    # Two seconds of a visitor walking in from the left or right edge of the picture.
    poses = walk(renderer.geometry, distance, stand_s=1.0, speed_mps=1.0, direction=direction)
    poses = poses[:60]
    band = Runner(Finder(_band(), detector))  # type: ignore[arg-type]
    whole = Runner(Finder(FinderConfig(mode="whole"), detector))  # type: ignore[arg-type]
    for i, pose in enumerate(poses):
        assert pose is not None
        frame, truths = renderer.render([pose])
        band.step(frame, truths)
        if distance >= 3.5 and i % 4 == 0:
            whole.step(frame, truths)
    assert band.stats.found_rate >= need
    assert band.stats.inferences_per_frame <= 2.2
    assert band.stats.false == 0  # no face where there is none
    assert band.stats.stray <= 1  # at most one rough view, e.g. of a face cut by the edge
    if distance >= 3.5:  # what the finder is for: the whole frame cannot see this far
        assert whole.stats.found_rate < 0.2


def test_no_faces_in_empty_rooms(detector: object) -> None:
    photo = astronaut_photo()
    for seed in (21, 22):
        r = Renderer(photo, CameraGeometry(W, H), seed=seed)
        band = Finder(_band(), detector)  # type: ignore[arg-type]
        for _ in range(14):  # two full sweeps
            frame, _ = r.render([])
            assert band.find(frame).faces == []


def test_tile_faces_are_the_detectors_own_mapped_exactly(
    renderer: Renderer, detector: object
) -> None:
    # The finder adds no error of its own: a face found in a tile is the detector's result on
    # that crop, shifted to frame pixels (compared with a contiguous copy of the crop).
    f = Finder(_band(whole_pass=False, inferences_per_frame=1), detector)  # type: ignore[arg-type]
    frame, (truth,) = renderer.render([Visitor(x_m=-1.2, distance_m=3.0)])
    res = f.find(frame)
    (tile,) = res.regions
    assert tile.x0 == 0 and res.faces, "the visitor is in the first tile"
    x0, y0, x1, y1 = (int(v) for v in tile.as_list())
    own = detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))  # type: ignore[attr-defined]
    assert len(own) == len(res.faces) == 1
    assert own[0].translated(x0, y0) == res.faces[0]
    assert match(res.faces, truth) is not None


@pytest.mark.parametrize(("distance", "beat_whole"), [(0.6, False), (0.9, True)])
def test_eye_points_are_as_good_as_whole_frame_detection(
    renderer: Renderer, detector: object, distance: float, beat_whole: bool
) -> None:
    # Where both see the face, the finder's eye midpoints are within 8 % of the eye distance of
    # the truth; once the face is small in the whole frame (0.9 m: eyes 10 px apart in the
    # model input) they are closer to it than the whole-frame detector's (benchmarks/range.py).
    poses = walk(
        renderer.geometry, distance, speed_mps=0.5, stand_s=0.5, x_from_m=-0.15, x_to_m=0.15
    )
    band = Runner(Finder(_band(), detector))  # type: ignore[arg-type]
    whole = Finder(FinderConfig(mode="whole"), detector)  # type: ignore[arg-type]
    ours_err: list[float] = []
    whole_err: list[float] = []
    for pose in poses[::2]:
        assert pose is not None
        frame, (truth,) = renderer.render([pose])
        band.step(frame, [truth])
        ours = band.stats.hits[-1]
        theirs = match(whole.find(frame).faces, truth)
        if ours is not None and theirs is not None:
            ours_err.append(math.dist(ours.eye_mid.as_list(4), truth.eye_mid.as_list(4)))
            whole_err.append(math.dist(theirs.eye_mid.as_list(4), truth.eye_mid.as_list(4)))
    assert band.stats.found_rate >= 0.9
    assert len(ours_err) >= 3
    assert float(np.median(ours_err)) <= 0.08 * truth.eye_px
    if beat_whole:
        assert float(np.median(ours_err)) <= float(np.median(whole_err))


def test_whole_result_type_is_frozen(detector: object) -> None:
    res = Finder(FinderConfig(mode="whole"), detector).find(  # type: ignore[arg-type]
        np.zeros((240, 320, 3), np.uint8)
    )
    assert isinstance(res, FindResult) and res.faces == [] and res.inferences == 1
    with pytest.raises(AttributeError):
        res.inferences = 3  # type: ignore[misc]


def test_visitor_far_off_axis_is_found_by_the_sweep(renderer: Renderer, detector: object) -> None:
    # A standing visitor at 4 m near the right edge: found within one sweep cycle.
    f = Finder(_band(), detector)  # type: ignore[arg-type]
    pose = Visitor(x_m=2.2, distance_m=4.0, eye_height_m=1.7)
    frame, (truth,) = renderer.render([pose])
    cycle = math.ceil(len(f.layout(W, H).schedule) / 2)
    hits = [match(f.find(frame).faces, truth) is not None for _ in range(cycle)]
    assert any(hits)


def test_newcomer_is_found_while_the_viewer_is_followed(
    renderer: Renderer, detector: object
) -> None:
    viewer = Visitor(x_m=-0.3, distance_m=2.0)
    run = Runner(Finder(_band(), detector))  # type: ignore[arg-type]
    for _ in range(150):  # a still viewer is found within one sweep at idle_sweep_hz
        frame, truths = renderer.render([viewer])
        run.step(frame, truths)
        if run.follow is not None:
            break
    assert run.stats.frames <= 5 * 30  # a full sweep (11 regions) at 3 per second: < 4 s
    for _ in range(3):  # ... and followed
        frame, truths = renderer.render([viewer])
        run.step(frame, truths)
    assert run.follow is not None and run.stats.hits[-1] is not None
    newcomer = walk(renderer.geometry, 4.0, direction=-1, stand_s=0.0)
    seen_newcomer = []
    for pose in newcomer[:16]:
        assert pose is not None
        frame, (tv, tn) = renderer.render([viewer, pose])
        res = run.step(frame, [tv])
        assert 1 <= res.inferences <= 2  # the crop; a tile where the newcomer moves
        assert match(res.faces, tv) is not None  # the viewer, every frame
        seen_newcomer.append(match(res.faces, tn) is not None)
    assert any(seen_newcomer[:4])  # the newcomer, within a few frames of walking in
    assert sum(seen_newcomer) >= 2  # and again while it moves (motion wakes its tiles)


def _band_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: object, camera: str, *extra: str
) -> tuple[int, dict[str, object], str, str]:
    import tomllib
    from pathlib import Path

    from appliance.cli import main

    cfg = Path(str(tmp_path)) / "camera.toml"
    cfg.write_text(f"[camera]\n{camera}\n")
    status = main(["band", "--camera-height", "1.75", "--config", str(cfg), *extra])
    cap = capsys.readouterr()
    return status, (tomllib.loads(cap.out)["finder"] if status == 0 else {}), cap.out, cap.err


def test_band_command_works_with_the_tilt_given(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    # --tilt replaces [finder] camera_tilt_deg in the view the band is worked out from.
    _, level, _, _ = _band_lines(capsys, tmp_path, "width = 1280\nheight = 720")
    _, tilted, out, _ = _band_lines(capsys, tmp_path, "width = 1280\nheight = 720", "--tilt", "8")
    assert "1.75 m high, tilted 8° down" in out
    place = {"width": 1280, "height": 720, "hfov_deg": 66.0, "camera_height_m": 1.75}
    place |= {"eye_min_m": 1.2, "near_m": 1.2}  # the configuration's defaults
    wants = [band(**place, tilt_deg=tilt) for tilt in (0.0, 8.0)]
    for got, want in zip((level, tilted), wants, strict=True):
        assert (got["band_top"], got["band_bottom"]) == tuple(round(v, 2) for v in want)
    assert wants[1][0] < wants[0][0] - 0.1  # tilted down, faces sit higher up the image


def test_band_command_knows_the_isp_crops_a_4_3_stream_from_camera_module_3(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    # 16:9 and 4:3 streams from the 16:9 sensor see the same rows of the room (the ISP crops
    # the 4:3 one's sides), so the band, a fraction of the image height, is the same.
    _, wide, _, _ = _band_lines(capsys, tmp_path, "width = 1280\nheight = 720")
    _, four3, out, _ = _band_lines(capsys, tmp_path, "width = 1280\nheight = 960")
    assert (four3["band_top"], four3["band_bottom"]) == (wide["band_top"], wide["band_bottom"])
    assert "75 % of its width, 51.9° of the lens's 66°" in out
    # The same numbers as the geometry at the narrowed field of view, not at the lens's.
    narrowed = band(
        width=1280, height=960, hfov_deg=51.93, camera_height_m=1.75, eye_min_m=1.2, near_m=1.2
    )
    assert (four3["band_top"], four3["band_bottom"]) == tuple(round(v, 2) for v in narrowed)
    # Told the image is the whole field (a webcam), the band is that of a 66° 4:3 image.
    _, whole, out, _ = _band_lines(
        capsys, tmp_path, "width = 1280\nheight = 960", "--sensor", "none"
    )
    assert whole["band_top"] != four3["band_top"] and "crops" not in out
    _, webcam, _, _ = _band_lines(capsys, tmp_path, 'source = "webcam"\nwidth = 1280\nheight = 960')
    assert webcam == whole
    # A 4:3 sensor (the HQ camera) crops rows of a 16:9 stream, never columns.
    _, hq, out, _ = _band_lines(
        capsys, tmp_path, "width = 1280\nheight = 720", "--sensor", "4056x3040"
    )
    assert hq == wide and "crops" not in out


@pytest.mark.parametrize("bad", ["12x", "x9", "4608*2592", "0x100", "wide"])
def test_band_command_names_a_bad_sensor_size(
    capsys: pytest.CaptureFixture[str], tmp_path: object, bad: str
) -> None:
    status, _, out, err = _band_lines(capsys, tmp_path, "width = 1280", "--sensor", bad)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"--sensor {bad!r}" in err


# ---- band from the camera's height ---------------------------------------------------------


def test_a_band_from_camera_height_follows_the_image_and_the_field_of_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from appliance.optics import install_band

    cfg = FinderConfig(mode="band", camera_height_m=1.75)
    view = CameraView.expected(CameraConfig(width=1280, height=720), sensor=None)
    f = Finder(cfg, MarkerDetector(), view=view)
    before = f.band_source  # nothing worked out before the first image
    with caplog.at_level("INFO", logger="appliance.finder"):
        lay = f.layout(1280, 720)
    assert before == "config"
    wide = install_band(cfg, 1280, 720, 66.0)
    assert f.band_fraction == wide == (0.21, 1.0) and f.band_source == "geometry"
    assert (lay.band.y0, lay.band.y1) == (round(0.21 * 720), 720)
    assert "head band 0.21-1.00 of the height: camera 1.75 m up, tilted 0°, 1280x720" in (
        caplog.text
    )
    # A 4:3 stream from the 16:9 sensor, once the app narrows the view to the crop: the same
    # rows of the room, so the same fractions. At the lens's whole 66° they would differ.
    f.layout(1280, 960)
    assert f.band_fraction != wide
    f.set_view(view.seen(width_fraction=0.75))  # 51.93°
    f.layout(1280, 960)
    assert f.band_fraction == wide
    f.set_view(f.view)  # the same view: nothing worked out again
    assert f.layout(1280, 960) is f.layout(1280, 960)  # cached, not worked out every frame


def test_an_impossible_band_for_the_image_keeps_the_configured_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Valid for the configured 16:9 camera; a 640x480 picamera2 stream (52°) tilted 50° down
    # sees no face: the finder searches the configured band and says why.
    cfg = FinderConfig(mode="band", camera_height_m=1.75, camera_tilt_deg=50)
    view = CameraView(640, 480, 66.0, width_fraction=0.75)  # 51.93°
    f = Finder(cfg, MarkerDetector(), view=view)
    with caplog.at_level("WARNING", logger="appliance.finder"):
        f.layout(640, 480)
    assert f.band_fraction == (0.30, 0.90) and f.band_source == "config"
    assert "no visitor's face would be in the picture for a 640x480 image at 51.9°" in caplog.text


def test_a_learned_band_replaces_the_one_from_camera_height() -> None:
    cfg = FinderConfig(
        mode="band",
        camera_height_m=1.75,
        band_learn=True,
        band_learn_faces=50,
        band_learn_margin=0.02,
        inferences_per_frame=16,
    )
    f = Finder(cfg, MarkerDetector(eye=20.0), view=CameraView(W, H, 66.0))
    frame = _frame((300, 500), (900, 560))
    for _ in range(25):
        assert len(f.find(frame).faces) == 2
    assert f.band_source == "learned"
    learned = f.band_fraction
    assert 0.47 <= learned[0] <= 0.49
    f.set_view(
        CameraView(W, H, 66.0, width_fraction=0.8)
    )  # the view changing later does not undo what was learned
    f.layout(W, H)
    assert f.band_fraction == learned and f.band_source == "learned"


# ---- the one check for unusable faces --------------------------------------------------------


class _Broken:
    """A model returning a real face, a NaN face and one scored above 1."""

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        real = _face_at(w / 2, h / 2, 12.0)
        nan = math.nan
        p = Point(nan, nan)
        return [real, Face(Box(nan, nan, nan, nan), nan, (p,) * 6), _face_at(w / 3, h / 2, 12, 1.5)]


@pytest.mark.parametrize("mode", ["whole", "band"])
def test_the_finder_drops_unusable_faces_and_counts_them(mode: Literal["whole", "band"]) -> None:
    f = Finder(FinderConfig(mode=mode, band_top=0.0, band_bottom=1.0), _Broken())
    result = f.find(np.zeros((240, 320, 3), np.uint8))
    assert result.faces and all(usable_face(x) for x in result.faces)
    assert result.dropped >= 1
    assert not usable_face(Face(Box(0, 0, 1, 1), 1.5, (Point(0, 0),) * 6))
    assert usable_face(_face_at(10, 10, 4.0))


# ---- cadence: detector work that follows the room -----------------------------------------


def _run(f: Finder, frames: list[np.ndarray], fps: float = 30.0, **kw: object) -> list[FindResult]:
    return [f.find(fr, t=i / fps, **kw) for i, fr in enumerate(frames)]  # type: ignore[arg-type]


def test_a_still_empty_room_is_swept_at_idle_sweep_hz() -> None:
    det = MarkerDetector()
    f = Finder(_band(idle_sweep_hz=3.0), det)
    results = _run(f, [_frame() for _ in range(90)])  # three seconds at 30 fps
    assert sum(r.inferences for r in results) == 1 + 8  # at 0 s, then 3 per second to 2.97 s
    skipped = [r for r in results if not r.ran]
    assert len(skipped) == 81 and all(r.faces == [] and r.regions == [] for r in skipped)
    # Without a clock, or with the frame cadence, every frame is swept as before.
    assert all(r.inferences == 2 for r in [f.find(_frame()) for _ in range(5)])
    g = Finder(_band(cadence="frame"), det)
    assert all(r.inferences == 2 for r in _run(g, [_frame() for _ in range(30)]))


def test_motion_in_the_band_wakes_the_sweep_at_once() -> None:
    det = MarkerDetector()
    f = Finder(_band(idle_sweep_hz=1.0), det)
    still = _run(f, [_frame() for _ in range(10)])
    assert not still[-1].ran
    moved = _frame()
    tile = f.layout(W, H).tiles[2]
    moved[350:430, 520:570] = 200  # only in this tile (the others overlap it elsewhere)
    assert tile == Box(384, 336, 704, 656)
    res = f.find(moved, t=10 / 30)
    assert res.ran and res.regions == [tile]
    # Many tiles moving at once (someone very close): the whole frame is searched too.
    g = Finder(_band(idle_sweep_hz=1.0, inferences_per_frame=3), det)
    _run(g, [_frame() for _ in range(10)])
    near = _frame()
    near[300:800, 200:900] = 200
    res = g.find(near, t=10 / 30)
    assert Box(0.0, 0.0, float(W), float(H)) in res.regions


def test_a_followed_viewer_costs_the_crop_every_frame_plus_track_sweep_hz() -> None:
    det = MarkerDetector()
    f = Finder(_band(track_sweep_hz=2.0), det)
    viewer = Box(600, 500, 640, 540)
    results = _run(f, [_frame() for _ in range(60)], follow=viewer)
    assert all(r.ran and r.follow is not None for r in results)  # never skipped
    assert sum(r.inferences for r in results) == 60 + 1 + 3  # crops; sweeps at t=0, then 2/s


def test_the_follow_crop_runs_on_the_follow_detector() -> None:
    det, short = MarkerDetector(), MarkerDetector(input_size=128)
    f = Finder(_band(), det, follow_detector=short)
    res = f.find(_frame((620, 520)), follow=Box(600, 500, 640, 540), t=0.0)
    crop = res.follow
    assert crop is not None and len(res.faces) == 1
    assert short.calls == [(int(crop.width), int(crop.height), False)]
    assert len(det.calls) == res.inferences - 1  # the sweep stays on the main detector


def test_a_face_found_is_searched_again_before_the_gaze_follows_it() -> None:
    det = MarkerDetector(eye=20.0)
    f = Finder(_band(whole_pass=False, inferences_per_frame=1), det)
    tile = f.layout(W, H).tiles[0]
    frame = _frame((int(tile.center.x), int(tile.center.y)))
    first = f.find(frame, t=0.0)
    assert first.faces and first.follow is None
    # The gaze's viewer tracks (the one memory of the visitors) have seen the face once: not
    # yet the viewer, but the face to search around.
    gaze = Gaze(GazeConfig(), CameraConfig(), 33, 16)
    rec = gaze.update(first.faces, 0.0, (W, H))
    assert rec.viewer is None and rec.follow is not None and not rec.follow.viewer
    second = f.find(frame, follow=rec.follow, t=1 / 30)
    assert second.follow is not None and second.faces
    assert second.follow.x0 <= first.faces[0].box.center.x <= second.follow.x1
    off = Finder(_band(whole_pass=False, inferences_per_frame=1, follow_found=False), det)
    off.find(frame, t=0.0)
    assert off.find(frame, follow=rec.follow, t=1 / 30).follow is None
