"""Start-up of the screen: the base scaled once and cached, patches rendered in the background.

A real version 2 set (written by ``write_set`` from photo frames whose eyes move) is opened as
the appliance opens it (:meth:`Portrait.open`: manifest and patches, no base) and shown on SDL's
dummy driver. Every frame on screen must equal the whole frame scaled (the peer of
``tests/support/display.py``), whether the base was decoded or read from the cache, and the
base is decoded only on a cache miss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data

from appliance.config import DisplayConfig
from appliance.display import Display
from appliance.display.layout import compute_layout
from appliance.display.prepare import cache_path, is_cached, prepare_base
from appliance.frames import FrameSet, Portrait, diff_patch, write_set
from appliance.types import Box
from tests.support.display import frame_on_screen

MAGENTA = (255, 0, 255)
HEAD = Box(150, 60, 330, 150)


def _frames() -> list[np.ndarray]:
    """Five frames of the astronaut (512×512) whose eye region shifts sideways, step by step."""
    base = np.ascontiguousarray(data.astronaut())
    out = []
    for i in range(5):
        f = base.copy()
        dx = 2 * (i - 2)
        if dx:
            f[90:120, 180:280] = base[90:120, 180 - dx : 280 - dx]
        out.append(f)
    return out


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return _frames()


def _write(folder: Path, frames: list[np.ndarray], preview_max: int = 1920) -> Path:
    patches = [diff_patch(frames[2], f) for f in frames]
    write_set(
        folder,
        frames[2],
        patches,
        angles=[-20.0, -10.0, 0.0, 10.0, 20.0],
        rest_index=2,
        head_box=HEAD,
        preview_max=preview_max,
    )
    return folder


class Slow:
    """Records each time the base is about to be decoded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, reason: str, megapixels: float) -> None:
        self.calls.append((reason, megapixels))


def _show_all(d: Display, screen, rotation, fit, frames) -> list[np.ndarray]:
    shots = []
    for t, i in enumerate([2, 0, 4, 3, 1]):
        d.show(i, 10.0 + t)
        d.flush()
        shot = d.pixels()
        ref = frame_on_screen(frames[i], screen, rotation, fit, MAGENTA)
        diff = np.abs(shot.astype(int) - ref.astype(int))
        assert diff.max() <= 4 and diff.mean() < 0.5, (i, diff.max())
        shots.append(shot)
    return shots


@pytest.mark.parametrize(
    ("screen", "rotation", "fit"),
    [((200, 300), 0, "fit"), ((90, 70), 90, "fill"), ((61, 47), 270, "fit")],
)
def test_cold_then_cached_start_show_the_scaled_frames(
    tmp_path: Path, frames: list[np.ndarray], screen, rotation, fit
) -> None:
    folder = _write(tmp_path / "set", frames)
    cache = tmp_path / "cache"
    config = DisplayConfig(window_size=screen, background=MAGENTA, rotation=rotation, fit=fit)
    slow = Slow()
    d = Display(
        config, Portrait.open(folder), "headless", cache_dir=cache, background=True, slow=slow
    )
    try:
        # The rest frame is drawn before the other patches are taken up.
        d.show(2, 0.0)
        ref = frame_on_screen(frames[2], screen, rotation, fit, MAGENTA)
        assert np.abs(d.pixels().astype(int) - ref.astype(int)).max() <= 4
        cold = _show_all(d, screen, rotation, fit, frames)
    finally:
        d.close()
    assert [round(mp, 3) for _, mp in slow.calls] == [0.262]
    assert "512x512 base image" in slow.calls[0][0]
    assert len(list(cache.glob("portrait-*.npz"))) == 1
    # A second start reads the cache: no decode, the same pixels.
    d = Display(
        config, Portrait.open(folder), "headless", cache_dir=cache, background=True, slow=slow
    )
    try:
        warm = _show_all(d, screen, rotation, fit, frames)
    finally:
        d.close()
    assert len(slow.calls) == 1
    for a, b in zip(cold, warm, strict=True):
        assert np.array_equal(a, b)


