"""The main loop: newest camera frame → find faces → gaze → draw, with status and trace.

The loop never dies on a bad camera frame, a missing face or a transient error: each is counted,
logged at most once per interval, and the portrait stays on screen in whatever gaze state the
filter reaches (the eyes ease back to rest while the camera is away). Camera frames exist only in
memory; the trace records numbers (boxes, scores, eye points), never pixels.

Outside opening hours (:mod:`appliance.hours`) the camera thread is stopped, so no frame is
read and the detector does not run; the screen is black or the portrait at rest, and the loop
wakes four times a second only to poll the clock, feed the watchdog and write the status.

Progress is reported to systemd from this loop only: ``WATCHDOG=1`` is sent when an iteration
completes, so a loop that hangs stops the pings and systemd restarts the service. The loop also
supervises the camera thread (:meth:`appliance.camera.Capture.supervise`): when the camera
cannot be recovered in the process, it logs one line and ends with :data:`EX_TEMPFAIL`, so that
``Restart=always`` starts a fresh process with a fresh camera stack.

Nothing that can wait on something outside the process runs on this loop: the status file's
write and its probes (``vcgencmd``) go to a :class:`~appliance.worker.Worker`, and the
monitor's ``cec-ctl`` commands to the opening hours' own (:mod:`appliance.hours`); their
results come back as values on a later iteration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import numpy as np

from appliance import __version__
from appliance.camera import Capture, Frame
from appliance.config import CameraConfig
from appliance.display.overlay import Overlay
from appliance.finder import FindResult
from appliance.gaze import GazeRecord
from appliance.gaze.blink import BlinkClock, lid_phase
from appliance.hours import Hours
from appliance.loglimit import LogLimiter
from appliance.optics import CameraView
from appliance.rate import rate_per_s
from appliance.schedule import describe
from appliance.status import BEHIND_FRACTION, CameraStatus, FinderStatus, LoadStatus, Status
from appliance.trace import TraceLine, TraceWriter
from appliance.types import Face, Follow
from appliance.worker import Worker

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75
"""Exit status when the camera cannot be recovered in the process (sysexits.h
``EX_TEMPFAIL``): systemd restarts the appliance; not 78, which it would not restart."""

LOAD_WINDOW_S = 60.0
"""The status's detector load is averaged over this many seconds."""

STATUS_DRAIN_S = 2.0
"""At shutdown, the longest wait for a status write still on the worker, seconds."""


class FinderLike(Protocol):
    """What the loop needs of the finder (see :mod:`appliance.finder`)."""

    def find(
        self, frame: np.ndarray, follow: Follow | None = None, t: float | None = None
    ) -> FindResult:
        """The faces in ``frame`` (H×W×3 uint8 RGB, taken at ``t`` s) and where it looked."""

    def set_view(self, view: CameraView) -> None:
        """Use this view of the camera (its field of view, for the band) from now on."""

    def reset(self) -> None:
        """Forget what it followed (the camera was reopened, or the gallery was closed)."""

    @property
    def band_fraction(self) -> tuple[float, float]:
        """The head band in use, (top, bottom) as fractions of the image height."""

    @property
    def band_source(self) -> str:
        """Where that band came from: "config", "geometry" or "learned"."""


class GazeLike(Protocol):
    """What the loop needs of the gaze model (see :mod:`appliance.gaze`)."""

    def update(self, faces: Sequence[Face], t: float, image_size: tuple[int, int]) -> GazeRecord:
        """Take one camera frame's faces at time ``t`` (s); return where the portrait looks."""

    def set_view(self, view: CameraView) -> None:
        """Use this view of the camera (its field of view) from now on."""


class DisplayLike(Protocol):
    """What the loop needs of the display (see :mod:`appliance.display`)."""

    def show(self, index: int, now: float) -> bool:
        """Draw frame ``index`` if it is not already shown; True if it drew."""

    def drawn_for(self, index: int) -> int:
        """The frame drawn for frame ``index`` (another while its patch is not rendered yet)."""

    def poll(self) -> list[str]:
        """Return pending user actions (``quit``, ``toggle_debug``)."""

    @property
    def debug(self) -> bool:
        """Whether the debug overlay is shown (its figures are only built then)."""

    def set_overlay(self, info: Overlay | None) -> None:
        """Give the debug overlay this camera frame's figures."""

    def blank(self) -> None:
        """Fill the screen with black (the gallery is closed); the next show() redraws."""

    def screenshot(self, path: str | Path) -> None:
        """Save the screen as PNG."""

    def close(self) -> None:
        """Release the screen."""


