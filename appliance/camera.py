"""Camera sources and the capture thread that keeps only the newest frame.

A :class:`CameraSource` opens a device (or a folder of images), hands out RGB frames and closes.
:class:`Capture` runs one source on a background thread: it keeps only the newest frame (nothing
queues up, so the loop always works on the present), reopens a failed or stalled camera with
exponential backoff, and reports its state. Frames live only in memory: nothing here writes an
image anywhere.

Sources:

* ``picamera2`` — a Raspberry Pi camera through libcamera, asking the ISP for a small RGB stream
  of the configured size (it scales in hardware, so Python never resizes full frames).
* ``webcam`` / ``webcam:N`` — a V4L2 webcam on a development machine (pygame's camera module,
  imported lazily).
* ``replay:DIR`` — a folder of images played in name order, paced at the rate in ``DIR/clip.toml``
  (``fps = 30``) or as fast as the consumer takes them (``replay_speed = "max"``, lossless).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from appliance.config import parse_source_spec
from appliance.loglimit import LogLimiter
from appliance.rate import rate_per_s

log = logging.getLogger(__name__)

CameraState = Literal["starting", "running", "failed", "ended", "stopped"]
SENSOR_CLOCK_SLACK_S = 5.0
"""A frame's ``SensorTimestamp`` further than this from ``time.monotonic()`` is not trusted."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")


class CameraError(RuntimeError):
    """A camera could not be opened or stopped delivering frames."""


class EndOfStream(Exception):
    """A finite source (a replay clip) has no more frames."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera frame, in memory only.

    Attributes:
        image: H×W×3 uint8 RGB pixels, as the camera sees the room.
        t: Capture time in seconds on the source's clock (clip time for replays, monotonic
            seconds for live cameras).
        seq: Frame number from this capture, counting from 0.
        arrived: ``time.monotonic()`` when the frame reached the capture thread, in seconds.
    """

    image: np.ndarray
    t: float
    seq: int
    arrived: float


class CameraSource(Protocol):
    """One camera device or clip."""

    name: str
    lossless: bool
    """True if every frame must be handed over (replay at max speed): the thread then waits for
    the consumer instead of replacing an unconsumed frame."""

    def open(self) -> None:
        """Open the device; raise :class:`CameraError` if it cannot be opened."""

    def read(self) -> tuple[np.ndarray, float]:
        """Block until the next frame; return ``(rgb, t_seconds)``.

        Raises:
            CameraError: The device failed.
            EndOfStream: A replay has no more frames.
        """

    def close(self) -> None:
        """Release the device; safe to call twice."""


