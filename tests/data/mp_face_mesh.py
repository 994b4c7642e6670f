"""Run MediaPipe's own face mesh on images from an .npz; print JSON. Runs in .venv-mp.

Usage (with MediaPipe 0.10.21's Python, which needs numpy<2)::

    python tests/data/mp_face_mesh.py IMAGES.npz

Every array in IMAGES.npz (H×W×3 uint8 RGB) goes through
``mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)`` twice: without
refinement (the 468-point mesh of ``face_landmark.tflite``, the model the builder runs) and with
``refine_landmarks=True`` (478 points: the attention model's refined eyes and irises). Prints one
JSON object ``{key: {"plain": [[x, y] * 468] or null, "refined": [[x, y] * 478] or null}}`` in
image pixels (MediaPipe's normalised coordinates times the image size).

This file is not imported by the test suite (it must not need our package or numpy 2).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import mediapipe as mp
import numpy as np


def _points(result: Any, width: int, height: int) -> list[list[float]] | None:
    if not result.multi_face_landmarks:
        return None
    marks = result.multi_face_landmarks[0].landmark
    return [[m.x * width, m.y * height] for m in marks]


def main(argv: list[str]) -> int:
    images = dict(np.load(argv[0]))
    report: dict[str, dict[str, Any]] = {}
    for refine, name in ((False, "plain"), (True, "refined")):
        with mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=refine
        ) as mesh:
            for key, image in images.items():
                rgb = np.ascontiguousarray(image)
                found = _points(mesh.process(rgb), rgb.shape[1], rgb.shape[0])
                report.setdefault(key, {})[name] = found
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