class NotifierLike(Protocol):
    """What the loop needs of the service manager link (see :mod:`appliance.service`)."""

    def ready(self) -> None:
        """Start-up is done (``READY=1``): systemd counts the service as started."""

    def watchdog(self) -> None:
        """The loop is alive (``WATCHDOG=1``): called every iteration, sent at its own rate."""

    def status(self, text: str) -> None:
        """One line for ``systemctl status`` (``STATUS=``), e.g. "closed until Tue 10:00"."""

    def stopping(self) -> None:
        """The loop is ending (``STOPPING=1``)."""


@dataclass
class Stats:
    """Running figures for the status file (reset windows are in seconds)."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    draws: int = 0
    errors: int = 0
    bad_frames: int = 0
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    detector_load: deque[tuple[float, int, float]] = field(
        default_factory=lambda: deque(maxlen=8192)
    )
    """(time, inferences, detector ms) of each frame of the last minute or so."""
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=240))
    draw_times: deque[float] = field(default_factory=lambda: deque(maxlen=240))
    viewer_seen: dict[int, float] = field(default_factory=dict)
    faces_seen: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    last_viewer_at: float | None = None
    last_error: str | None = None


@dataclass
class RunOptions:
    """Per-run choices from the command line.

    Attributes:
        trace: Write one JSON line per processed camera frame here (None: no trace).
        duration_s: Stop after this many seconds of wall time (None: run until stopped).
        screenshot: Save what is on screen here when the run ends.
        status_interval_s: Seconds between status updates.
        closed_sleep_s: While closed, seconds the loop sleeps between two iterations (it
            wakes to poll the clock, feed the watchdog and write the status).
    """

    trace: Path | None = None
    duration_s: float | None = None
    screenshot: Path | None = None
    status_interval_s: float = 1.0
    closed_sleep_s: float = 0.25


def check_frame(image: Any) -> str | None:
    """Return why a camera frame cannot be used, or None if it is a usable RGB image."""
    if not isinstance(image, np.ndarray):
        return f"not an array ({type(image).__name__})"
    if image.dtype != np.uint8:
        return f"dtype {image.dtype}, expected uint8"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"shape {image.shape}, expected H×W×3"
    if image.shape[0] < 16 or image.shape[1] < 16:
        return f"size {image.shape[1]}×{image.shape[0]} is too small"
    return None


class FrameGrid(Protocol):
    """Frames addressed by (gaze, row, lid phase): :class:`appliance.frames.Manifest`."""

    @property
    def rest_row(self) -> int:
        """The row shown at rest."""
        ...

    @property
    def pitches(self) -> tuple[float, ...]:
        """Each row's vertical gaze, degrees."""
        ...

    @property
    def lid_phases(self) -> tuple[float, ...]:
        """Each lid phase, 0 open .. 1 shut."""
        ...

    def index(self, gaze: int, row: int = 0, lid: int = 0) -> int:
        """The frame index of ``(gaze, row, lid phase)``."""
        ...

    def place(self, i: int) -> tuple[int, int, int]:
        """``(gaze, row, lid phase)`` of frame index ``i``."""
        ...


