"""Blend animated head frames into the painting (the original project's pipeline).

Input: a folder of head frames (e.g. First Order Motion Model or LivePortrait output, eyes
sweeping from one side to the other), all the same size. For each head frame the gaze is
*measured* (eye points, each iris refined and its offset in the eye opening turned into an
angle with the same eyeball model as synthesis), N frames are picked evenly in that measured
gaze, resized to the head box, colour-matched to the painting and blended in with the 2D
sigmoid alpha of the original::

    alpha(x, y) = 1 / (1 + exp(j * (max(|x - mx|, |y - my|) - k)))

with ``j = 0.06`` and ``k = 180`` on a 512×512 head (``mx = my = 256``), scaled to the head
box (distances are measured in "512-head" units along each axis). The alpha is rescaled so it
is exactly 1 at the centre and exactly 0 on the head box border: the head frame shows
unchanged in the middle and the painting is untouched at and beyond the border.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.framebuild import FrameBuildError
from appliance.framebuild.eyes import eyes_left_to_right, model_eyes
from appliance.framebuild.output import MANIFEST_DECIMALS
from appliance.framebuild.synthesize import EYEBALL_RATIO, box_blur, shift_edge
from appliance.frames import ImageTooLargeError, open_image
from appliance.types import Box, Face, FaceKeyPoint, Point

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Head frame files recognised in ``--heads`` (by suffix, case-insensitive)."""

DEFAULT_J = 0.06
"""Sigmoid steepness per pixel of a 512-pixel head."""

DEFAULT_K = 180.0
"""Sigmoid midpoint, pixels from the centre of a 512-pixel head."""

EyeFinder = Callable[[np.ndarray, str], tuple[Point, Point]]
"""Finds the two eye points (image-left first) of an image; raises FrameBuildError if none."""


def read_image(path: Path) -> np.ndarray:
    """Read any image as ``H×W×3`` uint8 RGB; :class:`FrameBuildError` if it cannot.

    Raises:
        FrameBuildError: Unreadable, or larger than :data:`~appliance.frames.MAX_IMAGE_PIXELS`
            (one line naming the file, its size and the limit, before it is decoded).
    """
    try:
        with open_image(path) as img:
            w, h = img.size
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            # Copied band by band: the decoded image and the array, never a third full copy
            # (a museum scan is large).
            out = np.empty((h, w, 3), np.uint8)
            for y in range(0, h, 256):
                band = np.asarray(rgb.crop((0, y, w, min(h, y + 256))), dtype=np.uint8)
                out[y : y + band.shape[0]] = band
            return out
    except ImageTooLargeError as err:
        raise FrameBuildError(str(err)) from None
    except (OSError, ValueError) as err:
        if isinstance(err, FrameBuildError):
            raise
        raise FrameBuildError(f"{path}: unreadable image ({err})") from err


