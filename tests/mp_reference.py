"""Run MediaPipe's own face detector on images from an .npz; print JSON. Runs in .venv-mp.

Usage (with MediaPipe 0.10.21's Python, which needs numpy<2)::

    python tests/mp_reference.py IMAGES.npz [--repeat N]

Every array in IMAGES.npz (H×W×3 uint8 RGB) is run through
``mp.solutions.face_detection.FaceDetection(model_selection=0|1)`` for both models, with
``min_detection_confidence`` set to our default thresholds (0.5 short, 0.6 full). Prints one JSON
object ``{"short": {key: result}, "full": {key: result}}`` where result is
``{"faces": [{"score", "box": [x0, y0, x1, y1], "keypoints": [[x, y] * 6]}], "ms": median}``
in image pixels. With ``--repeat N`` each image is processed N extra times and ``ms`` is the
median wall time of ``process()`` in milliseconds.

With ``--serve`` (used by ``benchmarks/detect.py`` to interleave its measurements with ours) it
first prints that report for the first image, then reads lines ``MODEL N`` from stdin and answers
each with one JSON line ``{"ms": [...]}``: the wall times of N ``process()`` calls on it.

With ``--stream`` (used by ``benchmarks/range.py`` for clips too large for one .npz) no .npz is
read: it reads frames from stdin, each a header line ``H W`` followed by ``H*W*3`` bytes of
uint8 RGB, and answers each with one JSON line ``{model: [face, ...]}`` (faces as above) for
every model in ``--models``; it ends at end of input. Frames stay in memory, never on disk.

This file is not imported by the test suite (it must not need our package or numpy 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import mediapipe as mp
import numpy as np

MODELS = {"short": (0, 0.5), "full": (1, 0.6)}


def _faces(result: Any, width: int, height: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for det in result.detections or []:
        loc = det.location_data
        bb = loc.relative_bounding_box
        out.append(
            {
                "score": float(det.score[0]),
                "box": [
                    bb.xmin * width,
                    bb.ymin * height,
                    (bb.xmin + bb.width) * width,
                    (bb.ymin + bb.height) * height,
                ],
                "keypoints": [[kp.x * width, kp.y * height] for kp in loc.relative_keypoints],
            }
        )
    return out


def _stream(detectors: dict[str, Any]) -> None:
    """Answer frames read from stdin (``H W`` line, then H*W*3 RGB bytes) until end of input."""
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header.strip():
            return
        height, width = (int(v) for v in header.split())
        size = height * width * 3
        buf = stdin.read(size)
        if len(buf) != size:
            raise SystemExit(f"mp_reference: truncated frame ({len(buf)} of {size} bytes)")
        rgb = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
        answer = {
            name: _faces(detector.process(rgb), width, height)
            for name, detector in detectors.items()
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", nargs="?")
    parser.add_argument("--repeat", type=int, default=0)
    parser.add_argument("--models", default="short,full")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args(argv)
    if args.npz is None and not args.stream:
        parser.error("IMAGES.npz is required (unless --stream)")
    detectors = {}
    for name in args.models.split(","):
        selection, threshold = MODELS[name]
        detectors[name] = mp.solutions.face_detection.FaceDetection(
            model_selection=selection, min_detection_confidence=threshold
        )
    if args.stream:
        _stream(detectors)
        for detector in detectors.values():
            detector.close()
        return 0
    images = dict(np.load(args.npz))
    report: dict[str, dict[str, Any]] = {}
    for name, detector in detectors.items():
        report[name] = {}
        for key, image in images.items():
            rgb = np.ascontiguousarray(image)
            result = detector.process(rgb)
            times: list[float] = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                detector.process(rgb)
                times.append((time.perf_counter() - t0) * 1e3)
            report[name][key] = {
                "faces": _faces(result, rgb.shape[1], rgb.shape[0]),
                "ms": statistics.median(times) if times else None,
            }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if args.serve:
        frame = np.ascontiguousarray(next(iter(images.values())))
        for line in sys.stdin:
            name, count = line.split()
            times = []
            for _ in range(int(count)):
                t0 = time.perf_counter()
                detectors[name].process(frame)
                times.append((time.perf_counter() - t0) * 1e3)
            sys.stdout.write(json.dumps({"ms": times}) + "\n")
            sys.stdout.flush()
    for detector in detectors.values():
        detector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
