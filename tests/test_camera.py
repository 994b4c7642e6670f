from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from appliance.camera import (
    CameraError,
    Capture,
    EndOfStream,
    Picamera2Source,
    ReplaySource,
    WebcamSource,
    parse_source,
)


def make_clip(path: Path, n: int, fps: float | None = 30.0, size=(32, 24)) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size[1], size[0], 3), i, dtype=np.uint8)
        Image.fromarray(img).save(path / f"frame_{i:05d}.png")
    if fps is not None:
        (path / "clip.toml").write_text(f"fps = {fps}\n")
    return path


def test_replay_plays_in_name_order_with_clip_clock(tmp_path):
    src = ReplaySource(make_clip(tmp_path / "c", 5, fps=10), speed="max")
    src.open()
    got = [src.read() for _ in range(5)]
    assert [int(img[0, 0, 0]) for img, _ in got] == [0, 1, 2, 3, 4]
    assert [t for _, t in got] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert got[0][0].shape == (24, 32, 3) and got[0][0].dtype == np.uint8
    with pytest.raises(EndOfStream):
        src.read()


def test_replay_converts_gray_and_rgba(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(d / "a.png")
    Image.fromarray(np.full((8, 8, 4), 9, np.uint8)).save(d / "b.png")
    src = ReplaySource(d, speed="max")
    src.open()
    a, _ = src.read()
    b, _ = src.read()
    assert a.shape == (8, 8, 3) and int(a[0, 0, 1]) == 7
    assert b.shape == (8, 8, 3) and int(b[0, 0, 2]) == 9


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "replay folder not found"),
        (lambda d: d.mkdir(), "no images to replay"),
        (lambda d: (make_clip(d, 1), (d / "clip.toml").write_text("fps = [")), "invalid clip"),
        (lambda d: (make_clip(d, 1), (d / "clip.toml").write_text("fps = 0")), "fps = 0"),
    ],
)
def test_replay_open_errors_name_the_problem(tmp_path, setup, message):
    d = tmp_path / "clip"
    setup(d)
    with pytest.raises(CameraError, match=message):
        ReplaySource(d).open()


def test_replay_unreadable_frame_is_a_camera_error(tmp_path):
    d = make_clip(tmp_path / "c", 1)
    (d / "frame_00001.png").write_bytes(b"not a png")
    src = ReplaySource(d, speed="max")
    src.open()
    src.read()
    with pytest.raises(CameraError, match=r"frame_00001\.png"):
        src.read()


def test_parse_source():
    assert isinstance(parse_source("picamera2"), Picamera2Source)
    assert isinstance(parse_source("webcam"), WebcamSource)
    cam = parse_source("webcam:2")
    assert isinstance(cam, WebcamSource) and cam.index == 2
    rep = parse_source("replay:/x", speed="max")
    assert isinstance(rep, ReplaySource) and rep.lossless
    for bad in ["", "replay:", "webcam:x", "usb"]:
        with pytest.raises(ValueError, match="camera"):
            parse_source(bad)


def test_picamera2_missing_gives_clear_error():
    with pytest.raises(CameraError, match="python3-picamera2"):
        Picamera2Source(640, 480, 30).open()


