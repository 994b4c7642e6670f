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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import tomli_w
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appliance.config import format_validation_error, parse_source_spec
from appliance.loglimit import LogLimiter
from appliance.rate import rate_per_s

log = logging.getLogger(__name__)

CameraState = Literal["starting", "running", "failed", "ended", "stopped"]
SENSOR_CLOCK_SLACK_S = 5.0
"""A frame's ``SensorTimestamp`` further than this from ``time.monotonic()`` is not trusted."""
FIRST_FRAME_WAIT_S = 5.0
"""Longest wait for picamera2's first frame after it starts, seconds (it then raises)."""
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
        opening: Which opening of the camera in this run it came from (1 for the first; a
            change means the camera was reopened in between).
    """

    image: np.ndarray
    t: float
    seq: int
    arrived: float
    opening: int = 0


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


CLIP_FILE = "clip.toml"
"""The file in a replay folder that describes the clip (:class:`ClipFile`)."""


class ClipTruth(BaseModel):
    """``[truth]`` of a test clip: where its true eye points are (the appliance ignores it).

    Attributes:
        file: The JSON-lines file, relative to the clip folder.
        points: The pixel convention of its points, e.g. ``"continuous pixels"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    points: str


class ClipFile(BaseModel):
    """``clip.toml``, the one definition: every key optional, unknown keys refused.

    Attributes:
        loop: True to play the clip forever (overrides the caller's choice); None: the caller's.
        fps: The clip's frame rate, frames per second, in (0, 1000].
        frames: How many images the clip was written with (information only).
        truth: A test clip's true eye points.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    loop: bool | None = Field(None, strict=True)
    fps: float = Field(30.0, gt=0.0, le=1000.0)
    frames: int | None = Field(None, ge=0)
    truth: ClipTruth | None = None

    @classmethod
    def read(cls, path: Path) -> ClipFile:
        """Read and validate a ``clip.toml``.

        Raises:
            CameraError: Unreadable, not TOML, or a key or value the clip cannot have (one
                line naming the file, key and value).
        """
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise CameraError(f"{path}: invalid clip file: {err}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise CameraError("; ".join(format_validation_error(str(path), data, err))) from None

    def write(self, directory: Path, comment: str = "") -> Path:
        """Write this as ``directory/clip.toml`` (tomli-w; unset keys left out).

        Args:
            directory: The clip folder (must exist).
            comment: A first line saying who wrote it, without the ``#``; none when empty.

        Returns:
            The file written.
        """
        path = directory / CLIP_FILE
        head = f"# {comment}\n" if comment else ""
        body = tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))
        path.write_text(head + body, encoding="utf-8")
        return path


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
        clip = self.directory / CLIP_FILE
        if clip.exists():
            info = ClipFile.read(clip)
            self.fps = info.fps
            if info.loop is not None:
                self.loop = info.loop
        self._files = sorted(
            p for p in self.directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self._files:
            raise CameraError(f"{self.directory}: no images to replay")
        # A reopened replay (after a fault) continues where it was, paced from now on.
        self._t0 = time.monotonic() - self._i / self.fps

    def fresh(self) -> ReplaySource:
        """A new, closed replay of the same folder that continues where this one is."""
        new = ReplaySource(self.directory, self.speed, loop=self.loop)
        new._i, new._loops = self._i, self._loops
        return new

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
        read_timeout_s: Longest wait for one frame, seconds: picamera2's ``capture_request``
            then raises (a :class:`CameraError`), so a camera that stops delivering (picamera2
            issues #1004, #1086) is reopened by its own thread.
    """

    lossless = False

    def __init__(self, width: int, height: int, fps: float, read_timeout_s: float = 1.5) -> None:
        self.name = "picamera2"
        self.size = (width, height)
        self.fps = fps
        self.read_timeout_s = read_timeout_s
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
            crop = cam.capture_metadata(wait=FIRST_FRAME_WAIT_S).get("ScalerCrop")
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
            request = self._cam.capture_request(wait=self.read_timeout_s)
        except TimeoutError:
            raise CameraError(f"picamera2: no frame within {self.read_timeout_s:g} s") from None
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
    spec: str,
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
    speed: str = "realtime",
    read_timeout_s: float = 1.5,
) -> CameraSource:
    """Build a source from its command-line/config spelling.

    Args:
        spec: ``picamera2``, ``webcam``, ``webcam:N`` or ``replay:DIR``.
        width: Capture width in pixels for live cameras.
        height: Capture height in pixels for live cameras.
        fps: Capture rate for live cameras, frames per second.
        speed: Replay pacing, ``realtime`` or ``max``.
        read_timeout_s: picamera2's longest wait for one frame, seconds.

    Raises:
        ValueError: An unknown spelling (the message names it).
    """
    try:
        parsed = parse_source_spec(spec)
    except ValueError as err:
        raise ValueError(f"camera {spec!r}: {err}") from None
    if parsed.kind == "picamera2":
        return Picamera2Source(width, height, fps, read_timeout_s)
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


