"""A learned eye model for the frame builder: MediaPipe's face mesh and iris models on LiteRT.

The builder runs offline, so it can afford what the appliance does not: the 468-point face mesh
(``models/face_mesh.tflite``) and, per eye, the iris model (``models/iris_landmark.tflite``: 71
eye-contour points and 5 iris points). The pipeline follows MediaPipe 0.10.21's ``face_mesh``
and ``iris_landmark`` graphs:

1. **Face ROI** from a BlazeFace detection: the box centre, rotated so that the line from the
   subject's right eye keypoint to the left one is horizontal, a square of 1.5 × the box's
   longer side. With ``--eyes`` (no detection) the same square is made from the two eye points
   (size and centre offset in proportion to the eye distance, as BlazeFace's box would be).
2. **Face mesh**: the ROI resampled (bilinear, edges replicated) into 192×192 RGB scaled to
   [0, 1]; 468 points plus a face-presence logit (face if its sigmoid ≥ 0.5).
3. **Second mesh** in the square the first mesh's own points make (its bounding box, turned by
   points 33 → 263), as MediaPipe's face tracking does between video frames.
4. **Eye ROI** per eye from the two mesh corner points (33/133 and 362/263): rotated to the
   corner line, a square of 2.3 × the corner distance, resampled into 64×64; the subject's left
   eye is mirrored (the model knows right eyes only) and its points mirrored back.
5. **Iris model**: 71 eye points (the first 16 the lid contour: 9 lower including both corners,
   7 upper) and 5 iris points (centre, then four edge points).

Every step maps points back to the image with the ROI's rotation and size. MediaPipe treats
pixel centres as integer positions when it samples but reports corner-based coordinates
(the half-pixel slip the detector documents); :class:`FaceMesh` reports pixel-exact
coordinates (pixel ``(c, r)`` covers ``[c, c+1) × [r, r+1)``). Its ROIs are in MediaPipe's
sampling coordinates (:meth:`FaceMesh.index_roi` converts), so that each model step can be
compared with MediaPipe's by adding the slip back (the conformance tests do).

Only :mod:`appliance.detector` imports the TFLite runtime; this module asks it for
interpreters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from appliance.detector import Detector, DetectorError, find_model, load_interpreter
from appliance.framebuild import FrameBuildError
from appliance.types import Face, Point

MESH_SIZE = 192
"""Face mesh input width and height, pixels."""

IRIS_SIZE = 64
"""Iris model input width and height, pixels."""

FACE_SCALE = 1.5
"""Face ROI side / the detection box's longer side (MediaPipe's ``face_mesh``)."""

EYE_SCALE = 2.3
"""Eye ROI side / the distance between the eye's two corners (MediaPipe's ``iris_landmark``)."""

MIN_PRESENCE = 0.5
"""Least face-presence probability for the mesh to count as a face."""

# Two eye points give no box: BlazeFace's box around a frontal face, in eye distances, as the
# detector finds it on the astronaut (side 2.14 eye distances, centre 0.53 below the eyes).
EYES_TO_BOX = 2.14
EYES_TO_CENTRE = 0.53

# Mesh indices of the eye corners: (image-left eye outer, inner), (image-right inner, outer).
CORNERS_IMAGE_LEFT = (33, 133)
CORNERS_IMAGE_RIGHT = (362, 263)

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated square of the image, in MediaPipe's (sampling) pixel coordinates.

    Attributes:
        cx: Centre x, pixels.
        cy: Centre y, pixels.
        size: Side, pixels.
        angle: Rotation, radians (positive turns the square's x axis toward +y).
    """

    cx: float
    cy: float
    size: float
    angle: float

    def sample_points(self, n: int, flip: bool = False) -> tuple[F64, F64]:
        """Source positions (pixel indices) of the ``n×n`` model input's pixels.

        ``flip`` mirrors the input left to right: column ``i`` holds column ``n - 1 - i``, the
        exact mirror image (its iris points agree best with MediaPipe's refined face mesh).
        """
        t = (np.arange(n, dtype=np.float64) / n - 0.5) * self.size
        u, v = np.meshgrid(t[::-1] if flip else t, t)
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.cx + c * u - s * v, self.cy + s * u + c * v

    def project(self, pts: F64, n: int) -> F64:
        """Map ``k×2`` points in model-input pixels to exact image pixels.

        MediaPipe reads a point back at ``(x / n - 1/2) × size`` from the centre; but input
        pixel ``i`` holds the ROI at ``i / n``, not ``(i + 1/2) / n``, and the ROI is in pixel
        indices: this mapping goes half an input pixel back, then half a source pixel forward
        (removing MediaPipe's slip).

        Args:
            pts: Points in the ``n×n`` model input (continuous, corner-based), already
                mirrored back if the input was.
            n: Model input side, pixels.

        Returns:
            ``k×2`` image points, pixel ``(c, r)`` covering ``[c, c+1) × [r, r+1)``.
        """
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = pts[:, 0] / n - 0.5 - 0.5 / n
        v = pts[:, 1] / n - 0.5 - 0.5 / n
        x = self.cx + (c * u - s * v) * self.size
        y = self.cy + (s * u + c * v) * self.size
        return np.stack([x, y], axis=1) + 0.5


