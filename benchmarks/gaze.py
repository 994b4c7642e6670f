"""Cost of one gaze update (µs, median) for each policy and filter, 1 and 3 faces.

Each configuration runs the same recorded input: visitors put through the pinhole model of a
640×480 camera with 2-px noise, 30 frames/s of clip clock, walking slowly so the viewer
choice, filter and hysteresis all work. The peer, measured in the same run, is the original
web version's way (``mode = "linear"``, no filter, no hysteresis) with one face: the ratio
says what the geometry, smoothing and viewer tracking cost on top of it. The camera loop's
budget at 30 frames/s is 33 333 µs per frame.

Run: ``.venv/bin/python benchmarks/gaze.py [--updates N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config import CameraConfig, GazeConfig
from appliance.gaze import Gaze
from appliance.gaze.geometry import Camera, even_angles, face_at
from appliance.types import Box, Face, Point

W, H, FPS = 640, 480, 30.0
ANGLES = even_angles(33, 30.0)


def frames(n: int, visitors: int, seed: int = 0) -> list[list[Face]]:
    """``n`` frames of ``visitors`` slowly walking visitors with 2-px noise."""
    rng = random.Random(seed)
    cam = Camera()
    out = []
    for i in range(n):
        t = i / FPS
        faces = []
        for v in range(visitors):
            z = 1500.0 + 900.0 * v
            x = z * math.tan(math.radians(25 * math.sin(0.2 * t + v * 2.1)))
            f = face_at(x, z, (W, H), cam)
            kps = tuple(Point(p.x + rng.gauss(0, 2), p.y + rng.gauss(0, 2)) for p in f.keypoints)
            b = f.box
            box = Box(*(c + rng.gauss(0, 2) for c in (b.x0, b.y0, b.x1, b.y1)))
            faces.append(Face(box, 0.9, kps))  # type: ignore[arg-type]
        if rng.random() < 0.03:
            faces = []  # a missed detection now and then
        out.append(faces)
    return out


def measure(cfg: GazeConfig, inputs: list[list[Face]], repeats: int) -> float:
    """Median µs of one update, over every update of ``repeats`` runs of the whole input."""
    times: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        g = Gaze(cfg, CameraConfig(), ANGLES, 16)
        for i, faces in enumerate(inputs):
            t0 = clock()
            g.update(faces, i / FPS, (W, H))
            times.append(clock() - t0)
    return statistics.median(times) / 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=3000, help="updates per run (default 3000)")
    ap.add_argument("--repeats", type=int, default=7, help="runs per configuration (median)")
    args = ap.parse_args()
    inputs = {n: frames(args.updates, n) for n in (1, 3)}
    peer = measure(
        GazeConfig(mode="linear", filter="none", hysteresis=0.0), inputs[1], args.repeats
    )
    print(
        f"gaze update cost, {platform.python_implementation()} {platform.python_version()} "
        f"on {platform.machine()}; median µs of {args.updates} updates × {args.repeats} runs"
    )
    print(f"peer: linear mode, no filter, no hysteresis, 1 face: {peer:.1f} µs\n")
    print(f"{'policy':<8} {'filter':<9} {'1 face µs':>10} {'× peer':>7} {'3 faces µs':>11}")
    for policy in ("sticky", "nearest", "central"):
        for filt in ("one_euro", "exp", "none"):
            cfg = GazeConfig(policy=policy, filter=filt)
            one = measure(cfg, inputs[1], args.repeats)
            three = measure(cfg, inputs[3], args.repeats)
            print(f"{policy:<8} {filt:<9} {one:>10.1f} {one / peer:>7.2f} {three:>11.1f}")
    idle = measure(GazeConfig(glance=True), [[] for _ in range(args.updates)], args.repeats)
    print(f"\nnobody there (idle, glances on): {idle:.1f} µs per update")
    return 0


if __name__ == "__main__":
    sys.exit(main())