def list_heads(heads: Path, count: int) -> list[Path]:
    """Return the head frame files of ``heads`` in name order, checking there are enough.

    Raises:
        FrameBuildError: The folder is missing, or holds fewer than ``count`` images.
    """
    if not heads.is_dir():
        raise FrameBuildError(f"--heads {heads}: not a folder")
    files = sorted(p for p in heads.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < count:
        raise FrameBuildError(
            f"--heads {heads}: {len(files)} head frames, fewer than --count {count}; "
            "export more frames or lower --count"
        )
    return files


def load_heads(files: Sequence[Path]) -> list[np.ndarray]:
    """Read every head frame, checking they all have the size of the first.

    Raises:
        FrameBuildError: An image cannot be read, or differs in size (naming both sizes).
    """
    out: list[np.ndarray] = []
    for p in files:
        img = read_image(p)
        if out and img.shape != out[0].shape:
            raise FrameBuildError(
                f"{p}: head frame is {img.shape[1]}x{img.shape[0]} but {files[0].name} is "
                f"{out[0].shape[1]}x{out[0].shape[0]}; all head frames must be the same size"
            )
        out.append(img)
    return out


def iris_offset(image: np.ndarray, face: Face) -> tuple[float, float]:
    """Measure how far the irises sit from a gaze-independent landmark, in pixels.

    Both irises are refined from the face's eye keypoints; their mean x is compared with the
    mean x of the nose tip and mouth centre, which do not move when the eyes turn.

    Returns:
        ``(offset, radius)``: mean iris x minus the landmark x (pixels, + = image right) and
        the mean iris radius (pixels).
    """
    eyes = model_eyes(image, eyes_left_to_right(face))
    ref = 0.5 * (
        face.keypoint(FaceKeyPoint.NOSE_TIP).x + face.keypoint(FaceKeyPoint.MOUTH_CENTER).x
    )
    iris_x = 0.5 * (eyes[0].iris.x + eyes[1].iris.x)
    return iris_x - ref, 0.5 * (eyes[0].radius + eyes[1].radius)


def offsets_to_angles(offsets: Sequence[float], radius: float) -> list[float]:
    """Turn iris offsets into gaze angles in degrees (negative = image left).

    The middle of the measured sweep is taken as straight ahead, and an offset ``d`` from it
    is the angle ``asin(d / (2 × iris radius))`` (eyeball radius = 2 iris radii).
    """
    mid = 0.5 * (min(offsets) + max(offsets))
    out = []
    for d in offsets:
        ratio = (d - mid) / (EYEBALL_RATIO * radius)
        out.append(math.degrees(math.asin(max(-1.0, min(1.0, ratio)))))
    return out


ANGLE_DECIMALS = MANIFEST_DECIMALS
"""Decimals an angle keeps in ``frames.toml``: picked angles must differ at this precision."""

MAX_GAP_FRACTION = 1.0 / 3.0
"""Largest gap allowed between neighbouring frames' gazes, as a fraction of the whole sweep
(or 1.5 even steps, where fewer than six frames make that more): beyond it the portrait's eyes
would jump across a third of their range at once."""

UNEVEN_STEPS = 2.0
"""A sweep whose largest step between neighbouring frames is more than this many even steps
is reported (kept as it is: the angles carry the spacing)."""


def pick_even(measured: Sequence[float], count: int) -> list[int] | None:
    """Pick ``count`` head frames of distinct gaze, as close as can be to an even sweep.

    Targets are ``count`` evenly spaced angles from the smallest to the largest measured
    gaze. Among the head frames' distinct gaze positions (at :data:`ANGLE_DECIMALS`; the
    first head frame of each position stands for it) the strictly increasing choice with
    the least total distance to the targets is found by dynamic programming, so a sweep
    with a few repeated or bunched frames still gives ``count`` different gazes.

    Args:
        measured: Gaze angle of every head frame, degrees.
        count: Frames wanted, >= 2.

    Returns:
        Head frame indices in ascending gaze, or None when there are fewer distinct gaze
        positions than ``count``.
    """
    first: dict[float, int] = {}
    for i, a in enumerate(measured):
        first.setdefault(round(float(a), ANGLE_DECIMALS), i)
    values = sorted(first)
    n = len(values)
    if n < count:
        return None
    targets = np.linspace(values[0], values[-1], count)
    u = np.asarray(values, dtype=np.float64)
    cost = np.abs(u - targets[0])
    back = np.zeros((count, n), dtype=np.int64)
    for i in range(1, count):
        best = np.full(n, np.inf)
        run_min, run_arg = np.inf, -1
        for j in range(1, n):  # target i at value j: the previous target at some value < j
            if cost[j - 1] < run_min:
                run_min, run_arg = float(cost[j - 1]), j - 1
            best[j] = run_min + abs(u[j] - targets[i])
            back[i, j] = run_arg
        cost = best
    j = int(np.argmin(cost))
    path = [j]
    for i in range(count - 1, 0, -1):
        j = int(back[i, j])
        path.append(j)
    return [first[values[k]] for k in reversed(path)]


def picked_angles(
    measured: Sequence[float], count: int, heads: Path, names: Sequence[str] = ()
) -> tuple[list[int], list[float]]:
    """Pick ``count`` head frames of distinct gaze, ordered by it, with their own gaze angles.

    The artist's sweep is used as given: with as many distinct gazes as ``count`` every head
    frame is used, however unevenly they are spaced (face animation sweeps are denser in the
    middle); with more, :func:`pick_even` picks those nearest an even sweep. Each frame's
    angle is the measured gaze of the head frame picked for it, so ``frames.toml`` carries
    the spacing and the appliance follows it.

    Args:
        measured: Gaze angle of every head frame, degrees (negative = image left).
        count: Frames wanted, >= 2.
        heads: The head frame folder (named in the error).
        names: The head frames' file names, in the order of ``measured`` (named in the
            error when two repeat a gaze), or empty.

    Returns:
        ``(picks, angles)``: head frame indices and their angles, in ascending gaze.

    Raises:
        FrameBuildError: Fewer distinct gazes than ``count`` (frames would repeat a gaze), or
            a gap of more than :data:`MAX_GAP_FRACTION` of the sweep between neighbouring
            frames (for fewer than six frames: more than 1.5 even steps); one line saying
            what to do.
    """
    picks = pick_even(measured, count)
    if picks is None:
        seen: dict[float, int] = {}
        repeat = ""
        for i, a in enumerate(measured):
            j = seen.setdefault(round(float(a), ANGLE_DECIMALS), i)
            if j != i and names and not repeat:
                repeat = f": {names[i]} repeats the gaze of {names[j]}"
        raise FrameBuildError(
            f"--heads {heads}: the {len(measured)} head frames show only {len(seen)} distinct "
            f"gaze positions, too few for --count {count} (frames would repeat a gaze{repeat}); "
            f"use a smaller --count, e.g. --count {len(seen)}, or export more head frames"
        )
    angles = [float(measured[i]) for i in picks]
    gaps = [b - a for a, b in itertools.pairwise(angles)]
    worst = int(np.argmax(gaps))
    lo, hi = angles[0], angles[-1]
    # Few frames step far even when even: there, 1.5 even steps.
    limit = max(MAX_GAP_FRACTION, 1.5 / len(gaps)) * (hi - lo)
    if gaps[worst] > limit:
        a, b = angles[worst], angles[worst + 1]
        raise FrameBuildError(
            f"--heads {heads}: the gaze jumps {b - a:.1f}° between neighbouring frames "
            f"({a:+.1f}° .. {b:+.1f}°), more than a third of the sweep ({lo:+.1f}° .. "
            f"{hi:+.1f}°); export head frames whose gaze fills that gap"
        )
    return picks, angles


def uneven_sweep(angles: Sequence[float], heads: Path) -> str | None:
    """One line reporting a sweep more uneven than :data:`UNEVEN_STEPS`, else None.

    Args:
        angles: The frames' gaze angles, degrees, ascending.
        heads: The head frame folder (named in the line).
    """
    gaps = [b - a for a, b in itertools.pairwise(angles)]
    even = (angles[-1] - angles[0]) / max(1, len(gaps))
    if not gaps or max(gaps) <= UNEVEN_STEPS * even:
        return None
    return (
        f"--heads {heads}: the gaze steps between frames range from {min(gaps):.2f}° to "
        f"{max(gaps):.2f}° (an even sweep steps {even:.2f}°); kept as given: frames.toml holds "
        "each frame's measured angle, which the appliance follows"
    )


def sigmoid_alpha(
    width: int, height: int, j: float = DEFAULT_J, k: float = DEFAULT_K
) -> np.ndarray:
    """The 2D sigmoid alpha over a ``width×height`` head box, 1 at the centre, 0 on the border.

    Args:
        width: Head box width in pixels.
        height: Head box height in pixels.
        j: Steepness per pixel of a 512-pixel head.
        k: Midpoint in pixels from the centre of a 512-pixel head.

    Returns:
        ``height×width`` float64 in [0, 1].
    """
    xs = (np.arange(width, dtype=np.float64) + 0.5) * (512.0 / width)
    ys = (np.arange(height, dtype=np.float64) + 0.5) * (512.0 / height)
    d = np.maximum(np.abs(xs[None, :] - 256.0), np.abs(ys[:, None] - 256.0))

    def sig(v: np.ndarray | float) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(np.clip(j * (np.asarray(v) - k), -700, 700))))

    centre, edge = float(sig(0.0)), float(sig(256.0 - 0.5 * 512.0 / min(width, height)))
    if centre - edge < 1e-6:
        raise FrameBuildError(f"--blend-j {j} / --blend-k {k}: the alpha is flat; nothing blends")
    a: np.ndarray = np.clip((sig(d) - edge) / (centre - edge), 0.0, 1.0)
    # The outermost ring of pixels is the border: exactly the painting.
    a[0, :] = a[-1, :] = 0.0
    a[:, 0] = a[:, -1] = 0.0
    return a


