"""Where in a camera frame to run the face detector: whole frame, head-band tiles, follow crop.

BlazeFace sees a frame through a small square input (192×192 for the full-range model), so a
visitor across a gallery room (eyes 14 px apart in a 1280×960 frame at 4.5 m) shrinks to a
couple of pixels when the whole frame is fed to it. The :class:`Finder` instead feeds it crops
at the scale it needs:

* **Head band** — a horizontal strip of the image where heads can be (``band_top`` ..
  ``band_bottom``, fractions of the height; or worked out from the camera's height and tilt,
  ``camera_height_m``, by the :class:`~appliance.optics.CameraView` the app passes: the image
  size and the field of view the camera really shows; or learned from where faces have been
  seen), so floor and ceiling are never searched.
* **Tiles** — squares ``tile_size × width`` pixels across the band, overlapping by
  ``tile_overlap`` of their side so that any face smaller than the overlap is whole in at least
  one tile. Detections cut by a tile's inner edge are dropped (the face is whole in a
  neighbour); the others are mapped back to frame pixels and merged with weighted NMS, keeping
  for each face the views that show it at the scale BlazeFace places keypoints best.
* **Sweep** — tiles (and, with ``whole_pass``, the whole frame once per cycle, for visitors so
  close that their face is bigger than the overlap) are visited longest-waiting first, a few per
  frame; with ``motion_first`` tiles where the picture changed since the last frame go first.
* **Follow** — when the app passes the current viewer (``GazeRecord.follow``: the gaze's viewer
  tracks are the one memory of the visitors; the finder keeps none), one crop around them (sized
  from their face, moved by their last step) is detected every frame, so the gaze filter gets
  a fresh face every camera frame.
* **Cadence** — with ``cadence = "room"`` (the default) the sweep follows the room, not the
  camera: with nobody followed and nothing moving in the band the tiles are swept at
  ``idle_sweep_hz`` inferences per second; a tile where the picture changed is swept in the
  same frame (up to ``inferences_per_frame``), so a newcomer wakes the sweep at once; while a
  viewer is followed the other tiles are swept at ``track_sweep_hz`` (moving ones first). A
  frame can then get no inference at all (``FindResult.ran`` is False): that is "not looked",
  not "nobody there". ``cadence = "frame"`` is the behaviour before: ``inferences_per_frame``
  inferences every frame whatever the room. Both need the frame's time (``find(t=...)``);
  without it every frame is swept as with ``"frame"``.

Crops are numpy views (no copies); the detector letterboxes whatever size it is given. Nothing
here touches the camera; between calls only a coarse grid of one channel of the last frame
(about 160×120 samples, for motion) is kept, in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from appliance.config import CameraConfig, FinderConfig
from appliance.detector import weighted_nms
from appliance.optics import CameraView
from appliance.types import Box, Face, Follow

log = logging.getLogger(__name__)

BandSource = Literal["config", "geometry", "learned"]
"""Where the head band in use came from: band_top/band_bottom, camera_height_m, or learning."""

CUT_MARGIN_PX = 1.0
"""A detection whose box reaches within this many pixels of a tile's inner edge is 'cut'."""

BEST_MODEL_EYE_PX = 22.0
"""Eye distance in the model input (pixels of 192) at which BlazeFace's keypoints are steadiest
(measured on synthetic visitors: 15-40 px agree within a pixel or two; below 12 px they scatter
by several frame pixels, above 45 px the detector starts to miss)."""

MIN_MODEL_EYE_PX = 8.0
"""Eye distance in the model input (pixels of 192) below which BlazeFace stops finding faces
reliably: how far a tile reaches (:func:`tile_reach_m`)."""

SAME_SCALE_OCTAVES = 0.5
"""Detections of one face within this many octaves of the best scale are averaged."""

MOTION_GRID = 160
"""Samples across the frame width compared between frames to find where things move."""

MOTION_LEVEL = 24
"""A sample 'moved' when it changed by more than this (0-255 levels; sensor noise is ~3)."""

MOTION_MIN_SAMPLES = 3
"""A tile 'moves' when at least this many of its samples moved."""

LEARN_BINS = 200
"""Resolution of the learned head band: the image height is split into this many bins."""


class FaceDetector(Protocol):
    """What the finder needs of a detector (``appliance.detector.Detector`` is one)."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H×W×3 uint8 RGB of any size), in its pixels, best first."""
        ...


