"""``monalisa frames build --mode blend``: head frames blended into the painting."""

from __future__ import annotations

import functools
import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from appliance.cli import main
from appliance.framebuild import FrameBuildError
from appliance.framebuild.blend import (
    ColourMatch,
    head_shift,
    load_heads,
    offsets_to_angles,
    pick_even,
    picked_angles,
    shifted,
    sigmoid_alpha,
    uneven_sweep,
)
from appliance.framebuild.eyes import detect_face, eyes_left_to_right
from appliance.frames import FrameSet, default_frames_dir

CROP = (150, 40, 300, 190)  # the astronaut's head in the painting (x0, y0, x1, y1)
SOURCE_FRAMES = list(range(0, 33, 4))  # which default frames become head frames
PERM = [5, 2, 7, 0, 3, 8, 1, 6, 4]  # file name order differs from gaze order


@functools.lru_cache(maxsize=1)
def _default_set() -> FrameSet:
    return FrameSet.load(default_frames_dir())


def _head(i: int, tint: bool) -> np.ndarray:
    """A real head frame: the face of the default set's gaze ``i`` (level, eyes open), at
    256×256, optionally re-tinted."""
    fs = _default_set()
    frame = Image.fromarray(fs.frame(fs.grid.index(i, fs.grid.rest_row, 0)))
    im = frame.crop(CROP).resize((256, 256), Image.Resampling.LANCZOS)
    a = np.asarray(im).astype(np.float64)
    if tint:
        a = a * [0.85, 0.95, 1.0] + [0.0, 5.0, 20.0]
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def painting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "astronaut.png"
    Image.fromarray(np.ascontiguousarray(data.astronaut())).save(path)
    return path


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("heads")
    for n, i in enumerate(SOURCE_FRAMES):
        Image.fromarray(_head(i, tint=True)).save(folder / f"h_{PERM[n]:02d}.png")
    return folder


def _true_index(name: str) -> int:
    """Which default frame (gaze order) a head file was made from."""
    return SOURCE_FRAMES[PERM.index(int(name[2:4]))]