@dataclass(frozen=True, slots=True)
class ColourMatch:
    """Per-channel affine colour transfer ``out = (x - src_mean) * gain + dst_mean``."""

    src_mean: np.ndarray
    dst_mean: np.ndarray
    gain: np.ndarray

    @classmethod
    def fit(cls, heads: Sequence[np.ndarray], target: np.ndarray) -> ColourMatch:
        """Fit one transfer for all head frames (so frames do not flicker against each other).

        Statistics are taken over the central half of each image, where the face is.
        """

        def centre(a: np.ndarray) -> np.ndarray:
            h, w = a.shape[:2]
            return a[h // 4 : h - h // 4, w // 4 : w - w // 4].reshape(-1, 3).astype(np.float64)

        src = np.concatenate([centre(h) for h in heads])
        dst = centre(target)
        gain = np.clip(dst.std(0) / np.maximum(src.std(0), 1e-6), 0.5, 2.0)
        return cls(src.mean(0), dst.mean(0), gain)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Return ``image`` transferred, float64 RGB (unclipped)."""
        out: np.ndarray = (image.astype(np.float64) - self.src_mean) * self.gain + self.dst_mean
        return out


def head_box_from_faces(
    painting_eyes: tuple[Point, Point],
    head_eyes: tuple[Point, Point],
    head_size: tuple[int, int],
    painting_size: tuple[int, int],
) -> Box:
    """Map the whole head frame onto the painting by matching the two eye points.

    Args:
        painting_eyes: Eye points in the painting (image-left first).
        head_eyes: The same eyes in a head frame.
        head_size: ``(width, height)`` of the head frames.
        painting_size: ``(width, height)`` of the painting.

    Raises:
        FrameBuildError: The mapped box falls outside the painting.
    """
    pa, pb = painting_eyes
    ha, hb = head_eyes
    scale = math.hypot(pb.x - pa.x, pb.y - pa.y) / max(math.hypot(hb.x - ha.x, hb.y - ha.y), 1e-6)
    pmx, pmy = (pa.x + pb.x) / 2, (pa.y + pb.y) / 2
    hmx, hmy = (ha.x + hb.x) / 2, (ha.y + hb.y) / 2
    x0 = round(pmx - hmx * scale)
    y0 = round(pmy - hmy * scale)
    box = Box(x0, y0, x0 + round(head_size[0] * scale), y0 + round(head_size[1] * scale))
    w, h = painting_size
    if box.x0 < 0 or box.y0 < 0 or box.x1 > w or box.y1 > h:
        raise FrameBuildError(
            f"the head frames, matched to the painting's face, cover {box.as_list(0)}, "
            f"outside the {w}x{h} painting; give --head-box X0,Y0,X1,Y1"
        )
    return box


def parse_box(text: str, size: tuple[int, int]) -> Box:
    """Parse ``--head-box X0,Y0,X1,Y1`` (integers, inside the painting)."""
    try:
        vals = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise FrameBuildError(f"--head-box {text!r}: expected four integers X0,Y0,X1,Y1")
    x0, y0, x1, y1 = vals
    w, h = size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise FrameBuildError(f"--head-box {text!r}: must lie inside the {w}x{h} painting")
    return Box(x0, y0, x1, y1)


MAX_SHIFT_FRACTION = 0.1
"""Largest head movement stabilised, as a fraction of the head frame's smaller side."""


def _grey_without_eyes(image: np.ndarray, eyes: tuple[Point, Point]) -> np.ndarray:
    """Grey levels, mean removed, faded out softly over the eyes and towards the border.

    The eyes' irises move on purpose, so they must not vote; a hard-edged hole would, by
    being at the same place in every frame, so the weight rises smoothly around each eye.
    """
    grey = image[..., :3].astype(np.float64).mean(axis=2)
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    a, b = eyes
    radius = 0.45 * math.hypot(b.x - a.x, b.y - a.y)
    weight = np.outer(np.hanning(h), np.hanning(w))
    for p in (a, b):
        d = np.hypot(xx - p.x, yy - p.y)
        t = np.clip((d - radius) / max(radius, 1.0), 0.0, 1.0)
        weight *= t * t * (3.0 - 2.0 * t)  # smoothstep: 0 on the eye, 1 a radius beyond it
    grey -= (grey * weight).sum() / max(weight.sum(), 1e-12)
    return np.asarray(grey * weight)


def head_shift(
    reference: np.ndarray, head: np.ndarray, eyes: tuple[Point, Point]
) -> tuple[int, int] | None:
    """How far ``head`` has moved against ``reference``, whole pixels, by phase correlation.

    Face-animation models (the First Order Motion Model and its kin) carry the driving video's
    small head movements into their frames; shown one after another as the eyes follow a
    visitor, they make the head wobble. The eyes are left out of the comparison: they are
    meant to move.

    Args:
        reference: The head frame the others are aligned to, H×W×3 uint8.
        head: Another head frame of the same size.
        eyes: The eye points of ``reference`` (pixels), whose discs are ignored.

    Returns:
        ``(dx, dy)``: ``head`` shows what ``reference`` shows at ``(x + dx, y + dy)``; None when
        the best match is farther than :data:`MAX_SHIFT_FRACTION` of the smaller side (not a
        small movement: left as it is).
    """
    corr = _correlation(reference, head, eyes)
    h, w = corr.shape
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    dy = int(py) - h if py > h // 2 else int(py)
    dx = int(px) - w if px > w // 2 else int(px)
    if max(abs(dx), abs(dy)) > MAX_SHIFT_FRACTION * min(h, w):
        return None
    return dx, dy


def _correlation(reference: np.ndarray, head: np.ndarray, eyes: tuple[Point, Point]) -> np.ndarray:
    """Phase correlation surface of ``head`` against ``reference`` (eyes faded out)."""
    fa = np.fft.rfft2(_grey_without_eyes(reference, eyes))
    fb = np.fft.rfft2(_grey_without_eyes(head, eyes))
    cross = fb * np.conj(fa)
    cross /= np.abs(cross) + 1e-12
    corr: np.ndarray = np.fft.irfft2(cross, s=reference.shape[:2])
    return corr


def residual_shift(
    reference: np.ndarray, head: np.ndarray, eyes: tuple[Point, Point]
) -> tuple[float, float]:
    """Sub-pixel ``(dx, dy)`` of ``head`` against ``reference`` (within ±2 px, else 0, 0).

    The phase correlation's peak near zero, refined by a parabola through it and its
    neighbours along each axis: what a face-mesh fit leaves over (the mesh is good to about a
    pixel on a small head).
    """
    corr = _correlation(reference, head, eyes)
    near = np.roll(np.roll(corr, 2, axis=0), 2, axis=1)[:5, :5]
    py, px = np.unravel_index(int(np.argmax(near)), near.shape)
    if py in (0, 4) or px in (0, 4):
        return 0.0, 0.0

    def vertex(a: float, b: float, c: float) -> float:
        den = a - 2.0 * b + c
        return 0.0 if abs(den) < 1e-12 else 0.5 * (a - c) / den

    dy = py - 2 + vertex(near[py - 1, px], near[py, px], near[py + 1, px])
    dx = px - 2 + vertex(near[py, px - 1], near[py, px], near[py, px + 1])
    return float(dx), float(dy)


# Face mesh points that stay put when the eyes turn (nose, forehead, chin, cheeks, jaw, mouth
# corners): the head's own movement is fitted to these.
STILL_POINTS = (
    1,
    4,
    5,
    6,
    9,
    10,
    151,
    168,
    195,
    197,
    152,
    175,
    234,
    454,
    93,
    323,
    132,
    361,
    61,
    291,
    172,
    397,
    58,
    288,
)

MAX_TURN_DEG = 10.0
"""Largest head rotation stabilised, degrees."""

MAX_SCALE_CHANGE = 0.1
"""Largest head scale change stabilised (fraction)."""


@dataclass(frozen=True, slots=True)
class Similarity:
    """``p -> s R(angle) p + (tx, ty)`` in pixels: how a head frame moved against the first.

    Attributes:
        scale: Size factor (1 = unchanged).
        angle: Rotation, degrees (positive turns +x toward +y, i.e. clockwise on screen).
        tx: Shift x, pixels.
        ty: Shift y, pixels.
    """

    scale: float
    angle: float
    tx: float
    ty: float

    @classmethod
    def fit(cls, src: np.ndarray, dst: np.ndarray) -> Similarity:
        """Least-squares similarity taking the ``k×2`` points ``src`` onto ``dst``."""
        ms, md = src.mean(axis=0), dst.mean(axis=0)
        a, b = src - ms, dst - md
        den = float((a * a).sum())
        c = float((a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1]).sum()) / max(den, 1e-12)
        s = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()) / max(den, 1e-12)
        tx = float(md[0] - (c * ms[0] - s * ms[1]))
        ty = float(md[1] - (s * ms[0] + c * ms[1]))
        return cls(math.hypot(c, s), math.degrees(math.atan2(s, c)), tx, ty)

    def matrix(self) -> np.ndarray:
        """The 2×3 matrix ``[[c, -s, tx], [s, c, ty]]``."""
        r = math.radians(self.angle)
        c, s = self.scale * math.cos(r), self.scale * math.sin(r)
        return np.array([[c, -s, self.tx], [s, c, self.ty]])

    def small(self, size: tuple[int, int]) -> bool:
        """Whether this is a wobble worth undoing (not a different shot) for a ``w×h`` frame."""
        w, h = size
        # How far the frame's centre moves.
        m = self.matrix()
        cx, cy = 0.5 * w, 0.5 * h
        dx = m[0, 0] * cx + m[0, 1] * cy + m[0, 2] - cx
        dy = m[1, 0] * cx + m[1, 1] * cy + m[1, 2] - cy
        return (
            max(abs(dx), abs(dy)) <= MAX_SHIFT_FRACTION * min(w, h)
            and abs(self.angle) <= MAX_TURN_DEG
            and abs(self.scale - 1.0) <= MAX_SCALE_CHANGE
        )


