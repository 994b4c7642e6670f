"""The ``monalisa`` command: argparse sub-commands; the only place objects are built and wired.

Exit statuses: 0 success, 1 runtime failure (an internal error), 2 bad usage (argparse) or
unreadable input, 69 (EX_UNAVAILABLE) ``run`` cannot use the display (a window without
``DISPLAY``; a screen not there yet is waited for) or ``demo`` cannot open it (systemd retries),
78 (EX_CONFIG) bad configuration — from the file or a command-line override such
as ``--camera foo`` — frame set or model, so systemd does not restart-loop; 130 interrupted
(Ctrl-C outside the main loop). ``health`` uses the Nagios codes 0-3 instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import __version__

if TYPE_CHECKING:
    from appliance.config import Config

Handler = Callable[[argparse.Namespace], int]


def _add_config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config", help="check or show a configuration file, or print the settings' reference"
    )
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser("check", help="validate FILE; one line per error, exit 78 if invalid")
    c.add_argument("file")
    c.set_defaults(handler=_cmd_config_check)
    s = csub.add_parser("show", help="print the effective configuration as TOML")
    s.add_argument("file", nargs="?")
    s.set_defaults(handler=_cmd_config_show)
    r = csub.add_parser(
        "reference",
        help="print the configuration reference (Markdown) generated from the settings' "
        "definitions",
    )
    r.add_argument(
        "--out",
        metavar="FILE",
        help="write it to FILE instead (docs/reference/configuration.md in the repository)",
    )
    r.set_defaults(handler=_cmd_config_reference)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from appliance.config import EX_CONFIG, ConfigError, load_config

    try:
        config = load_config(args.file)
    except ConfigError as err:
        return err.report()
    missing = _missing_models(config)
    for line in missing:
        print(f"{args.file}: {line}", file=sys.stderr)
    if missing:
        return EX_CONFIG
    print(f"{args.file}: OK")
    return 0


def _missing_models(config: Config) -> list[str]:
    """Return one line per model the configuration needs that cannot be found (none: all found).

    The detector's model, and the short-range follow model when the runner would load one
    (a detector model named or filed as the short-range one serves the follow crop itself).
    """
    from pathlib import Path

    from appliance.detector import MODEL_FILES, DetectorError, find_model
    from appliance.runner import needs_follow_detector

    det = config.detector
    wanted = [("detector.model", det.model)]
    short = det.model == "short" or Path(det.model).name == MODEL_FILES["short"]
    if needs_follow_detector(config, "short" if short else "full"):
        wanted.append(("finder.follow_model", "short"))
    lines = []
    for key, name in wanted:
        try:
            find_model(name, det.model_dir)
        except DetectorError as err:
            lines.append(f"{key}: {err}")
    return lines


def _cmd_config_show(args: argparse.Namespace) -> int:
    from appliance.config import ConfigError, dump_config, load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as err:
        return err.report()
    print(dump_config(cfg), end="")
    return 0


def _cmd_config_reference(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.configref import reference_markdown

    text = reference_markdown()
    if args.out is None:
        print(text, end="")
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as err:
        print(f"monalisa: {args.out}: cannot write: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


def _config_or_installed(path: str | None) -> tuple[Config, str | None]:
    """Load the config a command was given, or else the installed one.

    Args:
        path: ``--config``; None: ``/etc/monalisa/config.toml`` if readable, else the
            built-in defaults.

    Returns:
        The configuration and the file it came from (None: the built-in defaults).

    Raises:
        ConfigError: The file is invalid (one line per problem).
    """
    import os

    from appliance.config import DEFAULT_CONFIG_PATH, Config, load_config

    if path is None and os.access(DEFAULT_CONFIG_PATH, os.R_OK):
        path = str(DEFAULT_CONFIG_PATH)
    return (load_config(path) if path else Config()), path


def _add_run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the appliance: camera → detector → gaze → portrait")
    _add_run_options(p)
    p.set_defaults(handler=_cmd_run)
    d = sub.add_parser(
        "demo", help="run on the bundled replay clip and default frames; print a summary"
    )
    d.add_argument("--display", choices=["auto", "window", "headless"], default="auto")
    d.add_argument("--out", default="out", help="folder for the screenshot, trace and status")
    d.add_argument("--replay-speed", choices=["realtime", "max"], default="realtime")
    d.set_defaults(handler=_cmd_demo)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from appliance.config import DISPLAY_DRIVERS

    p.add_argument("--config", help="TOML config file (default: built-in defaults)")
    p.add_argument("--camera", help="picamera2 | webcam[:N] | replay:DIR (overrides config)")
    p.add_argument("--display", choices=DISPLAY_DRIVERS, help="video driver")
    p.add_argument("--frames", help="frame set folder (overrides config)")
    p.add_argument("--trace", help="write one JSON line per processed camera frame here")
    p.add_argument("--replay-speed", choices=["realtime", "max"], help="replay pacing")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--screenshot", help="save the screen as PNG when the run ends")
    p.add_argument("--status-file", help="status JSON path (overrides config)")
    p.add_argument("--debug-overlay", action="store_true", help="start with the overlay on")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def _cmd_run(args: argparse.Namespace) -> int:
    from appliance.runner import run_from_args

    return run_from_args(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from appliance.runner import demo

    return demo(args)


def _add_health_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="check the running appliance (Nagios plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, "
        "3 UNKNOWN)",
        description="Read the status file the running appliance writes once a second and "
        "print one Nagios-style line. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. "
        "Thresholds come from the [health] section of the config file.",
    )
    p.add_argument(
        "--status-file",
        metavar="PATH",
        help="status file to read (default: [service] status_file, /run/monalisa/status.json)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config file with the [health] thresholds (default: /etc/monalisa/config.toml "
        "if it is readable, else the built-in thresholds)",
    )
    p.add_argument("--json", action="store_true", help="print the checks and values as JSON")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="after the summary, one line per check"
    )
    p.set_defaults(handler=_cmd_health)


def _cmd_health(args: argparse.Namespace) -> int:
    import json

    from appliance.config import ConfigError
    from appliance.health import UNKNOWN, check

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    try:
        cfg, _ = _config_or_installed(args.config)
    except ConfigError as err:
        print(f"MONALISA UNKNOWN - {err.lines[0]}")
        for line in err.lines[1:]:
            print(line)
        return UNKNOWN
    result = check(args.status_file or cfg.service.status_file, cfg.health)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(result.line)
        if args.verbose:
            for c in result.checks:
                print(f"{c.state:<8} {c.name:<12} {c.message}")
    return result.code


def _add_frames_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("frames", help="build or check a frame set (the portrait's gaze frames)")
    fsub = p.add_subparsers(dest="frames_command", required=True)
    b = fsub.add_parser(
        "build",
        help="build a frame set from a painting",
        description="Build a frame set: frame_NN.png (index 0 looks toward the visitor's left), "
        "frames.toml and contact_sheet.png. 'synthesize' moves the painting's irises on the "
        "CPU; 'blend' blends animated head frames (--heads) into the painting. Exit 2 on bad "
        "input.",
    )
    b.add_argument("painting", help="the portrait image (PNG, JPEG, ...)")
    b.add_argument("--out", required=True, help="output folder (must be empty unless --force)")
    b.add_argument("--mode", choices=["synthesize", "blend"], default="synthesize")
    b.add_argument(
        "--count", type=int, default=33, help="number of gazes, left to right (default 33)"
    )
    b.add_argument(
        "--rows",
        type=int,
        default=5,
        help="synthesize: rows of vertical gaze, odd (default 5; 1 = level only)",
    )
    b.add_argument(
        "--max-pitch",
        type=float,
        default=15.0,
        help="synthesize: vertical gaze range ±degrees (default 15)",
    )
    b.add_argument(
        "--lid-phases",
        type=int,
        default=4,
        help="synthesize: lid phases from open to shut, for blinks (default 4; 1 = none)",
    )
    b.add_argument(
        "--lossless",
        action="store_true",
        help="keep a large painting's patches lossless PNG (about 4x the set on disk) "
        "instead of lossy WebP",
    )
    b.add_argument("--heads", help="blend: folder of head frames, eyes sweeping side to side")
    b.add_argument(
        "--eyes", metavar="X1,Y1,X2,Y2", help="eye centres in the painting, pixels (no detector)"
    )
    b.add_argument(
        "--max-angle",
        type=float,
        default=30.0,
        help="synthesize: gaze range ±degrees (default 30)",
    )
    b.add_argument(
        "--head-box", metavar="X0,Y0,X1,Y1", help="blend: where the head frames go in the painting"
    )
    b.add_argument(
        "--blend-j", type=float, default=0.06, help="blend: sigmoid steepness, 512-px head"
    )
    b.add_argument(
        "--blend-k", type=float, default=180.0, help="blend: sigmoid midpoint, px of a 512-px head"
    )
    b.add_argument(
        "--no-colour-match", action="store_true", help="blend: keep the head frames' colours"
    )
    b.add_argument(
        "--no-stabilise",
        action="store_true",
        help="blend: keep the head frames where they are (by default each is moved back by its "
        "small movement against the first, so the head does not wobble as the eyes follow)",
    )
    b.add_argument("--force", action="store_true", help="replace a frame set in --out")
    b.set_defaults(handler=_cmd_frames_build)
    c = fsub.add_parser(
        "check",
        help="validate a frame set as the appliance does at start-up (exit 78 if broken)",
    )
    c.add_argument("directory", help="frame set folder (with frames.toml)")
    c.add_argument("--json", action="store_true", help="print the summary as JSON")
    c.set_defaults(handler=_cmd_frames_check)
    v = fsub.add_parser(
        "convert",
        help="write a frame set (version 1 or 2) as a version 2 set: base.png + patches",
        description="Read the set in OLD (full frames or base + patches) and write it to NEW as "
        "format version 2: base.png, one small PNG per frame under patches/, frames.toml. The "
        "frames are the same pixel for pixel. Exit 78 if OLD is not a valid set, 2 if NEW is "
        "not an empty or new folder.",
    )
    v.add_argument("old", help="frame set folder to read")
    v.add_argument("new", help="folder to write (must be new or empty)")
    v.set_defaults(handler=_cmd_frames_convert)
    e = fsub.add_parser(
        "export",
        help="write every frame of a set as a full image plus frames.json",
        description="Write every frame of SET as a full PNG (frame_NN.png, the pixels the "
        "appliance holds before scaling to the screen) and frames.json: "
        '{"frames": [{"file", "index", "angle", "pitch", "lids", "box", "patch", "rest"}], '
        '"size", "rest_index", "head_box", "version", "source", "build"}. Exit 78 if SET is '
        "not a valid set, 2 if --out is not an empty or new folder.",
    )
    e.add_argument("set", help="frame set folder to read")
    e.add_argument("--out", required=True, help="folder to write (must be new or empty)")
    e.set_defaults(handler=_cmd_frames_export)


def _cmd_frames_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.framebuild import FrameBuildError
    from appliance.framebuild.build import BuildOptions, build

    opts = BuildOptions(
        painting=Path(args.painting),
        out=Path(args.out),
        mode=args.mode,
        count=args.count,
        max_angle=args.max_angle,
        rows=args.rows,
        max_pitch=args.max_pitch,
        lid_phases=args.lid_phases,
        eyes=args.eyes,
        heads=Path(args.heads) if args.heads else None,
        head_box=args.head_box,
        blend_j=args.blend_j,
        blend_k=args.blend_k,
        colour_match=not args.no_colour_match,
        stabilise=not args.no_stabilise,
        force=args.force,
        lossless=args.lossless,
    )
    try:
        result = build(opts)
    except FrameBuildError as err:
        print(f"monalisa frames build: {err}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"monalisa frames build: warning: {warning}", file=sys.stderr)
    from appliance.frames import PATCH_QUALITY

    lossy = (
        f"; patches lossy WebP, quality {PATCH_QUALITY} (--lossless: PNG)" if result.lossy else ""
    )
    print(
        f"{result.out}: {len(result.files)} frames, gaze {result.angles[0]:+.1f}° .. "
        f"{result.angles[-1]:+.1f}°, rest {result.rest_index}{lossy}; review {result.contact_sheet}"
    )
    return 0


def _cmd_frames_check(args: argparse.Namespace) -> int:
    import json

    from appliance.config import EX_CONFIG
    from appliance.frames import FrameSet, FrameSetError

    try:
        fs = FrameSet.load(args.directory)
    except FrameSetError as err:
        if args.json:
            print(json.dumps({"ok": False, "error": str(err)}))
        print(f"monalisa frames check: {err}", file=sys.stderr)
        return EX_CONFIG
    info = fs.summary()
    if args.json:
        print(json.dumps({"ok": True, **info}, indent=2))
        return 0
    mib = 1024 * 1024
    w, h = fs.size
    hb = [int(v) for v in fs.head_box.as_list(0)]
    print(
        f"{fs.directory}: OK - {fs.count} frames {w}x{h}, {fs.gaze_text()}, "
        f"head box {hb}, memory {fs.memory_bytes() / mib:.1f} MiB "
        f"(full frames {fs.full_frames_bytes() / mib:.1f} MiB), format version {fs.version}"
    )
    return 0


def _frames_into(command: str, source: str, out: str, write: Callable[[Any, Path], Any]) -> int:
    """Load the set in ``source`` and let ``write(frame_set, folder)`` fill the new ``out``.

    The files are written into a staging folder beside ``out`` and moved in only when all are
    written, so a failure leaves nothing half-written.
    """
    from appliance.config import EX_CONFIG
    from appliance.framebuild.output import commit_out_dir, staging_dir
    from appliance.frames import FrameSet, FrameSetError

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        print(
            f"monalisa frames {command}: {target}: exists and is not an empty folder; "
            "choose a new or empty folder",
            file=sys.stderr,
        )
        return 2
    try:
        fs = FrameSet.load(source)
    except FrameSetError as err:
        print(f"monalisa frames {command}: {err}", file=sys.stderr)
        return EX_CONFIG
    try:
        with staging_dir(target) as staged:
            write(fs, staged)
            commit_out_dir(staged, target)
    except (OSError, FrameSetError) as err:
        print(f"monalisa frames {command}: {target}: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_frames_convert(args: argparse.Namespace) -> int:
    from appliance.frameexport import convert_set

    status = _frames_into("convert", args.old, args.new, convert_set)
    if status == 0:
        print(f"{args.new}: version 2 frame set written from {args.old}")
    return status


def _cmd_frames_export(args: argparse.Namespace) -> int:
    from appliance.frameexport import EXPORT_INDEX, export_set

    status = _frames_into("export", args.set, args.out, export_set)
    if status == 0:
        print(f"{args.out}: every frame of {args.set} and {EXPORT_INDEX} written")
    return status


def _add_detect_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "detect",
        help="find faces in image files with BlazeFace",
        description="Find faces in image files. Prints a table, or with --json one line per "
        'image: {"image": PATH, "faces": [{"score", "box": [x0, y0, x1, y1], "keypoints": '
        "[[x, y] × 6]}]} in image pixels; keypoints: right eye, left eye, nose tip, mouth "
        "centre, right ear tragion, left ear tragion (the subject's own right/left). "
        "Exit status 2 if any file could not be read.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--model",
        help="full (full range), short (short range) or a .tflite path (default: the "
        "config's [detector] model, full)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config whose [detector] model and model_dir are used (default: "
        "/etc/monalisa/config.toml if it is readable, else the built-in defaults)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="interpreter threads")
    p.set_defaults(handler=_cmd_detect)


def _cmd_detect(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    from PIL import Image, ImageOps

    from appliance.config import ConfigError
    from appliance.detector import Detector, DetectorError

    try:
        det = _config_or_installed(args.config)[0].detector
        detector = Detector(
            args.model or det.model, num_threads=args.threads, model_dir=det.model_dir
        )
    except ConfigError as err:
        print(f"monalisa detect: {err.lines[0]}", file=sys.stderr)
        return 2
    except (DetectorError, ValueError) as err:
        print(f"monalisa detect: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            with Image.open(path) as im:
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
            print(f"monalisa detect: {path}: cannot read image: {reason}", file=sys.stderr)
            status = 2
            continue
        faces = detector.detect(rgb)
        if args.json:
            record = {
                "image": path,
                "faces": [
                    {
                        "score": round(f.score, 4),
                        "box": f.box.as_list(),
                        "keypoints": [p.as_list() for p in f.keypoints],
                    }
                    for f in faces
                ],
            }
            print(json.dumps(record), flush=True)
            continue
        height, width = rgb.shape[:2]
        noun = "face" if len(faces) == 1 else "faces"
        print(f"{path}  {width}×{height}  {len(faces)} {noun}")
        for i, f in enumerate(faces, 1):
            b, r, le = f.box, f.right_eye, f.left_eye
            print(
                f"  {i:>2}  score {f.score:.2f}  box ({b.x0:.1f}, {b.y0:.1f})–({b.x1:.1f}, "
                f"{b.y1:.1f})  eyes R ({r.x:.1f}, {r.y:.1f}) L ({le.x:.1f}, {le.y:.1f})"
            )
    return status


def _add_finder_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "band",
        help="compute the finder's head band for a camera's height and tilt",
        description="Print the [finder] band_top/band_bottom that cover faces of visitors "
        "with eyes EYE_MIN..EYE_MAX m above the floor, NEAR..FAR m from the camera, for the "
        "camera of the configuration (size, field of view, sensor crop), and how many tiles "
        "that makes. Options not given come from the configuration's [finder] "
        "(camera_height_m, camera_tilt_deg, visitor_eyes_m, visitor_distance_m): with those "
        "set, this shows the band the appliance will work out at start.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="configuration to read [camera] and [finder] from (default: the installed "
        "/etc/monalisa/config.toml if readable, else the built-in defaults)",
    )
    p.add_argument(
        "--camera-height",
        type=float,
        metavar="M",
        help="lens height above floor (default: [finder] camera_height_m)",
    )
    p.add_argument("--tilt", type=float, metavar="DEG", help="downward tilt (0)")
    p.add_argument("--eye-min", type=float, metavar="M", help="lowest eyes (1.2)")
    p.add_argument("--eye-max", type=float, metavar="M", help="highest eyes (1.95)")
    p.add_argument("--near", type=float, metavar="M", help="nearest visitor (1.2)")
    p.add_argument("--far", type=float, metavar="M", help="farthest visitor (5)")
    p.add_argument(
        "--sensor",
        metavar="WxH|none",
        help="the camera sensor's pixel array, whose width hfov_deg spans: the ISP crops its "
        "sides for a narrower stream (4:3 from 16:9) and the band follows (default: Camera "
        "Module 3's 4608x2592 for source picamera2; 'none' = the image is the whole field, "
        "the default for webcams and replays)",
    )
    p.set_defaults(handler=_cmd_band)


def _sensor_size(spec: str) -> tuple[int, int] | None:
    """``--sensor``'s value: ``WxH`` in pixels, or ``none``; ValueError names a bad one."""
    if spec.strip().lower() == "none":
        return None
    w, sep, h = spec.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) <= 0:
        raise ValueError(f"band: --sensor {spec!r}: expected WIDTHxHEIGHT in pixels or 'none'")
    return size


