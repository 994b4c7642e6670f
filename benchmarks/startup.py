"""Appliance start-up against the painting's size: spawn to exit on a one-frame replay clip.

Each start is ``monalisa run`` as a new process (headless, SDL's dummy driver) on a replay clip
of one camera frame, timed from spawn to exit: interpreter and imports, the detector's model,
the frame set, the base scaled to the screen, the rest frame drawn, READY, one camera frame, the
shutdown. Starts of the sets are interleaved, so a busy machine slows them all alike.

Sets (all format version 2, as ``monalisa frames convert`` or the builder writes them):

* ``default`` — the bundled ``frames/`` (512×512 astronaut), the peer;
* ``big`` — a painting-like portrait (``tests/data/paintinglike.py``'s 1024×1526 scaled up,
  3072×4578 = 14 Mpx by default, ``--scale``), whose eyes carry the default set's 33 gaze
  patches scaled by the same factor and by 2 again (eyes of a museum scan's size). Started
  with the cache the unit's ``CacheDirectory=`` gives (a restart), and without (a first start:
  the rest frame is scaled from the preview and the full base decoded after READY in a
  worker thread; and the same set without a preview, whose base is decoded before READY).

Printed: the median start-up of each, the big set's ratio to the default, the median peak RSS
of each start (the first start without a preview holds the full base: its decoded image is
scaled as it is, with no array copy of it), and the issue's bound
(big <= 1.3 × default + 0.3 s); the time to decode the big base image alone, with the Pi 4/5
estimate from ``../shared/PI-FACTS.md``'s core-speed ratios (a Pi 4 core 8-12× slower, a Pi 5
2.5-4×). ``--v1`` adds the same big set as version 1 (33 full frames, what the builder wrote
before), slow to write and to start.

Also printed: the memory of the patches rendered for a 1920x1080 screen (pygame surfaces, in
this process, headless), the default grid (33 gazes x 5 rows x 4 lid phases) against its level
row of open eyes alone (33 frames, written as a set of its own) and the big set, with the time
the worker takes to decode and render them after the rest frame.

Run: ``.venv/bin/python benchmarks/startup.py [--repeats 5] [--scale 3] [--v1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.frames import (
    BASE_NAME,
    PREVIEW_MAX,
    FrameSet,
    Patch,
    default_frames_dir,
    read_rgb,
)
from appliance.framewrite import write_set
from appliance.types import Box
from benchmarks.child import wait_measured
from tests.data import paintinglike
from tests.support.frames import write_v1
from tests.support.run import MONALISA, app_env, write_astronaut_clip

PI4 = (8.0, 12.0)
PI5 = (2.5, 4.0)
"""How many times slower a Pi 4 / Pi 5 core is than this machine's (PI-FACTS, inferred)."""


def big_set(out: Path, scale: int, preview_max: int = PREVIEW_MAX) -> tuple[int, int]:
    """Write the big v2 set into ``out``; return its ``(width, height)``."""
    small = paintinglike.large_painting()
    h0, w0 = small.shape[:2]
    size = (w0 * scale, h0 * scale)
    base = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))
    default = FrameSet.load(default_frames_dir())
    k = 2 * scale  # the astronaut's eyes, 512 px image, made a museum scan's eyes
    hb = default.head_box
    # Put the default head box's centre at the painting's eyes (about 40 % across, 24 % down).
    ox = round(0.40 * size[0] - k * (hb.x0 + hb.x1) / 2)
    oy = round(0.24 * size[1] - k * (hb.y0 + hb.y1) / 2)
    patches: list[Patch] = []
    for p in default.patches:
        if p.empty:
            patches.append(p)
            continue
        up = Image.fromarray(p.pixels).resize((p.width * k, p.height * k), Image.Resampling.BICUBIC)
        patches.append(Patch(ox + k * p.x0, oy + k * p.y0, np.asarray(up)))
    box = Box(ox + k * hb.x0, oy + k * hb.y0, ox + k * hb.x1, oy + k * hb.y1)
    write_set(
        out,
        base,
        patches,
        rest_index=default.rest_index,
        head_box=box,
        angles=default.manifest.grid_fields["angles"],
        pitches=default.manifest.grid_fields["pitches"],
        lids=default.manifest.grid_fields["lids"],
        build={"benchmark": "startup", "scale": scale},
        preview_max=preview_max,
    )
    return size


