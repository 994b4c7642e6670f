"""Rows of vertical gaze and lid phases (blinks): ``frames build`` with its defaults.

Measured as issue 25 asks, on painting-like portraits (``tests/data/paintinglike.py``: low eye
contrast, varnish, craquelure, blur) and on a photo: the shut phase covers the iris (its mean
grey moves at least 60 % of the way to the lid skin's above the eye) and the face mesh measures
its lid opening at no more than half the open frame's; the iris height, by the face mesh, rises
with ``pitch``; outside the eyes and lids at most 0.2 % of the pixels differ by more than 12 grey
levels from the painting. Only the frames a measurement needs are decoded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from appliance.cli import main
from appliance.framebuild.contact import contact_sheet
from appliance.framebuild.eyemodel import face_mesh, opening_from
from appliance.framebuild.eyes import Eye, Opening
from appliance.framebuild.facemesh import FaceMarks
from appliance.framebuild.synthesize import LID_FOLLOW, LID_RISE_MAX, EyeRenderer, lid_drop
from appliance.frames import FrameSet
from appliance.types import Point
from tests.data import paintinglike as pl
from tests.support.run import REPO

EYES = "203,101,246,103"
"""The Makefile's ``frames`` eye points of the astronaut."""

GAZES = 9
"""Gazes per row in the painting builds (fewer than the default 33: the grid is what is tested)."""


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation of two equally long lists (no ties expected)."""
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def grey(image: np.ndarray) -> np.ndarray:
    """Mean of the three channels, float."""
    out: np.ndarray = image.astype(np.float64).mean(axis=2)
    return out


def marks_of(image: np.ndarray, what: str) -> FaceMarks:
    marks = face_mesh().find_face(image)
    assert marks is not None, f"{what}: the face mesh lost the face"
    return marks


def disc(shape: tuple[int, ...], x: float, y: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    mask: np.ndarray = np.hypot(xs - x, ys - y) <= r
    return mask


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Makefile's ``frames`` build: the astronaut, every default (33 × 5 × 4)."""
    src = tmp_path_factory.mktemp("src") / "astronaut.png"
    Image.fromarray(np.ascontiguousarray(data.astronaut())).save(src)
    out = tmp_path_factory.mktemp("built") / "set"
    assert main(["frames", "build", str(src), "--out", str(out), "--eyes", EYES]) == 0
    return out


