"""Find the eyes of a portrait: coarse points, each iris refined, each eye opening fitted.

Coordinates are continuous image pixels: pixel ``(col, row)`` covers ``[col, col+1) ×
[row, row+1)``, so its centre is at ``(col + 0.5, row + 0.5)``.

The detector's eye keypoints (or the artist's ``--eyes``) are only a few pixels accurate. Each
eye is then modelled from the image itself, on a supersampled crop around the point:

* **iris** — a dark disc flanked by brighter sclera: the centre and radius maximising the
  contrast between a core box inside the disc and two side boxes left and right of it (a
  darkness and vertical-edge score, evaluated for every candidate at once with an integral
  image), i.e. a circle fit to the iris's left and right limbus;
* **opening** — the almond between the lids: two corners and a parabolic upper and lower lid,
  fitted so that it covers the sclera (bright, less saturated than the skin) and the visible
  iris and as little else as possible. Nothing is ever drawn outside it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.framebuild import FrameBuildError, NoFaceError
from appliance.types import Face, Point

SUPERSAMPLE = 8
"""Most sub-pixels per image pixel used to model and render an eye (antialiasing)."""

SUPERSAMPLE_WIDTH = 300
"""Target width in sub-pixels of a supersampled eye crop (bounds the work for large eyes)."""


MIN_IRIS_CONTRAST = 0.2
"""Least iris darkness against the sclera beside it, as a fraction of the crop's median."""


def supersample_for(roi: tuple[int, int, int, int]) -> int:
    """Sub-pixels per pixel for an eye crop: 8 for small eyes, down to 1 for large ones.

    A crop at least :data:`SUPERSAMPLE_WIDTH` pixels wide (a museum scan's eye: the iris some
    40 pixels across) is worked on at the painting's own resolution: its edges are softened
    over several pixels anyway, and the work stays that of a 300-pixel crop.
    """
    return max(1, min(SUPERSAMPLE, math.ceil(SUPERSAMPLE_WIDTH / max(1, roi[2] - roi[0]))))


