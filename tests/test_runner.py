"""End to end: the real `monalisa run` (camera replay, BlazeFace, gaze, frames, headless display).

Each test starts the appliance as its own process, as systemd would, on a replay clip of a real
face (scikit-image's astronaut photo placed in a room by tests.support.sim).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.frames import FrameSet, default_frames_dir
from tests.support.run import MONALISA, REPO, app_env, monalisa_for
from tests.support.sim import (
    CameraGeometry,
    Renderer,
    astronaut_photo,
    render_walk,
    walk,
    write_clip,
)

GEOMETRY = CameraGeometry(width=640, height=480, hfov_deg=66.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A visitor at 1.2 m walks in from the image's left, stands right of centre, leaves."""
    out = tmp_path_factory.mktemp("clip")
    poses = walk(GEOMETRY, 1.2, fps=30, speed_mps=1.2, stand_s=1.0, stand_x_m=0.25, leave_s=0.5)
    write_clip(out, render_walk(Renderer(astronaut_photo(), GEOMETRY, seed=3), poses), 30)
    return Path(out)


def run(args: list[str], cwd: Path, timeout: float = 120, **kw: str):
    env = app_env(**kw)
    return subprocess.run(
        [*monalisa_for(env), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``monalisa ARGS`` in ``cwd`` without waiting; stdout and stderr piped, as text."""
    return subprocess.Popen(
        [*MONALISA, *args],
        cwd=cwd,
        env=app_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_trace(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def base_args(clip: Path, tmp: Path) -> list[str]:
    return [
        "run",
        "--camera",
        f"replay:{clip}",
        "--display",
        "headless",
        "--replay-speed",
        "max",
        "--status-file",
        str(tmp / "status.json"),
    ]


def test_replay_run_follows_the_visitor(clip, tmp_path):
    from tests.support.sim import read_truth

    cfg = tmp_path / "c.toml"
    frames = FrameSet.load(default_frames_dir())
    w, h = frames.size
    cfg.write_text(f"[display]\nwindow_size = [{w}, {h}]\n")
    res = run(
        [
            *base_args(clip, tmp_path),
            "--config",
            str(cfg),
            "--trace",
            "t.jsonl",
            "--screenshot",
            "s.png",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rows = read_trace(tmp_path / "t.jsonl")
    truth = read_truth(clip)
    assert len(rows) == len(truth)
    assert [r["seq"] for r in rows] == list(range(len(rows)))
    # Found where the visitor is, and with eye points near the drawn eyes.
    with_visitor = [i for i, t in enumerate(truth) if t]
    found = [i for i in with_visitor if rows[i]["faces"]]
    assert len(found) >= 0.9 * len(with_visitor)
    errs = []
    for i in found:
        mid = truth[i][0].eye_mid
        ex = np.mean([p[0] for p in rows[i]["faces"][0]["eyes"]])
        ey = np.mean([p[1] for p in rows[i]["faces"][0]["eyes"]])
        errs.append(float(np.hypot(ex - mid.x, ey - mid.y)))
    assert np.median(errs) < 3.0
    assert not any(r["faces"] for i, r in enumerate(rows) if not truth[i])
    # The visitor walks from the image's left to its right (unmirrored camera: from the
    # visitor's right to the visitor's left of the portrait): the index goes down.
    tracking = [r["index"] for r in rows if r["state"] == "tracking"]
    assert tracking[0] > tracking[-1]
    grid = frames.grid
    assert max(tracking) > grid.rest_gaze > min(tracking)
    # The screenshot is the frame the trace ended on (its gaze in the rest row, eyes open).
    last = grid.index(rows[-1]["index"], grid.rest_row)
    shot = np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).astype(int)
    assert shot.shape == (h, w, 3)
    diff = np.abs(shot - frames.frame(last).astype(int))
    assert diff.mean() < 1.0, f"screenshot differs from frame {last}"
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["frame_count"] == grid.gazes
    # The folder and the count of camera frames processed, each under its own key:
    assert status["frames_dir"] == str(default_frames_dir())
    assert 0 <= status["frames"] <= len(rows)


def test_a_band_worked_out_from_the_cameras_height_finds_the_visitor(clip, tmp_path):
    from appliance.config import FinderConfig
    from appliance.optics import install_band
    from tests.support.sim import read_truth

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[camera]\nwidth = {GEOMETRY.width}\nheight = {GEOMETRY.height}\n"
        f'[finder]\nmode = "band"\ncamera_height_m = {GEOMETRY.height_m}\n'
    )
    res = run([*base_args(clip, tmp_path), "--config", str(cfg), "--trace", "t.jsonl"], tmp_path)
    assert res.returncode == 0, res.stderr
    want = install_band(
        FinderConfig(camera_height_m=GEOMETRY.height_m), GEOMETRY.width, GEOMETRY.height, 66.0
    )
    assert f"head band {want[0]:.2f}-{want[1]:.2f} of the height: camera 1.75 m up" in res.stderr
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["finder"] == {"band": list(want), "band_source": "geometry"}
    rows, truth = read_trace(tmp_path / "t.jsonl"), read_truth(clip)
    with_visitor = [i for i, t in enumerate(truth) if t]
    assert sum(1 for i in with_visitor if rows[i]["faces"]) >= 0.9 * len(with_visitor)
    assert not any(r["faces"] for i, r in enumerate(rows) if not truth[i])


def test_camera_failure_midrun_keeps_running_and_recovers(clip, tmp_path):
    res = run(
        [*base_args(clip, tmp_path), "--trace", "t.jsonl"],
        tmp_path,
        MONALISA_FAULT="camera_fail_for:20:1.0",
    )
    assert res.returncode == 0, res.stderr
    rows = read_trace(tmp_path / "t.jsonl")
    assert len(rows) > 40  # frames after the failure were processed
    assert "injected failure" in res.stderr
    assert sum(1 for line in res.stderr.splitlines() if "Traceback" in line) == 0


def test_closed_by_the_schedule_runs_without_the_camera_and_health_says_so(clip, tmp_path):
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[schedule]\ntimezone = "UTC"\nopen = ["daily 00:00-24:00"]\n'
        f'closed = ["{today}..{today + timedelta(days=2)}"]\nscreen = "black"\n'
    )
    res = run(
        [*base_args(clip, tmp_path), "--config", str(cfg), "--trace", "t.jsonl", "--duration", "3"],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "t.jsonl").read_text()  # no camera frame processed
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["gaze_state"] == "closed" and status["camera"]["state"] == "stopped"
    assert status["frames"] == 0
    opens = datetime.combine(today + timedelta(days=3), datetime.min.time(), UTC)
    assert status["schedule"]["until"] == opens.isoformat()
    assert "closed: camera stopped, screen black" in res.stderr
    health = run(["health", "--status-file", str(tmp_path / "status.json")], tmp_path)
    assert health.stdout.startswith("MONALISA ") and "closed until" in health.stdout


def test_bad_config_exits_78_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[gaze]\nno_such_key = 1\n")
    res = run(["run", "--config", str(cfg), "--display", "headless"], tmp_path)
    assert res.returncode == 78
    assert "gaze.no_such_key" in res.stderr and str(cfg) in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("victim", ["patches/frame_003.png", "base.png"])
def test_corrupt_frame_set_exits_78_naming_the_file(clip, tmp_path, victim):
    """A broken patch is found on opening the set; a broken base while it is decoded (in the
    background, as the model loads): both exit 78 with one line naming the file."""
    bad = tmp_path / "frames"
    shutil.copytree(default_frames_dir(), bad)
    (bad / victim).write_bytes(b"\x89PNG broken")
    res = run([*base_args(clip, tmp_path), "--frames", str(bad)], tmp_path)
    assert res.returncode == 78
    assert victim in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_sigterm_stops_within_2s_with_complete_trace(clip, tmp_path):
    args = [
        "run",
        "--camera",
        f"replay:{clip}",
        "--display",
        "headless",
        "--replay-speed",
        "realtime",
        "--trace",
        "t.jsonl",
        "--status-file",
        str(tmp_path / "s.json"),
    ]
    proc = spawn(args, tmp_path)
    try:
        deadline = time.monotonic() + 60
        trace = tmp_path / "t.jsonl"
        while time.monotonic() < deadline:
            if trace.exists() and trace.stat().st_size > 0:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        _out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert took < 2.0, f"took {took:.2f} s to stop"
    text = trace.read_text()
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows and [r["seq"] for r in rows] == list(range(len(rows)))


def tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def test_no_file_written_except_those_asked_for(clip, tmp_path):
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    watched = [home, work, clip, default_frames_dir()]
    before = [tree(d) for d in watched]
    res = run(
        [*base_args(clip, work), "--trace", "t.jsonl", "--screenshot", "s.png"],
        work,
        HOME=str(home),
        TMPDIR=str(tmp_path / "tmp"),
    )
    assert res.returncode == 0, res.stderr
    after = [tree(d) for d in watched]
    assert after[0] == before[0]
    assert set(after[1]) - set(before[1]) == {"t.jsonl", "s.png", "status.json"}
    assert after[2] == before[2] and after[3] == before[3]
    assert not (tmp_path / "tmp").exists()


# -- start-up, logging, demo ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "verbose", "info_shown", "debug_shown"),
    [("warning", False, False, False), ("debug", False, True, True), ("warning", True, True, True)],
)
def test_service_log_level_applies_and_verbose_overrides_it(
    clip, tmp_path, level, verbose, info_shown, debug_shown
):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[service]\nlog_level = "{level}"\n')
    res = run(
        [*base_args(clip, tmp_path), "--config", str(cfg), *(["--verbose"] if verbose else [])],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert ("running: camera" in res.stderr) is info_shown, res.stderr
    assert ("stopping: end of replay" in res.stderr) is info_shown, res.stderr
    assert (" DEBUG " in res.stderr) is debug_shown
    assert "Traceback" not in res.stderr


def signal_during_startup(clip: Path, tmp_path: Path, sig: int) -> tuple[int, str]:
    """Start a run, send ``sig`` as soon as its first ("starting") status exists; (rc, stderr).

    The first status is written once run() has its stop handlers, before the frames, model
    and display load: the earliest moment a signal can be honoured.
    """
    status_file = tmp_path / "status.json"
    proc = spawn([*base_args(clip, tmp_path), "--trace", "t.jsonl"], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not status_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err


def test_sigterm_during_startup_exits_0_without_traceback(clip, tmp_path):
    rc, err = signal_during_startup(clip, tmp_path, signal.SIGTERM)
    assert rc == 0, err
    assert "Traceback" not in err
    # Stopped during start-up, or (on a very fast machine) by the loop's own handler.
    assert "stopping during start-up: SIGTERM" in err or "stopping: SIGTERM" in err, err


def test_first_status_says_starting_and_health_reports_it(tmp_path):
    from appliance import runner
    from appliance.config import parse_config
    from appliance.health import OK, check

    status_file = tmp_path / "status.json"
    cfg = parse_config(
        {
            "frames": {"directory": str(tmp_path / "no-frames")},
            "display": {"driver": "headless"},
            "service": {"status_file": str(status_file)},
        }
    )
    before = signal.getsignal(signal.SIGTERM)
    # The frame set is missing: start-up fails after the first status was written.
    assert runner.run(cfg, config_path="c.toml") == 78
    assert signal.getsignal(signal.SIGTERM) is before  # the start-up handler is removed
    status = json.loads(status_file.read_text())
    assert status["gaze_state"] == "starting"
    assert status["pid"] == os.getpid() and status["config"] == "c.toml"
    assert status["camera"]["source"] == "picamera2"
    result = check(status_file)
    assert result.code == OK, result.line
    startup = [c for c in result.checks if c.name == "startup"]
    assert len(startup) == 1 and startup[0].message.startswith("starting"), result.line


def test_detector_value_error_exits_78_naming_the_key(tmp_path, capsys):
    from appliance import runner
    from appliance.config import parse_config

    cfg = parse_config(
        {"display": {"driver": "headless"}, "service": {"status_file": str(tmp_path / "s")}}
    )
    # A value the config refuses, smuggled past validation: the Detector's ValueError is
    # still a configuration error, not an internal one.
    bad = cfg.model_copy(
        update={"detector": cfg.detector.model_copy(update={"score_threshold": 0.0})}
    )
    assert runner.run(bad) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "detector.score_threshold" in err[0], err


def test_a_follow_detector_only_where_band_mode_follows_with_a_short_model_it_lacks():
    from appliance.config import parse_config
    from appliance.runner import needs_follow_detector

    band = parse_config({})
    assert needs_follow_detector(band, "full")
    assert not needs_follow_detector(band, "short")  # the detector serves the follow crop
    assert not needs_follow_detector(parse_config({"finder": {"mode": "whole"}}), "full")
    assert not needs_follow_detector(parse_config({"finder": {"follow_model": "full"}}), "full")


def test_the_follow_model_is_looked_for_in_model_dir_first(tmp_path, capsys):
    from appliance import runner
    from appliance.config import parse_config

    # model_dir holds a good full-range model and a broken short-range one: the follow crop's
    # model must come from model_dir too (not the source tree's models/), so the run fails on it.
    models = tmp_path / "models"
    models.mkdir()
    (models / "blazeface.tflite").write_bytes((REPO / "models" / "blazeface.tflite").read_bytes())
    (models / "blazeface_short_range.tflite").write_bytes(b"not a model" * 20)
    cfg = parse_config(
        {
            "detector": {"model": "full", "model_dir": str(models)},
            "display": {"driver": "headless"},
            "service": {"status_file": str(tmp_path / "s")},
        }
    )
    assert runner.run(cfg) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{models}/blazeface_short_range.tflite" in err[0], err


def demo(tmp_path: Path, display: str, **extra: str):
    out = tmp_path / "out"
    return run(
        ["demo", "--display", display, "--replay-speed", "max", "--out", str(out)],
        tmp_path,
        120,
        **extra,
    )


def test_demo_headless_prints_summary_and_screenshot_of_last_frame(tmp_path):
    from appliance.config import Config
    from tests.support.display import frame_on_screen

    res = demo(tmp_path, "headless")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    rows = read_trace(out / "demo-trace.jsonl")
    assert rows
    summary = res.stdout
    assert summary.startswith("monalisa demo — ")
    assert "display driver     headless" in summary
    assert f"camera frames      {len(rows)} in " in summary
    assert f"trace              {out / 'demo-trace.jsonl'}" in summary
    assert f"screenshot         {out / 'demo.png'}" in summary
    frames = FrameSet.load(default_frames_dir())
    display = Config().display
    grid = frames.grid
    last = rows[-1]["index"]
    shot = np.asarray(Image.open(out / "demo.png").convert("RGB")).astype(int)

    def diff(gaze: int, lid: int = 0) -> np.ndarray:
        i = grid.index(gaze, grid.rest_row, lid)
        ref = frame_on_screen(
            frames.frame(i), display.window_size, 0, display.fit, display.background
        )
        d: np.ndarray = np.abs(shot - ref.astype(int))
        return d

    # The blink clock runs on between the last trace line and the screenshot (idle redraws):
    # the last gaze with any of its lid phases.
    lids = range(len(grid.lid_phases))
    diffs = [min((diff(last, lid) for lid in lids), key=lambda d: float(d.mean()))]
    diffs.append(diff((last + 1) % grid.gazes))
    assert diffs[0].shape == shot.shape
    assert diffs[0].max() <= 4 and diffs[0].mean() < 0.5, f"not frame {last}"
    assert diffs[1].max() > 4  # the comparison tells neighbouring frames apart


def test_demo_auto_falls_back_to_headless_when_no_window_opens(tmp_path):
    # An X server that is not there: the window cannot be opened (exit 69 without the fallback).
    res = demo(tmp_path, "auto", DISPLAY=":987", WAYLAND_DISPLAY="", SDL_VIDEODRIVER="")
    assert res.returncode == 0, res.stderr
    assert "display driver     headless" in res.stdout
    assert "running the demo headless" in res.stderr
    assert (tmp_path / "out" / "demo.png").exists()
    assert "Traceback" not in res.stderr


def test_sighup_during_startup_is_ignored_and_the_run_goes_on(clip, tmp_path):
    rc, err = signal_during_startup(clip, tmp_path, signal.SIGHUP)
    # Not killed by the signal: the clip plays to its end and the run exits 0.
    assert rc == 0, err
    assert "SIGHUP" in err and "Traceback" not in err
    assert "stopping: end of replay" in err, err
    rows = (tmp_path / "t.jsonl").read_text().splitlines()
    assert len(rows) == len(list(clip.glob("frame_*")))