def _cmd_band(args: argparse.Namespace) -> int:
    import math

    from appliance.config import ConfigError
    from appliance.finder import band_tiles, tile_reach_m
    from appliance.optics import CameraView

    try:
        cfg, _ = _config_or_installed(args.config)
    except ConfigError as err:
        return err.report()
    cam, fc = cfg.camera, cfg.finder
    height_m = args.camera_height if args.camera_height is not None else fc.camera_height_m
    if height_m is None:
        print(
            "monalisa band: give --camera-height, or set [finder] camera_height_m in the "
            "configuration (--config, or the installed one)",
            file=sys.stderr,
        )
        return 2
    eyes, dist = fc.visitor_eyes_m, fc.visitor_distance_m
    asked = fc.model_copy(
        update={
            "camera_height_m": height_m,
            "camera_tilt_deg": fc.camera_tilt_deg if args.tilt is None else args.tilt,
            "visitor_eyes_m": (
                eyes[0] if args.eye_min is None else args.eye_min,
                eyes[1] if args.eye_max is None else args.eye_max,
            ),
            "visitor_distance_m": (
                dist[0] if args.near is None else args.near,
                dist[1] if args.far is None else args.far,
            ),
        }
    )
    try:
        if args.sensor is None:
            view = CameraView.expected(cam, asked)
        else:
            view = CameraView.expected(cam, asked, sensor=_sensor_size(args.sensor))
        top, bottom = view.head_band()
    except ValueError as err:
        print(f"monalisa {err}", file=sys.stderr)
        return 2
    sensor, fraction, hfov = view.sensor, view.width_fraction, view.hfov_deg
    _, tiles = band_tiles(fc, cam.width, cam.height, (top, bottom))
    tile_px = int(tiles[0].width)
    sweep = len(tiles) + (1 if fc.whole_pass else 0)
    per = max(1, fc.inferences_per_frame)
    reach = tile_reach_m(view, tile_px, cfg.gaze.ipd_mm / 1000.0)
    (eye_min, eye_max), (near, far) = asked.visitor_eyes_m, asked.visitor_distance_m
    print("[finder]")
    print('mode = "band"')
    print(f"band_top = {top:.2f}")
    print(f"band_bottom = {bottom:.2f}")
    print(
        f"# camera {cam.width}x{cam.height}, {hfov:.1f}°, {height_m:g} m high, "
        f"tilted {view.tilt_deg:g}° down; eyes {eye_min:g}-{eye_max:g} m, "
        f"visitors {near:g}-{far:g} m away"
    )
    if sensor is not None and fraction < 1.0:
        print(
            f"# the ISP crops the {sensor[0]}x{sensor[1]} sensor to {cam.width}:{cam.height}: "
            f"{100 * fraction:.0f} % of its width, {hfov:.1f}° of the lens's {cam.hfov_deg:g}°"
        )
    if fc.cadence == "room":
        pace = (
            f"every {sweep / fc.idle_sweep_hz:.1f} s in a still, empty room, every "
            f"{math.ceil(sweep / per)} frames where things move, "
            f"{sweep / fc.track_sweep_hz:.1f} s while following"
        )
    else:
        pace = (
            f"every {math.ceil(sweep / per)} frames searching, "
            f"{math.ceil(sweep / max(1, per - 1))} while following"
        )
    print(
        f"# {len(tiles)} tiles of {tile_px} px (+ whole frame: {fc.whole_pass}): a full sweep "
        f"{pace}; tiles reach about {reach:.1f} m"
    )
    if fc.camera_height_m is None:
        print(
            f"# or set camera_height_m = {height_m:g} instead (with camera_tilt_deg, "
            "visitor_eyes_m, visitor_distance_m where not the defaults): the appliance then "
            "works the band out itself, for the field of view the camera really shows"
        )
    else:
        print(
            "# the configuration sets camera_height_m: this is the band the appliance works "
            "out at start (it needs no band_top/band_bottom)"
        )
    return 0


