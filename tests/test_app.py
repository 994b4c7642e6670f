"""The loop's own logic, with scripted stand-ins for finder, gaze and display.

The real pieces run end to end in tests/test_runner.py; here each fault is placed exactly.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from appliance.app import EX_TEMPFAIL, App, RunOptions, check_frame
from appliance.camera import CameraError, Capture, EndOfStream
from appliance.display import Overlay
from appliance.finder import usable_face
from appliance.types import Box, Face, Follow, Point
from tests.support.faults import FaultyCapture, nan_face, parse


def face_at(x: float) -> Face:
    pts = (
        Point(x - 10, 50),
        Point(x + 10, 50),
        Point(x, 60),
        Point(x, 70),
        Point(x - 20, 55),
        Point(x + 20, 55),
    )
    return Face(Box(x - 25, 30, x + 25, 80), 0.9, pts)


class Script:
    """A lossless source that yields frames, raises CameraError on 'err', ends at the end."""

    name = "script"
    lossless = True

    def __init__(self, items):
        self.items = list(items)
        self.i = 0

    def open(self):
        pass

    def read(self):
        if self.i >= len(self.items):
            raise EndOfStream
        item = self.items[self.i]
        self.i += 1
        if isinstance(item, str):
            raise CameraError("script: unplugged")
        return item, self.i / 30

    def close(self):
        pass


@dataclass(frozen=True)
class Found:
    faces: list[Face]
    inferences: int = 1
    regions: tuple = ()
    band: None = None
    tiles: tuple = ()
    follow: None = None
    dropped: int = 0


class FakeFinder:
    def __init__(self, raise_on=(), nan_on=()):
        self.calls = 0
        self.raise_on = set(raise_on)
        self.nan_on = set(nan_on)
        self.fields_of_view = []  # the views' hfov_deg, degrees
        self.resets = 0
        self.band_fraction = (0.3, 0.9)
        self.band_source = "config"

    def set_view(self, view):
        self.fields_of_view.append(round(view.hfov_deg, 2))

    def reset(self):
        self.resets += 1

    def find(self, frame, follow=None, t=None):
        self.calls += 1
        if self.calls in self.raise_on:
            raise RuntimeError("boom")
        faces = [face_at(float(frame[0, 0, 0]))]
        if self.calls in self.nan_on:
            faces.append(nan_face())
        kept = [f for f in faces if usable_face(f)]  # as the real finder does
        return Found(kept, dropped=len(faces) - len(kept))


@dataclass(frozen=True)
class Rec:
    viewer: int | None
    viewer_box: Box | None
    angle_raw: float | None
    angle: float
    index: int
    state: str
    row: int = 0

    @property
    def follow(self) -> Follow | None:
        return None if self.viewer_box is None else Follow(self.viewer_box)


class FakeGaze:
    def __init__(self):
        self.seen = []
        self.fractions = []

    def set_view(self, view):
        self.fractions.append(view.width_fraction)

    def update(self, faces, t, image_size):
        self.seen.append((len(faces), t))
        if faces:
            x = faces[0].eye_mid.x
            return Rec(1, faces[0].box, x, x, int(x) % 5, "tracking")
        return Rec(None, None, None, 0.0, 2, "idle")


class FakeDisplay:
    def __init__(self, debug=False):
        self.shown = []
        self.closed = False
        self.shots = []
        self.debug = debug
        self.overlays = []

    def set_overlay(self, info):
        self.overlays.append(info)

    def show(self, index, now):
        if self.shown and self.shown[-1] == index:
            return False
        self.shown.append(index)
        return True

    def drawn_for(self, index):
        return index

    def poll(self):
        return []

    def blank(self):
        self.shown.append(None)

    def screenshot(self, path):
        self.shots.append(path)

    def close(self):
        self.closed = True


class Notes:
    def __init__(self):
        self.msgs = []

    def ready(self):
        self.msgs.append(("READY", time.monotonic()))

    def watchdog(self):
        self.msgs.append(("WATCHDOG", time.monotonic()))

    def status(self, text):
        self.msgs.append(("STATUS", text))

    def stopping(self):
        self.msgs.append(("STOPPING", time.monotonic()))


def frame(v: int) -> np.ndarray:
    return np.full((48, 64, 3), v, np.uint8)


def make_app(items, tmp_path: Path | None = None, finder=None, faults="", display=None, **opts):
    statuses = []
    plan = parse(faults)
    make_capture = functools.partial(FaultyCapture, plan) if plan.touches_loop else Capture
    capture = make_capture(Script(items), retry_initial_s=0.01, retry_max_s=0.02)
    app = App(
        capture=capture,
        finder=finder or FakeFinder(),
        gaze=FakeGaze(),
        display=display or FakeDisplay(),
        notifier=Notes(),
        rest_index=2,
        frame_count=5,
        options=RunOptions(
            trace=None if tmp_path is None else tmp_path / "t.jsonl",
            status_interval_s=0.05,
            **opts,
        ),
        status_sink=lambda s: statuses.append(s.to_dict()),
    )
    if isinstance(capture, FaultyCapture):
        capture.stopping = lambda: app.stop_requested
    return app, statuses


def test_replay_end_stops_with_complete_trace(tmp_path):
    app, _statuses = make_app([frame(v) for v in (11, 12, 13, 14)], tmp_path)
    assert app.run() == 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in rows] == [0, 1, 2, 3]
    r = rows[0]
    assert set(r) >= {
        "t",
        "seq",
        "faces",
        "viewer",
        "angle_raw",
        "angle",
        "index",
        "frame_count",
        "state",
        "ms",
        "inferences",
    }
    assert set(r["ms"]) >= {"capture", "detect", "gaze", "draw"}
    assert r["faces"][0]["eyes"] == [[1.0, 50.0], [21.0, 50.0]]
    assert r["frame_count"] == 5 and r["state"] == "tracking" and r["viewer"] == 1
    assert [r["index"] for r in rows] == [11 % 5, 12 % 5, 13 % 5, 14 % 5]
    assert app.display.closed
    names = [m[0] for m in app.notifier.msgs]
    assert names[0] == "READY" and names[-1] == "STOPPING"


def test_a_set_with_rows_and_lids_shows_the_rest_row_and_traces_pitch_and_lids(tmp_path):
    """The default set (33 gazes x 5 rows x 4 lid phases): the gaze chosen picks its frame in
    the row the gaze record gives (a FakeGaze gives row 0: the lowest), eyes open unless the
    blink clock closes them; the trace says the pitch and lids of the frame shown."""
    from appliance.config import GazeConfig
    from appliance.frames import MANIFEST_NAME, default_frames_dir, parse_manifest
    from appliance.gaze.blink import BlinkClock

    grid = parse_manifest(default_frames_dir() / MANIFEST_NAME)
    display = FakeDisplay()
    app, _ = make_app([frame(v) for v in (11, 12, 13, 14)], tmp_path, display=display)
    app.grid, app.row = grid, grid.rest_row
    app.blink = BlinkClock(GazeConfig(blink=False), enabled=False)
    assert app.run() == 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [11 % 5, 12 % 5, 13 % 5, 14 % 5]
    assert all(r["lids"] == 0.0 for r in rows)
    assert [r["pitch"] for r in rows] == [grid.pitches[0]] * 4  # FakeGaze's rows are 0
    assert display.shown[0] == grid.index(2, grid.rest_row, 0)  # the rest gaze, at start
    assert display.shown[1:] == [grid.index(v % 5, 0, 0) for v in (11, 12, 13, 14)]
    # Every frame drawn as asked (the stand-in display has them all):
    assert [(r["drawn_index"], r["drawn_pitch"], r["drawn_lids"]) for r in rows] == [
        (r["index"], r["pitch"], r["lids"]) for r in rows
    ]


def test_the_trace_and_status_record_the_frame_drawn_while_patches_are_rendered(
    tmp_path, monkeypatch
):
    """The default grid opened as the appliance opens it (its patches rendered after READY),
    the worker held in a read(2) on a pipe nobody writes to before it renders anything: every
    frame asked for is drawn as the rest frame, the one rendered before the first draw. The
    trace keeps the frame asked for (index, pitch, lids) and records the one drawn beside it;
    the status too."""
    from appliance.config import DisplayConfig, GazeConfig
    from appliance.display import Display
    from appliance.display import screen as screen_module
    from appliance.display.prepare import render_stages
    from appliance.frames import Portrait, default_frames_dir
    from appliance.gaze.blink import BlinkClock

    read_end, write_end = os.pipe()

    def held_stages(grid):
        os.read(read_end, 1)  # blocks until the test lets it go
        yield from render_stages(grid)

    monkeypatch.setattr(screen_module, "render_stages", held_stages)
    portrait = Portrait.open(default_frames_dir())
    grid = portrait.grid
    display = Display(DisplayConfig(window_size=(160, 120)), portrait, "headless", background=True)
    try:
        app, statuses = make_app([frame(v) for v in (11, 12, 13, 14)], tmp_path, display=display)
        app.grid, app.row = grid, grid.rest_row
        app.blink = BlinkClock(GazeConfig(blink=False), enabled=False)
        assert app.run() == 0
        assert display.frames_ready == 1  # the rest frame only, all along
    finally:
        os.write(write_end, b"x")  # the worker renders the rest and ends (a daemon anyway)
        os.close(write_end)
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [11 % 5, 12 % 5, 13 % 5, 14 % 5]
    assert [r["pitch"] for r in rows] == [grid.pitches[0]] * 4  # asked: FakeGaze's row 0
    rest_pitch = grid.pitches[grid.rest_row]
    assert rest_pitch != grid.pitches[0]
    assert [(r["drawn_index"], r["drawn_pitch"], r["drawn_lids"]) for r in rows] == [
        (grid.rest_gaze, rest_pitch, 0.0)
    ] * 4
    assert all(grid.index(*grid.place(i)) == i for i in range(grid.count))
    asked = [(s["frame_index"], s["drawn_index"]) for s in statuses]
    assert asked and all(d == grid.rest_gaze for _, d in asked)
    assert {a for a, _ in asked} <= {2, 11 % 5, 12 % 5, 13 % 5, 14 % 5}  # never the rest gaze
    assert grid.rest_gaze not in {2, 1, 3, 4, 0}


def test_the_finder_forgets_when_the_camera_is_reopened():
    app, _ = make_app([frame(11), frame(12), "err", frame(13), frame(14)])
    assert app.run() == 0
    assert app.finder.calls == 4 and app.finder.resets == 1  # once, at the new opening
    cam = app.status().to_dict()["camera"]
    assert cam["reopens"] == 1 and cam["stalls"] == 0 and cam["failures"] == 1


def test_a_camera_that_cannot_be_recovered_ends_the_loop_with_exit_75(caplog):
    class Away(Script):
        def open(self):
            raise CameraError("script: no camera")

    app, _ = make_app([])
    app.capture = Capture(Away([]), retry_initial_s=0.01, retry_max_s=0.02, handover_after_s=0.3)
    with caplog.at_level("INFO"):
        assert app.run() == EX_TEMPFAIL == 75
    lines = [r for r in caplog.records if "systemd restarts" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "ERROR"
    assert "no frame for" in lines[0].getMessage()
    names = [m[0] for m in app.notifier.msgs]
    assert names[0] == "READY" and names[-1] == "STOPPING" and "WATCHDOG" in names
    assert app.display.closed


def test_a_cropped_sensor_narrows_the_gaze_field_of_view_once(caplog):
    src = Script([frame(v) for v in (11, 12, 13)])
    src.width_fraction = 0.75  # type: ignore[attr-defined]  # Picamera2Source's 4:3 on 16:9
    app, _ = make_app([])
    app.capture = Capture(src, retry_initial_s=0.01, retry_max_s=0.02)
    with caplog.at_level("INFO", logger="appliance.app"):
        assert app.run() == 0
    assert app.gaze.fractions == [0.75]  # once, not every frame
    assert app.finder.fields_of_view == [51.94]  # the same view as the gaze's
    assert "75 % of its sensor's width" in caplog.text
    cam = app.status().to_dict()["camera"]
    assert cam["sensor_width_fraction"] == 0.75 and cam["hfov_deg"] == 51.94  # the view's


def test_a_full_width_source_leaves_the_field_of_view_alone():
    app, _ = make_app([frame(v) for v in (11, 12)])
    assert app.run() == 0
    assert app.gaze.fractions == [] and app.finder.fields_of_view == []
    cam = app.status().to_dict()["camera"]
    assert cam["sensor_width_fraction"] == 1.0 and cam["hfov_deg"] is None


def test_overlay_figures_come_from_the_loop_objects_while_the_overlay_is_on():
    display = FakeDisplay(debug=True)
    app, _ = make_app([frame(v) for v in (11, 12, 13)], display=display)
    assert app.run() == 0
    assert len(display.overlays) == 3
    info = display.overlays[-1]
    assert isinstance(info, Overlay)
    assert info.image_size == (64, 48) and info.state == "tracking"
    assert len(info.faces) == 1 and info.viewer == face_at(13.0).box and info.fps > 0
    assert info.tiles == () and info.follow is None  # a result without a tile plan
    off = FakeDisplay()
    app, _ = make_app([frame(v) for v in (11, 12, 13)], display=off)
    assert app.run() == 0
    assert off.overlays == []  # no figures are built while the overlay is off


def test_first_frame_is_rest_index_before_camera():
    app, _ = make_app([frame(13)])
    app.run()
    assert app.display.shown[0] == 2


def test_camera_error_midrun_keeps_portrait_and_recovers(tmp_path):
    app, _statuses = make_app([frame(11), "err", frame(12), frame(13)], tmp_path)
    assert app.run() == 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert app.capture.failures == 1
    assert app.capture.last_error == "script: unplugged"
    assert rows[-1]["state"] == "tracking"


def test_bad_frames_are_skipped_not_fatal(tmp_path):
    items = [frame(11), np.zeros((4, 4, 3), np.uint8), frame(12).astype(np.float32), frame(13)]
    app, _ = make_app(items, tmp_path)
    assert app.run() == 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [len(r["faces"]) for r in rows] == [1, 0, 0, 1]
    assert app.stats.bad_frames == 2
    assert "dtype float32" in (app.status().to_dict()["last_error"] or "")


def test_detector_exception_and_nan_faces_are_survived(tmp_path):
    app, _ = make_app(
        [frame(v) for v in (11, 12, 13, 14)],
        tmp_path,
        finder=FakeFinder(raise_on={2}, nan_on={3}),
    )
    assert app.run() == 0
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [len(r["faces"]) for r in rows] == [1, 0, 1, 1]
    assert app.stats.errors == 2


def test_status_sink_gets_json_ready_figures(tmp_path):
    items = [frame(11)] * 30
    app, statuses = make_app(items, tmp_path)
    app.options.status_interval_s = 0.0
    app.run()
    assert statuses, "no status was written"
    s = statuses[-1]
    json.dumps(s)
    assert s["camera"]["source"] == "script"
    assert s["frame_count"] == 5 and s["frames"] >= 1
    assert s["viewers_last_minute"] == 1


def test_a_status_write_that_blocks_never_holds_the_loop(tmp_path, caplog):
    # The sink opens a FIFO nobody writes to: a real blocking system call (open(2)), as a
    # status file on a stuck SD card or a vcgencmd that does not answer.
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    entered = threading.Event()
    calls = []

    def stuck_sink(status):
        calls.append(status)
        entered.set()
        with open(fifo, encoding="utf-8") as f:
            f.read()

    app, _ = make_app([frame(11)] * 100_000)
    app.status_sink = stuck_sink
    app.options.status_interval_s = 0.05

    def after_entry(name):
        return [t for n, t in app.notifier.msgs if n == name and t > stuck_at[0]]

    stuck_at = [0.0]

    def stop_when_shown():
        entered.wait(60)
        stuck_at[0] = time.monotonic()
        frames_then = app.stats.frames
        deadline = stuck_at[0] + 60
        while time.monotonic() < deadline:
            # (the loop calls watchdog() every iteration: the notifier keeps the rate)
            statuses = sum(1 for m in app.notifier.msgs if m[0] == "STATUS")
            fed = len(after_entry("WATCHDOG")) >= 3 and app.stats.frames > frames_then + 10
            if fed and statuses >= 3:
                break
            time.sleep(0.05)
        app.request_stop("test")

    threading.Thread(target=stop_when_shown, daemon=True).start()
    with caplog.at_level("WARNING", logger="appliance.app"):
        assert app.run() == 0
    assert len(after_entry("WATCHDOG")) >= 3  # the loop kept feeding the watchdog...
    statuses = [m for m in app.notifier.msgs if m[0] == "STATUS"]
    assert len(statuses) >= 3  # ...and systemd's STATUS= line
    assert len(calls) == 1  # newer statuses waited behind the stuck one, none piled up
    assert "did not finish" in caplog.text
    with open(fifo, "w", encoding="utf-8") as f:  # let the worker go
        f.write("x")


def test_stop_request_ends_loop_promptly():
    gate = threading.Event()

    class Forever(Script):
        lossless = False

        def read(self):
            gate.wait(0.01)
            return frame(11), time.monotonic()

    app = App(
        capture=Capture(Forever([])),
        finder=FakeFinder(),
        gaze=FakeGaze(),
        display=FakeDisplay(),
        notifier=Notes(),
        rest_index=0,
        frame_count=5,
        options=RunOptions(),
    )
    threading.Timer(0.3, app.request_stop, args=("test",)).start()
    t0 = time.monotonic()
    assert app.run() == 0
    assert time.monotonic() - t0 < 10  # generous: proves it stops, not how fast


def test_hang_fault_stops_watchdog_pings():
    app, _ = make_app([frame(11)] * 1000, faults="hang_after:3")
    threading.Timer(1.5, app.request_stop, args=("test",)).start()
    app.run()
    pings = [t for name, t in app.notifier.msgs if name == "WATCHDOG"]
    stop = next(t for name, t in app.notifier.msgs if name == "STOPPING")
    assert pings, "no watchdog ping before the hang"
    assert stop - pings[-1] > 1.0  # no ping during the hang


def test_check_frame():
    assert check_frame(frame(1)) is None
    assert "dtype" in (check_frame(frame(1).astype(np.float32)) or "")
    assert "shape" in (check_frame(np.zeros((20, 20), np.uint8)) or "")
    assert "small" in (check_frame(np.zeros((2, 2, 3), np.uint8)) or "")
    assert "not an array" in (check_frame(None) or "")


def test_trace_on_a_full_disk_is_dropped_not_fatal(caplog):
    import logging

    app, _ = make_app([frame(11)] * 200)
    app.options.trace = Path("/dev/full")  # every write: ENOSPC
    app.options.status_interval_s = 0.0
    with caplog.at_level(logging.WARNING):
        assert app.run() == 0
    assert app.stats.frames == 200
    lines = [r.getMessage() for r in caplog.records if "trace" in r.getMessage()]
    assert len(lines) == 1 and "No space left" in lines[0] and "/dev/full" in lines[0]


class CadenceFinder(FakeFinder):
    """Runs the detector (2 inferences) on every third frame only, like a still, empty room."""

    def find(self, frame, follow=None, t=None):
        found = super().find(frame, follow, t)
        ran = self.calls % 3 == 1
        return Found(found.faces if ran else [], inferences=2 if ran else 0)


def test_detector_load_counts_inferences_and_skipped_frames_are_not_timings():
    app, _statuses = make_app([frame(11)] * 30, finder=CadenceFinder())
    assert app.run() == 0
    st = app.stats
    assert [n for _, n, _ in st.detector_load] == [2, 0, 0] * 10
    assert len(st.detect_ms) == 10  # only frames the detector ran on are timed
    now = st.detector_load[-1][0]
    load = app.status(now).load
    assert load is not None
    span = min(60.0, now - st.started)
    assert load.inferences_per_s == pytest.approx(20 / span, rel=0.02)
    total_ms = sum(ms for _, _, ms in st.detector_load)
    assert load.detector_ms_per_s == pytest.approx(total_ms / span, abs=0.1)


def test_the_loop_is_behind_while_it_keeps_under_90_percent_of_the_camera_fps():
    app, _statuses = make_app([frame(11)] * 3)
    app.run()
    app.capture = types.SimpleNamespace(state="running", fps=30.0)
    st = app.stats
    st.frame_times.clear()
    st.frame_times.extend(100.0 + i / 25.0 for i in range(100))  # 25 fps: 83 % of 30
    assert app._load(104.0).behind_for_s == 0.0  # the first look starts the clock
    st.frame_times.extend(104.0 + i / 25.0 for i in range(1, 1501))
    assert app._load(164.0).behind_for_s == 60.0
    st.frame_times.extend(164.0 + i / 29.0 for i in range(1, 300))  # caught up: 29 fps
    assert app._load(174.3).behind_for_s == 0.0
