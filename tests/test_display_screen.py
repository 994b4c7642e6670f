"""The screen: headless (SDL dummy driver) for the drawing logic, and a real X window in Xvfb.

A small synthetic frame set (red band along the image's top, a moving "pupil" in the head box)
is written to disk and loaded with the real FrameSet, so patches are real patches.
"""

from __future__ import annotations

import itertools
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from appliance.config import DisplayConfig, FinderConfig
from appliance.display import Display, DisplayError, Overlay
from appliance.finder import Finder
from appliance.frames import FrameSet
from appliance.types import Box, Face, Point
from tests.support.display import find_xvfb, frame_on_screen, start_xvfb, stop_xvfb

W, H = 160, 120  # frame size
MAGENTA = (255, 0, 255)
RED = (255, 0, 0)


def _frame(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 90)], axis=2).astype(np.uint8)
    img[:12] = RED  # the image's top
    img[48:64, 50:110] = (250, 250, 250)  # the eye white
    x = 54 + i * 12
    img[52:60, x : x + 8] = (10, 10, 10)  # the pupil moves left to right with the index
    return img


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> FrameSet:
    d = tmp_path_factory.mktemp("frames")
    lines = [f"count = 5\nsize = [{W}, {H}]\nrest_index = 2\nhead_box = [40, 40, 120, 80]\n"]
    for i in range(5):
        Image.fromarray(_frame(i)).save(d / f"f{i}.png")
        lines.append(f'[[frames]]\nfile = "f{i}.png"\nangle = {(i - 2) * 10.0}\n')
    (d / "frames.toml").write_text("\n".join(lines))
    return FrameSet.load(d)


def cfg(**kw) -> DisplayConfig:
    kw.setdefault("window_size", (200, 300))
    kw.setdefault("background", MAGENTA)
    return DisplayConfig(**kw)


@pytest.fixture
def opened():
    made: list[Display] = []

    def make(frames: FrameSet, driver: str = "headless", **kw) -> Display:
        d = Display(cfg(**kw), frames, driver)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def _pygame() -> Any:
    """pygame as the display module imported it (to post events); tests never import it."""
    import appliance.display.screen as display_module

    return vars(display_module)["pygame"]


def assert_close(shot: np.ndarray, ref: np.ndarray, max_tol: int = 4) -> None:
    assert shot.shape == ref.shape
    diff = np.abs(shot.astype(int) - ref.astype(int))
    assert diff.max() <= max_tol, f"max diff {diff.max()}"
    assert diff.mean() < 0.5


# -- headless drawing -----------------------------------------------------------------------


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("fit", ["fit", "fill"])
def test_screen_equals_scaled_frame(frames, opened, rotation, fit):
    d = opened(frames, rotation=rotation, fit=fit)
    assert d.driver == "headless" and d.size == (200, 300)
    assert d.show(2, 0.0)
    for t, i in enumerate([0, 4, 3]):
        assert d.show(i, 1.0 + t)
        ref = frame_on_screen(frames.frame(i), (200, 300), rotation, fit, MAGENTA)
        assert_close(d.pixels(), ref)


def test_rotation_90_puts_the_top_on_the_right(frames, opened):
    d = opened(frames, rotation=90)
    d.show(2, 0.0)
    shot = d.pixels()
    portrait = np.any(shot != MAGENTA, axis=2)
    rows = np.flatnonzero(portrait.any(axis=1))
    cols = np.flatnonzero(portrait.any(axis=0))
    # A portrait 160x120 turned a quarter: 200 wide and 267 high on a 200x300 screen.
    assert (cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1) == (200, 267)
    mid = shot[rows[0] + 20 : rows[-1] - 20]
    red = np.all(np.abs(mid.astype(int) - RED) < 8, axis=2)
    assert red[:, -8:].all()  # the image's top runs down the right edge
    assert not red[:, :150].any()


def test_fit_has_borders_and_fill_has_none(frames, opened):
    d = opened(frames, fit="fit")
    d.show(2, 0.0)
    shot = d.pixels()
    # 160x120 fit to 200x300: 200x150 centred, background bands of 75 rows above and below.
    assert np.all(shot[:75] == MAGENTA) and np.all(shot[-75:] == MAGENTA)
    assert not np.any(np.all(shot[75:225] == MAGENTA, axis=2))
    d.close()
    d = opened(frames, fit="fill")
    d.show(2, 0.0)
    assert not np.any(np.all(d.pixels() == MAGENTA, axis=2))