@dataclass(frozen=True)
class FindResult:
    """What the finder found in one frame.

    Attributes:
        faces: Faces in frame pixels, merged across regions, best first (empty when the
            detector did not run: see ``ran``).
        inferences: Detector runs spent on this frame (>= 0; 0 when the sweep's cadence
            skipped the frame).
        regions: Where the detector ran (frame pixels), follow crop first; for the overlay.
        band: The head band searched (frame pixels), or None in 'whole' mode.
        tiles: The band's whole tile grid (frame pixels; empty in 'whole' mode), for the
            overlay; shared with the finder's layout, do not modify.
        follow: The follow crop searched this frame (also ``regions[0]``), or None.
        dropped: Faces the detector returned that were not usable (see :func:`usable_face`)
            and are not in ``faces``.
    """

    faces: list[Face]
    inferences: int
    regions: list[Box]
    band: Box | None
    tiles: list[Box] = field(default_factory=list)
    follow: Box | None = None
    dropped: int = 0

    @property
    def ran(self) -> bool:
        """True if the detector looked at this frame at all.

        False means "not looked" (the cadence skipped an empty, still room), which is not the
        same as "looked and found nobody": nothing about the room changed since the last look.
        The finder skips a frame only when no viewer is followed.
        """
        return self.inferences > 0


def usable_face(face: Face) -> bool:
    """True if every number of ``face`` is finite, its score within 0 … 1 and its box not empty.

    A broken model can return NaN; this is the one rule for it (see :func:`usable_faces`).
    """
    b = face.box
    values = (face.score, b.x0, b.y0, b.x1, b.y1, *(c for p in face.keypoints for c in (p.x, p.y)))
    return (
        all(math.isfinite(v) for v in values)
        and 0.0 <= face.score <= 1.0
        and b.width > 0
        and b.height > 0
    )


class UsableFaces(list[Face]):
    """Faces that passed :func:`usable_face` (what the finder returns): not checked again."""


def usable_faces(faces: Sequence[Face]) -> tuple[UsableFaces, int]:
    """The one check of detected faces (:func:`usable_face`), made once a frame.

    The finder makes it on what it returns; the gaze makes it only on faces that did not come
    from a finder (a :class:`UsableFaces` passes through unchecked).

    Returns:
        The usable faces in their order, and how many were dropped.
    """
    if isinstance(faces, UsableFaces):
        return faces, 0
    kept = UsableFaces(f for f in faces if usable_face(f))
    return kept, len(faces) - len(kept)