def roi_from_points(a: Point, b: Point, cx: float, cy: float, side: float) -> Roi:
    """A square ROI turned so that the line ``a → b`` is horizontal.

    Args:
        a: Start of the rotation vector (the subject's right eye, image-left).
        b: End of the rotation vector.
        cx: Centre x, pixels.
        cy: Centre y, pixels.
        side: Side, pixels.
    """
    angle = -math.atan2(-(b.y - a.y), b.x - a.x)
    angle = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    return Roi(cx, cy, side, angle)


def face_roi(face: Face) -> Roi:
    """MediaPipe's face-mesh ROI for a BlazeFace detection."""
    box = face.box
    side = FACE_SCALE * max(box.x1 - box.x0, box.y1 - box.y0)
    cx, cy = 0.5 * (box.x0 + box.x1), 0.5 * (box.y0 + box.y1)
    return roi_from_points(face.right_eye, face.left_eye, cx, cy, side)


def eyes_roi(a: Point, b: Point) -> Roi:
    """A face ROI made from two eye points alone (image-left eye first), as for ``--eyes``."""
    ipd = math.hypot(b.x - a.x, b.y - a.y)
    # The box centre lies below the eyes' midpoint, perpendicular to the eye line.
    nx, ny = -(b.y - a.y) / ipd, (b.x - a.x) / ipd
    cx = 0.5 * (a.x + b.x) + EYES_TO_CENTRE * ipd * nx
    cy = 0.5 * (a.y + b.y) + EYES_TO_CENTRE * ipd * ny
    return roi_from_points(a, b, cx, cy, FACE_SCALE * EYES_TO_BOX * ipd)


def mesh_roi(mesh: F64) -> Roi:
    """MediaPipe's face ROI from a previous mesh: its bounding box, turned by points 33 → 263."""
    x0, y0 = mesh.min(axis=0)
    x1, y1 = mesh.max(axis=0)
    side = FACE_SCALE * max(x1 - x0, y1 - y0)
    return roi_from_points(_pt(mesh[33]), _pt(mesh[263]), 0.5 * (x0 + x1), 0.5 * (y0 + y1), side)


def eye_roi_from_corners(p: Point, q: Point) -> Roi:
    """MediaPipe's iris-model ROI for an eye with corners ``p`` and ``q`` (mesh order)."""
    w = max(abs(q.x - p.x), abs(q.y - p.y))
    return roi_from_points(p, q, 0.5 * (p.x + q.x), 0.5 * (p.y + q.y), EYE_SCALE * w)


def sample(image: npt.NDArray[np.uint8], xs: F64, ys: F64) -> F64:
    """Bilinear samples of ``image`` at pixel-index positions, edges replicated (0..255)."""
    h, w = image.shape[:2]
    x = np.clip(xs, 0.0, w - 1.0)
    y = np.clip(ys, 0.0, h - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]

    def at(yy: npt.NDArray[np.int64], xx: npt.NDArray[np.int64]) -> F64:
        # Only the sampled pixels become float: never the whole painting (a scan is large).
        return image[yy, xx].astype(np.float64)

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    out: F64 = top * (1 - fy) + bottom * fy
    return out


