"""Drawing the portrait with pygame-ce: KMSDRM fullscreen, a window, or headless.

This is the only module that imports pygame. It draws and does nothing else: the loop tells it
which frame to show (:meth:`Display.show`), and it reports key presses (:meth:`Display.poll`).

Drivers:

* ``kmsdrm`` — fullscreen at the monitor's native mode through SDL's KMSDRM backend, for a
  Raspberry Pi without a desktop (the process must be allowed to become DRM master: no desktop
  session on that screen, user in the ``video`` and ``render`` groups).
* ``window`` — a resizable window on a development machine (X11, or Wayland without X).
* ``headless`` — SDL's ``dummy`` driver and an offscreen surface of ``window_size``, for tests,
  CI and ``make demo`` without a screen.
* ``auto`` — ``window`` when ``DISPLAY``/``WAYLAND_DISPLAY`` is set, else ``kmsdrm`` when
  ``/dev/dri`` exists, else ``headless``.

Drawing is cheap because almost nothing changes: at start-up the base image and every frame's
patch (see :class:`appliance.frames.Patch`) are rotated, scaled and converted to the screen's
pixel format once. A patch is rendered from a margin around it so that it is pixel-identical to
scaling the whole frame (no seams). The base is drawn once; on a frame change only the old and
the new patch rectangles are redrawn and passed to ``pygame.display.update``. Nothing is drawn
while the frame stays the same. A cross-fade (``crossfade_ms``) blends the old and the new patch
region over successive :meth:`Display.show` calls.

The screen's contents are kept in an offscreen canvas (the portrait only); the debug overlay is
drawn over it on the screen, so hiding the overlay or fading under it never needs a re-render.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from appliance.config import DisplayConfig
from appliance.frames import FrameSet
from appliance.types import Box, Face

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # (imported after the prompt switch above)

DRIVERS = ("auto", "kmsdrm", "window", "headless")
"""Accepted values of ``driver``."""

_LANCZOS_SUPPORT = 3.0
"""Half-width of PIL's Lanczos kernel, in output-scale pixels."""

Rect4 = tuple[int, int, int, int]
"""A rectangle ``(x0, y0, x1, y1)`` in integer pixels, ``x1``/``y1`` exclusive."""


class DisplayError(RuntimeError):
    """The video driver cannot be opened (or the display is used after ``close``)."""


# -- pure geometry (no pygame) --------------------------------------------------------------


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


def _intersect(a: Rect4, b: Rect4) -> Rect4 | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


