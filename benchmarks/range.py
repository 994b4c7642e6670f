"""How far away the appliance sees a visitor: whole-frame detection vs the head-band finder.

Synthetic clips (tests.support.sim: the astronaut photo placed with real camera geometry) of one
visitor crossing the room at 1.5, 2.5, 3.5 and 4.5 m, seen by a 66° camera at 1280×960 (Camera
Module 3). Each frame goes through the finder in 'whole' mode and in 'band' mode (following the
viewer the way the app does: the box of the face found in the previous frame). Printed per
distance: the fraction of frames in which the visitor is found (a detection whose eye midpoint
is within ``max(3 px, 0.2 eye distances)`` of the truth) and the mean inferences per frame;
then false faces on empty rooms and the agreement of the eye points between the two modes
where both see the face: in pixels, and in what they decide (the visitor's angle and the
portrait frame shown).

With ``MONALISA_MP_PYTHON`` set to a python that has ``mediapipe==0.10.21`` (the Makefile's
``.venv-mp/bin/python``), MediaPipe's own full-range detector
(``FaceDetection(model_selection=1)``, run by ``tests/mp_reference.py --stream`` in that venv,
frames passed through a pipe) also sees every whole frame, and a "mp whole" column shows its
found fraction by the same criterion, followed by a table comparing our whole-frame detector
with it frame by frame (frames with any face, the same face, score and eye-point differences).

Run:  .venv/bin/python -m benchmarks.range            (full clips, ~2-4 min on a desktop core)
      .venv/bin/python -m benchmarks.range --quick    (short clips)
      MONALISA_MP_PYTHON=.venv-mp/bin/python .venv/bin/python -m benchmarks.range   (+ MediaPipe)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from appliance.config import FinderConfig
from appliance.finder import FaceDetector, Finder, FindResult
from appliance.gaze.geometry import Camera, even_angles, locate, nearest_index
from appliance.types import Box, Face, Point
from tests.support.sim import CameraGeometry, EyeTruth, Renderer, Visitor, astronaut_photo, walk

DISTANCES_M = (1.5, 2.5, 3.5, 4.5)

BAND_960 = (0.35, 0.80)
"""The gallery default's head band (0.30-0.90 of a 1280×720 frame at 66°) in the rows of these
1280×960 clips: the same focal length (985.5 px), so the same pixel rows and the same tiles."""

MP_PYTHON_ENV = "MONALISA_MP_PYTHON"
"""Environment variable naming a python with ``mediapipe==0.10.21`` (enables the MP column)."""

MP_INPUT_PX = 192
"""Input side of MediaPipe's full-range model (for removing its half-pixel slip)."""

MP_SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "mp_reference.py"
"""The bridge that runs MediaPipe in its own venv (also used by tests/test_detector.py)."""


class MediaPipeError(RuntimeError):
    """MediaPipe's reference process failed to start or answer."""


