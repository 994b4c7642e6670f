"""Where the portrait lands on the screen, and its pixels there (numpy and PIL, no pygame).

Pure geometry: the driver choice, the clockwise rotations of images and rectangles, the layout
of the rotated portrait on a screen (``fit``/``fill``), and the Lanczos resampling of a region
of a frame into screen pixels that :class:`appliance.display.screen.Display` pre-renders once.

Rectangles are ``(x0, y0, x1, y1)`` in integer pixels with ``x1``/``y1`` exclusive; rotations
are clockwise, in degrees (0/90/180/270), as the monitor is turned.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from appliance.config import DISPLAY_DRIVERS
from appliance.frames import Patch

DRIVERS = DISPLAY_DRIVERS
"""Accepted values of ``driver``."""

_LANCZOS_SUPPORT = 3.0
"""Half-width of PIL's Lanczos kernel, in output-scale pixels."""

Rect4 = tuple[int, int, int, int]
"""A rectangle ``(x0, y0, x1, y1)`` in integer pixels, ``x1``/``y1`` exclusive."""


class DisplayError(RuntimeError):
    """The video driver cannot be opened (or the display is used after ``close``)."""


class ScreenNotThere(DisplayError):
    """The video driver is there but its screen cannot be opened now; it may appear later.

    A monitor switched on after the Pi, a TV that dropped HDMI hotplug in standby, an X server
    that has not started yet: trying again later can succeed, unlike a missing ``DISPLAY``.
    """


def choose_driver(
    requested: str,
    env: Mapping[str, str] | None = None,
    dri: Path = Path("/dev/dri"),
) -> str:
    """Resolve ``auto`` to a concrete driver.

    Args:
        requested: ``auto``, ``kmsdrm``, ``window`` or ``headless``.
        env: The environment to look at (default ``os.environ``).
        dri: The DRM device folder whose presence means KMSDRM may work.

    Returns:
        ``kmsdrm``, ``window`` or ``headless``.

    Raises:
        DisplayError: ``requested`` is not a known driver.
    """
    if requested not in DRIVERS:
        raise DisplayError(f"unknown display driver {requested!r}; use one of {', '.join(DRIVERS)}")
    if requested != "auto":
        return requested
    e = os.environ if env is None else env
    if e.get("DISPLAY") or e.get("WAYLAND_DISPLAY"):
        return "window"
    if dri.is_dir():
        return "kmsdrm"
    return "headless"


def rotate_rect(rect: Rect4, size: tuple[int, int], rotation: int) -> Rect4:
    """Map a rectangle of an image to the same pixels of the image rotated clockwise.

    Args:
        rect: ``(x0, y0, x1, y1)`` in the unrotated image, pixels.
        size: ``(width, height)`` of the unrotated image, pixels.
        rotation: Clockwise rotation, 0/90/180/270 degrees.

    Returns:
        The rectangle in the rotated image (whose size is ``size`` swapped for 90/270).
    """
    x0, y0, x1, y1 = rect
    w, h = size
    if rotation == 0:
        return rect
    if rotation == 90:
        return (h - y1, x0, h - y0, x1)
    if rotation == 180:
        return (w - x1, h - y1, w - x0, h - y0)
    if rotation == 270:
        return (y0, w - x1, y1, w - x0)
    raise ValueError(f"rotation = {rotation} must be 0, 90, 180 or 270")


