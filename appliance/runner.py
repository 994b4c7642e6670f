"""Builds and wires the appliance for ``monalisa run`` and ``monalisa demo``.

This is the only place the live objects (camera, detector, finder, gaze, frame set, display,
systemd link, status writer) are created and connected; :mod:`appliance.app` only runs them.

Exit statuses: 0 clean stop (also a SIGTERM/SIGINT during start-up); 2 for ``demo``, no demo
clip; 69 (EX_UNAVAILABLE) the display
cannot be used in this process (no ``DISPLAY`` for a window), or, for ``demo``, cannot be
opened; 75 (EX_TEMPFAIL, from the running loop) the camera cannot be recovered in the process —
systemd restarts it; 78 (EX_CONFIG) bad configuration (from the file or a command-line override
such as ``--camera foo``), frame set or model — systemd does not restart-loop on it.
Command-line syntax errors exit 2 from argparse before this module runs. Each build step
raises; :func:`_exit_statuses` is the one table from error to exit status. :data:`PART_HOOKS`
may wrap the parts as they are built: nothing in the product sets it (the test suite's fault
injection, ``tests/support/faults.py``, does through its own entry point).

A screen that is not there yet (the monitor switched on after the Pi, an X server not yet up)
is waited for in the process by ``monalisa run`` (:func:`_open_display`): it is tried again with
backoff while ``READY=1`` and ``WATCHDOG=1`` tell systemd the process is alive, ``STATUS=`` and
the status file (``screen_wait``) say what it waits for, and ``monalisa health`` warns. Exiting
instead would run into systemd's start limit and leave the portrait off for the day.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from appliance.config import EX_CONFIG, Config, ConfigError, load_config

if TYPE_CHECKING:
    from appliance.app import App, FinderLike, NotifierLike
    from appliance.camera import CameraSource, Capture
    from appliance.display import Display
    from appliance.finder import FaceDetector, Finder
    from appliance.hours import Hours
    from appliance.service import Notifier
    from appliance.status import ScreenWait, Status

log = logging.getLogger("monalisa")

EX_UNAVAILABLE = 69
"""The display cannot be used (sysexits.h ``EX_UNAVAILABLE``); systemd retries."""

SCREEN_RETRY_FIRST_S = 1.0
"""Seconds before the second attempt to open a screen that is not there yet."""

SCREEN_RETRY_MAX_S = 5.0
"""The longest wait between two attempts to open the screen, seconds (each failure doubles it)."""

SCREEN_TICK_S = 0.25
"""While waiting for the screen: seconds between two looks at stop requests and the watchdog."""

DEMO_CLIP = Path(__file__).resolve().parent / "data" / "demo"
"""The bundled demo clip (package data; ``make clip`` rebuilds it)."""


def _as_built(part: Any) -> Any:
    return part


def _no_wiring(app: App, capture: Capture) -> None:
    return None


@dataclass(frozen=True)
class PartHooks:
    """Wrappers around the parts :func:`run` builds, applied as each is built.

    The product sets none (every hook returns the part as built); the test suite's fault
    injection sets them through its own entry point, so the installed ``monalisa`` cannot be
    made to fail on purpose.

    Attributes:
        source: The camera source, before the capture opens it.
        capture: Builds the capture thread from the source and
            :class:`~appliance.camera.Capture`'s keyword arguments; None: ``Capture`` itself.
        detector: Each detector the finder uses (the main one and the follow crop's).
        finder: The finder, before the loop gets it.
        wire: Called with the built loop and its capture, before the loop runs.
    """

    source: Callable[[CameraSource], CameraSource] = _as_built
    capture: Callable[..., Capture] | None = None
    detector: Callable[[FaceDetector], FaceDetector] = _as_built
    finder: Callable[[Finder], FinderLike] = _as_built
    wire: Callable[[App, Capture], None] = _no_wiring


PART_HOOKS = PartHooks()
"""The hooks :func:`run` applies (the test suite's entry point replaces them)."""


def _fail(message: str, status: int) -> int:
    print(f"monalisa: {message}", file=sys.stderr)
    return status


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """Return ``config`` with the command-line overrides applied (validated like the file).

    Raises:
        ConfigError: An override has an invalid value.
    """
    data = config.model_dump()
    if getattr(args, "camera", None):
        data["camera"]["source"] = args.camera
    if getattr(args, "display", None):
        data["display"]["driver"] = args.display
    if getattr(args, "frames", None):
        data["frames"]["directory"] = args.frames
    if getattr(args, "replay_speed", None):
        data["camera"]["replay_speed"] = args.replay_speed
    if getattr(args, "status_file", None):
        data["service"]["status_file"] = args.status_file
    from appliance.config import parse_config

    return parse_config(data, "command line")


def run_from_args(args: argparse.Namespace) -> int:
    """``monalisa run``: load the config, build everything, run the loop.

    Logging starts at INFO (DEBUG with ``--verbose``) for the config's own errors, then
    follows ``[service] log_level``; ``--verbose`` always wins and logs at DEBUG.
    """
    from appliance.service import setup_logging

    verbose = bool(getattr(args, "verbose", False))
    setup_logging(logging.DEBUG if verbose else logging.INFO)
    try:
        config = apply_overrides(load_config(args.config), args)
    except ConfigError as err:
        return err.report()
    setup_logging(logging.DEBUG if verbose else config.service.log_level)
    return run(
        config,
        config_path=args.config,
        trace=Path(args.trace) if args.trace else None,
        duration_s=args.duration,
        screenshot=Path(args.screenshot) if args.screenshot else None,
        debug_overlay=bool(getattr(args, "debug_overlay", False)),
        wait_for_screen=True,
    )


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], Any] | int | None


