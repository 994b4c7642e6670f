"""Drawing the portrait with pygame-ce: KMSDRM fullscreen, a window, or headless.

This is the only module of the product that imports pygame (the webcam source aside). It draws
and does nothing else: the loop tells it which frame to show (:meth:`Display.show`) and what the
debug overlay shows (:meth:`Display.set_overlay`), and it reports key presses
(:meth:`Display.poll`).

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
pixel format once (see :mod:`appliance.display.prepare`: the scaled base comes from a cache
when there is one; with ``background=True`` the rest frame is drawn first and the other
patches are decoded and rendered in a worker thread, in stages each taken up by a later
:meth:`Display.show`; a frame not rendered yet shows the nearest one that is). A patch is
rendered from a margin around it so that it is pixel-identical to scaling the whole frame (no
seams), and kept as the pieces of it that differ from the base (one per eye). The base is
drawn once; on a frame change only the old and the new patch rectangles are redrawn and passed
to ``pygame.display.update``. Nothing is drawn while the frame stays the same. A cross-fade
(``crossfade_ms``) blends the old and the new patch region over successive :meth:`Display.show`
calls.

The screen's contents are kept in an offscreen canvas (the portrait only); the debug overlay is
drawn over it on the screen, so hiding the overlay or fading under it never needs a re-render.
What the overlay shows and where its shapes go is worked out in :mod:`appliance.display.overlay`;
the geometry and the resampling are in :mod:`appliance.display.layout`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import ClassVar

import numpy as np
from PIL import Image

from appliance.config import DisplayConfig
from appliance.display import overlay as ov
from appliance.display.layout import (
    DisplayError,
    Layout,
    ScreenNotThere,
    choose_driver,
    compute_layout,
)
from appliance.display.overlay import Overlay
from appliance.display.prepare import (
    Piece,
    Prepared,
    Rendered,
    SlowStep,
    prepare_base,
    render_patches,
    render_stages,
    save_cache,
)
from appliance.frames import FrameSet, Manifest, Portrait
from appliance.worker import in_background

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # (imported after the prompt switch above)

log = logging.getLogger(__name__)


@dataclass
class _Fade:
    """A cross-fade in progress over screen rectangle ``rect``."""

    rect: pygame.Rect
    source: pygame.Surface
    target_surface: pygame.Surface
    target: int
    start: float


def nearest_ready(grid: Manifest, ready: Sequence[bool]) -> list[int]:
    """Per frame, the frame drawn for it: itself when ready, else the nearest ready one.

    Nearest in the grid: fewest steps of gaze, row and lid phase together; among equals the
    more open lids, then the same row, then the lower index. The rest frame is always ready
    (it is rendered before anything is shown), so every frame has one.

    Args:
        grid: The set's manifest (frames addressed by gaze, row and lid phase).
        ready: Per frame, whether its patch is rendered.
    """
    gazes, phases = grid.gazes, len(grid.lid_phases)
    index = np.arange(len(ready))
    gaze, lid, row = index % gazes, (index // gazes) % phases, index // (gazes * phases)
    good = np.flatnonzero(np.asarray(ready, bool))
    if good.size == 0:
        good = np.array([grid.rest])
    bad = np.flatnonzero(~np.asarray(ready, bool))
    shown = index.copy()
    if bad.size:
        # One integer per (bad, good) pair ordering them as the text says (numpy, not a loop:
        # run on the render loop when a stage is taken up, 660 x 660 at most).
        n = len(ready) + 1
        drow = np.abs(row[bad, None] - row[None, good])
        steps = np.abs(gaze[bad, None] - gaze[None, good]) + np.abs(
            lid[bad, None] - lid[None, good]
        )
        cost = (((steps + drow) * n + lid[None, good]) * n + drow) * n + good[None, :]
        shown[bad] = good[np.argmin(cost, axis=1)]
    return [int(i) for i in shown]


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
        config: The ``[display]`` section.
        frames: The frame set, loaded (:class:`FrameSet`) or opened (:class:`Portrait`).
        driver: Overrides ``config.driver`` (``auto``, ``kmsdrm``, ``window``, ``headless``).
        cache_dir: Where the base scaled to the screen is cached (see
            :mod:`appliance.display.prepare`), or None for no cache.
        background: Render the patches in a worker thread after the rest frame's (each
            frame shows as the base until they are taken up), instead of before returning.
        slow: Told before the base image is decoded (a cache miss), e.g. to extend systemd's
            start timeout.

    Attributes:
        driver: The driver actually in use: ``kmsdrm``, ``window`` or ``headless``.

    Raises:
        ScreenNotThere: The driver's screen cannot be opened now (SDL fails to open it, or
            reports an empty screen); trying again later may work (one line, naming it).
        DisplayError: The driver is unknown or cannot be used in this process (no
            ``DISPLAY`` for a window, a Display already open) (one line, naming it).
    """

    _active: ClassVar[Display | None] = None

    def __init__(
        self,
        config: DisplayConfig,
        frames: FrameSet | Portrait,
        driver: str | None = None,
        *,
        cache_dir: Path | None = None,
        background: bool = False,
        slow: SlowStep | None = None,
    ) -> None:
        self.config = config
        self.frames = Portrait.of(frames) if isinstance(frames, FrameSet) else frames
        self._cache_dir = cache_dir
        self._slow = slow
        self._deferred = background
        self._pending: Future[Prepared] | None = None
        self._stages: SimpleQueue[tuple[Prepared, Rendered]] = SimpleQueue()
        self._shown_for: list[int] = []
        self._ready: list[bool] = []
        self._base_is_preview = False
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
        self._overlay_frame: str | None = None  # the frame text the overlay last showed
        self._overlay_surface: pygame.Surface | None = None
        self._overlay_rect: pygame.Rect | None = None
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
            raise ScreenNotThere(
                f"cannot open the {self.driver} display (SDL driver "
                f"{env.get('SDL_VIDEODRIVER', 'default')}): {msg}{hint}"
            ) from None
        if screen.get_width() < 1 or screen.get_height() < 1:
            pygame.display.quit()
            raise ScreenNotThere(f"the {self.driver} display reports an empty screen size")
        self._screen = screen

    def _lay_out(self) -> None:
        """Pre-render base and patches for the current screen size.

        The base (from the cache, or decoded and scaled) and the rest frame's patch are ready
        on return; the other patches too, unless they are rendered in the background.
        """
        screen = self._screen
        self.layout = compute_layout(
            screen.get_size(), self.frames.size, self.config.rotation, self.config.fit
        )
        lay = self.layout
        prepared = prepare_base(
            self.frames, lay, self._cache_dir, self._slow, preview_first=self._deferred
        )
        self._base_pos = lay.to_screen(lay.visible)[:2]
        self._base_surface = self._surface(prepared.base)
        self._base_is_preview = prepared.preview
        if not self._deferred:
            self._save_cache(prepared)
            self._adopt(render_patches(self.frames, prepared))
        elif prepared.preview:  # the eyes stay at rest until the full base is decoded
            rest, count = self.frames.rest_index, self.frames.count
            none: list[list[Piece]] = [[] for _ in range(count)]
            self._adopt(Rendered(none, [i == rest for i in range(count)], [None] * count))
            self._pending = in_background("monalisa-patches", lambda: self._render_full(lay))
        else:
            rest = self.frames.rest_index
            shared: dict[str, list[Piece]] = {}
            self._adopt(render_patches(self.frames, prepared, frames=[rest], shared=shared))
            self._pending = in_background(
                "monalisa-patches", lambda: self._render(prepared, shared)
            )
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

    def _save_cache(self, prepared: Prepared) -> None:
        """Write the base scaled to the screen to the cache after a miss (a failure logged)."""
        if self._cache_dir is None or prepared.cached:
            return
        try:
            path = save_cache(self._cache_dir, self.frames, prepared)
        except OSError as err:
            log.warning("cannot write the portrait cache in %s: %s", self._cache_dir, err)
        else:
            if path is not None:
                log.info("portrait scaled to the screen cached in %s", path)

    def _render(self, prepared: Prepared, shared: dict[str, list[Piece]] | None = None) -> Prepared:
        """Write the cache after a miss, then render the patches stage by stage; in the worker.

        The cache first: it holds the base and the head region only, so a restart soon after a
        first start finds it even when the many patches of a grid take a while. Each stage of
        :func:`render_stages` is handed to the render loop as soon as it is rendered; a patch
        file several frames name is rendered once across the stages (``shared``, by name).
        """
        self._save_cache(prepared)
        shared = {} if shared is None else shared
        for stage in render_stages(self.frames.grid):
            rendered = render_patches(self.frames, prepared, frames=stage, shared=shared)
            self._stages.put((prepared, rendered))
        return prepared

    def _render_full(self, layout: Layout) -> Prepared:
        """Decode and scale the full base, then :meth:`_render`; runs in the worker."""
        return self._render(prepare_base(self.frames, layout, self._cache_dir))

    def _adopt(self, rendered: Rendered) -> None:
        """Make pygame surfaces of rendered patches (on the thread that owns the screen).

        A frame not rendered (not yet, or its patch unreadable) is drawn as the nearest one
        that is (:func:`nearest_ready`).
        """
        count = self.frames.count
        self._patch_rects: list[pygame.Rect | None] = [None] * count
        self._patch_pieces: list[list[tuple[pygame.Rect, pygame.Surface]]] = [[]] * count
        self._ready = [False] * count
        self._by_file: dict[str, list[tuple[pygame.Rect, pygame.Surface]]] = {}
        self._merge(rendered)

    def _merge(self, rendered: Rendered) -> None:
        """Take up the frames ``rendered`` holds (ready ones), keeping the others as they are.

        Frames from one patch file share its surfaces (made for the first of them).
        """
        for i, ok in enumerate(rendered.ready):
            if not ok:
                continue
            name = rendered.files[i]
            drawn = self._by_file.get(name) if name is not None else None
            if drawn is None:
                drawn = [
                    (pygame.Rect(x0, y0, x1 - x0, y1 - y0), self._surface(rgb))
                    for (x0, y0, x1, y1), rgb in rendered.patches[i]
                ]
                if name is not None:
                    self._by_file[name] = drawn
            self._patch_rects[i] = (
                drawn[0][0].unionall([r for r, _ in drawn[1:]]) if drawn else None
            )
            self._patch_pieces[i] = drawn
            self._ready[i] = True
        self._shown_for = nearest_ready(self.frames.grid, self._ready)

    def _take_up(self, wait: bool = False) -> None:
        """Take up the stages of patches (and the full base) rendered in the background so far.

        With ``wait``, wait for the worker to finish first. After a stage the next draw is a
        full one. Results for an older layout (the window was resized meanwhile) are dropped. A
        failure (the base image unreadable after its preview was shown) is logged: the portrait
        stays up with its eyes at rest.
        """
        pending = self._pending
        if pending is None:
            return
        done = wait or pending.done()
        if done:
            with suppress(Exception):
                pending.result()  # waits; a failure is logged below
        took = False
        while not self._stages.empty():
            prepared, rendered = self._stages.get_nowait()
            if prepared.layout != self.layout:
                continue
            if self._base_is_preview:  # the full base: only what is rendered on it is ready
                self._base_surface = self._surface(prepared.base)
                self._base_is_preview = False
                self._adopt(rendered)
            else:
                self._merge(rendered)
            took = True
        if took:
            self._current, self._fade = None, None
        if not done:
            return
        self._pending = None
        try:
            pending.result()
        except Exception as err:  # e.g. base.png damaged after the preview was shown
            log.error("the portrait's eyes stay at rest: %s", err)

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
    def frames_ready(self) -> int:
        """How many frames are rendered so far (taken up by :meth:`show`).

        A frame not yet rendered shows the nearest one that is; before the full base of a set
        shown from its preview, only the rest frame counts (it shows the preview).
        """
        return sum(self._ready)

    def drawn_for(self, index: int) -> int:
        """The frame drawn when frame ``index`` is asked for, as of the last :meth:`show`.

        ``index`` itself once its patch is rendered and taken up; until then the nearest frame
        that is (:func:`nearest_ready`).

        Raises:
            IndexError: ``index`` is out of range.
        """
        return self._shown_for[index]

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
        self._take_up()
        if self._debug and self._frame_text() != self._overlay_frame:
            self._overlay_dirty = True  # another frame asked or drawn: the overlay says so
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

    def blank(self) -> None:
        """Fill the whole screen with black (the gallery is closed).

        The portrait's canvas is kept: the next :meth:`show` draws the whole screen again.

        Raises:
            DisplayError: The display was closed.
        """
        self._check_open()
        self._screen.fill((0, 0, 0))
        pygame.display.flip()
        self._current, self._fade, self._overlay_rect = None, None, None

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
        """Complete any pending frame change or cross-fade now (ignores the rate limit).

        Patches still being rendered in the background are waited for first.
        """
        self._check_open()
        self._take_up(wait=True)
        if self._current is None:
            self._draw_full()
        else:
            self._advance(math.inf, instant=True)

    def surface_bytes(self) -> int:
        """Bytes of pixel memory held in pre-rendered surfaces (base, patches, canvas)."""
        surfaces = [self._base_surface, self._canvas]
        return self.patch_bytes() + sum(s.get_height() * s.get_pitch() for s in surfaces)

    def patch_bytes(self) -> int:
        """Bytes of pixel memory held in the pre-rendered patches (their pieces) alone.

        A surface frames share (one patch file) is counted once.
        """
        held = {id(surface): surface for drawn in self._patch_pieces for _, surface in drawn}
        return sum(s.get_height() * s.get_pitch() for s in held.values())

    def close(self) -> None:
        """Release the screen (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._pending = None  # a worker still running is a daemon: it ends with the process
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
        for prect, patch in self._patch_pieces[index]:
            hit = prect.clip(rect)
            if hit.w and hit.h:
                out.blit(patch, (hit.x - ox, hit.y - oy), hit.move(-prect.x, -prect.y))

    def _draw_full(self) -> None:
        index = self._shown_for[self._target]
        self._canvas.fill(self._background)
        self._canvas.blit(self._base_surface, self._base_pos)
        for prect, patch in self._patch_pieces[index]:
            self._canvas.blit(patch, prect)
        self._current, self._fade = index, None
        self._canvas_dirty = self._patch_rects[index]
        self._screen.blit(self._canvas, (0, 0))
        self._overlay_rect = None
        if self._debug:
            self._overlay_surface, self._overlay_rect = self._render_overlay()
            self._screen.blit(self._overlay_surface, self._overlay_rect)
        self._overlay_dirty = False
        pygame.display.flip()

    def _step_frame(self, now: float, instant: bool) -> list[pygame.Rect]:
        """Advance the canvas towards the target frame; return the screen rects changed."""
        target = self._shown_for[self._target]
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

        The text and the camera inset's shapes come from :mod:`appliance.display.overlay`; a
        legend of the inset's colours is rendered once and kept. Only called while the overlay
        is on and its figures changed, so its cost (a few dozen rectangle outlines and the text
        lines) is never paid otherwise.
        """
        rotation = self.config.rotation
        upright = ov.upright_size(self.size, rotation)
        info = self._overlay_info
        iw, ih = ov.inset_size(upright, info)
        if self._font is None:
            self._font = pygame.font.Font(None, max(14, iw // 14))
        font = self._font
        if self._legend is None:
            self._legend = self._render_legend(font)
        self._overlay_frame = self._frame_text()
        lines = ov.text_lines(info, self._overlay_frame)
        texts = [font.render(line, True, ov.TEXT) for line in lines]
        if info is not None:
            texts.append(self._legend)
        pad = ov.PAD
        width = max([iw, *(t.get_width() for t in texts)]) + 2 * pad
        height = pad + ih + pad + sum(t.get_height() for t in texts) + pad
        surf = pygame.Surface((width, height), pygame.SRCALPHA)
        surf.fill(ov.BACKGROUND)
        inset = pygame.Rect(pad, pad, iw, ih)
        surf.fill(ov.INSET, inset)
        pygame.draw.rect(surf, ov.BORDER, inset, 1)
        if info is not None:
            surf.set_clip(inset)
            for shape in ov.camera_shapes(info, (inset.x, inset.y, inset.w, inset.h)):
                _draw(surf, shape)
            surf.set_clip(None)
        y = inset.bottom + pad
        for t in texts:
            surf.blit(t, (pad, y))
            y += t.get_height()
        if rotation:
            surf = pygame.transform.rotate(surf, -rotation)
        x0, y0, x1, y1 = ov.placement((width, height), upright, rotation)
        return surf, pygame.Rect(x0, y0, x1 - x0, y1 - y0)

    def _frame_text(self) -> str:
        """The overlay's frame figure: the frame drawn, and the one asked when it is another."""
        target = self._target
        return ov.frame_text(
            target, self.frames.count, self._shown_for[target], self._pending is not None
        )

    @staticmethod
    def _render_legend(font: pygame.font.Font) -> pygame.Surface:
        """One line naming each inset colour, each label in its colour (rendered once)."""
        labels = [font.render(name, True, colour) for name, colour in ov.LEGEND]
        gap = font.size(" ")[0] * 2
        width = sum(t.get_width() for t in labels) + gap * (len(labels) - 1)
        out = pygame.Surface((max(1, width), max(t.get_height() for t in labels)), pygame.SRCALPHA)
        x = 0
        for t in labels:
            out.blit(t, (x, 0))
            x += t.get_width() + gap
        return out


def _draw(surf: pygame.Surface, shape: ov.Shape) -> None:
    """Draw one of the overlay's shapes."""
    if isinstance(shape, ov.Outline):
        pygame.draw.rect(surf, shape.colour, pygame.Rect(shape.rect), shape.width)
    elif isinstance(shape, ov.Line):
        pygame.draw.line(surf, shape.colour, shape.start, shape.end)
    else:
        pygame.draw.circle(surf, shape.colour, shape.center, shape.radius)
