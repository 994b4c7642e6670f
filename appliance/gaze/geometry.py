"""Where to look: from a face in a camera image to a gaze angle, and from angles to frames.

Sign conventions (used throughout appliance.gaze, and tested):

* **Camera coordinates** (pinhole, millimetres): ``xc`` to the right of the *unmirrored*
  image, ``yc`` downwards, ``zc`` out of the lens into the room. A pixel column ``u`` of an
  image ``w`` pixels wide sees ``xc / zc = (u - w / 2) / f_px`` with the focal length
  ``f_px = w / 2 / tan(hfov / 2)``.
* **Portrait coordinates** (millimetres), origin between the portrait's eyes: ``X`` toward
  the *visitor's right* (a visitor facing the wall), ``Y`` up, ``Z`` into the room. The camera
  faces the room, so the visitor's right is the image *left*: ``X = offset_x - xc``,
  ``Y = offset_y - yc``, ``Z = zc``, where ``(offset_x, offset_y)`` is the camera's position
  relative to the portrait's eyes (``[camera] offset_x_mm``, + = visitor's right;
  ``offset_y_mm``, + = above).
* **Gaze angle** (degrees): ``atan2(X, Z)``, 0 = straight ahead, negative = toward the
  visitor's left, positive = toward the visitor's right. Frame angles use the same sign, so
  frame 0 (most negative) looks toward the visitor's left. A visitor in the right half of an
  unmirrored image is therefore looked at with a low index.
* A mirrored camera (``[camera] mirror = true``) is unmirrored first: ``u -> w - u``.

* A camera tilted down by ``t`` (:attr:`appliance.optics.CameraView.tilt_deg`, from
  ``[finder] camera_tilt_deg``; negative = up) is levelled first: the point ``(xc, yc, zc)``
  is ``yc·cos t + zc·sin t`` below the lens and ``zc·cos t - yc·sin t`` out from it, so
  ``Y = offset_y - (yc·cos t + zc·sin t)`` and ``Z = zc·cos t - yc·sin t`` (the band's
  geometry, :func:`appliance.optics.band_from_geometry`, inverted).

The distance comes from the eye spacing: ``zc = f_px * ipd / eye_px``. The horizontal angle
chooses the gaze; the vertical angle ``atan2(Y, Z)`` (+ = the visitor's eyes above the
portrait's) chooses the row of a set with rows, so ``offset_y`` and the tilt matter there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.optics import focal_px
from appliance.types import Box, Face, Point

MIN_DISTANCE_MM = 200.0
"""Nearest distance the eye spacing may give, mm (a face pressed to the lens)."""
MAX_DISTANCE_MM = 20000.0
"""Farthest distance the eye spacing may give, mm (guards against a tiny or zero spacing)."""
BOX_PER_EYE = 2.5
"""A BlazeFace box is about this many eye spacings wide (fallback for missing eye points)."""


@dataclass(frozen=True, slots=True)
class Camera:
    """The camera as the gaze geometry needs it.

    Attributes:
        hfov_deg: Horizontal field of view, degrees (0, 180).
        mirror: True if images are mirrored left-right.
        offset_x_mm: Camera position relative to the portrait's eyes, mm; + = visitor's right.
        offset_y_mm: Camera position relative to the portrait's eyes, mm; + = above.
        ipd_mm: Interpupillary distance assumed for every visitor, mm.
        tilt_deg: Downward tilt of the camera, degrees (-45 to 80; 0 = level, negative = up):
            the view's (:attr:`appliance.optics.CameraView.tilt_deg`).
    """

    hfov_deg: float = 66.0
    mirror: bool = False
    offset_x_mm: float = 0.0
    offset_y_mm: float = 0.0
    ipd_mm: float = 63.0
    tilt_deg: float = 0.0

    def focal_px(self, width: float) -> float:
        """Focal length in pixels for an image ``width`` pixels wide."""
        return focal_px(width, self.hfov_deg)


@dataclass(frozen=True, slots=True)
class Position:
    """A visitor's eyes in portrait coordinates (see the module docstring), millimetres.

    Attributes:
        x_mm: Toward the visitor's right of the portrait's eyes.
        y_mm: Above the portrait's eyes.
        z_mm: Out from the wall into the room (> 0).
    """

    x_mm: float
    y_mm: float
    z_mm: float

    @property
    def angle_deg(self) -> float:
        """Horizontal gaze angle ``atan2(X, Z)`` in degrees; negative = visitor's left."""
        return math.degrees(math.atan2(self.x_mm, self.z_mm))

    @property
    def pitch_deg(self) -> float:
        """Vertical gaze angle ``atan2(Y, Z)`` in degrees; + = the visitor's eyes are above."""
        return math.degrees(math.atan2(self.y_mm, self.z_mm))