def rotate_array(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an ``H×W×C`` image clockwise by 0/90/180/270 degrees (lossless, contiguous)."""
    if rotation not in (0, 90, 180, 270):
        raise ValueError(f"rotation = {rotation} must be 0, 90, 180 or 270")
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the (rotated) portrait lands on the screen.

    Attributes:
        screen: ``(width, height)`` of the screen, pixels.
        rotation: Clockwise rotation of the portrait, degrees.
        image: ``(width, height)`` of the rotated portrait, pixels.
        scaled: ``(width, height)`` of the whole rotated portrait after scaling, pixels.
        offset: Screen position of the scaled portrait's top-left corner (negative when
            ``fill`` crops it).
        visible: The part of the scaled portrait that is on screen, in scaled-image pixels.
    """

    screen: tuple[int, int]
    rotation: int
    image: tuple[int, int]
    scaled: tuple[int, int]
    offset: tuple[int, int]
    visible: Rect4

    @property
    def fx(self) -> float:
        """Horizontal scale factor, screen pixels per rotated-image pixel."""
        return self.scaled[0] / self.image[0]

    @property
    def fy(self) -> float:
        """Vertical scale factor, screen pixels per rotated-image pixel."""
        return self.scaled[1] / self.image[1]

    @property
    def identity_scale(self) -> bool:
        """True when the portrait is shown pixel for pixel."""
        return self.scaled == self.image

    def to_screen(self, rect: Rect4) -> Rect4:
        """Move a rectangle from scaled-image pixels to screen pixels."""
        ox, oy = self.offset
        return (rect[0] + ox, rect[1] + oy, rect[2] + ox, rect[3] + oy)


def compute_layout(
    screen: tuple[int, int], frame_size: tuple[int, int], rotation: int, fit: str
) -> Layout:
    """Scale and centre the rotated portrait on the screen.

    Args:
        screen: ``(width, height)`` of the screen, pixels (both >= 1).
        frame_size: ``(width, height)`` of the unrotated portrait, pixels.
        rotation: Clockwise rotation, 0/90/180/270 degrees.
        fit: ``fit`` shows the whole portrait with borders; ``fill`` covers the screen and
            crops the overflow equally on both sides.

    Returns:
        The layout; with ``fit`` one dimension fills the screen exactly.
    """
    sw, sh = screen
    fw, fh = frame_size
    iw, ih = (fh, fw) if rotation in (90, 270) else (fw, fh)
    ratios = (sw / iw, sh / ih)
    scale = min(ratios) if fit == "fit" else max(ratios)
    if fit == "fit" and ratios[0] <= ratios[1]:
        scaled = (sw, max(1, min(sh, round(ih * scale))))
    elif fit == "fit":
        scaled = (max(1, min(sw, round(iw * scale))), sh)
    elif ratios[0] >= ratios[1]:
        scaled = (sw, max(sh, round(ih * scale)))
    else:
        scaled = (max(sw, round(iw * scale)), sh)
    ox, oy = (sw - scaled[0]) // 2, (sh - scaled[1]) // 2
    visible = (max(0, -ox), max(0, -oy), min(scaled[0], sw - ox), min(scaled[1], sh - oy))
    return Layout(
        screen=(sw, sh),
        rotation=rotation,
        image=(iw, ih),
        scaled=scaled,
        offset=(ox, oy),
        visible=visible,
    )


def intersect(a: Rect4, b: Rect4) -> Rect4 | None:
    """The overlap of two rectangles, or None when they share no pixel."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def support_px(layout: Layout) -> float:
    """Source pixels a destination pixel's Lanczos kernel reaches, plus a guard pixel.

    In rotated-image pixels; 0 when the portrait is shown pixel for pixel.
    """
    if layout.identity_scale:
        return 0.0
    return _LANCZOS_SUPPORT * max(1.0, 1.0 / layout.fx, 1.0 / layout.fy) + 1.0


def patch_margin(layout: Layout) -> int:
    """Full-size pixels around a patch that rendering it for ``layout`` reads, at most.

    A patch is rendered over its box widened by the kernel's reach (:func:`support_px`) and
    rounded out to whole screen pixels; that region's kernels reach as far again.
    """
    return math.ceil(2.0 * support_px(layout) + 2.0 / min(layout.fx, layout.fy)) + 2


def source_rect(layout: Layout, dest: Rect4) -> Rect4:
    """The rotated-image pixels that rendering scaled-image region ``dest`` reads."""
    if layout.identity_scale:
        return dest
    iw, ih = layout.image
    x0, y0, x1, y1 = dest
    s = support_px(layout)
    return (
        max(0, math.floor(x0 / layout.fx - s)),
        max(0, math.floor(y0 / layout.fy - s)),
        min(iw, math.ceil(x1 / layout.fx + s)),
        min(ih, math.ceil(y1 / layout.fy + s)),
    )


def _resample(layout: Layout, img: Image.Image, src: Rect4, dest: Rect4) -> np.ndarray:
    """Scaled-image region ``dest`` from ``img``, the rotated image's pixels in ``src``."""
    x0, y0, x1, y1 = dest
    cw, ch = img.size
    box = (
        min(max(x0 / layout.fx - src[0], 0.0), float(cw)),
        min(max(y0 / layout.fy - src[1], 0.0), float(ch)),
        min(max(x1 / layout.fx - src[0], 0.0), float(cw)),
        min(max(y1 / layout.fy - src[1], 0.0), float(ch)),
    )
    # Two 1-D passes (horizontal, then vertical), each over the other axis' full extent:
    # this reproduces exactly what one resize of the whole image gives, which PIL's single
    # 2-D call with a box on a crop does not always do.
    lanczos = Image.Resampling.LANCZOS
    rows = img.resize((x1 - x0, ch), lanczos, box=(box[0], 0.0, box[2], float(ch)))
    out = rows.resize((x1 - x0, y1 - y0), lanczos, box=(0.0, box[1], float(x1 - x0), box[3]))
    return np.asarray(out, dtype=np.uint8)


_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
"""PIL's counter-clockwise transposes for each clockwise rotation."""


def scale_image(layout: Layout, image: Image.Image) -> np.ndarray:
    """The whole unrotated portrait ``image`` (RGB) scaled to ``layout.visible``.

    Pixel for pixel what :meth:`Renderer.render` of ``layout.visible`` gives for the base,
    but read straight from the decoded image: no array copy of it (a 100 Mpx base is 400 MB
    as a PIL image, 300 MB more as an array), only a rotated copy when ``layout`` turns it.
    """
    rotated = image.transpose(_TRANSPOSE[layout.rotation]) if layout.rotation else image
    dest = layout.visible
    src = source_rect(layout, dest)
    whole = (0, 0, rotated.width, rotated.height)
    crop = rotated if src == whole else rotated.crop(src)
    if layout.identity_scale:
        return np.asarray(crop, dtype=np.uint8)
    return _resample(layout, crop, src, dest)


class Renderer:
    """Resamples regions of the rotated portrait into screen pixels (PIL Lanczos).

    Args:
        layout: Where the portrait lands.
        size: ``(width, height)`` of the unrotated portrait, pixels.
        patches: Per frame, where it differs from the base (unrotated, full size).
        held: The part of the unrotated base whose pixels are given, ``(x0, y0, x1, y1)``:
            the whole portrait to render the base, or the head region widened by
            :func:`patch_margin` to render the patches.
        pixels: The base's pixels in ``held``, ``h×w×3`` uint8 RGB.

    Raises:
        ValueError: ``pixels`` is not the size of ``held``.
    """

    def __init__(
        self,
        layout: Layout,
        size: tuple[int, int],
        patches: Sequence[Patch],
        held: Rect4,
        pixels: np.ndarray,
    ) -> None:
        if pixels.shape[:2] != (held[3] - held[1], held[2] - held[0]):
            raise ValueError(f"base pixels {pixels.shape[:2]} do not fill the held region {held}")
        self.layout = layout
        self.size = size
        self.patches = patches
        self.held = rotate_rect(held, size, layout.rotation)
        self.base = rotate_array(pixels, layout.rotation)
        self.support = support_px(layout)

    def render(self, dest: Rect4, index: int | None) -> np.ndarray:
        """Return scaled-image region ``dest`` of frame ``index`` (None: the base) as RGB."""
        return self.render_patch(dest, None if index is None else self.patches[index])

    def render_patch(self, dest: Rect4, patch: Patch | None) -> np.ndarray:
        """:meth:`render` of the base with ``patch`` (None: the base alone) laid on it."""
        lay = self.layout
        src = source_rect(lay, dest)
        hx0, hy0, hx1, hy1 = self.held
        if not (hx0 <= src[0] and hy0 <= src[1] and src[2] <= hx1 and src[3] <= hy1):
            raise ValueError(f"rendering {dest} reads {src}, outside the held base {self.held}")
        crop = self.base[src[1] - hy0 : src[3] - hy0, src[0] - hx0 : src[2] - hx0]
        if patch is not None and not patch.empty:
            rect = rotate_rect(
                (patch.x0, patch.y0, patch.x0 + patch.width, patch.y0 + patch.height),
                self.size,
                lay.rotation,
            )
            hit = intersect(rect, src)
            if hit is not None:
                crop = crop.copy()
                rows = slice(hit[1] - rect[1], hit[3] - rect[1])
                cols = slice(hit[0] - rect[0], hit[2] - rect[0])
                pix = rotate_array(patch.pixels, lay.rotation)[rows, cols]
                mask = patch.mask
                part = Patch(
                    0,
                    0,
                    pix,
                    None if mask is None else rotate_array(mask, lay.rotation)[rows, cols],
                )
                part.paste(
                    crop[hit[1] - src[1] : hit[3] - src[1], hit[0] - src[0] : hit[2] - src[0]]
                )
        if lay.identity_scale:
            return np.ascontiguousarray(crop)
        return _resample(lay, Image.fromarray(np.ascontiguousarray(crop), "RGB"), src, dest)

    def patch_region(self, index: int) -> Rect4 | None:
        """The scaled-image rectangle where frame ``index`` differs from the scaled base."""
        return self.region_of(self.patches[index])

    def region_of(self, patch: Patch) -> Rect4 | None:
        """:meth:`patch_region` of ``patch``."""
        if patch.empty:
            return None
        lay = self.layout
        rx0, ry0, rx1, ry1 = rotate_rect(
            (patch.x0, patch.y0, patch.x0 + patch.width, patch.y0 + patch.height),
            self.size,
            lay.rotation,
        )
        s = self.support
        region = (
            math.floor((rx0 - s) * lay.fx) - 1,
            math.floor((ry0 - s) * lay.fy) - 1,
            math.ceil((rx1 + s) * lay.fx) + 1,
            math.ceil((ry1 + s) * lay.fy) + 1,
        )
        return intersect(region, lay.visible)