def test_show_draws_only_on_change_and_only_the_patches(frames, opened, monkeypatch):
    pg = _pygame()
    d = opened(frames, window_size=(400, 300))
    updates: list[list] = []
    real_update = pg.display.update

    def update(rects):
        updates.append([tuple(r) for r in rects])
        return real_update(rects)

    monkeypatch.setattr(pg.display, "update", update)
    assert d.show(2, 0.0) is True
    assert d.show(2, 1.0) is False
    assert d.show(2, 2.0) is False
    assert updates == []  # first draw is a flip; nothing since
    assert d.show(3, 3.0) is True
    assert d.show(3, 4.0) is False
    assert len(updates) == 1
    area = sum(w * h for _, _, w, h in updates[0])
    assert 0 < area < 0.05 * 400 * 300  # only the eye region, not the screen
    assert_close(d.pixels(), frame_on_screen(frames.frame(3), (400, 300), 0, "fit", MAGENTA))


def test_rate_limit_defers_and_screenshot_completes(frames, opened, tmp_path):
    d = opened(frames, max_fps=10.0)
    assert d.show(2, 0.0)
    assert d.show(4, 0.05) is False  # sooner than 1/10 s after the last draw
    shot2 = frame_on_screen(frames.frame(2), d.size, 0, "fit", MAGENTA)
    assert_close(d.pixels(), shot2)
    assert d.show(4, 0.2) is True
    assert d.show(0, 0.25) is False
    d.screenshot(tmp_path / "s.png")  # the deferred frame is drawn before saving
    png = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    assert_close(png, frame_on_screen(frames.frame(0), d.size, 0, "fit", MAGENTA))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]


def test_crossfade_blends_then_ends_on_the_target(frames, opened):
    d = opened(frames, crossfade_ms=200, max_fps=50.0, window_size=(320, 240))
    d.show(0, 0.0)
    start = frames.frame(0)
    end = frames.frame(4)
    ref_a = frame_on_screen(start, d.size, 0, "fit", MAGENTA).astype(int)
    ref_b = frame_on_screen(end, d.size, 0, "fit", MAGENTA).astype(int)
    mid = ref_a != ref_b
    steps = []
    t = 1.0
    while True:
        assert d.show(4, t)
        steps.append(d.pixels().astype(int))
        if d.shown_index == 4:
            break
        t += 0.02
        assert len(steps) < 20
    # 200 ms at 50 fps: 10 steps, the last one the target itself.
    assert len(steps) == 10
    halfway = steps[4]
    assert np.abs(halfway - ref_a)[mid].mean() > 20
    assert np.abs(halfway - ref_b)[mid].mean() > 20
    # It moves monotonically from the old frame towards the new one.
    dist = [np.abs(s - ref_b)[mid].mean() for s in steps]
    assert all(a >= b for a, b in itertools.pairwise(dist))
    assert_close(steps[-1], ref_b.astype(np.uint8))
    assert d.show(4, t + 1.0) is False


def test_crossfade_retargeted_midway(frames, opened):
    d = opened(frames, crossfade_ms=100, max_fps=100.0)
    d.show(0, 0.0)
    d.show(4, 1.0)
    d.show(4, 1.03)
    d.show(1, 1.06)  # a new target while fading
    for k in range(20):
        d.show(1, 1.1 + k * 0.02)
    assert d.shown_index == 1
    assert_close(d.pixels(), frame_on_screen(frames.frame(1), d.size, 0, "fit", MAGENTA))


def _face(x: float, y: float, s: float) -> Face:
    eyes = (Point(x + s * 0.3, y + s * 0.4), Point(x + s * 0.7, y + s * 0.4))
    rest = tuple(Point(x + s / 2, y + s / 2) for _ in range(4))
    return Face(Box(x, y, x + s, y + s), 0.9, (*eyes, *rest))  # type: ignore[arg-type]