def eye_px(face: Face) -> float:
    """The face's eye spacing in pixels, falling back on its box width if the eyes coincide."""
    d = face.eye_distance
    if d >= 1.0:
        return d
    return max(face.box.width / BOX_PER_EYE, 1e-3)


def locate(
    face: Face, image_size: tuple[int, int], camera: Camera, eye_spacing_px: float | None = None
) -> Position:
    """Where a face's eye midpoint is, in portrait coordinates.

    Args:
        face: A detected face, in the pixels of the image it was found in.
        image_size: ``(width, height)`` of that image in pixels (both > 0).
        camera: Field of view, mirroring, offset and the assumed eye spacing.
        eye_spacing_px: The eye spacing to take the distance from, pixels (e.g. smoothed
            over frames); default: this face's.

    Returns:
        The position in millimetres; the distance is clamped to
        [:data:`MIN_DISTANCE_MM`, :data:`MAX_DISTANCE_MM`].
    """
    w, h = float(image_size[0]), float(image_size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got {image_size}")
    f = camera.focal_px(w)
    mid = face.eye_mid
    u = w - mid.x if camera.mirror else mid.x
    e = eye_px(face) if eye_spacing_px is None else max(eye_spacing_px, 1e-3)
    z = min(max(f * camera.ipd_mm / e, MIN_DISTANCE_MM), MAX_DISTANCE_MM)
    xc = (u - w / 2.0) * z / f
    yc = (mid.y - h / 2.0) * z / f
    tilt = math.radians(camera.tilt_deg)
    below = yc * math.cos(tilt) + z * math.sin(tilt)
    out = max(z * math.cos(tilt) - yc * math.sin(tilt), 1.0)
    return Position(camera.offset_x_mm - xc, camera.offset_y_mm - below, out)


def linear_angle(face: Face, image_width: int, camera: Camera, angles: Sequence[float]) -> float:
    """The original web version's mapping, as an angle: eye midpoint across the width.

    The image's right edge (unmirrored) maps to frame 0 and the left edge to the last frame,
    linearly in frame index; the fractional index is turned into an angle by interpolating
    the frame angles, so the same filter and hysteresis apply.

    Args:
        face: A detected face.
        image_width: Width of its image in pixels (> 0).
        camera: Only ``mirror`` is used.
        angles: Frame angles in degrees, increasing.
    """
    if image_width <= 0:
        raise ValueError(f"image width must be positive, got {image_width}")
    u = face.eye_mid.x
    if camera.mirror:
        u = image_width - u
    frac = min(max(u / image_width, 0.0), 1.0)
    return angle_at(angles, (1.0 - frac) * (len(angles) - 1))


def angle_at(angles: Sequence[float], index: float) -> float:
    """Interpolate the frame angles at a fractional index (clamped to the range)."""
    n = len(angles)
    if index <= 0:
        return float(angles[0])
    if index >= n - 1:
        return float(angles[-1])
    i = int(index)
    f = index - i
    return float(angles[i] + (angles[i + 1] - angles[i]) * f)


def even_angles(count: int, range_deg: float) -> tuple[float, ...]:
    """``count`` angles spread evenly over ``-range_deg .. +range_deg`` degrees (count >= 2)."""
    if count < 2:
        raise ValueError(f"a frame set needs at least 2 frames, got {count}")
    step = 2.0 * range_deg / (count - 1)
    return tuple(-range_deg + i * step for i in range(count))


def nearest_index(angles: Sequence[float], angle: float) -> int:
    """Index of the frame whose angle is nearest ``angle`` (ties go to the lower index)."""
    best, best_d = 0, math.inf
    for i, a in enumerate(angles):
        d = abs(a - angle)
        if d < best_d:
            best, best_d = i, d
    return best


def hysteresis_index(
    angles: Sequence[float], current: int, angle: float, margin: float, unit: str
) -> int:
    """The frame to show for ``angle``, changing from ``current`` only past a margin.

    A neighbouring frame ``j`` is taken only once ``angle`` is past the midpoint between it
    and the frame on the current side by the margin. The margin is ``margin`` times the
    spacing of those two frames (``unit = "fraction"``) or ``margin`` degrees (``"deg"``),
    at most 0.45 of the spacing either way, so every frame stays reachable. With a margin of
    0 this is :func:`nearest_index`.

    Args:
        angles: Frame angles in degrees, strictly increasing.
        current: The frame shown now, ``0 <= current < len(angles)``.
        angle: The smoothed gaze angle in degrees.
        margin: The margin, in ``unit``.
        unit: ``"fraction"`` or ``"deg"``.

    Returns:
        The new index, within ``0 .. len(angles) - 1``.
    """
    n = len(angles)
    i = min(max(current, 0), n - 1)

    def past(lo: int) -> float:
        gap = angles[lo + 1] - angles[lo]
        m = margin * gap if unit == "fraction" else margin
        return min(m, 0.45 * gap)

    while i + 1 < n and angle >= (angles[i] + angles[i + 1]) / 2.0 + past(i):
        i += 1
    while i - 1 >= 0 and angle <= (angles[i - 1] + angles[i]) / 2.0 - past(i - 1):
        i -= 1
    return i


def face_at(
    x_mm: float,
    z_mm: float,
    image_size: tuple[int, int],
    camera: Camera,
    *,
    y_mm: float = 0.0,
    ipd_mm: float | None = None,
    score: float = 0.9,
) -> Face:
    """A frontal face whose eyes are at a portrait-coordinates position, through the pinhole.

    The inverse of :func:`locate`, for simulations, tests and benchmarks: the visitor's eyes
    are ``x_mm`` to the visitor's right of the portrait's eyes, ``y_mm`` above them and
    ``z_mm`` out into the room. Keypoints and box have BlazeFace's layout: the subject's
    right eye appears on the image left unless the camera mirrors.

    Args:
        x_mm: Lateral position, mm, + = visitor's right.
        z_mm: Distance from the wall, mm (> 0).
        image_size: ``(width, height)`` of the camera image, pixels.
        camera: The camera (field of view, mirroring, offset).
        y_mm: Height relative to the portrait's eyes, mm, + = above.
        ipd_mm: The visitor's eye spacing, mm (default: ``camera.ipd_mm``).
        score: Detection score to report.
    """
    w, h = float(image_size[0]), float(image_size[1])
    f = camera.focal_px(w)
    ipd = camera.ipd_mm if ipd_mm is None else ipd_mm
    xc = camera.offset_x_mm - x_mm
    below = camera.offset_y_mm - y_mm
    tilt = math.radians(camera.tilt_deg)
    zc = z_mm * math.cos(tilt) + below * math.sin(tilt)  # along the lens' axis
    yc = below * math.cos(tilt) - z_mm * math.sin(tilt)
    u = w / 2.0 + f * xc / zc
    v = h / 2.0 + f * yc / zc
    e = f * ipd / zc  # eye spacing, px
    side = -1.0  # the subject's right eye is on the image left ...
    if camera.mirror:
        u, side = w - u, 1.0  # ... unless the image is mirrored
    right_eye = Point(u + side * e / 2.0, v)
    left_eye = Point(u - side * e / 2.0, v)
    nose = Point(u, v + 0.6 * e)
    mouth = Point(u, v + 1.1 * e)
    right_ear = Point(u + side * 1.2 * e, v + 0.3 * e)
    left_ear = Point(u - side * 1.2 * e, v + 0.3 * e)
    half = BOX_PER_EYE * e / 2.0
    box = Box(u - half, v - 0.9 * e, u + half, v - 0.9 * e + 2.0 * half)
    return Face(box, score, (right_eye, left_eye, nose, mouth, right_ear, left_ear))
