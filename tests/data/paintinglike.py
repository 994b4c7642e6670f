"""Painting-like test portraits and soft, moving head frames, made deterministically.

No public-domain painting ships in the package registries, so the tests and the benchmark make
their own from public-domain photos (scikit-image's astronaut, NASA; matplotlib's
``grace_hopper.jpg``, US Navy): the tone range squeezed so the sclera hardly stands out from the
iris and skin (sfumato), a yellow-brown varnish tint, a soft blur, and a craquelure network of
thin dark cracks. Heads: the same portrait's head, soft (down to half size and back up, as face
animation models output 256-pixel frames upscaled), turned, scaled and shifted a little frame to
frame while the eyes sweep.

Usage as a script (writes PNGs to look at)::

    .venv/bin/python tests/data/paintinglike.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

VARNISH = np.array([1.0, 0.86, 0.58])
"""Per-channel gain of the yellowed varnish (red, green, blue)."""


def photo(name: str) -> np.ndarray:
    """The public-domain photo ``"astronaut"`` (doubled to 1024×1024: a scan's face size) or
    ``"hopper"`` (512×600) as ``H×W×3`` uint8 RGB."""
    if name == "astronaut":
        small = Image.fromarray(np.ascontiguousarray(skimage.data.astronaut()))
        return np.asarray(small.resize((1024, 1024), Image.Resampling.BICUBIC))
    if name == "hopper":
        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return np.asarray(Image.open(path).convert("RGB"))
    raise ValueError(f"unknown photo {name!r}")


def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an ``H×W`` or ``H×W×C`` float image over rows and columns (edges held)."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            acc += w * np.take(padded, range(i, i + out.shape[axis]), axis=axis)
        out = acc
    return out


def craquelure(shape: tuple[int, int], seed: int, cell: float = 8.0) -> np.ndarray:
    """Crack strength 0..1 per pixel: the edges of a Voronoi network, one seed per ``cell`` px."""
    h, w = shape
    rng = np.random.default_rng(seed)
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    # One seed jittered inside each grid cell; a pixel's two nearest seeds are among the 3×3
    # cells around its own.
    sy = (np.arange(gh)[:, None] - 1 + rng.uniform(0, 1, (gh, gw))) * cell
    sx = (np.arange(gw)[None, :] - 1 + rng.uniform(0, 1, (gh, gw))) * cell
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    ci, cj = (ys / cell).astype(int) + 1, (xs / cell).astype(int) + 1
    d = np.stack(
        [
            np.hypot(ys - sy[ci + di, cj + dj], xs - sx[ci + di, cj + dj])
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
        ]
    )
    d.sort(axis=0)
    crack: np.ndarray = np.clip(1.0 - (d[1] - d[0]), 0.0, 1.0)
    return crack


def paint(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Make a photo look like an old painting (see the module docstring). uint8 RGB in and out."""
    img = rgb.astype(np.float64)
    # Sfumato: soften local contrast and squeeze the tones (darks lifted, lights lowered).
    soft = gaussian(img, 3.0)
    img = 0.5 * img + 0.5 * soft
    img = 70.0 + 0.55 * img
    img = gaussian(img, 1.2)
    img = img * VARNISH
    rng = np.random.default_rng(seed)
    grain = gaussian(rng.normal(0, 1, img.shape[:2]), 1.5)
    img += 4.0 * grain[..., None]
    crack = craquelure(img.shape[:2], seed)
    img *= (1.0 - 0.15 * crack)[..., None]
    out: np.ndarray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def painting(name: str, seed: int = 0) -> np.ndarray:
    """The painting-like version of photo ``name`` (uint8 RGB)."""
    return paint(photo(name), seed)


def large_painting(seed: int = 0) -> np.ndarray:
    """A 1024×1526 (W×H) painting-like portrait: Grace Hopper doubled, the canvas extended."""
    base = Image.fromarray(photo("hopper")).resize((1024, 1200), Image.Resampling.BICUBIC)
    arr = np.asarray(base)
    canvas = np.pad(arr, ((0, 1526 - 1200), (0, 0), (0, 0)), mode="reflect")
    return paint(canvas, seed)


def museum_painting(width: int, seed: int = 0) -> np.ndarray:
    """:func:`large_painting` at a museum scan's size: ``width`` wide, in proportion, with grain.

    Upscaled (Lanczos), then a faint canvas grain at the new scale (±2 grey levels, uniform),
    so the scan is not smoother than a real one (a smooth image compresses unfairly well).
    Made row band by row band: a 50 Mpx scan costs its own 150 MB, little more.
    """
    small = large_painting(seed)
    height = round(small.shape[0] * width / small.shape[1])
    big = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.LANCZOS))
    out = big.copy()
    rng = np.random.default_rng(seed + 1)
    for y in range(0, height, 512):
        band = out[y : y + 512]
        grain = rng.integers(-2, 3, band.shape[:2], dtype=np.int16)[..., None]
        band[:] = np.clip(band.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return out


def soften(rgb: np.ndarray) -> np.ndarray:
    """Down to half size and back up (bicubic): a face animation model's 256 px upscaled."""
    h, w = rgb.shape[:2]
    small = Image.fromarray(rgb).resize((w // 2, h // 2), Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))


def wobble(rgb: np.ndarray, angle: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """Turn by ``angle`` degrees and scale about the centre, then shift by ``(dx, dy)`` px.

    The image is edge-padded first, so the corners a turn uncovers hold the nearest content.
    """
    h, w = rgb.shape[:2]
    m = max(h, w) // 4
    big = np.pad(rgb, ((m, m), (m, m), (0, 0)), mode="edge")
    a = np.radians(angle)
    c, s = np.cos(a) / scale, np.sin(a) / scale
    cx, cy = m + w / 2.0, m + h / 2.0
    # Inverse map (output -> input) for PIL's affine transform.
    coeffs = (c, s, cx - c * (cx + dx) - s * (cy + dy), -s, c, cy + s * (cx + dx) - c * (cy + dy))
    img = Image.fromarray(big).transform(
        big.shape[1::-1], Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC
    )
    return np.asarray(img)[m : m + h, m : m + w].copy()


def head_motion(i: int, count: int) -> tuple[float, float, float, float]:
    """The small movement of head frame ``i``: (angle deg, scale, dx px, dy px) for 512 px."""
    t = i / max(1, count - 1)
    return (
        1.5 * np.sin(2 * np.pi * t),
        1.0 + 0.02 * np.sin(np.pi * t),
        2.0 * np.sin(3 * np.pi * t),
        1.5 * np.cos(2 * np.pi * t) - 1.5,
    )


HEAD_CROP = (65, 10, 465, 410)
"""Where the head frames are cut from the Grace Hopper painting (x0, y0, x1, y1)."""


def head_frames(frames: list[np.ndarray], crop: tuple[int, ...] = HEAD_CROP) -> list[np.ndarray]:
    """Soft, slightly moving 512×512 head frames from gaze frames of a painting-like portrait.

    Args:
        frames: Frames of the portrait whose eyes sweep (e.g. a synthesize build), in order.
        crop: The head's square in the frames, resized to 512×512.
    """
    out = []
    for i, frame in enumerate(frames):
        x0, y0, x1, y1 = crop
        head = Image.fromarray(np.ascontiguousarray(frame[y0:y1, x0:x1]))
        big = np.asarray(head.resize((512, 512), Image.Resampling.BICUBIC))
        out.append(soften(wobble(big, *head_motion(i, len(frames)))))
    return out


def main(out: str) -> int:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "hopper"):
        Image.fromarray(painting(name)).save(path / f"{name}_painting.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