@dataclass(frozen=True, slots=True)
class EyeMarks:
    """One eye as the models see it, in image pixels.

    Attributes:
        iris: Iris centre.
        radius: Iris radius (mean distance of the four iris edge points from the centre).
        lower: The lower lid, corner to corner (9 points, image-left corner first).
        upper: The upper lid between the corners (7 points, image-left first).
    """

    iris: Point
    radius: float
    lower: tuple[Point, ...]
    upper: tuple[Point, ...]

    @property
    def corners(self) -> tuple[Point, Point]:
        """The two eye corners, image-left first."""
        return self.lower[0], self.lower[-1]

    @property
    def width(self) -> float:
        """Corner-to-corner distance, pixels."""
        a, b = self.corners
        return math.hypot(b.x - a.x, b.y - a.y)

    def gaze(self) -> float:
        """Iris position along the corner line: -1 at the image-left corner, +1 at the other."""
        a, b = self.corners
        dx, dy = b.x - a.x, b.y - a.y
        t = ((self.iris.x - a.x) * dx + (self.iris.y - a.y) * dy) / max(dx * dx + dy * dy, 1e-9)
        return 2.0 * t - 1.0


@dataclass(frozen=True, slots=True)
class FaceMarks:
    """What the models found in one image.

    Attributes:
        mesh: ``468×2`` face mesh points, image pixels.
        presence: Face-presence probability, 0..1.
        eyes: The two eyes, image-left first.
    """

    mesh: F64
    presence: float
    eyes: tuple[EyeMarks, EyeMarks]


def _pt(row: F64) -> Point:
    return Point(float(row[0]), float(row[1]))


def _sorted_left(points: list[Point]) -> tuple[Point, ...]:
    return tuple(sorted(points, key=lambda p: p.x))