class App:
    """The appliance's main loop; built and wired by :mod:`appliance.cli`.

    Args:
        capture: The camera thread (not yet started).
        finder: Runs the detector on the right parts of each frame.
        gaze: Turns faces into the frame index to show.
        display: Draws the portrait.
        notifier: systemd notifications (a no-op outside systemd).
        rest_index: The gaze shown before the first camera frame (its frame index when the set
            is one row of open eyes).
        frame_count: Number of gazes of the portrait (for the trace).
        options: Trace, duration, screenshot, status interval.
        status_sink: Called about once per ``status_interval_s`` with the status, on a
            worker thread (it writes a file and runs probes: nothing the loop may wait for);
            a call still running when the next status is due makes that one wait, and a
            newer one replaces it.
        handed_over_at: When an earlier process exited for a fresh camera stack (Unix time,
            s; from its status file), or None: the status keeps it until the camera delivers.
        grid: The frame set's grid of (gaze, row, lid phase) (:class:`appliance.frames.Manifest`),
            mapping the gaze chosen to the frame shown; None: the gaze index is the frame's.
        blink: The blink clock (lid phases of ``grid``); None: the eyes stay open.
        view: What the camera is expected to show (the runner's, from the configuration; the
            finder and the gaze were built with it). When the opened camera reports another
            sensor crop (at its first frame, or after a reopening) the loop hands a new view to
            both. None: a default ``[camera]``'s.
        hours: The opening hours to follow; None: always open. While closed the camera
            thread is stopped (no frame is read, the detector does not run), the screen is
            black or the portrait at rest, and the loop sleeps between status updates.
    """

    def __init__(
        self,
        *,
        capture: Capture,
        finder: FinderLike,
        gaze: GazeLike,
        display: DisplayLike,
        notifier: NotifierLike,
        rest_index: int,
        frame_count: int,
        options: RunOptions,
        status_sink: Callable[[Status], None] | None = None,
        hours: Hours | None = None,
        handed_over_at: float | None = None,
        grid: FrameGrid | None = None,
        blink: BlinkClock | None = None,
        view: CameraView | None = None,
    ) -> None:
        self.hours = hours
        self.grid = grid
        self.blink = blink
        self.row = 0 if grid is None else grid.rest_row
        self.pitch_shown = 0.0 if grid is None else grid.pitches[self.row]
        self.lids_shown = 0.0
        # The frame on screen for the one asked (gaze index, pitch, lids): the nearest frame
        # rendered while the asked one's patch is not (the patches are rendered after READY).
        self.drawn = (rest_index, self.pitch_shown, 0.0)
        self._angle = 0.0
        self.handed_over_at = handed_over_at
        self.capture = capture
        self.finder = finder
        self.gaze = gaze
        self.display = display
        self.notifier = notifier
        self.rest_index = rest_index
        self.frame_count = frame_count
        self.options = options
        self.status_sink = status_sink
        self._chores = Worker("monalisa-status")
        self.stats = Stats()
        self.problems = LogLimiter(log)
        self.index = rest_index
        self.state = "idle"
        self.follow: Follow | None = None  # for the finder, from the gaze's viewer tracks
        self._stop_reason: str | None = None
        self._exit_status = 0
        self._opening = 0  # the camera opening the last processed frame came from
        self._trace: TraceWriter | None = None
        self._last_frame_t = 0.0
        self._last_frame_wall = time.monotonic()
        self._image_size = (640, 480)
        self.view = CameraView.expected(CameraConfig()) if view is None else view
        self._last_status = 0.0
        self._last_idle_update = 0.0
        self._behind_since: float | None = None
        self.last_record: GazeRecord | None = None

    def _follow(self, rec: GazeRecord) -> None:
        """Take the row and the angle (for the blink clock) of a gaze update."""
        g = self.grid
        if g is not None and len(g.pitches) > 1 and 0 <= rec.row < len(g.pitches):
            self.row = rec.row
        self._angle = rec.angle

    def _show(self, gaze: int, now: float, t: float | None = None) -> bool:
        """Show the frame of ``gaze`` in the current row, the lids where the blink clock says.

        The blink clock never changes ``gaze``: it picks only the lid phase of its frame. It
        runs on the gaze's clock, the camera frames' time (a replay clip's own time, which the
        trace records): ``t``, or between frames the last frame's time plus the wall time
        since it was shown.
        """
        g = self.grid
        if g is None:
            drew = self.display.show(gaze, now)
            self.drawn = (self.display.drawn_for(gaze), 0.0, 0.0)
            return drew
        lid = 0
        phases = g.lid_phases
        if self.blink is not None and len(phases) > 1:
            if t is None:
                t = self._last_frame_t + (now - self._last_frame_wall)
            closed = self.blink.update(t, self.state == "tracking", self._angle)
            lid = lid_phase(closed, phases)
        self.pitch_shown, self.lids_shown = g.pitches[self.row], phases[lid]
        frame = g.index(gaze, self.row, lid)
        drew = self.display.show(frame, now)
        drawn_gaze, drawn_row, drawn_lid = g.place(self.display.drawn_for(frame))
        self.drawn = (drawn_gaze, g.pitches[drawn_row], phases[drawn_lid])
        return drew

    # -- control --------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        """True once a stop was asked for (the loop ends after its iteration)."""
        return self._stop_reason is not None

    def request_stop(self, reason: str) -> None:
        """Ask the loop to finish its iteration and stop (safe from a signal handler)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the loop; SIGHUP is logged and ignored (restart to reload).

        After the first SIGTERM, SIGTERM is ignored until the process has exited.
        """

        def stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)
            if signum == signal.SIGTERM:
                # A stop is under way; a second SIGTERM (systemd and an impatient technician)
                # must not kill the process while it exits: the interpreter puts the default
                # action back for its own handlers as it shuts down, but not for an ignored
                # signal. SIGINT stays: a second Ctrl-C still interrupts a stop that hangs.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)

        def hup(_signum: int, _frame: FrameType | None) -> None:
            log.info("SIGHUP: configuration is read at start-up; restart the service to reload")

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped, the duration ends or a replay clip ends; return the exit status.

        Returns:
            0 on a clean stop; :data:`EX_TEMPFAIL` when the camera could not be recovered.
        """
        start = time.monotonic()
        if self.options.trace is not None:
            self._trace = TraceWriter(self.options.trace)
        try:
            self._show(self.rest_index, start)
            self.stats.draw_times.append(start)
            if not self._follow_hours(start):
                self.capture.start()
            self.notifier.ready()
            log.info("monalisa %s running: camera %s", __version__, self.capture.source.name)
            seq = 0
            while self._stop_reason is None:
                now = time.monotonic()
                for action in self.display.poll():
                    if action == "quit":
                        self.request_stop("quit key")
                if self._follow_hours(now):
                    self._closed_tick(now, start)
                    continue
                if self._camera_lost(now):
                    break
                frame = self.capture.latest(timeout=0.02)
                if frame is not None:
                    self._process(frame, seq)
                    seq += 1
                else:
                    if self.capture.ended:
                        self.request_stop("end of replay")
                        break
                    self._idle_tick(now)
                    if self._show(self.index, now):
                        self.stats.draw_times.append(now)
                self._tick(now)
                if self.options.duration_s is not None and now - start >= self.options.duration_s:
                    self.request_stop("duration reached")
        finally:
            self._shutdown()
        return self._exit_status

    def _camera_lost(self, now: float) -> bool:
        """Supervise the camera; True (and the loop ends with EX_TEMPFAIL) if it is lost."""
        self.capture.supervise(now)
        reason = self.capture.hand_over
        if reason is None:
            return False
        log.error("%s: exiting so that systemd restarts the appliance", reason)
        self.handed_over_at = time.time()
        self._exit_status = EX_TEMPFAIL
        self.request_stop("camera lost")
        return True

    # -- opening hours -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True while the gallery is closed (the camera is stopped)."""
        return self.hours is not None and not self.hours.is_open

    def _follow_hours(self, now: float) -> bool:
        """Poll the opening hours; close or reopen on a change. True while closed."""
        if self.hours is None:
            return False
        try:
            change = self.hours.poll(now)
        except Exception as err:  # a schedule bug must not stop the portrait: stay as is
            self._error("schedule", f"opening hours: {err!r}")
            return self.closed
        if change == "close":
            self._close(now)
        elif change == "open":
            self._reopen(now)
        return self.closed

    def _close(self, now: float) -> None:
        """The gallery closed: stop the camera (and so the detector), blank or rest the screen."""
        assert self.hours is not None
        self.capture.stop()
        self.index, self.state, self.follow = self.rest_index, "closed", None
        self.row = self.row if self.grid is None else self.grid.rest_row
        if self.hours.look == "rest":
            self._show(self.rest_index, now)
        else:
            self.display.blank()
        self.stats.draw_times.append(now)
        log.info(
            "closed: camera stopped, screen %s; %s",
            self.hours.look,
            self._schedule_text(),
        )

    def _reopen(self, now: float) -> None:
        """The gallery opened: the portrait at rest, the camera started again."""
        self.state = "idle"
        self.index = self.rest_index
        self._last_frame_wall = now
        self.finder.reset()  # the evening's follow memory is no use in the morning
        if self._show(self.rest_index, now):
            self.stats.draw_times.append(now)
        self.capture.start()
        log.info("open: camera started; %s", self._schedule_text())

    def _schedule_text(self) -> str:
        """The opening-hours state in words, e.g. "closed until Tue 10:00" ("open" if unknown)."""
        assert self.hours is not None
        state = self.hours.state
        if state is None:
            return "open"
        return describe(state, self.hours.wall_clock())

    def _closed_tick(self, now: float, start: float) -> None:
        """One iteration while closed: the screen kept, watchdog and status, then a sleep."""
        if self.hours is not None and self.hours.look == "rest":
            self._show(self.rest_index, now)  # completes a cross-fade to rest
        self._tick(now)
        if self.options.duration_s is not None and now - start >= self.options.duration_s:
            self.request_stop("duration reached")
            return
        time.sleep(self.options.closed_sleep_s)

    def _overlay(
        self,
        faces: list[Face],
        result: FindResult | None,
        rec: GazeRecord | None,
        now: float,
    ) -> Overlay:
        """The debug overlay's figures for this camera frame (result/rec None when they failed)."""
        return Overlay(
            fps=round(rate_per_s(self.stats.frame_times, now), 1),
            image_size=self._image_size,
            faces=tuple(faces),
            viewer=None if rec is None else rec.viewer_box,
            state="" if rec is None else rec.state,
            regions=() if result is None else tuple(result.regions),
            band=None if result is None else result.band,
            tiles=() if result is None else tuple(result.tiles),
            follow=None if result is None else result.follow,
        )

    def _idle_tick(self, now: float) -> None:
        """Without camera frames, keep the gaze clock running so the eyes ease to rest."""
        if self.capture.state == "running" or now - self._last_idle_update < 0.1:
            return
        self._last_idle_update = now
        t = self._last_frame_t + (now - self._last_frame_wall)
        try:
            rec = self.gaze.update([], t, self._image_size)
        except Exception as err:
            self._error("gaze", f"gaze update failed: {err!r}")
            return
        self.index, self.state = rec.index, rec.state
        self._follow(rec)
        self.last_record = rec

    def _process(self, frame: Frame, seq: int) -> None:
        """One camera frame through finder, gaze and display, then its trace line and figures.

        A frame that cannot be used (:func:`check_frame`) or a finder that raises counts as
        "no face" for the gaze and is logged (rate-limited): the loop goes on. ``seq`` is the
        loop's own frame count, which the trace numbers its lines by (gap-free).
        """
        picked = time.monotonic()
        capture_ms = (picked - frame.arrived) * 1000.0
        if frame.opening != self._opening:  # the camera was reopened: a new view of the room
            if self._opening:
                self.finder.reset()
                # A new view of the room: the viewer's last step and the faces that were not
                # the viewer are not followed into it.
                f = self.follow
                self.follow = None if f is None or not f.viewer else Follow(f.box)
            self._opening = frame.opening
        faces: list[Face] = []
        inferences = 0
        result: FindResult | None = None
        problem = check_frame(frame.image)
        t0 = time.perf_counter()
        if problem is not None:
            self.stats.bad_frames += 1
            self._error("bad_frame", f"camera frame {frame.seq} ignored: {problem}")
        else:
            self._image_size = (frame.image.shape[1], frame.image.shape[0])
            view = self.view.seen(width_fraction=self.capture.width_fraction)
            if view is not self.view:  # the opened camera crops otherwise than expected
                self.view = view
                self.gaze.set_view(view)
                self.finder.set_view(view)  # a band from camera_height_m follows
                log.info(
                    "camera shows %.0f %% of its sensor's width: field of view %.1f°",
                    100 * view.width_fraction,
                    view.hfov_deg,
                )
            try:
                result = self.finder.find(frame.image, follow=self.follow, t=frame.t)
                faces = result.faces  # checked by the finder (UsableFaces): not again
                inferences = int(result.inferences)
                if result.dropped:
                    self._error("nan", f"detector returned {result.dropped} bad faces")
            except Exception as err:
                self._error("detect", f"detector failed on frame {frame.seq}: {err}")
        t1 = time.perf_counter()
        try:
            rec = self.gaze.update(faces, frame.t, self._image_size)
            self.index, self.state = rec.index, rec.state
            self._follow(rec)
            self.follow = rec.follow
            self.last_record = rec
        except Exception as err:
            rec = None
            self._error("gaze", f"gaze update failed: {err!r}")
        t2 = time.perf_counter()
        now = time.monotonic()
        if self.display.debug:
            try:
                self.display.set_overlay(self._overlay(faces, result, rec, now))
            except Exception as err:
                self._error("overlay", f"overlay failed: {err!r}")
        drew = self._show(self.index, now, frame.t)
        t3 = time.perf_counter()
        shown = time.monotonic()
        self._last_frame_t, self._last_frame_wall = frame.t, shown
        st = self.stats
        st.frames += 1
        st.frame_times.append(shown)
        if drew:
            st.draw_times.append(shown)
        detect_ms = (t1 - t0) * 1000.0
        if inferences:  # frames the cadence skipped are not detector timings
            st.detect_ms.append(detect_ms)
        st.detector_load.append((shown, inferences, detect_ms))
        if faces:
            st.faces_seen.append(shown)
        if rec is not None and rec.viewer is not None:
            st.viewer_seen[int(rec.viewer)] = shown
            st.last_viewer_at = shown
        if self._trace is not None:
            self._write_trace(
                frame,
                seq,
                faces,
                rec,
                inferences,
                {
                    "capture": capture_ms,
                    "detect": detect_ms,
                    "gaze": (t2 - t1) * 1000.0,
                    "draw": (t3 - t2) * 1000.0,
                    "latency": (shown - frame.arrived) * 1000.0,
                },
            )

    def _write_trace(
        self,
        frame: Frame,
        seq: int,
        faces: list[Face],
        rec: GazeRecord | None,
        inferences: int,
        ms: dict[str, float],
    ) -> None:
        """Append this frame's trace line: faces, gaze, inferences run, per-stage ms."""
        assert self._trace is not None
        try:
            line = TraceLine.of(
                t=frame.t,
                seq=seq,
                faces=faces,
                viewer=None if rec is None else rec.viewer,
                angle_raw=None if rec is None else rec.angle_raw,
                angle=None if rec is None else rec.angle,
                index=self.index,
                frame_count=self.frame_count,
                state=self.state,
                inferences=inferences,
                camera=self.capture.state,
                ms=ms,
                pitch=self.pitch_shown,
                lids=self.lids_shown,
                drawn=self.drawn,
            )
        except ValueError as err:
            self._error("trace_line", f"trace line for frame {frame.seq} not written: {err}")
            return
        try:
            self._trace.write(line)
        except OSError as err:
            self._drop_trace(err)

    def _drop_trace(self, err: OSError) -> None:
        """The trace cannot be written (disk full...): say so once, stop tracing, go on."""
        trace, self._trace = self._trace, None
        if trace is not None:
            with contextlib.suppress(OSError):
                trace.close()
        self._error("trace", f"cannot write the trace {self.options.trace}: {err}; trace stopped")

    def _error(self, key: str, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        self.problems.warning(key, "%s", message)

    # -- once a second ---------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        if self._stop_reason is None:  # once stopping, STOPPING=1 follows, not pings
            self.notifier.watchdog()  # the notifier keeps the pings to its own rate
        if now - self._last_status < self.options.status_interval_s:
            return
        self._last_status = now
        if self._trace is not None:
            try:
                self._trace.flush()
            except OSError as err:
                self._drop_trace(err)
        try:
            status = self.status(now)
        except ValueError as err:
            self._error("status", f"cannot make the status: {err}")
            return
        self.notifier.status(self._status_line(status))
        self._collect_chores()
        sink = self.status_sink
        if sink is not None:
            self._chores.submit("status", lambda: sink(status))

    def _collect_chores(self) -> None:
        """Log the status writes that failed on the worker (rate-limited); never blocks."""
        for done in self._chores.done():
            if done.error is not None:
                self._error("status", f"cannot write the status: {done.error}")

    @staticmethod
    def _status_line(status: Status) -> str:
        """The ``STATUS=`` text systemd shows in ``systemctl status``."""
        hours = status.schedule
        if hours is not None and not hours.open:
            return f"{hours.text}, screen {hours.screen}, camera {status.camera.state}"
        viewers = status.viewers_last_minute
        return (
            f"{status.gaze_state}, {status.loop_fps:.1f} fps, camera {status.camera.state}, "
            f"{viewers} viewer{'s' if viewers != 1 else ''} in the last minute"
        )

    def status(self, now: float | None = None) -> Status:
        """The figures for the status file and ``STATUS=``.

        Raises:
            ValueError: A figure is not finite (the status is not made).
        """
        now = time.monotonic() if now is None else now
        st = self.stats
        cap = self.capture
        for vid, seen in list(st.viewer_seen.items()):
            if now - seen > 60:
                del st.viewer_seen[vid]
        frame_age = None if cap.last_frame_at is None else now - cap.last_frame_at
        if cap.state == "running" and self._exit_status != EX_TEMPFAIL:
            self.handed_over_at = None  # the camera delivers again
        failed_for = None if cap.failed_since is None else now - cap.failed_since
        return Status(
            version=__version__,
            pid=os.getpid(),
            uptime_s=round(now - st.started, 1),
            camera=CameraStatus(
                source=cap.source.name,
                state=cap.state,
                fps=round(cap.fps, 2),
                last_frame_age_s=None if frame_age is None else round(frame_age, 2),
                failed_for_s=None if failed_for is None else round(failed_for, 1),
                failures=cap.failures,
                stalls=cap.stalls,
                reopens=cap.reopens,
                stuck_reads=cap.stuck_reads,
                handed_over_at=None
                if self.handed_over_at is None
                else round(self.handed_over_at, 1),
                last_error=cap.last_error,
                sensor_width_fraction=round(self.view.width_fraction, 4),
                hfov_deg=None if self.view.width_fraction >= 1.0 else round(self.view.hfov_deg, 2),
            ),
            finder=FinderStatus(
                band=[round(v, 3) for v in self.finder.band_fraction],
                band_source=self.finder.band_source,
            ),
            detector_ms=round(statistics.median(st.detect_ms), 2) if st.detect_ms else None,
            load=self._load(now),
            loop_fps=round(rate_per_s(st.frame_times, now), 2),
            display_fps=round(rate_per_s(st.draw_times, now), 2),
            frame_index=self.index,
            drawn_index=self.drawn[0],
            frame_count=self.frame_count,
            gaze_state=self.state,
            viewers_last_minute=len(st.viewer_seen),
            faces_frames_last_minute=sum(1 for t in st.faces_seen if now - t <= 60),
            last_viewer_age_s=None
            if st.last_viewer_at is None
            else round(now - st.last_viewer_at, 1),
            frames=st.frames,
            bad_frames=st.bad_frames,
            errors=st.errors,
            last_error=st.last_error,
            schedule=None
            if self.hours is None
            else self.hours.status(
                now, st.started if st.last_viewer_at is None else st.last_viewer_at
            ),
        )

    def _load(self, now: float) -> LoadStatus:
        """Detector load over the last minute, and how long the loop has been behind."""
        st = self.stats
        recent = [(t, n, ms) for t, n, ms in st.detector_load if now - t <= LOAD_WINDOW_S]
        span = min(LOAD_WINDOW_S, max(now - st.started, 1e-3))
        loop, camera = rate_per_s(st.frame_times, now), self.capture.fps
        behind = self.capture.state == "running" and loop < BEHIND_FRACTION * camera
        if not behind:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = now
        return LoadStatus(
            inferences_per_s=round(sum(n for _, n, _ in recent) / span, 2),
            detector_ms_per_s=round(sum(ms for _, _, ms in recent) / span, 1),
            behind_for_s=0.0 if self._behind_since is None else round(now - self._behind_since, 1),
        )

    def _shutdown(self) -> None:
        reason = self._stop_reason or "error"
        log.info("stopping: %s", reason)
        self.notifier.stopping()
        if not self._chores.close(timeout_s=STATUS_DRAIN_S):
            log.warning("the last status write did not finish within %g s", STATUS_DRAIN_S)
        self._collect_chores()
        self.capture.stop()
        if self.hours is not None:
            self.hours.close()
        if self.options.screenshot is not None:
            try:
                self.display.screenshot(self.options.screenshot)
            except Exception as err:
                text = str(err)
                if str(self.options.screenshot) not in text:
                    text = f"cannot save the screenshot {self.options.screenshot}: {text}"
                log.error("%s", text)
        if self._trace is not None:
            try:
                self._trace.close()
            except OSError as err:
                self._drop_trace(err)
            self._trace = None
        self.display.close()