@dataclass(frozen=True, slots=True)
class Opening:
    """The visible part of an eye between the lids, in image pixels.

    The lids meet at the corners ``(xl, yl)`` and ``(xr, yr)``; along the chord between them,
    at the normalised position ``u`` in [-1, 1], the upper lid is ``up * (1 - u²)`` above the
    chord and the lower lid ``down * (1 - u²)`` below it.
    """

    xl: float
    yl: float
    xr: float
    yr: float
    up: float
    down: float

    def mask(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Return a boolean mask of the points ``(xs, ys)`` inside the opening."""
        u = (2.0 * xs - self.xl - self.xr) / max(self.xr - self.xl, 1e-6)
        t = (xs - self.xl) / max(self.xr - self.xl, 1e-6)
        ymid = self.yl + t * (self.yr - self.yl)
        bulge = np.clip(1.0 - u * u, 0.0, None)
        inside: np.ndarray = (
            (np.abs(u) <= 1.0) & (ys >= ymid - self.up * bulge) & (ys <= ymid + self.down * bulge)
        )
        return inside

    def lid_extent(self, x: float) -> tuple[float, float]:
        """Return ``(top, bottom)`` of the opening at column ``x`` (equal outside it)."""
        u = (2.0 * x - self.xl - self.xr) / max(self.xr - self.xl, 1e-6)
        t = (x - self.xl) / max(self.xr - self.xl, 1e-6)
        ymid = self.yl + t * (self.yr - self.yl)
        bulge = max(0.0, 1.0 - u * u)
        return ymid - self.up * bulge, ymid + self.down * bulge


@dataclass(frozen=True, slots=True)
class Eye:
    """One modelled eye, in image pixels.

    Attributes:
        roi: ``(x0, y0, x1, y1)`` integer crop that holds the whole eye and its surroundings.
        iris: Centre of the iris disc.
        radius: Iris radius in pixels.
        opening: The almond between the lids.
    """

    roi: tuple[int, int, int, int]
    iris: Point
    radius: float
    opening: Opening

    def travel(self) -> tuple[float, float]:
        """How far the iris centre can move left and right (pixels, both >= 0).

        The iris may turn until its centre is 1.1 radii from the eye corner: beyond that a
        real eye shows no sclera at all on that side.
        """
        left = self.iris.x - (self.opening.xl + 1.1 * self.radius)
        right = (self.opening.xr - 1.1 * self.radius) - self.iris.x
        return max(0.0, left), max(0.0, right)


def supersampled(
    image: np.ndarray, roi: tuple[int, int, int, int], s: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the crop ``roi`` upsampled ``s`` times (float32 RGB) and its pixel-centre grids.

    Returns:
        ``(rgb, xs, ys)``: ``(h*s)×(w*s)×3`` float32 in 0..255 and two ``(h*s)×(w*s)`` arrays
        with the image-pixel coordinates of every sub-pixel centre.
    """
    s = s or supersample_for(roi)
    x0, y0, x1, y1 = roi
    crop = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    w, h = x1 - x0, y1 - y0
    big = crop.resize((w * s, h * s), Image.Resampling.BICUBIC)
    rgb = np.clip(np.asarray(big, dtype=np.float32), 0.0, 255.0)
    gx = x0 + (np.arange(w * s, dtype=np.float64) + 0.5) / s
    gy = y0 + (np.arange(h * s, dtype=np.float64) + 0.5) / s
    xs, ys = np.meshgrid(gx, gy)
    return rgb, xs, ys


def eye_roi(center: Point, ipd: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Return the integer crop around an eye: ±0.42 × the eye distance across, ±0.24 down."""
    h, w = shape[:2]
    hx, hy = 0.42 * ipd, 0.24 * ipd
    x0 = max(0, math.floor(center.x - hx))
    x1 = min(w, math.ceil(center.x + hx))
    y0 = max(0, math.floor(center.y - hy))
    y1 = min(h, math.ceil(center.y + hy))
    if x1 - x0 < 6 or y1 - y0 < 4:
        raise FrameBuildError(f"eye at ({center.x:.0f}, {center.y:.0f}) is too small or off-image")
    return x0, y0, x1, y1


def _box_sums(
    ii: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray
) -> np.ndarray:
    """Sums over ``[r0, r1) × [c0, c1)`` from the integral image ``ii`` (vectorised)."""
    s: np.ndarray = ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]
    return s


def fit_iris(
    lum: np.ndarray, s: int, ipd: float, hint: Point, roi: tuple[int, int, int, int]
) -> tuple[Point, float]:
    """Fit the iris as the dark disc with the strongest left and right limbus.

    Args:
        lum: Supersampled luminance of the eye crop, 0..255.
        s: Supersampling factor of ``lum``.
        ipd: Distance between the two eyes, pixels (sets the radius range, 7-14 % of it).
        hint: Coarse eye centre, image pixels.
        roi: The crop ``lum`` was made from.

    Returns:
        The iris centre (image pixels) and radius (pixels).
    """
    hs, ws = lum.shape
    ii = np.zeros((hs + 1, ws + 1), np.float64)
    ii[1:, 1:] = lum.cumsum(0).cumsum(1)
    step = max(1, s // 4)
    radii = np.arange(max(2.0, 0.07 * ipd * s), max(3.0, 0.14 * ipd * s) + 1, step)
    # Candidate centres within ±0.25 ipd of the hint horizontally and ±0.12 ipd vertically.
    hx = (hint.x - roi[0]) * s
    hy = (hint.y - roi[1]) * s
    cxs = np.arange(max(0, hx - 0.25 * ipd * s), min(ws, hx + 0.25 * ipd * s), step)
    cys = np.arange(max(0, hy - 0.12 * ipd * s), min(hs, hy + 0.12 * ipd * s), step)
    cx, cy, rr = np.meshgrid(cxs, cys, radii, indexing="ij")
    cx, cy, rr = cx.ravel(), cy.ravel(), rr.ravel()
    half_h = np.maximum(1.0, 0.45 * rr)

    def box(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
        r0 = np.clip(np.round(b0), 0, hs).astype(np.int64)
        r1 = np.clip(np.round(b1), 0, hs).astype(np.int64)
        c0 = np.clip(np.round(a0), 0, ws).astype(np.int64)
        c1 = np.clip(np.round(a1), 0, ws).astype(np.int64)
        area = np.maximum((r1 - r0) * (c1 - c0), 1)
        mean: np.ndarray = _box_sums(ii, r0, r1, c0, c1) / area
        valid = ((r1 - r0) * (c1 - c0)) > 0
        return np.where(valid, mean, np.nan)

    core = box(cx - 0.7 * rr, cx + 0.7 * rr, cy - half_h, cy + half_h)
    left = box(cx - 1.6 * rr, cx - 1.1 * rr, cy - half_h, cy + half_h)
    right = box(cx + 1.1 * rr, cx + 1.6 * rr, cy - half_h, cy + half_h)
    # Both sides must be brighter than the core: score by the weaker side, so a dark lash line
    # or brow (bright only on one side) does not win over the iris.
    contrast = np.minimum(left, right) - core
    # Prefer the disc nearest the coarse point: a lash line or an eye corner can be as dark as
    # an iris, but lies further from the detector's eye point than the iris does.
    dist = np.hypot(cx - hx, cy - hy) / (ipd * s)
    score = contrast * (1.0 - 2.0 * dist)
    score = np.where(np.isnan(score), -np.inf, score)
    if not np.isfinite(score).any():
        raise FrameBuildError(f"cannot find an iris near ({hint.x:.0f}, {hint.y:.0f})")
    best = int(np.argmax(score))
    # Real irises: 0.35-0.75 of the crop's median luminance; plain skin and folds: < 0.2.
    if float(contrast[best]) < MIN_IRIS_CONTRAST * max(float(np.median(lum)), 1.0):
        raise FrameBuildError(
            f"no iris near ({hint.x:.0f}, {hint.y:.0f}): no dark disc between brighter sclera; "
            "check --eyes"
        )
    centre = Point(float(roi[0] + (cx[best] + 0.5) / s), float(roi[1] + (cy[best] + 0.5) / s))
    return centre, float(rr[best]) / s


def fit_opening(
    rgb: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    iris: Point,
    radius: float,
) -> Opening:
    """Fit the almond between the lids around a known iris.

    Sclera is told from skin by being less saturated and not dark, relative to the skin
    colour at the crop's border; the target region is that sclera plus the iris disc's dark
    pixels. The almond's corners and lid heights are then fitted by coordinate descent to
    maximise (target pixels inside) − (other pixels inside).

    Args:
        rgb: Supersampled eye crop, float32 RGB 0..255.
        xs: Image x of every sub-pixel.
        ys: Image y of every sub-pixel.
        iris: Iris centre, image pixels.
        radius: Iris radius, pixels.
    """
    lum = rgb.mean(axis=2)
    sat = rgb.max(axis=2) - rgb.min(axis=2)
    border = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
    border_sat = np.concatenate([sat[0], sat[-1], sat[:, 0], sat[:, -1]])
    skin_l = float(np.median(border))
    skin_s = float(np.median(border_sat))
    d2 = (xs - iris.x) ** 2 + (ys - iris.y) ** 2
    disc = d2 <= radius**2
    sclera = (sat < 0.7 * skin_s) & (lum > 0.55 * skin_l) & ~disc
    # Sclera must be near the iris's height: keeps bright skin far above/below out.
    sclera &= np.abs(ys - iris.y) < 1.6 * radius
    dark = disc & (lum < 0.8 * skin_l)
    target = sclera | dark
    weight = np.where(target, 1.0, -1.0)

    p = {
        "xl": iris.x - 2.6 * radius,
        "yl": iris.y,
        "xr": iris.x + 2.6 * radius,
        "yr": iris.y,
        "up": 0.9 * radius,
        "down": 0.7 * radius,
    }

    def objective(q: dict[str, float]) -> float:
        o = Opening(q["xl"], q["yl"], q["xr"], q["yr"], max(q["up"], 0.0), max(q["down"], 0.0))
        return float(weight[o.mask(xs, ys)].sum())

    best = objective(p)
    step = 0.5 * radius
    while step > 0.06:
        improved = False
        for key in ("xl", "xr", "yl", "yr", "up", "down"):
            for sign in (1.0, -1.0):
                q = dict(p)
                q[key] += sign * step
                # The iris stays inside the opening, the corners outside the iris.
                if key in ("xl", "xr") and (
                    q["xl"] > iris.x - 0.8 * radius or q["xr"] < iris.x + 0.8 * radius
                ):
                    continue
                if key in ("up", "down") and q[key] < 0.2 * radius:
                    continue
                val = objective(q)
                if val > best + 1e-9:
                    p, best, improved = q, val, True
                    break
        if not improved:
            step /= 2.0
    return Opening(*(float(p[k]) for k in ("xl", "yl", "xr", "yr", "up", "down")))


def model_eye(image: np.ndarray, hint: Point, ipd: float) -> Eye:
    """Model one eye from a coarse point: refine the iris, then fit the opening.

    Args:
        image: ``H×W×3`` uint8 RGB painting.
        hint: Coarse eye centre (detector keypoint or ``--eyes``), image pixels.
        ipd: Distance between the two coarse eye points, pixels.

    Raises:
        FrameBuildError: No iris-like disc near ``hint``.
    """
    roi = eye_roi(hint, ipd, image.shape)
    rgb, xs, ys = supersampled(image, roi)
    lum = rgb.mean(axis=2)
    iris, radius = fit_iris(lum, supersample_for(roi), ipd, hint, roi)
    opening = fit_opening(rgb, xs, ys, iris, radius)
    # The box fit pins the iris's left/right limbus; its height is then the darkness centroid
    # of the visible iris (inside the opening), and the opening is refitted around it.
    band = opening.mask(xs, ys) & (np.abs(xs - iris.x) < 0.6 * radius)
    skin = float(np.median(np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])))
    weight = np.clip(0.75 * skin - lum, 0.0, None) * band
    if weight.sum() > 0:
        iris = Point(iris.x, float((weight * ys).sum() / weight.sum()))
        opening = fit_opening(rgb, xs, ys, iris, radius)
    return Eye(roi=eye_roi(iris, ipd, image.shape), iris=iris, radius=radius, opening=opening)


def parse_eyes(text: str) -> tuple[Point, Point]:
    """Parse ``--eyes X1,Y1,X2,Y2`` into two points sorted left to right in the image.

    Raises:
        FrameBuildError: Not four numbers, or the two points coincide.
    """
    parts = text.replace(" ", "").split(",")
    try:
        vals = [float(v) for v in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise FrameBuildError(f"--eyes {text!r}: expected four numbers X1,Y1,X2,Y2 (pixels)")
    a, b = Point(vals[0], vals[1]), Point(vals[2], vals[3])
    if math.hypot(a.x - b.x, a.y - b.y) < 4:
        raise FrameBuildError(f"--eyes {text!r}: the two eyes must be at least 4 pixels apart")
    return (a, b) if a.x <= b.x else (b, a)


@functools.lru_cache(maxsize=2)
def _detector(model: str) -> Any:
    from appliance.detector import Detector

    return Detector(model, score_threshold=0.5)


def detect_face(image: np.ndarray, source: Path | str) -> Face:
    """Find the most prominent face with the BlazeFace detector (full range, then short).

    Raises:
        NoFaceError: No face found (the message names ``source`` and suggests ``--eyes``).
    """
    for model in ("full", "short"):
        faces: list[Face] = _detector(model).detect(image)
        if faces:
            return max(faces, key=lambda f: f.box.area * f.score)
    raise NoFaceError(
        f"{source}: no face found; give the eye positions with --eyes X1,Y1,X2,Y2 (pixels)"
    )


def eyes_left_to_right(face: Face) -> tuple[Point, Point]:
    """The face's two eye keypoints, the one further left in the image first."""
    a, b = face.right_eye, face.left_eye
    return (a, b) if a.x <= b.x else (b, a)


def detect_eyes(image: np.ndarray, source: Path | str) -> tuple[Point, Point]:
    """Find the two eye points of the most prominent face with the BlazeFace detector.

    Returns:
        The two eye keypoints, sorted left to right in the image.

    Raises:
        FrameBuildError: No face found (the message suggests ``--eyes``).
    """
    return eyes_left_to_right(detect_face(image, source))


def model_eyes(image: np.ndarray, points: tuple[Point, Point]) -> tuple[Eye, Eye]:
    """Model both eyes from their coarse points (image-left eye first)."""
    a, b = points
    ipd = math.hypot(a.x - b.x, a.y - b.y)
    return model_eye(image, a, ipd), model_eye(image, b, ipd)