@dataclass
class _Layout:
    """The sweep schedule for one frame size and band (recomputed when either changes)."""

    width: int
    height: int
    band: Box
    tile_px: int
    tiles: list[Box]
    fraction: tuple[float, float]
    """The band as (top, bottom) fractions of the height, as it was asked for."""
    schedule: list[Box] = field(default_factory=list)
    ages: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Frames since each schedule item last ran (the sweep visits the oldest first)."""


def _positions(start: float, length: float, tile: int, overlap: float, limit: int) -> list[int]:
    """Tile origins covering ``[start, start + length)`` inside ``[0, limit)``.

    Evenly spaced, first and last flush with the ends of the range; neighbours overlap by at
    least ``overlap`` pixels. A range shorter than a tile gets one tile centred on it.
    """
    if length <= tile:
        centred = start + (length - tile) / 2.0
        return [int(min(max(0.0, round(centred)), max(0, limit - tile)))]
    stride = max(1.0, tile - overlap)
    n = max(2, math.ceil((length - tile) / stride) + 1)
    first, last = start, start + length - tile
    out = [round(first + i * (last - first) / (n - 1)) for i in range(n)]
    return [int(min(max(0, p), max(0, limit - tile))) for p in out]


def tile_grid(width: int, height: int, band: Box, tile_px: int, overlap: float) -> list[Box]:
    """Square tiles covering ``band`` (full width) of a ``width``×``height`` image.

    Args:
        width: Image width, pixels.
        height: Image height, pixels.
        band: The head band in pixels (its x range is ignored: tiles span the whole width).
        tile_px: Tile side, pixels (capped to the image's smaller side).
        overlap: Minimum overlap of neighbouring tiles, pixels (< tile_px).

    Returns:
        Tiles in row-major order (top row first, left to right), integer pixel boxes.
    """
    side = max(1, min(tile_px, width, height))
    ov = min(overlap, side - 1.0)
    xs = _positions(0.0, float(width), side, ov, width)
    ys = _positions(band.y0, band.height, side, ov, height)
    return [Box(x, y, x + side, y + side) for y in ys for x in xs]


def band_tiles(
    config: FinderConfig, width: int, height: int, band: tuple[float, float]
) -> tuple[Box, list[Box]]:
    """The head band in pixels and its tiles, for a ``width``×``height`` image.

    Args:
        config: The ``[finder]`` settings (``tile_size``, ``tile_overlap``).
        width: Image width, pixels.
        height: Image height, pixels.
        band: ``(top, bottom)``, fractions of the height.

    Returns:
        The band (the whole width, rows rounded to pixels) and :func:`tile_grid`'s tiles, whose
        side is ``tile_size`` of the width (at least 16 px, at most the image's smaller side).
    """
    top, bottom = band
    box = Box(0.0, round(top * height), float(width), round(bottom * height))
    tile_px = max(16, round(config.tile_size * width))
    return box, tile_grid(width, height, box, tile_px, config.tile_overlap * tile_px)


def tile_reach_m(view: CameraView, tile_px: float, ipd_m: float, input_px: float = 192.0) -> float:
    """How far away, metres, a visitor is still found in a tile of ``tile_px`` pixels.

    Args:
        view: The camera's view (its focal length).
        tile_px: Tile side, image pixels.
        ipd_m: Visitors' interpupillary distance, metres (``gaze.ipd_mm`` / 1000).
        input_px: The model input's side, pixels (192 for the full-range model).

    Returns:
        The distance at which the eyes are :data:`MIN_MODEL_EYE_PX` apart in the model input.
    """
    return view.distance_m(ipd_m, MIN_MODEL_EYE_PX * tile_px / input_px)


def _is_cut(face: Face, region: Box, width: int, height: int) -> bool:
    """True if ``face`` reaches an edge of ``region`` that is not an edge of the frame."""
    b, m = face.box, CUT_MARGIN_PX
    return (
        (region.x0 > 0 and b.x0 < region.x0 + m)
        or (region.y0 > 0 and b.y0 < region.y0 + m)
        or (region.x1 < width and b.x1 > region.x1 - m)
        or (region.y1 < height and b.y1 > region.y1 - m)
    )


class Finder:
    """Chooses where the detector runs in each frame and merges what it finds.

    Args:
        config: The ``[finder]`` settings.
        detector: Anything with ``detect(image) -> list[Face]`` (the BlazeFace detector).
        follow_detector: The detector for the follow crop (the short-range model, with
            ``follow_model = "short"``); None: ``detector``.
        view: What the camera shows (:class:`~appliance.optics.CameraView`); used only to work
            the band out from ``camera_height_m`` (for each frame's size). The app passes a new
            one with :meth:`set_view` when the camera reports another crop. None: a default
            ``[camera]``'s (the lens's whole 66°).
    """

    def __init__(
        self,
        config: FinderConfig,
        detector: FaceDetector,
        *,
        view: CameraView | None = None,
        follow_detector: FaceDetector | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.follow_detector = follow_detector
        self._layout: _Layout | None = None
        self._prev_small: np.ndarray | None = None
        self._band = (config.band_top, config.band_bottom)
        self._band_source: BandSource = "config"
        self._view = CameraView.expected(CameraConfig(), config)
        if view is not None:
            self.set_view(view)
        self._geometry_for: tuple[CameraView, int, int] | None = None
        self._tops = np.zeros(LEARN_BINS, np.int64)
        self._bottoms = np.zeros(LEARN_BINS, np.int64)
        self._learned_faces = 0
        self._credit = 1.0
        self._last_t: float | None = None

    @property
    def band_fraction(self) -> tuple[float, float]:
        """The head band in use, (top, bottom) as fractions of the image height."""
        return self._band

    @property
    def band_source(self) -> BandSource:
        """Where the band in use came from: ``"config"``, ``"geometry"`` or ``"learned"``."""
        return self._band_source

    @property
    def view(self) -> CameraView:
        """The camera's view in use (its ``place`` is this finder's settings)."""
        return self._view

    def set_view(self, view: CameraView) -> None:
        """Use this view of the camera for a band worked out from geometry.

        The band is worked out from this finder's ``camera_height_m``, tilt and visitors
        (``view.place`` is replaced by the finder's settings), for each frame's size.
        """
        self._view = view if view.place is self.config else replace(view, place=self.config)

    def _band_from_geometry(self, width: int, height: int) -> None:
        """Work the band out from ``camera_height_m`` for this image, once per size and view."""
        done = self._geometry_for
        if self._band_source == "learned" or (
            done is not None and done[0] is self._view and done[1:] == (width, height)
        ):
            return
        self._geometry_for = (self._view, width, height)
        view = self._view.seen(width, height)
        try:
            band = view.head_band()
        except ValueError as err:  # a camera giving another size than configured
            log.warning(
                "%s for a %dx%d image at %.1f°; searching %.2f-%.2f of the height instead",
                err,
                width,
                height,
                view.hfov_deg,
                *self._band,
            )
            return
        self._band, self._band_source = band, "geometry"
        log.info(
            "head band %.2f-%.2f of the height: camera %g m up, tilted %g°, %dx%d at %.1f°",
            *band,
            self.config.camera_height_m,
            view.tilt_deg,
            width,
            height,
            view.hfov_deg,
        )

    def reset(self) -> None:
        """Forget the sweep position and the motion grid (the learned band is kept)."""
        self._layout = None
        self._prev_small = None
        self._credit = 1.0
        self._last_t = None

    def layout(self, width: int, height: int) -> _Layout:
        """The band, tiles and sweep schedule for a ``width``×``height`` frame (cached)."""
        if self.config.camera_height_m is not None:
            self._band_from_geometry(width, height)
        lay = self._layout
        if lay is not None and (lay.width, lay.height, lay.fraction) == (width, height, self._band):
            return lay
        band, tiles = band_tiles(self.config, width, height, self._band)
        if lay is not None and (lay.width, lay.height, lay.band) == (width, height, band):
            lay.fraction = self._band  # the same rows: the sweep goes on where it was
            return lay
        schedule = [Box(0.0, 0.0, float(width), float(height))] if self.config.whole_pass else []
        schedule += tiles
        # Oldest first: the first frames visit the schedule in order.
        ages = np.arange(len(schedule), 0, -1, dtype=np.int64)
        lay = _Layout(width, height, band, int(tiles[0].width), tiles, self._band, schedule, ages)
        self._layout = lay
        return lay

    def follow_crop(
        self, follow: Box, width: int, height: int, step: tuple[float, float] = (0.0, 0.0)
    ) -> Box:
        """The square crop searched around the viewer, in integer frame pixels.

        Its side is ``follow_crop`` face widths (at least ``follow_min_px``, at most the frame's
        smaller side), centred where the face should be now: at the given box moved by the
        viewer's last ``step`` (dx, dy pixels; at most one face width; a step of more than two
        face widths is a jump, not a move, and is not followed). Shifted, not shrunk, at the
        frame edges.
        """
        want = max(float(self.config.follow_min_px), self.config.follow_crop * follow.width)
        # Quantised to steps of 2^(1/4) (19 %) so the detector's per-size resampling plans are
        # reused from frame to frame instead of rebuilt for every slightly different size.
        steps = round(4.0 * math.log2(want / self.config.follow_min_px))
        side = float(min(round(self.config.follow_min_px * 2.0 ** (steps / 4.0)), width, height))
        c = follow.center
        cx, cy = c.x, c.y
        dx, dy = step
        lim = follow.width
        if math.hypot(dx, dy) <= 2 * lim:
            cx += max(-lim, min(lim, dx))
            cy += max(-lim, min(lim, dy))
        x0 = min(max(0.0, round(cx - side / 2)), width - side)
        y0 = min(max(0.0, round(cy - side / 2)), height - side)
        return Box(x0, y0, x0 + side, y0 + side)

    def find(
        self, frame: np.ndarray, follow: Follow | Box | None = None, t: float | None = None
    ) -> FindResult:
        """Run the detector where it is needed in ``frame`` and return the merged faces.

        Args:
            frame: H×W×3 uint8 RGB camera frame (gray H×W and RGBA also work).
            follow: Whom to search around, from the gaze's memory of the viewers
                (``GazeRecord.follow``); a bare box is a viewer standing still. A face that
                is not the viewer is searched around only with ``follow_found``. None: no
                follow crop. The finder keeps no memory of its own of whom it followed.
            t: The frame's time, seconds (monotonic or a clip's clock); paces the sweep with
                ``cadence = "room"``. None: no clock, every frame is swept.

        Returns:
            The faces in frame pixels (best first), the number of inferences, the regions
            searched and the band.

        Raises:
            ValueError: ``frame`` is not a non-empty 2-D or 3-D image array.
        """
        if frame.ndim not in (2, 3) or frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError(f"finder: expected an H×W(×C) image, got shape {frame.shape}")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        if self.config.mode == "whole":
            whole = Box(0.0, 0.0, float(width), float(height))
            faces, dropped = usable_faces(self.detector.detect(frame))
            return FindResult(faces, 1, [whole], None, dropped=dropped)
        lay = self.layout(width, height)
        regions: list[Box] = []
        crop: Box | None = None
        target = Follow(follow) if isinstance(follow, Box) else follow
        if target is not None and (
            target.box.width <= 0
            or not all(map(math.isfinite, (*target.box.as_list(9), *target.step)))
            or not (target.viewer or self.config.follow_found)
        ):
            target = None
        if target is not None:
            crop = self.follow_crop(target.box, width, height, target.step)
            regions.append(crop)
        room = max(1, self.config.inferences_per_frame - len(regions))
        moving = self._motion(frame, lay, regions[0] if regions else None)
        sweeps = min(len(lay.schedule), self._sweeps(room, moving, crop is not None, t))
        if sweeps:
            regions += [lay.schedule[i] for i in self._pick(lay, sweeps, moving)]
        found: list[tuple[Face, float]] = []
        size = float(getattr(self.detector, "input_size", 192))
        for r in regions:
            x0, y0, x1, y1 = int(r.x0), int(r.y0), int(r.x1), int(r.y1)
            det = self.detector
            side = max(r.width, r.height)
            if r is crop and self.follow_detector is not None:
                det = self.follow_detector
                # The merge judges scale in the main model's input: the same face in a
                # smaller input is a coarser view.
                side *= size / float(getattr(det, "input_size", size))
            for face in det.detect(frame[y0:y1, x0:x1]):
                f = face.translated(float(x0), float(y0))
                if not _is_cut(f, r, width, height):
                    found.append((f, side))
        faces, dropped = usable_faces(self._merge(found))
        if self.config.band_learn:
            self._learn(faces, height)
        return FindResult(faces, len(regions), regions, lay.band, lay.tiles, crop, dropped)

    def _sweeps(
        self, room: int, moving: np.ndarray | None, following: bool, t: float | None
    ) -> int:
        """How many sweep regions to detect in this frame (0 … ``room``).

        With ``cadence = "frame"`` or no clock: ``room``. Otherwise a credit grows at
        ``track_sweep_hz`` (following a viewer) or ``idle_sweep_hz`` (nobody followed) per
        second, capped at one, and a sweep spends it; a region where the picture moved (not
        counting the followed viewer) is swept at once (up to ``room``) whatever the credit.
        """
        cfg = self.config
        if cfg.cadence == "frame" or t is None or not math.isfinite(t):
            return room
        last, self._last_t = self._last_t, t
        dt = 0.0 if last is None else min(1.0, max(0.0, t - last))
        rate = cfg.track_sweep_hz if following else cfg.idle_sweep_hz
        self._credit = min(1.0, self._credit + rate * dt)
        woken = 0 if moving is None else int(moving.sum())
        timed = 1 if self._credit >= 1.0 - 1e-9 else 0  # tolerate rounding of rate × dt
        count = min(room, max(woken, timed))
        if count:
            self._credit = max(0.0, self._credit - count)
        return count

    def _pick(self, lay: _Layout, count: int, moving: np.ndarray | None) -> list[int]:
        """Choose ``count`` schedule items: the longest unvisited, moving tiles first.

        A tile where the picture changed jumps one whole cycle ahead, so a newcomer walking
        into view is searched for within a frame or two; a tile that has waited more than a
        cycle beyond that still comes first, so nothing is starved.
        """
        priority = lay.ages.copy()
        if moving is not None:
            priority += moving * len(lay.schedule)
        order = sorted(range(len(priority)), key=lambda i: (-int(priority[i]), i))[:count]
        lay.ages += 1
        lay.ages[order] = 0
        return order

    def _motion(self, frame: np.ndarray, lay: _Layout, exclude: Box | None) -> np.ndarray | None:
        """How urgently each schedule item wants a look: 0 still, 1 moved (None: unknown).

        Compares a sparse grid of samples (about 160 across, one channel) with the previous
        frame's; a sample counts when it changed by more than :data:`MOTION_LEVEL`, and a tile
        moves when at least :data:`MOTION_MIN_SAMPLES` of its samples did. Changes inside
        ``exclude`` (the followed viewer's crop) and below it (their body) are ignored. The
        whole-frame item gets 2 (ahead of every tile) when two or more tiles moved. Only the
        small sample grid of the previous frame is kept, in memory.
        """
        if not self.config.motion_first:
            return None
        step = max(1, round(lay.width / MOTION_GRID))
        sample = frame[::step, ::step, 1] if frame.ndim == 3 else frame[::step, ::step]
        small = sample.astype(np.int16)
        prev, self._prev_small = self._prev_small, small
        if prev is None or prev.shape != small.shape:
            return None
        changed = np.abs(small - prev) > MOTION_LEVEL
        if exclude is not None:
            ex0, ey0 = int(exclude.x0) // step, int(exclude.y0) // step
            # The viewer's face and, below it, their body: their own movement wakes nothing.
            changed[ey0:, ex0 : -(-int(exclude.x1) // step)] = False
        out = np.zeros(len(lay.schedule), bool)
        whole: list[int] = []
        for i, r in enumerate(lay.schedule):
            if r.width >= lay.width and r.height >= lay.height:
                whole.append(i)
                continue
            x0, y0 = int(r.x0) // step, int(r.y0) // step
            x1, y1 = -(-int(r.x1) // step), -(-int(r.y1) // step)
            out[i] = int(changed[y0:y1, x0:x1].sum()) >= MOTION_MIN_SAMPLES
        # A visitor so close that tiles cut their face moves many tiles at once: the
        # whole-frame pass wakes with them (it is the one region that sees such a face whole).
        # It goes first: the tiles cannot see such a face.
        weight = out.astype(np.int64)
        if int(out.sum()) >= 2:
            weight[whole] = 2
        return weight

    def _merge(self, found: list[tuple[Face, float]]) -> list[Face]:
        """Merge detections of one frame from several regions into one face per person.

        Each face is judged by how far its eye distance *in the model input* is from the
        size BlazeFace places keypoints best at (:data:`BEST_MODEL_EYE_PX`). For each person
        the detections seen at (about) the best scale are merged with weighted NMS; coarser
        or over-magnified views of the same face are dropped instead of being averaged in.

        Args:
            found: ``(face in frame pixels, side in pixels of the region it was found in)``.

        Returns:
            Faces, best score first.
        """
        if len(found) <= 1:
            return [f for f, _ in found]
        size = float(getattr(self.detector, "input_size", 192))

        def badness(item: tuple[Face, float]) -> float:
            face, side = item
            model_eye = max(face.eye_distance, 1e-3) * size / side
            bad = abs(math.log2(model_eye / BEST_MODEL_EYE_PX))
            # A face with non-finite points (a broken detector result) sorts last and stays a
            # group of its own: the app drops and reports it; it must not cost the frame.
            return bad if math.isfinite(bad) else math.inf

        rest = sorted(found, key=badness)
        iou = self.config.nms_iou
        out: list[Face] = []
        while rest:
            best = rest[0]
            limit = badness(best) + SAME_SCALE_OCTAVES
            group = [it for it in rest if it[0].box.iou(best[0].box) > iou or it is best]
            rest = [it for it in rest if not any(it is g for g in group)]
            peers = [it[0] for it in group if badness(it) <= limit]
            merged = weighted_nms(peers, iou) if len(peers) > 1 else peers
            top = max(f.score for f, _ in group)
            m = merged[0]
            out.append(Face(m.box, top, m.keypoints) if m.score != top else m)
        out.sort(key=lambda f: -f.score)
        return out

    def _learn(self, faces: list[Face], height: int) -> None:
        """Record where faces were seen; after enough, move the band to cover them."""
        for f in faces:
            top = min(LEARN_BINS - 1, max(0, int(f.box.y0 / height * LEARN_BINS)))
            bottom = min(LEARN_BINS - 1, max(0, int(f.box.y1 / height * LEARN_BINS)))
            self._tops[top] += 1
            self._bottoms[bottom] += 1
            self._learned_faces += 1
            if self._learned_faces < self.config.band_learn_faces or self._learned_faces % 25:
                continue
            # Robust extremes: ignore the outermost 0.5 % (stray false faces).
            n = self._learned_faces
            lo = int(np.searchsorted(np.cumsum(self._tops), 0.005 * n, side="right"))
            hi = int(np.searchsorted(np.cumsum(self._bottoms), 0.995 * n, side="left"))
            m = self.config.band_learn_margin
            new_top = max(0.0, lo / LEARN_BINS - m)
            new_bottom = min(1.0, (hi + 1) / LEARN_BINS + m)
            if new_bottom > new_top:
                self._band = (round(new_top, 3), round(new_bottom, 3))
                self._band_source = "learned"