def test_overlay_toggles_with_d_and_restores_the_portrait(frames, opened):
    pg = _pygame()
    d = opened(frames, window_size=(300, 225))
    d.show(2, 0.0)
    clean = d.pixels()
    viewer, other = _face(200, 150, 120), _face(420, 200, 80)
    d.set_overlay(
        Overlay(
            fps=29.5,
            image_size=(640, 480),
            faces=(viewer, other),
            viewer=viewer.box,
            state="tracking",
            regions=(Box(0, 100, 640, 380),),
            band=Box(0, 100, 640, 380),
        )
    )
    assert d.show(2, 1.0) is False  # overlay off: new figures draw nothing
    pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_d, mod=0, unicode="d", scancode=7))
    assert d.poll() == ["toggle_debug"] and d.debug
    assert d.show(2, 2.0) is True
    with_overlay = d.pixels()
    changed = np.any(with_overlay != clean, axis=2)
    ys, xs = np.nonzero(changed)
    assert xs.min() < 12 and ys.min() < 12  # at the portrait's top-left corner
    assert xs.max() < 200 and ys.max() < 200
    viewer_red = np.all(with_overlay == (255, 70, 70), axis=2)
    face_green = np.all(with_overlay == (60, 220, 60), axis=2)
    assert viewer_red.sum() > 50 and face_green.sum() > 10
    assert d.show(2, 3.0) is False  # nothing new
    # The eyes change under the overlay: the overlay stays on top, the rest is the new frame.
    assert d.show(3, 4.0)
    after = d.pixels()
    assert np.array_equal(np.all(after == (255, 70, 70), axis=2), viewer_red)
    ref3 = frame_on_screen(frames.frame(3), d.size, 0, "fit", MAGENTA)
    x, y, w, h = d._overlay_rect
    outside = np.ones(changed.shape, bool)
    outside[y : y + h, x : x + w] = False
    assert changed[~outside].mean() > 0.9 and not changed[outside].any()
    assert_close(np.where(outside[..., None], after, ref3), ref3)
    # Drawn incrementally, it is exactly what a full redraw of frame 3 with the overlay gives.
    info = d._overlay_info
    d.close()
    fresh = opened(frames, window_size=(300, 225), debug_overlay=True)
    fresh.set_overlay(info)
    fresh.show(3, 0.0)
    assert np.array_equal(fresh.pixels(), after)
    d = fresh
    pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_d, mod=0, unicode="d", scancode=7))
    assert d.poll() == ["toggle_debug"] and not d.debug
    assert d.show(3, 5.0) is True
    assert_close(d.pixels(), ref3)


def test_overlay_is_upright_for_a_rotated_monitor(frames, opened):
    d = opened(frames, rotation=90, window_size=(600, 400), debug_overlay=True)
    d.show(2, 0.0)
    shot = d.pixels()
    ref = frame_on_screen(frames.frame(2), d.size, 90, "fit", MAGENTA)
    ys, xs = np.nonzero(np.any(shot != ref, axis=2))
    # The picture's top-left corner is the screen's top-right corner after a quarter turn.
    assert xs.max() > 580 and ys.min() < 20 and xs.min() > 300


# Overlay inset colours (opaque, so exact on screen): see the legend in appliance.display.overlay.
BAND_BLUE = (90, 150, 255)
TILE_FAINT = (75, 75, 95)
RAN_YELLOW = (250, 200, 0)
FOLLOW_PINK = (235, 60, 235)
INSET_GREY = (120, 120, 120)


class _NoFaces:
    """A detector stand-in that finds nothing (the plan, not the faces, is under test)."""

    input_size = 192

    def detect(self, image: np.ndarray) -> list[Face]:
        return []


def _count(shot: np.ndarray, colour: tuple[int, int, int], xs: range, ys: range) -> int:
    """Pixels of exactly ``colour`` in the screen window ``xs`` × ``ys``."""
    window = shot[ys.start : ys.stop, xs.start : xs.stop]
    return int(np.all(window == colour, axis=2).sum())


def _plan(result: Any) -> Overlay:
    """The overlay of one finder result on a 640×480 camera image, as the loop builds it."""
    return Overlay(
        image_size=(640, 480),
        regions=tuple(result.regions),
        band=result.band,
        tiles=tuple(result.tiles),
        follow=result.follow,
    )


