"""The contact sheet: every frame as a thumbnail plus a zoomed eye strip."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data

from appliance.framebuild.contact import Thumbnails, contact_sheet, zoom_selection
from appliance.frames import diff_patch
from appliance.types import Box


def test_zoom_selection() -> None:
    picks = zoom_selection(33, 16)
    assert picks[0] == 0 and picks[-1] == 32 and 16 in picks
    assert picks == sorted(set(picks)) and len(picks) <= 10
    assert zoom_selection(2, 0) == [0, 1]


def test_sheet_holds_every_frame_and_the_zoom() -> None:
    base = np.ascontiguousarray(data.astronaut())
    frames = []
    for i in range(7):
        f = base.copy()
        f[95:110, 190:260] = (40 * i, 0, 255 - 40 * i)  # a visible per-frame mark on the eyes
        frames.append(f)
    angles = [-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0]
    patches = [diff_patch(base, f) for f in frames]
    sheet = np.asarray(
        contact_sheet(base, patches, angles, 3, Box(180, 85, 270, 120), thumb_width=100)
    )
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    # Each frame's mark colour appears in the sheet (thumbnails and zoom strip).
    for i in range(7):
        colour = np.array([40 * i, 0, 255 - 40 * i])
        hits = np.all(np.abs(sheet.astype(int) - colour) <= 2, axis=2).sum()
        assert hits > 50, i
    # Deterministic.
    again = np.asarray(
        contact_sheet(base, patches, angles, 3, Box(180, 85, 270, 120), thumb_width=100)
    )
    assert np.array_equal(sheet, again)
    # A thumbnail made from base + patch is the whole frame's thumbnail.
    whole = Image.fromarray(frames[5]).resize((100, 100), Image.Resampling.LANCZOS)
    assert np.array_equal(
        np.asarray(Thumbnails(base, (100, 100)).of(patches[5])), np.asarray(whole)
    )


def test_thumbnails_of_a_large_painting_are_the_whole_frames() -> None:
    """A painting 7 thumbnails wide is reduced 2 times first (blocks of 2×2); a patch off the grid
    still gives exactly the whole frame's thumbnail."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1003, 701, 3), dtype=np.uint8)
    pixels = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    thumbs = Thumbnails(base, (100, 143))
    assert thumbs.k == 2
    for x0, y0 in ((301, 411), (648, 966), (0, 0)):
        frame = base.copy()
        frame[y0 : y0 + 37, x0 : x0 + 53] = pixels
        patch = diff_patch(base, frame)
        whole = Image.fromarray(frame).reduce(2).resize((100, 143), Image.Resampling.LANCZOS)
        assert np.array_equal(np.asarray(thumbs.of(patch)), np.asarray(whole))
