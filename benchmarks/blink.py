"""Rows and blinks (issue 25): what the default grid costs and how its blinks and rows measure.

For each portrait (two painting-like ones, ``tests/data/paintinglike.py``, and the astronaut
photo), two builds, each timed in this process (median of ``--repeats``): the default grid
(33 gazes x 5 rows x 4 lid phases) and its peer, one level row of open eyes
(``--rows 1 --lid-phases 1``, the set before this issue). Printed: build seconds and their
ratio, the set on disk (``base.png`` + ``patches/`` + ``frames.toml``) and in memory
(:meth:`FrameSet.memory_bytes`), and the issue's measurements on the grid at the rest gaze:

* ``cover``: how far the shut phase moves the mean grey of the iris disc (0.8 radius) toward
  the lid skin's above it (a 0.5-radius disc 1.8 radii above the iris centre, in the painting),
  per eye (issue: >= 0.6);
* ``mesh``: our face mesh's lid opening on the shut frame over the open frame's, per eye;
  ``mediapipe``: the same by MediaPipe's own face mesh with refined eyes (``.venv-mp``), the
  issue's measure (<= 0.5);
* ``rho``, ``mediapipe rho``: Spearman correlation of the iris height (our mesh's, MediaPipe's)
  with the rows' pitch, per eye (issue: >= 0.9).

Run: ``.venv/bin/python benchmarks/blink.py [--repeats 3]``. ``--artist-crop PNG`` instead
writes the artist page's crop of the default set (``frames/``): the rest gaze open, lids at 0.67,
shut, the lowest and the highest row (``docs/img/framebuild_blink_rows.png``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from appliance.framebuild.build import BuildOptions, build_synthesize
from appliance.framebuild.eyemodel import face_mesh, opening_from
from appliance.frames import FrameSet
from tests.data import paintinglike as pl
from tests.support.mediapipe_coords import REPO, run_mediapipe


def _grey(image: np.ndarray) -> np.ndarray:
    out: np.ndarray = image.astype(np.float64).mean(axis=2)
    return out


def _disc(shape: tuple[int, ...], x: float, y: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    mask: np.ndarray = np.hypot(xs - x, ys - y) <= r
    return mask


def _rank(values: list[float]) -> np.ndarray:
    out: np.ndarray = np.argsort(np.argsort(values)).astype(float)
    return out


def _timed_build(src: Path, out: Path, one_row: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        opts = BuildOptions(src, out, count=33, force=True)
        if one_row:
            opts.rows, opts.lid_phases = 1, 1
        t0 = time.perf_counter()
        build_synthesize(opts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.name != "contact_sheet.png")


def measure(painting: np.ndarray, fs: FrameSet) -> dict[str, list[float]]:
    """The issue's three measurements on a grid set (see the module's text)."""
    g = fs.grid
    gaze, row = g.rest_gaze, g.rest_row
    opened, shut = fs.frame(g.index(gaze, row, 0)), fs.frame(g.index(gaze, row, 3))
    b = fs.build
    cover = []
    for side in (0, 1):
        ix, iy = b["iris_centres"][2 * side], b["iris_centres"][2 * side + 1]
        r = b["iris_radii"][side]
        iris, skin = (
            _disc(opened.shape, ix, iy, 0.8 * r),
            _disc(opened.shape, ix, iy - 1.8 * r, 0.5 * r),
        )
        go, gs, gk = (
            _grey(opened)[iris].mean(),
            _grey(shut)[iris].mean(),
            _grey(painting)[skin].mean(),
        )
        cover.append(round(float((gs - go) / (gk - go)), 2))
    mo, ms = face_mesh().find_face(opened), face_mesh().find_face(shut)
    mesh = []
    for side in (0, 1):
        if mo is None or ms is None:
            mesh.append(float("nan"))
            continue
        a, c = opening_from(mo.eyes[side]), opening_from(ms.eyes[side])
        mesh.append(round((c.up + c.down) / (a.up + a.down), 2))
    heights: list[list[float]] = [[], []]
    for r_ in range(len(g.pitches)):
        marks = face_mesh().find_face(fs.frame(g.index(gaze, r_, 0)))
        for side in (0, 1):
            heights[side].append(np.nan if marks is None else -marks.eyes[side].iris.y)
    rho = [round(float(np.corrcoef(_rank(h), _rank(list(g.pitches)))[0, 1]), 2) for h in heights]
    # MediaPipe's own face mesh (refined eyes, in .venv-mp): the measure.
    images = {f"row{r}": fs.frame(g.index(gaze, r, 0)) for r in range(len(g.pitches))}
    images["shut"] = shut
    with tempfile.TemporaryDirectory() as tmp:
        report = run_mediapipe(REPO / "tests" / "data" / "mp_face_mesh.py", images, Path(tmp))
    rows = [report[f"row{r}"]["refined"] for r in range(len(g.pitches))]
    mp_mesh, mp_rho = [], []
    for (up, down), centre in (((159, 145), 468), ((386, 374), 473)):
        a = np.hypot(*np.subtract(rows[row][up], rows[row][down]))
        c = np.hypot(*np.subtract(report["shut"]["refined"][up], report["shut"]["refined"][down]))
        mp_mesh.append(round(float(c / a), 2))
        ys = [-r[centre][1] for r in rows]
        mp_rho.append(round(float(np.corrcoef(_rank(ys), _rank(list(g.pitches)))[0, 1]), 2))
    return {"cover": cover, "mesh": mesh, "rho": rho, "mediapipe": mp_mesh, "mediapipe rho": mp_rho}


def artist_crop(folder: Path, out: Path, scale: int = 4) -> None:
    """The default set's blink and rows around the eyes, ``scale``× enlarged and labelled."""
    fs = FrameSet.load(folder)
    g = fs.grid
    gaze, row, last = g.rest_gaze, g.rest_row, len(g.lid_phases) - 1
    shown = [
        (g.index(gaze, row, 0), "open (rest)"),
        (g.index(gaze, row, last - 1), f"lids {g.lid_phases[last - 1]:.2f}"),
        (g.index(gaze, row, last), "shut"),
        (g.index(gaze, 0, 0), f"row {g.pitches[0]:+.0f}°"),
        (g.index(gaze, len(g.pitches) - 1, 0), f"row {g.pitches[-1]:+.0f}°"),
    ]
    b = fs.head_box
    cx, cy = 0.5 * (b.x0 + b.x1), 0.5 * (b.y0 + b.y1)
    w, h = 92, 44  # image pixels around the eyes
    x0, y0 = int(cx - w / 2), int(cy - h / 2)
    tw, th, pad, label = w * scale, h * scale, 8, 20
    sheet = Image.new("RGB", (3 * tw + 4 * pad, 2 * (th + label) + 3 * pad), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for k, (i, text) in enumerate(shown):
        crop = Image.fromarray(fs.frame(i)[y0 : y0 + h, x0 : x0 + w])
        x, y = pad + (k % 3) * (tw + pad), pad + (k // 3) * (th + label + pad)
        sheet.paste(crop.resize((tw, th), Image.Resampling.LANCZOS), (x, y))
        draw.text((x, y + th + 4), f"frame {i}: {text}", fill=(230, 230, 230))
    sheet.save(out, optimize=True)


def main() -> None:
    """Print one block per portrait."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--artist-crop", type=Path, help="write the artist page's crop and stop")
    args = parser.parse_args()
    if args.artist_crop:
        artist_crop(Path(__file__).resolve().parents[1] / "frames", args.artist_crop)
        return
    portraits = {
        "hopper (painting-like)": pl.painting("hopper"),
        "astronaut (painting-like)": pl.painting("astronaut"),
        "astronaut (photo)": np.ascontiguousarray(data.astronaut()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, painting in portraits.items():
            src = Path(tmp) / "p.png"
            Image.fromarray(painting).save(src)
            grid_dir, row_dir = Path(tmp) / "grid", Path(tmp) / "row"
            t_grid = _timed_build(src, grid_dir, False, args.repeats)
            t_row = _timed_build(src, row_dir, True, args.repeats)
            fs, one = FrameSet.load(grid_dir), FrameSet.load(row_dir)
            h, w = painting.shape[:2]
            print(f"{name}, {w}x{h}:")
            print(
                f"  build: grid {fs.count} frames {t_grid:.1f} s, one row {one.count} frames "
                f"{t_row:.1f} s ({t_grid / t_row:.1f}x)"
            )
            print(
                f"  disk: grid {_disk(grid_dir) / 1e6:.2f} MB, one row "
                f"{_disk(row_dir) / 1e6:.2f} MB;"
                f" memory: grid {fs.memory_bytes() / 2**20:.1f} MiB, one row "
                f"{one.memory_bytes() / 2**20:.1f} MiB"
            )
            print(f"  measured (eye 0, eye 1): {measure(painting, fs)}")


if __name__ == "__main__":
    main()