class _Renderer:
    """Resamples regions of the rotated portrait into screen pixels (PIL Lanczos)."""

    def __init__(self, frames: FrameSet, layout: Layout) -> None:
        self.frames = frames
        self.layout = layout
        self.base = rotate_array(frames.base, layout.rotation)
        # Source pixels a destination pixel's kernel reaches, with a guard pixel.
        self.support = (
            _LANCZOS_SUPPORT * max(1.0, 1.0 / layout.fx, 1.0 / layout.fy) + 1.0
            if not layout.identity_scale
            else 0.0
        )

    def render(self, dest: Rect4, index: int | None) -> np.ndarray:
        """Return scaled-image region ``dest`` of frame ``index`` (None: the base) as RGB."""
        lay = self.layout
        iw, ih = lay.image
        x0, y0, x1, y1 = dest
        if lay.identity_scale:
            src = (x0, y0, x1, y1)
        else:
            s = self.support
            src = (
                max(0, math.floor(x0 / lay.fx - s)),
                max(0, math.floor(y0 / lay.fy - s)),
                min(iw, math.ceil(x1 / lay.fx + s)),
                min(ih, math.ceil(y1 / lay.fy + s)),
            )
        crop = self.base[src[1] : src[3], src[0] : src[2]]
        if index is not None:
            patch = self.frames.patches[index]
            if not patch.empty:
                rect = rotate_rect(
                    (patch.x0, patch.y0, patch.x0 + patch.width, patch.y0 + patch.height),
                    self.frames.size,
                    lay.rotation,
                )
                hit = _intersect(rect, src)
                if hit is not None:
                    crop = crop.copy()
                    pix = rotate_array(patch.pixels, lay.rotation)
                    crop[hit[1] - src[1] : hit[3] - src[1], hit[0] - src[0] : hit[2] - src[0]] = (
                        pix[
                            hit[1] - rect[1] : hit[3] - rect[1], hit[0] - rect[0] : hit[2] - rect[0]
                        ]
                    )
        if lay.identity_scale:
            return np.ascontiguousarray(crop)
        cw, ch = crop.shape[1], crop.shape[0]
        box = (
            min(max(x0 / lay.fx - src[0], 0.0), float(cw)),
            min(max(y0 / lay.fy - src[1], 0.0), float(ch)),
            min(max(x1 / lay.fx - src[0], 0.0), float(cw)),
            min(max(y1 / lay.fy - src[1], 0.0), float(ch)),
        )
        # Two 1-D passes (horizontal, then vertical), each over the other axis' full extent:
        # this reproduces exactly what one resize of the whole image gives, which PIL's single
        # 2-D call with a box on a crop does not always do.
        lanczos = Image.Resampling.LANCZOS
        img = Image.fromarray(np.ascontiguousarray(crop), "RGB")
        rows = img.resize((x1 - x0, ch), lanczos, box=(box[0], 0.0, box[2], float(ch)))
        out = rows.resize((x1 - x0, y1 - y0), lanczos, box=(0.0, box[1], float(x1 - x0), box[3]))
        return np.asarray(out, dtype=np.uint8)

    def patch_region(self, index: int) -> Rect4 | None:
        """The scaled-image rectangle where frame ``index`` differs from the scaled base."""
        patch = self.frames.patches[index]
        if patch.empty:
            return None
        lay = self.layout
        rx0, ry0, rx1, ry1 = rotate_rect(
            (patch.x0, patch.y0, patch.x0 + patch.width, patch.y0 + patch.height),
            self.frames.size,
            lay.rotation,
        )
        s = self.support
        region = (
            math.floor((rx0 - s) * lay.fx) - 1,
            math.floor((ry0 - s) * lay.fy) - 1,
            math.ceil((rx1 + s) * lay.fx) + 1,
            math.ceil((ry1 + s) * lay.fy) + 1,
        )
        return _intersect(region, lay.visible)


# -- the overlay ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overlay:
    """What the debug overlay shows; camera quantities are in camera-image pixels.

    Attributes:
        fps: Camera frames processed per second.
        image_size: ``(width, height)`` of the camera image the boxes refer to, pixels.
        faces: Faces found in that image (boxes and eye keypoints are drawn).
        viewer: The chosen viewer's face box, or None.
        index: The frame index gaze asked for, or None (the displayed one is shown then).
        state: Gaze state (``tracking``, ``holding``, ``idle``) or empty.
        regions: Where the finder ran the detector this frame (follow crop, sweep tiles, the
            whole-frame pass), camera pixels; drawn bright.
        band: The finder's head band, or None; drawn as its top and bottom lines.
        tiles: The band's whole tile grid, camera pixels; drawn faintly.
        follow: The follow crop searched this frame (one of ``regions``), or None; drawn in
            its own colour.
    """

    fps: float = 0.0
    image_size: tuple[int, int] = (640, 480)
    faces: tuple[Face, ...] = ()
    viewer: Box | None = None
    index: int | None = None
    state: str = ""
    regions: tuple[Box, ...] = ()
    band: Box | None = None
    tiles: tuple[Box, ...] = ()
    follow: Box | None = None


