"""Model a portrait's eyes for the builder: the learned face mesh first, the hand-made finder after.

The face mesh (:mod:`~appliance.framebuild.facemesh`) gives each eye's iris centre and radius
and its lid contour (16 points); they become an :class:`~appliance.framebuild.eyes.Eye`: the
iris as found, the almond's corners the contour's two ends and its upper and lower lid heights
least-squares fitted to the contour's upper and lower points. That works on paintings, whose
sclera hardly stands out (sfumato, varnish), and on soft animated heads.

Where the mesh sees no face (presence below 0.5: a profile, a face too small or too abstract)
the hand-made finder of :mod:`~appliance.framebuild.eyes` (a dark disc between brighter sclera)
is tried at the same eye points, so photos that built before still build.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.framebuild import FrameBuildError, NoFaceError
from appliance.framebuild.eyes import Eye, Opening, eye_roi, model_eyes
from appliance.framebuild.facemesh import EyeMarks, FaceMarks, FaceMesh, eyes_roi, face_roi
from appliance.types import Face, Point


@functools.lru_cache(maxsize=1)
def face_mesh() -> FaceMesh:
    """The builder's one :class:`FaceMesh` (pixel-exact coordinates), loaded on first use."""
    return FaceMesh()


def _lid_height(points: Sequence[Point], a: Point, b: Point, sign: float) -> float:
    """Least-squares ``h`` of a lid ``h (1 - u²)`` away from the chord ``a → b`` (>= 0)."""
    num = den = 0.0
    for p in points:
        u = (2.0 * p.x - a.x - b.x) / max(b.x - a.x, 1e-6)
        t = (p.x - a.x) / max(b.x - a.x, 1e-6)
        bulge = max(0.0, 1.0 - u * u)
        off = sign * (a.y + t * (b.y - a.y) - p.y)
        num += off * bulge
        den += bulge * bulge
    return max(0.0, num / den) if den > 0 else 0.0


GRID = 0.01
"""The builder rounds the models' eye geometry to this many pixels: a build does not depend on
the last float bits a CPU's TFLite kernels produce (``make frames`` stays byte-identical)."""


def _snap(v: float) -> float:
    return round(v / GRID) * GRID


def opening_from(marks: EyeMarks) -> Opening:
    """The almond through the model's lid contour (corners exact, lids fitted)."""
    a, b = marks.corners
    up = _lid_height(marks.upper, a, b, 1.0)
    down = _lid_height(marks.lower[1:-1], a, b, -1.0)
    # The iris must lie inside: a closed-looking lid is opened to the iris centre at least.
    return Opening(a.x, a.y, b.x, b.y, max(up, 0.2 * marks.radius), max(down, 0.2 * marks.radius))


def eye_from(marks: EyeMarks, ipd: float, shape: tuple[int, ...]) -> Eye:
    """An :class:`Eye` for the renderer from one eye's landmarks (on a 0.01 px grid)."""
    o = opening_from(marks)
    iris = Point(_snap(marks.iris.x), _snap(marks.iris.y))
    return Eye(
        roi=eye_roi(iris, ipd, shape),
        iris=iris,
        radius=_snap(marks.radius),
        opening=Opening(*(_snap(v) for v in (o.xl, o.yl, o.xr, o.yr, o.up, o.down))),
    )


def eyes_from(marks: FaceMarks, shape: tuple[int, ...]) -> tuple[Eye, Eye]:
    """Both eyes (image-left first) from the face's landmarks."""
    a, b = marks.eyes
    ipd = _snap(math.hypot(b.iris.x - a.iris.x, b.iris.y - a.iris.y))
    if ipd < 4:
        raise FrameBuildError("the face mesh put both irises on the same spot")
    return eye_from(a, ipd, shape), eye_from(b, ipd, shape)


def mesh_at(image: np.ndarray, points: tuple[Point, Point], face: Face | None) -> FaceMarks | None:
    """The face mesh in the ROI of a BlazeFace detection, else of two eye points.

    Returns:
        The landmarks, or None where the mesh sees no face.
    """
    fm = face_mesh()
    roi = face_roi(face) if face is not None else eyes_roi(*points)
    return fm.find(image, fm.index_roi(roi))


def find_eyes(
    image: np.ndarray, points: tuple[Point, Point], source: Path | str, face: Face | None = None
) -> tuple[tuple[Eye, Eye], str]:
    """Model both eyes near two coarse eye points: the face mesh, else the hand-made finder.

    Args:
        image: ``H×W×3`` uint8 RGB painting.
        points: Coarse eye points (detector keypoints or ``--eyes``), image-left first.
        source: The painting's file name, for messages.
        face: The detection the points came from (its box places the mesh), or None.

    Returns:
        The two eyes (image-left first) and ``"face mesh"`` or ``"iris finder"``: which found
        them.

    Raises:
        FrameBuildError: Neither found the eyes (one line naming ``source`` and both reasons).
    """
    marks = mesh_at(image, points, face)
    if marks is not None:
        return eyes_from(marks, image.shape), "face mesh"
    try:
        return model_eyes(image, points), "iris finder"
    except NoFaceError:
        raise
    except FrameBuildError as err:
        raise FrameBuildError(
            f"{source}: the face mesh sees no face at the eyes ({points[0].x:.0f}, "
            f"{points[0].y:.0f}) and ({points[1].x:.0f}, {points[1].y:.0f}), and {err}"
        ) from err
