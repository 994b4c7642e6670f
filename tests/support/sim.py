"""Synthetic gallery visitors for replay clips, tests and benchmarks (not part of the product).

A visitor is a real face photo (by default the public-domain astronaut portrait that ships with
scikit-image) cut out with a soft edge, scaled so that its eyes are as far apart as a real
visitor's would be at their distance, and pasted onto a plausible room with a body below it and
mild sensor noise. Placement uses real pinhole-camera geometry:

* focal length in pixels ``f = W / 2 / tan(hfov / 2)`` for an image ``W`` pixels wide;
* a visitor ``d`` metres from the camera and ``x`` metres to the side appears at
  ``u = W / 2 + f * x / d`` with eyes ``f * 0.063 / d`` pixels apart;
* the row follows from the height of the eyes relative to the camera (and the camera's tilt).

World coordinates are metres: ``x`` to the right as the camera sees it (image right), ``y``
upwards from the floor, ``z`` (distance) away from the camera along its horizontal axis.

Nothing here imports scikit-image at module import: :func:`astronaut_photo` imports it lazily,
and every renderer takes the :class:`FacePhoto` as a parameter, so the module itself needs only
numpy and Pillow. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from appliance.camera import CLIP_FILE, CameraError, ClipFile, ClipTruth
from appliance.types import Point

EYE_DISTANCE_M = 0.063
"""Mean adult interpupillary distance, metres."""

TRUTH_FILE = "truth.jsonl"
"""Per-frame ground truth written next to a clip's frames (one JSON object per line)."""

# The astronaut photo (skimage.data.astronaut(), 512x512, NASA, public domain): pupil centres
# measured by hand on a 3x enlargement and checked against MediaPipe's full-range detector
# (its eye keypoints: (202.8, 103.5) and (248.0, 105.9)). Continuous pixel coordinates: the
# centre of pixel (i, j) is (i + 0.5, j + 0.5).
ASTRONAUT_RIGHT_EYE = (202.5, 102.0)
ASTRONAUT_LEFT_EYE = (247.5, 104.0)
ASTRONAUT_HAIR = (226.0, 90.0, 78.0, 64.0)
"""Hair ellipse in the photo: centre x, centre y, semi-axis x, semi-axis y (pixels)."""
ASTRONAUT_FACE = (225.0, 128.0, 50.0, 62.0)
"""Face ellipse (cheeks and chin), never keyed out as backdrop: centre x, centre y, semi-axes."""
ASTRONAUT_NECK = (202.0, 160.0, 250.0, 215.0)
"""Neck rectangle kept below the head: x0, y0, x1, y1 (pixels)."""
ASTRONAUT_BACKDROP = (201.0, 190.0, 184.0)
"""The studio backdrop colour around the head (RGB), keyed out of the cut-out."""


@dataclass(frozen=True)
class FacePhoto:
    """A frontal face photo and where its eyes are.

    Attributes:
        image: H×W×3 uint8 RGB photo.
        alpha: H×W float32 cut-out mask in [0, 1] (1 = head), soft at the edge.
        right_eye: The subject's right eye (left in the photo), continuous pixel coordinates.
        left_eye: The subject's left eye (right in the photo), continuous pixel coordinates.
    """

    image: np.ndarray
    alpha: np.ndarray
    right_eye: Point
    left_eye: Point

    @property
    def eye_distance(self) -> float:
        """Distance between the eyes in the photo, pixels."""
        return math.hypot(self.left_eye.x - self.right_eye.x, self.left_eye.y - self.right_eye.y)


