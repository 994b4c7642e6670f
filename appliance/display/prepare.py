"""The portrait in screen pixels: the base scaled once (and cached), the patches rendered after.

Start-up must not grow with the painting. The one step that does is the base image: decoding a
100 Mpx PNG and scaling it to the screen takes tens of seconds on a Pi 4. So it is done once and
its result kept in a cache file, named by the set's content (:attr:`Portrait.key`) and the
layout (screen size, rotation, fit) and the library versions that make the pixels: the scaled
base as shown, plus the full-size pixels of the head region (``head_box`` widened by
:func:`~appliance.display.layout.patch_margin`), which is all that rendering the patches reads.
A start with the cache reads one file of a few MB; a start without it decodes the base (the
caller is told first, so it can ask systemd for more time) and the cache is written afterwards,
off the render loop (:func:`save_cache`), in place of any older one. When the cache holds nothing
for the set (:func:`is_cached`), the runner has the base decoded in a background thread from
the moment the set is opened (:meth:`Portrait.prefetch_base`), while the model and the camera
load.

Patches are rendered from the head region (:func:`render_patches`), pixel for pixel what
scaling each whole frame would give; the display does that in a worker thread once the rest
frame is on screen, each patch decoded from its file there (opening the set decodes the rest
frame's patch only: start-up does not grow with the number of frames); a file several frames
name (a shut blink at every gaze) is decoded and rendered once, its pieces shared. A large
painting's set also holds a preview (the base at most 1920 px long): on a cache miss the
display first shows the rest frame scaled from it, sends READY, and decodes the full base in
the worker (the eyes follow once it is up: for 100 Mpx on a Pi 4 about a minute, estimated);
only a set without a preview has the base decoded before the first frame. The cache folder is
``$CACHE_DIRECTORY`` under systemd (``CacheDirectory=monalisa`` in the unit:
``/var/cache/monalisa``); without one nothing is
cached. A cache file that cannot be read is ignored (and replaced): it can only cost time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL

from appliance.display.layout import Layout, Rect4, Renderer, patch_margin, scale_image
from appliance.frames import FrameSetError, Manifest, Portrait

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever the cache file's content or the rendering changes."""

CACHE_ENV = "CACHE_DIRECTORY"
"""The environment variable naming the cache folder (set by systemd's ``CacheDirectory=``)."""

