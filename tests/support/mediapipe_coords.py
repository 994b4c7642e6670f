"""Our exact pixel coordinates in MediaPipe's convention, for comparing with MediaPipe itself.

MediaPipe samples with pixel centres at integer positions but reads points back with
corner-based coordinates, so everything it reports lies ``(step - 1) / 2`` source pixels right
and down of the true place (``step`` = source pixels per model-input pixel; see
:mod:`appliance.detector`). The product reports the true place; these helpers add the slip
back, computed from the geometry alone (the letterbox, or a face-mesh ROI), never from a second
run of our models.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.detector import Detector, letterbox
from appliance.framebuild.facemesh import IRIS_SIZE, MESH_SIZE, EyeMarks, FaceMesh, Roi
from appliance.types import Face, Point

F64 = npt.NDArray[np.float64]
REPO = Path(__file__).resolve().parents[2]


def run_mediapipe(script: Path, images: dict[str, np.ndarray], directory: Path) -> Any:
    """MediaPipe's own results for ``images``, from ``script`` run in MediaPipe's venv.

    The venv is ``$MONALISA_MP_PYTHON``, else ``.venv-mp/bin/python`` in the repo (``make
    test`` builds it). The images go to ``script`` as one ``.npz`` in ``directory``; it prints
    JSON. A missing venv or a failing script fails the calling test, naming which.
    """
    import pytest

    env = os.environ.get("MONALISA_MP_PYTHON")
    python = Path(env) if env else REPO / ".venv-mp" / "bin" / "python"
    if not python.exists():
        pytest.fail(
            f"MediaPipe reference python not found: {python} "
            "(set MONALISA_MP_PYTHON or run `make .venv-mp/.stamp`)"
        )
    npz = directory / "images.npz"
    savez: Any = np.savez  # numpy's stub types **kwds as bool
    savez(npz, **images)
    proc = subprocess.run(
        [str(python), str(script), str(npz)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def detector_slip(shape: tuple[int, ...], input_size: int) -> float:
    """MediaPipe's slip for an ``H×W[×C]`` image in a model input of ``input_size`` px, pixels."""
    return letterbox(shape[0], shape[1], input_size).slip


def roi_slip(roi: Roi, n: int) -> F64:
    """MediaPipe's slip ``(dx, dy)`` for points read from an ``n×n`` model input of ``roi``.

    Input pixel ``i`` holds the ROI at ``i / n`` but is read back at ``(i + 1/2) / n``: half an
    input pixel along the ROI's turned axes, less the half source pixel of the index
    convention.
    """
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    half = 0.5 * roi.size / n
    return np.array([(c - s) * half - 0.5, (s + c) * half - 0.5])


class MediaPipeDetector(Detector):
    """A :class:`Detector` whose faces carry MediaPipe's slip (for comparing with MediaPipe)."""

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Face]:
        """The product's faces, moved by :func:`detector_slip` of ``image``'s letterbox."""
        slip = detector_slip(np.shape(image), self.input_size)
        return [f.translated(slip, slip) for f in super().detect(image)]


class MediaPipeFaceMesh(FaceMesh):
    """A :class:`FaceMesh` that works in MediaPipe's coordinates at every step, as MediaPipe does.

    Detections, meshes and irises are the product's plus the slip of the letterbox or ROI they
    were read from; the ROIs are then made from those points as they are (MediaPipe's graph
    does not convert them to pixel indices), so the crops are MediaPipe's own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._mp_detectors: dict[str, Detector] = {}

    def detector(self, model: str) -> Detector:
        if model not in self._mp_detectors:
            self._mp_detectors[model] = MediaPipeDetector(model, score_threshold=0.5)
        return self._mp_detectors[model]

    def mesh(self, image: npt.NDArray[np.uint8], roi: Roi) -> tuple[F64, float]:
        points, presence = super().mesh(image, roi)
        return points + roi_slip(roi, MESH_SIZE), presence

    def iris(self, image: npt.NDArray[np.uint8], roi: Roi, flip: bool) -> EyeMarks:
        marks = super().iris(image, roi, flip)
        dx, dy = roi_slip(roi, IRIS_SIZE)

        def move(p: Point) -> Point:
            return Point(p.x + dx, p.y + dy)

        return replace(
            marks,
            iris=move(marks.iris),
            lower=tuple(move(p) for p in marks.lower),
            upper=tuple(move(p) for p in marks.upper),
        )

    def index_roi(self, roi: Roi) -> Roi:
        return roi