def _soft_ellipse(
    shape: tuple[int, int], cx: float, cy: float, ax: float, ay: float, feather: float
) -> np.ndarray:
    """Return an H×W float32 mask, 1 inside the ellipse, ramping to 0 over ``feather`` px."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    edge_px = (r - 1.0) * min(ax, ay)  # approximate signed distance to the ellipse, pixels
    mask: np.ndarray = np.clip(0.5 - edge_px / feather, 0.0, 1.0).astype(np.float32)
    return mask


def astronaut_photo() -> FacePhoto:
    """Return the astronaut portrait from scikit-image, cut out around the head.

    The cut-out is the hair and face ellipses and the neck, with the pale studio backdrop keyed out
    (never inside the face) and a soft 4 px edge. scikit-image is imported here, lazily.

    Returns:
        The photo with its measured eye positions.
    """
    import skimage.data  # dev dependency, only needed to build the photo

    raw: np.ndarray = skimage.data.astronaut()
    img = np.ascontiguousarray(raw[:, :, :3], dtype=np.uint8)
    shape = (img.shape[0], img.shape[1])
    hair = _soft_ellipse(shape, *ASTRONAUT_HAIR, feather=4.0)
    face = _soft_ellipse(shape, *ASTRONAUT_FACE, feather=3.0)
    head = np.maximum(hair, face)
    x0, y0, x1, y1 = ASTRONAUT_NECK
    neck = np.zeros(shape, np.float32)
    neck[int(y0) : int(y1), int(x0) : int(x1)] = 1.0
    neck_img = Image.fromarray((neck * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    neck = np.asarray(neck_img, dtype=np.float32) / 255.0
    # Fade the neck out towards its bottom so the body drawn below shows through.
    fade = np.clip((y1 - (np.arange(shape[0], dtype=np.float32) + 0.5)) / 20.0, 0.0, 1.0)
    neck *= fade[:, None]
    diff = img.astype(np.float32) - np.asarray(ASTRONAUT_BACKDROP, np.float32)
    backdrop = np.exp(-np.sum(diff * diff, axis=2) / (2.0 * 30.0**2)).astype(np.float32)
    alpha = np.maximum(head, neck) * np.maximum(1.0 - backdrop, face)
    alpha_img = Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    alpha = np.asarray(alpha_img, dtype=np.float32) / 255.0
    return FacePhoto(
        image=img,
        alpha=alpha,
        right_eye=Point(*ASTRONAUT_RIGHT_EYE),
        left_eye=Point(*ASTRONAUT_LEFT_EYE),
    )


@dataclass(frozen=True)
class CameraGeometry:
    """A pinhole camera in the room.

    Attributes:
        width: Image width, pixels.
        height: Image height, pixels.
        hfov_deg: Horizontal field of view, degrees (Camera Module 3: 66; wide: 102).
        height_m: Height of the camera above the floor, metres (above a portrait: ~1.75).
        tilt_deg: Downward tilt of the camera, degrees (0 = level, positive = looking down).
        wall_m: Distance from the camera to the far wall, metres (for the room background).
    """

    width: int = 1280
    height: int = 960
    hfov_deg: float = 66.0
    height_m: float = 1.75
    tilt_deg: float = 0.0
    wall_m: float = 7.0

    @property
    def focal_px(self) -> float:
        """Focal length in pixels: ``width / 2 / tan(hfov / 2)``."""
        return self.width / 2.0 / math.tan(math.radians(self.hfov_deg) / 2.0)

    def project(self, x_m: float, y_m: float, z_m: float) -> tuple[float, float, float]:
        """Project a world point into the image.

        Args:
            x_m: Lateral offset, metres, + = image right.
            y_m: Height above the floor, metres.
            z_m: Horizontal distance from the camera, metres (> 0).

        Returns:
            ``(u, v, depth)``: image column and row in continuous pixels, and the depth along
            the optical axis in metres (the scale is ``focal_px / depth`` pixels per metre).
        """
        t = math.radians(self.tilt_deg)
        dy = self.height_m - y_m  # metres below the camera
        depth = z_m * math.cos(t) + dy * math.sin(t)
        down = -z_m * math.sin(t) + dy * math.cos(t)
        f = self.focal_px
        return self.width / 2.0 + f * x_m / depth, self.height / 2.0 + f * down / depth, depth

    def half_width_m(self, distance_m: float) -> float:
        """Half the width of the view at ``distance_m``, metres (level camera)."""
        return distance_m * math.tan(math.radians(self.hfov_deg) / 2.0)


@dataclass(frozen=True)
class Visitor:
    """One visitor's head pose in the room.

    Attributes:
        x_m: Lateral offset of the eye midpoint, metres, + = image right.
        distance_m: Horizontal distance from the camera, metres.
        eye_height_m: Height of the eyes above the floor, metres.
        eye_distance_m: Interpupillary distance, metres.
        roll_deg: Head roll, degrees (+ = clockwise in the image).
        shirt: Body colour, RGB 0-255.
    """

    x_m: float
    distance_m: float
    eye_height_m: float = 1.62
    eye_distance_m: float = EYE_DISTANCE_M
    roll_deg: float = 0.0
    shirt: tuple[int, int, int] = (52, 64, 92)


@dataclass(frozen=True)
class EyeTruth:
    """Where a visitor's eyes were drawn in a frame (continuous pixel coordinates).

    Attributes:
        right_eye: The subject's right eye (image left).
        left_eye: The subject's left eye (image right).
        distance_m: The visitor's distance, metres.
        x_m: The visitor's lateral offset, metres.
        in_view: True if the face (1.5 eye distances round the eye midpoint) is inside the frame.
    """

    right_eye: Point
    left_eye: Point
    distance_m: float
    x_m: float
    in_view: bool

    @property
    def eye_mid(self) -> Point:
        """Midpoint between the eyes."""
        return Point(
            (self.right_eye.x + self.left_eye.x) / 2, (self.right_eye.y + self.left_eye.y) / 2
        )

    @property
    def eye_px(self) -> float:
        """Eye distance in pixels."""
        return math.hypot(self.left_eye.x - self.right_eye.x, self.left_eye.y - self.right_eye.y)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (points as ``[x, y]``)."""
        return {
            "right_eye": self.right_eye.as_list(3),
            "left_eye": self.left_eye.as_list(3),
            "eye_mid": self.eye_mid.as_list(3),
            "eye_px": round(self.eye_px, 3),
            "distance_m": round(self.distance_m, 4),
            "x_m": round(self.x_m, 4),
            "in_view": self.in_view,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> EyeTruth:
        """Inverse of :meth:`to_json`."""
        r = data["right_eye"]
        lft = data["left_eye"]
        if not (isinstance(r, list) and isinstance(lft, list) and len(r) == len(lft) == 2):
            raise ValueError("right_eye and left_eye must be [x, y]")
        return cls(
            right_eye=Point(float(r[0]), float(r[1])),
            left_eye=Point(float(lft[0]), float(lft[1])),
            distance_m=float(data["distance_m"]),  # type: ignore[arg-type]
            x_m=float(data["x_m"]),  # type: ignore[arg-type]
            in_view=bool(data["in_view"]),
        )


def room_background(geometry: CameraGeometry, seed: int = 0) -> np.ndarray:
    """Render an empty gallery room as the camera sees it.

    A wall with a vertical light gradient, a skirting board, a floor with planks receding in
    perspective, a few framed (abstract) pictures and a doorway, low-frequency shading and fine
    texture. Deterministic for a given seed.

    Args:
        geometry: The camera (image size, field of view, height, tilt, wall distance).
        seed: Random seed for colours, picture placement and texture.

    Returns:
        H×W×3 uint8 RGB image.
    """
    rng = np.random.default_rng(seed)
    w, h = geometry.width, geometry.height
    wall_rgb = np.array([200, 192, 178], np.float32) + rng.uniform(-25, 25, 3).astype(np.float32)
    floor_rgb = np.array([120, 92, 64], np.float32) + rng.uniform(-20, 20, 3).astype(np.float32)
    _, v_floor, _ = geometry.project(0.0, 0.0, geometry.wall_m)
    v_floor = float(np.clip(v_floor, 0.15 * h, h))
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    wall_grad = 1.08 - 0.25 * rows / h  # lighter at the top (ceiling lights)
    img = np.broadcast_to(wall_rgb * wall_grad, (h, w, 3)).copy()
    floor_rows = rows[:, 0, 0] >= v_floor
    floor_grad = 0.75 + 0.35 * (rows - v_floor) / max(1.0, h - v_floor)
    img[floor_rows] = np.broadcast_to(floor_rgb * floor_grad, (h, w, 3))[floor_rows]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    # Floor planks converging to the centre of the far wall's bottom edge.
    for k in range(-12, 13):
        x_far = w / 2 + k * w / 14
        x_near = w / 2 + k * w / 3.5
        draw.line([(x_far, v_floor), (x_near, h)], fill=tuple(int(c * 0.7) for c in floor_rgb))
    draw.rectangle([0, v_floor - 0.012 * h, w, v_floor], fill=(235, 232, 225))  # skirting
    # A doorway and framed abstract pictures on the far wall.
    door_x = rng.uniform(0.05, 0.25) * w if rng.random() < 0.5 else rng.uniform(0.75, 0.9) * w
    door_w = 0.09 * w
    draw.rectangle(
        [door_x, v_floor - 0.38 * h, door_x + door_w, v_floor], fill=(70, 66, 62), outline=(40,) * 3
    )
    for _ in range(int(rng.integers(2, 5))):
        pw = rng.uniform(0.06, 0.16) * w
        ph = pw * rng.uniform(0.6, 1.3)
        px = rng.uniform(0.0, w - pw)
        py = rng.uniform(0.05 * h, max(0.06 * h, v_floor - ph - 0.15 * h))
        frame = tuple(int(c) for c in rng.integers(20, 120, 3))
        draw.rectangle([px - 6, py - 6, px + pw + 6, py + ph + 6], fill=frame)
        for _ in range(6):  # abstract colour blocks, nothing face-like
            bx0, bx1 = sorted(rng.uniform(px, px + pw, 2))
            by0, by1 = sorted(rng.uniform(py, py + ph, 2))
            draw.rectangle(
                [bx0, by0, bx1, by1], fill=tuple(int(c) for c in rng.integers(0, 256, 3))
            )
    out = np.asarray(pil, dtype=np.float32)
    # Low-frequency shading (uneven light) and fine texture.
    low = rng.normal(0.0, 1.0, (6, 8)).astype(np.float32)
    low_img = Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC)
    out *= (1.0 + 0.05 * np.asarray(low_img, np.float32))[:, :, None]
    out += rng.normal(0.0, 3.0, (h, w, 1)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class _Cutout:
    """A scaled RGBA head cut-out (cached per integer size)."""

    rgb: np.ndarray
    alpha: np.ndarray
    scale_x: float
    scale_y: float


@dataclass
class Renderer:
    """Draws visitors into frames of one room; caches scaled head cut-outs.

    Attributes:
        photo: The face photo used for every visitor.
        background: The empty room (H×W×3 uint8); by default :func:`room_background`.
        seed: Seed for the room (when no background is given) and the sensor noise.
        noise_sigma: Standard deviation of the per-pixel sensor noise, 0-255 levels.
    """

    photo: FacePhoto
    geometry: CameraGeometry = field(default_factory=CameraGeometry)
    background: np.ndarray | None = None
    seed: int = 0
    noise_sigma: float = 2.5
    _cache: dict[tuple[int, int, float], _Cutout] = field(default_factory=dict, repr=False)
    _rng: np.random.Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.background is None:
            self.background = room_background(self.geometry, self.seed)
        bh, bw = self.background.shape[:2]
        if (bw, bh) != (self.geometry.width, self.geometry.height):
            raise ValueError(
                f"background is {bw}x{bh} but the camera is "
                f"{self.geometry.width}x{self.geometry.height}"
            )
        self._rng = np.random.default_rng(self.seed + 1)

    def eyes(self, visitor: Visitor) -> EyeTruth:
        """Where ``visitor``'s eyes land in the image (as :meth:`render` draws them)."""
        return self._place(visitor)[1]

    def _place(self, visitor: Visitor) -> tuple[tuple[int, int, _Cutout], EyeTruth]:
        g = self.geometry
        u, v, depth = g.project(visitor.x_m, visitor.eye_height_m, visitor.distance_m)
        if depth <= 0.05:
            raise ValueError(f"visitor at distance {visitor.distance_m} m is behind the camera")
        eye_px = g.focal_px * visitor.eye_distance_m / depth
        scale = eye_px / self.photo.eye_distance
        cut = self._cutout(scale, visitor.roll_deg)
        # Photo eye midpoint -> scaled cut-out coordinates -> integer paste offset.
        p = self.photo
        mid_x = (p.right_eye.x + p.left_eye.x) / 2 * cut.scale_x
        mid_y = (p.right_eye.y + p.left_eye.y) / 2 * cut.scale_y
        ox, oy = round(u - mid_x), round(v - mid_y)
        right, left = self._rotated_eyes(visitor.roll_deg)
        r = Point(right.x * cut.scale_x + ox, right.y * cut.scale_y + oy)
        lft = Point(left.x * cut.scale_x + ox, left.y * cut.scale_y + oy)
        margin = 1.5 * eye_px
        mx, my = (r.x + lft.x) / 2, (r.y + lft.y) / 2
        in_view = margin <= mx <= g.width - margin and margin <= my <= g.height - margin
        truth = EyeTruth(r, lft, visitor.distance_m, visitor.x_m, in_view)
        return (ox, oy, cut), truth

    def _rotated_eyes(self, roll_deg: float) -> tuple[Point, Point]:
        p = self.photo
        if roll_deg == 0.0:
            return p.right_eye, p.left_eye
        h, w = p.image.shape[:2]
        cx, cy = w / 2, h / 2
        a = math.radians(roll_deg)
        c, s = math.cos(a), math.sin(a)

        def rot(q: Point) -> Point:
            dx, dy = q.x - cx, q.y - cy
            return Point(cx + c * dx - s * dy, cy + s * dx + c * dy)

        return rot(p.right_eye), rot(p.left_eye)

    def _cutout(self, scale: float, roll_deg: float) -> _Cutout:
        p = self.photo
        h, w = p.image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        key = (nw, nh, round(roll_deg, 2))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rgba = np.dstack([p.image, (p.alpha * 255).astype(np.uint8)])
        im = Image.fromarray(rgba, "RGBA")
        if roll_deg:
            # PIL rotates counter-clockwise for positive angles; ours is clockwise in the image.
            im = im.rotate(-roll_deg, resample=Image.Resampling.BICUBIC, center=(w / 2, h / 2))
        im = im.resize((nw, nh), Image.Resampling.LANCZOS)
        arr = np.asarray(im)
        cut = _Cutout(
            rgb=arr[:, :, :3].astype(np.float32),
            alpha=arr[:, :, 3].astype(np.float32)[:, :, None] / 255.0,
            scale_x=nw / w,
            scale_y=nh / h,
        )
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = cut
        return cut

    def render(self, visitors: Sequence[Visitor] = ()) -> tuple[np.ndarray, list[EyeTruth]]:
        """Draw the room with ``visitors`` (farthest first) and sensor noise.

        Args:
            visitors: Visitors to draw; any order (they are drawn back to front).

        Returns:
            The H×W×3 uint8 RGB frame and one :class:`EyeTruth` per visitor, in the order given.
        """
        assert self.background is not None and self._rng is not None
        frame = self.background.astype(np.float32)
        truths: dict[int, EyeTruth] = {}
        order = sorted(range(len(visitors)), key=lambda i: -visitors[i].distance_m)
        for i in order:
            truths[i] = self._draw(frame, visitors[i])
        if self.noise_sigma > 0:
            noise = self._rng.standard_normal(frame.shape, dtype=np.float32)
            frame += noise * np.float32(self.noise_sigma)
        out = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        return out, [truths[i] for i in range(len(visitors))]

    def _draw(self, frame: np.ndarray, visitor: Visitor) -> EyeTruth:
        (ox, oy, cut), truth = self._place(visitor)
        g = self.geometry
        ppm = truth.eye_px / visitor.eye_distance_m  # pixels per metre at the visitor
        mid = truth.eye_mid
        # Body: a neck base 0.13 m below the eyes, shoulders 0.46 m wide 0.24 m below the eyes,
        # the torso down to the floor.
        top = mid.y + 0.13 * ppm
        sh = mid.y + 0.24 * ppm
        half_neck, half_sh = 0.07 * ppm, 0.23 * ppm
        _, v_floor, _ = g.project(visitor.x_m, 0.0, visitor.distance_m)
        bottom = min(float(g.height), v_floor)
        poly = [
            (mid.x - half_neck, top),
            (mid.x + half_neck, top),
            (mid.x + half_sh, sh),
            (mid.x + 0.9 * half_sh, bottom),
            (mid.x - 0.9 * half_sh, bottom),
            (mid.x - half_sh, sh),
        ]
        x0 = max(0, int(mid.x - half_sh) - 2)
        x1 = min(g.width, int(mid.x + half_sh) + 3)
        y0 = max(0, int(top) - 2)
        y1 = min(g.height, int(bottom) + 1)
        if x1 > x0 and y1 > y0:
            mask = Image.new("L", (x1 - x0, y1 - y0), 0)
            ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in poly], fill=255)
            m = np.asarray(mask, np.float32)[:, :, None] / 255.0
            shade = np.linspace(1.1, 0.8, y1 - y0, dtype=np.float32)[:, None, None]
            color = np.asarray(visitor.shirt, np.float32) * shade
            roi = frame[y0:y1, x0:x1]
            roi *= 1.0 - m
            roi += m * color
        # Head.
        ch, cw = cut.alpha.shape[:2]
        fx0, fy0 = max(0, ox), max(0, oy)
        fx1, fy1 = min(g.width, ox + cw), min(g.height, oy + ch)
        if fx1 > fx0 and fy1 > fy0:
            a = cut.alpha[fy0 - oy : fy1 - oy, fx0 - ox : fx1 - ox]
            rgb = cut.rgb[fy0 - oy : fy1 - oy, fx0 - ox : fx1 - ox]
            roi = frame[fy0:fy1, fx0:fx1]
            roi *= 1.0 - a
            roi += a * rgb
        return truth


