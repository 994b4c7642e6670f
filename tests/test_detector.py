"""Tests of appliance.detector, including conformance with MediaPipe 0.10.21 run live.

The conformance test runs ``tests/mp_reference.py`` once per session in MediaPipe's own venv
(``$MONALISA_MP_PYTHON``, else ``.venv-mp/bin/python`` in the repo; ``make test`` provides it) on
scikit-image's photos and re-framings of them, and compares with our detector.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from appliance import detector as det
from appliance.detector import (
    Detector,
    DetectorError,
    find_model,
    letterbox,
    ssd_anchors,
    weighted_nms,
)
from appliance.types import Box, Face, FaceKeyPoint, Point
from tests.support.mediapipe_coords import MediaPipeDetector, detector_slip, run_mediapipe
from tests.support.run import REPO

MP_SCRIPT = Path(__file__).resolve().parent / "mp_reference.py"


# ----------------------------------------------------------------------------- helpers


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.LANCZOS))


def _place(a: np.ndarray, w: int, h: int, x: int, y: int, bg: int = 0) -> np.ndarray:
    canvas = np.full((h, w, 3), bg, np.uint8)
    canvas[y : y + a.shape[0], x : x + a.shape[1]] = a
    return canvas


def _images() -> dict[str, np.ndarray]:
    """Photos with a face (skimage's astronaut and camera) re-framed, and photos without one."""
    ast = data.astronaut()
    cam = _rgb(data.camera())
    return {
        "astronaut": ast,
        "camera": cam,
        # letterboxed into a 640×480 camera frame
        "astronaut_640x480": _place(_resize(ast, 480, 480), 640, 480, 80, 0),
        "camera_640x480": _place(_resize(cam, 480, 480), 640, 480, 80, 0),
        # mirrored
        "astronaut_mirror": np.ascontiguousarray(ast[:, ::-1]),
        "camera_mirror": np.ascontiguousarray(cam[:, ::-1]),
        # scaled so the face is ~40 px wide, off-centre in a 640×480 frame
        "astronaut_face40": _place(_resize(ast, 197, 197), 640, 480, 400, 60, 40),
        "camera_face40": _place(_resize(cam, 270, 270), 640, 480, 30, 200, 90),
        # ~60 px face, bottom-left
        "astronaut_face60": _place(_resize(ast, 300, 300), 640, 480, 20, 150, 40),
        # off-centre in a wide 1280×720 frame, and in a portrait frame
        "astronaut_offcentre": _place(ast, 1280, 720, 760, 100),
        "camera_offcentre": _place(_resize(cam, 400, 400), 640, 480, 0, 80),
        "astronaut_portrait": _place(_resize(ast, 360, 360), 360, 640, 0, 40),
        # no face
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "black": np.zeros((480, 640, 3), np.uint8),
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "white": np.full((300, 200, 3), 255, np.uint8),
    }


NO_FACE = {"coffee", "chelsea", "black", "grey", "white"}
# Where MediaPipe itself must find a face (so the comparison cannot pass vacuously).
MP_FINDS = {
    "full": {
        "astronaut",
        "camera",
        "astronaut_640x480",
        "camera_640x480",
        "astronaut_mirror",
        "camera_mirror",
        "astronaut_face40",
        "camera_face40",
        "astronaut_face60",
        "astronaut_offcentre",
        "camera_offcentre",
        "astronaut_portrait",
    },
    "short": {"astronaut", "camera", "astronaut_640x480", "astronaut_mirror", "camera_mirror"},
}


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return _images()


@pytest.fixture(scope="module")
def mediapipe_results(
    images: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """MediaPipe's detections of every test image, for both models (one subprocess)."""
    result: dict[str, Any] = run_mediapipe(MP_SCRIPT, images, tmp_path_factory.mktemp("mp"))
    return result


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {"full": Detector("full"), "short": Detector("short")}


@pytest.fixture(scope="module")
def mp_detectors() -> dict[str, Detector]:
    """Our detectors, their faces moved by MediaPipe's half-pixel slip (test helper)."""
    return {m: MediaPipeDetector(m) for m in ("full", "short")}


# ----------------------------------------------------------------------------- conformance


@pytest.mark.slow
@pytest.mark.parametrize("model", ["full", "short"])
def test_agrees_with_mediapipe(
    model: str,
    images: dict[str, np.ndarray],
    mediapipe_results: dict[str, Any],
    mp_detectors: dict[str, Detector],
) -> None:
    ref = mediapipe_results[model]
    problems: list[str] = []
    for name, image in images.items():
        theirs = ref[name]["faces"]
        if name in MP_FINDS[model]:
            assert theirs, f"{model}/{name}: MediaPipe found no face; test data is broken"
        if name in NO_FACE:
            assert not theirs, f"{model}/{name}: MediaPipe found a face in a face-less image"
        # the mirrored images go in as non-contiguous views
        src = images[name.removesuffix("_mirror")][:, ::-1] if name.endswith("_mirror") else image
        ours = mp_detectors[model].detect(src)
        if len(ours) != len(theirs):
            problems.append(f"{model}/{name}: {len(ours)} faces, MediaPipe {len(theirs)}")
            continue
        for t in theirs:
            tbox = Box(*t["box"])
            f = max(ours, key=lambda o: o.box.iou(tbox))
            if f.box.iou(tbox) < 0.8:
                problems.append(f"{model}/{name}: no matching box for {t['box']}")
                continue
            tol = max(1.5, 0.02 * tbox.width)
            for which in (FaceKeyPoint.RIGHT_EYE, FaceKeyPoint.LEFT_EYE):
                tx, ty = t["keypoints"][which]
                p = f.keypoint(which)
                err = math.hypot(p.x - tx, p.y - ty)
                if err > tol:
                    problems.append(f"{model}/{name}: {which.name} off by {err:.2f} px > {tol}")
            if abs(f.score - t["score"]) > 0.02:
                problems.append(f"{model}/{name}: score {f.score:.4f} vs {t['score']:.4f}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- models, anchors


def test_anchor_counts_and_layout() -> None:
    full = ssd_anchors(det._SPECS[192])
    short = ssd_anchors(det._SPECS[128])
    assert full.shape == (2304, 2)
    assert short.shape == (896, 2)
    # full range: one anchor per cell of a 48×48 grid, row-major
    assert full[0].tolist() == pytest.approx([0.5 / 48, 0.5 / 48])
    assert full[1].tolist() == pytest.approx([1.5 / 48, 0.5 / 48])
    assert full[48].tolist() == pytest.approx([0.5 / 48, 1.5 / 48])
    # short range: 2 anchors per cell of 16×16, then 6 per cell of 8×8
    assert short[0].tolist() == pytest.approx(short[1].tolist())
    assert short[2].tolist() == pytest.approx([1.5 / 16, 0.5 / 16])
    assert short[512].tolist() == pytest.approx([0.5 / 8, 0.5 / 8])
    assert short[517].tolist() == pytest.approx([0.5 / 8, 0.5 / 8])
    assert short[518].tolist() == pytest.approx([1.5 / 8, 0.5 / 8])
    assert short[-1].tolist() == pytest.approx([7.5 / 8, 7.5 / 8])


def test_find_model_names_paths_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_model("full").name == "blazeface.tflite"
    assert find_model("short").name == "blazeface_short_range.tflite"
    assert find_model(REPO / "models" / "blazeface.tflite") == REPO / "models" / "blazeface.tflite"
    (tmp_path / "blazeface.tflite").write_bytes(b"x")
    monkeypatch.setenv("MONALISA_MODEL_DIR", str(tmp_path))
    assert find_model("full") == tmp_path / "blazeface.tflite"
    with pytest.raises(DetectorError, match=r"nope\.tflite"):
        find_model(tmp_path / "nope.tflite")
    # model_dir (the config's [detector] model_dir) comes before the environment's folder.
    first = tmp_path / "first"
    first.mkdir()
    (first / "blazeface.tflite").write_bytes(b"y")
    assert find_model("full", first) == first / "blazeface.tflite"
    assert find_model("short", first).name == "blazeface_short_range.tflite"  # falls through
    path = REPO / "models" / "blazeface.tflite"
    assert find_model(path, first) == path  # a path is a path


def test_corrupt_or_wrong_model_is_a_detector_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(DetectorError, match=r"bad\.tflite"):
        Detector(bad)
    with pytest.raises(DetectorError):
        Detector(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="num_threads"):
        Detector("short", num_threads=0)
    with pytest.raises(ValueError, match="score_threshold"):
        Detector("short", score_threshold=1.5)


def test_detector_attributes(detectors: dict[str, Detector]) -> None:
    full, short = detectors["full"], detectors["short"]
    assert (full.input_size, full.num_anchors, full.score_threshold) == (192, 2304, 0.6)
    assert (short.input_size, short.num_anchors, short.score_threshold) == (128, 896, 0.5)
    assert full.spec.name == "full" and short.spec.name == "short"


# ----------------------------------------------------------------------------- preprocessing


def _reference_letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """MediaPipe's letterbox written independently: zero-pad to a square, sample bilinearly.

    Output pixel (i, j) samples the padded square at ``(j·s, i·s)``, pixel centres at integers,
    positions rounded to 1/32 px (OpenCV's warp), outside pixels zero. Returns exact (unrounded)
    grey levels in [0, 255].
    """
    img = _rgb(image[..., :3] if image.ndim == 3 and image.shape[2] == 4 else image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    h, w = img.shape[:2]
    side = max(h, w)
    pad = np.zeros((side + 2, side + 2, 3), np.float64)  # +1 zero ring past the far edges
    top, left = (side - h) // 2, (side - w) // 2
    pad[top : top + h, left : left + w] = img
    # (side - h) may be odd: the image then starts at a half pixel; handle by shifting the grid
    oy, ox = (side - h) / 2 - top, (side - w) / 2 - left
    s = side / size
    pos = np.arange(size) * s
    ys = np.rint((pos - oy) * 32) / 32
    xs = np.rint((pos - ox) * 32) / 32
    out = np.zeros((size, size, 3))
    for i, y in enumerate(ys):
        y0 = math.floor(y)
        fy = y - y0
        for j, x in enumerate(xs):
            x0 = math.floor(x)
            fx = x - x0

            def px(yy: int, xx: int) -> np.ndarray:
                inside = 0 <= yy < side + 2 and 0 <= xx < side + 2
                return np.array(pad[yy, xx] if inside else np.zeros(3))

            out[i, j] = (
                px(y0, x0) * (1 - fx) * (1 - fy)
                + px(y0, x0 + 1) * fx * (1 - fy)
                + px(y0 + 1, x0) * (1 - fx) * fy
                + px(y0 + 1, x0 + 1) * fx * fy
            )
    return out


@pytest.mark.parametrize("shape", [(48, 64, 3), (64, 40, 3), (37, 37, 3), (30, 50), (20, 31, 4)])
def test_preprocess_matches_reference_letterbox(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    d = Detector("short")
    ours = d.preprocess(image)
    assert ours.shape == (128, 128, 3) and ours.dtype == np.float32
    exact = _reference_letterbox(image, 128)
    grey = (ours.astype(np.float64) + 1) * 255 / 2
    # whole grey levels like OpenCV's 8-bit warp; the 1/8-level intermediate can tip a rounding
    np.testing.assert_allclose(grey, np.rint(grey), atol=1e-3)
    assert np.abs(grey - exact).max() <= 0.5 + 0.1
    assert np.mean(np.rint(grey) == np.rint(exact)) > 0.85


def test_preprocess_border_is_minus_one_and_refilled(detectors: dict[str, Detector]) -> None:
    d = detectors["full"]
    wide = np.full((100, 400, 3), 255, np.uint8)
    tall = np.full((400, 100, 3), 255, np.uint8)
    t_wide = d.preprocess(wide)
    assert t_wide[0].max() == -1.0 and t_wide[-1].max() == -1.0  # top/bottom border rows
    assert t_wide[96, :, :].min() == pytest.approx(1.0)
    t_tall = d.preprocess(tall)
    assert t_tall[:, 0].max() == -1.0 and t_tall[96, 96].min() == pytest.approx(1.0)
    # switching back must not leave the tall image's content in the wide one's border
    np.testing.assert_array_equal(d.preprocess(wide), t_wide)


def test_gray_rgba_and_views_equal_rgb(detectors: dict[str, Detector]) -> None:
    d = detectors["full"]
    gray = data.camera()
    rgb = _rgb(gray)
    faces = d.detect(rgb)
    assert len(faces) == 1
    assert d.detect(gray) == faces
    assert d.detect(gray[:, :, None]) == faces
    rgba = np.concatenate([rgb, np.full((*gray.shape, 1), 7, np.uint8)], axis=2)
    assert d.detect(rgba) == faces
    # a non-contiguous view (every other column of a doubled-up image) gives the same result
    doubled = np.repeat(rgb, 2, axis=1)
    assert d.detect(doubled[:, ::2]) == faces
    # a crop view (non-contiguous rows) is mapped in its own pixels
    ast = data.astronaut()
    crop = ast[40:300, 100:400]
    assert not crop.flags.c_contiguous
    got = d.detect(crop)
    want = d.detect(np.ascontiguousarray(crop))
    assert got == want and len(got) == 1


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((10, 10, 3, 1), np.uint8), "shape"),
        (np.zeros((10,), np.uint8), "shape"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_input_raises_value_error(bad: Any, match: str, detectors: dict[str, Detector]) -> None:
    with pytest.raises(ValueError, match=match):
        detectors["short"].detect(bad)


# ----------------------------------------------------------------------------- results


def test_results_in_source_pixels_and_timings(detectors: dict[str, Detector]) -> None:
    d = detectors["full"]
    ast = data.astronaut()
    (face,) = d.detect(ast)
    # shifted by 32 px = 12 model px = 3 anchor strides: the face moves by exactly that much
    shifted = np.zeros_like(ast)
    shifted[32:, 32:] = ast[:-32, :-32]
    (moved,) = d.detect(shifted)
    assert moved.score == pytest.approx(face.score, abs=0.05)
    assert moved.eye_mid.x - 32 == pytest.approx(face.eye_mid.x, abs=0.5)
    assert moved.eye_mid.y - 32 == pytest.approx(face.eye_mid.y, abs=0.5)
    # placed in a bigger frame (other letterbox and scale): in that frame's pixels
    (placed,) = d.detect(_place(ast, 1024, 768, 300, 200))
    tol = 0.05 * face.box.width
    assert placed.eye_mid.x - 300 == pytest.approx(face.eye_mid.x, abs=tol)
    assert placed.eye_mid.y - 200 == pytest.approx(face.eye_mid.y, abs=tol)
    # face geometry is sane: eyes inside the box, above the mouth, subject's right eye on the left
    b = face.box
    for p in (face.right_eye, face.left_eye):
        assert b.x0 < p.x < b.x1 and b.y0 < p.y < b.y1
    assert face.right_eye.x < face.left_eye.x
    assert face.keypoint(FaceKeyPoint.MOUTH_CENTER).y > face.eye_mid.y
    assert set(d.last_timings) == {"preprocess", "invoke", "decode"}
    assert all(v >= 0 for v in d.last_timings.values())
    assert d.last_timings["invoke"] > 0


def _mediapipe_read_back(u: float, v: float, h: int, w: int, size: int) -> tuple[float, float]:
    """MediaPipe's own mapping of a model-input point to an ``h×w`` image (corner-based)."""
    side = max(h, w)
    step = side / size
    return (w - side) / 2 + u * step, (h - side) / 2 + v * step


@pytest.mark.parametrize("shape", [(960, 1280), (480, 640), (320, 320), (100, 100), (300, 50)])
def test_letterbox_inverts_the_letterbox_to_the_pixel(shape: tuple[int, int]) -> None:
    """A blob's centroid in the model input maps back onto the blob, without MediaPipe's slip."""
    h, w = shape
    step = max(h, w) / 192
    sigma = 3 * max(step, 1.0)
    rng = np.random.default_rng(7)
    d = Detector("full")
    box = letterbox(h, w, d.input_size)
    assert box.step == pytest.approx(step)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # continuous coordinates of pixel centres
    vv, uu = np.mgrid[0:192, 0:192] + 0.5
    for _ in range(3):
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        blob = 255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        grey = np.rint(blob).astype(np.uint8)
        weight = (d.preprocess(np.dstack([grey] * 3))[..., 0].astype(np.float64) + 1) / 2
        u, v = (weight * uu).sum() / weight.sum(), (weight * vv).sum() / weight.sum()
        p = box.to_image(u, v)
        assert p.x == pytest.approx(cx, abs=0.05) and p.y == pytest.approx(cy, abs=0.05)
        # MediaPipe's read-back lands the slip the test helper adds away from the blob
        qx, qy = _mediapipe_read_back(u, v, h, w, 192)
        slip = (step - 1) / 2
        assert detector_slip((h, w, 3), 192) == pytest.approx(slip)
        assert qx - cx == pytest.approx(slip, abs=0.05)
        assert qy - cy == pytest.approx(slip, abs=0.05)


def test_detect_removes_exactly_mediapipes_slip() -> None:
    """Faces equal MediaPipe's mapping of the model's own detections, less the slip exactly.

    The model input's grey levels, given back as a 192×192 image, make the same tensor (a
    192-px image goes in unscaled, whole grey levels), so detecting on it gives the model's
    detections in model-input pixels; MediaPipe's mapping of those to the frame is then
    computed here, independently of the detector.
    """
    ours, helper = Detector("full"), MediaPipeDetector("full")
    for frame, step in (
        (data.astronaut(), 512 / 192),
        (_place(data.astronaut(), 1280, 960, 400, 300), 1280 / 192),
    ):
        h, w = frame.shape[:2]
        tensor = ours.preprocess(frame)
        model_view = np.rint((tensor.astype(np.float64) + 1) * 255 / 2).astype(np.uint8)
        np.testing.assert_array_equal(ours.preprocess(model_view), tensor)
        (raw,) = ours.detect(model_view)
        (face,) = ours.detect(frame)
        (theirs,) = helper.detect(frame)
        assert face.score == raw.score == theirs.score
        slip = (step - 1) / 2
        for p, q, r in zip(face.keypoints, theirs.keypoints, raw.keypoints, strict=True):
            mx, my = _mediapipe_read_back(r.x, r.y, h, w, 192)
            assert mx - p.x == pytest.approx(slip, abs=1e-6)
            assert my - p.y == pytest.approx(slip, abs=1e-6)
            assert (q.x, q.y) == pytest.approx((mx, my), abs=1e-6)
        x0, y1 = _mediapipe_read_back(raw.box.x0, raw.box.y1, h, w, 192)
        assert x0 - face.box.x0 == pytest.approx(slip, abs=1e-6)
        assert y1 - face.box.y1 == pytest.approx(slip, abs=1e-6)
        assert letterbox(h, w, 192).to_image(96.0, 96.0).x == pytest.approx(w / 2 - slip)


def test_score_threshold_is_configurable() -> None:
    ast = data.astronaut()
    strict = Detector("full", score_threshold=0.99)
    assert strict.detect(ast) == []
    lax = Detector("full", score_threshold=0.05)
    faces = lax.detect(ast)
    assert faces and all(f.score >= 0.05 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_two_threads_give_the_same_faces() -> None:
    ast = data.astronaut()
    one = Detector("full", num_threads=1).detect(ast)
    two = Detector("full", num_threads=2).detect(ast)
    assert len(one) == len(two) == 1
    assert one[0].eye_mid.x == pytest.approx(two[0].eye_mid.x, abs=1e-3)


def test_decode_applies_anchor_offset_scale_and_clipped_sigmoid() -> None:
    row = [0.0] * 16
    row[0], row[1], row[2], row[3] = 12.8, -6.4, 25.6, 12.8  # px of a 128 input
    row[4], row[5] = 1.28, 2.56
    (score, v), *_ = det._decode([1000.0], [row], [[0.25, 0.5]], 128)
    assert score == pytest.approx(1.0 / (1.0 + math.exp(-100.0)))
    assert v[:4] == pytest.approx([0.25, 0.4, 0.45, 0.5])  # cx .35 cy .45 w .2 h .1
    assert v[4:6] == pytest.approx([0.26, 0.52])
    assert det._decode([0.0], [[0.0] * 16], [[0.5, 0.5]], 128) == []  # empty box dropped
    ((s0, _),) = det._decode([0.0], [row], [[0.5, 0.5]], 128)
    assert s0 == pytest.approx(0.5)


def _face(x0: float, y0: float, size: float, score: float) -> Face:
    pts = tuple(Point(x0 + size * (i + 1) / 8, y0 + size / 2) for i in range(6))
    return Face(Box(x0, y0, x0 + size, y0 + size), score, pts)  # type: ignore[arg-type]


def test_weighted_nms_merges_overlaps_by_score() -> None:
    a = _face(0, 0, 100, 0.9)
    b = _face(10, 0, 100, 0.6)  # IoU with a = 90/110 > 0.3
    c = _face(300, 300, 50, 0.7)  # separate face
    d = _face(70, 0, 100, 0.8)  # IoU with a = 30/170 < 0.3: kept separately
    merged = weighted_nms([b, c, a, d])
    assert [m.score for m in merged] == [0.9, 0.8, 0.7]
    m = merged[0]
    assert m.box.x0 == pytest.approx((0 * 0.9 + 10 * 0.6) / 1.5)
    assert m.box.x1 == pytest.approx((100 * 0.9 + 110 * 0.6) / 1.5)
    assert m.right_eye.x == pytest.approx((12.5 * 0.9 + 22.5 * 0.6) / 1.5)
    assert merged[1] == d and merged[2] == c
    assert weighted_nms([]) == []
    # a degenerate (empty) box survives alone
    e = Face(Box(5, 5, 5, 5), 0.95, a.keypoints)
    assert weighted_nms([e, a])[0] == e


def test_module_imports_no_hardware_outside(tmp_path: Path) -> None:
    # the interpreter import is lazy: importing the module alone does not load it
    code = (
        "import sys, appliance.detector; "
        "print(any(m.startswith(('ai_edge_litert', 'tflite_runtime')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- CLI


def test_cli_detect_json_and_unreadable_files(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], detectors: dict[str, Detector]
) -> None:
    from appliance.cli import main

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    cat = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(cat, quality=95)
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    missing = tmp_path / "missing.png"
    argv = ["detect", str(photo), str(junk), str(missing), str(cat), "--json"]
    assert main(argv) == 2
    out, err = capfd.readouterr()  # fd level: TFLite logs there
    lines = out.splitlines()
    assert len(lines) == 2  # the two readable images, in order
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["image", "faces"] and first["image"] == str(photo)
    assert second == {"image": str(cat), "faces": []}
    (face,) = first["faces"]
    assert list(face) == ["score", "box", "keypoints"]
    assert len(face["box"]) == 4 and len(face["keypoints"]) == 6
    assert all(len(p) == 2 for p in face["keypoints"])
    (want,) = detectors["full"].detect(data.astronaut())
    assert face["score"] == pytest.approx(want.score, abs=1e-4)
    assert face["box"] == want.box.as_list()
    assert face["keypoints"][1] == want.left_eye.as_list()
    errors = err.strip().splitlines()
    assert len(errors) == 2, err
    assert str(junk) in errors[0] and str(missing) in errors[1]
    assert "INFO" not in err


def test_cli_detect_table_short_model_and_bad_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance.cli import main

    photo = tmp_path / "camera.png"
    Image.fromarray(data.camera()).save(photo)  # grayscale PNG
    assert main(["detect", str(photo), "--model", "short", "--threads", "2"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == f"{photo}  512×512  1 face"
    assert "score 0.77" in out and "eyes R (" in out
    assert main(["detect", str(photo), "--model", str(tmp_path / "none.tflite")]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "none.tflite" in err


def test_cli_detect_takes_the_model_and_its_folder_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance.cli import main

    photo = tmp_path / "camera.png"
    Image.fromarray(data.camera()).save(photo)
    models = tmp_path / "models"
    models.mkdir()
    (models / "blazeface_short_range.tflite").write_bytes(
        (REPO / "models" / "blazeface_short_range.tflite").read_bytes()
    )
    (models / "blazeface.tflite").write_bytes(b"not a model" * 20)
    config = tmp_path / "config.toml"
    config.write_text(f'[detector]\nmodel = "short"\nmodel_dir = "{models}"\n')
    assert main(["detect", str(photo), "--config", str(config)]) == 0  # the config's model
    assert "score 0.77" in capsys.readouterr().out
    # --model wins over the config's model, and is looked for in its model_dir.
    assert main(["detect", str(photo), "--config", str(config), "--model", "full"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and f"{models}/blazeface.tflite" in err
    config.write_text("[detector]\nmodel = 3\n")
    assert main(["detect", str(photo), "--config", str(config)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and f"{config}: detector.model = 3" in err, err


def test_falls_back_to_tflite_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from ai_edge_litert.interpreter import Interpreter

    # ai-edge-litert missing, tflite_runtime present (here: a module exposing the same class)
    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = Interpreter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    assert len(Detector("short").detect(data.astronaut())) == 1
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(DetectorError, match="ai-edge-litert"):
        Detector("short")
