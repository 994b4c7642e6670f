"""Layout geometry: the driver choice, rotations and where the portrait lands (no pygame)."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.display import DisplayError, choose_driver, compute_layout, rotate_array, rotate_rect

W, H = 160, 120  # frame size


def test_choose_driver(tmp_path):
    dri = tmp_path / "dri"
    assert choose_driver("auto", {"DISPLAY": ":0"}, dri) == "window"
    assert choose_driver("auto", {"WAYLAND_DISPLAY": "wayland-0"}, dri) == "window"
    assert choose_driver("auto", {}, dri) == "headless"
    dri.mkdir()
    assert choose_driver("auto", {}, dri) == "kmsdrm"
    assert choose_driver("headless", {"DISPLAY": ":0"}, dri) == "headless"
    with pytest.raises(DisplayError, match="'vga'"):
        choose_driver("vga")


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotate_rect_matches_rotate_array(rotation):
    img = np.zeros((H, W, 3), np.uint8)
    img[30:50, 10:70] = 1
    x0, y0, x1, y1 = rotate_rect((10, 30, 70, 50), (W, H), rotation)
    rot = rotate_array(img, rotation)
    ys, xs = np.nonzero(rot[..., 0])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


def test_layout_fit_and_fill():
    fit = compute_layout((200, 300), (W, H), 0, "fit")
    assert fit.scaled == (200, 150) and fit.offset == (0, 75)
    fill = compute_layout((200, 300), (W, H), 0, "fill")
    assert fill.scaled == (400, 300) and fill.offset == (-100, 0)
    assert fill.visible == (100, 0, 300, 300)
    rot = compute_layout((200, 300), (W, H), 90, "fit")
    assert rot.image == (H, W) and rot.scaled == (200, 267)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize(
    ("screen", "fit"), [((96, 80), "fit"), ((70, 90), "fill"), ((W, H), "fit")]
)
def test_scale_image_is_the_renderers_base(rotation, screen, fit):
    """The base scaled straight from the decoded image (no array copy) is pixel for pixel the
    renderer's: down, cropped by ``fill``, and shown 1:1."""
    from PIL import Image
    from skimage import data

    from appliance.display.layout import Renderer, scale_image

    photo = np.ascontiguousarray(data.astronaut()[100 : 100 + H, 150 : 150 + W])
    if screen == (W, H):  # shown 1:1: the screen is the turned portrait's size
        screen = (H, W) if rotation in (90, 270) else (W, H)
    lay = compute_layout(screen, (W, H), rotation, fit)
    assert lay.identity_scale == (screen in ((W, H), (H, W)))
    want = Renderer(lay, (W, H), (), (0, 0, W, H), photo).render(lay.visible, None)
    got = scale_image(lay, Image.fromarray(photo))
    assert got.shape == want.shape and np.array_equal(got, want)