class FakeRequest:
    """A completed picamera2 request: one frame and its metadata, to be released."""

    def __init__(self, image: np.ndarray, stamp_ns: int | None, fail: bool = False) -> None:
        self.image, self.stamp_ns, self.fail, self.released = image, stamp_ns, fail, False

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main" and not self.released
        if self.fail:
            raise RuntimeError("dma-buf mmap failed")
        return self.image.copy()

    def get_metadata(self) -> dict[str, object]:
        return {} if self.stamp_ns is None else {"SensorTimestamp": self.stamp_ns}

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    """Stands in for picamera2.Picamera2 (libcamera exists only on a Pi): records the calls.

    It answers as a Camera Module 3 does (IMX708, 4608×2592 pixel array, its three modes): the
    ISP keeps the stream's aspect ratio by cropping what the sensor mode covers (a 4:3 stream
    from the 16:9 sensor: 3456×2592). Without a ``sensor`` request it takes, as libcamera may,
    the smallest mode at least as large as the stream: the 1536×864 one, a central crop.
    """

    MODES: ClassVar[list[dict[str, Any]]] = [
        {
            "size": (1536, 864),
            "fps": 120.13,
            "crop_limits": (768, 432, 3072, 1728),
            "bit_depth": 10,
        },
        {"size": (2304, 1296), "fps": 56.03, "crop_limits": (0, 0, 4608, 2592), "bit_depth": 10},
        {"size": (4608, 2592), "fps": 14.35, "crop_limits": (0, 0, 4608, 2592), "bit_depth": 10},
    ]

    instances: ClassVar[list[FakePicamera2]] = []
    fail_start: ClassVar[bool] = False
    stalled: ClassVar[bool] = False  # the camera stopped delivering (picamera2 #1004)
    wedged: ClassVar[int | None] = None  # a pipe's read end: reads block in read(2) on it
    stamp_ns: int | None = None  # SensorTimestamp of the next frames, ns; None = none

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.waits: list[float | None] = []
        self.config: dict[str, Any] = {}
        self.camera_properties = {"PixelArraySize": (4608, 2592), "Model": "imx708"}
        self.sensor_modes = [dict(m) for m in self.MODES]
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kw: object) -> dict[str, object]:
        self.calls.append("create_video_configuration")
        return dict(kw)

    def configure(self, config: dict[str, object]) -> None:
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        self.calls.append("start")
        if FakePicamera2.fail_start:
            raise RuntimeError("Camera __init__ sequence did not complete.")

    def mode(self) -> dict[str, Any]:
        want = self.config.get("sensor") or {}
        if want:
            return next(m for m in self.MODES if m["size"] == want["output_size"])
        w, h = self.config["main"]["size"]
        return next(m for m in self.MODES if m["size"][0] >= w and m["size"][1] >= h)

    def capture_metadata(self, wait: float | None = None) -> dict[str, object]:
        assert wait is not None, "capture_metadata() without wait= blocks for ever"
        w, h = self.config["main"]["size"]
        x, y, cw, ch = self.mode()["crop_limits"]
        if cw * h > ch * w:  # the mode is wider than the stream: crop its sides
            crop = (x + (cw - ch * w // h) // 2, y, ch * w // h, ch)
        else:
            crop = (x, y + (ch - cw * h // w) // 2, cw, cw * h // w)
        return {"ScalerCrop": crop, "SensorTimestamp": 1}

    def capture_request(self, wait: float | None = None) -> FakeRequest:
        self.calls.append("capture_request")
        self.waits.append(wait)
        if FakePicamera2.wedged is not None:  # a camera stack that ignores wait= (#1086)
            os.read(FakePicamera2.wedged, 1)
        if FakePicamera2.stalled:  # as picamera2 does when asked to wait at most `wait` s
            if wait is None:
                raise AssertionError("capture_request() without wait= blocks for ever")
            time.sleep(wait)
            raise TimeoutError
        w, h = self.config["main"]["size"]
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 200  # red first: "BGR888" is R, G, B in memory
        self.request = FakeRequest(img, self.stamp_ns)
        return self.request

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    import sys
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.instances = []
    FakePicamera2.fail_start = False
    FakePicamera2.stalled = False
    FakePicamera2.wedged = None
    return FakePicamera2


def test_a_wedged_picamera2_read_is_abandoned_and_the_process_hands_over(
    fake_picamera2: type[FakePicamera2],
) -> None:
    """capture_request blocks in read(2) despite wait=: the read is abandoned, no second
    Picamera2 is opened while it holds the camera, and hand_over asks for a fresh process."""
    src = Picamera2Source(320, 240, fps=30, read_timeout_s=0.05)
    cap = Capture(src, retry_initial_s=0.05, stall_after_s=0.2)
    r, w = os.pipe()
    cap.start()
    try:
        assert cap.latest(5.0) is not None
        fake_picamera2.wedged = r
        deadline = time.monotonic() + 30
        while cap.hand_over is None and time.monotonic() < deadline:
            cap.supervise()
            time.sleep(0.01)
        assert cap.hand_over == "camera: an abandoned read still holds picamera2"
        assert cap.stalls == 1 and len(fake_picamera2.instances) == 1
    finally:
        fake_picamera2.wedged = None
        os.write(w, b"x")  # let the abandoned read go
        cap.stop()
        deadline = time.monotonic() + 30
        while cap.threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.close(r)
        os.close(w)
    assert fake_picamera2.instances[0].calls[-2:] == ["stop", "close"]  # by its own thread


def test_a_stalled_picamera2_read_times_out_and_its_thread_reopens_the_camera(
    fake_picamera2: type[FakePicamera2],
) -> None:
    """capture_request is asked to wait at most read_timeout_s: the capture thread itself
    then closes and reopens the camera (no read is abandoned, no second thread)."""
    src = Picamera2Source(320, 240, fps=30, read_timeout_s=0.05)
    cap = Capture(src, retry_initial_s=0.01, retry_max_s=0.02, stall_after_s=5.0)
    cap.start()
    try:
        assert cap.latest(5.0) is not None
        fake_picamera2.stalled = True
        deadline = time.monotonic() + 30
        while len(fake_picamera2.instances) < 3 and time.monotonic() < deadline:
            cap.supervise()
            time.sleep(0.01)
        assert str(cap.state) == "failed" and cap.last_error == "picamera2: no frame within 0.05 s"
        fake_picamera2.stalled = False
        while str(cap.state) != "running" and time.monotonic() < deadline:
            cap.supervise()
            time.sleep(0.01)
        assert str(cap.state) == "running" and cap.stalls == 0 and cap.reopens >= 2
        assert len(cap.threads()) == 1
        first = fake_picamera2.instances[0]
        assert set(first.waits) == {0.05} and first.calls[-2:] == ["stop", "close"]
    finally:
        cap.stop()


@pytest.mark.parametrize(
    ("size", "fraction"), [((1280, 960), 0.75), ((1280, 720), 1.0), ((1536, 864), 1.0)]
)
def test_picamera2_stream_size_rgb_and_sensor_crop(
    fake_picamera2: type[FakePicamera2],
    size: tuple[int, int],
    fraction: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = Picamera2Source(*size, fps=30)
    with caplog.at_level("WARNING", logger="appliance.camera"):
        src.open()
    (cam,) = fake_picamera2.instances
    assert cam.config["main"] == {"size": size, "format": "BGR888"}
    # The binned mode that spans the whole sensor, not the 120-fps central crop.
    assert cam.config["sensor"] == {"output_size": (2304, 1296), "bit_depth": 10}
    assert cam.config["controls"] == {"FrameRate": 30}
    assert src.width_fraction == pytest.approx(fraction)
    assert ("75 % of the sensor's width" in caplog.text) == (fraction < 1)
    cap = Capture(src)
    assert cap.width_fraction == pytest.approx(fraction)
    img, t = src.read()
    assert img.shape == (size[1], size[0], 3) and img.flags["C_CONTIGUOUS"]
    assert img[0, 0].tolist() == [200, 0, 0] and t >= 0
    assert cam.request.released
    src.close()
    src.close()  # twice is fine
    assert cam.calls[-2:] == ["stop", "close"]
    with pytest.raises(CameraError, match="not open"):
        src.read()


@pytest.mark.parametrize(
    "size", [(1280, 960), (1280, 720), (640, 480), (1920, 1080), (800, 800), (1280, 480)]
)
def test_expected_width_fraction_is_what_the_camera_then_reports(
    fake_picamera2: type[FakePicamera2], size: tuple[int, int]
) -> None:
    """What ``monalisa band`` predicts at installation is what the running camera measures."""
    from appliance.optics import CAMERA_MODULE_3_SENSOR, expected_width_fraction

    src = Picamera2Source(*size, fps=30)
    src.open()
    (cam,) = fake_picamera2.instances
    assert cam.camera_properties["PixelArraySize"] == CAMERA_MODULE_3_SENSOR
    want = expected_width_fraction(size, CAMERA_MODULE_3_SENSOR)
    assert src.width_fraction == pytest.approx(want, abs=1e-3)
    assert (want < 1.0) == (size[0] * 9 < size[1] * 16)
    src.close()


def test_an_old_picamera2_without_sensor_argument_still_starts(
    fake_picamera2: type[FakePicamera2], monkeypatch: pytest.MonkeyPatch
) -> None:
    def old_create(self: FakePicamera2, main: Any, buffer_count: int, controls: Any) -> Any:
        return {"main": main, "buffer_count": buffer_count, "controls": controls}

    monkeypatch.setattr(FakePicamera2, "create_video_configuration", old_create)
    src = Picamera2Source(1280, 720, 30)
    src.open()
    (cam,) = fake_picamera2.instances
    assert "sensor" not in cam.config
    # libcamera then picks the central-crop mode; the measured fraction says so.
    assert src.width_fraction == pytest.approx(3072 / 4608)


def test_picamera2_frames_are_timed_by_the_sensor_and_buffers_always_released(
    fake_picamera2: type[FakePicamera2],
) -> None:
    src = Picamera2Source(1280, 720, 30)
    src.open()
    (cam,) = fake_picamera2.instances
    taken = time.monotonic() - 0.040  # exposed 40 ms before the read
    cam.stamp_ns = round(taken * 1e9)
    _img, t = src.read()
    assert t == pytest.approx(taken - src._t0, abs=1e-6)
    cam.stamp_ns = 12_345  # a clock that is not monotonic's (e.g. after a driver bug)
    before = time.monotonic() - src._t0
    _img, t = src.read()
    assert before <= t <= time.monotonic() - src._t0
    # A failed copy still hands the buffer back, and is a CameraError.
    req_holder: list[FakeRequest] = []

    def failing(wait: float | None = None) -> FakeRequest:
        req_holder.append(FakeRequest(np.zeros((2, 2, 3), np.uint8), None, fail=True))
        return req_holder[-1]

    cam.capture_request = failing  # type: ignore[method-assign]
    with pytest.raises(CameraError, match="capture failed: dma-buf"):
        src.read()
    assert req_holder[0].released


def test_picamera2_start_failure_is_a_camera_error(fake_picamera2: type[FakePicamera2]) -> None:
    fake_picamera2.fail_start = True
    with pytest.raises(CameraError, match="cannot start the camera: Camera __init__"):
        Picamera2Source(1280, 960, 30).open()
    (cam,) = fake_picamera2.instances
    assert cam.calls[-1] == "close"  # released, so the capture thread's retry can open it


def test_left_to_itself_the_stand_in_takes_the_cropped_mode(
    fake_picamera2: type[FakePicamera2],
) -> None:
    # What choose_sensor_mode prevents: the smallest mode covering 1280×720 is a crop.
    cam = FakePicamera2()
    cam.configure({"main": {"size": (1280, 720)}})
    crop = cam.capture_metadata(wait=1.0)["ScalerCrop"]
    assert crop == (768, 432, 3072, 1728)  # 2/3 of the width


def test_choose_sensor_mode() -> None:
    from appliance.camera import choose_sensor_mode

    modes = FakePicamera2.MODES
    assert choose_sensor_mode(modes, (1280, 720), 30)["size"] == (2304, 1296)  # type: ignore[index]
    assert choose_sensor_mode(modes, (640, 480), 100)["size"] == (2304, 1296)  # type: ignore[index]
    assert choose_sensor_mode(modes, (4000, 2000), 10)["size"] == (4608, 2592)  # type: ignore[index]
    assert choose_sensor_mode(modes, (4000, 2000), 30)["size"] == (4608, 2592)  # type: ignore[index]
    assert choose_sensor_mode(modes, (9999, 9999), 30)["size"] == (4608, 2592)  # type: ignore[index]
    assert choose_sensor_mode([], (1280, 720), 30) is None
    assert choose_sensor_mode([{"size": (1, 2)}], (1280, 720), 30) is None
    assert choose_sensor_mode(None, (1280, 720), 30) is None


def test_sensor_width_fraction_from_libcamera_figures() -> None:
    from appliance.camera import sensor_width_fraction

    assert sensor_width_fraction((576, 0, 3456, 2592), (4608, 2592)) == pytest.approx(0.75)
    assert sensor_width_fraction((0, 0, 4608, 2592), (4608, 2592)) == 1.0
    assert sensor_width_fraction(None, (4608, 2592)) == 1.0  # unknown: the lens's whole width
    assert sensor_width_fraction((0, 0, 9999, 1), (4608, 2592)) == 1.0
    assert sensor_width_fraction((0, 0, 100, 100), (0, 0)) == 1.0


class ListSource:
    """A scripted source: each item is an image, an exception to raise, or 'end'."""

    def __init__(self, script, lossless=False, open_failures=0):
        self.name = "scripted"
        self.lossless = lossless
        self.script = list(script)
        self.open_failures = open_failures
        self.opens = 0
        self.closes = 0
        self.t = 0.0

    def open(self):
        self.opens += 1
        if self.open_failures > 0:
            self.open_failures -= 1
            raise CameraError("scripted: cannot open")

    def read(self):
        if not self.script:
            time.sleep(0.01)
            raise EndOfStream
        item = self.script.pop(0)
        if isinstance(item, str):
            raise EndOfStream
        if isinstance(item, Exception):
            raise item
        self.t += 1 / 30
        return item, self.t

    def close(self):
        self.closes += 1


def img(v: int) -> np.ndarray:
    return np.full((4, 4, 3), v, np.uint8)


def drain(cap: Capture, timeout=5.0) -> list[int]:
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cap.ended:
        f = cap.latest(0.05)
        if f is not None:
            got.append(int(f.image[0, 0, 0]))
    return got


def test_lossless_capture_hands_over_every_frame_in_order():
    cap = Capture(ListSource([img(i) for i in range(50)], lossless=True))
    cap.start()
    assert drain(cap) == list(range(50))
    assert cap.state == "ended"
    cap.stop()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names via /proc: Linux")
def test_the_capture_thread_is_named_for_the_kernel():
    """``top -H`` and the budget benchmark tell the capture thread from the loop by name."""
    cap = Capture(ListSource([img(i) for i in range(5)], lossless=True))
    cap.start()
    try:
        assert cap.latest(2.0) is not None  # the thread is running and has named itself
        (thread,) = cap.threads()
        tid = thread.native_id
        comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        assert comm == "capture"
        assert Path("/proc/self/comm").read_text().strip() != "capture"  # only that thread
    finally:
        cap.stop()


def test_live_capture_keeps_only_the_newest_frame():
    cap = Capture(ListSource([img(i) for i in range(20)] + ["end"], lossless=False))
    cap.start()
    deadline = time.monotonic() + 5
    while cap.state != "ended" and time.monotonic() < deadline:
        time.sleep(0.01)
    # Nothing was taken while the source ran: only the last frame is left.
    f = cap.latest(0.1)
    assert f is not None and int(f.image[0, 0, 0]) == 19 and f.seq == 19
    assert cap.latest(0.05) is None
    cap.stop()


def test_capture_recovers_after_read_and_open_failures():
    src = ListSource(
        [img(1), CameraError("scripted: unplugged"), img(2), img(3)],
        lossless=True,
        open_failures=2,
    )
    cap = Capture(src, retry_initial_s=0.01, retry_max_s=0.02)
    cap.start()
    assert drain(cap) == [1, 2, 3]
    assert cap.failures == 3  # two failed opens, one failed read
    assert cap.last_error == "scripted: unplugged"
    assert src.opens == 4 and src.closes >= 2
    cap.stop()


def test_capture_state_is_failed_while_camera_is_away():
    src = ListSource([], open_failures=10**6)
    cap = Capture(src, retry_initial_s=0.01, retry_max_s=0.05)
    cap.start()
    deadline = time.monotonic() + 5
    while src.opens < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cap.state == "failed"
    assert cap.failed_since is not None
    assert cap.latest(0.05) is None
    cap.stop()
    assert str(cap.state) == "stopped"


def test_supervise_marks_silent_camera_failed():
    gate = threading.Event()

    class Silent(ListSource):
        def read(self):
            if self.script:
                return super().read()
            gate.wait(5)
            raise EndOfStream

    cap = Capture(Silent([img(5)]), stall_after_s=0.5)
    cap.start()
    f = cap.latest(2.0)
    assert f is not None
    assert cap.state == "running"
    cap.supervise(now=time.monotonic() + 0.1)
    assert cap.state == "running"
    cap.supervise(now=time.monotonic() + 1.0)
    assert str(cap.state) == "failed" and "no frame for" in (cap.last_error or "")
    gate.set()
    cap.stop()


def test_fps_counts_recent_frames():
    cap = Capture(ListSource([img(i) for i in range(10)] + ["end"]))
    assert cap.fps == 0.0
    cap.start()
    drain(cap, 2)
    assert cap.fps > 0
    cap.stop()


def test_replay_loop_from_clip_toml_keeps_clock_running(tmp_path):
    d = make_clip(tmp_path / "c", 3, fps=10)
    (d / "clip.toml").write_text("fps = 10\nloop = true\n")
    src = ReplaySource(d, speed="max")
    src.open()
    got = [src.read() for _ in range(7)]
    assert [int(img[0, 0, 0]) for img, _ in got] == [0, 1, 2, 0, 1, 2, 0]
    assert [t for _, t in got] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


def test_replay_loop_must_be_a_boolean(tmp_path):
    d = make_clip(tmp_path / "c", 1)
    (d / "clip.toml").write_text('loop = "yes"\n')
    with pytest.raises(CameraError, match="loop"):
        ReplaySource(d).open()


def test_replay_reopened_in_realtime_does_not_wait_for_the_past(tmp_path):
    src = ReplaySource(make_clip(tmp_path / "c", 40, fps=4), speed="realtime")
    src.open()
    for _ in range(30):
        src._i += 1  # as if 30 frames had been played
    src.close()
    src.open()
    t0 = time.monotonic()
    _img, t = src.read()
    assert t == pytest.approx(7.5)
    assert time.monotonic() - t0 < 3.0  # paced from frame 0 it would wait 7.5 s


def test_a_camera_away_for_long_is_logged_once_not_per_retry(caplog):
    import logging

    src = ListSource([img(1), img(2)], lossless=True, open_failures=8)
    cap = Capture(src, retry_initial_s=0.005, retry_max_s=0.01)
    with caplog.at_level(logging.DEBUG, logger="appliance.camera"):
        cap.start()
        assert drain(cap) == [1, 2]
        cap.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    debugs = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(warnings) == 1 and "cannot open" in warnings[0].getMessage()
    assert len(debugs) == 8  # every retry is still there at DEBUG
    assert any("delivering frames again" in r.getMessage() for r in caplog.records)


def test_stall_is_logged_once(caplog):
    import logging

    gate = threading.Event()

    class Silent(ListSource):
        def read(self):
            if self.script:
                return super().read()
            gate.wait(5)
            raise EndOfStream

    cap = Capture(Silent([img(5)]), stall_after_s=0.5)
    with caplog.at_level(logging.WARNING, logger="appliance.camera"):
        cap.start()
        assert cap.latest(2.0) is not None
        for dt in (1.0, 1.1, 1.2):
            cap.supervise(now=time.monotonic() + dt)
        gate.set()
        cap.stop()
    lines = [r.getMessage() for r in caplog.records if "no frame" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("camera: scripted: no frame for 1.")


def test_clip_file_refuses_unknown_keys_and_reads_back_what_it_writes(tmp_path):
    from appliance.camera import ClipFile, ClipTruth

    clip = ClipFile(fps=12.5, loop=True, frames=3, truth=ClipTruth(file="t.jsonl", points="px"))
    path = clip.write(tmp_path, "made by a test")
    assert path.read_text().startswith("# made by a test\n")
    assert ClipFile.read(path) == clip
    path.write_text("fps = 10\nspeed = 2\n")
    with pytest.raises(CameraError, match=r"clip.toml: speed = 2: unknown key$"):
        ClipFile.read(path)