MAX_STUCK_READS = 3
"""Abandoned reads still blocked at once from which the process hands itself to systemd."""


@runtime_checkable
class Refreshable(Protocol):
    """A source that can be opened afresh while an abandoned read still blocks in it.

    A replay can; a device only one process or thread may open at a time (picamera2, a V4L2
    webcam) cannot, and does not have this method.
    """

    def fresh(self) -> CameraSource | None:
        """A new, closed source for the same camera, or None if it cannot be opened twice.

        The new source shares nothing a stalled read of this one could touch.
        """


@dataclass(eq=False)
class _Reader:
    """One capture thread and the one source only it opens, reads and closes.

    Attributes:
        source: The source this thread owns.
        stop: Set when the thread must end (a stop, or its read was abandoned).
        thread: The thread, once started.
        reading_since: ``time.monotonic()`` when its pending ``read()`` began, seconds; None
            outside a read.
    """

    source: CameraSource
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    reading_since: float | None = None

    @property
    def alive(self) -> bool:
        """True while its thread runs (an abandoned read may still be blocked in it)."""
        return self.thread is not None and self.thread.is_alive()


class Capture:
    """Runs a :class:`CameraSource` on a capture thread, keeping only the newest frame.

    The thread opens its source, reads continuously and replaces the held frame with each new
    one. If opening or reading fails, the state becomes ``failed``, the source is closed and
    reopened after a backoff that doubles from ``retry_initial_s`` up to ``retry_max_s``; the
    consumer keeps running meanwhile.

    :meth:`supervise`, called from outside the capture thread (the main loop), watches it: a
    read that has not returned for ``stall_after_s`` is abandoned, and a fresh thread opens
    the camera after the same backoff: on a fresh source (:meth:`Refreshable.fresh`, a replay)
    at once, or, for a device that cannot be opened twice (picamera2, a webcam), once the
    abandoned thread has let go of it. The abandoned thread closes only its own source when
    its read returns, and hands nothing over any more: two threads never use one source, nor
    one device that cannot be opened twice. When recovery in the process cannot work,
    :attr:`hand_over` says why (see :meth:`supervise`).

    Args:
        source: The camera.
        retry_initial_s: First backoff in seconds (> 0).
        retry_max_s: Longest backoff in seconds.
        stall_after_s: Seconds a read may take before it is abandoned.
        handover_after_s: Seconds without a frame, despite reopening, after which
            :attr:`hand_over` is set (counted from the last frame or :meth:`start`).
    """

    def __init__(
        self,
        source: CameraSource,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        stall_after_s: float = 3.0,
        handover_after_s: float = 60.0,
    ) -> None:
        self.source = source
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stall_after_s = stall_after_s
        self.handover_after_s = handover_after_s
        self._cond = threading.Condition()  # an RLock: held by every change of the figures
        self._frame: Frame | None = None
        self._stop = threading.Event()
        self._reader: _Reader | None = None
        self._abandoned: list[_Reader] = []
        self._pending_due: float | None = None  # start a reader at this monotonic time, s
        self._started_at: float | None = None
        self._stall_backoff = retry_initial_s
        self._seq = 0
        self.state: CameraState = "starting"
        self.last_error: str | None = None
        self.failures = 0
        self.failed_since: float | None = None
        self.last_frame_at: float | None = None
        self.stalls = 0
        """Reads abandoned because they took longer than ``stall_after_s``."""
        self.opens = 0
        """Times a source was opened successfully in this run."""
        self.reopens = 0
        """Opens after the first (after a failure, a stall, or closed hours)."""
        self.hand_over: str | None = None
        """Why recovery in the process cannot work (the process should exit), or None."""
        self._fps_times: list[float] = []
        self._problems = LogLimiter(log, 60.0, repeats_at=logging.DEBUG)

    # -- consumer side -------------------------------------------------------------------
    def start(self) -> None:
        """Start capturing; after :meth:`stop`, start again (the source reopens).

        Never waits: a thread still finishing a read after :meth:`stop` keeps its source,
        and the new thread gets a fresh one (or, for a source that cannot be made afresh,
        starts from :meth:`supervise` once the old thread has ended).
        """
        with self._cond:
            self._stop.clear()
            if self.state != "ended":
                self.state = "starting"
            self._started_at = time.monotonic()
            self._retire()
            self._pending_due = time.monotonic()
            self._launch_pending()

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

    def threads(self) -> list[threading.Thread]:
        """The capture threads alive now: the current one and any abandoned ones still blocked."""
        with self._cond:
            readers = [*self._abandoned, *([self._reader] if self._reader else [])]
        return [r.thread for r in readers if r.thread is not None and r.thread.is_alive()]

    @property
    def stuck_reads(self) -> int:
        """Abandoned reads whose thread has not ended yet."""
        with self._cond:
            return sum(1 for r in self._abandoned if r.alive)

    def supervise(self, now: float | None = None) -> None:
        """Watch the capture thread; call often (every loop iteration) from outside it.

        Never blocks. A read pending for more than ``stall_after_s`` is abandoned (counted in
        :attr:`stalls`, logged once per episode) and the camera is opened in a fresh thread
        after the backoff. :attr:`hand_over` is set when no frame came for
        ``handover_after_s`` (from the last frame or :meth:`start`), when the abandoned read
        still holds a camera that cannot be opened twice once the backoff is over, or when
        :data:`MAX_STUCK_READS` abandoned reads are blocked at once.

        Args:
            now: ``time.monotonic()``, seconds (passed by the loop; tests pass the future).
        """
        now = time.monotonic() if now is None else now
        with self._cond:
            if self._stop.is_set() or self.state == "ended":
                return
            reader = self._reader
            since = None if reader is None else reader.reading_since
            if reader is not None and since is not None and now - since > self.stall_after_s:
                self.stalls += 1
                self._fail(f"{reader.source.name}: no frame for {now - since:.1f} s")
                self._retire()
                self._pending_due = time.monotonic() + self._stall_backoff
                self._warn(
                    "camera: %s; read abandoned, reopening in %.1f s",
                    self.last_error,
                    self._stall_backoff,
                )
                self._stall_backoff = min(self._stall_backoff * 2, self.retry_max_s)
            self._launch_pending()
            self._check_hand_over(now)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and close the source (waits at most ``timeout`` seconds).

        A thread still blocked in a read after that is abandoned: it closes its own source
        when the read returns.
        """
        self._stop.set()
        with self._cond:
            reader, self._pending_due, self._started_at = self._reader, None, None
            if reader is not None:
                reader.stop.set()
            self._cond.notify_all()
        if reader is not None and reader.thread is not None:
            reader.thread.join(timeout)
        with self._cond:
            if reader is self._reader:
                self._retire()
            if self.state != "ended":
                self.state = "stopped"

    # -- supervision (callers hold self._cond) -------------------------------------------
    def _retire(self) -> None:
        """Stop the current reader; if its thread is still alive, keep it as abandoned."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop.set()
            if reader.alive:
                self._abandoned.append(reader)
            self._cond.notify_all()

    def _launch_pending(self) -> None:
        """Start the pending reader on a source no other thread holds, if there is one."""
        self._abandoned = [r for r in self._abandoned if r.alive]
        due = self._pending_due
        if due is None or self._reader is not None or self._stop.is_set():
            return
        now = time.monotonic()
        source = self.source
        if any(r.source is source for r in self._abandoned):
            fresh = source.fresh() if isinstance(source, Refreshable) else None
            if fresh is None:  # the device is held: wait for its thread to let go
                if now >= due and self.hand_over is None:
                    self.hand_over = f"camera: an abandoned read still holds {source.name}"
                return
            source = fresh
        delay, self._pending_due = max(0.0, due - now), None
        self.source = source
        reader = _Reader(source)
        reader.thread = threading.Thread(
            target=self._run, args=(reader, delay), name="capture", daemon=True
        )
        self._reader = reader
        reader.thread.start()

    def _check_hand_over(self, now: float) -> None:
        if self.hand_over is not None:
            return
        stuck = sum(1 for r in self._abandoned if r.alive)
        if stuck >= MAX_STUCK_READS:
            self.hand_over = f"camera: {stuck} abandoned reads are still blocked"
        elif self._started_at is not None:
            since = max(self._started_at, self.last_frame_at or self._started_at)
            if now - since > self.handover_after_s:
                self.hand_over = (
                    f"camera: no frame for {now - since:.0f} s despite {self.stalls} stalls "
                    f"abandoned and {self.reopens} reopens"
                )

    def _fail(self, message: str) -> None:
        with self._cond:
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

    # -- capture thread ------------------------------------------------------------------
    def _failed(self, reader: _Reader, err: Exception, then: str, backoff: float) -> bool:
        """Count a failure of ``reader``'s source, unless it was abandoned (then False)."""
        message = str(err) if isinstance(err, CameraError) else f"{err!r}"
        with self._cond:
            if reader is not self._reader:
                return False
            self._fail(message)
        self._warn("camera: %s; " + then, message, backoff)
        return True

    def _run(self, reader: _Reader, delay: float) -> None:
        name_os_thread("capture")
        source = reader.source
        if delay > 0:
            reader.stop.wait(delay)
        backoff = self.retry_initial_s
        while not reader.stop.is_set():
            try:
                source.open()
            except Exception as err:
                if not self._failed(reader, err, "retrying in %.1f s", backoff):
                    return
                reader.stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            try:
                with self._cond:
                    if reader is self._reader:
                        self.opens += 1
                        if self.opens > 1:
                            self.reopens += 1
                self._pump(reader)
                backoff = self.retry_initial_s
            except EndOfStream:
                with self._cond:
                    if reader is self._reader:
                        self.state = "ended"
                        self._cond.notify_all()
                return
            except Exception as err:
                if self._failed(reader, err, "reopening in %.1f s", backoff):
                    reader.stop.wait(backoff)
                    backoff = min(backoff * 2, self.retry_max_s)
            finally:
                try:
                    source.close()
                except Exception as err:
                    log.debug("camera close: %s", err)

    def _pump(self, reader: _Reader) -> None:
        source = reader.source
        while not reader.stop.is_set():
            reader.reading_since = time.monotonic()
            try:
                rgb, t = source.read()
            finally:
                reader.reading_since = None
            now = time.monotonic()
            with self._cond:
                if source.lossless:
                    while self._frame is not None and not reader.stop.is_set():
                        self._cond.wait(0.1)
                if reader is not self._reader:
                    return  # abandoned meanwhile: its frame is not the camera's any more
                frame = Frame(rgb, t, self._seq, now, self.opens)
                self._seq += 1
                if self.state != "running":
                    if self.state == "failed":
                        log.info("camera: %s is delivering frames again", source.name)
                    self.state = "running"
                    self.failed_since = None
                self._stall_backoff = self.retry_initial_s
                self._frame = frame
                self.last_frame_at = now
                self._fps_times.append(now)
                if len(self._fps_times) > 120:
                    del self._fps_times[:60]
                self._cond.notify_all()
