"""``frames build --mode synthesize`` on painting-like portraits (``tests/data/paintinglike.py``).

Low sclera contrast, a varnish tint, craquelure and blur: the hand-made iris finder gets these
wrong, the face mesh does not. Every build is measured the way the issue asks: the face mesh
run on the output frames finds irises that stay between the lids and move monotonically with
the frame index (Spearman ≥ 0.95 per eye), and outside the eye openings the frames equal the
painting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.cli import main
from appliance.framebuild.build import BuildOptions, build
from appliance.framebuild.eyemodel import face_mesh, find_eyes, opening_from
from appliance.framebuild.eyes import detect_face, eyes_left_to_right, model_eyes
from appliance.framebuild.facemesh import FaceMarks
from appliance.framebuild.synthesize import EyeRenderer, iris_shifts, synthesize_region
from appliance.frames import FrameSet
from appliance.types import Point
from tests.data import paintinglike as pl

COUNT = 33

ONE_ROW = ["--rows", "1", "--lid-phases", "1"]
"""One level row of open eyes: the rows and blinks are measured in test_framebuild_living.py."""


def spearman(values: list[float]) -> float:
    """Spearman rank correlation of ``values`` with their index (no ties expected)."""
    ranks = np.argsort(np.argsort(values)).astype(float)
    index = np.arange(len(values), dtype=float)
    return float(np.corrcoef(ranks, index)[0, 1])


def frames_of(folder: Path) -> list[np.ndarray]:
    fs = FrameSet.load(folder)
    return [fs.frame(i) for i in range(fs.count)]


def measured(frames: list[np.ndarray]) -> list[FaceMarks]:
    """The face mesh's findings on every output frame (each must find the face)."""
    found = []
    for i, frame in enumerate(frames):
        marks = face_mesh().find_face(frame)
        assert marks is not None, f"frame {i}: the face mesh lost the face"
        found.append(marks)
    return found


def outside_differs(painting: np.ndarray, frame: np.ndarray, region: np.ndarray) -> float:
    """Fraction of pixels outside ``region`` whose grey level differs by more than 12."""
    grey = painting.astype(np.float64).mean(axis=2)
    out = frame.astype(np.float64).mean(axis=2)
    big = np.abs(grey - out) > 12
    return float(big[~region].mean())