def _catch_early_stop(requested: list[str]) -> dict[int, _Handler]:
    """Make SIGTERM/SIGINT only record a stop request until the App installs its handlers.

    Loading the model, the frames and the display takes seconds; a stop asked for meanwhile
    ends the start-up cleanly (exit 0) instead of killing the process. SIGHUP is logged and
    ignored, as the App does once it runs (the configuration is read at start-up only).
    Signals can only be caught on the main thread; elsewhere nothing is installed.

    Args:
        requested: Receives the first stop signal's name (``"SIGTERM"``, ``"SIGINT"``).

    Returns:
        The handlers replaced, to put back if the App never takes over.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not requested:
            requested.append(signal.Signals(signum).name)

    def hup(_signum: int, _frame: FrameType | None) -> None:
        log.info("SIGHUP during start-up: ignored (restart the service to reload)")

    previous = {int(sig): signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    previous[int(signal.SIGHUP)] = signal.signal(signal.SIGHUP, hup)
    return previous


class StoppedDuringStartup(Exception):
    """SIGTERM or SIGINT arrived while the appliance was being built (a clean stop)."""


class SettingError(ValueError):
    """A setting the configuration accepted but the object built from it refused."""


def _exit_statuses() -> tuple[tuple[type[Exception], int], ...]:
    """What each start-up error means for the process: the one table of exit statuses.

    Anything not listed is a bug: it reaches :func:`appliance.cli.main`, which exits 1.
    """
    from appliance.detector import DetectorError
    from appliance.display import DisplayError
    from appliance.frames import FrameSetError

    return (
        (StoppedDuringStartup, 0),
        (FrameSetError, EX_CONFIG),
        (DetectorError, EX_CONFIG),
        (SettingError, EX_CONFIG),
        (DisplayError, EX_UNAVAILABLE),
    )


def run(
    config: Config,
    *,
    config_path: str | None = None,
    trace: Path | None = None,
    duration_s: float | None = None,
    screenshot: Path | None = None,
    debug_overlay: bool = False,
    wait_for_screen: bool = False,
) -> int:
    """Build the appliance from ``config`` and run it until it stops.

    Args:
        config: The validated configuration.
        config_path: Where it came from (reported in the status file).
        trace: Trace JSONL path, or None.
        duration_s: Stop after this many seconds, or None.
        screenshot: Save the screen here at the end, or None.
        debug_overlay: Start with the debug overlay shown.
        wait_for_screen: Wait for a screen that cannot be opened yet (``monalisa run``)
            instead of exiting 69 (``monalisa demo``, which then runs headless).

    Returns:
        The process exit status (see :func:`_exit_statuses`): 0 after a clean stop (also when
        SIGTERM/SIGINT arrives during start-up or while waiting for the screen), 69 no display
        (or, without ``wait_for_screen``, a screen that cannot be opened), 75 the camera could
        not be recovered (from the loop), 78 bad frame set, model, detector setting or camera
        source.
    """
    from appliance.service import Notifier

    requested: list[str] = []
    previous = _catch_early_stop(requested)
    notifier = Notifier()
    try:
        app, sink = _build(
            config,
            requested,
            config_path=config_path,
            trace=trace,
            duration_s=duration_s,
            debug_overlay=debug_overlay,
            screenshot=screenshot,
            notifier=notifier,
            wait_for_screen=wait_for_screen,
        )
    except Exception as err:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        status = next((code for kind, code in _exit_statuses() if isinstance(err, kind)), None)
        if status is None:
            raise
        if isinstance(err, StoppedDuringStartup):
            log.info("stopping during start-up: %s", err)
            notifier.stopping()
        else:
            print(f"monalisa: {err}", file=sys.stderr)
        return status
    status = app.run()
    try:
        sink(app.status())
    except Exception as err:
        log.warning("cannot write the final status: %s", err)
    return status


def needs_follow_detector(config: Config, detector_kind: str) -> bool:
    """True if band mode's follow crop needs a short-range detector of its own.

    Args:
        config: The configuration (its ``[finder]`` mode and follow model).
        detector_kind: The main detector's model, ``"full"`` or ``"short"``: a short-range
            detector serves the follow crop itself.
    """
    return (
        config.finder.mode == "band"
        and config.finder.follow_model == "short"
        and detector_kind != "short"
    )


def _build(
    config: Config,
    requested: list[str],
    *,
    config_path: str | None,
    trace: Path | None,
    duration_s: float | None,
    screenshot: Path | None,
    debug_overlay: bool,
    notifier: Notifier,
    wait_for_screen: bool = False,
) -> tuple[App, Callable[[Status], None]]:
    """Build the appliance, step by step; the App's signal handlers are installed last.

    Raises:
        StoppedDuringStartup: A stop was asked for between two steps.
        FrameSetError: The frame set cannot be used.
        DetectorError: The model cannot be used.
        SettingError: The detector or camera refused a configured value.
        DisplayError: The display cannot be opened (a screen not there yet only without
            ``wait_for_screen``).
    """
    from appliance import __version__
    from appliance.app import App, RunOptions
    from appliance.camera import Capture, parse_source
    from appliance.detector import Detector, DetectorError
    from appliance.display import Display
    from appliance.display.prepare import cache_dir_from_env, is_cached
    from appliance.finder import Finder
    from appliance.frames import MANIFEST_NAME, Portrait, default_frames_dir, parse_manifest
    from appliance.gaze import Gaze
    from appliance.gaze.blink import BlinkClock
    from appliance.optics import CameraView
    from appliance.status import CameraStatus, Status, StatusWriter

    def check_stop() -> None:
        if requested:
            raise StoppedDuringStartup(requested[0])

    began = time.monotonic()
    hooks = PART_HOOKS
    frames_dir = Path(config.frames.directory) if config.frames.directory else default_frames_dir()
    writer = StatusWriter(Path(config.service.status_file))
    extra: dict[str, Any] = {
        "config": config_path,
        "frames_dir": str(frames_dir),
        "display": config.display.driver,
    }
    handed_over_at = _handed_over_at(writer.path)
    # A first status before the slow part, so `monalisa health` says "starting".
    first = Status(
        version=__version__,
        pid=os.getpid(),
        camera=CameraStatus(source=config.camera.source, handed_over_at=handed_over_at),
        **extra,
    )
    try:
        writer.write(first)
    except (OSError, ValueError) as err:
        log.warning("cannot write the status: %s", err)
    check_stop()
    manifest = parse_manifest(frames_dir / MANIFEST_NAME) if frames_dir.is_dir() else None
    if manifest is not None and manifest.version == 1:
        w, h = manifest.size
        mpx = w * h * manifest.count / 1e6
        log.warning(
            "%s: a version 1 frame set: all %d full frames are decoded at every start; "
            "`monalisa frames convert` makes a version 2 set that starts at once",
            frames_dir,
            manifest.count,
        )
        notifier.extend_timeout(60.0 + 1.5 * mpx, f"starting: decoding {manifest.count} frames")
    frames = Portrait.open(frames_dir)  # manifest and rest patch; other patches and base later
    cache_dir = cache_dir_from_env()
    if frames.manifest.preview is None and not is_cached(cache_dir, frames):
        # Needed before the first frame: decoded while the model, camera and screen open. (A
        # set with a preview shows that first and decodes the base after READY.)
        frames.prefetch_base()
    check_stop()
    try:
        detector = Detector(
            config.detector.model,
            num_threads=config.detector.num_threads,
            score_threshold=config.detector.score_threshold,
            model_dir=config.detector.model_dir,
        )
    except DetectorError:
        raise
    except ValueError as err:  # a setting the config should have refused: still EX_CONFIG
        raise SettingError(f"detector.{err}") from None
    follow_detector: Detector | None = None
    if needs_follow_detector(config, detector.spec.name):
        follow_detector = Detector(
            "short",
            num_threads=config.detector.num_threads,
            model_dir=config.detector.model_dir,
        )
    check_stop()
    try:
        source = parse_source(
            config.camera.source,
            width=config.camera.width,
            height=config.camera.height,
            fps=config.camera.fps,
            speed=config.camera.replay_speed,
            read_timeout_s=config.camera.stall_after_s / 2,
        )
    except ValueError as err:
        raise SettingError(str(err)) from None
    make_capture = hooks.capture or Capture
    capture = make_capture(
        hooks.source(source),
        retry_initial_s=config.camera.retry_initial_s,
        retry_max_s=config.camera.retry_max_s,
        stall_after_s=config.camera.stall_after_s,
        handover_after_s=config.camera.handover_after_s,
    )
    # What the camera is expected to show (as `config check` and `monalisa band` see it), and
    # its tilt, from [finder]; the loop hands the finder and the gaze a new view (the same
    # tilt) if the opened camera crops otherwise.
    view = CameraView.expected(config.camera, config.finder)
    finder = hooks.finder(
        Finder(
            config.finder,
            hooks.detector(detector),
            view=view,
            follow_detector=None if follow_detector is None else hooks.detector(follow_detector),
        )
    )
    # A set without angles (None) passes its count: Gaze spreads it over angle_range_deg.
    grid = frames.grid
    angles = frames.angles if frames.angles is not None else grid.gazes
    gaze = Gaze(
        config.gaze,
        config.camera,
        angles,
        grid.rest_gaze,
        pitches=grid.pitches,
        rest_row=grid.rest_row,
        view=view,
    )
    blink = BlinkClock(config.gaze, enabled=len(grid.lid_phases) > 1, seed=int(time.time()))

    def slow(reason: str, megapixels: float) -> None:
        # Decoding and scaling takes about 0.1 s of CPU per Mpx here, a Pi 4 core is 8-12 times
        # slower (benchmarks/startup.py): ask for 1.5 s per Mpx beyond TimeoutStartSec=60.
        # Under systemd (a cache folder) this happens once per set and screen: worth a line.
        if cache_dir is not None:
            log.info("%s (%.1f Mpx; cached for the next start)", reason, megapixels)
        else:
            log.debug("%s (%.1f Mpx; no cache folder)", reason, megapixels)
        notifier.extend_timeout(60.0 + 1.5 * megapixels, f"starting: {reason}")

    def open_display() -> Display:
        return Display(config.display, frames, cache_dir=cache_dir, background=True, slow=slow)

    if wait_for_screen:
        display = _open_display(
            open_display,
            notifier,
            lambda wait: writer.write(
                first.model_copy(
                    update={"screen_wait": wait, "uptime_s": round(time.monotonic() - began, 1)}
                )
            ),
            check_stop,
            driver=config.display.driver,
        )
    else:
        display = open_display()
    if debug_overlay:
        display.debug = True
    extra["display"] = display.driver

    def sink(status: Status) -> None:
        writer.write(status.model_copy(update=extra))

    hours = _hours(config)
    app = App(
        capture=capture,
        finder=finder,
        gaze=gaze,
        display=display,
        notifier=notifier,
        rest_index=grid.rest_gaze,
        frame_count=grid.gazes,
        grid=grid,
        blink=blink,
        view=view,
        options=RunOptions(
            trace=trace,
            duration_s=duration_s,
            screenshot=screenshot,
            status_interval_s=config.service.status_interval_s,
        ),
        status_sink=sink,
        hours=hours,
        handed_over_at=handed_over_at,
    )
    hooks.wire(app, capture)
    app.install_signal_handlers()  # from here on the App's handlers stop the loop
    try:
        check_stop()
    except StoppedDuringStartup:
        display.close()
        raise
    return app, sink


def _handed_over_at(path: Path) -> float | None:
    """When the process that wrote the status file ``path`` exited for a fresh camera stack.

    Read before this process writes its own first status, so that ``monalisa health`` keeps
    saying the camera was lost until this process's camera delivers.

    Returns:
        Unix time in seconds, or None (no such exit, or no readable status file).
    """
    from appliance.status import StatusError, read_status

    try:
        status, _ = read_status(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, StatusError):
        return None
    return status.camera.handed_over_at


def _open_display(
    open_screen: Callable[[], Display],
    notifier: NotifierLike,
    write_status: Callable[[ScreenWait], None],
    check_stop: Callable[[], None],
    *,
    driver: str,
) -> Display:
    """Open the display, waiting in the process for a screen that is not there yet.

    While it waits: ``READY=1`` once (the process is up; systemd's start timeout must not
    kill it), ``WATCHDOG=1`` and the status file every :data:`SCREEN_TICK_S` or so, and a
    ``STATUS=`` line; the screen is tried again after :data:`SCREEN_RETRY_FIRST_S`, then twice
    as long each time, at most :data:`SCREEN_RETRY_MAX_S`. One WARNING when the wait begins,
    one INFO when the screen opens.

    Args:
        open_screen: Opens the display; raises :class:`~appliance.display.ScreenNotThere`
            while its screen cannot be opened.
        notifier: The systemd link.
        write_status: Writes the status file with this wait's figures.
        check_stop: Raises :class:`StoppedDuringStartup` once a stop was asked for.
        driver: The configured driver, for the status and the log.

    Raises:
        StoppedDuringStartup: SIGTERM/SIGINT while waiting.
        DisplayError: The display cannot be used at all (not a screen to wait for).
    """
    from appliance.display import ScreenNotThere
    from appliance.status import ScreenWait

    started = time.monotonic()
    delay = SCREEN_RETRY_FIRST_S
    attempts = 0
    while True:
        check_stop()
        attempts += 1
        try:
            display = open_screen()
        except ScreenNotThere as err:
            why = str(err)
        else:
            if attempts > 1:
                log.info(
                    "the screen is there: %s display opened after %.0f s (%d attempts)",
                    display.driver,
                    time.monotonic() - started,
                    attempts,
                )
            return display
        if attempts == 1:
            log.warning("waiting for the screen: %s; trying again with backoff", why)
            notifier.ready()
        retry_at = time.monotonic() + delay
        delay = min(2 * delay, SCREEN_RETRY_MAX_S)
        while True:
            now = time.monotonic()
            wait = ScreenWait(
                driver=driver,
                waiting_s=round(now - started, 1),
                attempts=attempts,
                last_error=why,
            )
            notifier.watchdog()
            notifier.status(
                f"waiting for the {driver} screen for {wait.waiting_s:.0f} s ({attempts} "
                f"attempts): {why}"
            )
            try:
                write_status(wait)
            except (OSError, ValueError) as err:
                log.warning("cannot write the status: %s", err)
            if now >= retry_at:
                break
            check_stop()
            time.sleep(min(SCREEN_TICK_S, retry_at - now))


def _hours(config: Config) -> Hours | None:
    """The opening hours to follow, or None when the schedule is always open.

    Raises:
        SettingError: The schedule cannot be built (e.g. the system's time zone is unknown).
    """
    from appliance.hours import Hours
    from appliance.schedule import ScheduleError, Watch
    from appliance.screenpower import ScreenPower

    try:
        schedule = config.schedule.to_schedule()
    except ScheduleError as err:
        raise SettingError(f"schedule: {err}") from None
    if schedule.always_open:
        return None
    zone = getattr(schedule.zone, "key", schedule.zone)
    log.info("opening hours followed (%s), closed screen: %s", zone, config.schedule.screen)
    return Hours(Watch(schedule), ScreenPower(config.schedule.screen))


def demo(args: argparse.Namespace) -> int:
    """``monalisa demo``: the bundled clip on the default frames, then a one-screen summary."""
    from appliance.service import setup_logging

    setup_logging(logging.INFO)
    if not DEMO_CLIP.is_dir():
        return _fail(
            f"{DEMO_CLIP}: demo clip not found (an incomplete install: it is package data)", 2
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    driver = args.display
    if driver == "auto":
        driver = (
            "window"
            if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            else ("headless")
        )
    from appliance.config import parse_config

    def demo_config(driver: str) -> Config:
        return parse_config(
            {
                "camera": {"source": f"replay:{DEMO_CLIP}", "replay_speed": args.replay_speed},
                "display": {"driver": driver},
                "service": {"status_file": str(out / "status.json")},
            },
            "demo",
        )

    trace = out / "demo-trace.jsonl"
    shot = out / "demo.png"
    trace.unlink(missing_ok=True)  # a trace left by an earlier demo must not be summarised
    started = time.monotonic()
    status = run(demo_config(driver), trace=trace, screenshot=shot)
    if status == EX_UNAVAILABLE and args.display == "auto" and driver != "headless":
        log.warning("the %s display cannot be opened; running the demo headless", driver)
        driver = "headless"
        started = time.monotonic()
        status = run(demo_config(driver), trace=trace, screenshot=shot)
    wall = time.monotonic() - started
    if status != 0:
        return status
    if not trace.exists():  # stopped (SIGTERM/SIGINT) before the first camera frame
        print("monalisa demo: stopped before the first camera frame")
        return 0
    print(summarize_trace(trace, wall, driver, shot))
    return 0


def summarize_trace(trace: Path, wall_s: float, driver: str, screenshot: Path) -> str:
    """A one-screen summary of a run's trace (frames, states, indices, per-stage ms)."""
    from appliance.trace import TraceLineError, parse_line

    rows = []
    for text in trace.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, TraceLineError):
            rows.append(parse_line(json.loads(text)))
    if not rows:
        return f"no frames processed ({trace})"
    states: dict[str, int] = {}
    for r in rows:
        states[r.state or "?"] = states.get(r.state or "?", 0) + 1
    with_face = sum(1 for r in rows if r.faces)
    indices = [r.index for r in rows if r.index is not None] or [0]
    changes = sum(1 for a, b in itertools.pairwise(indices) if a != b)

    def median(key: str) -> float:
        vals = sorted(v for r in rows if r.ms is not None and (v := getattr(r.ms, key)) is not None)
        return float(vals[len(vals) // 2]) if vals else math.nan

    lines = [
        "monalisa demo — a visitor walks past the portrait, stands, and leaves",
        f"  display driver     {driver}",
        f"  camera frames      {len(rows)} in {wall_s:.1f} s "
        f"({len(rows) / max(wall_s, 1e-6):.1f} fps)",
        f"  face found in      {with_face} frames ({100 * with_face / len(rows):.0f} %)",
        "  gaze states        "
        + ", ".join(f"{k} {100 * v / len(rows):.0f} %" for k, v in sorted(states.items())),
        f"  frame index        {min(indices)}..{max(indices)} of {rows[0].frame_count}, "
        f"{changes} changes",
        f"  median ms          detect {median('detect'):.1f}, gaze {median('gaze'):.3f}, "
        f"draw {median('draw'):.2f}",
        f"  trace              {trace}",
        f"  screenshot         {screenshot}",
    ]
    return "\n".join(lines)