def _add_trace_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="look at a gaze trace written by `monalisa run --trace`")
    tsub = p.add_subparsers(dest="trace_command", required=True)
    pl = tsub.add_parser(
        "plot",
        help="draw raw and smoothed angle, frame index and faces over time, states shaded",
        description="Draw a trace (JSON Lines from `monalisa run --trace`) to an image: raw "
        "and smoothed gaze angle, frame index and faces over time, with the tracking/holding/"
        "idle states shaded and viewer switches marked. Lines that are cut short or corrupt "
        "are skipped and reported with their line numbers. Needs matplotlib: pip install "
        "'monalisa[plot]'. Exit 2 if the trace has no usable line or the image cannot be "
        "written.",
    )
    pl.add_argument("trace", metavar="TRACE.jsonl", help="the trace file")
    pl.add_argument("-o", "--out", required=True, metavar="PLOT.png", help="image to write")
    pl.add_argument("--title", help="figure title (default: the trace's file name)")
    pl.set_defaults(handler=_cmd_trace_plot)


def _cmd_trace_plot(args: argparse.Namespace) -> int:
    from appliance.traceplot import TraceError, load_trace, plot_trace

    try:
        trace = load_trace(args.trace)
        plot_trace(trace, args.out, title=args.title)
    except TraceError as err:
        print(f"monalisa trace plot: {err}", file=sys.stderr)
        return 2
    for line in trace.warnings():
        print(f"monalisa trace plot: {line}", file=sys.stderr)
    print(f"{args.out}: {len(trace)} camera frames plotted")
    return 0