@pytest.fixture(scope="module", params=["hopper", "astronaut"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    name = request.param
    painting = pl.painting(name)
    src = tmp_path_factory.mktemp("src") / f"{name}_painting.png"
    Image.fromarray(painting).save(src)
    out = tmp_path_factory.mktemp("out") / "set"
    args = ["frames", "build", str(src), "--out", str(out), "--count", str(COUNT), *ONE_ROW]
    assert main(args) == 0
    return name, painting, out


def test_the_eyes_come_from_the_face_mesh(built: tuple) -> None:
    _, _, out = built
    manifest = tomllib.loads((out / "frames.toml").read_text())
    assert manifest["build"]["eyes_modelled_by"] == "face mesh"
    lo, hi = manifest["build"]["iris_shift_px"]
    assert lo < -3 and hi > 3  # the irises really travel


def test_irises_move_monotonically_between_the_lids(built: tuple) -> None:
    name, _, out = built
    marks = measured(frames_of(out))
    for side in (0, 1):
        xs = [m.eyes[side].iris.x for m in marks]
        rho = spearman(xs)
        assert rho >= 0.95, f"{name} eye {side}: Spearman {rho:.3f}"
        for i, m in enumerate(marks):
            eye = m.eyes[side]
            opening = opening_from(eye)
            inside = opening.mask(np.array([eye.iris.x]), np.array([eye.iris.y]))
            assert bool(inside[0]), f"{name} frame {i} eye {side}: iris outside the lids"
            a, b = eye.corners
            assert a.x + 0.5 * eye.radius < eye.iris.x < b.x - 0.5 * eye.radius


def test_outside_the_eye_openings_the_frames_are_the_painting(built: tuple) -> None:
    name, painting, out = built
    manifest = tomllib.loads((out / "frames.toml").read_text())
    build = manifest["build"]
    h, w = painting.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    # The eye region: each modelled eye's opening, widened by a pixel (antialiased rim).
    region = np.zeros((h, w), bool)
    marks = face_mesh().find_face(painting)
    assert marks is not None
    for eye in marks.eyes:
        o = opening_from(eye)
        for dx in (-1.0, 0.0, 1.0):
            for dy in (-1.0, 0.0, 1.0):
                region |= o.mask(xs + dx, ys + dy)
    assert build["iris_centres"]
    for i, frame in enumerate(frames_of(out)):
        frac = outside_differs(painting, frame, region)
        assert frac <= 0.002, f"{name} frame {i}: {100 * frac:.2f} % differ outside the eyes"


def test_a_museum_scan_is_worked_on_at_its_own_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2048×3052 scan: eyes over 300 px wide are rendered without supersampling, every patch
    lies in the eyes' box (a sliver of the canvas), and the irises, measured by the face mesh
    on each frame halved, still move monotonically between the lids."""
    painting = pl.museum_painting(2048)
    src = tmp_path / "scan.png"
    Image.fromarray(painting).save(src, compress_level=1)
    out = tmp_path / "set"
    assert main(["frames", "build", str(src), "--out", str(out), "--count", "9", *ONE_ROW]) == 0
    assert "patches lossy WebP, quality 90 (--lossless: PNG)" in capsys.readouterr().out
    fs = FrameSet.load(out)
    hb = fs.head_box
    assert hb.x1 - hb.x0 >= 2 * 300 and hb.area < 0.03 * painting.shape[0] * painting.shape[1]
    assert all(p.empty or (p.box.x0 >= hb.x0 and p.box.x1 <= hb.x1) for p in fs.patches)
    xs: list[list[float]] = [[], []]
    for i in range(fs.count):
        marks = face_mesh().find_face(np.asarray(Image.fromarray(fs.frame(i)).reduce(2)))
        assert marks is not None, f"frame {i}: the face mesh lost the face"
        for side in (0, 1):
            eye = marks.eyes[side]
            inside = opening_from(eye).mask(np.array([eye.iris.x]), np.array([eye.iris.y]))
            assert bool(inside[0]), f"frame {i} eye {side}: iris outside the lids"
            xs[side].append(eye.iris.x)
    for side in (0, 1):
        assert spearman(xs[side]) >= 0.95, f"eye {side}: {np.round(xs[side], 1)}"
        assert xs[side][-1] - xs[side][0] > 8  # pixels of the halved frame
    # Larger than 1920 px: lossy WebP patches that leave every unchanged pixel exact; the
    # same build with --lossless has PNG patches in the same boxes, the frames close to these.
    assert {p.suffix for p in (out / "patches").iterdir()} == {".webp"}
    assert fs.build["patches"] == "webp"
    exact_dir = tmp_path / "exact"
    args = ["frames", "build", str(src), "--out", str(exact_dir), "--count", "9", "--lossless"]
    assert main([*args, *ONE_ROW]) == 0
    assert "lossy" not in capsys.readouterr().out
    exact = FrameSet.load(exact_dir)
    assert {p.suffix for p in (exact_dir / "patches").iterdir()} == {".png"}
    assert exact.build["patches"] == "png"
    assert [p.box for p in exact.patches] == [p.box for p in fs.patches]
    assert np.array_equal(exact.base, fs.base)
    sq, n = 0.0, 0
    for i in range(fs.count):
        want, got = exact.frame(i), fs.frame(i)
        changed = (want != exact.base).any(axis=2)
        assert np.array_equal(got[~changed], want[~changed]), f"frame {i}"
        d = got[changed].astype(np.float64) - want[changed]
        sq, n = sq + float((d**2).sum()), n + d.size
    assert n and 10 * np.log10(255**2 * n / sq) >= 38
    on_disk = [sum(f.stat().st_size for f in (d / "patches").iterdir()) for d in (out, exact_dir)]
    assert on_disk[0] * 4 < on_disk[1]


def test_the_hand_made_finder_misreads_these_paintings() -> None:
    """Why the face mesh is needed: the old finder's iris is far too large or off-centre."""
    painting = pl.painting("hopper")
    marks = face_mesh().find_face(painting)
    assert marks is not None
    points = (marks.eyes[0].iris, marks.eyes[1].iris)
    try:
        hand = model_eyes(painting, points)
    except ValueError:
        return  # it gives up: also a failure
    worst = max(abs(h.radius - m.radius) / m.radius for h, m in zip(hand, marks.eyes, strict=True))
    assert worst > 0.25


def test_no_face_one_line_error_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = pl.paint(np.full((300, 240, 3), 150, np.uint8))
    src = tmp_path / "blank.png"
    Image.fromarray(canvas).save(src)
    out = tmp_path / "set"
    assert main(["frames", "build", str(src), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(src) in err[0] and "no face" in err[0]
    assert not out.exists()


def test_eyes_given_where_there_is_no_face_names_both_finders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = pl.paint(np.full((300, 240, 3), 150, np.uint8))
    src = tmp_path / "blank.png"
    Image.fromarray(canvas).save(src)
    out = tmp_path / "set"
    assert main(["frames", "build", str(src), "--out", str(out), "--eyes", "90,120,150,120"]) != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(src) in line and "face mesh sees no face" in line and "no iris near" in line
    assert not out.exists()


def test_eyes_option_uses_the_face_mesh_too(tmp_path: Path) -> None:
    painting = pl.painting("hopper")
    src = tmp_path / "hopper.png"
    Image.fromarray(painting).save(src)
    marks = face_mesh().find_face(painting)
    assert marks is not None
    a, b = (Point(round(e.iris.x), round(e.iris.y)) for e in marks.eyes)
    out = tmp_path / "set"
    eyes = f"{a.x:.0f},{a.y:.0f},{b.x:.0f},{b.y:.0f}"
    assert (
        main(["frames", "build", str(src), "--out", str(out), "--count", "3", "--eyes", eyes]) == 0
    )
    build = tomllib.loads((out / "frames.toml").read_text())["build"]
    assert build["eyes_from"] == "--eyes" and build["eyes_modelled_by"] == "face mesh"
    assert abs(build["iris_centres"][0] - marks.eyes[0].iris.x) < 1.0


def dense_middle_sweep() -> list[float]:
    """33 gazes over ±30° as face animation sweeps them: 0.6° apart in the middle, 6.2° at
    the ends (3.3 even steps: the rule before this refused more than 3)."""
    steps = 0.6 + 6.375 * np.abs((np.arange(COUNT - 1) + 0.5 - 16) / 16) ** 4
    return [float(a) for a in np.concatenate([[0.0], np.cumsum(steps)]) - 30.0]


def sweep_frames(painting: np.ndarray, angles: list[float]) -> list[np.ndarray]:
    """The portrait with its eyes turned to each of ``angles`` (the synthesize renderer)."""
    face = detect_face(painting, "painting")
    eyes, _ = find_eyes(painting, eyes_left_to_right(face), "painting", face)
    shifts, _ = iris_shifts(eyes, angles)
    renderers = [EyeRenderer(painting, e) for e in eyes]
    x0, y0 = min(e.roi[0] for e in eyes), min(e.roi[1] for e in eyes)
    x1, y1 = max(e.roi[2] for e in eyes), max(e.roi[3] for e in eyes)
    frames = []
    for shift in shifts:
        frame = painting.copy()
        frame[y0:y1, x0:x1] = synthesize_region(painting[y0:y1, x0:x1], (x0, y0), renderers, shift)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def blended(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """33 soft, moving head frames of the Grace Hopper painting whose sweep is denser in the
    middle (file order shuffled), blended back into it at the default count."""
    root = tmp_path_factory.mktemp("blend")
    painting = pl.painting("hopper")
    src = root / "hopper_painting.png"
    Image.fromarray(painting).save(src)
    heads = root / "heads"
    heads.mkdir()
    order = np.random.default_rng(1).permutation(COUNT)
    sweep = sweep_frames(painting, dense_middle_sweep())
    for i, head in enumerate(pl.head_frames(sweep)):
        Image.fromarray(head).save(heads / f"head_{order[i]:02d}.png")
    out = root / "set"
    result = build(BuildOptions(painting=src, out=out, mode="blend", heads=heads))
    return painting, out, order, result


def test_blend_uses_an_uneven_sweep_as_given(blended: tuple) -> None:
    _, out, _, result = blended
    fs = FrameSet.load(out)
    assert fs.count == COUNT and fs.angles is not None
    steps = np.diff(fs.angles)
    even = (fs.angles[-1] - fs.angles[0]) / (COUNT - 1)
    # Denser in the middle than at the ends, as measured on the head frames.
    assert (
        steps[:4].mean() > 2.5 * steps[12:20].mean()
        and steps[-4:].mean() > 2.5 * steps[12:20].mean()
    )
    assert steps.max() > 2 * even
    (line,) = [w for w in result.warnings if "gaze steps" in w]
    assert "kept as given" in line and "\n" not in line


def test_blend_orders_the_heads_by_their_measured_gaze(blended: tuple) -> None:
    _, out, order, _ = blended
    build = tomllib.loads((out / "frames.toml").read_text())["build"]
    true = [int(np.flatnonzero(order == int(n[5:7]))[0]) for n in build["head_frames"]]
    assert spearman([float(t) for t in true]) >= 0.95
    assert build["unaligned"] == []
    # The heads turn and scale a little: the fitted moves say so.
    assert max(abs(m[2]) for m in build["head_moves"]) > 0.5


def test_blend_irises_move_monotonically_between_the_lids(blended: tuple) -> None:
    _, out, _, _ = blended
    marks = measured(frames_of(out))
    for side in (0, 1):
        xs = [m.eyes[side].iris.x for m in marks]
        assert spearman(xs) >= 0.95, f"eye {side}: Spearman {spearman(xs):.3f}"
        for i, m in enumerate(marks):
            eye = m.eyes[side]
            inside = opening_from(eye).mask(np.array([eye.iris.x]), np.array([eye.iris.y]))
            assert bool(inside[0]), f"frame {i} eye {side}: iris outside the lids"


def test_blend_outside_the_head_box_is_the_painting(blended: tuple) -> None:
    painting, out, _, _ = blended
    manifest = tomllib.loads((out / "frames.toml").read_text())
    x0, y0, x1, y1 = manifest["build"]["paste_box"]
    region = np.zeros(painting.shape[:2], bool)
    region[y0:y1, x0:x1] = True
    frames = frames_of(out)
    for i, frame in enumerate(frames):
        assert outside_differs(painting, frame, region) <= 0.002, f"frame {i}"
    # Sharper than that: only the moving parts (eyes, lids, brows) change by more than 12.
    changed = np.zeros(painting.shape[:2], bool)
    for frame in frames:
        changed |= np.abs(frame.astype(int) - painting.astype(int)).max(axis=2) > 12
    assert changed.mean() < 0.35 * region.mean()  # about a quarter of the head box
