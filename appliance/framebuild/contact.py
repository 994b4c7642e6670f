"""The contact sheet an artist reviews: every frame labelled, plus zoomed eye crops.

Layout: a grid of thumbnails (index and gaze angle under each), then a zoomed strip of the
eye region for a selection of frames (both ends, the rest frame and evenly spaced ones
between), so a misplaced iris or a smear on a lid is visible at a glance. Drawn with Pillow
and its built-in font; deterministic.

It is drawn from the base image and the per-frame patches, never from whole frames
(:class:`Thumbnails`): the sheet costs one reduction of the painting plus work in proportion
to the patches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.framebuild.output import window
from appliance.frames import Patch
from appliance.types import Box

BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
ACCENT = (255, 196, 64)


def _label(i: int, angle: float, rest: bool) -> str:
    return f"{i:02d}  {angle:+.1f}°" + ("  rest" if rest else "")


def zoom_selection(count: int, rest_index: int, n: int = 9) -> list[int]:
    """Indices for the eye strip: ends, rest frame and evenly spaced ones (sorted, unique)."""
    picks = {0, count - 1, rest_index}
    picks.update(round(k * (count - 1) / (n - 1)) for k in range(n))
    return sorted(picks)


class Thumbnails:
    """Thumbnails of base + patch frames, at the cost of the patches, not of whole frames.

    A frame's thumbnail is the Lanczos resize of the frame first reduced ``k`` times (box
    averages of ``k×k`` blocks; ``k`` = 1 unless the painting is more than three thumbnails
    wide). The base is reduced once; a frame's reduction differs from it only in the blocks
    its patch touches, which are reduced from a block-aligned window of the frame and pasted
    in, so the result equals the whole frame's, pixel for pixel.

    Args:
        base: ``H×W×3`` uint8, the base image.
        size: ``(width, height)`` of a thumbnail, pixels.
    """

    def __init__(self, base: np.ndarray, size: tuple[int, int]) -> None:
        self.base = base
        self.size = size
        h, w = base.shape[:2]
        self.k = max(1, min(w // (3 * size[0]), h // (3 * size[1])))
        image = Image.fromarray(base)
        self.reduced = image.reduce(self.k) if self.k > 1 else image
        self.base_thumb = self.reduced.resize(size, Image.Resampling.LANCZOS)

    def of(self, patch: Patch) -> Image.Image:
        """The thumbnail of the frame ``base`` + ``patch``."""
        if patch.empty:
            return self.base_thumb
        k = self.k
        h, w = self.base.shape[:2]
        x0, y0 = patch.x0 // k * k, patch.y0 // k * k
        x1 = min(w, -(-(patch.x0 + patch.width) // k) * k)
        y1 = min(h, -(-(patch.y0 + patch.height) // k) * k)
        area = Image.fromarray(window(self.base, patch, (x0, y0, x1, y1)))
        frame = self.reduced.copy()
        frame.paste(area.reduce(k) if k > 1 else area, (x0 // k, y0 // k))
        return frame.resize(self.size, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Strip:
    """An extra zoomed strip of the eyes: a title and ``(frame index, label)`` per crop."""

    title: str
    frames: tuple[tuple[int, str], ...]


def contact_sheet(
    base: np.ndarray,
    patches: Sequence[Patch],
    angles: Sequence[float],
    rest_index: int,
    eye_box: Box,
    strips: Sequence[Strip] = (),
    *,
    thumb_width: int = 160,
    columns: int | None = None,
    zoom_width: int = 360,
) -> Image.Image:
    """Draw the contact sheet.

    Args:
        base: ``H×W×3`` uint8 RGB, the image every frame is made from.
        patches: Per frame, in index order, where it differs from ``base``.
        angles: Angle of each gaze, degrees. The thumbnails and the eye strip show the gazes
            of the rest frame's row and lid phase (frames ``angles``-long block holding it).
        rest_index: The rest frame (highlighted).
        eye_box: Region to zoom for the eye strip, image pixels.
        strips: More zoomed strips below the eye strip (e.g. the rows and a blink).
        thumb_width: Thumbnail width in pixels.
        columns: Thumbnails per row (default: about square).
        zoom_width: Width of each zoomed eye crop in pixels.

    Returns:
        An RGB image.
    """
    font = ImageFont.load_default()
    total = len(patches)
    all_patches = patches
    count = len(angles)
    first = rest_index - rest_index % count
    patches = patches[first : first + count]
    rest_index -= first
    h, w = base.shape[:2]
    th = max(1, round(thumb_width * h / w))
    cols = columns or max(4, math.ceil(math.sqrt(count * 1.5)))
    rows = math.ceil(count / cols)
    cols = columns or max(4, math.ceil(count / rows))  # balance the rows
    label_h = 16
    pad = 6
    cell_w, cell_h = thumb_width + pad, th + label_h + pad
    grid_w = cols * cell_w + pad

    zx0, zy0 = max(0, math.floor(eye_box.x0)), max(0, math.floor(eye_box.y0))
    zx1, zy1 = min(w, math.ceil(eye_box.x1)), min(h, math.ceil(eye_box.y1))
    zh = max(1, round(zoom_width * (zy1 - zy0) / max(1, zx1 - zx0)))
    picks = zoom_selection(count, rest_index)
    zcols = max(1, (grid_w - pad) // (zoom_width + pad))
    zrows = math.ceil(len(picks) / zcols)
    zcell_h = zh + label_h + pad
    title_h = 22
    sheet_w = max(grid_w, zcols * (zoom_width + pad) + pad)
    extra = [
        (s.title, [s.frames[k : k + zcols] for k in range(0, len(s.frames), zcols)]) for s in strips
    ]
    extra_h = sum(title_h + len(lines) * zcell_h for _, lines in extra)
    sheet_h = title_h + rows * cell_h + pad + title_h + zrows * zcell_h + pad + extra_h
    sheet = Image.new("RGB", (sheet_w, sheet_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    draw.text(
        (pad, 5),
        f"{total} frames, {w}x{h}, gaze {angles[0]:+.1f}° .. {angles[-1]:+.1f}°, "
        f"rest {first + rest_index}"
        + (f"; the {count} gazes of its row:" if total > count else ""),
        fill=TEXT,
        font=font,
    )
    thumbs = Thumbnails(base, (thumb_width, th))
    for i, patch in enumerate(patches):
        r, c = divmod(i, cols)
        x, y = pad + c * cell_w, title_h + r * cell_h
        thumb = thumbs.of(patch)
        sheet.paste(thumb, (x, y))
        if i == rest_index:
            draw.rectangle((x - 2, y - 2, x + thumb_width + 1, y + th + 1), outline=ACCENT)
        draw.text(
            (x, y + th + 2),
            _label(i, angles[i], i == rest_index),
            fill=ACCENT if i == rest_index else TEXT,
            font=font,
        )

    top = title_h + rows * cell_h + pad
    draw.text((pad, top + 4), "eyes, zoomed", fill=TEXT, font=font)
    top += title_h
    zoom = (zx0, zy0, zx1, zy1)
    for n, i in enumerate(picks):
        r, c = divmod(n, zcols)
        x, y = pad + c * (zoom_width + pad), top + r * zcell_h
        crop = Image.fromarray(window(base, patches[i], zoom))
        sheet.paste(crop.resize((zoom_width, zh), Image.Resampling.LANCZOS), (x, y))
        draw.text(
            (x, y + zh + 2),
            _label(i, angles[i], i == rest_index),
            fill=ACCENT if i == rest_index else TEXT,
            font=font,
        )
    top += zrows * zcell_h + pad
    for title, lines in extra:
        draw.text((pad, top + 4), title, fill=TEXT, font=font)
        top += title_h
        for line in lines:
            for c, (i, label) in enumerate(line):
                x = pad + c * (zoom_width + pad)
                patch = all_patches[i]
                crop = Image.fromarray(window(base, patch, zoom))
                sheet.paste(crop.resize((zoom_width, zh), Image.Resampling.LANCZOS), (x, top))
                draw.text((x, top + zh + 2), label, fill=TEXT, font=font)
            top += zcell_h
    return sheet
