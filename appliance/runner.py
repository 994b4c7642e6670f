"""Builds and wires the appliance for ``monalisa run`` and ``monalisa demo``.

This is the only place the live objects (camera, detector, finder, gaze, frame set, display,
systemd link, status writer) are created and connected; :mod:`appliance.app` only runs them.

Exit statuses: 0 clean stop; 1 the display cannot be opened; 2 bad command-line value;
78 (EX_CONFIG) bad configuration, frame set or model — systemd does not restart-loop on it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from appliance.config import EX_CONFIG, Config, ConfigError, load_config

log = logging.getLogger("monalisa")

EX_UNAVAILABLE = 69
"""The display could not be opened (sysexits.h ``EX_UNAVAILABLE``); systemd retries."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIP = REPO_ROOT / "tests" / "data" / "clips" / "demo"


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
    """``monalisa run``: load the config, build everything, run the loop."""
    from appliance.service import setup_logging

    setup_logging(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    try:
        config = apply_overrides(load_config(args.config), args)
    except ConfigError as err:
        for line in err.lines:
            print(line, file=sys.stderr)
        return EX_CONFIG
    return run(
        config,
        config_path=args.config,
        trace=Path(args.trace) if args.trace else None,
        duration_s=args.duration,
        screenshot=Path(args.screenshot) if args.screenshot else None,
        debug_overlay=bool(getattr(args, "debug_overlay", False)),
    )


def run(
    config: Config,
    *,
    config_path: str | None = None,
    trace: Path | None = None,
    duration_s: float | None = None,
    screenshot: Path | None = None,
    debug_overlay: bool = False,
) -> int:
    """Build the appliance from ``config`` and run it until it stops.

    Args:
        config: The validated configuration.
        config_path: Where it came from (reported in the status file).
        trace: Trace JSONL path, or None.
        duration_s: Stop after this many seconds, or None.
        screenshot: Save the screen here at the end, or None.
        debug_overlay: Start with the debug overlay shown.

    Returns:
        The process exit status.
    """
    from appliance import faults
    from appliance.app import App, RunOptions
    from appliance.camera import Capture, parse_source
    from appliance.detector import Detector, DetectorError
    from appliance.display import Display, DisplayError
    from appliance.finder import Finder
    from appliance.frames import FrameSet, FrameSetError, default_frames_dir
    from appliance.gaze import Gaze
    from appliance.health import StatusWriter
    from appliance.service import Notifier

    notifier = Notifier()
    try:
        plan = faults.from_env()
    except ValueError as err:
        return _fail(str(err), 2)
    frames_dir = Path(config.frames.directory) if config.frames.directory else default_frames_dir()
    try:
        frames = FrameSet.load(frames_dir)
    except FrameSetError as err:
        return _fail(str(err), EX_CONFIG)
    try:
        detector = Detector(
            config.detector.model,
            num_threads=config.detector.num_threads,
            score_threshold=config.detector.score_threshold,
        )
    except DetectorError as err:
        return _fail(str(err), EX_CONFIG)
    try:
        source = parse_source(
            config.camera.source,
            width=config.camera.width,
            height=config.camera.height,
            fps=config.camera.fps,
            speed=config.camera.replay_speed,
        )
    except ValueError as err:
        return _fail(str(err), EX_CONFIG)
    if plan.touches_camera:
        source = faults.FaultySource(source, plan)
    capture = Capture(
        source,
        retry_initial_s=config.camera.retry_initial_s,
        retry_max_s=config.camera.retry_max_s,
        stall_after_s=config.camera.stall_after_s,
    )
    finder = Finder(config.finder, detector)
    gaze = Gaze(config.gaze, config.camera, frames.angles, frames.rest_index)
    try:
        display = Display(config.display, frames)
    except DisplayError as err:
        return _fail(str(err), EX_UNAVAILABLE)
    if debug_overlay:
        display.debug = True
    writer = StatusWriter(Path(config.service.status_file))
    extra = {"config": config_path, "frames": str(frames_dir), "display": display.driver}

    def sink(status: dict[str, Any]) -> None:
        writer.write_dict({**status, **extra})

    app = App(
        capture=capture,
        finder=finder,
        gaze=gaze,
        display=display,
        notifier=notifier,
        rest_index=frames.rest_index,
        frame_count=frames.count,
        options=RunOptions(
            trace=trace,
            duration_s=duration_s,
            screenshot=screenshot,
            status_interval_s=config.service.status_interval_s,
            faults=plan,
        ),
        status_sink=sink,
        overlay=display.overlay_hook if hasattr(display, "overlay_hook") else None,
    )
    app.install_signal_handlers()
    status = app.run()
    try:
        sink(app.status())
    except Exception as err:
        log.warning("cannot write the final status: %s", err)
    return status


def demo(args: argparse.Namespace) -> int:
    """``monalisa demo``: the bundled clip on the default frames, then a one-screen summary."""
    from appliance.service import setup_logging

    setup_logging(logging.INFO)
    if not DEMO_CLIP.is_dir():
        return _fail(f"{DEMO_CLIP}: demo clip not found (run from a clone of the repo)", 2)
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

    config = parse_config(
        {
            "camera": {"source": f"replay:{DEMO_CLIP}", "replay_speed": args.replay_speed},
            "display": {"driver": driver},
            "service": {"status_file": str(out / "status.json")},
        },
        "demo",
    )
    trace = out / "demo-trace.jsonl"
    shot = out / "demo.png"
    started = time.monotonic()
    status = run(config, trace=trace, screenshot=shot)
    wall = time.monotonic() - started
    if status != 0:
        return status
    print(summarize_trace(trace, wall, driver, shot))
    return 0


def summarize_trace(trace: Path, wall_s: float, driver: str, screenshot: Path) -> str:
    """A one-screen summary of a run's trace (frames, states, indices, per-stage ms)."""
    rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line]
    if not rows:
        return f"no frames processed ({trace})"
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    with_face = sum(1 for r in rows if r["faces"])
    indices = [r["index"] for r in rows]
    changes = sum(1 for a, b in itertools.pairwise(indices) if a != b)

    def median(key: str) -> float:
        vals = sorted(r["ms"][key] for r in rows)
        return float(vals[len(vals) // 2])

    lines = [
        "monalisa demo — a visitor walks past the portrait, stands, and leaves",
        f"  display driver     {driver}",
        f"  camera frames      {len(rows)} in {wall_s:.1f} s "
        f"({len(rows) / max(wall_s, 1e-6):.1f} fps)",
        f"  face found in      {with_face} frames ({100 * with_face / len(rows):.0f} %)",
        "  gaze states        "
        + ", ".join(f"{k} {100 * v / len(rows):.0f} %" for k, v in sorted(states.items())),
        f"  frame index        {min(indices)}..{max(indices)} of {rows[0]['frame_count']}, "
        f"{changes} changes",
        f"  median ms          detect {median('detect'):.1f}, gaze {median('gaze'):.3f}, "
        f"draw {median('draw'):.2f}",
        f"  trace              {trace}",
        f"  screenshot         {screenshot}",
    ]
    return "\n".join(lines)
