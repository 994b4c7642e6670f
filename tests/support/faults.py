"""Fault injection for the test suite, driven by the ``MONALISA_FAULT`` environment variable.

The real appliance is started by the tests as a separate process, so faults are asked for by
environment rather than by patching: :data:`tests.support.run.MONALISA_WITH_FAULTS` runs
:func:`main`, which reads the variable, sets the runner's
:data:`~appliance.runner.PART_HOOKS` to :func:`hooks` and calls ``appliance.cli.main``. The
installed ``monalisa`` never reads it. The spec is a comma-separated list of items:

* ``camera_raise_at:N`` — the camera's read raises once, at frame N.
* ``camera_fail_for:N:S`` — from frame N, every open and read fails for S seconds.
* ``camera_stall_at:N:S`` — at frame N the camera delivers nothing for S seconds.
* ``camera_hang_at:N`` — at frame N the read blocks for good in a real ``read(2)`` on a pipe
  nobody writes to (a camera stack that never returns, picamera2 #1086).
* ``camera_hang_every:S:H`` — every S seconds the read blocks in ``read(2)`` on a pipe for H
  seconds, until a timer writes to it (the soak's fault mode).
* ``camera_hang_while:PATH`` — while PATH exists (a FIFO), every read first blocks in
  ``open(2)`` on it, which returns only when someone opens it for writing: a camera that hangs
  until the test removes PATH ("the camera works again").
* ``camera_bad_at:N:KIND`` — frame N is replaced by a bad one; KIND is ``black``, ``white``,
  ``shape`` (2-D), ``tiny`` (1×1), ``truncated`` (half its rows) or ``float``.
* ``detector_raise_at:N`` — the detector raises on frame N.
* ``detector_nan_at:N`` — on frame N the detector (below the finder, see
  :class:`FaultyDetector`) returns one extra face with NaN score, box and keypoints.
* ``hang_after:N`` — the main loop stops making progress after N frames (a hung loop).

* ``leak_per_frame:B`` — the camera keeps B bytes per frame forever (a memory leak, to prove
  the soak benchmark catches one).

Every fault is injected by a wrapper around a real part (the camera source, the capture, the
finder, the detector) that the runner applies as it builds it; the main loop knows nothing of
them. An item that is not understood exits 2 with one line naming it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance import cli, runner
from appliance.app import App
from appliance.camera import CameraError, CameraSource, Capture, Frame, Refreshable
from appliance.finder import FaceDetector, Finder, FindResult
from appliance.optics import CameraView
from appliance.types import Box, Face, Follow, Point

log = logging.getLogger(__name__)

ENV = "MONALISA_FAULT"


class InjectedFault(RuntimeError):
    """An error raised on purpose by a fault spec."""


class FaultSpecError(ValueError):
    """A ``MONALISA_FAULT`` item that is not understood; the message names it."""


@dataclass
class FaultPlan:
    """The faults asked for, by frame number (0-based)."""

    camera_raise_at: set[int] = field(default_factory=set)
    camera_fail: tuple[int, float] | None = None
    camera_stall: tuple[int, float] | None = None
    camera_hang_at: int | None = None
    camera_hang_every: tuple[float, float] | None = None
    camera_hang_while: str | None = None
    camera_bad: dict[int, str] = field(default_factory=dict)
    detector_raise_at: set[int] = field(default_factory=set)
    detector_nan_at: set[int] = field(default_factory=set)
    hang_after: int | None = None
    leak_per_frame: int = 0
    frame: int = -1
    """The camera frame the loop is working on (set by :class:`FaultyCapture` as the loop
    takes it; -1 before the first), so that faults below the loop know which frame it is."""

    @property
    def touches_camera(self) -> bool:
        """True if the camera source must be wrapped."""
        return bool(
            self.camera_raise_at
            or self.camera_fail
            or self.camera_stall
            or self.camera_hang_at is not None
            or self.camera_hang_every
            or self.camera_hang_while
            or self.camera_bad
            or self.leak_per_frame
        )

    @property
    def touches_detector(self) -> bool:
        """True if the detector the finder uses must be wrapped."""
        return bool(self.detector_nan_at)

    @property
    def touches_loop(self) -> bool:
        """True if the capture and the finder must be wrapped (frame numbers, hang, raise)."""
        return bool(self.detector_raise_at or self.detector_nan_at or self.hang_after is not None)


def parse(spec: str | None) -> FaultPlan:
    """Parse a ``MONALISA_FAULT`` spec; an empty or missing spec means no faults.

    Raises:
        FaultSpecError: An item that is not understood (the message names it).
    """
    plan = FaultPlan()
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, *args = item.split(":")
        try:
            if name == "camera_raise_at":
                plan.camera_raise_at.add(int(args[0]))
            elif name == "camera_fail_for":
                plan.camera_fail = (int(args[0]), float(args[1]))
            elif name == "camera_stall_at":
                plan.camera_stall = (int(args[0]), float(args[1]))
            elif name == "camera_hang_at":
                plan.camera_hang_at = int(args[0])
            elif name == "camera_hang_every":
                plan.camera_hang_every = (float(args[0]), float(args[1]))
                if not 0 < plan.camera_hang_every[1] < plan.camera_hang_every[0]:
                    raise ValueError
            elif name == "camera_hang_while":
                plan.camera_hang_while = ":".join(args)
                if not plan.camera_hang_while:
                    raise ValueError
            elif name == "camera_bad_at":
                plan.camera_bad[int(args[0])] = args[1]
            elif name == "detector_raise_at":
                plan.detector_raise_at.add(int(args[0]))
            elif name == "detector_nan_at":
                plan.detector_nan_at.add(int(args[0]))
            elif name == "hang_after":
                plan.hang_after = int(args[0])
            elif name == "leak_per_frame":
                plan.leak_per_frame = int(args[0])
                if plan.leak_per_frame < 0:
                    raise ValueError
            else:
                raise ValueError
        except (ValueError, IndexError):
            raise FaultSpecError(f"{ENV}: cannot understand {item!r}") from None
    return plan


def from_env() -> FaultPlan:
    """The plan from ``$MONALISA_FAULT`` (empty when unset)."""
    return parse(os.environ.get(ENV))


def bad_frame(image: np.ndarray, kind: str) -> np.ndarray:
    """Return a broken version of ``image`` of the given kind (see the module docstring)."""
    if kind == "black":
        return np.zeros_like(image)
    if kind == "white":
        return np.full_like(image, 255)
    if kind == "shape":
        return np.ascontiguousarray(image[:, :, 0])
    if kind == "tiny":
        return image[:1, :1].copy()
    if kind == "truncated":
        return image[: image.shape[0] // 2].copy()
    if kind == "float":
        return image.astype(np.float64) / 255.0
    raise ValueError(f"{ENV}: unknown bad frame kind {kind!r}")


@dataclass
class _CameraCount:
    """What every fresh copy of one faulty camera shares: the frame count and the fault clock."""

    n: int = 0
    fail_until: float | None = None
    next_hang_at: float | None = None
    leaked: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def block_in_read(seconds: float | None) -> None:
    """Block in a real ``read(2)`` on a pipe: for ``seconds`` (a timer then writes), or for good."""
    r, w = os.pipe()
    if seconds is None:
        os.read(r, 1)  # nobody ever writes: blocked until the process ends
        return
    timer = threading.Timer(seconds, os.write, (w, b"x"))
    timer.daemon = True
    timer.start()
    try:
        os.read(r, 1)
    finally:
        timer.join()
        os.close(r)
        os.close(w)


def block_while_fifo(path: str) -> None:
    """While ``path`` exists, block in ``open(2)`` on it (a FIFO: until a writer opens it)."""
    if not os.path.exists(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # removed meanwhile: the camera works again
        return
    os.close(fd)


class FaultySource:
    """Wraps a camera source and injects the plan's camera faults.

    Fresh copies (:meth:`fresh`, for a capture thread started after a stall) share the frame
    count, so a fault at frame N happens once, whichever copy reads frame N.
    """

    def __init__(
        self, inner: CameraSource, plan: FaultPlan, count: _CameraCount | None = None
    ) -> None:
        self.inner = inner
        self.plan = plan
        self.name = inner.name
        self.lossless = inner.lossless
        self._count = count or _CameraCount()

    @property
    def _leaked(self) -> list[bytes]:
        return self._count.leaked

    @property
    def width_fraction(self) -> float:
        """The inner source's (1.0 if it has none)."""
        return float(getattr(self.inner, "width_fraction", 1.0))

    def fresh(self) -> FaultySource | None:
        """A fresh copy of the inner source, faulty in the same plan, counting on.

        None if the inner source cannot be opened twice (picamera2, a webcam).
        """
        inner = self.inner.fresh() if isinstance(self.inner, Refreshable) else None
        return None if inner is None else FaultySource(inner, self.plan, self._count)

    def open(self) -> None:
        """Open the inner source, unless inside a failure window."""
        until = self._count.fail_until
        if until is not None and time.monotonic() < until:
            raise CameraError(f"{self.name}: injected failure (open)")
        self.inner.open()

    def read(self) -> tuple[np.ndarray, float]:
        """Read from the inner source and apply the faults due at this frame."""
        plan, count = self.plan, self._count
        now = time.monotonic()
        with count.lock:
            if count.fail_until is not None and now < count.fail_until:
                raise CameraError(f"{self.name}: injected failure (read)")
            n = count.n
            count.n += 1
            hang_for: float | None = None
            if plan.camera_hang_every is not None:
                every, hang_for = plan.camera_hang_every
                if count.next_hang_at is None:
                    count.next_hang_at = now + every
                if now >= count.next_hang_at:
                    count.next_hang_at = now + every
                else:
                    hang_for = None
            if plan.camera_fail and n == plan.camera_fail[0]:
                count.fail_until = now + plan.camera_fail[1]
                raise CameraError(f"{self.name}: injected failure for {plan.camera_fail[1]} s")
        if n in plan.camera_raise_at:
            raise CameraError(f"{self.name}: injected read error at frame {n}")
        if plan.camera_stall and n == plan.camera_stall[0]:
            time.sleep(plan.camera_stall[1])
        if plan.camera_hang_at == n:
            log.warning("fault injection: the camera read at frame %d hangs for good", n)
            block_in_read(None)
        if hang_for is not None:
            log.info("fault injection: the camera read hangs for %.0f s", hang_for)
            block_in_read(hang_for)
        if plan.camera_hang_while:
            block_while_fifo(plan.camera_hang_while)
        image, t = self.inner.read()
        if plan.leak_per_frame:
            count.leaked.append(os.urandom(plan.leak_per_frame))
        if n in plan.camera_bad:
            image = bad_frame(image, plan.camera_bad[n])
        return image, t

    def close(self) -> None:
        """Close the inner source."""
        self.inner.close()


