"""The contact sheet: every frame as a thumbnail plus a zoomed eye strip."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data

from appliance.framebuild.contact import _thumbnail, contact_sheet, zoom_selection
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
    # Each thumbnail, redone only where its patch reaches, is the whole frame's thumbnail.
    whole = Image.fromarray(frames[5]).resize((100, 100), Image.Resampling.LANCZOS)
    base_thumb = Image.fromarray(base).resize((100, 100), Image.Resampling.LANCZOS)
    redone = np.asarray(_thumbnail(base, patches[5], base_thumb)).astype(int)
    assert np.abs(redone - np.asarray(whole).astype(int)).max() <= 1