def _add_schedule_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schedule",
        help="print the opening hours of the coming days ([schedule] in the config)",
        description="Print whether the portrait runs now and, day by day, when it is open "
        "(local time of [schedule] timezone). Exit 78 if the configuration is invalid.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: /etc/monalisa/config.toml if it is readable, else the "
        "built-in defaults: always open)",
    )
    p.add_argument("--days", type=int, default=7, help="how many days to list (1-366, default 7)")
    p.add_argument(
        "--from",
        dest="start",
        metavar="ISO",
        help="start here instead of now: 2026-12-24 or 2026-12-24T17:30 (in the schedule's "
        "time zone unless an offset is given)",
    )
    p.set_defaults(handler=_cmd_schedule)


def _cmd_schedule(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from appliance.config import ConfigError
    from appliance.localzone import resolve_zone
    from appliance.schedule import Schedule, format_until, week_lines

    if not 1 <= args.days <= 366:
        print(f"monalisa schedule: --days {args.days}: give 1 to 366", file=sys.stderr)
        return 2
    try:
        config, config_path = _config_or_installed(args.config)
        section = config.schedule
    except ConfigError as err:
        return err.report()
    zone, zone_name = resolve_zone(section.timezone)
    schedule = Schedule.parse(section.open, section.closed, zone)
    try:
        start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC)
    except ValueError:
        print(f"monalisa schedule: --from {args.start!r}: not an ISO date/time", file=sys.stderr)
        return 2
    start = start.replace(tzinfo=zone) if start.tzinfo is None else start.astimezone(zone)
    print(
        f"{config_path or '(built-in defaults)'}: time zone {zone_name}, screen while "
        f"closed: {section.screen}"
    )
    state = schedule.state_at(start)
    if schedule.always_open:
        print("always open: [schedule] sets no opening hours and no closed dates")
        return 0
    now = "open" if state.open else "closed"
    change = "closes" if state.open else "opens"
    print(f"{start:%a %Y-%m-%d %H:%M %Z}: {now}, {change} {format_until(state.until, start)}")
    for line in week_lines(schedule, start.date(), args.days):
        print(line)
    return 0


# Sub-command registration. Each entry adds its parser(s) and sets ``handler``.
# Keep imports of heavy modules inside the handlers so `monalisa --help` stays fast.
# >>> command registry (add one line per command group; keep this marker)
_REGISTRY: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_config_commands,
    _add_run_commands,
    _add_health_commands,
    _add_frames_commands,
    _add_detect_commands,
    _add_finder_commands,
    _add_trace_commands,
    _add_schedule_commands,
]
# <<< command registry


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="monalisa",
        description="A gallery portrait whose eyes follow the visitor.",
    )
    parser.add_argument("--version", action="version", version=f"monalisa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _REGISTRY:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monalisa`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug: one line for the journal, the traceback only with -v
        print(f"monalisa: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        if getattr(args, "verbose", False):
            traceback.print_exc()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