def render_visitor_frame(
    photo: FacePhoto,
    visitors: Sequence[Visitor] = (),
    geometry: CameraGeometry | None = None,
    *,
    seed: int = 0,
    noise_sigma: float = 2.5,
) -> np.ndarray:
    """Render one camera frame of the room with ``visitors`` in it.

    For many frames use a :class:`Renderer` (it keeps the room and the scaled heads), and its
    :meth:`Renderer.eyes` for the true eye positions.

    Args:
        photo: The face photo (e.g. :func:`astronaut_photo`).
        visitors: The visitors to draw (may be empty: an empty room).
        geometry: The camera; default 1280×960, 66°, 1.75 m high, level.
        seed: Seed for the room and the noise.
        noise_sigma: Sensor noise standard deviation, 0-255 levels.

    Returns:
        H×W×3 uint8 RGB frame.
    """
    r = Renderer(photo, geometry or CameraGeometry(), seed=seed, noise_sigma=noise_sigma)
    return r.render(visitors)[0]


def walk(
    geometry: CameraGeometry,
    distance_m: float,
    *,
    fps: float = 30.0,
    speed_mps: float = 1.0,
    stand_s: float = 2.0,
    stand_x_m: float = 0.0,
    leave_s: float = 0.0,
    direction: Literal[1, -1] = 1,
    x_from_m: float | None = None,
    x_to_m: float | None = None,
    eye_height_m: float = 1.62,
    sway_m: float = 0.015,
    shirt: tuple[int, int, int] = (52, 64, 92),
) -> list[Visitor | None]:
    """A visitor crossing the room at ``distance_m``: walk in, stand and look, walk out.

    By default the walk starts and ends with the head just inside the picture (so every frame
    of the walk shows the whole head), stops at ``stand_x_m`` for ``stand_s`` seconds, and
    bobs the head up and down by ``sway_m`` with a 0.5 s step period.

    Args:
        geometry: The camera (for the width of the view at that distance).
        distance_m: Distance from the camera, metres (> 0.3).
        fps: Frame rate, frames per second.
        speed_mps: Walking speed, metres per second (> 0).
        stand_s: Time spent standing at ``stand_x_m``, seconds (>= 0).
        stand_x_m: Where the visitor stops, metres (+ = image right).
        leave_s: Empty-room time after the visitor has left, seconds (>= 0); those frames
            are ``None``.
        direction: 1 walks left to right in the image, -1 right to left.
        x_from_m: Start position, metres; default the image edge (head inside).
        x_to_m: End position, metres; default the opposite image edge.
        eye_height_m: Eye height above the floor, metres.
        sway_m: Vertical head bob while walking, metres.
        shirt: Body colour, RGB.

    Returns:
        One entry per frame: the visitor's pose, or None when nobody is there.
    """
    if distance_m <= 0.3 or speed_mps <= 0 or fps <= 0 or stand_s < 0 or leave_s < 0:
        raise ValueError("walk: distance > 0.3 m, speed > 0, fps > 0, stand/leave >= 0 needed")
    half = geometry.half_width_m(distance_m) - 2.0 * EYE_DISTANCE_M
    start = -half * direction if x_from_m is None else x_from_m
    end = half * direction if x_to_m is None else x_to_m
    stand_x = min(max(stand_x_m, min(start, end)), max(start, end))
    t_in = abs(stand_x - start) / speed_mps
    t_out = abs(end - stand_x) / speed_mps
    total = t_in + stand_s + t_out
    n = max(1, round(total * fps))
    poses: list[Visitor | None] = []
    for i in range(n):
        t = i / fps
        if t < t_in:
            x = start + (stand_x - start) * (t / t_in if t_in > 0 else 1.0)
            bob = sway_m * math.sin(2 * math.pi * t / 0.5)
        elif t < t_in + stand_s:
            x = stand_x
            bob = 0.003 * math.sin(2 * math.pi * t / 3.0)  # breathing
        else:
            f = (t - t_in - stand_s) / t_out if t_out > 0 else 1.0
            x = stand_x + (end - stand_x) * min(1.0, f)
            bob = sway_m * math.sin(2 * math.pi * t / 0.5)
        poses.append(
            Visitor(x_m=x, distance_m=distance_m, eye_height_m=eye_height_m + bob, shirt=shirt)
        )
    poses.extend([None] * round(leave_s * fps))
    return poses


