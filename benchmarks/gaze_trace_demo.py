"""A visitor walks past, stands, and leaves: simulated through Gaze, traced and plotted.

The visitor is a face put through the pinhole model (``face_at``) of a 640×480, 66° camera
at 30 frames/s, with 2-px Gaussian noise on every keypoint and box edge and 5 % missed
detections. Timeline (clip clock):

* 0-2 s: nobody (idle at rest);
* 2-5 s: the visitor walks in from the visitor's left, 2.5 m from the wall, at 0.8 m/s;
* 5-13 s: stands, shifting their weight a little;
* 13-15.5 s: walks on out of view to the visitor's right;
* 15.5-22 s: nobody: the eyes hold, then ease back to rest.

Writes the trace in the appliance's format (one JSON line per camera frame, as ``monalisa run
--trace`` does) and plots it with ``monalisa trace plot``'s code.

Run: ``.venv/bin/python benchmarks/gaze_trace_demo.py [--out /tmp/gaze_trace.png]
[--trace /tmp/gaze_trace.jsonl] [--config FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config import Config, load_config
from appliance.gaze import Gaze
from appliance.gaze.geometry import even_angles, face_at
from appliance.traceplot import load_trace, plot_trace
from appliance.types import Box, Face, Point

W, H, FPS = 640, 480, 30.0
Z_MM = 2500.0


def visitor_x_mm(t: float) -> float | None:
    """The visitor's lateral position (mm, + = visitor's right) at time t, or None if absent."""
    if t < 2.0 or t >= 15.5:
        return None
    if t < 5.0:
        return -1900.0 + 800.0 * (t - 2.0)  # walking in from the visitor's left
    if t < 13.0:
        return 500.0 + 60.0 * math.sin(2 * math.pi * (t - 5.0) / 5.0)  # standing, swaying
    return 500.0 + 800.0 * (t - 13.0)  # walking on, out to the visitor's right


def jitter(face: Face, rng: random.Random, sigma: float = 2.0) -> Face:
    kps = tuple(Point(p.x + rng.gauss(0, sigma), p.y + rng.gauss(0, sigma)) for p in face.keypoints)
    b = face.box
    box = Box(*(v + rng.gauss(0, sigma) for v in (b.x0, b.y0, b.x1, b.y1)))
    return Face(box, face.score, kps)  # type: ignore[arg-type]


def simulate(config: Config, trace_path: Path, seed: int = 1) -> None:
    angles = even_angles(33, 30.0)
    gaze = Gaze(config.gaze, config.camera, angles, 16)
    rng = random.Random(seed)
    with trace_path.open("w", encoding="utf-8") as out:
        for seq in range(round(22.0 * FPS)):
            t = seq / FPS
            faces: list[Face] = []
            x = visitor_x_mm(t)
            if x is not None and rng.random() > 0.05:
                face = jitter(face_at(x, Z_MM, (W, H), gaze.camera), rng)
                if 0 <= face.eye_mid.x <= W:
                    faces.append(face)
            t0 = time.perf_counter()
            rec = gaze.update(faces, t, (W, H))
            gaze_ms = (time.perf_counter() - t0) * 1000.0
            row = {
                "t": round(t, 4),
                "seq": seq,
                "faces": [
                    {
                        "box": f.box.as_list(),
                        "score": round(f.score, 4),
                        "eyes": [f.right_eye.as_list(), f.left_eye.as_list()],
                    }
                    for f in faces
                ],
                "viewer": rec.viewer,
                "angle_raw": None if rec.angle_raw is None else round(rec.angle_raw, 3),
                "angle": round(rec.angle, 3),
                "index": rec.index,
                "frame_count": len(angles),
                "state": rec.state,
                "inferences": 1,
                "ms": {"gaze": round(gaze_ms, 4)},
            }
            out.write(json.dumps(row) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/gaze_trace.png", help="plot image")
    ap.add_argument("--trace", default="/tmp/gaze_trace.jsonl", help="trace file to write")
    ap.add_argument("--config", help="TOML config ([gaze], [camera]); default: built-in")
    args = ap.parse_args()
    config = load_config(args.config)
    config.camera.width, config.camera.height = W, H
    trace_path = Path(args.trace)
    simulate(config, trace_path)
    trace = load_trace(trace_path)
    plot_trace(
        trace,
        args.out,
        title="Simulated visitor walks past, stands, leaves (2.5 m, 2-px noise, 5 % misses)",
    )
    print(f"{trace_path}: {len(trace)} lines; plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
