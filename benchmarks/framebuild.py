"""Frame building time and frame set memory.

1. ``monalisa frames build --mode synthesize`` for 33 frames from a 1024×1526 painting (the
   astronaut's portrait crop, upscaled 3×): median wall time of the whole build, with the eye
   finding (detector + iris/opening fit), rendering, PNG writing and contact sheet shares,
   against the peer of simply writing the same 33 PNGs (the I/O floor), as a ratio.
2. ``--mode blend`` for 33 frames from 81 head frames of 256×256 on the same painting.
3. Memory of a 33-frame set at 1920×1080: :meth:`FrameSet.memory_bytes` (one base image +
   per-frame patches) against 33 full RGB frames, and the resident memory (RSS) each adds to
   a fresh process.

Run: ``.venv/bin/python benchmarks/framebuild.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from appliance.framebuild.build import BuildOptions, build_blend, build_synthesize
from appliance.framebuild.eyes import detect_eyes, model_eyes
from appliance.framebuild.output import write_png
from appliance.framebuild.synthesize import EyeRenderer, iris_shifts, synthesize_frame
from appliance.frames import FrameSet

MIB = 1024 * 1024
HEAD_FRAMES = 81


def portrait_1024x1526() -> np.ndarray:
    """The astronaut's portrait crop, upscaled to 1024×1526 (a typical scanned painting)."""
    crop = Image.fromarray(data.astronaut()).crop((86, 0, 428, 510))
    return np.asarray(crop.resize((1024, 1526), Image.Resampling.LANCZOS))


def landscape_1920x1080() -> np.ndarray:
    """The astronaut upscaled to 1080×1080, centred on a 1920×1080 backdrop."""
    canvas = np.full((1080, 1920, 3), 60, np.uint8)
    photo = Image.fromarray(data.astronaut()).resize((1080, 1080), Image.Resampling.LANCZOS)
    canvas[:, 420:1500] = np.asarray(photo)
    return canvas


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_synthesize(work: Path, repeats: int) -> None:
    painting = portrait_1024x1526()
    src = work / "painting.png"
    write_png(src, painting)
    out = work / "synth"

    def whole() -> None:
        build_synthesize(BuildOptions(painting=src, out=out, count=33, force=True))

    whole()  # warm-up (loads the detector model once)
    total = timed(whole, repeats)
    # Stages, measured separately on the same painting.
    points = detect_eyes(painting, src)
    t_detect = timed(lambda: detect_eyes(painting, src), repeats)
    t_model = timed(lambda: model_eyes(painting, points), repeats)
    eyes = model_eyes(painting, points)
    angles = list(np.linspace(-30, 30, 33))
    shifts, _ = iris_shifts(eyes, angles)

    def render() -> list[np.ndarray]:
        rs = [EyeRenderer(painting, e) for e in eyes]
        return [synthesize_frame(painting, rs, s) for s in shifts]

    t_render = timed(render, repeats)
    frames = render()
    peer = work / "peer"
    peer.mkdir(exist_ok=True)

    def write_all() -> None:
        for i, f in enumerate(frames):
            write_png(peer / f"frame_{i:02d}.png", f)

    t_write = timed(write_all, repeats)
    print("synthesize: 33 frames from a 1024x1526 painting")
    print(f"  whole build (median of {repeats})  {total:7.2f} s")
    print(f"    detector (eye points)        {t_detect:7.2f} s")
    print(f"    iris + opening fit (2 eyes)  {t_model:7.2f} s")
    print(f"    render 33 frames             {t_render:7.2f} s")
    print(f"    write 33 PNGs (peer: I/O)    {t_write:7.2f} s")
    print(f"  build / PNG-writing peer       {total / t_write:7.2f} x")


def bench_blend(work: Path, repeats: int) -> None:
    painting = portrait_1024x1526()
    src = work / "painting.png"
    write_png(src, painting)
    # 81 head frames, eyes sweeping ±30° (as an animation exported frame by frame would):
    # face crops of synthesized gaze frames, rendered in memory.
    heads = work / "heads"
    heads.mkdir(exist_ok=True)
    eyes = model_eyes(painting, detect_eyes(painting, src))
    shifts, _ = iris_shifts(eyes, list(np.linspace(-30, 30, HEAD_FRAMES)))
    renderers = [EyeRenderer(painting, e) for e in eyes]
    for n, shift in enumerate(shifts):
        face = Image.fromarray(synthesize_frame(painting, renderers, shift))
        face = face.crop((150, 60, 870, 780)).resize((256, 256), Image.Resampling.LANCZOS)
        face.save(heads / f"h_{n:02d}.png")
    out = work / "blend"

    def whole() -> None:
        build_blend(BuildOptions(painting=src, out=out, mode="blend", heads=heads, force=True))

    whole()
    total = timed(whole, repeats)
    print(f"blend: 33 frames from {HEAD_FRAMES} head frames (256x256) into a 1024x1526 painting")
    print(f"  whole build (median of {repeats})  {total:7.2f} s")


RSS_SCRIPT = r"""
import json, sys, resource
from pathlib import Path
import numpy as np
from PIL import Image
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
    return 0
folder, how = Path(sys.argv[1]), sys.argv[2]
import appliance.frames as fr
before = rss()
if how == 'frameset':
    keep = fr.FrameSet.load(folder)
else:
    m = fr.parse_manifest(folder / 'frames.toml')
    keep = [fr.read_rgb(folder / f) for f in m.files]
print(json.dumps({'rss_added': rss() - before}))
"""


def bench_memory(work: Path) -> None:
    painting = landscape_1920x1080()
    src = work / "landscape.png"
    write_png(src, painting)
    out = work / "hd"
    build_synthesize(BuildOptions(painting=src, out=out, count=33, force=True))
    fs = FrameSet.load(out)
    added = {}
    for how in ("frameset", "full"):
        res = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(out), how],
            capture_output=True,
            text=True,
            check=True,
        )
        added[how] = json.loads(res.stdout.strip().splitlines()[-1])["rss_added"]
    print("memory: 33 frames at 1920x1080")
    print(f"  FrameSet base + patches       {fs.memory_bytes() / MIB:7.1f} MiB (pixel data)")
    print(f"  33 full RGB frames            {fs.full_frames_bytes() / MIB:7.1f} MiB (pixel data)")
    print(f"  ratio                         {fs.memory_bytes() / fs.full_frames_bytes():7.3f}")
    print(f"  RSS added, FrameSet.load      {added['frameset'] / MIB:7.1f} MiB")
    print(f"  RSS added, 33 full frames     {added['full'] / MIB:7.1f} MiB")
    sizes = [p.pixels.shape[:2] for p in fs.patches if not p.empty]
    print(f"  largest patch                 {max(sizes, key=lambda s: s[0] * s[1])} (h, w) px")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monalisa-bench-"))
    try:
        bench_synthesize(work, args.repeats)
        bench_blend(work, max(1, args.repeats - 2))
        bench_memory(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