def render_walk(
    renderer: Renderer, poses: Iterable[Visitor | None]
) -> Iterator[tuple[np.ndarray, list[EyeTruth]]]:
    """Render a walk frame by frame (lazily: a 1280×960 clip is 3.7 MB per frame).

    Args:
        renderer: The room and photo.
        poses: One pose (or None for an empty room) per frame, e.g. from :func:`walk`.

    Yields:
        ``(frame, truths)`` per pose.
    """
    for pose in poses:
        yield renderer.render([] if pose is None else [pose])


def write_clip(
    directory: str | Path,
    frames: Iterable[np.ndarray | tuple[np.ndarray, Sequence[EyeTruth]]],
    fps: float = 30.0,
    *,
    image_format: Literal["png", "jpg"] = "png",
    quality: int = 92,
) -> int:
    """Write a replay clip: ``frame_00000.png``... in name order, ``clip.toml`` and the truth.

    ``clip.toml`` holds ``fps`` and a ``[truth]`` table naming ``truth.jsonl`` (written only
    when frames come with truth), one JSON object per frame:
    ``{"frame": i, "t": seconds, "visitors": [EyeTruth.to_json(), ...]}``.

    Args:
        directory: Folder to write into (created; existing frames are overwritten).
        frames: RGB frames, or ``(frame, truths)`` pairs as :func:`render_walk` yields.
        fps: Frame rate written to clip.toml, frames per second (0, 1000].
        image_format: "png" (lossless) or "jpg" (about 10× smaller).
        quality: JPEG quality 1-95.

    Returns:
        The number of frames written.
    """
    if not 0 < fps <= 1000:
        raise ValueError(f"fps = {fps}: must be in (0, 1000]")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    truth_lines: list[str] = []
    has_truth = False
    n = 0
    for n, item in enumerate(frames, start=1):
        i = n - 1
        if isinstance(item, tuple):
            frame, truths = item
            has_truth = True
        else:
            frame, truths = item, []
        im = Image.fromarray(np.ascontiguousarray(frame))
        path = out / f"frame_{i:05d}.{image_format}"
        if image_format == "jpg":
            im.save(path, quality=quality)
        else:
            im.save(path, compress_level=3)
        truth_lines.append(
            json.dumps(
                {"frame": i, "t": round(i / fps, 6), "visitors": [t.to_json() for t in truths]}
            )
        )
    truth = None
    if has_truth:
        (out / TRUTH_FILE).write_text("\n".join(truth_lines) + "\n", encoding="utf-8")
        truth = ClipTruth(file=TRUTH_FILE, points="continuous pixels")
    ClipFile(fps=float(fps), frames=n, truth=truth).write(
        out, "A replay clip for `monalisa run --camera replay:DIR` (written by tests.support.sim)."
    )
    return n


def read_truth(directory: str | Path) -> list[list[EyeTruth]]:
    """Read a clip's per-frame truth written by :func:`write_clip`.

    Args:
        directory: The clip folder.

    Returns:
        One list of :class:`EyeTruth` per frame, in frame order.

    Raises:
        ValueError: The clip has no truth or it is malformed (naming the file and line).
    """
    d = Path(directory)
    try:
        table = ClipFile.read(d / CLIP_FILE).truth
    except CameraError as err:
        raise ValueError(str(err)) from None
    if table is None:
        raise ValueError(f"{d / CLIP_FILE}: no [truth] table")
    path = d / table.file
    frames: list[list[EyeTruth]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            frames.append([EyeTruth.from_json(v) for v in obj["visitors"]])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{lineno}: bad truth line: {err}") from None
    return frames