class MediaPipeDetector:
    """MediaPipe's own full-range face detector, in its own venv, behind a pipe.

    Runs ``tests/mp_reference.py --stream --models full`` with ``python`` and sends it each
    frame as raw RGB bytes through stdin (nothing is written to disk); it answers with
    ``mp.solutions.face_detection.FaceDetection(model_selection=1)``'s detections. Satisfies
    the finder's ``FaceDetector`` protocol. Use as a context manager, or call :meth:`close`.

    Its points are given in our coordinates: MediaPipe's half-pixel slip (``(step - 1) / 2``
    px right and down, see ``appliance.detector``) is removed, so the comparison with our
    detector is point for point. Its score threshold is 0.6, as ours: in mediapipe 0.10.21 the
    full-range graph keeps 0.6 whatever ``min_detection_confidence`` is given (measured: 0.3
    to 0.9 give the same faces).

    Attributes:
        python: The interpreter with ``mediapipe==0.10.21``.
    """

    def __init__(self, python: str | Path) -> None:
        """Start the reference process.

        Args:
            python: Path of a python with ``mediapipe==0.10.21`` installed.

        Raises:
            MediaPipeError: ``python`` does not exist or the process cannot be started.
        """
        self.python = Path(python)
        if not self.python.is_file():
            raise MediaPipeError(
                f"MediaPipe python {python}: no such file (${MP_PYTHON_ENV} or --mp-python)"
            )
        # MediaPipe's log lines (shown if it fails); open for the process's lifetime.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [
                    str(self.python),
                    str(MP_SCRIPT),
                    "--stream",
                    "--models",
                    "full",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
            )
        except OSError as err:
            self._stderr.close()
            raise MediaPipeError(f"MediaPipe python {python}: cannot start: {err}") from None

    def _failure(self, what: str) -> MediaPipeError:
        self._proc.kill()
        self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        return MediaPipeError(
            f"{MP_SCRIPT.name} ({self.python}) {what}, exit {self._proc.returncode}: "
            + " | ".join(tail)
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """MediaPipe's faces in one frame.

        Args:
            image: H×W×3 uint8 RGB.

        Returns:
            Faces in image pixels (box, score, six keypoints in our order; the slip removed),
            best first.

        Raises:
            ValueError: ``image`` is not H×W×3 uint8.
            MediaPipeError: The reference process died or answered nonsense.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"MediaPipeDetector needs H×W×3 uint8, got {image.shape} {image.dtype}"
            )
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        h, w = image.shape[:2]
        try:
            stdin.write(f"{h} {w}\n".encode())
            stdin.write(np.ascontiguousarray(image).tobytes())
            stdin.flush()
        except BrokenPipeError:
            raise self._failure("stopped reading frames") from None
        line = stdout.readline()
        if not line:
            raise self._failure("exited")
        try:
            faces: list[dict[str, Any]] = json.loads(line)["full"]
            slip = -(max(h, w) / MP_INPUT_PX - 1.0) / 2.0
            return sorted(
                (_mp_face(f).translated(slip, slip) for f in faces), key=lambda f: -f.score
            )
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise self._failure(f"sent a bad answer ({err})") from None

    def close(self) -> None:
        """End the reference process (closing its input) and wait for it."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _mp_face(data: dict[str, Any]) -> Face:
    """A :class:`Face` from one of ``mp_reference.py``'s JSON faces (image pixels)."""
    x0, y0, x1, y1 = (float(v) for v in data["box"])
    kps = [Point(float(x), float(y)) for x, y in data["keypoints"]]
    if len(kps) != 6:
        raise ValueError(f"{len(kps)} keypoints, expected 6")
    return Face(
        Box(x0, y0, x1, y1), float(data["score"]), (kps[0], kps[1], kps[2], kps[3], kps[4], kps[5])
    )


def found_tolerance_px(truth: EyeTruth) -> float:
    """How close a detection's eye midpoint must be to the truth to count, pixels."""
    return max(3.0, 0.2 * truth.eye_px)


def match(faces: Sequence[Face], truth: EyeTruth) -> Face | None:
    """The detection whose eye midpoint is nearest the truth, if within tolerance."""
    best: Face | None = None
    best_d = found_tolerance_px(truth)
    for f in faces:
        d = math.dist((f.eye_mid.x, f.eye_mid.y), (truth.eye_mid.x, truth.eye_mid.y))
        if d <= best_d:
            best, best_d = f, d
    return best


@dataclass
class ViewerSim:
    """The app's viewer choice, reduced to what the finder sees: the box to follow next frame.

    Keeps the face nearest the previous viewer (within two face widths), else takes the best
    new face; holds the last box for ``hold_frames`` frames without a face, then lets go.
    """

    hold_frames: int = 5
    box: Box | None = None
    missed: int = 0

    def update(self, faces: Sequence[Face]) -> Box | None:
        """Take this frame's faces; return the box to follow in the next frame."""
        if faces:
            if self.box is not None:
                c = self.box.center
                near = min(faces, key=lambda f: math.dist(f.box.center.as_list(), c.as_list()))
                if math.dist(near.box.center.as_list(), c.as_list()) <= 2 * self.box.width:
                    self.box, self.missed = near.box, 0
                    return self.box
            self.box, self.missed = faces[0].box, 0
            return self.box
        self.missed += 1
        if self.missed > self.hold_frames:
            self.box = None
        return self.box


@dataclass
class ModeStats:
    """What one finder mode did over a clip.

    ``stray`` counts detections other than the one matching the visitor (an imprecise view of
    the visitor, e.g. of a face cut by the image edge, is one); ``false`` counts those whose box
    does not even contain the visitor's true eye midpoint: faces where there is none.
    """

    frames: int = 0
    found: int = 0
    seen: int = 0
    inferences: int = 0
    stray: int = 0
    false: int = 0
    hits: list[Face | None] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def extend(self, other: ModeStats) -> None:
        """Pool another clip's figures into these."""
        self.frames += other.frames
        self.found += other.found
        self.seen += other.seen
        self.inferences += other.inferences
        self.stray += other.stray
        self.false += other.false
        self.hits += other.hits
        self.ms += other.ms

    @property
    def found_rate(self) -> float:
        return self.found / self.frames if self.frames else 0.0

    @property
    def seen_rate(self) -> float:
        """Fraction of frames with any face at all (found or not)."""
        return self.seen / self.frames if self.frames else 0.0

    @property
    def inferences_per_frame(self) -> float:
        return self.inferences / self.frames if self.frames else 0.0


@dataclass
class Runner:
    """Feeds frames to a finder, following the viewer like the app does."""

    finder: Finder
    viewer: ViewerSim = field(default_factory=ViewerSim)
    stats: ModeStats = field(default_factory=ModeStats)
    follow: Box | None = None
    fps: float = 30.0
    """The clip's frame rate: frame ``n`` is given to the finder at ``n / fps`` seconds."""

    def step(self, frame: np.ndarray, truths: Sequence[EyeTruth]) -> FindResult:
        t0 = time.perf_counter()
        res = self.finder.find(frame, self.follow, t=self.stats.frames / self.fps)
        ms = (time.perf_counter() - t0) * 1e3
        self.follow = self.viewer.update(res.faces)
        s = self.stats
        s.ms.append(ms)
        s.frames += 1
        s.inferences += res.inferences
        hit = match(res.faces, truths[0]) if truths else None
        s.hits.append(hit)
        s.found += hit is not None
        s.seen += bool(res.faces)
        s.stray += len(res.faces) - (hit is not None)
        if truths:
            p = truths[0].eye_mid
            s.false += sum(
                not (f.box.x0 <= p.x <= f.box.x1 and f.box.y0 <= p.y <= f.box.y1) for f in res.faces
            )
        else:
            s.false += len(res.faces)
        return res


def eye_error_px(a: Face, b: Face) -> float:
    """The larger of the two eye-point distances between two detections, pixels."""
    return max(
        math.dist(a.right_eye.as_list(4), b.right_eye.as_list(4)),
        math.dist(a.left_eye.as_list(4), b.left_eye.as_list(4)),
    )


def agreement_tolerance_px(whole: Face) -> float:
    """The issue's tolerance: 1.5 px or 2 % of the face box, whichever is larger."""
    return max(1.5, 0.02 * whole.box.width)


@dataclass
class DetectorComparison:
    """Our whole-frame detections against MediaPipe's on the same frames.

    Faces are paired when their boxes overlap by IoU >= 0.5. Differences are over the pairs:
    score (absolute), eye points (the worse eye, pixels) and box corners (the worst, pixels).
    """

    frames: int = 0
    ours_any: int = 0
    mp_any: int = 0
    both_found: int = 0
    ours_only_found: int = 0
    mp_only_found: int = 0
    pairs: int = 0
    unpaired_ours: int = 0
    unpaired_mp: int = 0
    score_diff: list[float] = field(default_factory=list)
    eye_diff_px: list[float] = field(default_factory=list)
    box_diff_px: list[float] = field(default_factory=list)

    def add(
        self,
        ours: Sequence[Face],
        mp: Sequence[Face],
        ours_hit: Face | None,
        mp_hit: Face | None,
    ) -> None:
        """Compare one frame's detections (and whether each found the visitor)."""
        self.frames += 1
        self.ours_any += bool(ours)
        self.mp_any += bool(mp)
        self.both_found += ours_hit is not None and mp_hit is not None
        self.ours_only_found += ours_hit is not None and mp_hit is None
        self.mp_only_found += ours_hit is None and mp_hit is not None
        left = list(mp)
        for o in ours:
            best = max(left, key=lambda m: o.box.iou(m.box), default=None)
            if best is None or o.box.iou(best.box) < 0.5:
                self.unpaired_ours += 1
                continue
            left.remove(best)
            self.pairs += 1
            self.score_diff.append(abs(o.score - best.score))
            self.eye_diff_px.append(eye_error_px(o, best))
            a, b = o.box, best.box
            self.box_diff_px.append(
                max(abs(a.x0 - b.x0), abs(a.y0 - b.y0), abs(a.x1 - b.x1), abs(a.y1 - b.y1))
            )
        self.unpaired_mp += len(left)

    def extend(self, other: DetectorComparison) -> None:
        """Pool another clip's comparison into this one."""
        for name in (
            "frames",
            "ours_any",
            "mp_any",
            "both_found",
            "ours_only_found",
            "mp_only_found",
            "pairs",
            "unpaired_ours",
            "unpaired_mp",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.score_diff += other.score_diff
        self.eye_diff_px += other.eye_diff_px
        self.box_diff_px += other.box_diff_px


@dataclass
class DistanceResult:
    """One distance's figures for both modes (and MediaPipe's whole frame, when run)."""

    distance_m: float
    eye_px: float
    whole: ModeStats
    band: ModeStats
    truths: list[EyeTruth]
    mp: ModeStats | None = None
    vs_mp: DetectorComparison | None = None


def run_distance(
    renderer: Renderer,
    detector: FaceDetector,
    distance_m: float,
    *,
    band_config: FinderConfig,
    stand_s: float = 2.0,
    speed_mps: float = 1.0,
    max_frames: int | None = None,
    span_m: float | None = None,
    directions: Sequence[Literal[1, -1]] = (1,),
    eye_height_m: float = 1.62,
    mp_detector: FaceDetector | None = None,
    follow_detector: FaceDetector | None = None,
) -> DistanceResult:
    """Render a visitor crossing the room at ``distance_m`` and run both finder modes on it.

    Each direction (1: entering at the image's left edge, -1: at its right edge) is a separate
    clip with fresh finders; their frames are pooled. ``span_m`` limits the walk to
    ``-span_m .. +span_m`` (default: edge to edge of the view). With ``mp_detector``
    (a :class:`MediaPipeDetector`) each whole frame is also given to it, and its figures and a
    frame-by-frame comparison with our whole-frame detections are returned too.
    ``follow_detector`` runs the band finder's follow crop (the short-range model, as the app
    does with ``follow_model = "short"``).
    """
    whole_all, band_all = ModeStats(), ModeStats()
    mp_all = ModeStats() if mp_detector is not None else None
    vs_mp = DetectorComparison() if mp_detector is not None else None
    truths: list[EyeTruth] = []
    for direction in directions:
        poses: list[Visitor | None] = walk(
            renderer.geometry,
            distance_m,
            stand_s=stand_s,
            speed_mps=speed_mps,
            direction=direction,
            eye_height_m=eye_height_m,
            x_from_m=None if span_m is None else -span_m * direction,
            x_to_m=None if span_m is None else span_m * direction,
        )
        if max_frames is not None:
            poses = poses[:max_frames]
        whole = Runner(Finder(FinderConfig(mode="whole"), detector))
        band = Runner(Finder(band_config, detector, follow_detector=follow_detector))
        mp = (
            None if mp_detector is None else Runner(Finder(FinderConfig(mode="whole"), mp_detector))
        )
        for pose in poses:
            frame, tr = renderer.render([] if pose is None else [pose])
            ours = whole.step(frame, tr)
            band.step(frame, tr)
            if mp is not None and vs_mp is not None:
                theirs = mp.step(frame, tr)
                vs_mp.add(ours.faces, theirs.faces, whole.stats.hits[-1], mp.stats.hits[-1])
            truths.append(tr[0])
        whole_all.extend(whole.stats)
        band_all.extend(band.stats)
        if mp is not None and mp_all is not None:
            mp_all.extend(mp.stats)
    eye_px = statistics.median(t.eye_px for t in truths)
    return DistanceResult(distance_m, eye_px, whole_all, band_all, truths, mp_all, vs_mp)


def empty_room_faces(
    detector: FaceDetector,
    geometry: CameraGeometry,
    band_config: FinderConfig,
    *,
    rooms: Iterable[int] = range(4),
    frames: int = 30,
) -> tuple[int, int, int, int]:
    """False faces on empty rooms: (whole faces, whole frames, band faces, band frames)."""
    photo = astronaut_photo()
    wf = wn = bf = bn = 0
    for seed in rooms:
        r = Renderer(photo, geometry, seed=seed)
        whole = Runner(Finder(FinderConfig(mode="whole"), detector))
        band = Runner(Finder(band_config, detector))
        for _ in range(frames):
            frame, _ = r.render([])
            wf += len(whole.step(frame, []).faces)
            bf += len(band.step(frame, []).faces)
            wn += 1
            bn += 1
    return wf, wn, bf, bn


def empty_room_mp_faces(
    mp_detector: FaceDetector,
    geometry: CameraGeometry,
    *,
    rooms: Iterable[int] = range(4),
    frames: int = 30,
) -> tuple[int, int]:
    """False faces of MediaPipe's whole-frame detector on the same empty rooms: (faces, frames)."""
    photo = astronaut_photo()
    faces = n = 0
    for seed in rooms:
        r = Renderer(photo, geometry, seed=seed)
        for _ in range(frames):
            frame, _ = r.render([])
            faces += len(mp_detector.detect(frame))
            n += 1
    return faces, n


def print_mp_comparison(results: Sequence[DistanceResult]) -> None:
    """Print our whole-frame detector against MediaPipe's, per distance (frames, faces)."""
    print(
        "our whole-frame detector vs MediaPipe's FaceDetection(model_selection=1), same frames;"
        " 'any' = frames with\nany face, 'found' = frames where only one of the two found the"
        " visitor; faces paired by box IoU >= 0.5"
    )
    head = (
        f"{'distance':>8} {'frames':>6} | {'any: ours':>9} {'mp':>5} | {'found: both':>11}"
        f" {'ours only':>9} {'mp only':>7} | {'pairs':>5} {'unpaired o/mp':>13} |"
        f" {'score max':>9} {'eye max':>7} {'box max':>7}"
    )
    print(head)
    print("-" * len(head))
    for res in results:
        c = res.vs_mp
        if c is None:
            continue
        score = f"{max(c.score_diff):.4f}" if c.score_diff else "-"
        eye = f"{max(c.eye_diff_px):.2f}px" if c.eye_diff_px else "-"
        box = f"{max(c.box_diff_px):.2f}px" if c.box_diff_px else "-"
        print(
            f"{res.distance_m:>6.1f} m {c.frames:>6} | {c.ours_any:>9} {c.mp_any:>5} |"
            f" {c.both_found:>11} {c.ours_only_found:>9} {c.mp_only_found:>7} | {c.pairs:>5}"
            f" {f'{c.unpaired_ours}/{c.unpaired_mp}':>13} | {score:>9} {eye:>7} {box:>7}"
        )


@dataclass
class Agreement:
    """Eye points of the band finder against the whole-frame detector (and the truth)."""

    frames: int
    within: int
    mid_within: int
    median_px: float
    p90_px: float
    median_box_pct: float
    mid_median_px: float
    band_truth_median_px: float
    whole_truth_median_px: float
    band_truth_within: int = 0
    whole_truth_within: int = 0
    same_frame: int = 0
    within_one_frame: int = 0
    angle_median_deg: float = math.nan
    angle_max_deg: float = math.nan


DEFAULT_SET_ANGLES = even_angles(33, 30.0)
"""The gaze angles of the default frame set (33 frames over ±30°: 1.875° apart)."""


def eye_agreement(
    results: Sequence[DistanceResult], image_size: tuple[int, int] = (1280, 960)
) -> Agreement:
    """Compare eye points where both modes found the visitor.

    Besides pixels, what the points decide: the visitor's angle seen from the portrait
    (:func:`appliance.gaze.geometry.locate`, a 66° camera at the portrait's eyes) and the
    frame of the default set nearest to it, before the gaze filter and its hysteresis.
    """
    camera = Camera(hfov_deg=66.0)
    angle_diffs: list[float] = []
    same = near = 0
    errs: list[float] = []
    pct: list[float] = []
    mids: list[float] = []
    bt: list[float] = []
    wt: list[float] = []
    within = mid_within = band_ok = whole_ok = 0
    for res in results:
        for w, b, t in zip(res.whole.hits, res.band.hits, res.truths, strict=True):
            if w is None or b is None:
                continue
            e = eye_error_px(w, b)
            errs.append(e)
            pct.append(100 * e / w.box.width)
            within += e <= agreement_tolerance_px(w)
            mids.append(math.dist(w.eye_mid.as_list(4), b.eye_mid.as_list(4)))
            mid_within += mids[-1] <= agreement_tolerance_px(w)
            bt.append(math.dist(b.eye_mid.as_list(4), t.eye_mid.as_list(4)))
            wt.append(math.dist(w.eye_mid.as_list(4), t.eye_mid.as_list(4)))
            band_ok += bt[-1] <= agreement_tolerance_px(w)
            whole_ok += wt[-1] <= agreement_tolerance_px(w)
            aw = locate(w, image_size, camera).angle_deg
            ab = locate(b, image_size, camera).angle_deg
            angle_diffs.append(abs(aw - ab))
            iw = nearest_index(DEFAULT_SET_ANGLES, aw)
            ib = nearest_index(DEFAULT_SET_ANGLES, ab)
            same += iw == ib
            near += abs(iw - ib) <= 1
    if not errs:
        nan = math.nan
        return Agreement(0, 0, 0, nan, nan, nan, nan, nan, nan)
    return Agreement(
        frames=len(errs),
        within=within,
        mid_within=mid_within,
        median_px=statistics.median(errs),
        p90_px=float(np.percentile(errs, 90)),
        median_box_pct=statistics.median(pct),
        mid_median_px=statistics.median(mids),
        band_truth_median_px=statistics.median(bt),
        whole_truth_median_px=statistics.median(wt),
        band_truth_within=band_ok,
        whole_truth_within=whole_ok,
        same_frame=same,
        within_one_frame=near,
        angle_median_deg=statistics.median(angle_diffs),
        angle_max_deg=max(angle_diffs),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; returns the exit status (0)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s clips (what the tests use)")
    ap.add_argument("--distances", type=float, nargs="+", default=list(DISTANCES_M))
    ap.add_argument("--seed", type=int, default=0, help="room and noise seed")
    ap.add_argument("--threads", type=int, default=1, help="detector threads")
    ap.add_argument("--stand", type=float, default=2.0, help="seconds standing mid-walk")
    ap.add_argument("--noise", type=float, default=2.5, help="sensor noise sigma, 0-255 levels")
    ap.add_argument("--eye-height", type=float, default=1.62, help="visitor's eye height, m")
    ap.add_argument(
        "--agree-distances",
        type=float,
        nargs="*",
        default=[0.5, 0.7, 1.0],
        help="extra close distances for the eye-point agreement table",
    )
    ap.add_argument(
        "--mp-python",
        default=os.environ.get(MP_PYTHON_ENV) or None,
        help=f"python with mediapipe==0.10.21, adds MediaPipe's whole frame (${MP_PYTHON_ENV})",
    )
    args = ap.parse_args(argv)
    try:
        mp = MediaPipeDetector(args.mp_python) if args.mp_python else None
    except MediaPipeError as err:
        ap.error(str(err))
    try:
        return _run(args, mp)
    finally:
        if mp is not None:
            mp.close()


def _run(args: argparse.Namespace, mp: MediaPipeDetector | None) -> int:
    """The benchmark proper (``main`` parses the arguments and owns the MediaPipe process)."""
    from appliance.detector import Detector

    geometry = CameraGeometry(1280, 960, 66.0, height_m=1.75)
    renderer = Renderer(astronaut_photo(), geometry, seed=args.seed, noise_sigma=args.noise)
    detector = Detector("full", num_threads=args.threads)
    band_config = FinderConfig(mode="band", band_top=BAND_960[0], band_bottom=BAND_960[1])
    # As the runner builds it: the short-range model for the follow crop.
    short = (
        Detector("short", num_threads=args.threads) if band_config.follow_model == "short" else None
    )
    max_frames = 60 if args.quick else None
    print(
        f"camera {geometry.width}x{geometry.height}, {geometry.hfov_deg:.0f}° "
        f"(f = {geometry.focal_px:.1f} px), {geometry.height_m} m high; visitor eyes "
        f"{args.eye_height:g} m; "
        f"walk 1.0 m/s edge to edge (once each way) with {args.stand:.1f} s standing mid-way; "
        f"seed {args.seed}; "
        f"noise sigma {args.noise}"
    )
    print(f"band finder: {band_config.model_dump()}")
    if mp is not None:
        print(
            "mp whole: MediaPipe 0.10.21 FaceDetection(model_selection=1) on the whole frame"
            f" (score threshold 0.6, as ours; {mp.python})"
        )
    print()
    mp_head = f" | {'mp whole: found':>15}" if mp is not None else ""
    head = (
        f"{'distance':>8} {'eyes px':>7} {'frames':>6} | {'whole: found':>12} {'inf/frame':>9}"
        f" | {'band: found':>11} {'inf/frame':>9} {'stray':>5} {'false':>5}{mp_head}"
    )
    print(head)
    print("-" * len(head))
    t0 = time.perf_counter()
    results = []
    for d in args.distances:
        res = run_distance(
            renderer,
            detector,
            d,
            band_config=band_config,
            follow_detector=short,
            stand_s=args.stand,
            max_frames=max_frames,
            directions=(1, -1),
            eye_height_m=args.eye_height,
            mp_detector=mp,
        )
        results.append(res)
        w, b = res.whole, res.band
        mp_col = f" | {100 * res.mp.found_rate:>14.1f}%" if res.mp is not None else ""
        print(
            f"{d:>6.1f} m {res.eye_px:>7.1f} {w.frames:>6} | {100 * w.found_rate:>11.1f}%"
            f" {w.inferences_per_frame:>9.2f} | {100 * b.found_rate:>10.1f}%"
            f" {b.inferences_per_frame:>9.2f} {b.stray:>5} {b.false:>5}{mp_col}",
            flush=True,
        )
    tot_w = sum(r.whole.inferences for r in results) / sum(r.whole.frames for r in results)
    tot_b = sum(r.band.inferences for r in results) / sum(r.band.frames for r in results)
    print(f"{'all':>8} {'':>7} {'':>6} | {'':>12} {tot_w:>9.2f} | {'':>11} {tot_b:>9.2f}")
    ms_w = statistics.median(m for r in results for m in r.whole.ms)
    ms_b = statistics.median(m for r in results for m in r.band.ms)
    print(
        f"finder time per frame (median, this machine, {args.threads} thread): whole "
        f"{ms_w:.1f} ms, band {ms_b:.1f} ms (x{ms_b / ms_w:.2f})"
    )
    print()
    wf, wn, bf, bn = empty_room_faces(
        detector, geometry, band_config, frames=15 if args.quick else 60
    )
    print(f"empty rooms (4 rooms): whole {wf} false faces in {wn} frames; band {bf} in {bn} frames")
    if mp is not None:
        mf, mn = empty_room_mp_faces(mp, geometry, frames=15 if args.quick else 60)
        print(f"empty rooms, mp whole: {mf} false faces in {mn} frames")
        print()
        print_mp_comparison(results)
    print()
    print(
        "eye points, band vs whole-frame where both found the visitor; 'eye' = the worse of the"
        " two eyes,\n'mid' = eye midpoint; close distances: a visitor stepping 0.6 m sideways at"
        " 0.5 m/s, 1 s still"
    )
    head = (
        f"{'distance':>8} {'frames':>6} {'eye<=tol':>8} {'eye med':>8} {'% box':>6} "
        f"{'eye p90':>7} {'mid<=tol':>8} {'mid med':>7} | {'mid vs truth: band':>18} {'whole':>6}"
        f" | {'<=tol: band':>11} {'whole':>6}"
        f" | {'same frame':>10} {'+-1':>6} {'angle med':>9} {'max':>5}"
    )
    print(head)
    print("-" * len(head))
    close = [
        run_distance(
            renderer, detector, d, band_config=band_config, stand_s=1.0, speed_mps=0.5, span_m=0.3
        )
        for d in args.agree_distances
    ]
    for res in [*close, *results]:
        ag = eye_agreement([res])
        if not ag.frames:
            print(f"{res.distance_m:>6.1f} m {0:>6}   (whole-frame never found the visitor)")
            continue
        print(
            f"{res.distance_m:>6.1f} m {ag.frames:>6} {100 * ag.within / ag.frames:>7.1f}%"
            f" {ag.median_px:>6.2f}px {ag.median_box_pct:>5.2f}% {ag.p90_px:>5.1f}px"
            f" {100 * ag.mid_within / ag.frames:>7.1f}% {ag.mid_median_px:>5.2f}px |"
            f" {ag.band_truth_median_px:>16.2f}px"
            f" {ag.whole_truth_median_px:>4.2f}px"
            f" | {100 * ag.band_truth_within / ag.frames:>10.1f}%"
            f" {100 * ag.whole_truth_within / ag.frames:>5.1f}%"
            f" | {100 * ag.same_frame / ag.frames:>9.1f}%"
            f" {100 * ag.within_one_frame / ag.frames:>5.1f}%"
            f" {ag.angle_median_deg:>8.2f}° {ag.angle_max_deg:>4.2f}°"
        )
    print(
        "(tol = max(1.5 px, 2% of the whole-frame face box width); same frame / +-1: the frame of"
        " the default set\n(33 over ±30°, 1.875° apart) nearest to the visitor's angle from each"
        " mode's eye midpoint, before\nthe gaze filter; angle: |band - whole| of that angle)"
    )
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
