"""A Pi's compute budget: detector work per second of gallery time, per room and finder mode.

Synthetic 1280×720 clips at 30 fps (tests.support.sim: the default Camera Module 3 stream, 66°,
camera 1.75 m up, the built-in head band 0.30-0.90) of the rooms a gallery sees:

* ``empty``: nobody there (sensor noise only);
* ``walk-in 4.5m``: one visitor walks in at 4.5 m, stands, walks out;
* ``still 1m``: one visitor standing 1 m away (head sway only);
* ``track 3.5m``: one visitor standing 3.5 m away;
* ``close 0.5-1m``: one visitor standing at 0.5, 0.75 and 1.0 m, and one crossing at 0.75 m
  (a clip each, pooled);
* ``newcomer``: one visitor standing 3.5 m away, joined after 1 s by one walking in at 2.5 m;
* ``four``: four visitors crossing at 1.5, 2.5, 3.5 and 4.5 m.

Every frame goes, in one process and in turn, through three finders each followed by its own
gaze model exactly as the app chains them (the gaze record's follow is the next frame's follow
target): ``old`` (``cadence = "frame"``: ``inferences_per_frame`` every frame, the behaviour before
the room cadence), ``new`` (the built-in ``[finder]``) and ``whole`` (one whole-frame
inference per frame). Printed per room and mode: inferences per gallery-second, detector
milliseconds per gallery-second (the finder's wall time; noisy, so also as a ratio to the
whole-frame mode measured on the same frames), the fraction of frames where the (first)
visitor is found (eye midpoint within ``max(3 px, 0.2 eye distances)`` of the truth) and the
delay from a newcomer's first frame in view to its first detection.

Then (not with ``--quick`` or ``--rooms``) the CPU of ``monalisa run`` at real-time replay
(``--display headless``) of an empty room per mode, read per thread from ``/proc`` once it runs:
the capture thread (the replay's JPEG decoding, which a Pi's ISP spares it) apart from the rest,
and the rest plus what a Pi's capture thread does instead (one buffer copy per frame, measured
here).

Run:  .venv/bin/python -m benchmarks.budget            (~10 min here; in ``make bench``)
      .venv/bin/python -m benchmarks.budget --quick    (short clips, no CPU run)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from appliance.camera import CLIP_FILE, ClipFile
from appliance.config import CameraConfig, FinderConfig, GazeConfig
from appliance.detector import Detector
from appliance.finder import Finder
from appliance.gaze import Gaze
from appliance.types import Follow
from benchmarks.range import match
from tests.support.sim import (
    CameraGeometry,
    EyeTruth,
    Renderer,
    Visitor,
    astronaut_photo,
    walk,
    write_clip,
)

FPS = 30.0
GEOMETRY = CameraGeometry(width=1280, height=720, hfov_deg=66.0)
MODES: dict[str, FinderConfig] = {
    "old": FinderConfig(cadence="frame", follow_model="full", follow_found=False),
    "new": FinderConfig(),
    "whole": FinderConfig(mode="whole"),
}
"""The finder configurations compared ('old' reproduces the cadence before the room cadence)."""

Poses = list[list[Visitor]]


def standing(distance_m: float, seconds: float, x_m: float = 0.1) -> Poses:
    """One visitor standing ``distance_m`` away, swaying 1.5 cm with a 2 s period."""
    n = round(seconds * FPS)
    return [
        [Visitor(x_m + 0.015 * math.sin(2 * math.pi * i / (2 * FPS)), distance_m)] for i in range(n)
    ]


def walking(distance_m: float, stand_s: float, lead_s: float = 0.0) -> Poses:
    """One visitor crossing at ``distance_m``, after ``lead_s`` seconds of empty room."""
    poses = walk(GEOMETRY, distance_m, fps=FPS, stand_s=stand_s)
    return [[] for _ in range(round(lead_s * FPS))] + [[p] if p else [] for p in poses]


def four(stand_s: float) -> Poses:
    """Four visitors crossing at 1.5, 2.5, 3.5 and 4.5 m at once (the clip as long as the
    longest walk; the shorter ones have left by then)."""
    walks = [walk(GEOMETRY, d, fps=FPS, stand_s=stand_s) for d in (1.5, 2.5, 3.5, 4.5)]
    n = max(len(w) for w in walks)
    return [[p for w in walks if i < len(w) and (p := w[i]) is not None] for i in range(n)]


def newcomer(seconds: float) -> Poses:
    """A visitor standing 3.5 m away, joined after 1 s by one walking in at 2.5 m."""
    first = standing(3.5, seconds)
    second = walking(2.5, stand_s=seconds, lead_s=1.0)[: len(first)]
    return [a + b for a, b in zip(first, second, strict=False)]


def scenarios(quick: bool) -> dict[str, list[Poses]]:
    """The rooms, each as one or more clips (lists of per-frame visitor poses)."""
    s = 2.0 if quick else 8.0
    return {
        "empty": [[[] for _ in range(round(s * FPS))]],
        "walk-in 4.5m": [walking(4.5, stand_s=1.0 if quick else 3.0, lead_s=1.0)],
        "still 1m": [standing(1.0, s)],
        "track 3.5m": [standing(3.5, s)],
        "close 0.5-1m": [
            *(standing(d, s / 2) for d in (0.5, 0.75, 1.0)),
            walking(0.75, stand_s=1.0),
        ],
        "newcomer": [newcomer(3.0 if quick else s)],
        "four": [four(stand_s=0.5 if quick else 2.0)],
    }


@dataclass
class Tally:
    """One finder mode's figures over a room's clips."""

    seconds: float = 0.0
    inferences: int = 0
    short: int = 0
    """Of ``inferences``, those of the short-range model (the follow crop)."""
    ms: float = 0.0
    frames_with_visitor: int = 0
    found: int = 0
    first_delay_s: list[float] = field(default_factory=list)

    @property
    def found_rate(self) -> float | None:
        return self.found / self.frames_with_visitor if self.frames_with_visitor else None


@dataclass
class Chain:
    """A finder and a gaze model chained as the app does (the viewer box is the next follow)."""

    finder: Finder
    gaze: Gaze
    follow: Follow | None = None
    first_seen_at: dict[int, float] = field(default_factory=dict)
    detected: set[int] = field(default_factory=set)

    def step(self, frame: np.ndarray, t: float, truths: list[EyeTruth], tally: Tally) -> None:
        t0 = time.perf_counter()
        res = self.finder.find(frame, self.follow, t=t)
        tally.ms += (time.perf_counter() - t0) * 1e3
        rec = self.gaze.update(res.faces, t, (frame.shape[1], frame.shape[0]))
        self.follow = rec.follow
        tally.inferences += res.inferences
        tally.short += res.follow is not None and self.finder.follow_detector is not None
        if truths:
            tally.frames_with_visitor += 1
            tally.found += match(res.faces, truths[0]) is not None
        for k, truth in enumerate(truths):  # visitor k: the k-th in view (none leaves first)
            self.first_seen_at.setdefault(k, t)
            if k not in self.detected and match(res.faces, truth) is not None:
                self.detected.add(k)
                tally.first_delay_s.append(t - self.first_seen_at[k])


def make_finder(config: FinderConfig, detector: Detector, short: Detector) -> Finder:
    """A finder as the runner builds it (the short-range model for a 'short' follow crop)."""
    follow = short if config.mode == "band" and config.follow_model == "short" else None
    return Finder(config, detector, follow_detector=follow)


def run_rooms(
    quick: bool, detector: Detector, short: Detector, rooms: Sequence[str] = ()
) -> dict[str, dict[str, Tally]]:
    """The rooms named (default every room) through every mode; {room: {mode: Tally}}."""
    renderer = Renderer(astronaut_photo(), GEOMETRY, seed=5)
    out: dict[str, dict[str, Tally]] = {}
    for room, clips in scenarios(quick).items():
        if rooms and room not in rooms:
            continue
        tallies = {m: Tally() for m in MODES}
        for clip in clips:
            chains = {
                m: Chain(
                    make_finder(cfg, detector, short), Gaze(GazeConfig(), CameraConfig(), 33, 16)
                )
                for m, cfg in MODES.items()
            }
            for i, poses in enumerate(clip):
                frame, truths = renderer.render(poses)
                t = i / FPS
                for m, chain in chains.items():
                    chain.step(frame, t, truths, tallies[m])
            for tal in tallies.values():
                tal.seconds += len(clip) / FPS
        out[room] = tallies
    return out


def print_rooms(results: dict[str, dict[str, Tally]]) -> None:
    """The budget table: per room, each mode's inferences/s, ms/s, ratio, found, first delay."""
    print(
        f"{'room':<14} {'mode':<6} {'inf/s':>6} {'short':>6} {'det ms/s':>9} {'×whole':>7} "
        f"{'found %':>8} {'first s':>8} {'max':>5}"
    )
    for room, tallies in results.items():
        whole = tallies["whole"]
        for m, tal in tallies.items():
            ms_s = tal.ms / tal.seconds
            ratio = ms_s / max(whole.ms / whole.seconds, 1e-9)
            fr = tal.found_rate
            found = "-" if fr is None else f"{100 * fr:.1f}"
            delays = tal.first_delay_s
            first = f"{statistics.median(delays):.2f} {max(delays):>5.2f}" if delays else "-"
            print(
                f"{room:<14} {m:<6} {tal.inferences / tal.seconds:>6.1f} "
                f"{tal.short / tal.seconds:>6.1f} {ms_s:>9.1f} "
                f"{ratio:>7.2f} {found:>8} {first:>8}",
                flush=True,
            )


