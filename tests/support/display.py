"""A reference picture of the screen, worked out without pygame; X servers for tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from appliance.display.layout import compute_layout, rotate_array


def frame_on_screen(
    frame: np.ndarray, screen: tuple[int, int], rotation: int, fit: str, background: Sequence[int]
) -> np.ndarray:
    """A whole frame rotated, scaled and placed as :class:`appliance.display.Display` does.

    One Lanczos resize of the whole rotated frame: the peer the display's pre-rendered patches
    must match pixel for pixel (within rounding).

    Args:
        frame: ``H×W×3`` uint8 RGB.
        screen: ``(width, height)`` of the screen, pixels.
        rotation: Clockwise rotation, degrees.
        fit: ``fit`` or ``fill``.
        background: Border colour, RGB.

    Returns:
        ``screen[1]×screen[0]×3`` uint8 RGB.
    """
    lay = compute_layout(screen, (frame.shape[1], frame.shape[0]), rotation, fit)
    rot = rotate_array(frame, rotation)
    img = Image.fromarray(rot, "RGB").resize(lay.scaled, Image.Resampling.LANCZOS)
    scaled = np.asarray(img, dtype=np.uint8)
    out = np.empty((screen[1], screen[0], 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    vx0, vy0, vx1, vy1 = lay.visible
    sx0, sy0, sx1, sy1 = lay.to_screen(lay.visible)
    out[sy0:sy1, sx0:sx1] = scaled[vy0:vy1, vx0:vx1]
    return out


def find_xvfb() -> str | None:
    """The Xvfb program, installed from apt when missing and possible (root); None if not."""
    from tests.support.run import install_debs

    exe = shutil.which("Xvfb")
    if exe is None and os.geteuid() == 0 and shutil.which("apt-get"):
        with contextlib.suppress(subprocess.CalledProcessError):
            install_debs("xvfb", "xauth")
        exe = shutil.which("Xvfb")
    return exe


def free_display() -> str:
    """An X display name (``:N``) that no server on this machine uses now."""
    for n in range(90, 500):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    raise RuntimeError("no free X display number in :90 … :499")


def start_xvfb(exe: str, display: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb with one 640×480 screen and a black root window; wait until it serves.

    Args:
        exe: The Xvfb program (:func:`find_xvfb`).
        display: The display to serve (``:N``); None: a free one Xvfb picks.

    Returns:
        The server process (terminate it when done) and its display name.
    """
    r, w = os.pipe()
    name = ["-displayfd", str(w)] if display is None else [display, "-displayfd", str(w)]
    proc = subprocess.Popen(
        [exe, *name, "-screen", "0", "640x480x24", "-br", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:  # written once the server accepts connections
        number = f.readline().strip()
    if not number.isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"Xvfb did not start on {display or 'a free display'}")
    return proc, f":{number}"


def stop_xvfb(proc: subprocess.Popen[bytes]) -> None:
    """Stop an Xvfb from :func:`start_xvfb`."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