def test_overlay_draws_band_tiles_ran_tiles_and_follow_crop(frames, opened):
    # The real finder plans one frame: a follow crop around the viewer plus one sweep tile.
    finder = Finder(
        FinderConfig(mode="band", whole_pass=False, motion_first=False, band_learn=False),
        _NoFaces(),
    )
    image = np.zeros((480, 640, 3), np.uint8)
    result = finder.find(image, follow=Box(300, 200, 340, 240))
    band, tiles, follow = result.band, result.tiles, result.follow
    assert band is not None and follow is not None and len(tiles) >= 6
    assert result.regions[0] == follow and result.regions[1] == tiles[0]
    ran, idle = tiles[0], tiles[-1]  # top-left ran this frame; bottom-right did not
    assert idle.x0 > follow.x1 + 20 and ran.x1 < follow.x1

    d = opened(frames, window_size=(800, 600), debug_overlay=True)
    d.show(2, 0.0)
    d.set_overlay(_plan(result))
    info = d._overlay_info
    assert info is not None and info.follow == follow and info.tiles == tuple(tiles)
    assert d.show(2, 1.0) is True
    shot = d.pixels()
    # The camera inset is framed in grey; camera pixels map onto it by one scale factor.
    gys, gxs = np.nonzero(np.all(shot == INSET_GREY, axis=2))
    ix0, iy0, ix1 = int(gxs.min()), int(gys.min()), int(gxs.max()) + 1
    k = (ix1 - ix0) / 640
    assert ix1 - ix0 >= 200

    def sx(x: float) -> int:
        return ix0 + round(x * k)

    def sy(y: float) -> int:
        return iy0 + round(y * k)

    def near(v: int, r: int = 2) -> range:
        return range(v - r, v + r + 1)

    def along(a: float, b: float, to: Any) -> range:
        return range(to(a) + 4, to(b) - 4)  # clear of corners and crossing lines

    # Head band: a full-width line at its top row and at its bottom row.
    across = along(0, 640, sx)
    for row in (band.y0, band.y1):
        assert _count(shot, BAND_BLUE, across, near(sy(row))) >= 0.8 * len(across), row
    # The whole tile grid, faintly: the left edge of a tile that did not run.
    rows = along(idle.y0, idle.y1, sy)
    assert _count(shot, TILE_FAINT, near(sx(idle.x0)), rows) >= 0.8 * len(rows)
    assert _count(shot, RAN_YELLOW, near(sx(idle.x0)), rows) == 0
    # The tile that ran, brightly: its right and bottom edges.
    rows, cols = along(ran.y0, ran.y1, sy), along(ran.x0, ran.x1, sx)
    cols = range(cols.start, min(cols.stop, sx(follow.x0) - 3))  # left of the follow crop
    assert _count(shot, RAN_YELLOW, near(sx(ran.x1)), rows) >= 0.8 * len(rows)
    assert _count(shot, RAN_YELLOW, cols, near(sy(ran.y1))) >= 0.8 * len(cols)
    # The follow crop in its own colour: its left and right edges and its bottom.
    rows, cols = along(follow.y0, follow.y1, sy), along(follow.x0, follow.x1, sx)
    for col in (follow.x0, follow.x1):
        assert _count(shot, FOLLOW_PINK, near(sx(col)), rows) >= 0.8 * len(rows), col
    assert _count(shot, FOLLOW_PINK, cols, near(sy(follow.y1))) >= 0.8 * len(cols)
    # Nothing of the plan spills outside the inset except the legend text below it.
    iy1 = sy(480)
    for colour in (BAND_BLUE, TILE_FAINT, RAN_YELLOW, FOLLOW_PINK):
        assert _count(shot, colour, range(0, 800), range(0, iy0)) == 0
        assert _count(shot, colour, range(ix1, 800), range(0, iy1)) == 0
        assert _count(shot, colour, range(0, 800), range(iy1 + 1, 600)) > 0  # the legend


def test_overlay_plan_is_not_drawn_while_the_overlay_is_off(frames, opened):
    finder = Finder(FinderConfig(mode="band", motion_first=False), _NoFaces())
    image = np.zeros((480, 640, 3), np.uint8)
    result = finder.find(image, follow=Box(300, 200, 340, 240))

    d = opened(frames, window_size=(800, 600))
    d.show(2, 0.0)
    clean = d.pixels()
    d.set_overlay(_plan(result))
    assert d.show(2, 1.0) is False
    assert np.array_equal(d.pixels(), clean)
    for colour in (BAND_BLUE, TILE_FAINT, RAN_YELLOW, FOLLOW_PINK):
        assert _count(clean, colour, range(0, 800), range(0, 600)) == 0


def test_poll_quit_resize_and_keys(frames, opened):
    pg = _pygame()
    d = opened(frames)
    d.show(1, 0.0)
    pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_q, mod=0, unicode="q", scancode=20))
    assert d.poll() == []  # q quits a window only, not the headless/kiosk screen
    pg.event.post(pg.event.Event(pg.QUIT))
    assert d.poll() == ["quit"]
    pg.event.post(pg.event.Event(pg.VIDEORESIZE, size=(300, 200), w=300, h=200))
    assert d.poll() == []
    assert d.size == (300, 200)
    assert_close(d.pixels(), frame_on_screen(frames.frame(1), (300, 200), 0, "fit", MAGENTA))
    assert d.show(4, 1.0)
    assert_close(d.pixels(), frame_on_screen(frames.frame(4), (300, 200), 0, "fit", MAGENTA))


