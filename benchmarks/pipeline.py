"""The whole appliance loop: frames per second, per-stage ms and camera-to-screen latency.

Runs the real pipeline in this process the way ``monalisa run --camera replay:DIR --display
headless --replay-speed max --trace T`` does (replay camera on its capture thread, finder,
BlazeFace, gaze, the pygame display with SDL's dummy driver), for 1 and 2 detector threads
and for two cameras:

* ``640x480 whole``: the bundled demo clip with one whole-frame inference per frame (a small,
  close install; the original project's way);
* ``1280x960 band``: a clip of a visitor crossing the room rendered at Camera Module 3's
  detector resolution, with the gallery default finder (head-band tiles + follow crop).

Printed per run, from the trace the run wrote: processed frames per second (trace lines /
wall time from the first to the last processed frame, so start-up is left out), start-up
seconds, mean inferences per frame, and the median and 95th percentile ms of each stage —
capture (waiting for the newest frame), detect (finder + all inferences), gaze, draw — and of
the latency from a frame's arrival (the moment the capture thread had it) to the end of the
``show()`` that drew its result. The 2-thread row's fps is also given as a ratio to the
1-thread row of the same camera (the peer measured in the same run).

Run: ``.venv/bin/python benchmarks/pipeline.py [--repeats N]`` (in ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config import parse_config
from appliance.runner import DEMO_CLIP, run

STAGES = ("capture", "detect", "gaze", "draw", "latency")


def make_room_clip(directory: Path) -> Path:
    """A 1280×960 clip (66° camera, 15 fps): a visitor crosses the room 2.5 m away, stands."""
    from appliance.sim import (
        CameraGeometry,
        Renderer,
        astronaut_photo,
        render_walk,
        walk,
        write_clip,
    )

    geometry = CameraGeometry(width=1280, height=960, hfov_deg=66.0)
    poses = walk(geometry, 2.5, fps=15.0, speed_mps=0.8, stand_s=3.0, stand_x_m=0.3, leave_s=1.0)
    write_clip(
        directory,
        render_walk(Renderer(astronaut_photo(), geometry, seed=3), poses),
        15.0,
        image_format="jpg",
    )
    return directory


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0-1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(clip: Path, finder_mode: str, threads: int, workdir: Path) -> dict[str, float]:
    """Run the appliance over ``clip`` once and summarise its trace."""
    config = parse_config(
        {
            "camera": {"source": f"replay:{clip}", "replay_speed": "max"},
            "detector": {"num_threads": threads},
            "finder": {"mode": finder_mode},
            "display": {"driver": "headless"},
            "service": {"status_file": str(workdir / "status.json")},
        },
        "benchmark",
    )
    trace = workdir / "trace.jsonl"
    trace.unlink(missing_ok=True)
    started = time.perf_counter()
    status = run(config, trace=trace)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"the run over {clip} exited {status}")
    rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line]
    # The loop's own time: per frame, waiting for the newest camera frame plus detect, gaze
    # and draw. What the run took beyond that is start-up (model, frame set, display) and
    # shut-down; both are reported, and the fps leaves them out.
    busy_s = sum(sum(r["ms"][s] for s in STAGES[:4]) for r in rows) / 1000.0
    out: dict[str, float] = {
        "frames": float(len(rows)),
        "fps": len(rows) / busy_s,
        "wall_fps": len(rows) / wall,
        "startup_s": max(wall - busy_s, 0.0),
        "inferences": statistics.fmean(r.get("inferences", 1) for r in rows),
    }
    for stage in STAGES:
        vals = [float(r["ms"][stage]) for r in rows]
        out[f"{stage}_p50"] = statistics.median(vals)
        out[f"{stage}_p95"] = percentile(vals, 0.95)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per row; the median is shown")
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="monalisa-pipeline-") as tmp:
        work = Path(tmp)
        room = make_room_clip(work / "room")
        cases = [("640x480 whole", DEMO_CLIP, "whole"), ("1280x960 band", room, "band")]
        print(
            f"{'camera, finder':<16} {'thr':>3} {'frames':>6} {'fps':>6} {'×1thr':>6} "
            f"{'wall':>6} {'start s':>7} {'inf/fr':>6}  "
            + "  ".join(f"{s + ' p50/p95':>16}" for s in STAGES)
        )
        for name, clip, mode in cases:
            base_fps = None
            for threads in (1, 2):
                runs = [measure(clip, mode, threads, work) for _ in range(args.repeats)]
                row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                base_fps = row["fps"] if base_fps is None else base_fps
                print(
                    f"{name:<16} {threads:>3} {row['frames']:>6.0f} {row['fps']:>6.1f} "
                    f"{row['fps'] / base_fps:>6.2f} {row['wall_fps']:>6.1f} "
                    f"{row['startup_s']:>7.2f} "
                    f"{row['inferences']:>6.2f}  "
                    + "  ".join(f"{row[s + '_p50']:>7.2f}/{row[s + '_p95']:<8.2f}" for s in STAGES),
                    flush=True,
                )
    print(
        "\nfps: frames / (sum of per-frame capture+detect+gaze+draw time); wall: frames / the"
        "\nwhole run's wall time; start s: the difference (start-up, shut-down, trace writes);"
        "\nlatency: from the capture thread's arrival of a frame to the end of the show() that"
        "\ndrew its result (with --replay-speed max the camera is never the bottleneck)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