class FaceMesh:
    """The face mesh and iris models, loaded once (not thread-safe); points in exact pixels.

    Raises:
        FrameBuildError: A model file is missing or unreadable.
    """

    def __init__(self) -> None:
        try:
            self._mesh = load_interpreter(find_model("mesh"))
            self._iris = load_interpreter(find_model("iris"))
        except DetectorError as err:
            raise FrameBuildError(f"face mesh: {err}") from err
        self._detectors: dict[str, Detector] = {}
        outs = {d["name"]: d for d in self._iris.get_output_details()}
        self._iris_contour = int(outs["output_eyes_contours_and_brows"]["index"])
        self._iris_points = int(outs["output_iris"]["index"])
        mesh_outs = {
            int(np.prod(d["shape"])): int(d["index"]) for d in self._mesh.get_output_details()
        }
        self._mesh_points, self._mesh_flag = mesh_outs[1404], mesh_outs[1]

    def detector(self, model: str) -> Detector:
        """The BlazeFace detector of ``"short"`` or ``"full"`` range (score >= 0.5), loaded once."""
        if model not in self._detectors:
            self._detectors[model] = Detector(model, score_threshold=0.5)
        return self._detectors[model]

    def detect(self, image: npt.NDArray[np.uint8]) -> Face | None:
        """The most prominent BlazeFace face (short range as MediaPipe's face mesh, then full)."""
        for model in ("short", "full"):
            faces = self.detector(model).detect(image)
            if faces:
                return max(faces, key=lambda f: f.box.area * f.score)
        return None

    def _run(
        self, interpreter: object, image: npt.NDArray[np.uint8], roi: Roi, n: int, flip: bool
    ) -> None:
        xs, ys = roi.sample_points(n, flip)
        pixels = np.rint(sample(image, xs, ys)) / 255.0
        inp = interpreter.get_input_details()[0]  # type: ignore[attr-defined]
        interpreter.set_tensor(inp["index"], pixels[None].astype(np.float32))  # type: ignore[attr-defined]
        interpreter.invoke()  # type: ignore[attr-defined]

    def mesh(self, image: npt.NDArray[np.uint8], roi: Roi) -> tuple[F64, float]:
        """The 468 mesh points (image pixels) and the face-presence probability in ``roi``."""
        self._run(self._mesh, image, roi, MESH_SIZE, False)
        raw = self._mesh.get_tensor(self._mesh_points).reshape(468, 3)[:, :2].astype(np.float64)
        logit = float(self._mesh.get_tensor(self._mesh_flag).ravel()[0])
        presence = 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, logit))))
        return roi.project(raw, MESH_SIZE), presence

    def eye(self, image: npt.NDArray[np.uint8], p: Point, q: Point, flip: bool) -> EyeMarks:
        """Iris and lid contour of the eye with mesh corners ``p`` → ``q``.

        Args:
            image: ``H×W×3`` uint8 RGB.
            p: First corner in MediaPipe's order (33 or 362), pixels.
            q: Second corner (133 or 263), pixels.
            flip: Mirror the crop (the subject's left eye; the model knows right eyes).
        """
        return self.iris(image, self.index_roi(eye_roi_from_corners(p, q)), flip)

    def iris(self, image: npt.NDArray[np.uint8], roi: Roi, flip: bool) -> EyeMarks:
        """Iris and lid contour of the eye in ``roi`` (MediaPipe's sampling coordinates).

        Args:
            image: ``H×W×3`` uint8 RGB.
            roi: The eye's square, as :func:`eye_roi_from_corners` makes it, in pixel indices.
            flip: Mirror the crop (the subject's left eye; the model knows right eyes).
        """
        self._run(self._iris, image, roi, IRIS_SIZE, flip)
        contour = self._iris.get_tensor(self._iris_contour).reshape(71, 3)[:, :2].astype(np.float64)
        iris = self._iris.get_tensor(self._iris_points).reshape(5, 3)[:, :2].astype(np.float64)
        if flip:
            contour[:, 0] = IRIS_SIZE - contour[:, 0]
            iris[:, 0] = IRIS_SIZE - iris[:, 0]
        lids = roi.project(contour[:16], IRIS_SIZE)
        ring = roi.project(iris, IRIS_SIZE)
        centre = ring[0]
        radii = np.hypot(*(ring[1:] - centre).T)
        radius = float(np.mean(radii))
        lower = [_pt(r) for r in lids[:9]]
        upper = [_pt(r) for r in lids[9:16]]
        return EyeMarks(_pt(centre), radius, _sorted_left(lower), _sorted_left(upper))

    def find(self, image: npt.NDArray[np.uint8], roi: Roi) -> FaceMarks | None:
        """Mesh and both eyes in a face ROI; None when the mesh sees no face there.

        The mesh runs twice: in ``roi``, then in the ROI its own points make (MediaPipe's
        face tracking between video frames: the square fits the face better than a detector
        box or two eye points do); the second is kept unless it lost the face.
        """
        mesh, presence = self.mesh(image, roi)
        if presence < MIN_PRESENCE:
            return None
        again, second = self.mesh(image, self.index_roi(mesh_roi(mesh)))
        if second >= MIN_PRESENCE:
            mesh, presence = again, second
        a = self.eye(
            image, _pt(mesh[CORNERS_IMAGE_LEFT[0]]), _pt(mesh[CORNERS_IMAGE_LEFT[1]]), False
        )
        b = self.eye(
            image, _pt(mesh[CORNERS_IMAGE_RIGHT[0]]), _pt(mesh[CORNERS_IMAGE_RIGHT[1]]), True
        )
        eyes = (a, b) if a.iris.x <= b.iris.x else (b, a)
        return FaceMarks(mesh, presence, eyes)

    def find_face(self, image: npt.NDArray[np.uint8]) -> FaceMarks | None:
        """Detect the most prominent face, then mesh it; None if there is none."""
        face = self.detect(image)
        if face is None:
            return None
        return self.find(image, self.index_roi(face_roi(face)))

    def index_roi(self, roi: Roi) -> Roi:
        """``roi`` (made from exact points) in MediaPipe's pixel-index coordinates."""
        return Roi(roi.cx - 0.5, roi.cy - 0.5, roi.size, roi.angle)