def test_cache_is_keyed_by_content_and_screen_and_a_bad_file_is_replaced(
    tmp_path: Path, frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    folder = _write(tmp_path / "set", frames)
    cache = tmp_path / "cache"
    portrait = Portrait.open(folder)
    small = compute_layout((100, 80), portrait.size, 0, "fit")
    large = compute_layout((300, 200), portrait.size, 0, "fit")
    first = cache_path(cache, portrait, small)
    assert first is not None and first != cache_path(cache, portrait, large)
    slow = Slow()
    config = DisplayConfig(window_size=(100, 80), background=MAGENTA)
    Display(config, portrait, "headless", cache_dir=cache, slow=slow).close()
    assert first.is_file() and len(slow.calls) == 1
    # A damaged cache file costs a decode, is named in the log, and is written anew.
    first.write_bytes(b"PK\x03\x04 not a cache file")
    Display(config, portrait, "headless", cache_dir=cache, slow=slow).close()
    assert len(slow.calls) == 2 and str(first) in caplog.text
    assert prepare_base(portrait, small, cache, slow).cached and len(slow.calls) == 2
    # New content (the base rewritten) is another key: the old file is not used.
    changed = [f.copy() for f in frames]
    for f in changed:
        f[0:10] = 0
    _write(folder, changed)
    again = Portrait.open(folder)
    assert again.key != portrait.key
    assert not is_cached(cache, again) and is_cached(cache, portrait)
    prepared = prepare_base(again, small, cache, slow)
    assert not prepared.cached and len(slow.calls) == 3
    # Its cache file replaces the old set's: one portrait is shown, one file is kept.
    Display(config, again, "headless", cache_dir=cache, slow=slow).close()
    kept = cache_path(cache, again, small)
    assert kept is not None and [p.name for p in cache.glob("portrait-*.npz")] == [kept.name]
    assert is_cached(cache, again) and not is_cached(cache, portrait)


def test_portrait_holds_what_the_loaded_set_holds(tmp_path: Path, frames) -> None:
    folder = _write(tmp_path / "set", frames)
    fs = FrameSet.load(folder)
    portrait = Portrait.open(folder)
    assert not portrait.base_loaded
    assert np.array_equal(portrait.read_base(), fs.base)
    # Decoded in the background from the moment it is asked for; read_base waits for it.
    portrait.prefetch_base()
    assert np.array_equal(portrait.read_base(), fs.base)
    assert not portrait.base_loaded  # the decoded image is the caller's, not kept
    assert (portrait.count, portrait.size, portrait.rest_index) == (5, (512, 512), 2)
    for a, b in zip(portrait.patches, fs.patches, strict=True):
        assert (a.x0, a.y0) == (b.x0, b.y0) and np.array_equal(a.pixels, b.pixels)
    # A version 1 set has no patches on disk: it is loaded whole (no cache key).
    v1 = tmp_path / "v1"
    v1.mkdir()
    from PIL import Image

    lines = ["count = 5", "size = [512, 512]", "rest_index = 2", "head_box = [150, 60, 330, 150]"]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(v1 / f"frame_{i:02d}.png")
        lines += ["[[frames]]", f'file = "frame_{i:02d}.png"']
    (v1 / "frames.toml").write_text("\n".join(lines) + "\n")
    old = Portrait.open(v1)
    assert old.base_loaded and old.key is None
    assert np.array_equal(old.read_base(), fs.base)


def test_a_large_set_starts_from_its_preview_then_shows_the_full_base(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    """With a preview (here 128 px for the 512 px painting) nothing full-size is decoded before
    the first frame; the full base and the patches follow from the worker, exact."""
    folder = _write(tmp_path / "set", frames, preview_max=128)
    assert (folder / "preview.png").is_file()
    cache = tmp_path / "cache"
    screen = (200, 300)
    config = DisplayConfig(window_size=screen, background=MAGENTA)
    slow = Slow()
    d = Display(
        config, Portrait.open(folder), "headless", cache_dir=cache, background=True, slow=slow
    )
    try:
        d.show(2, 0.0)
        first = d.pixels().astype(int)
        assert slow.calls == []  # the base was not decoded before the first frame
        ref = frame_on_screen(frames[2], screen, 0, "fit", MAGENTA).astype(int)
        # The same picture, softer (128 px shown 300 px high): close, but not the full base's.
        assert 0.5 < np.abs(first - ref).mean() < 12
        _show_all(d, screen, 0, "fit", frames)  # flush waits for the full base and patches
    finally:
        d.close()
    assert len(list(cache.glob("portrait-*.npz"))) == 1