def nan_face() -> Face:
    """A face whose score and points are NaN, as a broken detector might return."""
    nan = math.nan
    p = Point(nan, nan)
    return Face(Box(nan, nan, nan, nan), nan, (p, p, p, p, p, p))


class FaultyDetector:
    """Wraps the detector the finder uses and injects the plan's detector faults below it.

    On a frame in ``detector_nan_at`` (the loop's :attr:`FaultPlan.frame`), the first detector
    result of that frame that holds a real face gets one extra face whose score, box and
    keypoints are NaN, as a broken model might return. The NaN then goes through everything the
    finder does with detections (mapping to frame pixels, cut test, merge, weighted NMS), not
    just the loop's own check. Every other attribute is the inner detector's.

    Args:
        inner: The real detector.
        plan: The faults; its ``frame`` is read on every call.
    """

    def __init__(self, inner: FaceDetector, plan: FaultPlan) -> None:
        self.inner = inner
        self.plan = plan
        self.injected: list[int] = []
        """Frames a NaN face was added on, in order (for tests)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def detect(self, image: np.ndarray) -> list[Face]:
        """The inner detector's faces, plus a NaN face on a fault frame (once per frame)."""
        faces = self.inner.detect(image)
        n = self.plan.frame
        if faces and n in self.plan.detector_nan_at and n not in self.injected:
            self.injected.append(n)
            faces = [*faces, nan_face()]
        return faces