WARMUP_S = 3.0
"""Seconds after the first status write before CPU counts: the loop and the gaze are warm."""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of each of ``pid``'s threads, summed by kernel name.

    The capture thread names itself ``capture`` (:func:`appliance.camera.name_os_thread`);
    the loop and the detector's threads keep the process's name.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text(encoding="ascii")
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text(encoding="ascii").strip()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        key = "capture" if name == "capture" else "appliance"
        out[key] = out.get(key, 0.0) + cpu
    return out


def measure_run(
    cmd: list[str], env: dict[str, str], status: Path, seconds: float
) -> dict[str, float]:
    """Per-thread CPU seconds per second of ``cmd`` over ``seconds``, once warmed up."""
    status.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not status.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd)}: no status file (exit {proc.poll()})")
            time.sleep(0.1)
        time.sleep(WARMUP_S)
        a, t0 = thread_cpu(proc.pid), time.monotonic()
        time.sleep(seconds)
        b, dt = thread_cpu(proc.pid), time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    return {k: (b[k] - a.get(k, 0.0)) / dt for k in b}


def decode_cpu(clip: Path) -> float:
    """CPU seconds this process spends decoding every image of ``clip`` once (as the replay)."""
    from PIL import Image

    images = sorted(p for p in clip.iterdir() if p.name.startswith("frame_"))
    c0 = time.process_time()
    for p in images:
        with Image.open(p) as im:
            np.asarray(im.convert("RGB"))
    return time.process_time() - c0