SlowStep = Callable[[str, float], None]
"""Told ``(reason, megapixels)`` before the base image is decoded (the slow step)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """The base in screen pixels and what rendering the patches needs.

    Attributes:
        layout: The layout it was made for.
        base: ``layout.visible`` of the scaled portrait, ``h×w×3`` uint8 RGB.
        held: The region of the unrotated, full-size base kept for the patches, pixels.
        head: The full-size base's pixels in ``held``, uint8 RGB.
        cached: True when it was read from the cache.
        preview: True when ``base`` was scaled from the set's preview: a stand-in shown
            until the full base is decoded (``held`` is then empty: no patch can be rendered).
    """

    layout: Layout
    base: np.ndarray
    held: Rect4
    head: np.ndarray
    cached: bool
    preview: bool = False


def cache_dir_from_env() -> Path | None:
    """The cache folder systemd gives the service (``$CACHE_DIRECTORY``), or None."""
    value = os.environ.get(CACHE_ENV, "")
    # systemd joins several folders with ':'; the first is ours.
    first = value.split(":")[0]
    return Path(first) if first else None


def held_region(portrait: Portrait, layout: Layout) -> Rect4:
    """``head_box`` widened by what rendering the patches for ``layout`` reads, in the image."""
    m = patch_margin(layout)
    hb = portrait.head_box
    w, h = portrait.size
    return (
        max(0, math.floor(hb.x0) - m),
        max(0, math.floor(hb.y0) - m),
        min(w, math.ceil(hb.x1) + m),
        min(h, math.ceil(hb.y1) + m),
    )


def cache_path(cache_dir: Path, portrait: Portrait, layout: Layout) -> Path | None:
    """The cache file for this set and layout, or None for a set without a key."""
    if portrait.key is None:
        return None
    parts = [
        f"v{CACHE_VERSION}",
        portrait.key,
        f"screen={layout.screen}",
        f"rotation={layout.rotation}",
        f"scaled={layout.scaled}",
        f"offset={layout.offset}",
        f"pillow={PIL.__version__}",
        f"numpy={np.__version__}",
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return cache_dir / f"portrait-{portrait.key[:16]}-{digest}.npz"


def is_cached(cache_dir: Path | None, portrait: Portrait) -> bool:
    """True when the cache holds this set for some layout (most likely the screen's).

    Read before the screen is open, to decide whether decoding the base early is worth it.
    """
    if cache_dir is None or portrait.key is None:
        return False
    try:
        return any(cache_dir.glob(f"portrait-{portrait.key[:16]}-*.npz"))
    except OSError:
        return False


def _load_cache(path: Path, portrait: Portrait, layout: Layout) -> Prepared | None:
    """The prepared base from ``path``, or None when it is missing or does not fit."""
    try:
        with np.load(path, allow_pickle=False) as data:
            base, head, held = data["base"], data["head"], data["held"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning("%s: cache file unreadable, ignored (%s)", path, err)
        return None
    vx0, vy0, vx1, vy1 = layout.visible
    rect = tuple(int(v) for v in held.tolist()) if held.shape == (4,) else ()
    if (
        base.dtype != np.uint8
        or head.dtype != np.uint8
        or base.shape != (vy1 - vy0, vx1 - vx0, 3)
        or rect != held_region(portrait, layout)
        or head.shape != (rect[3] - rect[1], rect[2] - rect[0], 3)
    ):
        log.warning("%s: cache file does not fit this set and screen, ignored", path)
        return None
    return Prepared(layout, base, (rect[0], rect[1], rect[2], rect[3]), head, cached=True)


def _from_preview(portrait: Portrait, layout: Layout) -> Prepared | None:
    """The base scaled to ``layout`` from the set's preview, or None when it has none."""
    small = portrait.read_preview()
    if small is None:
        return None
    ph, pw = small.shape[:2]
    image = (ph, pw) if layout.rotation in (90, 270) else (pw, ph)
    # The same place on the screen; only the source is smaller.
    lay = dataclasses.replace(layout, image=image)
    base = Renderer(lay, (pw, ph), (), (0, 0, pw, ph), small).render(layout.visible, None)
    none = np.zeros((0, 0, 3), np.uint8)
    return Prepared(layout, base, (0, 0, 0, 0), none, cached=False, preview=True)


def prepare_base(
    portrait: Portrait,
    layout: Layout,
    cache_dir: Path | None = None,
    slow: SlowStep | None = None,
    *,
    preview_first: bool = False,
) -> Prepared:
    """The base scaled to ``layout``: from the cache when it holds it, else decoded and scaled.

    Args:
        portrait: The opened set.
        layout: Where it lands on the screen.
        cache_dir: The cache folder, or None to neither read nor write a cache.
        slow: Told before the base image is decoded (not called for a cache hit, a base
            already in memory, or a preview).
        preview_first: On a cache miss, scale the set's preview instead when it has one
            (:attr:`Prepared.preview`; the caller then prepares the full base later).

    Raises:
        FrameSetError: The base (or preview) image is missing, unreadable or the wrong size.
    """
    path = None if cache_dir is None else cache_path(cache_dir, portrait, layout)
    if path is not None:
        hit = _load_cache(path, portrait, layout)
        if hit is not None:
            return hit
    if preview_first and not portrait.base_loaded:
        quick = _from_preview(portrait, layout)
        if quick is not None:
            return quick
    if slow is not None and not portrait.base_loaded:
        w, h = portrait.size
        slow(f"decoding and scaling the {w}x{h} base image to the screen", w * h / 1e6)
    # Scaled from the decoded image itself: the one full-size copy in memory (scale_image).
    full = portrait.decode_base()
    base = scale_image(layout, full)
    held = held_region(portrait, layout)
    head = np.asarray(full.crop(held), dtype=np.uint8)
    return Prepared(layout, base, held, head, cached=False)


def save_cache(cache_dir: Path, portrait: Portrait, prepared: Prepared) -> Path | None:
    """Write ``prepared`` to the cache (atomically); None when the set has no key.

    Raises:
        OSError: The folder or file cannot be written.
    """
    path = cache_path(cache_dir, portrait, prepared.layout)
    if path is None:
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".portrait-", suffix=".npz", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                base=prepared.base,
                head=prepared.head,
                held=np.array(prepared.held, np.int64),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # One portrait is shown: keep only its file (and no file a stopped writer left half done).
    for old in [*cache_dir.glob("portrait-*.npz"), *cache_dir.glob(".portrait-*.npz")]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


PIECE_GAP_PX = 16
"""Unchanged screen pixels between two parts of a frame's patch (the two eyes, most often) from
which they are kept as two pieces instead of one box spanning both, pixels."""

Piece = tuple[Rect4, np.ndarray]
"""A part of a frame in screen pixels: ``(screen rect, h×w×3 RGB)``."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """Frames' patches in screen pixels (:func:`render_patches`).

    Attributes:
        patches: Per frame, the pieces where it differs from the base on the screen (an empty
            list for a frame equal to the base, or one not rendered).
        ready: Per frame, True when it was rendered (a frame equal to the base included);
            False for a frame not asked for or whose patch file could not be decoded.
        files: Per frame, the patch file its pieces come from, or None (no file, or not
            rendered). Frames naming the same file (same pixels, same box) share one list of
            pieces, the same arrays: whoever keeps them keeps them once.
    """

    patches: list[list[Piece]]
    ready: list[bool]
    files: list[str | None]


def _runs(changed: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of the parts of ``changed`` split by :data:`PIECE_GAP_PX` or more False."""
    at = np.flatnonzero(changed)
    if at.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(at) > PIECE_GAP_PX)
    starts = [int(at[0]), *(int(at[c + 1]) for c in cuts)]
    ends = [*(int(at[c]) + 1 for c in cuts), int(at[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def pieces(screen_rect: Rect4, rgb: np.ndarray, base: np.ndarray) -> list[Piece]:
    """The parts of a rendered patch that differ from the base shown under it, each cropped tight.

    A patch's box spans both eyes and the lids' margins; on the screen only the eyes change.
    Columns of unchanged pixels at least :data:`PIECE_GAP_PX` wide split it (side by side eyes),
    then rows within each part (eyes above one another, a portrait turned 90°). Drawing the
    base and then the pieces gives exactly the rendered patch.

    Args:
        screen_rect: Where ``rgb`` goes on the screen, pixels.
        rgb: The rendered patch, ``h×w×3`` uint8.
        base: The base as shown under it, the same shape.
    """
    changed = (rgb != base).any(axis=2)
    x, y = screen_rect[0], screen_rect[1]
    out: list[Piece] = []
    for c0, c1 in _runs(changed.any(axis=0)):
        for r0, r1 in _runs(changed[:, c0:c1].any(axis=1)):
            cols = _runs(changed[r0:r1, c0:c1].any(axis=0))
            c, d = c0 + cols[0][0], c0 + cols[-1][1]
            out.append(((x + c, y + r0, x + d, y + r1), np.ascontiguousarray(rgb[r0:r1, c:d])))
    return out


def render_stages(grid: Manifest) -> list[list[int]]:
    """The frames in the order the display's worker renders them, in stages taken up one by one.

    The rest row with open lids first (the eyes follow sideways), then the other rows with open
    lids (up and down), then the lid phases (blinks): a large grid on a slow core follows the
    visitor long before its last blink frame is ready.

    Args:
        grid: The set's manifest (frames addressed by gaze, row and lid phase).
    """
    gazes, rows, phases = range(grid.gazes), range(len(grid.pitches)), len(grid.lid_phases)
    level = [grid.index(g, grid.rest_row) for g in gazes]
    others = [grid.index(g, r) for r in rows if r != grid.rest_row for g in gazes]
    blinks = [grid.index(g, r, lid) for r in rows for lid in range(1, phases) for g in gazes]
    return [stage for stage in (level, others, blinks) if stage]


def patch_file(portrait: Portrait, i: int) -> str | None:
    """The patch file frame ``i`` names (version 2), or None; frames naming one share it."""
    if portrait.manifest.version != 2:
        return None
    return portrait.manifest.frames[i].patch


def render_patches(
    portrait: Portrait,
    prepared: Prepared,
    frames: Collection[int] | None = None,
    shared: dict[str, list[Piece]] | None = None,
) -> Rendered:
    """Every frame's patch in screen pixels, each patch file decoded and rendered here once.

    Each is pixel for pixel the same region of the whole frame scaled to the screen, kept as
    the :func:`pieces` that differ from the scaled base. Frames naming the same patch file
    (a shut blink at every gaze) get the same pieces: it is decoded and rendered for the first
    of them only. A patch that cannot be decoded (damaged after the set was opened) is logged
    in one line naming its file and left out (``ready`` False): the display shows the nearest
    good frame for it.

    Args:
        portrait: The opened set.
        prepared: Its base for the layout (:func:`prepare_base`), not a preview.
        frames: Render only these frames (the others are not ready); None: all.
        shared: Pieces rendered by earlier calls for the same ``prepared``, by patch file
            name: taken as they are, and what this call renders is added (the display's worker
            passes one across its stages); None: within this call only.
    """
    lay = prepared.layout
    renderer = Renderer(lay, portrait.size, portrait.patches, prepared.held, prepared.head)
    vx0, vy0 = lay.visible[0], lay.visible[1]
    out: list[list[Piece]] = []
    ready: list[bool] = []
    files: list[str | None] = []
    done: dict[str, list[Piece]] = {} if shared is None else shared
    asked = None if frames is None else set(frames)
    for i in range(portrait.count):
        name = patch_file(portrait, i)
        if asked is not None and i not in asked:
            out.append([])
            ready.append(False)
            files.append(None)
            continue
        if name is not None and name in done:
            out.append(done[name])
            ready.append(True)
            files.append(name)
            continue
        try:
            patch = portrait.patches[i]
        except FrameSetError as err:
            log.error("%s; frame %d shows the nearest good frame instead", err, i)
            out.append([])
            ready.append(False)
            files.append(None)
            continue
        region = renderer.region_of(patch)
        drawn: list[Piece] = []
        if region is not None:
            rx0, ry0, rx1, ry1 = region
            under = prepared.base[ry0 - vy0 : ry1 - vy0, rx0 - vx0 : rx1 - vx0]
            drawn = pieces(lay.to_screen(region), renderer.render_patch(region, patch), under)
        if name is not None:
            done[name] = drawn
        out.append(drawn)
        ready.append(True)
        files.append(name)
    return Rendered(out, ready, files)