def refined(move: Similarity, dx: float, dy: float) -> Similarity:
    """``move`` followed, in the reference frame, by a shift of ``(dx, dy)`` pixels."""
    m = move.matrix()
    return Similarity(
        move.scale,
        move.angle,
        move.tx + m[0, 0] * dx + m[0, 1] * dy,
        move.ty + m[1, 0] * dx + m[1, 1] * dy,
    )


def head_similarity(reference: np.ndarray, head: np.ndarray) -> Similarity:
    """The similarity taking ``reference``'s still face points onto ``head``'s (``468×2``)."""
    idx = list(STILL_POINTS)
    return Similarity.fit(reference[idx], head[idx])


def undo_similarity(image: np.ndarray, move: Similarity) -> np.ndarray:
    """``image`` (moved by ``move`` against the reference) brought back onto the reference.

    Output pixel ``p`` samples ``image`` at ``move(p)`` (bicubic); what comes in from beyond
    the border repeats the border.
    """
    h, w = image.shape[:2]
    pad = max(h, w) // 4
    big = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    m = move.matrix()
    # In padded coordinates: q = p + pad on both sides.
    c = (
        m[0, 0],
        m[0, 1],
        m[0, 2] + pad - pad * (m[0, 0] + m[0, 1]),
        m[1, 0],
        m[1, 1],
        m[1, 2] + pad - pad * (m[1, 0] + m[1, 1]),
    )
    out = Image.fromarray(big).transform(
        (big.shape[1], big.shape[0]), Image.Transform.AFFINE, c, Image.Resampling.BICUBIC
    )
    return np.ascontiguousarray(np.asarray(out)[pad : pad + h, pad : pad + w])


