"""A reference picture of the screen, worked out without pygame (tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

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
