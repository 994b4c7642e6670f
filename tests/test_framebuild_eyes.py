"""Eye modelling for frame synthesis: iris refinement and the eye opening, on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from appliance.framebuild import FrameBuildError
from appliance.framebuild.eyes import detect_eyes, model_eye, model_eyes, parse_eyes
from appliance.framebuild.synthesize import iris_shifts
from appliance.types import Point

# Hand-measured on the astronaut photo: iris centres (dark columns 200-205 and 244-250).
IRIS = [Point(203.0, 101.2), Point(247.0, 103.2)]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())


@pytest.mark.parametrize("dx,dy", [(0, 0), (-3, 2), (3, -2), (2, 3)])
def test_iris_refined_from_coarse_points(photo: np.ndarray, dx: float, dy: float) -> None:
    hints = (Point(IRIS[0].x + dx, IRIS[0].y + dy), Point(IRIS[1].x - dy, IRIS[1].y + dx))
    for eye, truth in zip(model_eyes(photo, hints), IRIS, strict=True):
        assert abs(eye.iris.x - truth.x) < 1.0, eye
        assert abs(eye.iris.y - truth.y) < 1.2, eye
        assert 2.5 < eye.radius < 5.0
        o = eye.opening
        # The opening holds the iris, spans a plausible eye width and respects the lids.
        assert o.xl < eye.iris.x < o.xr
        assert 10 < o.xr - o.xl < 22
        top, bottom = o.lid_extent(eye.iris.x)
        assert top < eye.iris.y < bottom and 3 < bottom - top < 9
        left, right = eye.travel()
        assert left > 1.5 and right > 1.5


def test_detector_points_refine_to_the_same_irises(photo: np.ndarray) -> None:
    points = detect_eyes(photo, "astronaut")
    for eye, truth in zip(model_eyes(photo, points), IRIS, strict=True):
        assert abs(eye.iris.x - truth.x) < 1.0 and abs(eye.iris.y - truth.y) < 1.2


def test_shifts_fit_the_openings(photo: np.ndarray) -> None:
    eyes = model_eyes(photo, (IRIS[0], IRIS[1]))
    shifts, scale = iris_shifts(eyes, [-60.0, 0.0, 60.0])
    assert 0 < scale <= 1
    assert shifts[0] == -shifts[2] and shifts[1] == 0.0
    for e in eyes:
        left, right = e.travel()
        assert -shifts[0] <= left + 1e-9 and shifts[2] <= right + 1e-9


def test_no_iris_on_plain_skin(photo: np.ndarray) -> None:
    with pytest.raises(FrameBuildError, match="no iris"):
        model_eye(photo, Point(185.0, 135.0), 43.0)  # the cheek: no dark disc


def test_parse_eyes() -> None:
    a, b = parse_eyes("246, 103, 203,101")
    assert (a.x, b.x) == (203.0, 246.0)  # sorted left to right
    for bad in ("1,2,3", "a,b,c,d", "1,1,2,2", "nan,1,5,5"):
        with pytest.raises(FrameBuildError, match="--eyes"):
            parse_eyes(bad)