_OV_BG = (0, 0, 0, 170)
_OV_INSET = (25, 25, 25, 220)
_OV_TEXT = (235, 235, 235)
_OV_FACE = (60, 220, 60)
_OV_VIEWER = (255, 70, 70)
_OV_EYE = (0, 230, 255)
_OV_REGION = (250, 200, 0)
_OV_BAND = (90, 150, 255)
_OV_TILE = (75, 75, 95)
_OV_FOLLOW = (235, 60, 235)
_OV_BORDER = (120, 120, 120)
_OV_LEGEND = (
    ("band", _OV_BAND),
    ("tiles", _OV_TILE),
    ("ran", _OV_REGION),
    ("follow", _OV_FOLLOW),
    ("face", _OV_FACE),
    ("viewer", _OV_VIEWER),
)
"""Legend entries of the camera inset: label and the colour it is drawn in (opaque RGB)."""


@dataclass
class _Fade:
    """A cross-fade in progress over screen rectangle ``rect``."""

    rect: pygame.Rect
    source: pygame.Surface
    target_surface: pygame.Surface
    target: int
    start: float


@contextmanager
def _sdl_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set SDL environment variables while the display initialises, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Display:
    """The portrait on a screen.

    Only one Display may be open in a process at a time; open and close it as often as needed.

    Args:
        config: The ``[display]`` settings.
        frames: The frame set to draw.
        driver: Overrides ``config.driver`` (``auto``, ``kmsdrm``, ``window``, ``headless``).

    Attributes:
        driver: The driver actually in use: ``kmsdrm``, ``window`` or ``headless``.
        config: The settings it was opened with.

    Raises:
        DisplayError: The driver is unknown or cannot be opened (one line, naming it).
    """

    _active: ClassVar[Display | None] = None

    def __init__(self, config: DisplayConfig, frames: FrameSet, driver: str | None = None) -> None:
        self.config = config
        self.frames = frames
        self.driver = choose_driver(driver or config.driver)
        if Display._active is not None:
            raise DisplayError("a Display is already open in this process; close it first")
        self._closed = True
        self._open_screen()
        Display._active = self
        self._closed = False
        self._background = tuple(config.background)
        self._min_interval = 1.0 / config.max_fps
        self._fade_s = config.crossfade_ms / 1000.0
        self._debug = config.debug_overlay
        self._overlay_info: Overlay | None = None
        self._overlay_dirty = True
        self._overlay_surface: pygame.Surface | None = None
        self._overlay_rect: pygame.Rect | None = None
        self._hook_times: deque[float] = deque(maxlen=120)
        self._font: pygame.font.Font | None = None
        self._legend: pygame.Surface | None = None
        self._target = frames.rest_index
        self._current: int | None = None
        self._fade: _Fade | None = None
        self._last_draw: float | None = None
        try:
            self._lay_out()
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------------------
    def _open_screen(self) -> None:
        env = {"SDL_NO_SIGNAL_HANDLERS": "1"}
        flags = 0
        size = tuple(self.config.window_size)
        if self.driver == "headless":
            env["SDL_VIDEODRIVER"] = "dummy"
        elif self.driver == "kmsdrm":
            env["SDL_VIDEODRIVER"] = "kmsdrm"
            flags, size = pygame.FULLSCREEN, (0, 0)
        else:
            if os.environ.get("DISPLAY"):
                env["SDL_VIDEODRIVER"] = "x11"
            elif os.environ.get("WAYLAND_DISPLAY"):
                env["SDL_VIDEODRIVER"] = "wayland"
            else:
                raise DisplayError(
                    "cannot open the window display: neither DISPLAY nor WAYLAND_DISPLAY is set"
                )
            flags = pygame.RESIZABLE
        self._flags = flags
        try:
            with _sdl_env(env):
                pygame.display.init()
                screen = pygame.display.set_mode(size, flags)
            pygame.display.set_caption("monalisa")
            pygame.mouse.set_visible(False)
            pygame.font.init()
        except pygame.error as err:
            pygame.display.quit()
            msg = str(err).strip().replace("\n", " ") or "unknown SDL error"
            hint = ""
            if self.driver == "kmsdrm" and not Path("/dev/dri").is_dir():
                hint = " (no /dev/dri: no KMS graphics driver; on a Pi: dtoverlay=vc4-kms-v3d)"
            elif self.driver == "kmsdrm":
                hint = " (is a desktop using the screen? is the user in the video group?)"
            raise DisplayError(
                f"cannot open the {self.driver} display (SDL driver "
                f"{env.get('SDL_VIDEODRIVER', 'default')}): {msg}{hint}"
            ) from None
        if screen.get_width() < 1 or screen.get_height() < 1:
            pygame.display.quit()
            raise DisplayError(f"the {self.driver} display reports an empty screen size")
        self._screen = screen

    def _lay_out(self) -> None:
        """Pre-render base and patches for the current screen size."""
        screen = self._screen
        self.layout = compute_layout(
            screen.get_size(), self.frames.size, self.config.rotation, self.config.fit
        )
        lay = self.layout
        renderer = _Renderer(self.frames, lay)
        vis = lay.visible
        self._base_pos = lay.to_screen(vis)[:2]
        self._base_surface = self._surface(renderer.render(vis, None))
        rects: list[pygame.Rect | None] = []
        surfaces: list[pygame.Surface | None] = []
        for i in range(self.frames.count):
            region = renderer.patch_region(i)
            if region is None:
                rects.append(None)
                surfaces.append(None)
                continue
            x0, y0, x1, y1 = lay.to_screen(region)
            rects.append(pygame.Rect(x0, y0, x1 - x0, y1 - y0))
            surfaces.append(self._surface(renderer.render(region, i)))
        self._patch_rects = rects
        self._patch_surfaces = surfaces
        self._canvas = pygame.Surface(screen.get_size()).convert()
        self._canvas.fill(self._background)
        self._canvas.blit(self._base_surface, self._base_pos)
        self._canvas_index: int | None = None
        self._canvas_dirty: pygame.Rect | None = None
        self._current = None
        self._fade = None
        self._overlay_surface = None
        self._overlay_dirty = True
        self._font = None
        self._legend = None

    @staticmethod
    def _surface(rgb: np.ndarray) -> pygame.Surface:
        h, w = rgb.shape[:2]
        return pygame.image.frombuffer(np.ascontiguousarray(rgb).tobytes(), (w, h), "RGB").convert()

    # -- public API -------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the screen or window, pixels."""
        return self._screen.get_size()

    @property
    def shown_index(self) -> int | None:
        """The frame fully on screen (None before the first draw or mid-fade)."""
        return None if self._fade is not None else self._current

    @property
    def debug(self) -> bool:
        """Whether the debug overlay is shown (takes effect at the next :meth:`show`)."""
        return self._debug

    @debug.setter
    def debug(self, on: bool) -> None:
        if on != self._debug:
            self._debug = on
            self._overlay_dirty = True

    def set_overlay(self, info: Overlay | None) -> None:
        """Give the overlay new figures; drawn at the next :meth:`show` if the overlay is on."""
        if info != self._overlay_info:
            self._overlay_info = info
            self._overlay_dirty = True

    def overlay_hook(self, frame: Any, result: Any, record: Any, app: Any = None) -> None:
        """Feed the overlay from one loop iteration (the app calls this once per camera frame).

        Args:
            frame: The camera frame (an object with ``image``, H×W×3), only its size is used.
            result: The finder's result (``faces``, ``regions``, ``band``, ``tiles``,
                ``follow``; any may be missing) or None.
            record: The gaze record (``viewer_box``, ``index``, ``state``) or None.
            app: The calling app (unused; part of the hook's signature).
        """
        now = time.monotonic()
        self._hook_times.append(now)
        if not self._debug:
            return
        recent = [t for t in self._hook_times if now - t <= 2.0]
        fps = (len(recent) - 1) / max(now - recent[0], 1e-6) if len(recent) >= 2 else 0.0
        image = getattr(frame, "image", None)
        shape = getattr(image, "shape", None)
        size = (int(shape[1]), int(shape[0])) if shape is not None and len(shape) >= 2 else None
        if size is None and self._overlay_info is not None:
            size = self._overlay_info.image_size
        self.set_overlay(
            Overlay(
                fps=round(fps, 1),
                image_size=size or (640, 480),
                faces=tuple(getattr(result, "faces", ()) or ()),
                viewer=getattr(record, "viewer_box", None),
                index=getattr(record, "index", None),
                state=str(getattr(record, "state", "") or ""),
                regions=tuple(getattr(result, "regions", ()) or ()),
                band=getattr(result, "band", None),
                tiles=tuple(getattr(result, "tiles", ()) or ()),
                follow=getattr(result, "follow", None),
            )
        )

    def show(self, index: int, now: float) -> bool:
        """Show frame ``index``; draw only what changed, at most ``max_fps`` times a second.

        The first call draws the whole screen. Later calls draw when the index changed, a
        cross-fade is under way, or the (visible) overlay has new figures. A call that comes
        sooner than ``1 / max_fps`` after the last draw draws nothing; the requested frame is
        remembered and drawn by the next call (or by :meth:`screenshot`).

        Args:
            index: Frame to show, ``0 <= index < frames.count``.
            now: The current time in seconds (``time.monotonic()``); drives the cross-fade.

        Returns:
            True if anything was drawn.

        Raises:
            IndexError: ``index`` is out of range.
            DisplayError: The display was closed.
        """
        self._check_open()
        if not 0 <= index < self.frames.count:
            raise IndexError(f"frame index {index} out of range 0..{self.frames.count - 1}")
        self._target = index
        if self._current is None:
            self._draw_full()
            self._last_draw = now
            return True
        if self._last_draw is not None and 0.0 <= now - self._last_draw < self._min_interval:
            return False
        drew = self._advance(now, instant=False)
        if drew:
            self._last_draw = now
        return drew

    def poll(self) -> list[str]:
        """Handle window events; return the user's actions in order.

        ``quit`` for ``q``/``Esc`` (window driver) or the window's close button; ``toggle_debug``
        for ``d`` (the overlay is toggled here as well). A window resize re-lays the portrait
        out and an expose redraws it.
        """
        self._check_open()
        actions: list[str] = []
        resize: tuple[int, int] | None = None
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                actions.append("quit")
            elif event.type == pygame.KEYDOWN:
                if event.key in (pygame.K_q, pygame.K_ESCAPE) and self.driver == "window":
                    actions.append("quit")
                elif event.key == pygame.K_d:
                    self.debug = not self.debug
                    actions.append("toggle_debug")
            elif event.type == pygame.VIDEORESIZE:
                resize = (int(event.w), int(event.h))
            elif event.type in (pygame.WINDOWSIZECHANGED, pygame.WINDOWRESIZED):
                resize = (int(event.x), int(event.y))
            elif (
                event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE)
                and self._current is not None
            ):
                self._expose()
        if resize is not None and resize != self.layout.screen and min(resize) > 0:
            self._resize(resize)
        return actions

    def screenshot(self, path: str | Path) -> None:
        """Save the whole screen, as shown, to a PNG file.

        A frame change that :meth:`show` deferred (rate limit) or a cross-fade under way is
        completed first, so the picture is the last frame asked for.

        Raises:
            OSError: The file cannot be written; the message names the path.
        """
        self._check_open()
        self.flush()
        p = Path(path)
        img = Image.fromarray(self.pixels(), "RGB")
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            img.save(tmp, format="PNG")
            os.replace(tmp, p)
        except OSError as err:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            error = OSError(f"{p}: cannot save the screenshot: {err.strerror or err}")
            error.errno = err.errno
            raise error from err

    def pixels(self) -> np.ndarray:
        """Return the screen exactly as shown now (no flush) as ``H×W×3`` uint8 RGB."""
        self._check_open()
        data = pygame.image.tobytes(self._screen, "RGB")
        w, h = self.size
        return np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()

    def flush(self) -> None:
        """Complete any pending frame change or cross-fade now (ignores the rate limit)."""
        self._check_open()
        if self._current is None:
            self._draw_full()
        else:
            self._advance(math.inf, instant=True)

    def surface_bytes(self) -> int:
        """Bytes of pixel memory held in pre-rendered surfaces (base, patches, canvas)."""
        surfaces = [self._base_surface, self._canvas, *self._patch_surfaces]
        return sum(s.get_height() * s.get_pitch() for s in surfaces if s is not None)

    def close(self) -> None:
        """Release the screen (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if Display._active is self:
            Display._active = None
        pygame.font.quit()
        pygame.display.quit()

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drawing ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DisplayError("the display is closed")

    def _compose(self, index: int, rect: pygame.Rect) -> pygame.Surface:
        """Frame ``index`` within screen rectangle ``rect`` as a new surface."""
        out = pygame.Surface(rect.size).convert()
        self._paint_frame(index, rect, out, rect.topleft)
        return out

    def _paint_frame(
        self,
        index: int,
        rect: pygame.Rect,
        dest: pygame.Surface | None = None,
        origin: tuple[int, int] = (0, 0),
    ) -> None:
        """Paint frame ``index`` inside screen rectangle ``rect`` onto ``dest`` (the canvas).

        Only the pixels of ``rect`` are touched: the base's part of it, then the part of the
        frame's patch that falls inside it. ``origin`` is the screen position of ``dest``'s
        top-left corner.
        """
        out = self._canvas if dest is None else dest
        ox, oy = origin
        bx, by = self._base_pos
        base_rect = self._base_surface.get_rect(topleft=(bx, by))
        if not base_rect.contains(rect):
            out.fill(self._background, rect.move(-ox, -oy))
        inside = base_rect.clip(rect)
        if inside.w and inside.h:
            out.blit(self._base_surface, (inside.x - ox, inside.y - oy), inside.move(-bx, -by))
        patch, prect = self._patch_surfaces[index], self._patch_rects[index]
        if patch is not None and prect is not None:
            hit = prect.clip(rect)
            if hit.w and hit.h:
                out.blit(patch, (hit.x - ox, hit.y - oy), hit.move(-prect.x, -prect.y))

    def _draw_full(self) -> None:
        index = self._target
        self._canvas.fill(self._background)
        self._canvas.blit(self._base_surface, self._base_pos)
        patch, prect = self._patch_surfaces[index], self._patch_rects[index]
        if patch is not None and prect is not None:
            self._canvas.blit(patch, prect)
        self._current, self._fade = index, None
        self._canvas_dirty = prect
        self._screen.blit(self._canvas, (0, 0))
        self._overlay_rect = None
        if self._debug:
            self._overlay_surface, self._overlay_rect = self._render_overlay()
            self._screen.blit(self._overlay_surface, self._overlay_rect)
        self._overlay_dirty = False
        pygame.display.flip()

    def _step_frame(self, now: float, instant: bool) -> list[pygame.Rect]:
        """Advance the canvas towards the target frame; return the screen rects changed."""
        target = self._target
        fade = self._fade
        if fade is None and target == self._current:
            return []
        if fade is None or fade.target != target:
            old = fade.rect if fade is not None else self._canvas_dirty
            new = self._patch_rects[target]
            union = old.union(new) if old is not None and new is not None else (old or new)
            if union is None:  # both frames equal the base: nothing to draw
                self._current, self._fade, self._canvas_dirty = target, None, None
                return []
            if instant or self._fade_s <= 0.0:
                self._paint_frame(target, union)
                self._current, self._fade, self._canvas_dirty = target, None, new
                return [union]
            fade = _Fade(
                rect=union,
                source=self._canvas.subsurface(union).copy(),
                target_surface=self._compose(target, union),
                target=target,
                start=now,
            )
            self._fade = fade
        progress = 1.0 if instant else (now - fade.start + self._min_interval) / self._fade_s
        if progress >= 1.0:
            self._canvas.blit(fade.target_surface, fade.rect)
            self._current, self._fade = target, None
            self._canvas_dirty = self._patch_rects[target]
        else:
            self._canvas.blit(fade.source, fade.rect)
            fade.target_surface.set_alpha(max(1, min(254, round(255 * max(progress, 0.0)))))
            self._canvas.blit(fade.target_surface, fade.rect)
            fade.target_surface.set_alpha(None)
            self._canvas_dirty = fade.rect
        return [fade.rect]

    def _advance(self, now: float, instant: bool) -> bool:
        dirty = self._step_frame(now, instant)
        overlay_changed = self._debug != (self._overlay_rect is not None) or (
            self._debug and self._overlay_dirty
        )
        if not dirty and not overlay_changed:
            return False
        old = self._overlay_rect
        # The overlay is translucent: wherever it is redrawn, the portrait under it is restored
        # from the canvas first (the whole old overlay area, not only the changed patch).
        redraw = old is not None and (overlay_changed or old.collidelist(dirty) >= 0)
        if redraw and old is not None:
            dirty.append(old)
        for rect in dirty:
            self._screen.blit(self._canvas, rect, rect)
        if self._debug:
            ov_surface, ov_rect = self._overlay_surface, self._overlay_rect
            if overlay_changed or ov_surface is None or ov_rect is None:
                ov_surface, ov_rect = self._render_overlay()
                self._overlay_surface, self._overlay_rect = ov_surface, ov_rect
            if redraw or overlay_changed:
                self._screen.blit(ov_surface, ov_rect)
                dirty.append(ov_rect)
        else:
            self._overlay_rect = None
        self._overlay_dirty = False
        pygame.display.update(dirty)
        return True

    def _expose(self) -> None:
        """Repaint the whole window from the canvas (after the window system lost it)."""
        self._screen.blit(self._canvas, (0, 0))
        if self._debug and self._overlay_surface is not None and self._overlay_rect is not None:
            self._screen.blit(self._overlay_surface, self._overlay_rect)
        pygame.display.flip()

    def _resize(self, size: tuple[int, int]) -> None:
        surface = pygame.display.get_surface()
        if surface is None or surface.get_size() != size:
            surface = pygame.display.set_mode(size, self._flags)
        self._screen = surface
        self._lay_out()
        self._draw_full()

    # -- overlay ----------------------------------------------------------------------------
    def _render_overlay(self) -> tuple[pygame.Surface, pygame.Rect]:
        """Render the overlay, upright for the viewer, at the portrait's top-left corner.

        The camera inset shows, back to front: the band's whole tile grid (faint), the regions
        the detector ran on this frame (bright), the head band's top and bottom lines, the
        follow crop (its own colour), the faces with their eyes, and the chosen viewer. A
        legend of those colours is rendered once and kept. Only called while the overlay is
        on and its figures changed, so its cost (a few dozen rectangle outlines and the text
        lines) is never paid otherwise.
        """
        rotation = self.config.rotation
        sw, sh = self.size
        lw, lh = (sh, sw) if rotation in (90, 270) else (sw, sh)
        info = self._overlay_info
        cam_w, cam_h = info.image_size if info is not None else (640, 480)
        iw = int(min(max(lw * 0.3, 120), 480, lw - 16))
        ih = max(1, round(iw * cam_h / max(cam_w, 1)))
        if self._font is None:
            self._font = pygame.font.Font(None, max(14, iw // 14))
        font = self._font
        if self._legend is None:
            self._legend = self._render_legend(font)
        legend = self._legend
        shown = self._target
        count = self.frames.count
        if info is None:
            lines = [f"frame {shown}/{count - 1}", "no camera data yet"]
        else:
            idx = shown if info.index is None else info.index
            sweeps = len(info.regions) - (info.follow is not None)
            tiles = f"   tiles {sweeps}/{len(info.tiles)}" if info.tiles else ""
            lines = [
                f"{info.fps:.1f} fps   frame {idx}/{count - 1}   {info.state}".rstrip(),
                f"faces {len(info.faces)}   viewer {'yes' if info.viewer else 'none'}"
                f"   inferences {len(info.regions)}",
                f"camera {cam_w}x{cam_h}{tiles}   follow {'yes' if info.follow else 'no'}",
            ]
        texts = [font.render(line, True, _OV_TEXT) for line in lines]
        if info is not None:
            texts.append(legend)
        pad = 6
        width = max([iw, *(t.get_width() for t in texts)]) + 2 * pad
        height = pad + ih + pad + sum(t.get_height() for t in texts) + pad
        surf = pygame.Surface((width, height), pygame.SRCALPHA)
        surf.fill(_OV_BG)
        inset = pygame.Rect(pad, pad, iw, ih)
        surf.fill(_OV_INSET, inset)
        pygame.draw.rect(surf, _OV_BORDER, inset, 1)
        if info is not None:
            self._draw_camera(surf, inset, info)
        y = inset.bottom + pad
        for t in texts:
            surf.blit(t, (pad, y))
            y += t.get_height()
        if rotation:
            surf = pygame.transform.rotate(surf, -rotation)
        margin = 8
        x0, y0, x1, y1 = rotate_rect(
            (margin, margin, margin + width, margin + height), (lw, lh), rotation
        )
        return surf, pygame.Rect(x0, y0, x1 - x0, y1 - y0)

    @staticmethod
    def _render_legend(font: pygame.font.Font) -> pygame.Surface:
        """One line naming each inset colour, each label in its colour (rendered once)."""
        labels = [font.render(name, True, colour) for name, colour in _OV_LEGEND]
        gap = font.size(" ")[0] * 2
        width = sum(t.get_width() for t in labels) + gap * (len(labels) - 1)
        out = pygame.Surface((max(1, width), max(t.get_height() for t in labels)), pygame.SRCALPHA)
        x = 0
        for t in labels:
            out.blit(t, (x, 0))
            x += t.get_width() + gap
        return out

    @staticmethod
    def _draw_camera(surf: pygame.Surface, inset: pygame.Rect, info: Overlay) -> None:
        """Draw the finder's plan and the faces into ``inset`` (camera pixels scaled to it)."""
        k = inset.width / max(info.image_size[0], 1)

        def box_rect(b: Box) -> pygame.Rect:
            return pygame.Rect(
                round(inset.x + b.x0 * k),
                round(inset.y + b.y0 * k),
                max(1, round(b.width * k)),
                max(1, round(b.height * k)),
            )

        surf.set_clip(inset)
        for tile in info.tiles:
            pygame.draw.rect(surf, _OV_TILE, box_rect(tile), 1)
        for region in info.regions:
            if region != info.follow:
                pygame.draw.rect(surf, _OV_REGION, box_rect(region), 1)
        if info.band is not None:
            band = box_rect(info.band)
            for row in (band.top, band.bottom - 1):
                pygame.draw.line(surf, _OV_BAND, (inset.left, row), (inset.right - 1, row))
        if info.follow is not None:
            pygame.draw.rect(surf, _OV_FOLLOW, box_rect(info.follow), 2)
        for face in info.faces:
            pygame.draw.rect(surf, _OV_FACE, box_rect(face.box), 2)
            for eye in (face.right_eye, face.left_eye):
                center = (round(inset.x + eye.x * k), round(inset.y + eye.y * k))
                pygame.draw.circle(surf, _OV_EYE, center, 2)
        if info.viewer is not None:
            pygame.draw.rect(surf, _OV_VIEWER, box_rect(info.viewer), 3)
        surf.set_clip(None)


def frame_on_screen(
    frame: np.ndarray, screen: tuple[int, int], rotation: int, fit: str, background: Sequence[int]
) -> np.ndarray:
    """Reference picture: a whole frame rotated, scaled and placed as :class:`Display` does.

    Used by tests and benchmarks to check what is on screen (no pygame involved).

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