def test_blend_end_to_end(painting: Path, heads: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = ["frames", "build", str(painting), "--out", str(out), "--mode", "blend"]
    assert main([*args, "--heads", str(heads), "--count", "5"]) == 0
    fs = FrameSet.load(out)
    assert fs.count == 5
    assert fs.angles is not None and fs.angles[0] < 0 < fs.angles[-1]
    manifest = tomllib.loads((out / "frames.toml").read_text())
    b = manifest["build"]
    # Picked in measured-gaze order, which is the true order of the sweep (file names are not).
    true = [_true_index(n) for n in b["head_frames"]]
    assert true == sorted(true) and true[0] <= 4 and true[-1] >= 28
    assert b["measured_angles"] == sorted(b["measured_angles"])
    # Each frame's angle is the measured gaze of the head frame picked for it, not its target.
    angles = [f["angle"] for f in manifest["frames"]]
    assert angles == b["measured_angles"] == [round(a, 4) for a in fs.angles]
    assert all(v > u for u, v in itertools.pairwise(angles))
    assert len(set(b["head_frames"])) == 5
    # The head frames' face was matched onto the painting's face.
    assert all(abs(u - v) <= 8 for u, v in zip(b["paste_box"], CROP, strict=True))
    # Colour matching pulls the tinted head back toward the painting's colours.
    x0, y0, x1, y1 = b["paste_box"]
    photo = data.astronaut().astype(np.float64)
    centre = (slice(y0 + 40, y1 - 40), slice(x0 + 40, x1 - 40))
    blended = fs.frame(2)[centre].astype(np.float64)
    tinted = np.asarray(
        Image.fromarray(_head(16, tint=True)).resize((x1 - x0, y1 - y0)), np.float64
    )[40:-40, 40:-40]
    err_blend = np.abs(blended.mean((0, 1)) - photo[centre].mean((0, 1))).max()
    err_tint = np.abs(tinted.mean((0, 1)) - photo[centre].mean((0, 1))).max()
    assert err_blend < err_tint / 3
    assert main(["frames", "check", str(out)]) == 0


def test_moving_parts_are_the_head_and_the_rest_the_painting(
    painting: Path, heads: Path, tmp_path: Path
) -> None:
    out = tmp_path / "set"
    box = "140,30,310,200"
    args = ["frames", "build", str(painting), "--out", str(out), "--mode", "blend"]
    extra = ["--heads", str(heads), "--count", "3", "--head-box", box, "--no-colour-match"]
    extra.append("--no-stabilise")  # heads compared pixel for pixel below
    assert main([*args, *extra]) == 0
    manifest = tomllib.loads((out / "frames.toml").read_text())
    photo = data.astronaut()
    x0, y0, x1, y1 = (int(v) for v in box.split(","))
    w, h = x1 - x0, y1 - y0
    fs = FrameSet.load(out)
    for i, head_name in enumerate(manifest["build"]["head_frames"]):
        frame = fs.frame(i).astype(int)
        head = np.asarray(
            Image.open(heads / head_name).resize((w, h), Image.Resampling.LANCZOS)
        ).astype(int)
        # The irises (they move between the head frames): the head frame, to within rounding.
        for ex, ey in ((206, 101), (249, 104)):
            patch = (slice(ey - 2, ey + 3), slice(ex - 2, ex + 3))
            inner = head[ey - 2 - y0 : ey + 3 - y0, ex - 2 - x0 : ex + 3 - x0]
            assert np.abs(frame[patch] - inner).max() <= 2
        # Nose, mouth, chin and everything outside the box do not move: exactly the painting,
        # sharp as it is.
        outside = np.ones(photo.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(frame[outside], photo[outside])
        chin = (slice(135, 190), slice(185, 265))
        assert np.array_equal(frame[chin], photo[chin])
        assert not np.array_equal(frame[100, 200:215], photo[100, 200:215])


def test_head_frames_of_differing_sizes(painting: Path, heads: Path, tmp_path: Path, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in sorted(heads.iterdir()):
        (mixed / p.name).write_bytes(p.read_bytes())
    Image.fromarray(_head(0, tint=False)[:200]).save(mixed / "h_09.png")
    args = ["frames", "build", str(painting), "--out", str(tmp_path / "o"), "--mode", "blend"]
    assert main([*args, "--heads", str(mixed), "--count", "5"]) == 2
    err = capsys.readouterr().err
    assert "h_09.png" in err and "256x200" in err and "same size" in err
    with pytest.raises(FrameBuildError, match="same size"):
        load_heads(sorted(mixed.iterdir()))


def test_fewer_head_frames_than_count(painting: Path, heads: Path, tmp_path: Path, capsys):
    args = ["frames", "build", str(painting), "--out", str(tmp_path / "o"), "--mode", "blend"]
    assert main([*args, "--heads", str(heads)]) == 2  # default --count 33 > 9 head frames
    err = capsys.readouterr().err
    assert "9 head frames, fewer than --count 33" in err
    assert main([*args]) == 2
    assert "--heads" in capsys.readouterr().err


# Head movements like a face-animation model's (the driving video's head moves a little):
# (dx, dy) pixels per head file h_00 .. h_08.
WOBBLE = [(0, 0), (3, -2), (-2, 5), (2, 4), (-1, -3), (-4, 1), (-3, -4), (5, 0), (1, 2)]


def test_head_shift_finds_a_movement_and_ignores_the_eyes() -> None:
    ref = _head(0, tint=False)
    eyes = eyes_left_to_right(detect_face(ref, "h"))
    for i in (0, 16, 32):  # the eyes look elsewhere in each: still no movement
        assert head_shift(ref, _head(i, tint=False), eyes) == (0, 0)
    for dx, dy in WOBBLE[1:]:
        assert head_shift(ref, shifted(_head(24, tint=True), dx, dy), eyes) == (dx, dy)
    assert head_shift(ref, shifted(ref, 40, 0), eyes) is None  # > 10 % of 256 px
    # shifted(): content moves by (dx, dy); the uncovered edge repeats the border.
    moved = shifted(ref, 3, -2)
    assert moved.shape == ref.shape
    assert (moved[:-2, 3:] == ref[2:, :-3]).all()
    assert (moved[:-2, 0] == ref[2:, 0]).all() and (moved[-1, 3:] == ref[-1, :-3]).all()
    assert shifted(ref, 0, 0) is ref


def _wobbly_heads(folder: Path, moves: list[tuple[int, int]]) -> Path:
    folder.mkdir()
    for n, i in enumerate(SOURCE_FRAMES):
        dx, dy = moves[PERM[n]]
        Image.fromarray(shifted(_head(i, tint=False), dx, dy)).save(folder / f"h_{PERM[n]:02d}.png")
    return folder


def test_blend_holds_a_wobbling_head_still(painting: Path, tmp_path: Path) -> None:
    wobbly = _wobbly_heads(tmp_path / "wobbly", WOBBLE)
    args = ["frames", "build", str(painting), "--mode", "blend", "--heads", str(wobbly)]
    box = ["--head-box", "150,40,300,190", "--no-colour-match", "--count", "5"]
    assert main([*args, "--out", str(tmp_path / "still"), *box]) == 0
    assert main([*args, "--out", str(tmp_path / "raw"), *box, "--no-stabilise"]) == 0
    b = tomllib.loads((tmp_path / "still" / "frames.toml").read_text())["build"]
    # Each picked head's movement against the first file (h_00) was found (from the face
    # mesh's still points, to within a pixel on these 256-pixel heads) and undone.
    for move, name in zip(b["head_moves"], b["head_frames"], strict=True):
        dx, dy = WOBBLE[int(name[2:4])]
        assert abs(move[0] - dx) <= 1.2 and abs(move[1] - dy) <= 1.2, (name, move)
        assert abs(move[2]) < 0.5 and abs(move[3] - 1.0) < 0.01
    assert b["unaligned"] == [] and b["stabilise"] is True

    def wobble(folder: Path) -> float:
        """Median over frames of the mean difference to the rest frame, away from the eyes."""
        fs = FrameSet.load(folder)
        region = (slice(130, 190), slice(150, 300))  # nose, mouth, chin: below the eyes
        rest = fs.frame(fs.rest_index)[region].astype(float)
        moved = [np.abs(fs.frame(i)[region] - rest).mean() for i in range(fs.count)]
        return float(np.median(moved))

    still, raw = wobble(tmp_path / "still"), wobble(tmp_path / "raw")
    print(f"wobble: still {still:.2f}, raw {raw:.2f} grey levels")
    # Not zero: the fitted move is sub-pixel, and resampling by it softens a little.
    assert still < 1.0 and raw > 5.0, (still, raw)


def test_a_head_moved_too_far_is_left_and_named(
    painting: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every head frame but the first is 30 px (> 10 % of 256) to the right: not a wobble.
    wobbly = _wobbly_heads(tmp_path / "far", [(0, 0)] + [(30, 0)] * 8)
    out = tmp_path / "o"
    args = ["frames", "build", str(painting), "--mode", "blend", "--heads", str(wobbly)]
    assert main([*args, "--out", str(out), "--head-box", "150,40,300,190", "--count", "5"]) == 0
    b = tomllib.loads((out / "frames.toml").read_text())["build"]
    moved = [n for n in b["head_frames"] if n != "h_00.png"]
    assert moved and b["unaligned"] == moved
    assert all(m == [0.0, 0.0, 0.0, 1.0] for m in b["head_moves"])
    warnings = capsys.readouterr().err.strip().splitlines()
    assert warnings == [
        f"monalisa frames build: warning: {wobbly / n}: moved more than 10 % of its size against "
        "h_00.png, too far to be a wobble: left where it is (look at the contact sheet)"
        for n in moved
    ]


def test_sigmoid_alpha_shape() -> None:
    a = sigmoid_alpha(512, 512)
    assert a[256, 256] == pytest.approx(1.0, abs=1e-6)
    assert a[0].max() == 0.0 and a[:, -1].max() == 0.0
    # The original's curve: half way at k = 180 px from the centre of a 512 head.
    assert a[256, 256 + 180] == pytest.approx(0.5, abs=0.02)
    # Scaled with the head box: same shape at 256 px.
    b = sigmoid_alpha(256, 256)
    assert b[128, 128 + 90] == pytest.approx(0.5, abs=0.03)
    # Steeper j → sharper transition.
    steep = sigmoid_alpha(512, 512, j=0.2)
    assert steep[256, 256 + 150] > a[256, 256 + 150]


def test_pick_even_and_angles() -> None:
    measured = [5.0, -20.0, 0.0, 20.0, -10.0, 12.0, -3.0]
    assert pick_even(measured, 3) == [1, 2, 3]
    assert [round(a, 1) for a in offsets_to_angles([-2.0, 0.0, 2.0], 2.0)] == [-30.0, 0.0, 30.0]


def test_pick_even_is_the_best_increasing_choice() -> None:
    """The dynamic programme matches a brute-force search over every increasing choice."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 10))
        count = int(rng.integers(2, n + 1))
        measured = [round(float(a), 1) for a in rng.uniform(-30, 30, n)]
        picks = pick_even(measured, count)
        values = sorted(set(measured))
        if len(values) < count:
            assert picks is None
            continue
        assert picks is not None and len(picks) == count
        got = [measured[i] for i in picks]
        assert all(b > a for a, b in itertools.pairwise(got))
        targets = np.linspace(values[0], values[-1], count)
        best = min(
            sum(abs(v - t) for v, t in zip(c, targets, strict=True))
            for c in itertools.combinations(values, count)
        )
        assert sum(abs(v - t) for v, t in zip(got, targets, strict=True)) == pytest.approx(best)


def test_a_sweep_with_repeats_still_gives_distinct_frames() -> None:
    """40 head frames over ±20° whose measured gaze is rounded now and then: 33 distinct,
    strictly increasing frames spanning the whole sweep."""
    sweep = np.linspace(-20, 20, 40)
    measured = [float(round(a)) if i % 5 == 0 else float(a) for i, a in enumerate(sweep)]
    picks, angles = picked_angles(measured, 33, Path("h"))
    assert len(set(picks)) == 33 and all(b > a for a, b in itertools.pairwise(angles))
    assert angles[0] == -20.0 and angles[-1] == 20.0


def test_colour_match_moves_statistics() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal([120, 90, 60], [20, 10, 5], (64, 64, 3)).clip(0, 255).astype(np.uint8)
    head = rng.normal([60, 120, 200], [10, 10, 10], (64, 64, 3)).clip(0, 255).astype(np.uint8)
    out = ColourMatch.fit([head], target).apply(head)
    assert np.allclose(out.mean((0, 1)), target.mean((0, 1)), atol=2)


def _copy_heads(heads: Path, folder: Path) -> Path:
    folder.mkdir()
    for p in sorted(heads.iterdir()):
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def test_too_few_gaze_positions_for_count(
    painting: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nine head frames, but only three gazes (each repeated): --count 5 would repeat one."""
    folder = tmp_path / "three"
    folder.mkdir()
    for n in range(9):
        Image.fromarray(_head((0, 16, 32)[n % 3], tint=False)).save(folder / f"h_{n:02d}.png")
    out = tmp_path / "o"
    args = ["frames", "build", str(painting), "--out", str(out), "--mode", "blend"]
    assert main([*args, "--heads", str(folder), "--count", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "9 head frames show only 3 distinct gaze positions" in err
    assert "--count 5" in err and "smaller --count, e.g. --count 3" in err
    assert not out.exists()
    # The suggestion works.
    assert main([*args, "--heads", str(folder), "--count", "3"]) == 0
    assert len(set(FrameSet.load(out).angles or ())) == 3


def test_picked_angles() -> None:
    measured = [5.0, -20.0, 0.0, 20.0, -10.0, 12.0, -3.0]
    assert picked_angles(measured, 3, Path("h")) == ([1, 2, 3], [-20.0, 0.0, 20.0])
    # Gaps: --count 4 would pick the frame at 0° twice.
    with pytest.raises(FrameBuildError, match=r"only 3 distinct .* e.g. --count 3"):
        picked_angles([-20.0, 0.0, 20.0, 20.0], 4, Path("h"))
    # Distinct picks whose angles are equal as written to frames.toml (4 decimals).
    with pytest.raises(FrameBuildError, match=r"only 3 distinct .* e.g. --count 3"):
        picked_angles([-10.0, 0.00001, 0.00002, 10.0], 4, Path("h"))
    # A repeat is named, with what to do.
    with pytest.raises(FrameBuildError, match=r"b.png repeats the gaze of a.png.*--count 2"):
        picked_angles([-20.0, -20.0, 20.0], 3, Path("h"), ["a.png", "b.png", "c.png"])
    # Enough positions but bunched on one side: a jump over most of the sweep is refused.
    with pytest.raises(
        FrameBuildError, match=r"jumps 36.0° .*\(-16.0° .. \+20.0°\).*fills that gap$"
    ):
        picked_angles([-20.0, -19.0, -18.0, -17.0, -16.0, 20.0], 5, Path("h"))


def test_an_uneven_sweep_is_used_as_given_and_reported() -> None:
    """33 gazes, dense in the middle and up to 3.3 even steps apart at the ends (the rule
    before refused more than 3): all used, in gaze order, and the unevenness reported."""
    steps = 0.6 + 6.375 * np.abs((np.arange(32) + 0.5 - 16) / 16) ** 4
    sweep = np.concatenate([[0.0], np.cumsum(steps)]) - 30.0
    order = np.random.default_rng(2).permutation(33)
    measured = [float(sweep[k]) for k in order]
    picks, angles = picked_angles(measured, 33, Path("h"))
    assert sorted(picks) == list(range(33))
    assert angles == sorted(measured)
    line = uneven_sweep(angles, Path("h"))
    assert line is not None and "\n" not in line and "0.60° to 6.2" in line
    assert uneven_sweep(list(np.linspace(-30.0, 30.0, 33)), Path("h")) is None


def test_head_frame_without_a_face(
    painting: Path, heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy_heads(heads, tmp_path / "heads")
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(folder / "h_04.png")
    args = ["frames", "build", str(painting), "--out", str(tmp_path / "o"), "--mode", "blend"]
    assert main([*args, "--heads", str(folder), "--count", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "h_04.png: no face found in this head frame" in err
    assert "clearer head frames" in err
    assert "--eyes" not in err  # the painting's remedy does not apply to a head frame


def test_painting_without_a_face_suggests_head_box(
    heads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((400, 400, 3), 128, np.uint8)).save(wall)
    args = ["frames", "build", str(wall), "--out", str(tmp_path / "o"), "--mode", "blend"]
    assert main([*args, "--heads", str(heads), "--count", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "wall.png: no face found in the painting" in err
    assert "--head-box X0,Y0,X1,Y1" in err and "--eyes X1,Y1,X2,Y2" in err