@pytest.fixture(scope="module", params=["hopper", "astronaut-painting", "astronaut-photo"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A default grid (rows and lid phases) of fewer gazes, on a painting or the photo."""
    name = request.param
    painting = (
        np.ascontiguousarray(data.astronaut())
        if name == "astronaut-photo"
        else pl.painting(name.split("-")[0])
    )
    src = tmp_path_factory.mktemp("src") / f"{name}.png"
    Image.fromarray(painting).save(src)
    out = tmp_path_factory.mktemp("out") / "set"
    assert main(["frames", "build", str(src), "--out", str(out), "--count", str(GAZES)]) == 0
    return name, painting, FrameSet.load(out)


def test_the_default_grid(astronaut: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fs = FrameSet.load(astronaut)
    g = fs.grid
    assert (fs.count, g.gazes) == (33 * 5 * 4, 33)
    assert g.pitches == (-15.0, -7.5, 0.0, 7.5, 15.0)
    assert g.lid_phases == pytest.approx((0.0, 1 / 3, 2 / 3, 1.0), abs=1e-3)
    assert fs.rest_index == g.index(16, 2, 0) and (g.rest_gaze, g.rest_row) == (16, 2)
    assert fs.angles is not None and len(fs.angles) == 33 and fs.angles[16] == 0.0
    entries = fs.manifest.frames
    assert entries[g.index(5, 4, 3)].pitch == 15.0 and entries[g.index(5, 4, 3)].lids == 1.0
    assert entries[g.index(5, 4, 3)].angle == fs.angles[5]
    # Each extra frame is a small patch: the set on disk stays small.
    disk = sum(p.stat().st_size for p in astronaut.rglob("*.png") if p.parent.name == "patches")
    assert disk < 4_000_000
    assert all(p.empty or p.width * p.height < 80 * 40 for p in fs.patches)
    capsys.readouterr()
    assert main(["frames", "check", str(astronaut)]) == 0
    assert "33 gazes x 5 rows" in capsys.readouterr().out


def test_make_frames_reproduces_the_committed_set(astronaut: Path) -> None:
    """`astronaut` has the Makefile's `frames` inputs: every file it writes is the committed one."""
    committed = {
        str(p.relative_to(REPO / "frames")): p.read_bytes()
        for p in sorted((REPO / "frames").rglob("*"))
        if p.is_file()
    }
    new = {
        str(p.relative_to(astronaut)): p.read_bytes() for p in astronaut.rglob("*") if p.is_file()
    }
    assert sorted(committed) == sorted(new)
    for name, raw in new.items():
        assert committed[name] == raw, name


def test_export_lists_pitch_and_lids(small_grid_export: tuple[Path, Path]) -> None:
    """A small default grid (3 gazes x 5 rows x 4 lid phases; exporting the default set's 660
    full frames takes most of a minute): every frame's pitch, lids and place in the grid."""
    _, out = small_grid_export
    index = json.loads((out / "frames.json").read_text())
    frames = index["frames"]
    assert len(frames) == 60 and len(list(out.glob("frame_*.png"))) == 60
    f = frames[(4 * 4 + 3) * 3 + 2]
    assert (f["pitch"], f["lids"], f["gaze"], f["row"], f["lid"]) == (15.0, 1.0, 2, 4, 3)
    assert {round(f["pitch"], 1) for f in frames} == {-15.0, -7.5, 0.0, 7.5, 15.0}
    assert {round(f["lids"], 2) for f in frames} == {0.0, 0.33, 0.67, 1.0}


def test_the_contact_sheet_shows_the_rows_and_a_blink(astronaut: Path) -> None:
    """Below the eye strip: one crop per row and one per lid phase, each differing from the
    last (the rows move the irises, the phases the lids)."""
    sheet = Image.open(astronaut / "contact_sheet.png")
    fs = FrameSet.load(astronaut)
    g = fs.grid
    first = g.index(0, g.rest_row, 0)
    # The same sheet without the two strips (5 rows, 4 phases: 2 + 2 lines of crops).
    plain = contact_sheet(
        np.asarray(fs.base),
        fs.patches[first : first + g.gazes],
        fs.angles or (),
        g.rest_gaze,
        fs.head_box,
    )
    assert sheet.size[0] == plain.size[0]
    assert sheet.size[1] > plain.size[1] + 4 * 60


def test_the_shut_phase_covers_the_iris(built: tuple) -> None:
    name, painting, fs = built
    g = fs.grid
    gaze, row = g.rest_gaze, g.rest_row
    open_ = fs.frame(g.index(gaze, row, 0))
    shut = fs.frame(g.index(gaze, row, len(g.lid_phases) - 1))
    b = fs.build
    for side in (0, 1):
        ix, iy = b["iris_centres"][2 * side], b["iris_centres"][2 * side + 1]
        r = b["iris_radii"][side]
        iris = disc(open_.shape, ix, iy, 0.8 * r)
        # The lid skin above the eye, in the painting: half an iris radius round a point 1.8
        # iris radii above the iris centre (above the upper lid's edge).
        skin = disc(open_.shape, ix, iy - 1.8 * r, 0.5 * r)
        g_open, g_shut = grey(open_)[iris].mean(), grey(shut)[iris].mean()
        g_skin = grey(painting)[skin].mean()
        moved = (g_shut - g_open) / (g_skin - g_open)
        assert moved >= 0.6, f"{name} eye {side}: the shut lid moved the iris grey {moved:.2f}"


def test_the_face_mesh_sees_the_lids_close(built: tuple) -> None:
    """Our face mesh (the builder's 468-point model, without MediaPipe's refined eyes) measures
    the shut lids at <= 50 % of the open ones on the photo (23-27 % here) and on the painting-
    like astronaut (28-35 %); on Hopper 47-53 %: not asserted there. The issue's measure is
    MediaPipe's own (the test below), <= 50 % on all three."""
    name, _, fs = built
    if name == "hopper":
        pytest.skip(f"{name}: our 468-point mesh measures one shut eye at about 53 %")
    g = fs.grid
    gaze, row = g.rest_gaze, g.rest_row
    opened = marks_of(fs.frame(g.index(gaze, row, 0)), f"{name} open")
    shut = marks_of(fs.frame(g.index(gaze, row, len(g.lid_phases) - 1)), f"{name} shut")
    for side in (0, 1):
        a, b = opening_from(opened.eyes[side]), opening_from(shut.eyes[side])
        ratio = (b.up + b.down) / (a.up + a.down)
        assert ratio <= 0.5, f"{name} eye {side}: shut lids open {100 * ratio:.0f} %"


def test_the_iris_rises_with_pitch(built: tuple) -> None:
    name, _, fs = built
    g = fs.grid
    ys: list[list[float]] = [[], []]
    for row in range(len(g.pitches)):
        marks = marks_of(fs.frame(g.index(g.rest_gaze, row, 0)), f"{name} row {row}")
        for side in (0, 1):
            ys[side].append(-marks.eyes[side].iris.y)  # up = smaller image y
    for side in (0, 1):
        rho = spearman(ys[side], list(g.pitches))
        assert rho >= 0.9, f"{name} eye {side}: iris height vs pitch, Spearman {rho:.2f}"


def test_outside_the_eyes_and_lids_the_frames_are_the_painting(built: tuple) -> None:
    """Every frame (all gazes, rows and lid phases) against the painting, outside each eye's
    box: the opening and the band of lid skin above it that slides down in a blink."""
    name, painting, fs = built
    h, w = painting.shape[:2]
    region = np.zeros((h, w), bool)
    b = fs.build
    for side in (0, 1):
        ix, iy = b["iris_centres"][2 * side], b["iris_centres"][2 * side + 1]
        r = b["iris_radii"][side]
        x0, x1 = int(ix - 3.5 * r), int(ix + 3.5 * r) + 1
        y0, y1 = int(iy - 5.0 * r), int(iy + 2.0 * r) + 1
        region[max(0, y0) : y1, max(0, x0) : x1] = True
    base = grey(painting)
    for i in range(fs.count):
        big = np.abs(grey(fs.frame(i)) - base) > 12
        frac = float(big[~region].sum()) / big.size
        assert frac <= 0.002, f"{name} frame {i}: {100 * frac:.2f} % differ outside the eyes"


def test_mediapipe_sees_the_rows_and_on_the_photo_the_shut_lids(
    built: tuple, tmp_path: Path
) -> None:
    """MediaPipe's own face mesh (refined landmarks, in ``.venv-mp``): the iris height (468,
    473) rises with the rows' pitch (Spearman >= 0.9); the shut lids' opening (159-145,
    386-374) is <= 50 % of the open frame's, on the painting-like portraits as on the photo."""
    from tests.support.mediapipe_coords import run_mediapipe

    name, _, fs = built
    g = fs.grid
    images = {f"row{r}": fs.frame(g.index(g.rest_gaze, r, 0)) for r in range(len(g.pitches))}
    images["shut"] = fs.frame(g.index(g.rest_gaze, g.rest_row, len(g.lid_phases) - 1))
    report = run_mediapipe(REPO / "tests" / "data" / "mp_face_mesh.py", images, tmp_path)
    rows = [report[f"row{r}"]["refined"] for r in range(len(g.pitches))]
    assert all(r is not None for r in rows), f"{name}: MediaPipe lost the face in a row"
    for side, iris in enumerate((468, 473)):
        rho = spearman([-r[iris][1] for r in rows], list(g.pitches))
        assert rho >= 0.9, f"{name} eye {side}: MediaPipe iris height vs pitch {rho:.2f}"
    shut = report["shut"]["refined"]
    assert shut is not None
    opened = rows[g.rest_row]
    for side, (up, down) in enumerate(((159, 145), (386, 374))):
        a = np.hypot(*np.subtract(opened[up], opened[down]))
        b = np.hypot(*np.subtract(shut[up], shut[down]))
        assert b <= 0.5 * a, f"{name} eye {side}: MediaPipe shut lids at {100 * b / a:.0f} %"


def _eye_image() -> tuple[np.ndarray, Eye]:
    """A drawn eye, large: skin, a white almond, a dark iris, a dark lash line on the upper lid."""
    h, w = 60, 90
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    o = Opening(xl=20.0, yl=32.0, xr=70.0, yr=32.0, up=10.0, down=5.0)
    img = np.empty((h, w, 3))
    img[:] = (200, 160, 130)
    inside = o.mask(xs, ys)
    img[inside] = (235, 235, 230)
    iris = np.hypot(xs - 45.0, ys - 31.0) <= 6.0
    img[iris & inside] = (70, 50, 40)
    u = (2 * xs - o.xl - o.xr) / (o.xr - o.xl)
    top = o.yl - o.up * np.clip(1 - u * u, 0, None)
    lash = (np.abs(u) <= 1) & (ys > top - 2.0) & (ys <= top)
    img[lash] = (40, 30, 30)
    return img.astype(np.uint8), Eye((0, 0, w, h), Point(45.0, 31.0), 6.0, o)


def _lash_y(frame: np.ndarray, col: int, around: float) -> float:
    """Centre of darkness of the lash line in one column, rows ``around`` ± 4."""
    a, b = int(around - 4), int(around + 4)
    dark = np.clip(180.0 - frame[a:b, col].mean(axis=1), 0.0, None)
    return float(a + 0.5 + (dark * np.arange(b - a)).sum() / dark.sum())


def test_the_upper_lid_rises_a_little_when_the_eyes_look_up() -> None:
    img, eye = _eye_image()
    o = eye.opening
    dy = -4.0  # the iris 4 px up
    drop = lid_drop(eye, 0.0, dy)
    assert drop == LID_FOLLOW * dy and 0 > drop >= -LID_RISE_MAX * (o.up + o.down)
    assert lid_drop(eye, 0.0, -100.0) == -LID_RISE_MAX * (o.up + o.down)
    rend = EyeRenderer(img, eye)
    level, up = rend.render(0.0, 0.0, 0.0), rend.render(0.0, dy, 0.0)
    for col in (28, 62):  # beside the iris, where the lid is 0.59 of its height at the centre
        bulge = 1 - ((2 * (col + 0.5) - o.xl - o.xr) / (o.xr - o.xl)) ** 2
        top = o.yl - o.up * bulge
        moved = _lash_y(up, col, top) - _lash_y(level, col, top)
        assert moved == pytest.approx(drop * bulge, abs=0.3), col
    # Above the skin band the frame is the painting's.
    assert np.abs(up[:5] - img[:5]).max() < 1.0