def wrap_detector(detector: FaceDetector, plan: FaultPlan) -> FaceDetector:
    """``detector`` wrapped in a :class:`FaultyDetector` if the plan has detector faults."""
    return FaultyDetector(detector, plan) if plan.touches_detector else detector


class FaultyCapture(Capture):
    """The capture thread, telling the plan which frame the loop takes, and hanging the loop.

    Each frame the loop takes sets :attr:`FaultPlan.frame` (for :class:`FaultyFinder` and
    :class:`FaultyDetector`). After ``hang_after`` frames, taking the next one never returns a
    frame and blocks until :attr:`stopping` says the loop was asked to stop: the loop makes no
    progress, so it sends no watchdog pings.

    Args:
        plan: The faults.
        source: The camera, as for :class:`~appliance.camera.Capture`.
        **kwargs: The rest of :class:`~appliance.camera.Capture`'s arguments.
    """

    def __init__(self, plan: FaultPlan, source: CameraSource, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.plan = plan
        self.stopping: Callable[[], bool] = lambda: False
        """True once the loop was asked to stop (wired by whoever builds the loop)."""
        self._taken = 0

    def latest(self, timeout: float) -> Frame | None:
        """The inner capture's newest frame, noted in the plan; nothing once the loop hangs."""
        if self.plan.hang_after is not None and self._taken >= self.plan.hang_after:
            log.warning("fault injection: the main loop now hangs")
            while not self.stopping():
                time.sleep(0.05)
            return None
        frame = super().latest(timeout)
        if frame is not None:
            self._taken += 1
            self.plan.frame = frame.seq
        return frame


class FaultyFinder:
    """Wraps the finder and raises on the plan's ``detector_raise_at`` frames.

    Args:
        inner: The real finder.
        plan: The faults; its ``frame`` is read on every call.
    """

    def __init__(self, inner: Finder, plan: FaultPlan) -> None:
        self.inner = inner
        self.plan = plan

    def find(
        self, frame: np.ndarray, follow: Follow | Box | None = None, t: float | None = None
    ) -> FindResult:
        """The inner finder's result, or :class:`InjectedFault` on a fault frame."""
        if self.plan.frame in self.plan.detector_raise_at:
            raise InjectedFault(f"injected detector error at frame {self.plan.frame}")
        return self.inner.find(frame, follow=follow, t=t)

    def set_view(self, view: CameraView) -> None:
        """As the inner finder."""
        self.inner.set_view(view)

    def reset(self) -> None:
        """As the inner finder."""
        self.inner.reset()

    @property
    def band_fraction(self) -> tuple[float, float]:
        """The inner finder's head band, (top, bottom) as fractions of the image height."""
        return self.inner.band_fraction

    @property
    def band_source(self) -> str:
        """The inner finder's band source."""
        return self.inner.band_source


def wrap_finder(finder: Finder, plan: FaultPlan) -> Finder | FaultyFinder:
    """``finder`` wrapped in a :class:`FaultyFinder` if the plan raises in it."""
    return FaultyFinder(finder, plan) if plan.detector_raise_at else finder


def hooks(plan: FaultPlan) -> runner.PartHooks:
    """The runner's part hooks that inject ``plan`` (each part as built where it has no fault)."""

    def wire(app: App, capture: Capture) -> None:
        if isinstance(capture, FaultyCapture):
            capture.stopping = lambda: app.stop_requested

    return runner.PartHooks(
        source=(lambda s: FaultySource(s, plan)) if plan.touches_camera else lambda s: s,
        capture=functools.partial(FaultyCapture, plan) if plan.touches_loop else None,
        detector=lambda d: wrap_detector(d, plan),
        finder=lambda f: wrap_finder(f, plan),
        wire=wire,
    )


def main(argv: list[str] | None = None) -> int:
    """``monalisa`` with the faults of ``$MONALISA_FAULT``: exit 2 if the spec is not understood."""
    try:
        plan = from_env()
    except FaultSpecError as err:
        print(f"monalisa: {err}", file=sys.stderr)
        return 2
    runner.PART_HOOKS = hooks(plan)
    return cli.main(argv)