def pi_capture_cpu(repeats: int = 200) -> float:
    """CPU seconds per frame of what a Pi's capture thread does instead of decoding.

    ``Picamera2Source`` asks the ISP for a ``BGR888`` ``main`` stream (three bytes a pixel, R,
    G, B in memory): ``read`` copies the 1280×720 buffer out (``make_array``), and its
    ``ascontiguousarray`` of all three channels then copies nothing. That copy, timed here.
    """
    buffer = np.full((GEOMETRY.height, GEOMETRY.width, 3), 7, np.uint8)
    c0 = time.process_time()
    for _ in range(repeats):
        arr = buffer.copy()
        np.ascontiguousarray(arr[:, :, :3])
    return (time.process_time() - c0) / repeats


def run_cpu(seconds: float, repeats: int) -> None:
    """CPU per gallery-second of ``monalisa run`` at real-time replay of an empty room, per mode.

    Each mode runs on a looping empty-room clip; after its first status write and
    :data:`WARMUP_S` more, the CPU of each of its threads is read from ``/proc`` over
    ``seconds``. The capture thread's (the replay reading and decoding its JPEGs, which a Pi's
    ISP does not need) is shown apart from the rest (the loop, the finder, the detector, the
    gaze, the display, the status file); what a Pi's capture thread does instead (one buffer
    copy per frame) is measured and added back.
    """
    renderer = Renderer(astronaut_photo(), GEOMETRY, seed=5)
    monalisa = [sys.executable, "-m", "appliance.cli"]
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    with tempfile.TemporaryDirectory(prefix="monalisa-budget-") as tmp:
        work = Path(tmp)
        clip = work / "empty"
        n = round(10 * FPS)  # looped: ten seconds of distinct sensor noise
        write_clip(clip, (renderer.render([])[0] for _ in range(n)), FPS, image_format="jpg")
        ClipFile.read(clip / CLIP_FILE).model_copy(update={"loop": True}).write(clip)
        decode = statistics.median(decode_cpu(clip) for _ in range(3)) * FPS / n
        pi_capture = pi_capture_cpu() * FPS
        status = work / "s.json"

        print(f"\nCPU, % of one core, an empty room replayed at real time ({FPS:.0f} fps; each")
        print(f"mode's threads read from /proc over {seconds:.0f} s once running, median of")
        print(f"{repeats}): the whole process; its capture thread (the replay's JPEG decoding);")
        print("the rest (loop, finder, detector, gaze, display, status); the rest plus a Pi")
        print("capture thread's one buffer copy per frame instead of the decoding")
        print(f"{'mode':<6} {'process':>8} {'capture':>8} {'rest':>6} {'on a Pi':>8}")
        for m, cfg in MODES.items():
            lines = [
                f'mode = "{cfg.mode}"',
                f'cadence = "{cfg.cadence}"',
                f'follow_model = "{cfg.follow_model}"',
                f"follow_found = {str(cfg.follow_found).lower()}",
            ]
            config = work / f"{m}.toml"
            config.write_text(
                "[finder]\n" + "\n".join(lines) + f'\n[service]\nstatus_file = "{status}"\n',
                encoding="utf-8",
            )
            cmd = [*monalisa, "run", "--camera", f"replay:{clip}", "--display", "headless"]
            runs = [
                measure_run([*cmd, "--config", str(config)], env, status, seconds)
                for _ in range(repeats)
            ]
            capture = statistics.median(r.get("capture", 0.0) for r in runs)
            rest = statistics.median(r.get("appliance", 0.0) for r in runs)
            total = statistics.median(sum(r.values()) for r in runs)
            print(
                f"{m:<6} {100 * total:>7.1f}% {100 * capture:>7.1f}% {100 * rest:>5.1f}% "
                f"{100 * (rest + pi_capture):>7.1f}%",
                flush=True,
            )
        print(
            f"the same JPEG decoding in a tight loop: {100 * decode:.1f}%; a Pi capture's "
            f"buffer copy: {100 * pi_capture:.1f}% (both of one core at {FPS:.0f} fps)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short clips, no CPU run")
    ap.add_argument("--threads", type=int, default=1, help="detector threads")
    ap.add_argument("--cpu-seconds", type=float, default=20.0, help="CPU window per run, s")
    ap.add_argument("--repeats", type=int, default=3, help="CPU runs per mode (median)")
    ap.add_argument("--rooms", nargs="+", default=[], help="only these rooms; no CPU run")
    ap.add_argument("--cpu-only", action="store_true", help="only the CPU run")
    args = ap.parse_args(argv)
    import logging

    logging.disable(logging.INFO)
    if args.cpu_only:
        run_cpu(args.cpu_seconds, args.repeats)
        return 0
    detector = Detector("full", num_threads=args.threads)
    short = Detector("short", num_threads=args.threads)
    print_rooms(run_rooms(args.quick, detector, short, args.rooms))
    print(
        "\ninf/s, det ms/s: detector runs and finder wall time per second of gallery time;"
        "\nshort: of those runs, the short-range model's (128 px: about a third of the work);"
        "\n×whole: det ms/s over the whole-frame mode's on the same frames; found %: frames in"
        "\nwhich the (first) visitor is found; first s, max: median and largest delay from a"
        "\nvisitor's first frame in view to their first detection."
    )
    if not args.quick and not args.rooms:
        run_cpu(args.cpu_seconds, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
