"""The whole appliance loop: frames per second, per-stage ms and camera-to-screen latency.

Runs the real pipeline in this process the way ``monalisa run --camera replay:DIR --display
headless --replay-speed max --trace T`` does (replay camera on its capture thread, finder,
BlazeFace, gaze, the pygame display with SDL's dummy driver), for 1 and 2 detector threads
and for two cameras:

* ``640x480 whole``: the bundled demo clip with one whole-frame inference per frame (a small,
  close install; the original project's way);
* ``1280x720 band``: a clip of a visitor crossing the room rendered as the default Camera
  Module 3 stream (16:9, 66°), with the gallery default finder (head-band tiles + follow crop).

Printed per case: processed frames per second of the steady loop (the clip is run once and
then played four times over; the extra frames over the extra wall time, so start-up and
shut-down cancel out), start-up + shut-down seconds, mean inferences per frame, and the
median and 95th percentile ms of each stage — capture (how old the newest frame was when the
loop took it), detect (finder + all inferences), gaze, draw — and of the latency from a
frame's arrival (the moment the capture thread had it) to the end of the ``show()`` that drew
its result. The 2-thread row's fps is also given as a ratio to the 1-thread row of the same
camera (the peer measured in the same run).

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

from appliance.camera import CLIP_FILE, ClipFile
from appliance.config import parse_config
from appliance.runner import DEMO_CLIP, run

STAGES = ("capture", "detect", "gaze", "draw", "latency")
REPEAT = 4
"""The long run plays the clip this many times; the short run once."""


def make_room_clip(directory: Path) -> Path:
    """A 1280×720 clip (66° camera, 15 fps): a visitor crosses the room 2.5 m away, stands."""
    from tests.support.sim import (
        CameraGeometry,
        Renderer,
        astronaut_photo,
        render_walk,
        walk,
        write_clip,
    )

    geometry = CameraGeometry(width=1280, height=720, hfov_deg=66.0)
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


def repeated(clip: Path, directory: Path, times: int = REPEAT) -> Path:
    """A clip that plays ``clip`` ``times`` times in a row (links to its images, same fps)."""
    images = sorted(p for p in clip.iterdir() if p.name.startswith("frame_"))
    directory.mkdir(parents=True, exist_ok=True)
    for n, src in enumerate(images * times):
        (directory / f"frame_{n:05d}{src.suffix}").symlink_to(src.resolve())
    ClipFile(fps=ClipFile.read(clip / CLIP_FILE).fps).write(directory)
    return directory


def run_once(clip: Path, finder_mode: str, threads: int, workdir: Path) -> tuple[float, list]:
    """Run the appliance over ``clip``; return (wall seconds, trace rows)."""
    config = parse_config(
        {
            "camera": {"source": f"replay:{clip}", "replay_speed": "max"},
            "detector": {"num_threads": threads},
            "finder": {"mode": finder_mode},  # the built-in band: the default stream's
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
    return wall, rows


def measure(
    clip: Path, twice: Path, finder_mode: str, threads: int, workdir: Path
) -> dict[str, float]:
    """Run ``clip`` once and :data:`REPEAT` times over; the difference is the steady loop.

    Start-up (model, frame set, display) and shut-down cost the same in both runs, so the
    extra frames of the second run over its extra wall time is the loop's own rate.
    """
    wall1, rows1 = run_once(clip, finder_mode, threads, workdir)
    wall2, rows2 = run_once(twice, finder_mode, threads, workdir)
    extra_frames = len(rows2) - len(rows1)
    fps = extra_frames / max(wall2 - wall1, 1e-9)
    out: dict[str, float] = {
        "frames": float(len(rows2)),
        "fps": fps,
        "startup_s": max(wall1 - len(rows1) / fps, 0.0),
        "inferences": statistics.fmean(r.get("inferences", 1) for r in rows2),
    }
    for stage in STAGES:
        vals = [float(r["ms"][stage]) for r in rows2]
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
        cases = [("640x480 whole", DEMO_CLIP, "whole"), ("1280x720 band", room, "band")]
        twice = {
            name: repeated(clip, work / f"twice-{k}") for k, (name, clip, _m) in enumerate(cases)
        }
        print(
            f"{'camera, finder':<16} {'thr':>3} {'frames':>6} {'fps':>6} {'×1thr':>6} "
            f"{'start s':>7} {'inf/fr':>6}  " + "  ".join(f"{s + ' p50/p95':>16}" for s in STAGES)
        )
        for name, clip, mode in cases:
            base_fps = None
            for threads in (1, 2):
                runs = [
                    measure(clip, twice[name], mode, threads, work) for _ in range(args.repeats)
                ]
                row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                base_fps = row["fps"] if base_fps is None else base_fps
                print(
                    f"{name:<16} {threads:>3} {row['frames']:>6.0f} {row['fps']:>6.1f} "
                    f"{row['fps'] / base_fps:>6.2f} "
                    f"{row['startup_s']:>7.2f} "
                    f"{row['inferences']:>6.2f}  "
                    + "  ".join(f"{row[s + '_p50']:>7.2f}/{row[s + '_p95']:<8.2f}" for s in STAGES),
                    flush=True,
                )
    print(
        f"\nfps: the steady loop, from a run of the clip and a run of it played {REPEAT}× (extra"
        "\nframes / extra wall time); start s: start-up + shut-down of one run; capture: how"
        "\nold the newest frame was when the loop took it (the capture thread decodes meanwhile);"
        "\nlatency: from the capture thread's arrival of a frame to the end of the show() that"
        "\ndrew its result. A capture p50 near 0 means the loop waited for the camera: the"
        "\nreplay decodes JPEGs on its thread, which on a 2-core machine competes with 2"
        "\ninterpreter threads (a Pi's ISP delivers frames without that cost)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