class ReplaySource:
    """A folder of images played in name order, optionally paced at the clip's frame rate.

    Args:
        directory: Folder of images (``.png``, ``.jpg``, ...) and an optional ``clip.toml``
            with ``fps = N`` (frames per second, default 30) and ``loop = true`` (play it
            forever, as the soak benchmark does; overrides ``loop``).
        speed: ``"realtime"`` sleeps to keep the clip's rate; ``"max"`` hands frames over as
            fast as the consumer takes them, every one of them.
        loop: Start again at the first image instead of ending.
    """

    def __init__(
        self, directory: str | Path, speed: str = "realtime", *, loop: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.name = f"replay:{self.directory}"
        self.speed = speed
        self.loop = loop
        self.lossless = speed == "max"
        self.fps = 30.0
        self._files: list[Path] = []
        self._i = 0
        self._loops = 0
        self._t0 = 0.0

    def open(self) -> None:
        """Index the folder and read ``clip.toml``.

        Raises:
            CameraError: The folder is missing, has no images, or clip.toml is invalid.
        """
        if not self.directory.is_dir():
            raise CameraError(f"{self.directory}: replay folder not found")
        clip = self.directory / "clip.toml"
        if clip.exists():
            try:
                data = tomllib.loads(clip.read_text(encoding="utf-8"))
                self.fps = float(data.get("fps", 30.0))
                loop = data.get("loop", self.loop)
            except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as err:
                raise CameraError(f"{clip}: invalid clip file: {err}") from None
            if not isinstance(loop, bool):
                raise CameraError(f"{clip}: loop = {loop!r}: must be true or false")
            self.loop = loop
            if not 0 < self.fps <= 1000:
                raise CameraError(f"{clip}: fps = {self.fps}: must be in (0, 1000]")
        self._files = sorted(
            p for p in self.directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self._files:
            raise CameraError(f"{self.directory}: no images to replay")
        # A reopened replay (after a fault) continues where it was, paced from now on.
        self._t0 = time.monotonic() - self._i / self.fps

    def read(self) -> tuple[np.ndarray, float]:
        """Return the next image as RGB and its clip time ``index / fps`` in seconds."""
        if self._i >= len(self._files):
            if not self.loop:
                raise EndOfStream
            # Looping: the clip clock keeps counting up, so time never runs backwards.
            self._loops += 1
            self._i = 0
            self._t0 = time.monotonic()
        i = self._i
        self._i += 1
        t = (self._loops * len(self._files) + i) / self.fps
        if self.speed == "realtime":
            delay = self._t0 + (i % len(self._files)) / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        path = self._files[i % len(self._files)]
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as err:
            raise CameraError(f"{path.name}: unreadable replay frame: {err}") from None
        return rgb, t

    def close(self) -> None:
        """Nothing to release for a folder."""


def sensor_width_fraction(crop: Any, pixel_array: Any) -> float:
    """How much of the sensor's width a stream shows, from libcamera's own figures.

    The ISP keeps the stream's aspect ratio by cropping the sensor (picamera2 issue #450): a
    4:3 stream (1280×960) from Camera Module 3's 16:9 sensor shows 3456 of its 4608 pixels,
    75 %, so its horizontal field of view is 52°, not the lens's 66°.

    Args:
        crop: The ``ScalerCrop`` metadata ``(x, y, width, height)`` in sensor pixels.
        pixel_array: The camera property ``PixelArraySize`` ``(width, height)``, pixels.

    Returns:
        The fraction in (0, 1]; 1.0 when either figure is missing or makes no sense.
    """
    try:
        fraction = float(crop[2]) / float(pixel_array[0])
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return 1.0
    return fraction if 0.0 < fraction <= 1.0 else 1.0


def choose_sensor_mode(modes: Any, size: tuple[int, int], fps: float) -> dict[str, Any] | None:
    """The sensor mode to ask for: the whole sensor width, fast enough, the least pixels.

    libcamera, left to itself, may pick a *cropped* sensor mode for a small stream (Camera
    Module 3's 1536×864 mode covers only two thirds of the sensor's width, 47° instead of 66°).
    Among the modes whose ``crop_limits`` span the widest part of the sensor, this takes the
    smallest one at least as large as the stream that runs at ``fps`` or faster (else the
    fastest of them; else the largest).

    Args:
        modes: picamera2's ``Picamera2.sensor_modes``: dicts with ``size`` (w, h), ``fps``,
            ``crop_limits`` (x, y, w, h in sensor pixels) and ``bit_depth``.
        size: The stream's (width, height), pixels.
        fps: The frame rate wanted, frames per second.

    Returns:
        The chosen mode, or None when ``modes`` is empty or malformed (libcamera chooses).
    """
    try:
        usable = [
            m
            for m in modes
            if len(m["size"]) == 2 and len(m["crop_limits"]) == 4 and float(m["fps"]) > 0
        ]
        if not usable:
            return None
        widest = max(int(m["crop_limits"][2]) for m in usable)
        full = [m for m in usable if int(m["crop_limits"][2]) >= widest]
        big = [m for m in full if m["size"][0] >= size[0] and m["size"][1] >= size[1]]
        fast = [m for m in big if float(m["fps"]) >= fps]
        if fast:
            return dict(min(fast, key=lambda m: m["size"][0] * m["size"][1]))
        if big:
            return dict(max(big, key=lambda m: float(m["fps"])))
        return dict(max(full, key=lambda m: m["size"][0] * m["size"][1]))
    except (TypeError, KeyError, ValueError, IndexError):
        return None


class Picamera2Source:
    """A Raspberry Pi camera via picamera2, asking the ISP for a small RGB ``main`` stream.

    The sensor runs in the mode :func:`choose_sensor_mode` picks (the whole sensor width, the
    fewest pixels that still make the stream at its rate). After :meth:`open`,
    :attr:`width_fraction` says which fraction of the sensor's width the stream shows
    (libcamera's ``ScalerCrop`` against ``PixelArraySize``): the appliance narrows the lens's
    field of view (``camera.hfov_deg``) to it.

    Args:
        width: Stream width in pixels (the ISP scales the sensor image to it).
        height: Stream height in pixels.
        fps: Frame rate asked of the sensor, frames per second.
    """

    lossless = False

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.name = "picamera2"
        self.size = (width, height)
        self.fps = fps
        self._cam: Any = None
        self._t0 = time.monotonic()
        self.width_fraction = 1.0

    def open(self) -> None:
        """Start the camera; raise :class:`CameraError` if it is absent or busy."""
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise CameraError(
                f"picamera2 is not importable ({err}); on Raspberry Pi OS install apt's "
                "python3-picamera2 and use a venv made with --system-site-packages"
            ) from None
        cam: Any = None
        try:
            cam = Picamera2()
            mode = choose_sensor_mode(cam.sensor_modes, self.size, self.fps)
            sensor = (
                {}
                if mode is None
                else {"output_size": mode["size"], "bit_depth": mode["bit_depth"]}
            )
            if mode is not None:
                log.info(
                    "picamera2: sensor mode %sx%s at up to %.0f fps (crop %s) for a %dx%d stream",
                    *mode["size"],
                    float(mode["fps"]),
                    tuple(mode["crop_limits"]),
                    *self.size,
                )
            # "BGR888" is libcamera's name for bytes in R, G, B order: what the detector wants.
            stream: dict[str, Any] = {
                "main": {"size": self.size, "format": "BGR888"},
                "buffer_count": 4,
                "controls": {"FrameRate": self.fps},
            }
            try:
                config = cam.create_video_configuration(**stream, sensor=sensor)
            except TypeError:  # a picamera2 older than its `sensor` argument: libcamera picks
                log.warning("picamera2: cannot ask for a sensor mode (old picamera2)")
                config = cam.create_video_configuration(**stream)
            cam.configure(config)
            cam.start()
            crop = cam.capture_metadata().get("ScalerCrop")
            array = cam.camera_properties.get("PixelArraySize")
        except Exception as err:  # libcamera raises many kinds of error
            if cam is not None:  # else the camera stays busy and every retry fails
                with contextlib.suppress(Exception):
                    cam.close()
            raise CameraError(f"picamera2: cannot start the camera: {err}") from None
        self._cam = cam
        self.width_fraction = sensor_width_fraction(crop, array)
        if self.width_fraction < 0.99:
            log.warning(
                "picamera2: a %dx%d stream shows %.0f %% of the sensor's width (ScalerCrop %s of "
                "%s): the field of view is narrowed to match",
                *self.size,
                100 * self.width_fraction,
                tuple(crop),
                tuple(array),
            )

    def read(self) -> tuple[np.ndarray, float]:
        """Capture the next frame from the ``main`` stream, timed when the sensor took it.

        Returns:
            ``(rgb, t)``: H×W×3 uint8 RGB (a copy; the camera's buffer goes straight back) and
            the frame's ``SensorTimestamp`` (start of its exposure, on ``time.monotonic``'s
            clock: picamera2 issue #787) in seconds since the source was made. Without a
            plausible timestamp, the time of the read.
        """
        if self._cam is None:
            raise CameraError("picamera2: not open")
        try:
            request = self._cam.capture_request()
        except Exception as err:
            raise CameraError(f"picamera2: capture failed: {err}") from None
        try:
            arr = request.make_array("main")
            metadata = request.get_metadata()
        except Exception as err:
            raise CameraError(f"picamera2: capture failed: {err}") from None
        finally:
            with contextlib.suppress(Exception):
                request.release()  # always: libcamera has only buffer_count buffers
        now = time.monotonic()
        t = now
        stamp = metadata.get("SensorTimestamp") if isinstance(metadata, dict) else None
        if isinstance(stamp, int | float) and abs(stamp / 1e9 - now) < SENSOR_CLOCK_SLACK_S:
            t = stamp / 1e9
        return np.ascontiguousarray(arr[:, :, :3]), t - self._t0

    def close(self) -> None:
        """Stop and release the camera."""
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
                cam.close()
            except Exception as err:
                log.debug("picamera2 close: %s", err)


class WebcamSource:
    """A V4L2 webcam through pygame's camera module (development machines).

    Args:
        index: Which camera, 0 for the first ``/dev/video*`` pygame lists.
        width: Requested width in pixels.
        height: Requested height in pixels.
    """

    lossless = False

    def __init__(self, index: int, width: int, height: int) -> None:
        self.name = f"webcam:{index}"
        self.index = index
        self.size = (width, height)
        self._cam: Any = None
        self._t0 = time.monotonic()

    def open(self) -> None:
        """Open the webcam; raise :class:`CameraError` if there is none."""
        try:
            import pygame.camera
        except ImportError as err:
            raise CameraError(f"webcam: pygame camera support unavailable: {err}") from None
        try:
            pygame.camera.init()
            names = pygame.camera.list_cameras()
            if self.index >= len(names):
                raise CameraError(f"webcam:{self.index}: no such camera ({len(names)} found)")
            cam = pygame.camera.Camera(names[self.index], self.size, "RGB")
            cam.start()
        except CameraError:
            raise
        except Exception as err:
            raise CameraError(f"webcam:{self.index}: cannot open: {err}") from None
        self._cam = cam

    def read(self) -> tuple[np.ndarray, float]:
        """Capture one frame as RGB."""
        if self._cam is None:
            raise CameraError(f"{self.name}: not open")
        try:
            import pygame.surfarray

            surf = self._cam.get_image()
            rgb = np.ascontiguousarray(pygame.surfarray.array3d(surf).swapaxes(0, 1))
        except Exception as err:
            raise CameraError(f"{self.name}: capture failed: {err}") from None
        return rgb, time.monotonic() - self._t0

    def close(self) -> None:
        """Stop the webcam."""
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            except Exception as err:
                log.debug("webcam close: %s", err)


def parse_source(
    spec: str, *, width: int = 640, height: int = 480, fps: float = 30.0, speed: str = "realtime"
) -> CameraSource:
    """Build a source from its command-line/config spelling.

    Args:
        spec: ``picamera2``, ``webcam``, ``webcam:N`` or ``replay:DIR``.
        width: Capture width in pixels for live cameras.
        height: Capture height in pixels for live cameras.
        fps: Capture rate for live cameras, frames per second.
        speed: Replay pacing, ``realtime`` or ``max``.

    Raises:
        ValueError: An unknown spelling (the message names it).
    """
    try:
        parsed = parse_source_spec(spec)
    except ValueError as err:
        raise ValueError(f"camera {spec!r}: {err}") from None
    if parsed.kind == "picamera2":
        return Picamera2Source(width, height, fps)
    if parsed.kind == "webcam":
        return WebcamSource(parsed.index, width, height)
    return ReplaySource(parsed.directory, speed)


PR_SET_NAME = 15
"""Linux ``prctl`` option that names the calling thread (``/proc/PID/task/TID/comm``)."""


def name_os_thread(name: str) -> None:
    """Show the calling thread as ``name`` in ``top -H``, ``ps -L`` and ``/proc``, on Linux.

    Python names its threads only for itself (before 3.14); this gives the kernel the name
    too, so a technician (and ``benchmarks/budget.py``) can tell the capture thread's CPU
    from the loop's. The kernel keeps the first 15 bytes. Where ``prctl`` does not exist
    (not Linux), nothing happens.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class Capture:
    """Runs a :class:`CameraSource` on a thread, keeping only the newest frame.

    The thread opens the source, reads continuously and replaces the held frame with each new
    one. If opening or reading fails (or no frame arrives for ``stall_after_s``), the state
    becomes ``failed``, the source is closed and reopened after a backoff that doubles from
    ``retry_initial_s`` up to ``retry_max_s``; the consumer keeps running meanwhile.

    Args:
        source: The camera.
        retry_initial_s: First backoff in seconds (> 0).
        retry_max_s: Longest backoff in seconds.
        stall_after_s: Seconds without a frame after which a running camera counts as failed.
        sleep: Injected for tests; waits interruptibly.
    """

    def __init__(
        self,
        source: CameraSource,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        stall_after_s: float = 3.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stall_after_s = stall_after_s
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.state: CameraState = "starting"
        self.last_error: str | None = None
        self.failures = 0
        self.failed_since: float | None = None
        self.last_frame_at: float | None = None
        self._fps_times: list[float] = []
        self._problems = LogLimiter(log, 60.0, repeats_at=logging.DEBUG)

    # -- consumer side -------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture thread; after :meth:`stop`, start it again (the source reopens).

        A thread still finishing a read after :meth:`stop` is waited for, at most
        ``retry_max_s`` seconds, so two threads never read the source at once.
        """
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(self.retry_max_s)
        if self.state != "ended":
            self.state = "starting"
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def latest(self, timeout: float) -> Frame | None:
        """Take the newest frame not yet taken, waiting up to ``timeout`` seconds for one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame is None and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.state == "ended":
                    return None
                self._cond.wait(remaining)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    @property
    def width_fraction(self) -> float:
        """Fraction of the sensor's width the source's images show, (0, 1] (1.0 if unknown)."""
        value = getattr(self.source, "width_fraction", 1.0)
        return float(value) if isinstance(value, int | float) and 0 < value <= 1 else 1.0

    @property
    def ended(self) -> bool:
        """True once a finite source has delivered its last frame and it was taken."""
        with self._cond:
            return self.state == "ended" and self._frame is None

    @property
    def fps(self) -> float:
        """Frames received per second over the last ~2 s (0 when none)."""
        with self._cond:
            times = list(self._fps_times)
        return rate_per_s(times, time.monotonic())

    def stall_check(self, now: float | None = None) -> None:
        """Mark a running camera that has sent nothing for ``stall_after_s`` as failed."""
        now = time.monotonic() if now is None else now
        if (
            self.state == "running"
            and self.last_frame_at is not None
            and now - self.last_frame_at > self.stall_after_s
        ):
            self._fail(f"{self.source.name}: no frame for {now - self.last_frame_at:.1f} s")
            self._warn("camera: %s; waiting for it", self.last_error)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and close the source (waits at most ``timeout`` seconds)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.state != "ended":
            self.state = "stopped"

    # -- capture thread ------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        if self.state != "failed":
            self.failed_since = time.monotonic()
            self._problems.forget("camera")  # a new failure: its first line at once
        self.state = "failed"
        self.failures += 1
        self.last_error = message

    def _warn(self, message: str, *args: object) -> None:
        """Log a camera failure without flooding the journal.

        At WARNING once per failure episode and then at most once a minute; the retries in
        between at DEBUG (the status file shows the state meanwhile).
        """
        self._problems.warning("camera", message, *args)

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        name_os_thread("capture")
        backoff = self.retry_initial_s
        while not self._stop.is_set():
            try:
                self.source.open()
            except Exception as err:
                self._fail(str(err) if isinstance(err, CameraError) else f"{err!r}")
                self._warn("camera: %s; retrying in %.1f s", self.last_error, backoff)
                self._wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            try:
                self._pump()
                if self.state == "ended":
                    return
                backoff = self.retry_initial_s
            except EndOfStream:
                self.state = "ended"
                with self._cond:
                    self._cond.notify_all()
                return
            except Exception as err:
                self._fail(str(err) if isinstance(err, CameraError) else f"{err!r}")
                self._warn("camera: %s; reopening in %.1f s", self.last_error, backoff)
                self._wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
            finally:
                try:
                    self.source.close()
                except Exception as err:
                    log.debug("camera close: %s", err)

    def _pump(self) -> None:
        while not self._stop.is_set():
            rgb, t = self.source.read()
            now = time.monotonic()
            frame = Frame(rgb, t, self._seq, now)
            self._seq += 1
            with self._cond:
                if self.source.lossless:
                    while self._frame is not None and not self._stop.is_set():
                        self._cond.wait(0.1)
                if self.state != "running":
                    if self.state == "failed":
                        log.info("camera: %s is delivering frames again", self.source.name)
                    self.state = "running"
                    self.failed_since = None
                self._frame = frame
                self.last_frame_at = now
                self._fps_times.append(now)
                if len(self._fps_times) > 120:
                    del self._fps_times[:60]
                self._cond.notify_all()