def test_bad_screenshot_path_raises_naming_it(frames, opened, tmp_path):
    d = opened(frames)
    d.show(2, 0.0)
    bad = tmp_path / "missing-dir" / "shot.png"
    with pytest.raises(OSError, match=r"missing-dir/shot\.png: cannot save the screenshot"):
        d.screenshot(bad)
    with pytest.raises(OSError, match="cannot save"):
        d.screenshot(tmp_path)  # a directory
    assert list(tmp_path.iterdir()) == []


def test_open_close_repeatedly_and_misuse(frames):
    for i in range(4):
        d = Display(cfg(window_size=(100 + 20 * i, 100)), frames, "headless")
        with pytest.raises(DisplayError, match="already open"):
            Display(cfg(), frames, "headless")
        assert d.show(i, 0.0)
        assert d.size == (100 + 20 * i, 100)
        d.close()
        d.close()
        with pytest.raises(DisplayError, match="closed"):
            d.show(0, 1.0)
    with Display(cfg(), frames, "headless") as d, pytest.raises(IndexError, match=r"0\.\.4"):
        d.show(5, 0.0)


def test_unopenable_drivers_raise_one_line(frames, monkeypatch):
    if Path("/dev/dri").exists():
        pytest.skip("this machine has a DRM device")
    with pytest.raises(DisplayError, match="cannot open the kmsdrm display") as info:
        Display(cfg(), frames, "kmsdrm")
    assert "\n" not in str(info.value)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="neither DISPLAY nor WAYLAND_DISPLAY"):
        Display(cfg(), frames, "window")
    # A failed open leaves the module usable.
    with Display(cfg(), frames, "headless") as d:
        assert d.show(0, 0.0)


# -- a real X server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xvfb():
    exe = find_xvfb()
    if exe is None:
        pytest.skip("Xvfb is not installed and cannot be installed here")
    proc, display = start_xvfb(exe)
    yield display
    stop_xvfb(proc)


def test_real_window_under_xvfb(frames, xvfb, monkeypatch, tmp_path):
    from PIL import ImageGrab

    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    d = Display(cfg(driver="auto", window_size=(320, 300)), frames)
    try:
        assert d.driver == "window"
        assert d.size == (320, 300)
        d.show(2, 0.0)
        d.show(0, 1.0)
        deadline = time.monotonic() + 5.0
        expected = frame_on_screen(frames.frame(0), (320, 300), 0, "fit", MAGENTA)
        while True:  # the window is mapped asynchronously; expose events repaint it
            d.poll()
            root = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB"))
            found = np.argwhere(np.all(root == MAGENTA, axis=2))
            if found.size:
                y0, x0 = found.min(axis=0)
                grabbed = root[y0 : y0 + 300, x0 : x0 + 320]
                if (
                    grabbed.shape == expected.shape
                    and np.abs(grabbed.astype(int) - expected.astype(int)).max() <= 4
                ):
                    break
            assert time.monotonic() < deadline, "the X server never showed the frame"
            time.sleep(0.05)
        Image.fromarray(grabbed).save(tmp_path / "x11.png")
        # A later change reaches the X server through the partial update alone (no poll).
        assert d.show(4, 2.0)
        root = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB"))
        expected4 = frame_on_screen(frames.frame(4), (320, 300), 0, "fit", MAGENTA)
        assert_close(root[y0 : y0 + 300, x0 : x0 + 320], expected4)
        grabbed = root[y0 : y0 + 300, x0 : x0 + 320]
        # What pygame holds is what the X server shows.
        d.screenshot(tmp_path / "pygame.png")
        assert_close(np.asarray(Image.open(tmp_path / "pygame.png").convert("RGB")), grabbed)
        # Closing the window from the window manager and the q key both quit.
        pg = _pygame()
        pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_q, mod=0, unicode="q", scancode=20))
        pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_ESCAPE, mod=0, unicode="", scancode=41))
        assert d.poll() == ["quit", "quit"]
        # Resizing the window (through SDL, as a window manager would) lays it out again.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            window = pg.Window.from_display_module()
        window.size = (400, 360)
        expected = frame_on_screen(frames.frame(4), (400, 360), 0, "fit", MAGENTA)
        deadline = time.monotonic() + 5.0
        while d.layout.screen != (400, 360):
            d.poll()
            assert time.monotonic() < deadline, "no resize event"
            time.sleep(0.02)
        assert d.size == (400, 360)
        root = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB"))
        y0, x0 = np.argwhere(np.all(root == MAGENTA, axis=2)).min(axis=0)
        assert_close(root[y0 : y0 + 360, x0 : x0 + 400], expected)
    finally:
        d.close()
    # And the headless driver still opens afterwards in the same process.
    with Display(cfg(), frames, "headless") as h:
        assert h.show(1, 0.0)
