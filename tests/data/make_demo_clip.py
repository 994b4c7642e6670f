"""Make the bundled demo clip: a visitor walks past the portrait, stands, and leaves.

Rendered with :mod:`tests.support.sim` from scikit-image's astronaut photo (NASA, public domain)
through a 66° camera at 640×480, 15 frames per second, JPEG frames. Deterministic: running it
again writes the same files. Usage (from the repository root, ``make clip``)::

    .venv/bin/python tests/data/make_demo_clip.py appliance/data/demo
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.support

from tests.support.sim import (
    CameraGeometry,
    Renderer,
    Visitor,
    astronaut_photo,
    render_walk,
    walk,
    write_clip,
)

FPS = 15.0


def main(out: Path) -> int:
    geometry = CameraGeometry(width=640, height=480, hfov_deg=66.0, height_m=1.75)
    renderer = Renderer(astronaut_photo(), geometry, seed=7)
    poses = walk(geometry, 1.2, fps=FPS, speed_mps=0.6, stand_s=3.0, stand_x_m=-0.15, leave_s=4.0)
    empty: list[Visitor | None] = [None] * int(FPS)
    poses = empty + poses  # an empty room first
    if out.exists():
        shutil.rmtree(out)
    n = write_clip(out, render_walk(renderer, poses), FPS, image_format="jpg", quality=85)
    print(f"{out}: {n} frames at {FPS:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "appliance/data/demo")))
