"""What tests share to run the appliance as a child process, and the repository's place."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
"""The repository (a clone: models/, frames/, deploy/, tests/data/)."""

MONALISA = [sys.executable, "-m", "appliance.cli"]
"""The ``monalisa`` command, run by this interpreter."""


def app_env(**extra: str) -> dict[str, str]:
    """This process' environment for a child appliance: no systemd socket, no fault, no screen.

    ``NOTIFY_SOCKET`` and ``MONALISA_FAULT`` are removed (the test sets its own), SDL's video
    driver is ``dummy``, then ``extra`` is applied.
    """
    e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "MONALISA_FAULT")}
    e["SDL_VIDEODRIVER"] = "dummy"
    e.update(extra)
    return e


def write_astronaut_clip(directory: Path, n: int = 30, *, loop: bool = True) -> Path:
    """``n`` PNG frames (the astronaut photo, 320x240, drifting sideways) and clip.toml (30 fps)."""
    from PIL import Image
    from skimage import data

    directory.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((240, 240)))
    for i in range(n):
        canvas = np.full((240, 320, 3), 90, np.uint8)
        x = 20 + (i * 2) % 60
        canvas[:, x : x + 240] = photo
        Image.fromarray(canvas).save(directory / f"frame_{i:04d}.png")
    (directory / "clip.toml").write_text(f"fps = 30\nloop = {'true' if loop else 'false'}\n")
    return directory
