"""BlazeFace face detection on the CPU with TFLite, reproducing MediaPipe's pipeline.

This is the only module that imports the TFLite interpreter (``ai_edge_litert``, falling back to
``tflite_runtime``). The pipeline follows MediaPipe 0.10.21's ``face_detection`` graphs:

1. Letterbox the whole image into the square model input keeping the aspect ratio, with a zero
   (black) border, sampling with bilinear interpolation exactly as MediaPipe's CPU
   ``ImageToTensorCalculator`` does (OpenCV ``warpPerspective``, ``INTER_LINEAR``,
   ``BORDER_CONSTANT``, no anti-aliasing, sub-pixel positions on a 1/32 px grid), then scale RGB
   from [0, 255] to [-1, 1].
2. Run the model: 16 regressor values and one score logit per SSD anchor.
3. Decode the anchors whose sigmoid score (logit clipped to ±100) reaches the threshold.
4. Merge overlapping detections with weighted non-max suppression (IoU > 0.3).
5. Map boxes and keypoints back to source-image pixels, correcting MediaPipe's half-pixel slip.

MediaPipe's warp treats pixel *centres* as integer coordinates (OpenCV's convention) while it maps
the model's normalised outputs back with corner-based coordinates (``x × width``): model-input
pixel ``i`` (continuous centre ``i + ½``) holds the source at continuous ``origin + i·step + ½``
but is read back as ``origin + (i + ½)·step``. Every point MediaPipe reports is therefore
``(step − 1) / 2`` source pixels too far right and down (``step`` = source pixels per
model-input pixel; the slip is 2.8 px for a 1280×960 frame into 192×192, 0.3 px for a 320-px
tile). The detector's decisions (which faces, scores) are MediaPipe's exactly; only the reported
coordinates differ by that shift, which :func:`letterbox` states (``Letterbox.slip``) for anyone
comparing with MediaPipe's numbers (the conformance tests add it back). Removing the slip matters
to the finder, which merges views of one face taken at different scales (each with its own slip).

Preprocessing is cheap: for each source image shape the bilinear taps and their 1/32-step
weights are computed once and cached (with reusable scratch buffers), so a frame costs two row
gathers, two column gathers and a few uint16 passes (separable fixed-point bilinear, rounded to
whole grey levels like OpenCV's 8-bit warp). Decoding touches only the anchors whose logit is
above the threshold, in plain Python. Images must be uint8: float arrays are refused because
their range (0–1 or 0–255) is ambiguous.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.types import Box, Face, FaceKeyPoint, Point

__all__ = [
    "LANDMARK_MODEL_FILES",
    "MODEL_FILES",
    "Detector",
    "DetectorError",
    "FaceKeyPoint",
    "Letterbox",
    "ModelSpec",
    "find_model",
    "letterbox",
    "load_interpreter",
    "ssd_anchors",
    "weighted_nms",
]

#: File names of the bundled models, by short name.
MODEL_FILES: dict[str, str] = {
    "full": "blazeface.tflite",
    "short": "blazeface_short_range.tflite",
}

#: The face mesh (468 points) and iris models the frame builder runs, by short name.
LANDMARK_MODEL_FILES: dict[str, str] = {"mesh": "face_mesh.tflite", "iris": "iris_landmark.tflite"}

_MODEL_DIR_ENV = "MONALISA_MODEL_DIR"
_SYSTEM_MODEL_DIR = Path("/usr/share/monalisa/models")
_SCORE_CLIP = 100.0
_NMS_IOU = 0.3
_PLAN_CACHE_SIZE = 8
_TAB = 32  # OpenCV's INTER_TAB_SIZE: bilinear sub-pixel positions are quantised to 1/32 px.

F32Array = npt.NDArray[np.float32]
U16Array = npt.NDArray[np.uint16]


class DetectorError(ValueError):
    """A model file is missing, unreadable or not a BlazeFace model (one line naming it)."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The SSD configuration of one BlazeFace variant (from MediaPipe's graph options).

    Attributes:
        name: ``"full"`` or ``"short"``.
        input_size: Model input width and height in pixels.
        strides: Feature-map strides of the SSD layers.
        interpolated_scale_aspect_ratio: Adds one extra anchor per cell when > 0.
        score_threshold: MediaPipe's default minimum score in [0, 1].
    """

    name: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    score_threshold: float


_SPECS: dict[int, ModelSpec] = {
    128: ModelSpec("short", 128, (8, 16, 16, 16), 1.0, 0.5),
    192: ModelSpec("full", 192, (4,), 0.0, 0.6),
}


def ssd_anchors(spec: ModelSpec) -> F32Array:
    """Return the anchor centres of MediaPipe's ``SsdAnchorsCalculator`` for ``spec``.

    With ``fixed_anchor_size`` every anchor is 1×1 in normalised units, so only the centres
    matter. Consecutive layers with the same stride share one feature map, each layer adding one
    anchor per aspect ratio (here 1.0) plus one interpolated anchor when
    ``interpolated_scale_aspect_ratio > 0``.

    Args:
        spec: The model configuration.

    Returns:
        ``(num_anchors, 2)`` float32 array of (x, y) centres in [0, 1] of the model input.
    """
    centres: list[F32Array] = []
    strides = spec.strides
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 1 + (1 if spec.interpolated_scale_aspect_ratio > 0 else 0)
            last += 1
        fm = math.ceil(spec.input_size / strides[layer])
        grid = (np.arange(fm, dtype=np.float64) + 0.5) / fm
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0).astype(np.float32))
        layer = last
    return np.concatenate(centres, axis=0)


def find_model(name: str | Path, model_dir: str | Path | None = None) -> Path:
    """Resolve a model name or path to an existing ``.tflite`` file.

    Args:
        name: ``"full"`` (full-range, 192 px, for 1–5 m), ``"short"`` (short-range, 128 px, up
            to ~2 m), ``"mesh"`` / ``"iris"`` (the frame builder's) or a path to a ``.tflite``
            file.
        model_dir: Folder searched first for a named model (the installed appliance's
            ``[detector] model_dir``); ignored for a path.

    Returns:
        The path of the model file. Named models are searched in ``model_dir``,
        ``$MONALISA_MODEL_DIR``, the repository's ``models/`` next to the package, then
        ``/usr/share/monalisa/models``.

    Raises:
        DetectorError: The file does not exist (the message names what was searched).
    """
    key = str(name)
    named = {**MODEL_FILES, **LANDMARK_MODEL_FILES}
    if key in named:
        filename = named[key]
        dirs: list[Path] = [] if model_dir is None else [Path(model_dir).expanduser()]
        env = os.environ.get(_MODEL_DIR_ENV)
        if env:
            dirs.append(Path(env))
        dirs.append(Path(__file__).resolve().parent.parent / "models")
        dirs.append(_SYSTEM_MODEL_DIR)
        for d in dirs:
            candidate = d / filename
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in dirs)
        raise DetectorError(f"model {key!r}: {filename} not found in {searched}")
    path = Path(name).expanduser()
    if not path.is_file():
        raise DetectorError(f"{path}: model file not found")
    return path


def load_interpreter(path: Path, num_threads: int = 1) -> Any:
    """Return an allocated TFLite interpreter for any model (the frame builder's face mesh).

    Raises:
        DetectorError: No TFLite runtime, or the file is not a valid model (one line).
    """
    return _load_interpreter(path, num_threads)


def _load_interpreter(path: Path, num_threads: int) -> Any:
    """Create a TFLite interpreter from ``ai_edge_litert`` or, failing that, ``tflite_runtime``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as err:
            raise DetectorError(
                "no TFLite runtime: install ai-edge-litert (or tflite-runtime)"
            ) from err
    # TFLite prints an INFO line about its XNNPACK delegate (and errors) straight to fd 2;
    # keep it off the console and put any message in our one-line error instead.
    with tempfile.TemporaryFile() as log:
        saved = _redirect_fd(2, log.fileno())
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            _restore_fd(2, saved)
            saved = -1
            log.seek(0)
            lines = [*log.read().decode(errors="replace").splitlines(), *str(err).splitlines()]
            why = next((ln.strip() for ln in lines if "ERROR" in ln), "") or (
                lines[-1].strip() if lines else type(err).__name__
            )
            raise DetectorError(f"{path}: not a valid TFLite model ({why})") from err
        finally:
            if saved >= 0:
                _restore_fd(2, saved)
    return interpreter


def _redirect_fd(fd: int, target: int) -> int:
    """Point ``fd`` at ``target``; return a duplicate of the old ``fd`` (or -1 if impossible)."""
    try:
        saved = os.dup(fd)
    except OSError:
        return -1
    sys.stderr.flush()
    os.dup2(target, fd)
    return saved


def _restore_fd(fd: int, saved: int) -> None:
    """Undo :func:`_redirect_fd`."""
    if saved >= 0:
        os.dup2(saved, fd)
        os.close(saved)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where the square model input lies on an image, as MediaPipe letterboxes it.

    The whole image is centred in a square of side ``max(width, height)`` (the excess is zero
    border) and that square is resampled to the model input. Coordinates are continuous
    pixels with corner-based origins: image pixel ``(c, r)`` covers ``[c, c+1) × [r, r+1)``,
    model-input pixel ``i`` covers ``[i, i+1)``.

    Attributes:
        x0: Image x of the model input's left edge, pixels (negative for tall images).
        y0: Image y of the model input's top edge, pixels (negative for wide images).
        side: Side of the letterboxed square, image pixels (``max(width, height)``).
        input_size: Model input side, pixels.
    """

    x0: float
    y0: float
    side: float
    input_size: int

    @property
    def step(self) -> float:
        """Image pixels per model-input pixel (> 0; < 1 when the image is upscaled)."""
        return self.side / self.input_size

    @property
    def slip(self) -> float:
        """MediaPipe's half-pixel slip, ``(step - 1) / 2`` image pixels (see the module doc).

        MediaPipe reports every point this far right and down of where it lies on the image
        (negative for upscaled images); :class:`Detector` reports the exact place.
        """
        return (self.step - 1.0) / 2.0

    def to_image(self, u: float, v: float) -> Point:
        """The exact image point a model-input point shows (as :meth:`Detector.detect` maps).

        Args:
            u: Model-input x, continuous pixels in ``[0, input size]`` (0 = left edge).
            v: Model-input y, continuous pixels in ``[0, input size]``.

        Returns:
            The point in image pixels, without MediaPipe's slip.
        """
        return Point(self.x0 + u * self.step - self.slip, self.y0 + v * self.step - self.slip)


def letterbox(height: int, width: int, input_size: int) -> Letterbox:
    """The letterbox of a ``height×width`` image in a square model input of ``input_size`` px.

    Args:
        height: Image height, pixels (>= 1).
        width: Image width, pixels (>= 1).
        input_size: Model input side, pixels (192 full range, 128 short range).
    """
    side = float(max(width, height))
    return Letterbox((width - side) / 2.0, (height - side) / 2.0, side, input_size)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Precomputed letterbox resampling for one source shape (height, width, channels).

    Weights are integers in 1/32 (OpenCV's sub-pixel grid). The vertical pass runs on whole
    source rows, the horizontal pass on the columns the model input samples; ``U16`` scratch
    buffers are reused from frame to frame.
    """

    rows: slice  # model-input rows that sample the image
    cols: slice  # model-input columns that sample the image
    y0: npt.NDArray[np.intp]  # (nr,) upper source row of each model-input row
    y1: npt.NDArray[np.intp]  # (nr,) lower source row
    wy0: U16Array  # (nr, 1) weights of y0, in 1/32
    wy1: U16Array  # (nr, 1) weights of y1, in 1/32
    x0: npt.NDArray[np.intp]  # (nc*3,) byte offset in a source row of the left tap, per channel
    x1: npt.NDArray[np.intp]  # (nc*3,) same for the right tap
    wx0: U16Array  # (1, nc*3) weights of x0, in 1/32
    wx1: U16Array  # (1, nc*3) weights of x1, in 1/32
    vertical: bool  # any row needs its lower tap
    horizontal: bool  # any column needs its right tap
    rows_u8: npt.NDArray[np.uint8]  # scratch (nr, W*C): source rows
    rows_u16: U16Array  # scratch (nr, W*C): vertical pass
    rows2_u16: U16Array  # scratch (nr, W*C)
    cols_u16: U16Array  # scratch (nr, nc*3): horizontal pass
    cols2_u16: U16Array  # scratch (nr, nc*3)
    box: Letterbox  # where the model input lies on the source


def _axis_taps(
    n_out: int, start: float, step: float, size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], U16Array, U16Array, int, int]:
    """Bilinear taps along one axis, as OpenCV's ``warpPerspective`` computes them.

    Output pixel ``i`` samples the source at ``start + i * step`` (pixel centres at integers),
    quantised to 1/32 px. Taps outside ``[0, size)`` get weight 0 (constant zero border).

    Returns:
        ``(i0, i1, w0, w1, first, stop)``: the lower and upper tap indices (clamped into the
        image), their weights in 1/32 (summing to 32 inside the image), and the range
        ``[first, stop)`` of output pixels with any non-zero weight.
    """
    pos = start + np.arange(n_out, dtype=np.float64) * step
    q = np.rint(pos * _TAB).astype(np.int64)
    i0 = np.floor_divide(q, _TAB)
    frac = q - i0 * _TAB
    w0 = np.where((i0 >= 0) & (i0 < size), _TAB - frac, 0)
    w1 = np.where((i0 + 1 >= 0) & (i0 + 1 < size), frac, 0)
    live = np.flatnonzero((w0 > 0) | (w1 > 0))
    first, stop = (int(live[0]), int(live[-1]) + 1) if live.size else (0, 0)
    sl = slice(first, stop)
    return (
        np.clip(i0, 0, size - 1)[sl].astype(np.intp),
        np.clip(i0 + 1, 0, size - 1)[sl].astype(np.intp),
        w0[sl].astype(np.uint16),
        w1[sl].astype(np.uint16),
        first,
        stop,
    )


def _make_plan(height: int, width: int, channels: int, size: int) -> _Plan:
    """Build the resampling plan mapping a ``height×width×channels`` image to ``size²``."""
    # MediaPipe: the ROI is the whole image, padded to the model's (square) aspect ratio.
    box = letterbox(height, width, size)
    xi0, xi1, xw0, xw1, c0, c1 = _axis_taps(size, box.x0, box.step, width)
    yi0, yi1, yw0, yw1, r0, r1 = _axis_taps(size, box.y0, box.step, height)
    # Gray images are read three times per pixel; RGBA skips alpha.
    chan = np.zeros(3, np.intp) if channels == 1 else np.arange(3, dtype=np.intp)
    nr, nc = r1 - r0, c1 - c0
    return _Plan(
        rows=slice(r0, r1),
        cols=slice(c0, c1),
        y0=yi0,
        y1=yi1,
        wy0=yw0[:, None].copy(),
        wy1=yw1[:, None].copy(),
        x0=(xi0[:, None] * channels + chan).ravel(),
        x1=(xi1[:, None] * channels + chan).ravel(),
        wx0=np.repeat(xw0, 3)[None, :].copy(),
        wx1=np.repeat(xw1, 3)[None, :].copy(),
        vertical=bool(yw1.any()),
        horizontal=bool(xw1.any()),
        rows_u8=np.empty((nr, width * channels), np.uint8),
        rows_u16=np.empty((nr, width * channels), np.uint16),
        rows2_u16=np.empty((nr, width * channels), np.uint16),
        cols_u16=np.empty((nr, nc * 3), np.uint16),
        cols2_u16=np.empty((nr, nc * 3), np.uint16),
        box=box,
    )


def _as_image(image: Any) -> tuple[npt.NDArray[np.uint8], int]:
    """Validate ``image`` and return it C-contiguous with its channel count (1, 3 or 4).

    Raises:
        ValueError: Not a non-empty uint8 array of shape H×W, H×W×1, H×W×3 or H×W×4.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (0–255), got dtype {image.dtype}; "
            "convert float images with (img * 255).round().astype(np.uint8)"
        )
    if image.ndim == 2:
        channels = 1
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4):
        channels = int(image.shape[2])
    else:
        raise ValueError(
            f"image must be H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA), got shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image), channels


_Det = tuple[float, list[float]]  # (score, [x0, y0, x1, y1, kx0, ky0, ..., kx5, ky5])


def _decode(
    logits: list[float], raw: list[list[float]], anchors: list[list[float]], input_size: int
) -> list[_Det]:
    """Decode candidate anchors into scored boxes and keypoints (MediaPipe's ``DecodeBoxes``).

    Plain Python: only the few anchors above the threshold get here, and per-call overhead
    matters more than arithmetic throughput.

    Args:
        logits: Raw score logits of the candidates.
        raw: Their regressor rows: cx, cy, w, h, then six keypoint (x, y) pairs, in model-input
            pixels relative to the anchor centre.
        anchors: Their anchor centres ``[x, y]`` in [0, 1].
        input_size: Model input size in pixels.

    Returns:
        ``(score, values)`` per candidate with a non-empty box, values in [0, 1] units of the
        model input (they may fall outside for faces cut by the border).
    """
    inv = 1.0 / input_size
    out: list[_Det] = []
    for logit, row, (ax, ay) in zip(logits, raw, anchors, strict=True):
        half_w = row[2] * inv * 0.5
        half_h = row[3] * inv * 0.5
        if half_w <= 0.0 or half_h <= 0.0:
            continue  # MediaPipe drops boxes of non-positive size
        cx = row[0] * inv + ax
        cy = row[1] * inv + ay
        vals = [cx - half_w, cy - half_h, cx + half_w, cy + half_h]
        for j in range(4, 16, 2):
            vals.append(row[j] * inv + ax)
            vals.append(row[j + 1] * inv + ay)
        clipped = min(max(logit, -_SCORE_CLIP), _SCORE_CLIP)
        out.append((1.0 / (1.0 + math.exp(-clipped)), vals))
    return out


def _iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1, ...]`` boxes; 0 if the union is empty."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0.0 or iy <= 0.0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0.0 else 0.0


def _weighted_nms(dets: list[_Det], iou: float) -> list[_Det]:
    """MediaPipe's ``WEIGHTED`` non-max suppression.

    Repeatedly takes the best remaining detection, groups every remaining detection whose IoU
    with it exceeds ``iou`` (itself always included), and outputs the score-weighted mean of
    the group's boxes and keypoints with the best score.

    Returns:
        The merged detections, best first.
    """
    remaining = sorted(dets, key=lambda d: -d[0])
    out: list[_Det] = []
    while remaining:
        best = remaining[0]
        group = [best]
        rest: list[_Det] = []
        for det in remaining[1:]:
            (group if _iou(best[1], det[1]) > iou else rest).append(det)
        if len(group) == 1:
            out.append(best)
        else:
            total = sum(d[0] for d in group)
            n = len(best[1])
            out.append((best[0], [sum(d[0] * d[1][j] for d in group) / total for j in range(n)]))
        remaining = rest
    return out


def weighted_nms(faces: Sequence[Face], iou: float = _NMS_IOU) -> list[Face]:
    """Merge overlapping faces with MediaPipe's weighted non-max suppression.

    Use it to merge detections from several crops (tiles) of one frame, after mapping them to
    frame pixels with :meth:`Face.translated`.

    Args:
        faces: Detections in one common pixel frame.
        iou: Faces whose intersection-over-union with a better face exceeds this, in [0, 1],
            are merged into it.

    Returns:
        The merged faces, best score first; each is the score-weighted mean of its group's
        boxes and keypoints, with the group's best score.
    """
    dets: list[_Det] = []
    for f in faces:
        vals = [f.box.x0, f.box.y0, f.box.x1, f.box.y1]
        for p in f.keypoints:
            vals += (p.x, p.y)
        dets.append((f.score, vals))
    return [_face(score, vals, 1.0, 0.0, 0.0) for score, vals in _weighted_nms(dets, iou)]


def _face(score: float, v: list[float], scale: float, dx: float, dy: float) -> Face:
    """Build a :class:`Face` from ``[x0, y0, x1, y1, 6 × (x, y)]`` mapped by ``p·scale + d``."""
    return Face(
        box=Box(v[0] * scale + dx, v[1] * scale + dy, v[2] * scale + dx, v[3] * scale + dy),
        score=score,
        keypoints=(
            Point(v[4] * scale + dx, v[5] * scale + dy),
            Point(v[6] * scale + dx, v[7] * scale + dy),
            Point(v[8] * scale + dx, v[9] * scale + dy),
            Point(v[10] * scale + dx, v[11] * scale + dy),
            Point(v[12] * scale + dx, v[13] * scale + dy),
            Point(v[14] * scale + dx, v[15] * scale + dy),
        ),
    )


class Detector:
    """BlazeFace face detector (TFLite on the CPU), agreeing with MediaPipe's own pipeline.

    Not thread-safe: use one instance per thread.

    Attributes:
        model_path: The ``.tflite`` file in use.
        spec: The model's SSD configuration (``spec.name`` is ``"full"`` or ``"short"``).
        input_size: Model input width and height in pixels (192 full range, 128 short range).
        num_anchors: Number of SSD anchors (2304 full range, 896 short range).
        num_threads: TFLite interpreter threads.
        score_threshold: Minimum face score in [0, 1].
        last_timings: Milliseconds spent by the last :meth:`detect` call in ``"preprocess"``,
            ``"invoke"`` and ``"decode"`` (decode includes NMS and building the results).
    """

    def __init__(
        self,
        model: str | Path = "full",
        *,
        num_threads: int = 1,
        score_threshold: float | None = None,
        model_dir: str | Path | None = None,
    ) -> None:
        """Load a model.

        Args:
            model: ``"full"``, ``"short"`` or a path to a BlazeFace ``.tflite`` file (128 px /
                896 anchors or 192 px / 2304 anchors).
            num_threads: Interpreter threads, >= 1.
            score_threshold: Minimum score in (0, 1); default MediaPipe's (0.6 full range,
                0.5 short range).
            model_dir: Folder searched first for a named model (see :func:`find_model`).

        Raises:
            DetectorError: The model is missing, corrupt or not a supported BlazeFace model.
            ValueError: ``num_threads`` or ``score_threshold`` is out of range.
        """
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if score_threshold is not None and not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        self.model_path = find_model(model, model_dir)
        self.num_threads = num_threads
        self._interpreter = _load_interpreter(self.model_path, num_threads)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        shape = tuple(int(v) for v in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3:
            raise DetectorError(f"{self.model_path}: input shape {shape} is not 1×N×N×3")
        if shape[1] not in _SPECS:
            raise DetectorError(f"{self.model_path}: unsupported input size {shape[1]}")
        self.spec = _SPECS[shape[1]]
        self.input_size = self.spec.input_size
        self._anchors = ssd_anchors(self.spec)
        self.num_anchors = int(self._anchors.shape[0])
        self._anchor_list: list[list[float]] = self._anchors.tolist()
        by_width = {int(d["shape"][-1]): d for d in outputs}
        reg, cls = by_width.get(16), by_width.get(1)
        if (
            len(outputs) != 2
            or reg is None
            or cls is None
            or tuple(reg["shape"]) != (1, self.num_anchors, 16)
            or tuple(cls["shape"]) != (1, self.num_anchors, 1)
        ):
            found = [tuple(int(v) for v in d["shape"]) for d in outputs]
            raise DetectorError(
                f"{self.model_path}: outputs {found}, expected (1, {self.num_anchors}, 16) "
                f"and (1, {self.num_anchors}, 1)"
            )
        self.score_threshold = (
            self.spec.score_threshold if score_threshold is None else float(score_threshold)
        )
        t = min(max(self.score_threshold, 1e-12), 1.0 - 1e-12)
        # Anchors are pre-selected on the logit; a small margin keeps float rounding out.
        self._logit_threshold = math.log(t / (1.0 - t)) - 1e-4
        self._input_index = int(inputs[0]["index"])
        self._input = self._interpreter.tensor(self._input_index)
        self._reg = self._interpreter.tensor(int(reg["index"]))
        self._cls = self._interpreter.tensor(int(cls["index"]))
        self._plans: OrderedDict[tuple[int, int, int], _Plan] = OrderedDict()
        self._filled: _Plan | None = None
        self.last_timings: dict[str, float] = {"preprocess": 0.0, "invoke": 0.0, "decode": 0.0}

    def __repr__(self) -> str:
        return (
            f"Detector({str(self.model_path)!r}, num_threads={self.num_threads}, "
            f"score_threshold={self.score_threshold})"
        )

    def _plan(self, height: int, width: int, channels: int) -> _Plan:
        key = (height, width, channels)
        plan = self._plans.get(key)
        if plan is None:
            plan = _make_plan(height, width, channels, self.input_size)
            self._plans[key] = plan
            if len(self._plans) > _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def preprocess(self, image: npt.NDArray[np.uint8]) -> F32Array:
        """Letterbox ``image`` into the model input and return a copy of the input tensor.

        Args:
            image: H×W×3 uint8 RGB (also H×W gray, H×W×1 or H×W×4 RGBA).

        Returns:
            The ``(input_size, input_size, 3)`` float32 tensor, values in [-1, 1].
        """
        img, channels = _as_image(image)
        self._fill_input(img, self._plan(img.shape[0], img.shape[1], channels))
        return np.array(self._input()[0], dtype=np.float32, copy=True)

    def _fill_input(self, img: npt.NDArray[np.uint8], plan: _Plan) -> None:
        """Letterbox ``img`` into the interpreter's input tensor (in place).

        Fixed-point separable bilinear: the vertical pass on whole source rows gives values in
        1/32 grey level (<= 8160), kept to 1/8 (<= 2040) so the horizontal pass fits uint16
        (<= 65280, in 1/256); the result is rounded to whole grey levels as OpenCV's 8-bit
        warp does, then scaled to [-1, 1].
        """
        tensor = self._input()[0]
        if self._filled is not plan:
            tensor.fill(-1.0)  # zero border, scaled to [-1, 1]
            self._filled = plan
        if plan.rows.stop > plan.rows.start and plan.cols.stop > plan.cols.start:
            # mode="clip" (indices are in range anyway) lets numpy write straight into `out`.
            src = img.reshape(img.shape[0], -1)
            acc, rows = plan.rows_u16, plan.rows_u8
            np.take(src, plan.y0, axis=0, out=rows, mode="clip")
            np.multiply(rows, plan.wy0, out=acc)
            if plan.vertical:
                lower = plan.rows2_u16
                np.take(src, plan.y1, axis=0, out=rows, mode="clip")
                np.multiply(rows, plan.wy1, out=lower)
                np.add(acc, lower, out=acc)
            np.right_shift(acc, 2, out=acc)
            out = plan.cols_u16
            np.take(acc, plan.x0, axis=1, out=out, mode="clip")
            np.multiply(out, plan.wx0, out=out)
            if plan.horizontal:
                right = plan.cols2_u16
                np.take(acc, plan.x1, axis=1, out=right, mode="clip")
                np.multiply(right, plan.wx1, out=right)
                np.add(out, right, out=out)
            np.add(out, 128, out=out)
            np.right_shift(out, 8, out=out)
            region = tensor[plan.rows, plan.cols].reshape(out.shape)
            np.multiply(out, np.float32(2.0 / 255.0), out=region)
            np.subtract(region, np.float32(1.0), out=region)
            del region
        del tensor

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Face]:
        """Find faces in one image.

        Args:
            image: H×W×3 uint8 RGB of any size (H×W or H×W×1 gray and H×W×4 RGBA are also
                accepted; alpha is ignored). Non-contiguous views (crops, mirrors) work but are
                copied first. Float images are rejected: their range is ambiguous.

        Returns:
            Faces in source-image pixels, best score first, after weighted NMS. Boxes and
            keypoints may extend past the image edges for faces cut by them.

        Raises:
            ValueError: ``image`` is not a non-empty uint8 array of a supported shape.
        """
        t0 = time.perf_counter()
        img, channels = _as_image(image)
        plan = self._plan(img.shape[0], img.shape[1], channels)
        self._fill_input(img, plan)
        t1 = time.perf_counter()
        self._interpreter.invoke()
        t2 = time.perf_counter()
        faces = self._postprocess(plan)
        t3 = time.perf_counter()
        self.last_timings = {
            "preprocess": (t1 - t0) * 1e3,
            "invoke": (t2 - t1) * 1e3,
            "decode": (t3 - t2) * 1e3,
        }
        return faces

    def _postprocess(self, plan: _Plan) -> list[Face]:
        logits = self._cls()[0, :, 0]
        (idx,) = (logits >= self._logit_threshold).nonzero()
        if not idx.size:
            return []
        picked = logits[idx].tolist()
        raw = self._reg()[0][idx].tolist()
        del logits
        anchors = self._anchor_list
        dets = _decode(picked, raw, [anchors[i] for i in idx.tolist()], self.input_size)
        threshold = self.score_threshold
        dets = [d for d in dets if d[0] >= threshold]
        # Normalised outputs times the letterboxed square's side, less MediaPipe's slip.
        box = plan.box
        ox, oy = box.x0 - box.slip, box.y0 - box.slip
        return [_face(score, v, box.side, ox, oy) for score, v in _weighted_nms(dets, _NMS_IOU)]