def mesh_offset(eyes: Sequence[Any]) -> tuple[float, float]:
    """Iris offset from the eye-corner midpoint along the corner line, and the iris radius.

    Args:
        eyes: The two :class:`~appliance.framebuild.facemesh.EyeMarks` of a head frame.

    Returns:
        ``(offset, radius)``: the mean over both eyes of ``gaze × half the eye width``
        (pixels, + = toward the image's right) and the mean iris radius (pixels).
    """
    off = float(np.mean([e.gaze() * 0.5 * e.width for e in eyes]))
    return off, float(np.mean([e.radius for e in eyes]))


MOTION_GREY = 8.0
"""Grey levels a head pixel must change by, across the frames, to count as moving."""


def motion_mask(heads: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Where the (stabilised) head frames differ from each other: 1 there, 0 where still.

    A pixel moves if any frame's grey level is more than :data:`MOTION_GREY` from the
    frames' median; the moving set is widened by 4 % of the frame's smaller side and its edge
    softened over as much again, then resized to ``size`` (``w×h``, the head box).

    Returns:
        ``h×w`` float64 in [0, 1].
    """
    grey = np.stack([h[..., :3].astype(np.float64).mean(axis=2) for h in heads])
    spread = np.abs(grey - np.median(grey, axis=0)).max(axis=0)
    moving = spread > MOTION_GREY
    r = max(1, round(0.04 * min(moving.shape)))
    wide = box_blur(moving, r) > 0
    soft = np.clip(2.0 * box_blur(wide, r), 0.0, 1.0)
    img = Image.fromarray(soft.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    out: np.ndarray = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    return out


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved by ``(dx, dy)`` whole pixels; the uncovered edge repeats the border."""
    return shift_edge(image, dx, dy)


def blend_frame(
    region: np.ndarray,
    head: np.ndarray,
    alpha: np.ndarray,
    colour: ColourMatch | None,
) -> np.ndarray:
    """One frame over the head box only: ``head`` resized into it and blended by ``alpha``.

    Args:
        region: ``h×w×3`` uint8, the painting's pixels over the head box.
        head: A head frame, any size (resized to ``w×h``, Lanczos).
        alpha: ``h×w`` float in [0, 1], how much of the head shows.
        colour: The colour transfer for the head frames, or None.

    Returns:
        ``h×w×3`` uint8: the frame over the head box (elsewhere it is the painting, never made).
    """
    h, w = region.shape[:2]
    resized = np.asarray(
        Image.fromarray(head).resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8
    )
    src = colour.apply(resized) if colour is not None else resized.astype(np.float64)
    src = np.clip(src, 0.0, 255.0)
    a = alpha[..., None]
    mixed = region.astype(np.float64) * (1.0 - a) + src * a
    out: np.ndarray = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out
