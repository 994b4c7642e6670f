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
from appliance.frames import FrameSet, FrameSetError, Portrait, diff_patch
from appliance.framewrite import write_set
from appliance.types import Box
from tests.support.display import frame_on_screen
from tests.support.frames import png_header

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


def _write(
    folder: Path, frames: list[np.ndarray], preview_max: int = 1920, rest_index: int = 2
) -> Path:
    patches = [diff_patch(frames[2], f) for f in frames]
    write_set(
        folder,
        frames[2],
        patches,
        angles=[-20.0, -10.0, 0.0, 10.0, 20.0],
        rest_index=rest_index,
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
    the first frame; the full base and the patches follow from the worker, exact. Such a set's
    patches are lossy and masked (WebP): the frames shown are the set's own (as exported),
    and a rotated screen lays the masks right."""
    folder = _write(tmp_path / "set", frames, preview_max=128)
    assert (folder / "preview.webp").is_file()
    assert {p.suffix for p in (folder / "patches").iterdir()} == {".webp"}
    stored = FrameSet.load(folder)
    held = [stored.frame(i) for i in range(len(frames))]
    assert any(not np.array_equal(a, b) for a, b in zip(held, frames, strict=True))  # lossy
    for a, b in zip(held, frames, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 48  # and close
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
        _show_all(d, screen, 0, "fit", held)  # flush waits for the full base and patches
    finally:
        d.close()
    assert len(list(cache.glob("portrait-*.npz"))) == 1
    turned = DisplayConfig(window_size=(90, 70), background=MAGENTA, rotation=90, fit="fill")
    d = Display(turned, Portrait.open(folder), "headless", cache_dir=cache, background=True)
    try:
        _show_all(d, (90, 70), 90, "fill", held)
    finally:
        d.close()


def test_opening_decodes_the_rest_patch_only_and_a_broken_patch_costs_its_frame(
    tmp_path: Path, frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    """Opening checks every patch file's header and decodes the rest frame's patch only: a
    patch whose pixels are damaged (its header intact) is found when the worker renders it,
    after the first frame: one line names its file and its frame shows the nearest good one
    (frame 1 for frame 0). A header of the wrong size, or a damaged rest patch, is refused on
    opening, before anything is shown. The rest frame is 1 here (its patch is not empty)."""
    folder = _write(tmp_path / "set", frames, rest_index=1)
    manifest = Portrait.open(folder).manifest
    boxes = {i: f.box for i, f in enumerate(manifest.frames) if f.box is not None}
    assert set(boxes) == {0, 1, 3, 4}  # frame 2 is the base

    def damage(i: int, grow: int = 0) -> Path:
        x0, y0, x1, y1 = boxes[i]
        path = folder / "patches" / f"frame_{i:02d}.png"
        png_header(path, x1 - x0 + grow, y1 - y0)  # the size, and no pixels
        return path

    bad = damage(0)
    portrait = Portrait.open(folder)  # not decoded here
    screen = (200, 300)
    config = DisplayConfig(window_size=screen, background=MAGENTA)
    with caplog.at_level("ERROR", logger="appliance.display.prepare"):
        d = Display(config, portrait, "headless", background=True)
        try:
            d.show(0, 0.0)
            d.flush()
            assert d.shown_index == 1
            ref = frame_on_screen(frames[1], screen, 0, "fit", MAGENTA).astype(int)
            assert np.abs(d.pixels().astype(int) - ref).max() <= 4
            d.show(4, 1.0)
            d.flush()
            assert d.shown_index == 4
        finally:
            d.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and str(bad) in lines[0] and "\n" not in lines[0], lines
    for i, grow in ((4, 1), (1, 0)):  # a wrong size; the rest frame's patch
        path = damage(i, grow)
        with pytest.raises(FrameSetError, match=str(path)):
            Portrait.open(folder)
        _write(folder, frames, rest_index=1)


def test_a_frame_not_rendered_shows_the_nearest_rendered_one() -> None:
    """3 gazes x 2 lid phases x 2 rows: before the worker is done only the rest frame is ready
    and every frame shows it; later a frame whose patch is broken shows its nearest neighbour
    in the grid (fewest steps, open lids first)."""
    from appliance.display.screen import nearest_ready
    from appliance.frames import validate_manifest

    frames = [
        {"angle": a, "pitch": p, "lids": lid}
        for p in (-10.0, 0.0)
        for lid in (0.0, 1.0)
        for a in (-20.0, 0.0, 20.0)
    ]
    doc = {"version": 2, "count": 12, "size": [8, 6], "head_box": [0.0, 0.0, 8.0, 6.0]}
    grid = validate_manifest({**doc, "rest_index": 7, "frames": frames}, "g.toml")
    assert nearest_ready(grid, [i == 7 for i in range(12)]) == [7] * 12
    ready = [True] * 12
    ready[grid.index(0, 1, 0)] = ready[grid.index(1, 1, 1)] = False
    shown = nearest_ready(grid, ready)
    assert shown[grid.index(0, 1, 0)] == grid.index(1, 1, 0)  # the next gaze, lids as asked
    assert shown[grid.index(1, 1, 1)] == grid.index(1, 1, 0)  # open lids before others
    assert [shown[i] for i in range(12) if ready[i]] == [i for i in range(12) if ready[i]]


def test_the_overlay_names_the_frame_drawn_and_the_one_asked_while_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default grid's patches held back (the worker blocked in a read(2) on a pipe nobody
    writes to): a frame asked for is drawn as the rest frame and the overlay says both, again
    when another frame is asked for (the same frame drawn); once the patches are rendered it
    names the asked frame alone, and nothing new redraws it."""
    import os

    from appliance.display import overlay as overlay_module
    from appliance.display import screen as screen_module
    from appliance.display.prepare import render_stages
    from appliance.frames import default_frames_dir

    read_end, write_end = os.pipe()

    def held_stages(grid):
        os.read(read_end, 1)  # blocks until the test lets it go
        yield from render_stages(grid)

    said: list[str] = []

    def text_lines(info, frame):
        said.append(frame)
        return real_text_lines(info, frame)

    real_text_lines = overlay_module.text_lines
    monkeypatch.setattr(screen_module, "render_stages", held_stages)
    monkeypatch.setattr(overlay_module, "text_lines", text_lines)
    portrait = Portrait.open(default_frames_dir())
    grid, last = portrait.grid, portrait.count - 1
    left, right = grid.index(0, grid.rest_row), grid.index(grid.gazes - 1, grid.rest_row)
    assert portrait.rest_index not in (left, right)
    config = DisplayConfig(window_size=(160, 120), debug_overlay=True)
    d = Display(config, portrait, "headless", background=True)
    try:
        d.show(left, 0.0)
        assert said[-1] == f"frame {portrait.rest_index}/{last} (asked {left}, rendering)"
        assert d.show(right, 1.0)  # the same frame drawn: only the overlay changes
        assert said[-1] == f"frame {portrait.rest_index}/{last} (asked {right}, rendering)"
        os.write(write_end, b"x")
        d.flush()  # every stage rendered and taken up, drawn again
        assert d.drawn_for(right) == right and said[-1] == f"frame {right}/{last}"
        drawn = len(said)
        assert not d.show(right, 2.0) and len(said) == drawn  # nothing new: not redrawn
    finally:
        d.close()
        os.close(write_end)
        os.close(read_end)


@pytest.mark.parametrize("rotation", [0, 90])
def test_a_patch_is_kept_as_one_piece_per_eye(rotation: int) -> None:
    """The default set's frames on a 1280x720 screen: most keep two pieces (the eyes), which
    hold fewer pixels than the box spanning both, and the base with the pieces drawn on it is
    the whole rendered patch (upright and turned on its side: eyes above one another)."""
    from appliance.display.layout import Renderer
    from appliance.display.prepare import pieces, render_patches
    from appliance.frames import default_frames_dir

    portrait = Portrait.open(default_frames_dir())
    grid = portrait.grid
    lay = compute_layout((1280, 720), portrait.size, rotation, "fit")
    prepared = prepare_base(portrait, lay)
    renderer = Renderer(lay, portrait.size, portrait.patches, prepared.held, prepared.head)
    vx0, vy0 = lay.visible[:2]
    frames = [grid.index(g, r, lid) for g in (0, 16, 32) for r in (0, 4) for lid in (0, 3)]
    two = 0
    for i in frames:
        region = renderer.patch_region(i)
        assert region is not None
        rgb = renderer.render(region, i)
        under = prepared.base[region[1] - vy0 : region[3] - vy0, region[0] - vx0 : region[2] - vx0]
        out = pieces(region, rgb, under)
        two += len(out) == 2
        assert sum(p.shape[0] * p.shape[1] for _, p in out) < rgb.shape[0] * rgb.shape[1]
        drawn = under.copy()
        for (x0, y0, x1, y1), p in out:
            drawn[y0 - region[1] : y1 - region[1], x0 - region[0] : x1 - region[0]] = p
        assert np.array_equal(drawn, rgb)
    assert two >= len(frames) - 2
    only = render_patches(portrait, prepared, frames=[frames[0]])
    assert only.ready == [i == frames[0] for i in range(portrait.count)]


def test_the_worker_renders_the_level_row_first_then_the_rows_then_the_blinks() -> None:
    """The default grid in three stages (33, 132, 495 frames, every frame once); once the first
    is taken up a frame of another row or a blink phase shows the level row's frame of its
    gaze, with open eyes, so the eyes follow sideways from the first stage on."""
    from appliance.display.prepare import render_stages
    from appliance.display.screen import nearest_ready
    from appliance.frames import default_frames_dir

    grid = Portrait.open(default_frames_dir()).grid
    stages = render_stages(grid)
    assert [len(s) for s in stages] == [33, 132, 495]
    assert sorted(i for s in stages for i in s) == list(range(grid.count))
    assert grid.rest in stages[0]
    first = set(stages[0])
    shown = nearest_ready(grid, [i in first for i in range(grid.count)])
    for gaze in (0, 9, 32):
        for row in range(5):
            for lid in range(4):
                assert shown[grid.index(gaze, row, lid)] == grid.index(gaze, grid.rest_row)


def test_a_patch_file_several_frames_name_is_decoded_once_and_its_surfaces_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default grid names one patch file for many frames (a shut blink at every gaze, same
    box): it is decoded and rendered once, for the first of them, across the worker's stages,
    and the display makes its surfaces once (counted once in the patch memory). A frame that
    takes the shared pieces gets what rendering it alone gives."""
    from collections import Counter

    from appliance.display.prepare import patch_file, render_patches
    from appliance.frames import PatchFiles, default_frames_dir

    reads: list[str | None] = []
    real_read = PatchFiles.read

    def counted(self: PatchFiles, i: int):
        reads.append(self.manifest.frames[i].patch)
        return real_read(self, i)

    monkeypatch.setattr(PatchFiles, "read", counted)
    portrait = Portrait.open(default_frames_dir())
    names = [patch_file(portrait, i) for i in range(portrait.count)]
    name, users = Counter(n for n in names if n is not None).most_common(1)[0]
    assert users > 1
    sharing = [i for i, n in enumerate(names) if n == name]
    prepared = prepare_base(portrait, compute_layout((640, 360), portrait.size, 0, "fit"))

    reads.clear()
    memo: dict = {}
    first = render_patches(portrait, prepared, frames=sharing[:3], shared=memo)
    rest = render_patches(portrait, prepared, frames=sharing[3:], shared=memo)
    assert reads == [name]  # once, across both calls
    kept = first.patches[sharing[0]]
    assert kept and all(rest.patches[i] is kept for i in sharing[3:])
    assert rest.files[sharing[-1]] == name and rest.ready[sharing[-1]]
    alone = render_patches(portrait, prepared, frames=[sharing[-1]]).patches[sharing[-1]]
    assert [r for r, _ in alone] == [r for r, _ in kept]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(alone, kept, strict=True))

    reads.clear()
    d = Display(DisplayConfig(window_size=(640, 360)), portrait, "headless", background=True)
    try:
        d.flush()  # every stage rendered and taken up
        assert d.frames_ready == portrait.count
        counts = Counter(reads)
        distinct = {n for i, n in enumerate(names) if n is not None and i != portrait.rest_index}
        assert set(counts) == distinct and set(counts.values()) == {1}, counts.most_common(2)
        surfaces = [s for i in sharing for _, s in d._patch_pieces[i]]
        assert len({id(s) for s in surfaces}) == len(kept)  # one set of surfaces for them all

        def size(i: int) -> int:
            return sum(s.get_height() * s.get_pitch() for _, s in d._patch_pieces[i])

        per_file = sum(size(names.index(n)) for n in set(names) if n is not None)
        assert d.patch_bytes() == per_file < sum(size(i) for i in range(portrait.count))
    finally:
        d.close()