def start(
    frames: Path, clip: Path, work: Path, cache: Path | None, *extra: str
) -> tuple[float, float, float]:
    """Wall seconds from spawning ``monalisa run`` on ``frames`` to its exit, its CPU seconds
    (user + system, all threads; less disturbed by other load) and its peak RSS in MiB
    (:func:`benchmarks.child.wait_measured`). Status 0 checked."""
    env = app_env()
    env.pop("CACHE_DIRECTORY", None)
    if cache is not None:
        env["CACHE_DIRECTORY"] = str(cache)
    args = [
        *MONALISA,
        "run",
        *("--camera", f"replay:{clip}", "--display", "headless", "--replay-speed", "max"),
        *("--frames", str(frames), "--status-file", str(work / "status.json"), *extra),
    ]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)
        cost = wait_measured(proc, t0)
        if cost.returncode != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise SystemExit(f"monalisa run on {frames} exited {cost.returncode}: {tail}")
    return cost.wall, cost.cpu, cost.peak_rss / 2**20


def patch_memory(work: Path, big: Path) -> None:
    """Print the rendered patches' memory at 1920x1080: the default grid against one row and
    the big set, with the worker's time for each after the rest frame (the big set's, a first
    start's: shown from its preview, the worker decodes the base, then the patches)."""
    from appliance.config import DisplayConfig
    from appliance.display import Display
    from appliance.frames import Portrait

    default = FrameSet.load(default_frames_dir())
    grid = default.manifest
    row = [grid.index(g, grid.rest_row, 0) for g in range(grid.gazes)]
    angles = grid.angles
    write_set(
        work / "one-row",
        default.base,
        [default.patches[i] for i in row],
        rest_index=grid.rest_gaze,
        head_box=default.head_box,
        angles=None if angles is None else list(angles),
        build={"benchmark": "startup", "of": "the default set's level row, open eyes"},
    )
    print("patches rendered for a 1920x1080 screen (pygame surfaces, 4 bytes a pixel):")
    for name, folder in (
        ("default grid", default_frames_dir()),
        ("its level row", work / "one-row"),
        ("big set", big),
    ):
        portrait = Portrait.open(folder)
        config = DisplayConfig(window_size=(1920, 1080))
        with Display(config, portrait, "headless", background=True) as d:
            t = time.perf_counter()
            level = portrait.grid.gazes
            while d.frames_ready < level:  # the render loop's calls take up each stage
                d.show(portrait.rest_index, time.monotonic())
                time.sleep(0.005)
            first = time.perf_counter() - t
            d.flush()  # waits for the worker
            took = time.perf_counter() - t
            pieces = d.patch_bytes() / 2**20
            print(
                f"  {name:<16} {portrait.count:4d} frames: {pieces:5.1f} MiB, "
                f"all surfaces {d.surface_bytes() / 2**20:5.1f} MiB; after the rest frame, "
                f"the level row ready in {first:.2f} s, every frame in {took:.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="starts of each set (median)")
    parser.add_argument("--scale", type=int, default=3, help="big set: 1024x1526 times this")
    parser.add_argument("--v1", action="store_true", help="also the big set as version 1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="monalisa-startup-") as tmp:
        work = Path(tmp)
        clip = write_astronaut_clip(work / "clip", n=1, loop=False)
        t0 = time.perf_counter()
        size = big_set(work / "big", args.scale)
        made = time.perf_counter() - t0
        mpx = size[0] * size[1] / 1e6
        base_png = (work / "big" / BASE_NAME).stat().st_size
        on_disk = sum(p.stat().st_size for p in (work / "big").rglob("*") if p.is_file())
        print(
            f"big set: {size[0]}x{size[1]} ({mpx:.1f} Mpx), {on_disk / 2**20:.1f} MiB on disk "
            f"= {on_disk / base_png:.2f} x its base.png, written in {made:.1f} s"
        )
        decode = []
        for _ in range(3):
            t = time.process_time()
            read_rgb(work / "big" / BASE_NAME)
            decode.append(time.process_time() - t)
        # The same set without its preview: its first start decodes the base before READY.
        big_set(work / "big-nopreview", args.scale, preview_max=max(size))
        cases: dict[str, tuple[Path, Path | None]] = {
            "default set 512x512": (default_frames_dir(), None),
            f"big set {size[0]}x{size[1]}, cached": (work / "big", work / "cache"),
            f"big set {size[0]}x{size[1]}, first start": (work / "big", None),
            "  the same without a preview": (work / "big-nopreview", None),
        }
        if args.v1:
            write_v1(FrameSet.load(work / "big"), work / "big-v1")
            cases[f"big set {size[0]}x{size[1]}, version 1"] = (work / "big-v1", None)
        # Fill the cache as a running appliance does: the full base is decoded after READY and
        # cached by the worker, so the warm-up runs on a looping clip until the file is there.
        loop = write_astronaut_clip(work / "loop", n=30, loop=True)
        warm = 3 + round(mpx * 0.3)  # seconds: the full base is decoded after READY
        for _ in range(10):
            start(work / "big", loop, work, work / "cache", "--duration", str(warm))
            if list((work / "cache").glob("portrait-*.npz")):
                break
        else:
            raise SystemExit(f"the cache was not written in 10 runs of {warm} s")
        start(default_frames_dir(), clip, work, None)
        times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, (folder, cache) in cases.items():
                times[name].append(start(folder, clip, work, cache))
        med = {name: statistics.median(t for t, _, _ in ts) for name, ts in times.items()}
        cpu = {name: statistics.median(c for _, c, _ in ts) for name, ts in times.items()}
        rss = {name: statistics.median(r for _, _, r in ts) for name, ts in times.items()}
        peer, peer_cpu = med["default set 512x512"], cpu["default set 512x512"]
        print(
            f"start-up, spawn to exit on a one-frame replay clip, headless "
            f"(median of {args.repeats}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}):"
        )
        print(f"  {'':<40} {'wall':>8} {'ratio':>7} {'CPU':>8} {'ratio':>7} {'peak RSS':>9}")
        for name, m in med.items():
            print(
                f"  {name:<40} {m:6.2f} s {m / peer:5.2f} x {cpu[name]:6.2f} s "
                f"{cpu[name] / peer_cpu:5.2f} x {rss[name]:5.0f} MiB"
            )
        bound = 1.3 * peer + 0.3
        print(f"  bound 1.3 x default + 0.3 s              {bound:6.2f} s")
        for name, m in med.items():
            if name != "default set 512x512":
                print(f"    {name:<38} {'within' if m <= bound else 'OVER'} the bound")
        d = statistics.median(decode)

        def pi(seconds: float) -> str:
            return (
                f"Pi 4 about {seconds * PI4[0]:.1f}-{seconds * PI4[1]:.1f} s, "
                f"Pi 5 {seconds * PI5[0]:.1f}-{seconds * PI5[1]:.1f} s"
            )

        print(f"decoding base.png alone: {d:.2f} s of CPU here; {pi(d)} (PI-FACTS core ratios)")
        for name, m in med.items():
            if name != "default set 512x512":
                extra = max(0.0, m - peer)
                print(f"  {name.strip()}: {extra:.2f} s more than the default here; {pi(extra)}")
        patch_memory(work, work / "big")


if __name__ == "__main__":
    main()
