"""Small frozen value types shared by every module (bottom of the import graph).

All coordinates are in pixels of the image they were measured in, with the origin at the
top-left corner, x to the right and y downwards, as floats (sub-pixel precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class FaceKeyPoint(IntEnum):
    """BlazeFace's six keypoints, in the model's output order.

    Left and right are the *subject's own*: the subject's right eye appears on the left of an
    unmirrored photo of them.
    """

    RIGHT_EYE = 0
    LEFT_EYE = 1
    NOSE_TIP = 2
    MOUTH_CENTER = 3
    RIGHT_EAR_TRAGION = 4
    LEFT_EAR_TRAGION = 5


@dataclass(frozen=True, slots=True)
class Point:
    """A point in image pixels.

    Attributes:
        x: Horizontal position in pixels, 0 at the left edge.
        y: Vertical position in pixels, 0 at the top edge.
    """

    x: float
    y: float

    def as_list(self, ndigits: int = 2) -> list[float]:
        """Return ``[x, y]`` rounded to ``ndigits`` decimals (for JSON output)."""
        return [round(self.x, ndigits), round(self.y, ndigits)]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in image pixels, ``x0 <= x1`` and ``y0 <= y1``.

    Attributes:
        x0: Left edge in pixels.
        y0: Top edge in pixels.
        x1: Right edge in pixels (exclusive for integer crops).
        y1: Bottom edge in pixels.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        """Width in pixels (never negative)."""
        return max(0.0, self.x1 - self.x0)

    @property
    def height(self) -> float:
        """Height in pixels (never negative)."""
        return max(0.0, self.y1 - self.y0)

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return self.width * self.height

    @property
    def center(self) -> Point:
        """The centre of the box."""
        return Point((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other``, in [0, 1]; 0 when either box is empty."""
        ix = min(self.x1, other.x1) - max(self.x0, other.x0)
        iy = min(self.y1, other.y1) - max(self.y0, other.y0)
        if ix <= 0 or iy <= 0:
            return 0.0
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self, ndigits: int = 2) -> list[float]:
        """Return ``[x0, y0, x1, y1]`` rounded to ``ndigits`` decimals (for JSON output)."""
        return [round(v, ndigits) for v in (self.x0, self.y0, self.x1, self.y1)]


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face, in the pixels of the image it was found in.

    Attributes:
        box: The face box.
        score: Detection confidence in [0, 1].
        keypoints: Six keypoints in :class:`FaceKeyPoint` order.
    """

    box: Box
    score: float
    keypoints: tuple[Point, Point, Point, Point, Point, Point]

    def keypoint(self, which: FaceKeyPoint) -> Point:
        """Return one named keypoint."""
        return self.keypoints[int(which)]

    @property
    def right_eye(self) -> Point:
        """The subject's right eye (left in an unmirrored image)."""
        return self.keypoints[FaceKeyPoint.RIGHT_EYE]

    @property
    def left_eye(self) -> Point:
        """The subject's left eye (right in an unmirrored image)."""
        return self.keypoints[FaceKeyPoint.LEFT_EYE]

    @property
    def eye_mid(self) -> Point:
        """The midpoint between the two eyes, in pixels."""
        r, left = self.right_eye, self.left_eye
        return Point((r.x + left.x) / 2.0, (r.y + left.y) / 2.0)

    @property
    def eye_distance(self) -> float:
        """Distance between the two eye keypoints, in pixels (>= 0)."""
        r, left = self.right_eye, self.left_eye
        return float(((r.x - left.x) ** 2 + (r.y - left.y) ** 2) ** 0.5)

    def translated(self, dx: float, dy: float, scale: float = 1.0) -> Face:
        """Return this face mapped by ``p -> p * scale + (dx, dy)`` (e.g. crop to frame)."""
        b = self.box
        return Face(
            box=Box(b.x0 * scale + dx, b.y0 * scale + dy, b.x1 * scale + dx, b.y1 * scale + dy),
            score=self.score,
            keypoints=tuple(  # type: ignore[arg-type]
                Point(p.x * scale + dx, p.y * scale + dy) for p in self.keypoints
            ),
        )


@dataclass(frozen=True, slots=True)
class Follow:
    """A visitor for the finder's follow crop, from the gaze's memory of the viewers.

    Attributes:
        box: Their latest face box, image pixels.
        step: How far their face's centre moved between their last two detections, when those
            were in consecutive frames, (dx, dy) image pixels; (0, 0) otherwise.
        viewer: True for the viewer the eyes follow; False for a face seen in the last frame
            that is not (yet) the viewer (the finder searches around it only with
            ``follow_found``).
    """

    box: Box
    step: tuple[float, float] = (0.0, 0.0)
    viewer: bool = True
