"""Synthesize gaze frames on the CPU: move both irises across their eye openings.

For every frame both irises shift by the same horizontal distance (the eyes turn together):
``shift = eyeball_radius × sin(angle)``, with the eyeball radius taken as ``2 ×`` the iris
radius (human eyes: ~12 mm and ~6 mm), scaled down together if an opening is too narrow for the
widest angle. Each eye is rendered on a supersampled crop (8× for small eyes, fewer for
large ones):

1. the *bare eye* — the iris removed and the hole filled smoothly (a membrane fill, coarse to
   fine) from the sclera beside it and the lids above and below, so the eye's shading and the
   lid shadows carry on across the uncovered sclera;
2. the iris (with its pupil and catch-light) moved by the shift along the line between the eye's
   corners (a tilted eye's iris follows its tilt) and cut by the opening, with a
   limbus and lid edge softened in proportion to the iris radius, so it never lies on a lid or
   the skin; iris texture hidden under a lid in the painting is continued from the nearest
   visible row of the same column;
3. the upper lid lowered where the frame asks for it (a blink phase, or a downward gaze, which
   the lid follows a little): the band of skin above the lid, crease and lash line and the
   painting's own texture included, slides down over the eye, stretched in each column (the
   corners stay where they are); shut, its lash line lies on the lower lid's. As it closes,
   the lid over the eyeball takes the shading of the skin around the eye (its own detail
   kept) and a seam darkens its edge, so a painting's soft lash line reads as a shut eye;
4. the change against the painting, averaged back down to image pixels (antialiased edges).

Only pixels inside the eye openings change. Every frame, the one at angle 0 included, goes
through the same resampling, so all frames share the same (slight) softness of the iris and
no frame "pops" against its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from appliance.framebuild.eyes import Eye, supersample_for, supersampled

LID_SHADE = 0.3
"""How much the lids (vs. only the clean sclera) shade the middle of the uncovered sclera."""

EYEBALL_RATIO = 2.0
"""Eyeball radius / iris radius: turning by ``a`` moves the iris by ``2 r sin(a)`` pixels."""

LID_FOLLOW = 0.4
"""How far the upper lid follows the iris up and down, as a fraction of the iris's move (real
upper lids follow vertical gaze closely; less keeps the iris visible in the lowest row)."""

LID_RISE_MAX = 0.25
"""Most the upper lid rises (looking up), in eye openings at the centre."""

LID_BAND = 1.5
"""Height of the band of skin above the upper lid that slides down with it, in eye openings
(the opening's height at the centre): it holds the lid's crease."""

LID_TONE_BLUR = 0.25
"""Radius of the blur that takes the smooth shading of a lowered lid, in eye openings: the lid
over the eyeball takes the skin's shading around the eye (its own detail kept), not the dark
socket and crease it was stretched from."""

LID_SKIN_GROW = 0.6
"""How far beyond the opening the skin's shading is filled from around the eye, in openings
(the lash lines and the socket's shadow at the rims left out)."""

LID_SEAM = 0.5
"""How much the seam where the lids meet darkens the painting at its centre, when shut (0..1):
a painting's soft lash line alone does not read as a shut eye, to people or to the face mesh."""

LID_SEAM_WIDTH = 0.5
"""Half-width of the seam (a Gaussian along each column), in lid margins."""

LID_MARGIN = 0.3
"""Height of the lid's margin (lash line and rim), moved down whole, in eye openings."""


def pitch_shift(eyes: Sequence[Eye], pitch: float) -> float:
    """The irises' vertical move for a vertical gaze, pixels (+ = down in the image).

    Args:
        eyes: The modelled eyes (both move together).
        pitch: Vertical gaze, degrees, + = up.
    """
    radius = float(np.mean([e.radius for e in eyes]))
    return -EYEBALL_RATIO * radius * math.sin(math.radians(pitch))


def lid_drop(eye: Eye, lids: float, dy: float) -> float:
    """How far the upper lid comes down at the centre of the opening, pixels (>= 0).

    Args:
        eye: The modelled eye.
        lids: Blink phase, 0 open .. 1 shut (the lid then lies on the lower lid).
        dy: The iris's vertical move, pixels, + = down (the lid follows it both ways).
    """
    o = eye.opening
    follow = LID_FOLLOW * dy
    if follow < 0:
        # Raised, by at most a quarter of the opening: the skin above keeps most of its height.
        follow = max(follow, -LID_RISE_MAX * (o.up + o.down))
    full = o.up + o.down
    return min(full, follow + lids * max(0.0, full - follow))


def iris_shifts(eyes: Sequence[Eye], angles: Sequence[float]) -> tuple[list[float], float]:
    """Return the iris shift in pixels for every angle, and the common scale applied.

    Args:
        eyes: The modelled eyes (both move by the same amount).
        angles: Gaze angles in degrees, negative = toward the image's left.

    Returns:
        ``(shifts, scale)``: per angle the horizontal shift (pixels, negative = left), and the
        factor (<= 1) by which all shifts were reduced to keep each iris in its opening.
    """
    radius = float(np.mean([e.radius for e in eyes]))
    raw = [EYEBALL_RATIO * radius * math.sin(math.radians(a)) for a in angles]
    scale = 1.0
    for e in eyes:
        left, right = e.travel()
        most_left = -min(0.0, min(raw))
        most_right = max(0.0, max(raw))
        if most_left > 0:
            scale = min(scale, left / most_left)
        if most_right > 0:
            scale = min(scale, right / most_right)
    return [v * scale for v in raw], scale


def shift_edge(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved by ``(dx, dy)`` whole pixels; the uncovered edge repeats the border."""
    if dx == 0 and dy == 0:
        return image
    h, w = image.shape[:2]
    px, py = abs(dx), abs(dy)
    pad = ((py, py), (px, px)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    return np.ascontiguousarray(padded[py - dy : py - dy + h, px - dx : px - dx + w])


def _soft_disc(
    xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, r: float, edge: float
) -> np.ndarray:
    """Disc coverage 0..1 whose rim ramps over ``edge`` pixels (the limbus is never sharp)."""
    d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    a: np.ndarray = np.clip((r + 0.5 * edge - d) / edge, 0.0, 1.0)
    return a


def box_blur(mask: np.ndarray, radius: int) -> np.ndarray:
    """Mean (float64) over a ``(2 radius + 1)²`` square, edges replicated (integral image).

    ``mask`` is ``h×w`` or ``h×w×c`` (each channel blurred alone).
    """
    if radius <= 0:
        return mask.astype(np.float64)
    k = 2 * radius + 1
    pad = ((radius + 1, radius + 1),) * 2 + ((0, 0),) * (mask.ndim - 2)
    padded = np.pad(mask.astype(np.float64), pad, mode="edge")
    ii = padded.cumsum(0).cumsum(1)
    out: np.ndarray = (ii[k:, k:] - ii[:-k, k:] - ii[k:, :-k] + ii[:-k, :-k]) / (k * k)
    return out[: mask.shape[0], : mask.shape[1]]


def canvas_detail(rgb: np.ndarray, s: int, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a supersampled crop into its smooth part and the canvas's finest detail.

    The detail is what a blur over about one image pixel removes (``s`` sub-pixels per
    pixel). Only detail as faint as the skin's around the eye (``outside``; up to its 99th
    percentile) counts as canvas: cracks and brush marks pass; a catch-light or the hard rim
    of an iris in a sharp photo, and a pixel around them, are dropped (they belong to the eye,
    which moves).

    Returns:
        ``(base, detail)``, both ``h×w×3`` float.
    """
    radius = max(1, s // 2)
    base = np.stack([box_blur(box_blur(rgb[..., c], radius), radius) for c in range(3)], axis=2)
    detail = rgb - base
    size = np.abs(detail).max(axis=2)
    limit = float(np.percentile(size[outside], 99)) if outside.any() else 0.0
    loud = box_blur(size > limit, s) > 0
    return base, np.where(loud[..., None], 0.0, detail)


def harmonic_fill(rgb: np.ndarray, hole: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Fill ``hole`` smoothly from everything around it (a membrane / Laplace fill).

    Solved coarse to fine: each level halves the resolution (averaging only known pixels),
    fills there, and starts the finer level from that, so a few Jacobi iterations per level
    reach the smooth solution. The sclera left behind by a moved iris thus takes the shading of
    the sclera beside it and of the lids above and below.

    Args:
        rgb: ``h×w×3`` float image.
        hole: ``h×w`` bool, the pixels to fill.
        iterations: Jacobi sweeps per level.

    Returns:
        A new array, equal to ``rgb`` outside ``hole``.
    """
    out = rgb.astype(np.float64, copy=True)
    if not hole.any():
        return out
    h, w = hole.shape
    if min(h, w) >= 8:
        h2, w2 = h // 2, w // 2
        known = (~hole[: 2 * h2, : 2 * w2]).astype(np.float64)
        kw = known.reshape(h2, 2, w2, 2).sum(axis=(1, 3))
        summed = (out[: 2 * h2, : 2 * w2] * known[..., None]).reshape(h2, 2, w2, 2, 3)
        coarse = summed.sum(axis=(1, 3)) / np.maximum(kw, 1.0)[..., None]
        coarse_hole = kw == 0
        filled = harmonic_fill(coarse, coarse_hole, iterations)
        up = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)
        guess = np.pad(up, ((0, h - 2 * h2), (0, w - 2 * w2), (0, 0)), mode="edge")
        out[hole] = guess[hole]
    else:
        out[hole] = out[~hole].mean(axis=0) if (~hole).any() else 128.0
    m = hole[..., None]
    for _ in range(iterations):
        p = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        avg = 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])
        out = np.where(m, avg, out)
    return out


def _continue_columns(tex: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels of each column from the nearest valid pixel in that column."""
    out = tex.copy()
    rows = np.arange(tex.shape[0])
    for j in np.flatnonzero(valid.any(axis=0) & ~valid.all(axis=0)):
        v = np.flatnonzero(valid[:, j])
        idx = v[np.clip(np.searchsorted(v, rows), 0, len(v) - 1)]
        prev = v[np.clip(np.searchsorted(v, rows) - 1, 0, len(v) - 1)]
        pick = np.where(np.abs(prev - rows) < np.abs(idx - rows), prev, idx)
        out[:, j] = tex[pick, j]
    return out


class EyeRenderer:
    """Renders one eye with its iris moved; prepares the bare eye once.

    Args:
        image: ``H×W×3`` uint8 RGB painting.
        eye: The modelled eye.
    """

    def __init__(self, image: np.ndarray, eye: Eye) -> None:
        self.eye = eye
        s = supersample_for(eye.roi)
        self.rgb, self.xs, self.ys = supersampled(image, eye.roi, s)
        self.inside = eye.opening.mask(self.xs, self.ys)
        ix, iy, r = eye.iris.x, eye.iris.y, eye.radius
        o_ = eye.opening
        # The limbus and the lid edges are soft in proportion to the eye's size.
        self.edge = max(0.5, 0.15 * r)
        self.feather = max(1, round(0.06 * r * s))
        feather = box_blur(self.inside, self.feather)
        self.soft_inside = np.clip(2.0 * feather - 1.0, 0.0, 1.0) * self.inside
        iris_alpha = _soft_disc(self.xs, self.ys, ix, iy, r, self.edge) * self.inside
        # Bare eye: remove the iris (and its soft rim), fill smoothly from its surroundings.
        hole = (np.hypot(self.xs - ix, self.ys - iy) <= r + self.edge + 0.25) & self.inside
        # Two membrane fills: from everything around the hole (continuous with the sclera
        # beside it and the lids' shadow), and from the clean sclera only (the brighter half
        # of the opening outside the hole). The clean one takes over only away from the hole's
        # rim, so the fill stays seamless and is not greyed by the lash lines.
        # The fills work on the painting without its finest detail; that detail (craquelure,
        # brush marks: on the canvas, not the eye) is laid back over the uncovered sclera.
        base, canvas = canvas_detail(self.rgb, s, ~self.inside)
        with_lids = harmonic_fill(base, hole)
        lum = self.rgb.mean(axis=2)
        rest = self.inside & ~hole
        clean = rest & (lum >= np.median(lum[rest])) if rest.any() else rest
        sclera = harmonic_fill(base, ~clean) if clean.any() else with_lids
        depth = np.clip(2.0 * box_blur(hole, max(1, round(0.35 * r * s))) - 1.0, 0.0, 1.0)
        w = ((1.0 - LID_SHADE) * depth * depth * (3.0 - 2.0 * depth))[..., None]
        filled = (1.0 - w) * with_lids + w * sclera + canvas
        self.sclera = sclera + canvas
        # What stays in place over a lowered lid: the canvas's detail, but not over the iris
        # nor round it (a photo's catch-light can be faint enough to pass for canvas, and lie
        # on the limbus; it belongs to the eye and must not stay on a shut lid).
        near = np.hypot(self.xs - ix, self.ys - iy) <= 1.5 * r + self.edge
        self.canvas = np.where(near[..., None], 0.0, canvas)
        self.bare = np.where(hole[..., None], filled, self.rgb)
        # Iris texture, continued upward/downward where the lids hid it in the painting.
        self.texture = _continue_columns(self.rgb, self.inside & (iris_alpha > 0.5))
        x0, y0, x1, y1 = eye.roi
        self.lo = image[y0:y1, x0:x1].astype(np.float64)
        h, w = self.lo.shape[:2]
        self.residual = self.lo - self.rgb.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        # The last iris move ((k, m) sub-pixels, its disc, texture and crop) and the shut crop.
        self._iris: tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._shut: np.ndarray | None = None
        # The skin as if there were no eye: the opening (and its rims) filled from around it.
        grow = box_blur(self.inside, max(1, round(LID_SKIN_GROW * (o_.up + o_.down) * s))) > 0
        self.skin = harmonic_fill(base, grow)
        self._crop_to_window(s)

    def _crop_to_window(self, s: int) -> None:
        """Keep the supersampled arrays only over the part of the crop a frame can change.

        That is the opening's columns and the rows from the top of the lid's skin band to a
        seam's reach below the lower lid, each widened by the widest blur a frame uses (so
        the result is the same as over the whole crop), in whole image pixels. Each frame's
        work then grows with the eye, not with the crop round it.
        """
        o = self.eye.opening
        x0, y0 = self.eye.roi[0], self.eye.roi[1]
        full = (o.up + o.down) * s
        pad = math.ceil(max(LID_TONE_BLUR * full, 2.0 * LID_MARGIN * full, self.feather)) + 4
        top = (min(o.yl, o.yr) - o.up - y0) * s - LID_BAND * full
        bottom = (max(o.yl, o.yr) + o.down - y0) * s
        h, w = self.rgb.shape[0] // s, self.rgb.shape[1] // s
        r0 = max(0, math.floor((top - pad) / s))
        r1 = min(h, math.ceil((bottom + pad) / s) + 1)
        c0 = max(0, math.floor(((o.xl - x0) * s - pad) / s))
        c1 = min(w, math.ceil(((o.xr - x0) * s + pad) / s) + 1)
        self.window = (r0, r1, c0, c1)
        rows, cols = slice(r0 * s, r1 * s), slice(c0 * s, c1 * s)
        for name in ("rgb", "xs", "ys", "inside", "soft_inside", "sclera", "canvas", "bare"):
            setattr(self, name, getattr(self, name)[rows, cols])
        self.texture = self.texture[rows, cols]
        self.skin = self.skin[rows, cols]
        self.residual = self.residual[r0:r1, c0:c1]

    def render(self, shift: float, dy: float = 0.0, lids: float = 0.0) -> np.ndarray:
        """Return the eye crop (``roi``) as float RGB with the iris moved and the lid lowered.

        Args:
            shift: Horizontal iris move, pixels (negative = toward the image's left).
            dy: Vertical iris move, pixels (+ = down).
            lids: Blink phase, 0 open .. 1 shut.

        Pixels outside the opening and the lid's band above it are exactly the painting's;
        ``render(0)`` re-renders the iris in place. The moved iris is kept until the next
        call with another move, so render every lid phase of a gaze and row in a row; the shut
        crop is the same for every gaze and made once.
        """
        e = self.eye
        s = supersample_for(e.roi)
        # Along the almond (the corner line, for a tilted eye), by a whole number of sub-pixels
        # (1/8 px: invisible after averaging).
        o = e.opening
        slope = (o.yr - o.yl) / max(o.xr - o.xl, 1e-6)
        k, m = round(shift * s), round((shift * slope + dy) * s)
        drop = lid_drop(e, lids, dy)
        if drop >= o.up + o.down:
            # Shut: the lid covers the whole opening, whatever the gaze; made once.
            if self._shut is None:
                bare = np.where(self.inside[..., None], self.bare, self.rgb)
                self._shut = self._downsampled(self._lower_lid(bare, drop, s, lids), True)
            return self._shut
        if self._iris is None or self._iris[0] != (k, m):
            # The iris moved, once per gaze and row: every lid phase of it starts from this.
            disc = _soft_disc(
                self.xs, self.ys, e.iris.x + k / s, e.iris.y + m / s, e.radius, self.edge
            )
            tex = shift_edge(self.texture, k, m)
            a = (disc * self.soft_inside)[..., None]
            moved = np.where(self.inside[..., None], self.bare * (1.0 - a) + tex * a, self.rgb)
            self._iris = ((k, m), disc, tex, moved)
        _, disc, tex, hi = self._iris
        if drop > 0:
            hi = self._lower_lid(hi, drop, s, lids)
        elif drop < 0:
            raised = replace(o, up=o.up - drop)
            inside = raised.mask(self.xs, self.ys)
            soft = np.clip(2.0 * box_blur(inside, self.feather) - 1.0, 0.0, 1.0) * inside
            a = (disc * soft)[..., None]
            # Under the raised lid: the clean sclera's shading continued upward, the iris over it.
            under = np.where(self.inside[..., None], self.bare, self.sclera)
            shown = np.where(inside[..., None], under * (1.0 - a) + tex * a, self.rgb)
            hi = self._lower_lid(hi, drop, s, 0.0, shown)
        return self._downsampled(hi, drop > 0)

    def _downsampled(self, hi: np.ndarray, lid: bool = False) -> np.ndarray:
        """The supersampled crop's change averaged back down and added to the painting's.

        With ``lid`` (a lowered lid), where sub-pixels changed, the painting's detail that
        the supersampling does not carry (a photo's sharp catch-light, whose box average
        differs from its pixel) goes with them, in proportion: a lid over it leaves no ghost
        of it. Open eyes keep it, as they always did.
        """
        s = supersample_for(self.eye.roi)
        delta = (hi - self.rgb).astype(np.float64)
        r0, r1, c0, c1 = self.window
        h, w = r1 - r0, c1 - c0
        down = delta if s == 1 else delta.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        out: np.ndarray = self.lo.copy()
        out[r0:r1, c0:c1] += down
        if lid:
            a = np.abs(delta)
            moved = (a[..., 0] > 0.5) | (a[..., 1] > 0.5) | (a[..., 2] > 0.5)
            changed = moved.astype(np.float64)
            if s > 1:
                changed = changed.reshape(h, s, w, s).mean(axis=(1, 3))
            out[r0:r1, c0:c1] -= changed[..., None] * self.residual
        return out

    def _lower_lid(
        self, hi: np.ndarray, drop: float, s: int, lids: float, under: np.ndarray | None = None
    ) -> np.ndarray:
        """``hi`` with the upper lid ``drop`` pixels lower at the centre (see the module).

        A negative ``drop`` raises the lid: its margin moves up whole, the skin above is
        compressed, and below the new edge ``under`` (the eye seen through the raised
        opening) is shown.
        """
        o = self.eye.opening
        # The window's top-left corner, image pixels.
        x0, y0 = self.eye.roi[0] + self.window[2], self.eye.roi[1] + self.window[0]
        xs = x0 + (np.arange(hi.shape[1], dtype=np.float64) + 0.5) / s
        u = (2.0 * xs - o.xl - o.xr) / max(o.xr - o.xl, 1e-6)
        bulge = np.clip(1.0 - u * u, 0.0, None)
        t = (xs - o.xl) / max(o.xr - o.xl, 1e-6)
        ymid = o.yl + t * (o.yr - o.yl)
        top = (ymid - o.up * bulge - y0) * s
        # Shut, the lid's edge lies on the lower lid: the drop follows the opening's shape.
        full = max(o.up + o.down, 1e-6)
        dropped = drop / full * (o.up + o.down) * bulge * s
        band = np.clip(LID_BAND * full * s, 2.0, np.maximum(top - 1.0, 2.0))
        margin = np.minimum(LID_MARGIN * full * s, 0.5 * band)
        # A raised lid never lifts more than the skin above its margin can give.
        dropped = np.maximum(dropped, -0.5 * (band - margin))
        # Only the rows the lid, its skin and its seam reach are worked on (the rest is ``hi``).
        reach = top + np.maximum(dropped, 0.0) + np.maximum(2.0 * margin, LID_TONE_BLUR * full * s)
        r0 = max(0, int(np.floor((top - band).min())) - 2)
        r1 = min(hi.shape[0], int(np.ceil(reach.max())) + 4)
        # The canvas's own detail (cracks, brush marks) stays where it is: only the smooth
        # painting slides, so the cracks are not stretched into streaks.
        canvas = self.canvas[r0:r1]
        lid = _lid_warp(hi[r0:r1] - canvas, top - r0, band, margin, dropped)
        if lids > 0:
            lid = self._close(lid, top - r0, top + dropped - r0, margin, bulge, lids, full * s, r0)
        out = hi.copy()
        out[r0:r1] = lid + canvas
        if under is not None:
            ys = np.arange(hi.shape[0], dtype=np.float64)[:, None] + 0.5
            out = np.where((ys >= top + dropped)[..., None], under, out)
        return out

    def _close(
        self,
        image: np.ndarray,
        top: np.ndarray,
        edge: np.ndarray,
        margin: np.ndarray,
        bulge: np.ndarray,
        lids: float,
        full: float,
        row0: int = 0,
    ) -> np.ndarray:
        """A blinking lid's look: the skin's shading over the eyeball and a seam at its edge.

        Between the lid's old edge and its margin, the lid's smooth shading (a blur over
        :data:`LID_TONE_BLUR` openings) is replaced by the skin's around the eye, by ``lids``
        (the detail of the stretched lid stays: no flat colour); along the new edge a seam
        darkens the painting (its own colours and texture, multiplied), by ``lids`` times
        :data:`LID_SEAM`, fading only at the corners.

        Args:
            image: ``h×w×3`` float, supersampled, the lid already slid down.
            top: Per column, the lid's old edge, sub-pixel rows.
            edge: Per column, its new edge, sub-pixel rows.
            margin: Per column, the lid margin's height, sub-pixel rows.
            bulge: Per column, ``1 - u²`` (0 at the corners, 1 at the middle).
            lids: Blink phase, 0 open .. 1 shut.
            full: The opening's height at the centre, sub-pixel rows.
            row0: The crop row ``image``'s first row is (``top`` and ``edge`` count from it).
        """
        ys = np.arange(image.shape[0], dtype=np.float64)[:, None] + 0.5
        m = np.maximum(margin, 1.0)
        over = np.clip((ys - (top - m)) / m, 0.0, 1.0) * np.clip((edge - ys) / m, 0.0, 1.0)
        over = over * (bulge > 0)[None, :]
        rad = max(1, round(LID_TONE_BLUR * full))
        low = box_blur(box_blur(image, rad), rad)
        skin = self.skin[row0 : row0 + image.shape[0]]
        out = image + (lids * over)[..., None] * (skin - low)
        d = (ys - edge) / (LID_SEAM_WIDTH * m)
        seam = np.exp(-d * d) * (bulge**0.1)[None, :]
        shaded: np.ndarray = out * (1.0 - LID_SEAM * lids * seam)[..., None]
        return shaded


def _lid_warp(
    image: np.ndarray, top: np.ndarray, band: np.ndarray, margin: np.ndarray, drop: np.ndarray
) -> np.ndarray:
    """Slide each column's lid down by ``drop``: its margin moved whole, the skin above stretched.

    The lid's margin ``[top - margin, top]`` (the lash line and the lid's rim) moves down
    unchanged, so the lash line keeps its width; the skin above it, ``[top - band, top -
    margin]``, stretches to meet it (the crease moves down a little, as an unfolding lid's
    does). Above the band and below the new edge the image is unchanged.

    Args:
        image: ``h×w×3`` float, supersampled; rows are sub-pixel rows.
        top: Per column, the upper lid's edge, sub-pixel rows (float).
        band: Per column, the height of skin that moves with the lid, sub-pixel rows (> 0).
        margin: Per column, the height of the lid's margin, sub-pixel rows (< ``band``).
        drop: Per column, how far the lid's edge comes down, sub-pixel rows (< 0: up; the skin
            is then compressed, never by more than half its height).

    Returns:
        A new array (linear resampling along each column).
    """
    h = image.shape[0]
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5
    start, fold = top - band, top - margin
    skin = start + (ys - start) * (band - margin) / (band - margin + drop)
    src = np.where(ys < fold + drop, skin, ys - drop)
    moving = (ys > start) & (ys < top + drop) & (drop != 0)
    src = np.where(moving, src, ys) - 0.5
    y0 = np.clip(np.floor(src).astype(np.int64), 0, h - 1)
    y1 = np.clip(y0 + 1, 0, h - 1)
    f = np.clip(src - np.floor(src), 0.0, 1.0)[..., None]
    a = np.take_along_axis(image, y0[..., None], axis=0)
    b = np.take_along_axis(image, y1[..., None], axis=0)
    out: np.ndarray = a * (1.0 - f) + b * f
    return out


def synthesize_region(
    background: np.ndarray,
    origin: tuple[int, int],
    renderers: Sequence[EyeRenderer],
    shift: float,
    dy: float = 0.0,
    lids: float = 0.0,
) -> np.ndarray:
    """One frame over a region of the painting only, every eye's iris moved by ``shift``.

    Args:
        background: ``h×w×3`` uint8, the painting's pixels over the region (unchanged).
        origin: ``(x0, y0)``, the region's top-left corner in the painting, pixels.
        renderers: One per eye; each eye's ``roi`` lies inside the region.
        shift: Iris shift, pixels (negative = toward the image's left).
        dy: Vertical iris shift, pixels (+ = down).
        lids: Blink phase, 0 open .. 1 shut.

    Returns:
        ``h×w×3`` uint8: the frame over the region (outside the eye openings, exactly the
        painting's).
    """
    rx0, ry0 = origin
    out = background.copy()
    for rend in renderers:
        x0, y0, x1, y1 = rend.eye.roi
        crop = np.clip(np.rint(rend.render(shift, dy, lids)), 0, 255).astype(np.uint8)
        out[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0] = crop
    return out
