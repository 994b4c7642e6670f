"""Display cost at 1920x1080 (headless): base + patches against full-frame surfaces.

Measures, in one process with SDL's dummy driver (software blits, as on a Pi's KMSDRM path):

* ms per ``show()`` for a frame change with :class:`appliance.display.Display` (only the old and
  new patch rectangles are blitted and updated), per cross-fade step, and for an unchanged
  frame (nothing drawn);
* the same frame change done the naive way: 33 pre-scaled full-screen surfaces, blit the whole
  surface and flip;
* resident memory added by each: the pre-scaled surfaces (and the canvas) against 33 full
  surfaces.

Run: ``.venv/bin/python benchmarks/display.py [--changes N] [--size WxH]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config import DisplayConfig
from appliance.display import screen as display_module
from appliance.frames import FrameEntry, FrameSet, Manifest, diff_patch
from tests.support.display import frame_on_screen

COUNT = 33
MIB = 1024 * 1024


def rss_bytes() -> int:
    """Resident set size of this process, bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def synthetic_frames(width: int, height: int) -> FrameSet:
    """33 frames of ``width×height``: a textured painting whose two pupils move across."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(xx * 255 // width), (yy * 255 // height), ((xx + yy) * 127 // (width + height))],
        axis=2,
    ).astype(np.int16)
    base += rng.integers(-12, 12, base.shape, dtype=np.int16)
    base_u8 = np.clip(base, 0, 255).astype(np.uint8)
    eye_w, eye_h = width // 16, height // 36
    eyes = [(width // 2 - 2 * eye_w, height // 3), (width // 2 + eye_w, height // 3)]
    for ex, ey in eyes:
        base_u8[ey : ey + eye_h, ex : ex + eye_w] = 235
    pupil = max(4, eye_h - 4)

    def frame(i: int) -> np.ndarray:
        img = base_u8.copy()
        for ex, ey in eyes:
            px = ex + 2 + round((eye_w - pupil - 4) * i / (COUNT - 1))
            img[ey + 2 : ey + 2 + pupil, px : px + pupil] = 20
        return img

    rest = COUNT // 2
    rest_img = frame(rest)
    patches = [diff_patch(rest_img, frame(i)) for i in range(COUNT)]
    x0 = eyes[0][0] - 1
    x1 = eyes[1][0] + eye_w + 1
    angles = np.linspace(-30, 30, COUNT)
    manifest = Manifest(
        version=2,
        count=COUNT,
        size=[width, height],
        rest_index=rest,
        head_box=[x0, eyes[0][1] - 1, x1, eyes[0][1] + eye_h + 1],
        frames=[
            FrameEntry(
                angle=float(angles[i]),
                patch=None if p.empty else f"patches/frame_{i:02d}.png",
                box=None if p.empty else [p.x0, p.y0, p.x0 + p.width, p.y0 + p.height],
            )
            for i, p in enumerate(patches)
        ],
    )
    return FrameSet(Path("<synthetic>"), manifest, rest_img, patches)


def sequence(n: int) -> list[int]:
    """A walk over the frames like a passing visitor: neighbours, back and forth."""
    out, i, step = [], COUNT // 2, 1
    for _ in range(n):
        if not 0 <= i + step < COUNT:
            step = -step
        i += step
        out.append(i)
    return out


def bench_patches(frames: FrameSet, size: tuple[int, int], n: int, rotation: int) -> dict[str, Any]:
    before = rss_bytes()
    t0 = time.perf_counter()
    cfg = DisplayConfig(window_size=size, rotation=rotation)
    d = display_module.Display(cfg, frames, "headless")
    open_s = time.perf_counter() - t0
    added = rss_bytes() - before
    try:
        d.show(frames.rest_index, 0.0)
        change, same = [], []
        now = 1.0
        for i in sequence(n):
            t = time.perf_counter()
            assert d.show(i, now)
            change.append((time.perf_counter() - t) * 1000)
            now += 1.0
            t = time.perf_counter()
            assert not d.show(i, now)
            same.append((time.perf_counter() - t) * 1000)
            now += 1.0
        surface_bytes = d.surface_bytes()
    finally:
        d.close()
    # Cross-fade steps (150 ms at 60 fps: 9 steps per change).
    cfg = DisplayConfig(window_size=size, rotation=rotation, crossfade_ms=150, max_fps=60.0)
    d = display_module.Display(cfg, frames, "headless")
    try:
        d.show(frames.rest_index, 0.0)
        fade = []
        now = 1.0
        for i in sequence(max(10, n // 10)):
            while True:
                t = time.perf_counter()
                d.show(i, now)
                fade.append((time.perf_counter() - t) * 1000)
                now += 1 / 60
                if d.shown_index == i:
                    break
    finally:
        d.close()
    return {
        "open_s": open_s,
        "change_ms": statistics.median(change),
        "change_p95_ms": sorted(change)[int(0.95 * len(change))],
        "same_ms": statistics.median(same),
        "fade_step_ms": statistics.median(fade),
        "rss_added": added,
        "surface_bytes": surface_bytes,
    }


def bench_full(frames: FrameSet, size: tuple[int, int], n: int, rotation: int) -> dict[str, Any]:
    """The peer: every frame pre-scaled to a full screen surface; blit all of it and flip."""
    pg = vars(display_module)["pygame"]
    before = rss_bytes()
    d = display_module.Display(DisplayConfig(window_size=size), frames, "headless")
    try:
        screen = pg.display.get_surface()
        t0 = time.perf_counter()
        surfaces = []
        for i in range(frames.count):
            rgb = frame_on_screen(frames.frame(i), size, rotation, "fit", (0, 0, 0))
            h, w = rgb.shape[:2]
            surfaces.append(pg.image.frombuffer(rgb.tobytes(), (w, h), "RGB").convert())
        prep_s = time.perf_counter() - t0
        added = rss_bytes() - before
        change = []
        for i in sequence(n):
            t = time.perf_counter()
            screen.blit(surfaces[i], (0, 0))
            pg.display.flip()
            change.append((time.perf_counter() - t) * 1000)
        surface_bytes = sum(s.get_height() * s.get_pitch() for s in surfaces)
    finally:
        d.close()
    return {
        "prep_s": prep_s,
        "change_ms": statistics.median(change),
        "change_p95_ms": sorted(change)[int(0.95 * len(change))],
        "rss_added": added,
        "surface_bytes": surface_bytes,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=300, help="frame changes to time")
    ap.add_argument("--size", default="1920x1080", help="screen size, WxH")
    ap.add_argument("--frame-size", default=None, help="frame size WxH (default: --size)")
    ap.add_argument("--rotation", type=int, default=0, choices=[0, 90, 180, 270])
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    fw, fh = (int(v) for v in (args.frame_size or args.size).lower().split("x"))
    frames = synthetic_frames(fw, fh)
    patch_px = [p.width * p.height for p in frames.patches if not p.empty]
    print(
        f"display benchmark: {COUNT} frames {fw}x{fh} on a {w}x{h} headless screen, "
        f"rotation {args.rotation}, fit"
    )
    print(f"  patch size (source px): median {statistics.median(patch_px):.0f}")
    print(
        f"  frame set in memory: base + patches {frames.memory_bytes() / MIB:.1f} MiB, "
        f"full frames {frames.full_frames_bytes() / MIB:.1f} MiB"
    )
    p = bench_patches(frames, (w, h), args.changes, args.rotation)
    f = bench_full(frames, (w, h), args.changes, args.rotation)
    print()
    print("| method | ms per frame change (median) | p95 | surfaces MiB | RSS added MiB |")
    print("|---|---|---|---|---|")
    print(
        f"| base + patches (Display) | {p['change_ms']:.3f} | {p['change_p95_ms']:.3f} | "
        f"{p['surface_bytes'] / MIB:.1f} | {p['rss_added'] / MIB:.1f} |"
    )
    print(
        f"| full-frame blit + flip | {f['change_ms']:.3f} | {f['change_p95_ms']:.3f} | "
        f"{f['surface_bytes'] / MIB:.1f} | {f['rss_added'] / MIB:.1f} |"
    )
    print()
    print(f"  full / patches, time per change: {f['change_ms'] / p['change_ms']:.1f}x")
    print(f"  full / patches, RSS added:       {f['rss_added'] / max(p['rss_added'], 1):.1f}x")
    print(f"  show() with an unchanged frame:  {p['same_ms']:.4f} ms (draws nothing)")
    print(f"  cross-fade step (150 ms fade):   {p['fade_step_ms']:.3f} ms")
    print(f"  start-up (rotate/scale/convert): {p['open_s'] * 1000:.0f} ms (Display)")
    print(f"  start-up of the full surfaces:   {f['prep_s'] * 1000:.0f} ms")
    print("  RSS added includes the screen surface (dummy driver) and, for Display, its canvas.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
